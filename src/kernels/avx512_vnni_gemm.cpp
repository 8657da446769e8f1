#include "kernels/avx512_vnni_gemm.h"

#include <algorithm>
#include <cstring>
#include <type_traits>

#include "kernels/avx512_vnni_interleaved.h"
#include "kernels/avx512_vnni_target.h"
#include "kernels/token_tile.h"

namespace edgelm::kernels::avx512_vnni {

bool has_gemm(TensorType type) {
#if defined(__x86_64__)
  return type == TensorType::kQ8_0 || type == TensorType::kQ4_0;
#else
  (void)type;
  return false;
#endif
}

#if defined(__x86_64__)
EDGELM_AVX512_VNNI void prepare_gemm(TensorType type, const QuantizedActivations& xq,
                                     GemmActivations& out) {
  const auto n_blocks = static_cast<int64_t>(xq.d.size());
  const auto* qs = reinterpret_cast<const uint8_t*>(xq.qs.data());
  if (type == TensorType::kQ8_0) {
    // Two blocks per register (every token's row is a whole number of blocks).
    out.biased.resize(xq.qs.size());
    const __m512i bias = _mm512_set1_epi8(static_cast<char>(0x80));
    int64_t b = 0;
    for (; b + 2 <= n_blocks; b += 2) {
      const __m512i v = _mm512_loadu_si512(qs + b * kActivationBlock);
      _mm512_storeu_si512(out.biased.data() + b * kActivationBlock, _mm512_xor_si512(v, bias));
    }
    for (int64_t i = b * kActivationBlock; i < n_blocks * kActivationBlock; ++i) {
      out.biased[static_cast<size_t>(i)] = static_cast<uint8_t>(qs[i] ^ 0x80);
    }
    return;
  }
  // q4_0 multiplies the unsigned nibbles q with x and corrects for the weights' offset of 8.
  prepare_interleaved(xq, out.start);
  for (int32_t& start : out.start) start *= -8;
}
#else
void prepare_gemm(TensorType, const QuantizedActivations&, GemmActivations&) {}
#endif

#if defined(__x86_64__)
namespace {

constexpr int kGroupRows = 16;  // one int32 lane per row

// One 32-weight block of a 16-row group, repacked.
struct alignas(64) PackedBlock {
  uint8_t q[8][64];   // register k: bytes 4i..4i+3 are weights 4k..4k+3 of row i
  float d[16];        // row i's block scale
  int32_t start[16];  // q8_0: -128 * (sum of row i's weights), undoing the +128 on x
};

// Transposes 16 rows x 8 dwords (rows[i] = the 32 weight bytes of row i) into out[k] whose lane i
// is dword k of row i. Rows enter the 128-bit-lane unpacks in the order that makes the final lane
// order natural: register j holds rows (j, j + 4) for j < 4 and (j + 4, j + 8) for j >= 4.
EDGELM_AVX512_VNNI inline void transpose_16x8(const __m256i rows[16], __m512i out[8]) {
  __m512i a[8];
  for (int j = 0; j < 4; ++j) {
    a[j] = _mm512_inserti64x4(_mm512_castsi256_si512(rows[j]), rows[j + 4], 1);
    a[j + 4] = _mm512_inserti64x4(_mm512_castsi256_si512(rows[j + 8]), rows[j + 12], 1);
  }
  __m512i u[4], v[4];
  for (int half = 0; half < 2; ++half) {
    const __m512i* s = a + 4 * half;
    const __m512i t0 = _mm512_unpacklo_epi32(s[0], s[1]);
    const __m512i t1 = _mm512_unpackhi_epi32(s[0], s[1]);
    const __m512i t2 = _mm512_unpacklo_epi32(s[2], s[3]);
    const __m512i t3 = _mm512_unpackhi_epi32(s[2], s[3]);
    __m512i* d = half == 0 ? u : v;
    d[0] = _mm512_unpacklo_epi64(t0, t2);  // per 128-bit lane: dword 0 of its 4 rows
    d[1] = _mm512_unpackhi_epi64(t0, t2);
    d[2] = _mm512_unpacklo_epi64(t1, t3);
    d[3] = _mm512_unpackhi_epi64(t1, t3);
  }
  for (int m = 0; m < 4; ++m) {
    out[m] = _mm512_shuffle_i32x4(u[m], v[m], _MM_SHUFFLE(2, 0, 2, 0));
    out[m + 4] = _mm512_shuffle_i32x4(u[m], v[m], _MM_SHUFFLE(3, 1, 3, 1));
  }
}

template <TensorType kType>
constexpr int64_t kBlockBytes = kType == TensorType::kQ8_0 ? 34 : 18;

// Repacks the n_blocks blocks of rows r0 .. r0 + n_rows - 1 (n_rows <= 16; missing rows repeat
// the last one, and their outputs are never stored).
template <TensorType kType>
EDGELM_AVX512_VNNI void pack_group(const MatrixView& w, int64_t r0, int n_rows, int64_t n_blocks,
                                   PackedBlock* out) {
  const uint8_t* rows[kGroupRows];
  for (int i = 0; i < kGroupRows; ++i) {
    rows[i] = w.data + (r0 + std::min(i, n_rows - 1)) * static_cast<int64_t>(w.row_bytes);
  }
  const __m512i ones = _mm512_set1_epi8(1);
  for (int64_t b = 0; b < n_blocks; ++b) {
    __m256i q[kGroupRows];
    alignas(32) uint16_t d_bits[kGroupRows];
    for (int i = 0; i < kGroupRows; ++i) {
      const uint8_t* block = rows[i] + b * kBlockBytes<kType>;
      std::memcpy(&d_bits[i], block, 2);
      if constexpr (kType == TensorType::kQ8_0) {
        q[i] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + 2));
      } else {
        // Byte j holds element j (low nibble) and element j + 16 (high nibble).
        const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(block + 2));
        const __m128i mask = _mm_set1_epi8(0x0F);
        q[i] = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(packed, 4), mask),
                                _mm_and_si128(packed, mask));
      }
    }
    __m512i regs[8];
    transpose_16x8(q, regs);
    PackedBlock& p = out[b];
    for (int k = 0; k < 8; ++k) _mm512_store_si512(p.q[k], regs[k]);
    _mm512_store_ps(p.d, _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<__m256i*>(d_bits))));
    if constexpr (kType == TensorType::kQ8_0) {
      __m512i sum = _mm512_setzero_si512();
      for (int k = 0; k < 8; ++k) sum = _mm512_dpbusd_epi32(sum, ones, regs[k]);
      _mm512_store_si512(p.start,
                         _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_slli_epi32(sum, 7)));
    }
  }
}

// T tokens from token0 against one packed group: y[t * y_stride + i] for the rows in `valid`.
template <TensorType kType, int T>
EDGELM_AVX512_VNNI void group_tile(const PackedBlock* packed, int64_t n_blocks,
                                   const QuantizedActivations& xq, const GemmActivations& xg,
                                   int64_t token0, float* y, int64_t y_stride, __mmask16 valid) {
  constexpr bool kQ8 = kType == TensorType::kQ8_0;
  const int64_t blocks_per_token = xq.blocks_per_token;
  const int64_t x_stride = blocks_per_token * kActivationBlock;
  const uint8_t* x =
      (kQ8 ? xg.biased.data() : reinterpret_cast<const uint8_t*>(xq.qs.data())) + token0 * x_stride;
  const float* xd = xq.d.data() + token0 * blocks_per_token;
  __m512 acc[T];
  for (int t = 0; t < T; ++t) acc[t] = _mm512_setzero_ps();
  for (int64_t b = 0; b < n_blocks; ++b) {
    const PackedBlock& p = packed[b];
    __m512i dot[T];
    if constexpr (kQ8) {
      const __m512i start = _mm512_load_si512(p.start);
      for (int t = 0; t < T; ++t) dot[t] = start;
    } else {
      const int32_t* start = xg.start.data() + token0 * blocks_per_token + b;
      for (int t = 0; t < T; ++t) dot[t] = _mm512_set1_epi32(start[t * blocks_per_token]);
    }
    const uint8_t* xb = x + b * kActivationBlock;
    for (int k = 0; k < 8; ++k) {
      const __m512i wk = _mm512_load_si512(p.q[k]);
      for (int t = 0; t < T; ++t) {
        int32_t four;
        std::memcpy(&four, xb + t * x_stride + 4 * k, 4);
        const __m512i xv = _mm512_set1_epi32(four);
        // vpdpbusd multiplies unsigned by signed bytes: q8_0 has x + 128 unsigned, q4_0 q.
        dot[t] = kQ8 ? _mm512_dpbusd_epi32(dot[t], xv, wk) : _mm512_dpbusd_epi32(dot[t], wk, xv);
      }
    }
    const __m512 dw = _mm512_load_ps(p.d);
    for (int t = 0; t < T; ++t) {
      const __m512 scale = _mm512_mul_ps(dw, _mm512_set1_ps(xd[t * blocks_per_token + b]));
      acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot[t]), scale, acc[t]);
    }
  }
  for (int t = 0; t < T; ++t) _mm512_mask_storeu_ps(y + t * y_stride, valid, acc[t]);
}

template <TensorType kType>
void gemm_rows_of(const MatrixView& w, int64_t row_begin, int64_t row_end,
                  const QuantizedActivations& xq, const GemmActivations& xg, float* y) {
  const int64_t n_blocks = w.cols / kActivationBlock;
  const int64_t n_tokens = static_cast<int64_t>(xq.d.size()) / xq.blocks_per_token;
  // The group being multiplied (n_blocks * 640 bytes): reused across calls, it stays in L2.
  thread_local std::vector<PackedBlock> packed;
  if (packed.size() < static_cast<size_t>(n_blocks)) packed.resize(static_cast<size_t>(n_blocks));
  for (int64_t r0 = row_begin; r0 < row_end; r0 += kGroupRows) {
    const int n_rows = static_cast<int>(std::min<int64_t>(kGroupRows, row_end - r0));
    pack_group<kType>(w, r0, n_rows, n_blocks, packed.data());
    const auto valid = static_cast<__mmask16>((1u << n_rows) - 1);
    for (int64_t t0 = 0; t0 < n_tokens; t0 += kMaxTokenTile) {
      with_token_tile(std::min<int64_t>(kMaxTokenTile, n_tokens - t0), [&](auto tile) {
        group_tile<kType, decltype(tile)::value>(packed.data(), n_blocks, xq, xg, t0,
                                                 y + t0 * w.rows + r0, w.rows, valid);
      });
    }
  }
}

}  // namespace

void gemm_rows(const MatrixView& w, int64_t row_begin, int64_t row_end,
               const QuantizedActivations& xq, const GemmActivations& xg, float* y) {
  if (w.type == TensorType::kQ8_0) {
    gemm_rows_of<TensorType::kQ8_0>(w, row_begin, row_end, xq, xg, y);
  } else {
    gemm_rows_of<TensorType::kQ4_0>(w, row_begin, row_end, xq, xg, y);
  }
}

#else  // not x86-64: has_gemm() is false and nothing calls this

void gemm_rows(const MatrixView&, int64_t, int64_t, const QuantizedActivations&,
               const GemmActivations&, float*) {}

#endif

}  // namespace edgelm::kernels::avx512_vnni
