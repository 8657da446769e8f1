#include "kernels/reference.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "edgelm/quant.h"
#include "kernels/interleaved.h"
#include "kernels/kernel_set.h"
#include "kernels/parallel.h"

namespace edgelm::kernels::reference {
namespace {

// Rows per scheduling granule: 16 floats = one 64-byte cache line of y per token.
constexpr int64_t kRowGranule = 16;

}  // namespace

bool matmul(const MatrixView& w, const float* x, int64_t n_tokens, float* y, ThreadPool* pool) {
  if (!supports_type(w.type)) {
    for (int64_t i = 0; i < n_tokens * w.rows; ++i) y[i] = std::numeric_limits<float>::quiet_NaN();
    return true;
  }
  parallel_for(pool, w.rows, kRowGranule, [&](int64_t row_begin, int64_t row_end) {
    std::vector<float> row(static_cast<size_t>(w.cols));
    for (int64_t r = row_begin; r < row_end; ++r) {
      reference::get_row(w, r, row.data());
      for (int64_t t = 0; t < n_tokens; ++t) {
        const float* xt = x + t * w.cols;
        double sum = 0.0;
        for (int64_t c = 0; c < w.cols; ++c) sum += static_cast<double>(row[c]) * xt[c];
        y[t * w.rows + r] = static_cast<float>(sum);
      }
    }
  });
  return true;
}

void get_row(const MatrixView& w, int64_t row, float* dst) {
  const uint8_t* blocks = w.data + row * w.row_bytes;
  std::vector<uint8_t> unpacked;
  if (w.layout == WeightLayout::kInterleaved16) {
    unpacked.resize(w.row_bytes);
    interleaved::unpack_row(w, row, unpacked.data());
    blocks = unpacked.data();
  }
  // Cannot fail for a supported type: cols is a whole number of blocks (MatrixView).
  if (!tensor::dequantize_row(w.type, blocks, dst, w.cols)) {
    for (int64_t c = 0; c < w.cols; ++c) dst[c] = std::numeric_limits<float>::quiet_NaN();
  }
}

void rms_norm(const float* x, const float* weight, int64_t n, float eps, float* out) {
  double sum_squares = 0.0;
  for (int64_t i = 0; i < n; ++i) sum_squares += static_cast<double>(x[i]) * x[i];
  const float inv_rms = static_cast<float>(1.0 / std::sqrt(sum_squares / n + eps));
  for (int64_t i = 0; i < n; ++i) out[i] = x[i] * inv_rms * (weight ? weight[i] : 1.0f);
}

void softmax(float* x, int64_t n) {
  float max_value = -std::numeric_limits<float>::infinity();
  for (int64_t i = 0; i < n; ++i) max_value = std::max(max_value, x[i]);
  if (max_value == -std::numeric_limits<float>::infinity()) {
    // Everything masked: a uniform distribution is the limit and avoids NaN from inf - inf.
    for (int64_t i = 0; i < n; ++i) x[i] = 1.0f / static_cast<float>(n);
    return;
  }
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - max_value);
    sum += x[i];
  }
  const float inv_sum = static_cast<float>(1.0 / sum);
  for (int64_t i = 0; i < n; ++i) x[i] *= inv_sum;
}

void rope_angles(int n_rot, int32_t pos, float freq_base, float freq_scale,
                 const float* freq_factors, float* cos_sin) {
  const int half = n_rot / 2;
  for (int i = 0; i < half; ++i) {
    const double inv_freq = std::pow(static_cast<double>(freq_base), -2.0 * i / n_rot);
    const double factor = freq_factors ? freq_factors[i] : 1.0;
    const double angle = static_cast<double>(pos) * freq_scale * inv_freq / factor;
    cos_sin[i] = static_cast<float>(std::cos(angle));
    cos_sin[half + i] = static_cast<float>(std::sin(angle));
  }
}

void rope_rotate(float* x, int n_heads, int head_dim, int n_rot, const float* cos_sin,
                 RopeStyle style) {
  const int half = n_rot / 2;
  for (int h = 0; h < n_heads; ++h) {
    float* head = x + static_cast<int64_t>(h) * head_dim;
    for (int i = 0; i < half; ++i) {
      const float cos_a = cos_sin[i];
      const float sin_a = cos_sin[half + i];
      float& a = style == RopeStyle::kNorm ? head[2 * i] : head[i];
      float& b = style == RopeStyle::kNorm ? head[2 * i + 1] : head[i + half];
      const float a0 = a;
      const float b0 = b;
      a = a0 * cos_a - b0 * sin_a;
      b = a0 * sin_a + b0 * cos_a;
    }
  }
}

void rope(float* x, int n_heads, int head_dim, int n_rot, int32_t pos, float freq_base,
          float freq_scale, const float* freq_factors, RopeStyle style) {
  std::vector<float> cos_sin(static_cast<size_t>(std::max(n_rot, 0)));
  reference::rope_angles(n_rot, pos, freq_base, freq_scale, freq_factors, cos_sin.data());
  reference::rope_rotate(x, n_heads, head_dim, n_rot, cos_sin.data(), style);
}

void silu_mul(float* gate, const float* up, int64_t n) {
  for (int64_t i = 0; i < n; ++i) gate[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

void gelu_mul(float* gate, const float* up, int64_t n) {
  const float sqrt_2_over_pi = 0.7978845608028654f;
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    const float inner = sqrt_2_over_pi * (g + 0.044715f * g * g * g);
    gate[i] = 0.5f * g * (1.0f + std::tanh(inner)) * up[i];
  }
}

namespace {

// A q8_0 cache addressed like a float one, in elements: `+ n` skips n / 32 blocks. Attention only
// forms offsets that are multiples of 32 (positions times rows of heads, head_dim % 32 == 0).
struct Q8_0Cursor {
  const uint8_t* blocks;

  Q8_0Cursor operator+(int64_t n) const {
    return {blocks + n / kQ8_0BlockValues * kQ8_0BlockBytes};
  }
  // The f16 scale of block b, widened.
  float scale(int64_t b) const {
    uint16_t d;
    std::memcpy(&d, blocks + b * kQ8_0BlockBytes, sizeof(d));
    return tensor::fp16_to_fp32(d);
  }
  // The 32 quants of block b.
  const int8_t* quants(int64_t b) const {
    return reinterpret_cast<const int8_t*>(blocks + b * kQ8_0BlockBytes + 2);
  }
  // Element i as tensor::dequantize_row decodes it.
  float at(int64_t i) const {
    const int64_t b = i / kQ8_0BlockValues;
    return static_cast<float>(quants(b)[i % kQ8_0BlockValues]) * scale(b);
  }
};

// Element i of a cache as a float, whatever the cache's element type.
float load_cached(const float* x, int64_t i) {
  return x[i];
}
float load_cached(const uint16_t* x, int64_t i) {
  return tensor::fp16_to_fp32(x[i]);
}
float load_cached(Q8_0Cursor x, int64_t i) {
  return x.at(i);
}

// The one definition of attention for every cache element type: each key and value element is
// read as a float (load_cached), then the arithmetic is the same. Cache is a pointer or cursor
// addressed in elements.
template <class Cache>
void attention_over(const AttentionParams& p, const float* q, int64_t n_tokens, int32_t pos0,
                    Cache k, Cache v, float* out, ThreadPool* pool) {
  const int group = p.n_head / p.n_head_kv;  // query heads sharing one kv head
  const int64_t kv_row = static_cast<int64_t>(p.n_head_kv) * p.head_dim;
  const int64_t q_row = static_cast<int64_t>(p.n_head) * p.head_dim;
  parallel_for(pool, n_tokens * p.n_head, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> scores(static_cast<size_t>(pos0 + n_tokens));
    for (int64_t item = begin; item < end; ++item) {
      const int64_t t = item / p.n_head;
      const int h = static_cast<int>(item % p.n_head);
      const int64_t kv_offset = static_cast<int64_t>(h / group) * p.head_dim;
      const int32_t pos = pos0 + static_cast<int32_t>(t);
      const int32_t first = first_visible_position(pos, p.window);
      const float* qh = q + t * q_row + static_cast<int64_t>(h) * p.head_dim;
      const int n_visible = pos - first + 1;
      for (int j = 0; j < n_visible; ++j) {
        const Cache kj = k + (first + j) * kv_row + kv_offset;
        double dot = 0.0;
        for (int d = 0; d < p.head_dim; ++d) {
          dot += static_cast<double>(qh[d]) * load_cached(kj, d);
        }
        float s = static_cast<float>(dot) * p.scale;
        if (p.softcap > 0.0f) s = p.softcap * std::tanh(s / p.softcap);
        scores[j] = s;
      }
      softmax(scores.data(), n_visible);
      float* oh = out + t * q_row + static_cast<int64_t>(h) * p.head_dim;
      for (int d = 0; d < p.head_dim; ++d) {
        double acc = 0.0;
        for (int j = 0; j < n_visible; ++j) {
          acc +=
              static_cast<double>(scores[j]) * load_cached(v + (first + j) * kv_row + kv_offset, d);
        }
        oh[d] = static_cast<float>(acc);
      }
    }
  });
}

}  // namespace

void attention(const AttentionParams& p, const float* q, int64_t n_tokens, int32_t pos0,
               const float* k, const float* v, float* out, ThreadPool* pool) {
  attention_over(p, q, n_tokens, pos0, k, v, out, pool);
}

void attention_f16(const AttentionParams& p, const float* q, int64_t n_tokens, int32_t pos0,
                   const uint16_t* k, const uint16_t* v, float* out, ThreadPool* pool) {
  attention_over(p, q, n_tokens, pos0, k, v, out, pool);
}

void attention_q8_0(const AttentionParams& p, const float* q, int64_t n_tokens, int32_t pos0,
                    const uint8_t* k, const uint8_t* v, float* out, ThreadPool* pool) {
  attention_over(p, q, n_tokens, pos0, Q8_0Cursor{k}, Q8_0Cursor{v}, out, pool);
}

void to_f16(const float* src, uint16_t* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = tensor::fp32_to_fp16(src[i]);
}

}  // namespace edgelm::kernels::reference

namespace edgelm::kernels {

const KernelSet& reference_kernel_set() {
  static const KernelSet set{"scalar",
                             reference::matmul,
                             reference::rms_norm,
                             reference::softmax,
                             reference::silu_mul,
                             reference::gelu_mul,
                             reference::attention,
                             reference::attention_f16,
                             reference::attention_q8_0,
                             reference::to_f16};
  return set;
}

}  // namespace edgelm::kernels
