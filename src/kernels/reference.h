// Scalar reference kernels: the readable definition of every kernel's numerics. The SIMD paths
// are tested against these, and EDGELM_CPU=scalar runs them.
#pragma once

#include <cstdint>

#include "edgelm/kernels.h"

namespace edgelm::kernels::reference {

bool matmul(const MatrixView& w, const float* x, int64_t n_tokens, float* y, ThreadPool* pool);
void get_row(const MatrixView& w, int64_t row, float* dst);
void rms_norm(const float* x, const float* weight, int64_t n, float eps, float* out);
void softmax(float* x, int64_t n);
void rope(float* x, int n_heads, int head_dim, int n_rot, int32_t pos, float freq_base,
          float freq_scale, const float* freq_factors, RopeStyle style);
void rope_angles(int n_rot, int32_t pos, float freq_base, float freq_scale,
                 const float* freq_factors, float* cos_sin);
void rope_rotate(float* x, int n_heads, int head_dim, int n_rot, const float* cos_sin,
                 RopeStyle style);
void silu_mul(float* gate, const float* up, int64_t n);
void gelu_mul(float* gate, const float* up, int64_t n);
void attention(const AttentionParams& p, const float* q, int64_t n_tokens, int32_t pos0,
               const float* k, const float* v, float* out, ThreadPool* pool);
void attention_f16(const AttentionParams& p, const float* q, int64_t n_tokens, int32_t pos0,
                   const uint16_t* k, const uint16_t* v, float* out, ThreadPool* pool);
void attention_q8_0(const AttentionParams& p, const float* q, int64_t n_tokens, int32_t pos0,
                    const uint8_t* k, const uint8_t* v, float* out, ThreadPool* pool);
void to_f16(const float* src, uint16_t* dst, int64_t n);

// First position a query at `pos` may attend to (sliding window), shared by every path.
inline int32_t first_visible_position(int32_t pos, int32_t window) {
  return window > 0 && pos - window + 1 > 0 ? pos - window + 1 : 0;
}

// GGUF q8_0 blocks: an f16 scale d, then 32 int8 quants q; element value = d * q.
constexpr int64_t kQ8_0BlockValues = 32;
constexpr int64_t kQ8_0BlockBytes = 2 + kQ8_0BlockValues;

}  // namespace edgelm::kernels::reference
