// Decoding of the K-quant super-blocks. Each loop walks output elements in order and computes
// where that element's bits, scale and min live, which keeps the layout readable.
#include "edgelm/quant.h"
#include "tensor/k_quants.h"

namespace edgelm::tensor::detail {

int q3_k_scale(const uint8_t packed[kKScaleBytes], int i) {
  const int low = i < 8 ? (packed[i] & 0x0F) : (packed[i - 8] >> 4);
  const int high = (packed[8 + i % 4] >> (2 * (i / 4))) & 3;
  return (low | (high << 4)) - 32;
}

void pack_q3_k_scales(const int scales[16], uint8_t packed[kKScaleBytes]) {
  for (int b = 0; b < kKScaleBytes; ++b) packed[b] = 0;
  for (int i = 0; i < 16; ++i) {
    const int biased = scales[i] + 32;  // 0..63
    packed[i % 8] |= static_cast<uint8_t>((biased & 0x0F) << (i < 8 ? 0 : 4));
    packed[8 + i % 4] |= static_cast<uint8_t>((biased >> 4) << (2 * (i / 4)));
  }
}

void q4_k_scale_min(const uint8_t packed[kKScaleBytes], int j, int* scale, int* min) {
  if (j < 4) {
    *scale = packed[j] & 63;
    *min = packed[j + 4] & 63;
  } else {
    *scale = (packed[j + 4] & 0x0F) | ((packed[j - 4] >> 6) << 4);
    *min = (packed[j + 4] >> 4) | ((packed[j] >> 6) << 4);
  }
}

void pack_q4_k_scales(const int scales[8], const int mins[8], uint8_t packed[kKScaleBytes]) {
  for (int j = 0; j < 4; ++j) {
    packed[j] = static_cast<uint8_t>(scales[j] | ((scales[j + 4] >> 4) << 6));
    packed[j + 4] = static_cast<uint8_t>(mins[j] | ((mins[j + 4] >> 4) << 6));
    packed[j + 8] = static_cast<uint8_t>((scales[j + 4] & 0x0F) | ((mins[j + 4] & 0x0F) << 4));
  }
}

// q2_K: element e = 128*h + 32*s + 16*k + l takes bits 2s..2s+1 of qs[32*h + 16*k + l];
// x = d * scale - dmin * min, per 16 elements.
void dequantize_q2_k(const uint8_t* src, float* dst, int64_t n_blocks) {
  for (int64_t i = 0; i < n_blocks; ++i, dst += kQKK) {
    const auto block = load_block<BlockQ2_K>(src, i);
    const float d = fp16_to_fp32(block.d);
    const float dmin = fp16_to_fp32(block.dmin);
    for (int e = 0; e < kQKK; ++e) {
      const int shift = 2 * ((e % 128) / 32);
      const int q = (block.qs[32 * (e / 128) + e % 32] >> shift) & 3;
      const uint8_t packed = block.scales[e / 16];
      const float dl = d * static_cast<float>(packed & 0x0F);
      const float ml = dmin * static_cast<float>(packed >> 4);
      dst[e] = dl * static_cast<float>(q) - ml;
    }
  }
}

// q3_K: low 2 bits as q2_K; hmask[e % 32] bit (e / 32) is set when the value is >= 0 (q in
// -4..3 is stored as q+4 with the 4 in the mask).
void dequantize_q3_k(const uint8_t* src, float* dst, int64_t n_blocks) {
  for (int64_t i = 0; i < n_blocks; ++i, dst += kQKK) {
    const auto block = load_block<BlockQ3_K>(src, i);
    const float d = fp16_to_fp32(block.d);
    for (int e = 0; e < kQKK; ++e) {
      const int shift = 2 * ((e % 128) / 32);
      const int low = (block.qs[32 * (e / 128) + e % 32] >> shift) & 3;
      const bool high = (block.hmask[e % 32] >> (e / 32)) & 1;
      const float dl = d * static_cast<float>(q3_k_scale(block.scales, e / 16));
      dst[e] = dl * static_cast<float>(low - (high ? 0 : 4));
    }
  }
}

// q4_K: element e = 64*g + 32*k + l is nibble k of qs[32*g + l]; x = d*scale*q - dmin*min.
void dequantize_q4_k(const uint8_t* src, float* dst, int64_t n_blocks) {
  for (int64_t i = 0; i < n_blocks; ++i, dst += kQKK) {
    const auto block = load_block<BlockQ4_K>(src, i);
    const float d = fp16_to_fp32(block.d);
    const float dmin = fp16_to_fp32(block.dmin);
    for (int e = 0; e < kQKK; ++e) {
      const int sub = e / 32;
      const uint8_t byte = block.qs[32 * (e / 64) + e % 32];
      const int q = (sub % 2 == 0) ? (byte & 0x0F) : (byte >> 4);
      int scale, min;
      q4_k_scale_min(block.scales, sub, &scale, &min);
      const float dl = d * static_cast<float>(scale);
      const float ml = dmin * static_cast<float>(min);
      dst[e] = dl * static_cast<float>(q) - ml;
    }
  }
}

// q5_K: q4_K plus a 5th bit, qh[e % 32] bit (e / 32).
void dequantize_q5_k(const uint8_t* src, float* dst, int64_t n_blocks) {
  for (int64_t i = 0; i < n_blocks; ++i, dst += kQKK) {
    const auto block = load_block<BlockQ5_K>(src, i);
    const float d = fp16_to_fp32(block.d);
    const float dmin = fp16_to_fp32(block.dmin);
    for (int e = 0; e < kQKK; ++e) {
      const int sub = e / 32;
      const uint8_t byte = block.qs[32 * (e / 64) + e % 32];
      const int low = (sub % 2 == 0) ? (byte & 0x0F) : (byte >> 4);
      const int high = (block.qh[e % 32] >> sub) & 1;
      int scale, min;
      q4_k_scale_min(block.scales, sub, &scale, &min);
      const float dl = d * static_cast<float>(scale);
      const float ml = dmin * static_cast<float>(min);
      dst[e] = dl * static_cast<float>(low | (high << 4)) - ml;
    }
  }
}

// q6_K: element e = 128*h + 32*c + l: low nibble from ql[64*h + 32*(c%2) + l] (high nibble when
// c >= 2), top 2 bits from qh[32*h + l] bits 2c..2c+1; x = d * scale * (q - 32).
void dequantize_q6_k(const uint8_t* src, float* dst, int64_t n_blocks) {
  for (int64_t i = 0; i < n_blocks; ++i, dst += kQKK) {
    const auto block = load_block<BlockQ6_K>(src, i);
    const float d = fp16_to_fp32(block.d);
    for (int e = 0; e < kQKK; ++e) {
      const int h = e / 128;
      const int c = (e % 128) / 32;
      const int l = e % 32;
      const uint8_t low_byte = block.ql[64 * h + 32 * (c % 2) + l];
      const int low = c < 2 ? (low_byte & 0x0F) : (low_byte >> 4);
      const int high = (block.qh[32 * h + l] >> (2 * c)) & 3;
      const int q = (low | (high << 4)) - 32;
      dst[e] = d * static_cast<float>(block.scales[e / 16]) * static_cast<float>(q);
    }
  }
}

void dequantize_q8_k(const uint8_t* src, float* dst, int64_t n_blocks) {
  for (int64_t i = 0; i < n_blocks; ++i, dst += kQKK) {
    const auto block = load_block<BlockQ8_K>(src, i);
    for (int e = 0; e < kQKK; ++e) dst[e] = block.d * static_cast<float>(block.qs[e]);
  }
}

}  // namespace edgelm::tensor::detail
