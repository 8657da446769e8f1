// The 32-element block types q4_0, q4_1, q5_0, q5_1, q8_0, q8_1. Quantizers follow ggml's
// reference rules (the same scale choice, the same rounding) so our files match llama.cpp's.
// ggml writes `x*id + 8.5f` and llama.cpp builds contract it into a fused multiply-add; std::fma
// gives that single rounding on every machine, so the truncated level matches bit for bit.
// With an importance vector (from an importance matrix) q4_0..q5_1 instead search the scale (and
// offset) that minimises the importance-weighted rounding error, like the K-quants.
#include <cmath>
#include <cstdint>
#include <cstring>

#include "edgelm/quant.h"
#include "tensor/blocks.h"
#include "tensor/k_quant_search.h"
#include "tensor/rounding.h"

namespace edgelm::tensor::detail {
namespace {

constexpr int kHalf = kQK / 2;

// The element with the largest magnitude, sign kept (the first one on ties).
float signed_absmax(const float* x, int n) {
  float amax = 0.0f;
  float max = 0.0f;
  for (int j = 0; j < n; ++j) {
    if (amax < std::fabs(x[j])) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  }
  return max;
}

void min_max(const float* x, int n, float* min, float* max) {
  *min = x[0];
  *max = x[0];
  for (int j = 1; j < n; ++j) {
    if (x[j] < *min) *min = x[j];
    if (x[j] > *max) *max = x[j];
  }
}

float inverse_or_zero(float d) {
  return d != 0.0f ? 1.0f / d : 0.0f;
}

// The search weights for one block: imp * sqrt(sigma2 + x^2), as for the K-quants (the caller's
// per-input weight, still leaning towards large values).
void block_weights(const float* x, const float* importance, float w[kQK]) {
  float sum_x2 = 0.0f;
  for (int j = 0; j < kQK; ++j) sum_x2 += x[j] * x[j];
  const float sigma2 = sum_x2 / kQK;
  for (int j = 0; j < kQK; ++j) w[j] = importance[j] * std::sqrt(sigma2 + x[j] * x[j]);
}

// Levels q in [0, 2*half) for x ~ d * (q - half), d from the weighted symmetric search.
float search_symmetric_levels(const float* x, const float* importance, int half, int q[kQK]) {
  float w[kQK];
  block_weights(x, importance, w);
  const float d = fit_symmetric(x, w, kQK, half);
  const float id = inverse_or_zero(d);
  for (int j = 0; j < kQK; ++j) q[j] = round_even_clamped(x[j] * id, -half, half - 1) + half;
  return d;
}

// Levels q in [0, qmax] for x ~ d * q + m, from the weighted affine search (ggml's imatrix
// quantizers use the same fan of inverse scales).
void search_affine_levels(const float* x, const float* importance, int qmax, float* d, float* m,
                          int q[kQK]) {
  float w[kQK];
  block_weights(x, importance, w);
  const AffineFit fit = fit_affine(x, w, kQK, {qmax, -0.9f, 0.05f, 36});
  *d = fit.scale;
  *m = -fit.offset;
  const float id = inverse_or_zero(fit.scale);
  for (int j = 0; j < kQK; ++j) q[j] = round_even_clamped((x[j] - *m) * id, 0, qmax);
}

uint32_t load_u32(const uint8_t bytes[4]) {
  uint32_t value;
  std::memcpy(&value, bytes, 4);
  return value;
}

// ---- q4_0: x = d * (q - 8), q in 0..15

void dequantize_q4_0(const uint8_t* src, float* dst, int64_t n_blocks) {
  for (int64_t i = 0; i < n_blocks; ++i, dst += kQK) {
    const auto block = load_block<BlockQ4_0>(src, i);
    const float d = fp16_to_fp32(block.d);
    for (int j = 0; j < kHalf; ++j) {
      dst[j] = static_cast<float>((block.qs[j] & 0x0F) - 8) * d;
      dst[j + kHalf] = static_cast<float>((block.qs[j] >> 4) - 8) * d;
    }
  }
}

// The extreme element maps exactly to -8 so the sign with more room gets the largest value.
void quantize_q4_0(const float* src, uint8_t* dst, int64_t n_blocks, const float* importance) {
  for (int64_t i = 0; i < n_blocks; ++i, src += kQK) {
    if (importance != nullptr) {
      int q[kQK];
      BlockQ4_0 block;
      block.d = fp32_to_fp16(search_symmetric_levels(src, importance + i * kQK, 8, q));
      for (int j = 0; j < kHalf; ++j)
        block.qs[j] = static_cast<uint8_t>(q[j] | (q[j + kHalf] << 4));
      store_block(dst, i, block);
      continue;
    }
    const float d = signed_absmax(src, kQK) / -8.0f;
    const float id = inverse_or_zero(d);
    BlockQ4_0 block;
    block.d = fp32_to_fp16(d);
    for (int j = 0; j < kHalf; ++j) {
      const int lo = truncate_clamped(std::fma(src[j], id, 8.5f), 0, 15);
      const int hi = truncate_clamped(std::fma(src[j + kHalf], id, 8.5f), 0, 15);
      block.qs[j] = static_cast<uint8_t>(lo | (hi << 4));
    }
    store_block(dst, i, block);
  }
}

// ---- q4_1: x = d * q + m, q in 0..15

void dequantize_q4_1(const uint8_t* src, float* dst, int64_t n_blocks) {
  for (int64_t i = 0; i < n_blocks; ++i, dst += kQK) {
    const auto block = load_block<BlockQ4_1>(src, i);
    const float d = fp16_to_fp32(block.d);
    const float m = fp16_to_fp32(block.m);
    for (int j = 0; j < kHalf; ++j) {
      dst[j] = static_cast<float>(block.qs[j] & 0x0F) * d + m;
      dst[j + kHalf] = static_cast<float>(block.qs[j] >> 4) * d + m;
    }
  }
}

void quantize_q4_1(const float* src, uint8_t* dst, int64_t n_blocks, const float* importance) {
  for (int64_t i = 0; i < n_blocks; ++i, src += kQK) {
    if (importance != nullptr) {
      int q[kQK];
      float d, m;
      search_affine_levels(src, importance + i * kQK, 15, &d, &m, q);
      BlockQ4_1 block;
      block.d = fp32_to_fp16(d);
      block.m = fp32_to_fp16(m);
      for (int j = 0; j < kHalf; ++j)
        block.qs[j] = static_cast<uint8_t>(q[j] | (q[j + kHalf] << 4));
      store_block(dst, i, block);
      continue;
    }
    float min, max;
    min_max(src, kQK, &min, &max);
    const float d = (max - min) / 15.0f;
    const float id = inverse_or_zero(d);
    BlockQ4_1 block;
    block.d = fp32_to_fp16(d);
    block.m = fp32_to_fp16(min);
    for (int j = 0; j < kHalf; ++j) {
      const int lo = truncate_clamped(std::fma(src[j] - min, id, 0.5f), 0, 15);
      const int hi = truncate_clamped(std::fma(src[j + kHalf] - min, id, 0.5f), 0, 15);
      block.qs[j] = static_cast<uint8_t>(lo | (hi << 4));
    }
    store_block(dst, i, block);
  }
}

// ---- q5_0: x = d * (q - 16), q in 0..31; the 5th bits live in qh

void dequantize_q5_0(const uint8_t* src, float* dst, int64_t n_blocks) {
  for (int64_t i = 0; i < n_blocks; ++i, dst += kQK) {
    const auto block = load_block<BlockQ5_0>(src, i);
    const float d = fp16_to_fp32(block.d);
    const uint32_t qh = load_u32(block.qh);
    for (int j = 0; j < kHalf; ++j) {
      const int lo = (block.qs[j] & 0x0F) | static_cast<int>(((qh >> j) & 1u) << 4);
      const int hi = (block.qs[j] >> 4) | static_cast<int>(((qh >> (j + kHalf)) & 1u) << 4);
      dst[j] = static_cast<float>(lo - 16) * d;
      dst[j + kHalf] = static_cast<float>(hi - 16) * d;
    }
  }
}

void pack_5bit(const int* q, uint8_t qs[kHalf], uint8_t qh_bytes[4]) {
  uint32_t qh = 0;
  for (int j = 0; j < kHalf; ++j) {
    qs[j] = static_cast<uint8_t>((q[j] & 0x0F) | ((q[j + kHalf] & 0x0F) << 4));
    qh |= static_cast<uint32_t>(q[j] >> 4) << j;
    qh |= static_cast<uint32_t>(q[j + kHalf] >> 4) << (j + kHalf);
  }
  std::memcpy(qh_bytes, &qh, 4);
}

void quantize_q5_0(const float* src, uint8_t* dst, int64_t n_blocks, const float* importance) {
  for (int64_t i = 0; i < n_blocks; ++i, src += kQK) {
    int q[kQK];
    float d;
    if (importance != nullptr) {
      d = search_symmetric_levels(src, importance + i * kQK, 16, q);
    } else {
      d = signed_absmax(src, kQK) / -16.0f;
      const float id = inverse_or_zero(d);
      for (int j = 0; j < kQK; ++j) q[j] = truncate_clamped(std::fma(src[j], id, 16.5f), 0, 31);
    }
    BlockQ5_0 block;
    block.d = fp32_to_fp16(d);
    pack_5bit(q, block.qs, block.qh);
    store_block(dst, i, block);
  }
}

// ---- q5_1: x = d * q + m, q in 0..31

void dequantize_q5_1(const uint8_t* src, float* dst, int64_t n_blocks) {
  for (int64_t i = 0; i < n_blocks; ++i, dst += kQK) {
    const auto block = load_block<BlockQ5_1>(src, i);
    const float d = fp16_to_fp32(block.d);
    const float m = fp16_to_fp32(block.m);
    const uint32_t qh = load_u32(block.qh);
    for (int j = 0; j < kHalf; ++j) {
      const int lo = (block.qs[j] & 0x0F) | static_cast<int>(((qh >> j) & 1u) << 4);
      const int hi = (block.qs[j] >> 4) | static_cast<int>(((qh >> (j + kHalf)) & 1u) << 4);
      dst[j] = static_cast<float>(lo) * d + m;
      dst[j + kHalf] = static_cast<float>(hi) * d + m;
    }
  }
}

void quantize_q5_1(const float* src, uint8_t* dst, int64_t n_blocks, const float* importance) {
  for (int64_t i = 0; i < n_blocks; ++i, src += kQK) {
    int q[kQK];
    float d, min;
    if (importance != nullptr) {
      search_affine_levels(src, importance + i * kQK, 31, &d, &min, q);
    } else {
      float max;
      min_max(src, kQK, &min, &max);
      d = (max - min) / 31.0f;
      const float id = inverse_or_zero(d);
      for (int j = 0; j < kQK; ++j)
        q[j] = truncate_clamped(std::fma(src[j] - min, id, 0.5f), 0, 31);
    }
    BlockQ5_1 block;
    block.d = fp32_to_fp16(d);
    block.m = fp32_to_fp16(min);
    pack_5bit(q, block.qs, block.qh);
    store_block(dst, i, block);
  }
}

// ---- q8_0 / q8_1: x = d * q, q in -127..127 (q8_1 also stores d * sum(q))

void dequantize_q8_0(const uint8_t* src, float* dst, int64_t n_blocks) {
  for (int64_t i = 0; i < n_blocks; ++i, dst += kQK) {
    const auto block = load_block<BlockQ8_0>(src, i);
    const float d = fp16_to_fp32(block.d);
    for (int j = 0; j < kQK; ++j) dst[j] = static_cast<float>(block.qs[j]) * d;
  }
}

// Returns the (unrounded) scale d and writes round(x / d) to qs.
float quantize_8bit(const float* x, int8_t qs[kQK]) {
  float amax = 0.0f;
  for (int j = 0; j < kQK; ++j) amax = std::fmax(amax, std::fabs(x[j]));
  const float d = amax / 127.0f;
  const float id = inverse_or_zero(d);
  for (int j = 0; j < kQK; ++j)
    qs[j] = static_cast<int8_t>(round_away_clamped(x[j] * id, -127, 127));
  return d;
}

void quantize_q8_0(const float* src, uint8_t* dst, int64_t n_blocks, const float*) {
  for (int64_t i = 0; i < n_blocks; ++i, src += kQK) {
    BlockQ8_0 block;
    block.d = fp32_to_fp16(quantize_8bit(src, block.qs));
    store_block(dst, i, block);
  }
}

void dequantize_q8_1(const uint8_t* src, float* dst, int64_t n_blocks) {
  for (int64_t i = 0; i < n_blocks; ++i, dst += kQK) {
    const auto block = load_block<BlockQ8_1>(src, i);
    const float d = fp16_to_fp32(block.d);
    for (int j = 0; j < kQK; ++j) dst[j] = static_cast<float>(block.qs[j]) * d;
  }
}

void quantize_q8_1(const float* src, uint8_t* dst, int64_t n_blocks, const float*) {
  for (int64_t i = 0; i < n_blocks; ++i, src += kQK) {
    BlockQ8_1 block;
    const float d = quantize_8bit(src, block.qs);
    int sum = 0;
    for (int j = 0; j < kQK; ++j) sum += block.qs[j];
    block.d = fp32_to_fp16(d);
    block.s = fp32_to_fp16(static_cast<float>(sum) * d);
    store_block(dst, i, block);
  }
}

}  // namespace

TypeCodec legacy_codec(TensorType type) {
  switch (type) {
    case TensorType::kQ4_0:
      return {dequantize_q4_0, quantize_q4_0};
    case TensorType::kQ4_1:
      return {dequantize_q4_1, quantize_q4_1};
    case TensorType::kQ5_0:
      return {dequantize_q5_0, quantize_q5_0};
    case TensorType::kQ5_1:
      return {dequantize_q5_1, quantize_q5_1};
    case TensorType::kQ8_0:
      return {dequantize_q8_0, quantize_q8_0};
    case TensorType::kQ8_1:
      return {dequantize_q8_1, quantize_q8_1};
    default:
      return {};
  }
}

}  // namespace edgelm::tensor::detail
