#include "kernels/avx512_vnni_interleaved.h"

#include <algorithm>
#include <cstring>

#include "kernels/avx512_vnni_target.h"
#include "kernels/interleaved.h"
#include "kernels/token_tile.h"

namespace edgelm::kernels::avx512_vnni {

#if defined(__x86_64__)
namespace {

// Decode reads this many groups side by side: independent weight streams in flight. Measured
// one -> two +9-27 % tokens/s; two -> four +0-16 % (q8_0 and the 135M shape gain, q4_0 1B is
// level); six and eight lose.
constexpr int kDecodeStreams = 4;

// The 4 activation bytes at p in every 32-bit lane. Written as a 4-byte load and a set1, the
// compiler folds it into vpdpbusd as an embedded {1to16} memory broadcast (free); an explicit
// broadcast intrinsic or an 8-byte load split in a general register costs an instruction each.
EDGELM_AVX512_VNNI inline __m512i broadcast4(const int8_t* p) {
  int32_t four;
  std::memcpy(&four, p, 4);
  return _mm512_set1_epi32(four);
}

// One token's dot products of one block of a group (16 rows), starting from `start`.
template <TensorType kType>
EDGELM_AVX512_VNNI inline __m512i one_token_block(const uint8_t* quants, const int8_t* xb,
                                                  __m512i start) {
  if constexpr (kType == TensorType::kQ4_0) {
    // The high nibbles are multiplied in place (16 q) into a second chain that is shifted back
    // once, which saves a shift per register and splits the chain.
    const __m512i low_nibbles = _mm512_set1_epi8(0x0F);
    const __m512i high_nibbles = _mm512_set1_epi8(static_cast<char>(0xF0));
    __m512i high = _mm512_setzero_si512();
    for (int k = 0; k < 4; ++k) {
      const __m512i packed = _mm512_load_si512(quants + 64 * k);
      start =
          _mm512_dpbusd_epi32(start, _mm512_and_si512(packed, low_nibbles), broadcast4(xb + 4 * k));
      high = _mm512_dpbusd_epi32(high, _mm512_and_si512(packed, high_nibbles),
                                 broadcast4(xb + 16 + 4 * k));
    }
    return _mm512_add_epi32(start, _mm512_srai_epi32(high, 4));
  } else {
    // A second chain so that the block's 8 vpdpbusd do not wait on each other.
    __m512i odd = _mm512_setzero_si512();
    for (int k = 0; k < 8; k += 2) {
      start =
          _mm512_dpbusd_epi32(start, _mm512_load_si512(quants + 64 * k), broadcast4(xb + 4 * k));
      odd = _mm512_dpbusd_epi32(odd, _mm512_load_si512(quants + 64 * (k + 1)),
                                broadcast4(xb + 4 * (k + 1)));
    }
    return _mm512_add_epi32(start, odd);
  }
}

// One token against kStreams groups at once: independent weight streams in flight.
template <TensorType kType, int kStreams>
EDGELM_AVX512_VNNI void groups_one_token(const uint8_t* const* groups, int64_t n_blocks,
                                         const QuantizedActivations& xq, const int32_t* block_sums,
                                         float* const* ys) {
  constexpr int64_t kQuantBytes = interleaved::quant_bytes(kType);
  constexpr int32_t kOffset = kType == TensorType::kQ8_0 ? -128 : -8;
  __m512 acc[kStreams];
  for (int s = 0; s < kStreams; ++s) acc[s] = _mm512_setzero_ps();
  for (int64_t b = 0; b < n_blocks; ++b) {
    const int8_t* xb = xq.qs.data() + b * kActivationBlock;
    const __m512i start = _mm512_set1_epi32(kOffset * block_sums[b]);
    const __m512 xd = _mm512_set1_ps(xq.d[static_cast<size_t>(b)]);
    for (int s = 0; s < kStreams; ++s) {
      const __m512i dot = one_token_block<kType>(groups[s] + b * kQuantBytes, xb, start);
      const __m512 dw = _mm512_cvtph_ps(_mm256_load_si256(
          reinterpret_cast<const __m256i*>(groups[s] + n_blocks * kQuantBytes + 32 * b)));
      acc[s] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_mul_ps(dw, xd), acc[s]);
    }
  }
  for (int s = 0; s < kStreams; ++s) _mm512_storeu_ps(ys[s], acc[s]);
}

// T tokens (token0 ..) against one group: y[t * y_stride + i] for its 16 rows.
//  q8_0: weights are stored w + 128 (unsigned), so the dot of a block is
//        sum((w + 128) * x) - 128 * sum(x).
//  q4_0: weight = q - 8 with q the unsigned nibble, so it is sum(q * x) - 8 * sum(x).
template <TensorType kType, int T>
EDGELM_AVX512_VNNI void group_tile(const uint8_t* group, int64_t n_blocks,
                                   const QuantizedActivations& xq, const int32_t* block_sums,
                                   int64_t token0, float* y, int64_t y_stride) {
  constexpr bool kQ8 = kType == TensorType::kQ8_0;
  constexpr int64_t kQuantBytes = interleaved::quant_bytes(kType);
  constexpr int32_t kOffset = kQ8 ? -128 : -8;
  const int64_t blocks_per_token = xq.blocks_per_token;
  const int64_t x_stride = blocks_per_token * kActivationBlock;
  const int8_t* x = xq.qs.data() + token0 * x_stride;
  const float* xd = xq.d.data() + token0 * blocks_per_token;
  const int32_t* sums = block_sums + token0 * blocks_per_token;
  const uint8_t* scales = group + n_blocks * kQuantBytes;
  const __m512i low_nibbles = _mm512_set1_epi8(0x0F);
  __m512 acc[T];
  for (int t = 0; t < T; ++t) acc[t] = _mm512_setzero_ps();
  for (int64_t b = 0; b < n_blocks; ++b) {
    const uint8_t* quants = group + b * kQuantBytes;
    const __m512 dw =
        _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(scales + 32 * b)));
    const int8_t* xb = x + b * kActivationBlock;
    __m512i dot[T];
    for (int t = 0; t < T; ++t)
      dot[t] = _mm512_set1_epi32(kOffset * sums[t * blocks_per_token + b]);
    if constexpr (T == 1) {
      dot[0] = one_token_block<kType>(quants, xb, dot[0]);
    } else {
      __m512i w[8];
      if constexpr (kQ8) {
        for (int k = 0; k < 8; ++k) w[k] = _mm512_load_si512(quants + 64 * k);
      } else {
        for (int k = 0; k < 4; ++k) {
          const __m512i packed = _mm512_load_si512(quants + 64 * k);
          w[k] = _mm512_and_si512(packed, low_nibbles);
          w[k + 4] = _mm512_and_si512(_mm512_srli_epi16(packed, 4), low_nibbles);
        }
      }
      for (int k = 0; k < 8; ++k) {
        for (int t = 0; t < T; ++t) {
          dot[t] = _mm512_dpbusd_epi32(dot[t], w[k], broadcast4(xb + t * x_stride + 4 * k));
        }
      }
    }
    for (int t = 0; t < T; ++t) {
      const __m512 scale = _mm512_mul_ps(dw, _mm512_set1_ps(xd[t * blocks_per_token + b]));
      acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot[t]), scale, acc[t]);
    }
  }
  for (int t = 0; t < T; ++t) _mm512_storeu_ps(y + t * y_stride, acc[t]);
}

template <TensorType kType>
void rows_of(const MatrixView& w, int64_t row_begin, int64_t row_end,
             const QuantizedActivations& xq, const int32_t* block_sums, float* y) {
  const int64_t n_blocks = w.cols / kActivationBlock;
  const int64_t n_tokens = static_cast<int64_t>(xq.d.size()) / xq.blocks_per_token;
  const int64_t bytes_per_group = interleaved::group_bytes(kType, n_blocks);
  if (n_tokens == 1) {
    // Decode: kDecodeStreams parts of the range side by side; what is left one group at a time.
    const int64_t g0 = row_begin / interleaved::kGroupRows;
    const int64_t n_groups = (row_end - row_begin) / interleaved::kGroupRows;
    const int64_t part = n_groups / kDecodeStreams;
    for (int64_t i = 0; i < part; ++i) {
      const uint8_t* groups[kDecodeStreams];
      float* ys[kDecodeStreams];
      for (int s = 0; s < kDecodeStreams; ++s) {
        const int64_t g = g0 + s * part + i;
        groups[s] = w.data + g * bytes_per_group;
        ys[s] = y + g * interleaved::kGroupRows;
      }
      groups_one_token<kType, kDecodeStreams>(groups, n_blocks, xq, block_sums, ys);
    }
    for (int64_t g = g0 + kDecodeStreams * part; g < g0 + n_groups; ++g) {
      group_tile<kType, 1>(w.data + g * bytes_per_group, n_blocks, xq, block_sums, 0,
                           y + g * interleaved::kGroupRows, w.rows);
    }
    return;
  }
  for (int64_t r0 = row_begin; r0 < row_end; r0 += interleaved::kGroupRows) {
    const uint8_t* group = w.data + r0 / interleaved::kGroupRows * bytes_per_group;
    for (int64_t t0 = 0; t0 < n_tokens; t0 += kMaxTokenTile) {
      with_token_tile(std::min<int64_t>(kMaxTokenTile, n_tokens - t0), [&](auto tile) {
        group_tile<kType, decltype(tile)::value>(group, n_blocks, xq, block_sums, t0,
                                                 y + t0 * w.rows + r0, w.rows);
      });
    }
  }
}

}  // namespace

EDGELM_AVX512_VNNI void prepare_interleaved(const QuantizedActivations& xq,
                                            std::vector<int32_t>& block_sums) {
  const auto n_blocks = static_cast<int64_t>(xq.d.size());
  block_sums.resize(static_cast<size_t>(n_blocks));
  const __m256i ones = _mm256_set1_epi8(1);
  for (int64_t b = 0; b < n_blocks; ++b) {
    const __m256i x =
        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq.qs.data() + b * kActivationBlock));
    const __m256i sums = _mm256_dpbusd_epi32(_mm256_setzero_si256(), ones, x);
    const __m128i s4 =
        _mm_add_epi32(_mm256_castsi256_si128(sums), _mm256_extracti128_si256(sums, 1));
    const __m128i s2 = _mm_add_epi32(s4, _mm_unpackhi_epi64(s4, s4));
    block_sums[static_cast<size_t>(b)] =
        _mm_cvtsi128_si32(s2) + _mm_cvtsi128_si32(_mm_srli_si128(s2, 4));
  }
}

void interleaved_rows(const MatrixView& w, int64_t row_begin, int64_t row_end,
                      const QuantizedActivations& xq, const std::vector<int32_t>& block_sums,
                      float* y) {
  if (w.type == TensorType::kQ8_0) {
    rows_of<TensorType::kQ8_0>(w, row_begin, row_end, xq, block_sums.data(), y);
  } else {
    rows_of<TensorType::kQ4_0>(w, row_begin, row_end, xq, block_sums.data(), y);
  }
}

#else  // not x86-64: nothing prefers the interleaved layout, so nothing calls these

void prepare_interleaved(const QuantizedActivations&, std::vector<int32_t>&) {}
void interleaved_rows(const MatrixView&, int64_t, int64_t, const QuantizedActivations&,
                      const std::vector<int32_t>&, float*) {}

#endif

}  // namespace edgelm::kernels::avx512_vnni
