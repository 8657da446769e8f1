// WeightLayout::kInterleaved16: where each byte of a repacked q8_0 / q4_0 matrix lives, and the
// portable conversions to and from the GGUF row-major blocks.
//
// A group of 16 rows with n_blocks blocks per row takes n_blocks * (kQuantBytes + 32) bytes (plus
// padding to a multiple of 64): first
// every block's quants (block b at b * kQuantBytes), then every block's 16 f16 scales (block b at
// n_blocks * kQuantBytes + b * 32). Within a block's quants, 64-byte register k holds in its
// 32-bit lane i the 4 quant bytes of row i that a row-major block keeps at 4k .. 4k+3 (q8_0: 8
// registers, each byte + 128 so that vpdpbusd can take it as the unsigned operand; q4_0: 4
// registers of nibbles, the low ones elements 4k.., the high ones elements 16+4k..).
#pragma once

#include <cstdint>

#include "edgelm/kernels.h"

namespace edgelm::kernels::interleaved {

inline constexpr int kGroupRows = 16;

// Quant bytes of one block of a group: 16 rows x 32 (q8_0) or 16 (q4_0) bytes.
constexpr int64_t quant_bytes(TensorType type) {
  return type == TensorType::kQ8_0 ? 512 : 256;
}
inline constexpr int64_t kScaleBytes = 32;  // 16 f16 scales per block of a group

// Rounded up to whole 64-byte lines, so that every group's registers load aligned.
constexpr int64_t group_bytes(TensorType type, int64_t n_blocks) {
  return (n_blocks * (quant_bytes(type) + kScaleBytes) + 63) / 64 * 64;
}

// True when the interleaved layout can hold w: q8_0 or q4_0, whole groups of rows.
bool can_hold(const MatrixView& w);

// Writes groups [group_begin, group_end) of w (row-major) in the interleaved layout to dst, which
// holds the whole matrix (rows / 16 * group_bytes bytes).
void pack(const MatrixView& w, int64_t group_begin, int64_t group_end, uint8_t* dst);

// Writes row `row` of an interleaved w back in its row-major blocks (w.row_bytes bytes).
void unpack_row(const MatrixView& w, int64_t row, uint8_t* dst);

}  // namespace edgelm::kernels::interleaved
