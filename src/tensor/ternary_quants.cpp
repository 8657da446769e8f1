// Ternary types for BitNet b1.58-style models: every element is -1, 0 or +1 times one scale d
// per 256 elements (d = the block's largest magnitude).
#include <cmath>

#include "edgelm/quant.h"
#include "tensor/blocks.h"
#include "tensor/rounding.h"

namespace edgelm::tensor::detail {
namespace {

constexpr uint8_t kPow3[6] = {1, 3, 9, 27, 81, 243};

// TQ1_0 packs 5 trits t0..t4 (0..2) as the byte ceil(256 * (t0 t1 t2 t3 t4 in base 3) / 243):
// multiplying by 3^n (mod 256) then brings trit n into the top "trit" of the byte.
int tq1_trit(uint8_t byte, int n) {
  const auto shifted = static_cast<uint8_t>(byte * kPow3[n]);
  return (shifted * 3) >> 8;
}

uint8_t tq1_pack(const int trits[5]) {
  int value = 0;
  for (int n = 0; n < 5; ++n) value = value * 3 + trits[n];
  return static_cast<uint8_t>((value * 256 + 242) / 243);
}

// Where element e's trit lives: 32 bytes x 5 trits, then 16 bytes x 5 trits, then qh 4 x 4.
struct TritSlot {
  bool in_qh;
  int byte;
  int trit;
};

TritSlot tq1_slot(int e) {
  if (e < 160) return {false, e % 32, e / 32};
  if (e < 240) return {false, 32 + (e - 160) % 16, (e - 160) / 16};
  return {true, (e - 240) % 4, (e - 240) / 4};
}

float block_absmax(const float* x) {
  float amax = 0.0f;
  for (int e = 0; e < kQKK; ++e) amax = std::fmax(amax, std::fabs(x[e]));
  return amax;
}

int ternary_level(float x, float id) {
  return round_away_clamped(x * id, -1, 1) + 1;
}

void dequantize_tq1_0(const uint8_t* src, float* dst, int64_t n_blocks) {
  for (int64_t i = 0; i < n_blocks; ++i, dst += kQKK) {
    const auto block = load_block<BlockTQ1_0>(src, i);
    const float d = fp16_to_fp32(block.d);
    for (int e = 0; e < kQKK; ++e) {
      const TritSlot slot = tq1_slot(e);
      const uint8_t byte = slot.in_qh ? block.qh[slot.byte] : block.qs[slot.byte];
      dst[e] = static_cast<float>(tq1_trit(byte, slot.trit) - 1) * d;
    }
  }
}

void quantize_tq1_0(const float* src, uint8_t* dst, int64_t n_blocks, const float*) {
  for (int64_t i = 0; i < n_blocks; ++i, src += kQKK) {
    const float d = block_absmax(src);
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    int levels[kQKK];
    for (int e = 0; e < kQKK; ++e) levels[e] = ternary_level(src[e], id);
    int trits[sizeof(BlockTQ1_0::qs) + sizeof(BlockTQ1_0::qh)][5] = {};  // qh's 5th trit stays 0
    for (int e = 0; e < kQKK; ++e) {
      const TritSlot slot = tq1_slot(e);
      trits[slot.in_qh ? sizeof(BlockTQ1_0::qs) + slot.byte : slot.byte][slot.trit] = levels[e];
    }
    BlockTQ1_0 block;
    for (size_t b = 0; b < sizeof(block.qs); ++b) block.qs[b] = tq1_pack(trits[b]);
    for (size_t b = 0; b < sizeof(block.qh); ++b) {
      block.qh[b] = tq1_pack(trits[sizeof(block.qs) + b]);
    }
    block.d = fp32_to_fp16(d);
    store_block(dst, i, block);
  }
}

// TQ2_0: element e = 128*j + 32*l + m is bits 2l..2l+1 of qs[32*j + m], holding level+1.
void dequantize_tq2_0(const uint8_t* src, float* dst, int64_t n_blocks) {
  for (int64_t i = 0; i < n_blocks; ++i, dst += kQKK) {
    const auto block = load_block<BlockTQ2_0>(src, i);
    const float d = fp16_to_fp32(block.d);
    for (int e = 0; e < kQKK; ++e) {
      const int q = (block.qs[32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3;
      dst[e] = static_cast<float>(q - 1) * d;
    }
  }
}

void quantize_tq2_0(const float* src, uint8_t* dst, int64_t n_blocks, const float*) {
  for (int64_t i = 0; i < n_blocks; ++i, src += kQKK) {
    const float d = block_absmax(src);
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    BlockTQ2_0 block = {};
    for (int e = 0; e < kQKK; ++e) {
      const int shift = 2 * ((e % 128) / 32);
      block.qs[32 * (e / 128) + e % 32] |= static_cast<uint8_t>(ternary_level(src[e], id) << shift);
    }
    block.d = fp32_to_fp16(d);
    store_block(dst, i, block);
  }
}

}  // namespace

TypeCodec ternary_codec(TensorType type) {
  switch (type) {
    case TensorType::kTQ1_0:
      return {dequantize_tq1_0, quantize_tq1_0};
    case TensorType::kTQ2_0:
      return {dequantize_tq2_0, quantize_tq2_0};
    default:
      return {};
  }
}

}  // namespace edgelm::tensor::detail
