// ggml block layouts (ggml-common.h), byte for byte. Fields are little-endian on disk; the
// static_asserts below pin every struct to the size GGUF files use.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>

#include "edgelm/tensor_type.h"

namespace edgelm::tensor::detail {

static_assert(std::endian::native == std::endian::little,
              "block layouts assume a little-endian host");

inline constexpr int kQK = 32;           // elements per block of the "legacy" types q4_0 .. q8_1
inline constexpr int kQKK = 256;         // elements per super-block of the K and ternary types
inline constexpr int kKScaleBytes = 12;  // packed 6-bit scales and mins of q4_K/q5_K (and q3_K)

// Half-precision values are stored as raw bits; fp16_to_fp32 decodes them.
struct BlockQ4_0 {
  uint16_t d;
  uint8_t qs[kQK / 2];  // element j in the low nibble of qs[j], element j+16 in the high nibble
};
struct BlockQ4_1 {
  uint16_t d;
  uint16_t m;
  uint8_t qs[kQK / 2];
};
struct BlockQ5_0 {
  uint16_t d;
  uint8_t qh[4];  // bit j (little-endian uint32) = 5th bit of element j
  uint8_t qs[kQK / 2];
};
struct BlockQ5_1 {
  uint16_t d;
  uint16_t m;
  uint8_t qh[4];
  uint8_t qs[kQK / 2];
};
struct BlockQ8_0 {
  uint16_t d;
  int8_t qs[kQK];
};
struct BlockQ8_1 {
  uint16_t d;
  uint16_t s;  // d * sum(qs), used by dot products
  int8_t qs[kQK];
};
struct BlockQ2_K {
  uint8_t scales[kQKK / 16];  // per 16 elements: scale in the low nibble, min in the high nibble
  uint8_t qs[kQKK / 4];
  uint16_t d;
  uint16_t dmin;
};
struct BlockQ3_K {
  uint8_t hmask[kQKK / 8];       // 3rd bit of each element
  uint8_t qs[kQKK / 4];          // low 2 bits
  uint8_t scales[kKScaleBytes];  // 16 signed 6-bit scales, biased by 32
  uint16_t d;
};
struct BlockQ4_K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[kKScaleBytes];  // 8 scales and 8 mins, 6 bits each
  uint8_t qs[kQKK / 2];
};
struct BlockQ5_K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[kKScaleBytes];
  uint8_t qh[kQKK / 8];
  uint8_t qs[kQKK / 2];
};
struct BlockQ6_K {
  uint8_t ql[kQKK / 2];  // low 4 bits
  uint8_t qh[kQKK / 4];  // high 2 bits
  int8_t scales[kQKK / 16];
  uint16_t d;
};
struct BlockQ8_K {
  float d;
  int8_t qs[kQKK];
  int16_t bsums[kQKK / 16];  // sum of each group of 16 qs
};
struct BlockTQ1_0 {
  uint8_t qs[(kQKK - 4 * kQKK / 64) / 5];  // 5 trits per byte (240 elements)
  uint8_t qh[kQKK / 64];                   // 4 trits per byte (16 elements)
  uint16_t d;
};
struct BlockTQ2_0 {
  uint8_t qs[kQKK / 4];  // 2 bits per element, value 0..2 meaning -1..1
  uint16_t d;
};

static_assert(sizeof(BlockQ4_0) == 18 && sizeof(BlockQ4_1) == 20 && sizeof(BlockQ5_0) == 22 &&
              sizeof(BlockQ5_1) == 24 && sizeof(BlockQ8_0) == 34 && sizeof(BlockQ8_1) == 36);
static_assert(sizeof(BlockQ2_K) == 84 && sizeof(BlockQ3_K) == 110 && sizeof(BlockQ4_K) == 144 &&
              sizeof(BlockQ5_K) == 176 && sizeof(BlockQ6_K) == 210 && sizeof(BlockQ8_K) == 292);
static_assert(sizeof(BlockTQ1_0) == 54 && sizeof(BlockTQ2_0) == 66);

// Blocks in files are only byte-aligned in general, so they are copied, never cast in place.
template <class Block>
Block load_block(const uint8_t* src, int64_t index) {
  Block block;
  std::memcpy(&block, src + index * static_cast<int64_t>(sizeof(Block)), sizeof(Block));
  return block;
}

template <class Block>
void store_block(uint8_t* dst, int64_t index, const Block& block) {
  std::memcpy(dst + index * static_cast<int64_t>(sizeof(Block)), &block, sizeof(Block));
}

// One (de)quantizer per type; they work on whole blocks and never fail.
using DequantizeFn = void (*)(const uint8_t* src, float* dst, int64_t n_blocks);
using QuantizeFn = void (*)(const float* src, uint8_t* dst, int64_t n_blocks,
                            const float* importance);

struct TypeCodec {
  DequantizeFn dequantize = nullptr;
  QuantizeFn quantize = nullptr;
};

// Each file registers the types it implements; quant.cpp dispatches through this.
TypeCodec plain_codec(TensorType type);
TypeCodec legacy_codec(TensorType type);
TypeCodec k_quant_codec(TensorType type);
TypeCodec ternary_codec(TensorType type);

}  // namespace edgelm::tensor::detail
