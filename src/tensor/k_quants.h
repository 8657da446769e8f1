// Shared pieces of the K-quant (256-element super-block) codecs.
#pragma once

#include <cstdint>

#include "tensor/blocks.h"

namespace edgelm::tensor::detail {

// q3_K: 16 signed 6-bit scales. Low nibbles: bytes 0..7 (scales 0..7 low, 8..15 high nibble);
// top 2 bits: byte 8 + i%4, bit pair i/4.
int q3_k_scale(const uint8_t packed[kKScaleBytes], int i);
void pack_q3_k_scales(const int scales[16], uint8_t packed[kKScaleBytes]);

// q4_K/q5_K: 8 unsigned 6-bit scales and 8 6-bit mins. Sub-blocks 0..3 use the low 6 bits of
// bytes 0..3 (scale) and 4..7 (min); sub-blocks 4..7 put their low 4 bits in bytes 8..11 and
// their top 2 bits in the spare top bits of bytes 0..7.
void q4_k_scale_min(const uint8_t packed[kKScaleBytes], int j, int* scale, int* min);
void pack_q4_k_scales(const int scales[8], const int mins[8], uint8_t packed[kKScaleBytes]);

void dequantize_q2_k(const uint8_t* src, float* dst, int64_t n_blocks);
void dequantize_q3_k(const uint8_t* src, float* dst, int64_t n_blocks);
void dequantize_q4_k(const uint8_t* src, float* dst, int64_t n_blocks);
void dequantize_q5_k(const uint8_t* src, float* dst, int64_t n_blocks);
void dequantize_q6_k(const uint8_t* src, float* dst, int64_t n_blocks);
void dequantize_q8_k(const uint8_t* src, float* dst, int64_t n_blocks);

}  // namespace edgelm::tensor::detail
