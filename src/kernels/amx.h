// Prompt-sized products over WeightLayout::kInterleaved16 weights on Intel AMX tiles (x86-64
// only; callers must have checked available()).
//
// Why BF16 and not AMX-INT8: q8_0 / q4_0 scale every 32-element block of every row separately, so
// an int8 tile product could span only one block and its 16 x 16 int32 sums would have to be
// stored and scaled before the next block — measured here, the tile stores and scaling took 3-4x
// the tile multiply itself, leaving AMX-INT8 barely ahead of AVX-512 VNNI. Instead the 16 rows of
// a weight group are widened, block scale applied, to BF16 in a per-thread scratch of
// 16 rows x cols (the whole matrix is never expanded), activations are rounded to BF16, and tile
// products accumulate in FP32 across the full row with nothing between them.
//
// Accuracy: each weight (q * d, exact in f32) and activation is rounded once to BF16 (relative
// error at most 2^-9 each), which keeps every output within the bound the int8 activation
// quantization of the VNNI path already allows (2^-8 of sum |w x| against 1/254 of
// sum |w| max|x_block|).
#pragma once

#include <cstdint>
#include <vector>

#include "edgelm/kernels.h"

namespace edgelm::kernels::amx {

// Batches of at least this many tokens go through AMX (one tile of tokens); fewer stay on the
// VNNI kernels, which need no weight conversion.
inline constexpr int64_t kTileTokens = 16;

// True when the CPU has AMX-TILE, AMX-BF16 and AVX512-BF16 and the kernel granted this process
// the tile register state (Linux asks programs to request it: arch_prctl ARCH_REQ_XCOMP_PERM).
bool available();

// One 64-byte line of BF16 values; tile operands are read from line-aligned memory.
struct alignas(64) Line {
  uint16_t bf16[32];
};

// Per call: x (n_tokens rows of cols floats, cols a multiple of 32) as BF16 tiles: for each tile
// of 16 tokens (the last padded with zeros), block by block, 16 rows of 32 values.
void tile_activations(const float* x, int64_t n_tokens, int64_t cols, std::vector<Line>& tiles);

// y[t * w.rows + r] for rows [row_begin, row_end) (whole groups) and tokens [0, n_tokens).
void interleaved_rows(const MatrixView& w, int64_t row_begin, int64_t row_end,
                      const std::vector<Line>& tiles, int64_t n_tokens, float* y);

}  // namespace edgelm::kernels::amx
