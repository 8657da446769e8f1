// Matrix products over WeightLayout::kInterleaved16 weights on AVX-512 VNNI (x86-64 only; callers
// must have checked cpu_has_avx512_vnni()). Lane i of every vpdpbusd accumulates row i of a
// 16-row group, so a block's 8 instructions leave 16 whole block dot products that are scaled in
// one step — no per-block reductions, shuffles or gathers, for one token (decode) or many.
#pragma once

#include <cstdint>
#include <vector>

#include "edgelm/kernels.h"
#include "kernels/quantized_activations.h"

namespace edgelm::kernels::avx512_vnni {

// Per call: the integer sum of each activation block (the layouts' offsets are multiples of it).
void prepare_interleaved(const QuantizedActivations& xq, std::vector<int32_t>& block_sums);

// y[t * w.rows + r] for rows [row_begin, row_end) (whole groups) and every token of xq.
void interleaved_rows(const MatrixView& w, int64_t row_begin, int64_t row_end,
                      const QuantizedActivations& xq, const std::vector<int32_t>& block_sums,
                      float* y);

}  // namespace edgelm::kernels::avx512_vnni
