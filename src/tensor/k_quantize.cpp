// K-quant encoders: a per-group scale search (k_quant_search.h), then the group scales are
// themselves quantized to 4/6/8 bits under one fp16 super-scale, each group's quantized scale
// is refined by +-1 against the real error, and the elements are rounded onto the final grid.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "edgelm/quant.h"
#include "tensor/k_quant_search.h"
#include "tensor/k_quants.h"
#include "tensor/rounding.h"

namespace edgelm::tensor::detail {
namespace {

constexpr int kMaxGroups = kQKK / 16;

// Without importance, the weights follow ggml's choices per type (they favour large values,
// which matter most to a model's output). With importance, imp * sqrt(sigma2 + x^2): the
// caller's per-input weight, still leaning towards large values.
enum class WeightRule { kMagnitude, kGroupRmsPlusMagnitude, kSquare };

void search_weights(const float* x, const float* importance, WeightRule rule, int group, float* w) {
  if (importance != nullptr) {
    float sum_x2 = 0.0f;
    for (int i = 0; i < kQKK; ++i) sum_x2 += x[i] * x[i];
    const float sigma2 = 2.0f * sum_x2 / kQKK;
    for (int i = 0; i < kQKK; ++i) w[i] = importance[i] * std::sqrt(sigma2 + x[i] * x[i]);
    return;
  }
  for (int g = 0; g < kQKK; g += group) {
    float sum_x2 = 0.0f;
    for (int i = g; i < g + group; ++i) sum_x2 += x[i] * x[i];
    const float rms = std::sqrt(sum_x2 / static_cast<float>(group));
    for (int i = g; i < g + group; ++i) {
      switch (rule) {
        case WeightRule::kMagnitude:
          w[i] = std::fabs(x[i]);
          break;
        case WeightRule::kGroupRmsPlusMagnitude:
          w[i] = rms + std::fabs(x[i]);
          break;
        case WeightRule::kSquare:
          w[i] = x[i] * x[i];
          break;
      }
    }
  }
}

// ---- affine types (q2_K, q4_K, q5_K): x = d*scale*q - dmin*min

struct AffineKind {
  int group;
  AffineSearch search;
  int scale_max;  // 15 (4-bit) or 63 (6-bit) for both scales and mins
  WeightRule weights;
};

struct AffineBlock {
  uint16_t d = 0;
  uint16_t dmin = 0;
  int scales[kMaxGroups] = {};
  int mins[kMaxGroups] = {};
  int q[kQKK] = {};
};

// Rounds a group onto the grid (dl, ml) and returns the weighted error; q may be null.
float affine_group_error(const float* x, const float* w, int n, int qmax, float dl, float ml,
                         int* q) {
  float error = 0.0f;
  for (int i = 0; i < n; ++i) {
    const int level = dl > 0 ? round_even_clamped((x[i] + ml) / dl, 0, qmax) : 0;
    if (q != nullptr) q[i] = level;
    const float diff = dl * static_cast<float>(level) - ml - x[i];
    error += w[i] * diff * diff;
  }
  return error;
}

int scaled_level(float value, float step, int lo, int hi) {
  return step != 0.0f ? round_even_clamped(value / step, lo, hi) : 0;
}

AffineBlock encode_affine(const float* x, const float* importance, const AffineKind& kind) {
  float w[kQKK];
  search_weights(x, importance, kind.weights, kind.group, w);
  const int n_groups = kQKK / kind.group;
  AffineFit fits[kMaxGroups];
  float max_scale = 0.0f;
  float max_offset = 0.0f;
  for (int g = 0; g < n_groups; ++g) {
    fits[g] = fit_affine(x + g * kind.group, w + g * kind.group, kind.group, kind.search);
    max_scale = std::fmax(max_scale, fits[g].scale);
    max_offset = std::fmax(max_offset, fits[g].offset);
  }
  AffineBlock block;
  block.d = fp32_to_fp16(max_scale / static_cast<float>(kind.scale_max));
  block.dmin = fp32_to_fp16(max_offset / static_cast<float>(kind.scale_max));
  const float d = fp16_to_fp32(block.d);
  const float dmin = fp16_to_fp32(block.dmin);
  for (int g = 0; g < n_groups; ++g) {
    const float* xg = x + g * kind.group;
    const float* wg = w + g * kind.group;
    const int scale0 = scaled_level(fits[g].scale, d, 0, kind.scale_max);
    const int min0 = scaled_level(fits[g].offset, dmin, 0, kind.scale_max);
    float best_error = INFINITY;
    for (int scale = std::max(scale0 - 1, 0); scale <= std::min(scale0 + 1, kind.scale_max);
         ++scale) {
      for (int min = std::max(min0 - 1, 0); min <= std::min(min0 + 1, kind.scale_max); ++min) {
        const float dl = d * static_cast<float>(scale);
        const float ml = dmin * static_cast<float>(min);
        const float error =
            affine_group_error(xg, wg, kind.group, kind.search.qmax, dl, ml, nullptr);
        if (error < best_error || (scale == scale0 && min == min0 && !(best_error < error))) {
          best_error = error;
          block.scales[g] = scale;
          block.mins[g] = min;
        }
      }
    }
    affine_group_error(xg, wg, kind.group, kind.search.qmax,
                       d * static_cast<float>(block.scales[g]),
                       dmin * static_cast<float>(block.mins[g]), block.q + g * kind.group);
  }
  return block;
}

constexpr AffineKind kQ2KKind = {16, {3, -0.5f, 0.1f, 15}, 15, WeightRule::kMagnitude};
constexpr AffineKind kQ4KKind = {32, {15, -1.0f, 0.1f, 20}, 63, WeightRule::kGroupRmsPlusMagnitude};
constexpr AffineKind kQ5KKind = {32, {31, -0.5f, 0.1f, 15}, 63, WeightRule::kGroupRmsPlusMagnitude};

// Bits 2s..2s+1 of byte 32*(e/128) + e%32 hold element e's two low bits (q2_K, q3_K layout).
void pack_two_bit(const int* q, uint8_t qs[kQKK / 4]) {
  std::memset(qs, 0, kQKK / 4);
  for (int e = 0; e < kQKK; ++e) {
    qs[32 * (e / 128) + e % 32] |= static_cast<uint8_t>((q[e] & 3) << (2 * ((e % 128) / 32)));
  }
}

void quantize_q2_k(const float* src, uint8_t* dst, int64_t n_blocks, const float* importance) {
  for (int64_t i = 0; i < n_blocks; ++i, src += kQKK) {
    const AffineBlock fit =
        encode_affine(src, importance ? importance + i * kQKK : nullptr, kQ2KKind);
    BlockQ2_K block;
    for (int g = 0; g < 16; ++g)
      block.scales[g] = static_cast<uint8_t>(fit.scales[g] | (fit.mins[g] << 4));
    pack_two_bit(fit.q, block.qs);
    block.d = fit.d;
    block.dmin = fit.dmin;
    store_block(dst, i, block);
  }
}

// Nibble (e/32)%2 of byte 32*(e/64) + e%32 holds element e's low four bits (q4_K, q5_K).
void pack_k_nibbles(const int* q, uint8_t qs[kQKK / 2]) {
  std::memset(qs, 0, kQKK / 2);
  for (int e = 0; e < kQKK; ++e) {
    qs[32 * (e / 64) + e % 32] |= static_cast<uint8_t>((q[e] & 0x0F) << (4 * ((e / 32) % 2)));
  }
}

void quantize_q4_k(const float* src, uint8_t* dst, int64_t n_blocks, const float* importance) {
  for (int64_t i = 0; i < n_blocks; ++i, src += kQKK) {
    const AffineBlock fit =
        encode_affine(src, importance ? importance + i * kQKK : nullptr, kQ4KKind);
    BlockQ4_K block;
    block.d = fit.d;
    block.dmin = fit.dmin;
    pack_q4_k_scales(fit.scales, fit.mins, block.scales);
    pack_k_nibbles(fit.q, block.qs);
    store_block(dst, i, block);
  }
}

void quantize_q5_k(const float* src, uint8_t* dst, int64_t n_blocks, const float* importance) {
  for (int64_t i = 0; i < n_blocks; ++i, src += kQKK) {
    const AffineBlock fit =
        encode_affine(src, importance ? importance + i * kQKK : nullptr, kQ5KKind);
    BlockQ5_K block;
    block.d = fit.d;
    block.dmin = fit.dmin;
    pack_q4_k_scales(fit.scales, fit.mins, block.scales);
    pack_k_nibbles(fit.q, block.qs);
    std::memset(block.qh, 0, sizeof(block.qh));
    for (int e = 0; e < kQKK; ++e) {
      block.qh[e % 32] |= static_cast<uint8_t>((fit.q[e] >> 4) << (e / 32));
    }
    store_block(dst, i, block);
  }
}

// ---- symmetric types (q3_K, q6_K): x = d*scale*q, signed scales and levels

struct SymmetricKind {
  int group;
  int qmax;       // levels in [-qmax, qmax-1]
  int scale_max;  // scales in [-scale_max, scale_max-1]
};

struct SymmetricBlock {
  uint16_t d = 0;
  int scales[kMaxGroups] = {};
  int q[kQKK] = {};
};

float symmetric_group_error(const float* x, const float* w, int n, int qmax, float dl, int* q) {
  float error = 0.0f;
  for (int i = 0; i < n; ++i) {
    const int level = dl != 0.0f ? round_even_clamped(x[i] / dl, -qmax, qmax - 1) : 0;
    if (q != nullptr) q[i] = level;
    const float diff = dl * static_cast<float>(level) - x[i];
    error += w[i] * diff * diff;
  }
  return error;
}

SymmetricBlock encode_symmetric(const float* x, const float* importance,
                                const SymmetricKind& kind) {
  float w[kQKK];
  search_weights(x, importance, WeightRule::kSquare, kind.group, w);
  const int n_groups = kQKK / kind.group;
  float group_scales[kMaxGroups];
  float max_scale = 0.0f;  // the group scale of largest magnitude, sign kept
  for (int g = 0; g < n_groups; ++g) {
    group_scales[g] = fit_symmetric(x + g * kind.group, w + g * kind.group, kind.group, kind.qmax);
    if (std::fabs(group_scales[g]) > std::fabs(max_scale)) max_scale = group_scales[g];
  }
  SymmetricBlock block;
  if (max_scale == 0.0f) return block;
  // The largest group scale maps to -scale_max, the end of the range with one more step.
  const float inv_d = -static_cast<float>(kind.scale_max) / max_scale;
  block.d = fp32_to_fp16(1.0f / inv_d);
  const float d = fp16_to_fp32(block.d);
  for (int g = 0; g < n_groups; ++g) {
    const float* xg = x + g * kind.group;
    const float* wg = w + g * kind.group;
    const int scale0 =
        round_even_clamped(inv_d * group_scales[g], -kind.scale_max, kind.scale_max - 1);
    float best_error = INFINITY;
    for (int scale = std::max(scale0 - 1, -kind.scale_max);
         scale <= std::min(scale0 + 1, kind.scale_max - 1); ++scale) {
      const float error = symmetric_group_error(xg, wg, kind.group, kind.qmax,
                                                d * static_cast<float>(scale), nullptr);
      if (error < best_error || (scale == scale0 && !(best_error < error))) {
        best_error = error;
        block.scales[g] = scale;
      }
    }
    symmetric_group_error(xg, wg, kind.group, kind.qmax, d * static_cast<float>(block.scales[g]),
                          block.q + g * kind.group);
  }
  return block;
}

void quantize_q3_k(const float* src, uint8_t* dst, int64_t n_blocks, const float* importance) {
  for (int64_t i = 0; i < n_blocks; ++i, src += kQKK) {
    const SymmetricBlock fit =
        encode_symmetric(src, importance ? importance + i * kQKK : nullptr, {16, 4, 32});
    BlockQ3_K block;
    int stored[kQKK];
    for (int e = 0; e < kQKK; ++e) stored[e] = fit.q[e] + 4;
    pack_two_bit(stored, block.qs);
    std::memset(block.hmask, 0, sizeof(block.hmask));
    for (int e = 0; e < kQKK; ++e) {
      block.hmask[e % 32] |= static_cast<uint8_t>((stored[e] >> 2) << (e / 32));
    }
    pack_q3_k_scales(fit.scales, block.scales);
    block.d = fit.d;
    store_block(dst, i, block);
  }
}

void quantize_q6_k(const float* src, uint8_t* dst, int64_t n_blocks, const float* importance) {
  for (int64_t i = 0; i < n_blocks; ++i, src += kQKK) {
    const SymmetricBlock fit =
        encode_symmetric(src, importance ? importance + i * kQKK : nullptr, {16, 32, 128});
    BlockQ6_K block;
    std::memset(block.ql, 0, sizeof(block.ql));
    std::memset(block.qh, 0, sizeof(block.qh));
    for (int e = 0; e < kQKK; ++e) {
      const int stored = fit.q[e] + 32;
      const int h = e / 128, c = (e % 128) / 32, l = e % 32;
      block.ql[64 * h + 32 * (c % 2) + l] |=
          static_cast<uint8_t>((stored & 0x0F) << (c < 2 ? 0 : 4));
      block.qh[32 * h + l] |= static_cast<uint8_t>((stored >> 4) << (2 * c));
    }
    for (int g = 0; g < 16; ++g) block.scales[g] = static_cast<int8_t>(fit.scales[g]);
    block.d = fit.d;
    store_block(dst, i, block);
  }
}

// ---- q8_K: the activation format of K-quant dot products: float scale, 8-bit values and
// the sums of each 16 values. The extreme value maps to -127 as in ggml.
void quantize_q8_k(const float* src, uint8_t* dst, int64_t n_blocks, const float*) {
  for (int64_t i = 0; i < n_blocks; ++i, src += kQKK) {
    float amax = 0.0f;
    float max = 0.0f;
    for (int e = 0; e < kQKK; ++e) {
      if (std::fabs(src[e]) > amax) {
        amax = std::fabs(src[e]);
        max = src[e];
      }
    }
    BlockQ8_K block = {};
    if (amax != 0.0f) {
      const float inv_scale = -127.0f / max;
      for (int e = 0; e < kQKK; ++e) {
        block.qs[e] = static_cast<int8_t>(round_even_clamped(inv_scale * src[e], -128, 127));
      }
      block.d = 1.0f / inv_scale;
    }
    for (int g = 0; g < kQKK / 16; ++g) {
      int sum = 0;
      for (int e = 16 * g; e < 16 * (g + 1); ++e) sum += block.qs[e];
      block.bsums[g] = static_cast<int16_t>(sum);
    }
    store_block(dst, i, block);
  }
}

}  // namespace

TypeCodec k_quant_codec(TensorType type) {
  switch (type) {
    case TensorType::kQ2_K:
      return {dequantize_q2_k, quantize_q2_k};
    case TensorType::kQ3_K:
      return {dequantize_q3_k, quantize_q3_k};
    case TensorType::kQ4_K:
      return {dequantize_q4_k, quantize_q4_k};
    case TensorType::kQ5_K:
      return {dequantize_q5_k, quantize_q5_k};
    case TensorType::kQ6_K:
      return {dequantize_q6_k, quantize_q6_k};
    case TensorType::kQ8_K:
      return {dequantize_q8_k, quantize_q8_k};
    default:
      return {};
  }
}

}  // namespace edgelm::tensor::detail
