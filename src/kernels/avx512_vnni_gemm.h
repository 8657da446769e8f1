// Prompt-processing GEMM for q8_0 and q4_0 weights on AVX-512 VNNI (x86-64 only; callers must
// have checked avx512_vnni::cpu_has_avx512_vnni()).
//
// The row-major file layout puts one row's 32-weight block in a register, so every integer dot
// product must be reduced and scaled per block and row (three extra instructions per vpdpbusd).
// Here each group of 16 rows is first repacked, block by block, so that int32 lane i of a register
// holds 4 consecutive weights of row i: a block's 8 vpdpbusd then leave lane i with row i's whole
// block dot product, scaled once for all 16 rows. The repacking happens per call into a small
// per-thread buffer (files stay mapped as they are) and is paid back after a few tokens.
#pragma once

#include <cstdint>
#include <vector>

#include "edgelm/kernels.h"
#include "kernels/quantized_activations.h"

namespace edgelm::kernels::avx512_vnni {

// Fewest tokens for which gemm_rows beats the row-by-row kernels (measured on Sapphire Rapids).
inline constexpr int64_t kGemmMinTokens = 6;

// True when gemm_rows handles weights of `type`.
bool has_gemm(TensorType type);

// Activations in the form gemm_rows reads, prepared once per call from the quantized ones.
struct GemmActivations {
  std::vector<uint8_t> biased;  // q8_0: each int8 + 128 (vpdpbusd multiplies u8 by s8)
  std::vector<int32_t> start;   // per block: the integer dot's offset (q4_0: -8 * sum of qs)
};

void prepare_gemm(TensorType type, const QuantizedActivations& xq, GemmActivations& out);

// y[t * w.rows + r] for rows [row_begin, row_end) and every token t < xq's token count.
void gemm_rows(const MatrixView& w, int64_t row_begin, int64_t row_end,
               const QuantizedActivations& xq, const GemmActivations& xg, float* y);

}  // namespace edgelm::kernels::avx512_vnni
