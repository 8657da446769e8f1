#include "kernels/avx512_vnni_dot.h"

#include <algorithm>
#include <cstring>
#include <type_traits>

#include "kernels/avx512_vnni_target.h"
#include "kernels/token_tile.h"

namespace edgelm::kernels::avx512_vnni {

#if defined(__x86_64__)
namespace {

// Both block types start with an f16 scale. Blocks are processed in chunks of 16 (one 512-bit
// vector of scales, converted together); each scale is then broadcast to the int32 lanes that
// hold its block's dot product with a permute.
struct ChunkScales {
  __m512 weight_d;  // f16 block scales of the chunk as floats (0 past the row end)
  __m512 product;   // weight_d * activation d
};

// The f16 scales of the (up to 16) valid blocks as floats, 0 past the row end.
template <int kBlockBytes>
EDGELM_AVX512_VNNI inline __m512 load_weight_d(const uint8_t* blocks, __mmask16 valid) {
  const __m512i offsets =
      _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                         _mm512_set1_epi32(kBlockBytes));
  // 32-bit gathers read the scale and the first two quant bytes; only the low half is kept.
  const __m512i words =
      _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), valid, offsets, blocks, 1);
  return _mm512_cvtph_ps(_mm512_cvtepi32_epi16(words));
}

template <int kBlockBytes>
EDGELM_AVX512_VNNI inline ChunkScales load_scales(const uint8_t* blocks, const float* xd,
                                                  __mmask16 valid) {
  const __m512 weight_d = load_weight_d<kBlockBytes>(blocks, valid);
  return {weight_d, _mm512_mul_ps(weight_d, _mm512_maskz_loadu_ps(valid, xd))};
}

// Scales of chunk blocks pair_first (lanes 0-7) and pair_first + 1 (lanes 8-15).
EDGELM_AVX512_VNNI inline __m512 pair_scales(__m512 product, int pair_first) {
  const __m512i base = _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
  return _mm512_permutexvar_ps(_mm512_add_epi32(base, _mm512_set1_epi32(pair_first)), product);
}

// 64 activation bytes of blocks b, b+1; only b's 32 when b+1 is past the row end.
EDGELM_AVX512_VNNI inline __m512i load_x_pair(const int8_t* x, bool both) {
  return both ? _mm512_loadu_si512(x) : _mm512_maskz_loadu_epi8(0xFFFFFFFFull, x);
}

// q4_0 (18 bytes: d, 16 bytes of nibbles; byte i holds element i low, element i + 16 high):
// weight = d * (q - 8). Four blocks' 16 bytes fill one register without shuffles, its low
// nibbles meet the activations' first halves and its high nibbles the second halves, which
// prepare() lays out as [4 x 16 first halves][4 x 16 second halves] per group of 4 blocks.
struct Q4_0 {
  static constexpr int kBytes = 18;
  static constexpr float kOffset = -8.0f;  // times d_w * d_x * sum(x_q) per block

  // Integer dots of blocks block .. block + n - 1 (n <= 4; int32 lanes 4i..4i+3 hold block i,
  // zero past n) with their reordered activations x (128 bytes, zero past n).
  EDGELM_AVX512_VNNI static inline __m128i load16(const uint8_t* block) {
    return _mm_loadu_si128(reinterpret_cast<const __m128i*>(block + 2));
  }

  struct Nibbles {
    __m512i lo, hi;
  };
  template <bool kFull>
  EDGELM_AVX512_VNNI static inline Nibbles unpack(const uint8_t* block, int n) {
    __m512i packed = _mm512_zextsi128_si512(load16(block));
    if (kFull || n > 1) packed = _mm512_inserti32x4(packed, load16(block + kBytes), 1);
    if (kFull || n > 2) packed = _mm512_inserti32x4(packed, load16(block + 2 * kBytes), 2);
    if (kFull || n > 3) packed = _mm512_inserti32x4(packed, load16(block + 3 * kBytes), 3);
    const __m512i low_nibbles = _mm512_set1_epi8(0x0F);
    return {_mm512_and_si512(packed, low_nibbles),
            _mm512_and_si512(_mm512_srli_epi16(packed, 4), low_nibbles)};
  }
  EDGELM_AVX512_VNNI static inline __m512i dot(const Nibbles& q, const int8_t* x) {
    const __m512i lo = _mm512_dpbusd_epi32(_mm512_setzero_si512(), q.lo, _mm512_loadu_si512(x));
    return _mm512_dpbusd_epi32(lo, q.hi, _mm512_loadu_si512(x + 64));
  }
  template <bool kFull>
  EDGELM_AVX512_VNNI static inline __m512i quad_dot(const uint8_t* block, const int8_t* x, int n) {
    return dot(unpack<kFull>(block, n), x);
  }
};

// Scales of the blocks of the quad starting at block `first` of a chunk, in quad_dot's lanes.
EDGELM_AVX512_VNNI inline __m512 quad_scales(__m512 product, int first) {
  const __m512i base = _mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0);
  return _mm512_permutexvar_ps(_mm512_add_epi32(base, _mm512_set1_epi32(first)), product);
}

// Bytes of one token's reordered q4_0 activations: whole groups of 4 blocks.
int64_t reordered_token_bytes(const QuantizedActivations& xq) {
  return (xq.blocks_per_token + 3) / 4 * 4 * kActivationBlock;
}

// One token (token0) of one q4_0 row; x is its reordered activations.
EDGELM_AVX512_VNNI float dot_row_q4_0(const uint8_t* row, int64_t n_blocks,
                                      const QuantizedActivations& xq, const int8_t* x,
                                      int64_t token0) {
  const float* xd = xq.d.data() + token0 * xq.blocks_per_token;
  const float* xd_sum = xq.d_sum.data() + token0 * xq.blocks_per_token;
  constexpr int kBytes = Q4_0::kBytes;
  __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
  __m512 offset_acc = _mm512_setzero_ps();
  for (int64_t b0 = 0; b0 < n_blocks; b0 += 16) {
    const int count = static_cast<int>(std::min<int64_t>(16, n_blocks - b0));
    const __mmask16 valid = static_cast<__mmask16>((1u << count) - 1);
    const uint8_t* blocks = row + b0 * kBytes;
    const int8_t* xb = x + b0 * kActivationBlock;
    const ChunkScales scales = load_scales<kBytes>(blocks, xd + b0, valid);
    offset_acc =
        _mm512_fmadd_ps(scales.weight_d, _mm512_maskz_loadu_ps(valid, xd_sum + b0), offset_acc);
    if (count == 16) {
      for (int j = 0; j < 16; j += 8) {
        const __m512i dot0 = Q4_0::quad_dot<true>(blocks + j * kBytes, xb + j * 32, 4);
        const __m512i dot1 = Q4_0::quad_dot<true>(blocks + (j + 4) * kBytes, xb + (j + 4) * 32, 4);
        acc0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot0), quad_scales(scales.product, j), acc0);
        acc1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot1), quad_scales(scales.product, j + 4), acc1);
      }
    } else {
      for (int j = 0; j < count; j += 4) {
        const __m512i dot =
            Q4_0::quad_dot<false>(blocks + j * kBytes, xb + j * 32, std::min(4, count - j));
        acc0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), quad_scales(scales.product, j), acc0);
      }
    }
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1)) +
         Q4_0::kOffset * _mm512_reduce_add_ps(offset_acc);
}

// T tokens of one q4_0 row: each quad of blocks is unpacked once for all of them. x is the
// first token's reordered activations, the next token's x_stride bytes later.
template <int T>
EDGELM_AVX512_VNNI void tile_q4_0(const uint8_t* row, int64_t n_blocks,
                                  const QuantizedActivations& xq, const int8_t* x, int64_t x_stride,
                                  int64_t token0, float* y, int64_t y_stride) {
  constexpr int kBytes = Q4_0::kBytes;
  const int64_t blocks_per_token = xq.blocks_per_token;
  __m512 acc[T];
  for (int t = 0; t < T; ++t) acc[t] = _mm512_setzero_ps();
  for (int64_t b0 = 0; b0 < n_blocks; b0 += 16) {
    const int count = static_cast<int>(std::min<int64_t>(16, n_blocks - b0));
    const __mmask16 valid = static_cast<__mmask16>((1u << count) - 1);
    const uint8_t* blocks = row + b0 * kBytes;
    const __m512 weight_d = load_weight_d<kBytes>(blocks, valid);
    const __m512 offset_d = _mm512_mul_ps(weight_d, _mm512_set1_ps(Q4_0::kOffset));
    __m512 product[T];
    for (int t = 0; t < T; ++t) {
      const int64_t first = (token0 + t) * blocks_per_token + b0;
      product[t] = _mm512_mul_ps(weight_d, _mm512_maskz_loadu_ps(valid, xq.d.data() + first));
      // The offset lands in any lanes: acc is summed over all lanes at the end.
      acc[t] =
          _mm512_fmadd_ps(offset_d, _mm512_maskz_loadu_ps(valid, xq.d_sum.data() + first), acc[t]);
    }
    for (int j = 0; j < count; j += 4) {
      const Q4_0::Nibbles q =
          count == 16 ? Q4_0::unpack<true>(blocks + j * kBytes, 4)
                      : Q4_0::unpack<false>(blocks + j * kBytes, std::min(4, count - j));
      const int8_t* xj = x + (b0 + j) * kActivationBlock;
      for (int t = 0; t < T; ++t) {
        acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(Q4_0::dot(q, xj + t * x_stride)),
                                 quad_scales(product[t], j), acc[t]);
      }
    }
  }
  for (int t = 0; t < T; ++t) y[t * y_stride] = _mm512_reduce_add_ps(acc[t]);
}

// q8_0 (34 bytes: d, 32 signed quants): weight = d * q. vpdpbusd multiplies u8 by s8, so the
// products are formed as |w| * (x * sign(w)); |-128| = 128 fits u8 and x is never -128.
struct Q8_0 {
  static constexpr int kBytes = 34;

  EDGELM_AVX512_VNNI static inline __m512i pair_dot(const uint8_t* block, const int8_t* x,
                                                    bool both) {
    const __m256i first = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + 2));
    const __m256i second =
        both ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + kBytes + 2))
             : _mm256_setzero_si256();
    const __m512i w = _mm512_inserti64x4(_mm512_castsi256_si512(first), second, 1);
    const __m512i xv = load_x_pair(x, both);
    const __m512i x_signed =
        _mm512_mask_sub_epi8(xv, _mm512_movepi8_mask(w), _mm512_setzero_si512(), xv);
    return _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_abs_epi8(w), x_signed);
  }
};

template <class Type>
EDGELM_AVX512_VNNI float dot_row(const uint8_t* row, int64_t n_blocks,
                                 const QuantizedActivations& xq, int64_t token0) {
  constexpr int kBytes = Type::kBytes;
  // Two accumulators so that consecutive pairs do not wait on each other's FMA.
  __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
  const int8_t* x = xq.qs.data() + token0 * xq.blocks_per_token * kActivationBlock;
  const float* xd = xq.d.data() + token0 * xq.blocks_per_token;
  for (int64_t b0 = 0; b0 < n_blocks; b0 += 16) {
    const int count = static_cast<int>(std::min<int64_t>(16, n_blocks - b0));
    const __mmask16 valid = static_cast<__mmask16>((1u << count) - 1);
    const uint8_t* blocks = row + b0 * kBytes;
    const int8_t* xb = x + b0 * kActivationBlock;
    const ChunkScales scales = load_scales<kBytes>(blocks, xd + b0, valid);
    if (count == 16) {
      for (int j = 0; j < 16; j += 4) {
        const __m512i dot0 = Type::pair_dot(blocks + j * kBytes, xb + j * 32, true);
        const __m512i dot1 = Type::pair_dot(blocks + (j + 2) * kBytes, xb + (j + 2) * 32, true);
        acc0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot0), pair_scales(scales.product, j), acc0);
        acc1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot1), pair_scales(scales.product, j + 2), acc1);
      }
    } else {
      for (int j = 0; j < count; j += 2) {
        const __m512i dot = Type::pair_dot(blocks + j * kBytes, xb + j * 32, j + 1 < count);
        acc0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), pair_scales(scales.product, j), acc0);
      }
    }
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
}

// T tokens of one q8_0 row, each pair of blocks loaded once for all of them. vpdpbusd needs an
// unsigned operand: prepare() stores x + 128 as u8 and each dot starts from -128 * sum(w).
template <int T>
EDGELM_AVX512_VNNI void tile_q8_0(const uint8_t* row, int64_t n_blocks,
                                  const QuantizedActivations& xq, const int8_t* u, int64_t u_stride,
                                  int64_t token0, float* y, int64_t y_stride) {
  constexpr int kBytes = Q8_0::kBytes;
  const int64_t blocks_per_token = xq.blocks_per_token;
  const __m512i ones = _mm512_set1_epi8(1);
  __m512 acc[T];
  for (int t = 0; t < T; ++t) acc[t] = _mm512_setzero_ps();
  for (int64_t b0 = 0; b0 < n_blocks; b0 += 16) {
    const int count = static_cast<int>(std::min<int64_t>(16, n_blocks - b0));
    const __mmask16 valid = static_cast<__mmask16>((1u << count) - 1);
    const uint8_t* blocks = row + b0 * kBytes;
    const __m512 weight_d = load_weight_d<kBytes>(blocks, valid);
    __m512 product[T];
    for (int t = 0; t < T; ++t) {
      const float* xd = xq.d.data() + (token0 + t) * blocks_per_token + b0;
      product[t] = _mm512_mul_ps(weight_d, _mm512_maskz_loadu_ps(valid, xd));
    }
    for (int j = 0; j < count; j += 2) {
      const bool both = j + 1 < count;
      const uint8_t* block = blocks + j * kBytes;
      const __m256i first = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + 2));
      const __m256i second =
          both ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + kBytes + 2))
               : _mm256_setzero_si256();
      const __m512i w = _mm512_inserti64x4(_mm512_castsi256_si512(first), second, 1);
      const __m512i minus_offset = _mm512_sub_epi32(
          _mm512_setzero_si512(),
          _mm512_slli_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), ones, w), 7));
      const int8_t* uj = u + (b0 + j) * kActivationBlock;
      for (int t = 0; t < T; ++t) {
        const __m512i dot =
            _mm512_dpbusd_epi32(minus_offset, load_x_pair(uj + t * u_stride, both), w);
        acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), pair_scales(product[t], j), acc[t]);
      }
    }
  }
  for (int t = 0; t < T; ++t) y[t * y_stride] = _mm512_reduce_add_ps(acc[t]);
}

}  // namespace

bool cpu_has_avx512_vnni() {
  static const bool has = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                          __builtin_cpu_supports("avx512vl") &&
                          __builtin_cpu_supports("avx512dq") &&
                          __builtin_cpu_supports("avx512vnni");
  return has;
}

bool has_row_tile(TensorType type, int) {
  return type == TensorType::kQ4_0 || type == TensorType::kQ8_0;
}

void prepare(TensorType type, const QuantizedActivations& xq, std::vector<int8_t>& reordered) {
  const int64_t n_blocks = static_cast<int64_t>(xq.d.size());
  if (type == TensorType::kQ8_0) {
    // Only multi-token tiles read x + 128; a single token uses the signed activations.
    if (n_blocks <= xq.blocks_per_token) return;
    reordered.resize(xq.qs.size());
    for (size_t i = 0; i < xq.qs.size(); ++i) {
      reordered[i] = static_cast<int8_t>(static_cast<uint8_t>(xq.qs[i]) ^ 0x80);
    }
    return;
  }
  const int64_t token_bytes = reordered_token_bytes(xq);
  reordered.assign(static_cast<size_t>(n_blocks / xq.blocks_per_token * token_bytes), 0);
  constexpr int kHalf = kActivationBlock / 2;
  for (int64_t b = 0; b < n_blocks; ++b) {
    const int64_t token = b / xq.blocks_per_token, i = b % xq.blocks_per_token;
    int8_t* group = reordered.data() + token * token_bytes + (i / 4) * 4 * kActivationBlock;
    const int8_t* src = xq.qs.data() + b * kActivationBlock;
    std::memcpy(group + (i % 4) * kHalf, src, kHalf);
    std::memcpy(group + 4 * kHalf + (i % 4) * kHalf, src + kHalf, kHalf);
  }
}

void row_tile(TensorType type, int n_tokens, const uint8_t* row, int64_t n_blocks,
              const QuantizedActivations& xq, const std::vector<int8_t>& reordered, int64_t token0,
              float* y, int64_t y_stride) {
  if (type == TensorType::kQ8_0) {
    if (n_tokens == 1) {
      y[0] = dot_row<Q8_0>(row, n_blocks, xq, token0);
      return;
    }
    const int64_t stride = xq.blocks_per_token * kActivationBlock;
    const int8_t* u = reordered.data() + token0 * stride;
    with_token_tile(n_tokens, [&](auto tile) {
      tile_q8_0<decltype(tile)::value>(row, n_blocks, xq, u, stride, token0, y, y_stride);
    });
    return;
  }
  const int64_t stride = reordered_token_bytes(xq);
  const int8_t* x = reordered.data() + token0 * stride;
  if (n_tokens == 1) {
    y[0] = dot_row_q4_0(row, n_blocks, xq, x, token0);
    return;
  }
  with_token_tile(n_tokens, [&](auto tile) {
    tile_q4_0<decltype(tile)::value>(row, n_blocks, xq, x, stride, token0, y, y_stride);
  });
}

#else  // not x86-64: no such path

bool cpu_has_avx512_vnni() {
  return false;
}
bool has_row_tile(TensorType, int) {
  return false;
}
void prepare(TensorType, const QuantizedActivations&, std::vector<int8_t>&) {}
void row_tile(TensorType, int, const uint8_t*, int64_t, const QuantizedActivations&,
              const std::vector<int8_t>&, int64_t, float*, int64_t) {}

#endif

}  // namespace edgelm::kernels::avx512_vnni
