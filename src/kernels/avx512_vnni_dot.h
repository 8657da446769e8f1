// Hand-written AVX-512 VNNI row x token-tile products for q4_0 and q8_0 (1-8 tokens), where
// Highway 1.0.3 cannot emit the 512-bit vpdpbusd. Two to four 32-weight blocks fill one 512-bit
// register, per-block scales are converted 16 at a time and the sum is reduced once per row. x86-64
// only; callers must have checked cpu_has_avx512_vnni().
#pragma once

#include <cstdint>
#include <vector>

#include "edgelm/tensor_type.h"
#include "kernels/quantized_activations.h"

namespace edgelm::kernels::avx512_vnni {

bool cpu_has_avx512_vnni();

// True when row_tile handles weights of `type` for tiles of n_tokens (1..8) tokens.
bool has_row_tile(TensorType type, int n_tokens);

// Per-call preparation of every token of xq for row_tile (q4_0 reorders the activation bytes to
// match its nibble layout, q8_0 offsets them to unsigned), into a buffer the caller reuses.
void prepare(TensorType type, const QuantizedActivations& xq, std::vector<int8_t>& reordered);

// y[t * y_stride] = sum over the row of weight * activation of token token0 + t, t < n_tokens,
// after prepare().
void row_tile(TensorType type, int n_tokens, const uint8_t* row, int64_t n_blocks,
              const QuantizedActivations& xq, const std::vector<int8_t>& reordered, int64_t token0,
              float* y, int64_t y_stride);

}  // namespace edgelm::kernels::avx512_vnni
