#include "kernels/amx.h"

#include <algorithm>
#include <atomic>
#include <cstring>

#include "kernels/avx512_vnni_dot.h"
#include "kernels/avx512_vnni_target.h"
#include "kernels/interleaved.h"
#include "kernels/quantized_activations.h"

#if defined(__x86_64__)
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>

#define EDGELM_AMX                                                              \
  __attribute__((                                                               \
      target("amx-tile,amx-bf16,avx512f,avx512bw,avx512dq,avx512vl,avx512bf16," \
             "avx2,fma,f16c")))
#endif

namespace edgelm::kernels::amx {

#if defined(__x86_64__)
namespace {

// A tile of one block: 16 rows of 64 bytes (activations: 16 tokens x 32 values; weights: 16
// pairs of elements x 16 rows x 2 values, the layout tdpbf16ps multiplies).
constexpr int64_t kTileLines = 16;

// Tiles 0-3 accumulate (token tile i, group j) in tile 2i + j; 4 and 5 hold the two token tiles'
// activations of the current block, 6 and 7 the two groups' weights.
struct alignas(64) TileConfig {
  uint8_t palette = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t bytes_per_row[16] = {};
  uint8_t rows[16] = {};
};

TileConfig make_config() {
  TileConfig config;
  for (int t = 0; t < 8; ++t) {
    config.rows[t] = kTileLines;
    config.bytes_per_row[t] = 64;
  }
  return config;
}

// Lane i = bf16(a[i]) | bf16(b[i]) << 16, rounded to nearest even: two consecutive elements of
// row i, as a weight tile row holds them.
EDGELM_AMX inline __m512i pair_bf16(__m512 a, __m512 b) {
  // cvtne2ps puts a's 16 values below b's; the permutation interleaves them.
  const __m512i interleave =
      _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7, 22, 6,
                       21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
  return _mm512_permutexvar_epi16(interleave, reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(b, a)));
}

// Four signed quants per 32-bit lane (bytes 0..3 of row i's lane, elements e..e+3) times the
// rows' scales, as the two weight tile rows of elements (e, e+1) and (e+2, e+3).
EDGELM_AMX inline void widen_four(__m512i q, __m512 scales, Line* out) {
  const __m512 e0 = _mm512_cvtepi32_ps(_mm512_srai_epi32(_mm512_slli_epi32(q, 24), 24));
  const __m512 e1 = _mm512_cvtepi32_ps(_mm512_srai_epi32(_mm512_slli_epi32(q, 16), 24));
  const __m512 e2 = _mm512_cvtepi32_ps(_mm512_srai_epi32(_mm512_slli_epi32(q, 8), 24));
  const __m512 e3 = _mm512_cvtepi32_ps(_mm512_srai_epi32(q, 24));
  _mm512_store_si512(out, pair_bf16(_mm512_mul_ps(e0, scales), _mm512_mul_ps(e1, scales)));
  _mm512_store_si512(out + 1, pair_bf16(_mm512_mul_ps(e2, scales), _mm512_mul_ps(e3, scales)));
}

// One group's 16 rows as BF16 weight tiles, block b at out + 16 * b: the interleaved registers
// already hold 4 consecutive elements of row i in lane i, so widening is lane-local.
template <TensorType kType>
EDGELM_AMX void widen_group(const uint8_t* group, int64_t n_blocks, Line* out) {
  constexpr int64_t kQuantBytes = interleaved::quant_bytes(kType);
  const uint8_t* scales = group + n_blocks * kQuantBytes;
  for (int64_t b = 0; b < n_blocks; ++b) {
    const __m512 d =
        _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(scales + 32 * b)));
    const uint8_t* quants = group + b * kQuantBytes;
    Line* tile = out + kTileLines * b;
    if constexpr (kType == TensorType::kQ8_0) {
      const __m512i unsigned_to_signed = _mm512_set1_epi8(static_cast<char>(0x80));
      for (int k = 0; k < 8; ++k) {  // register k: elements 4k .. 4k + 3
        widen_four(_mm512_xor_si512(_mm512_load_si512(quants + 64 * k), unsigned_to_signed), d,
                   tile + 2 * k);
      }
    } else {
      const __m512i low_nibbles = _mm512_set1_epi8(0x0F);
      const __m512i eight = _mm512_set1_epi8(8);
      for (int k = 0; k < 4; ++k) {  // register k: low nibbles 4k .., high nibbles 16 + 4k ..
        const __m512i packed = _mm512_load_si512(quants + 64 * k);
        const __m512i low = _mm512_sub_epi8(_mm512_and_si512(packed, low_nibbles), eight);
        const __m512i high =
            _mm512_sub_epi8(_mm512_and_si512(_mm512_srli_epi16(packed, 4), low_nibbles), eight);
        widen_four(low, d, tile + 2 * k);
        widen_four(high, d, tile + 8 + 2 * k);
      }
    }
  }
}

// Stores accumulator tile `c` rows for tokens [t0, t0 + 16) ∩ [0, n_tokens).
#define EDGELM_AMX_STORE(c, t0, r0)                                                          \
  do {                                                                                       \
    if ((t0) + kTileTokens <= n_tokens) {                                                    \
      _tile_stored(c, y + (t0)*y_stride + (r0), y_stride * sizeof(float));                   \
    } else {                                                                                 \
      alignas(64) float partial[kTileTokens * 16];                                           \
      _tile_stored(c, partial, 64);                                                          \
      for (int64_t t = 0; t < n_tokens - (t0); ++t)                                          \
        std::memcpy(y + ((t0) + t) * y_stride + (r0), partial + 16 * t, 16 * sizeof(float)); \
    }                                                                                        \
  } while (0)

// kTiles (1 or 2) token tiles starting at token t0 against kGroups (1 or 2) widened groups
// starting at row r0: every tile operand loaded serves kTiles or kGroups products.
template <int kTiles, int kGroups>
EDGELM_AMX void tile_block(const Line* a, const Line* w0, const Line* w1, int64_t n_blocks,
                           int64_t a_tile_lines, int64_t t0, int64_t r0, int64_t n_tokens, float* y,
                           int64_t y_stride) {
  _tile_zero(0);
  if constexpr (kGroups == 2) _tile_zero(1);
  if constexpr (kTiles == 2) _tile_zero(2);
  if constexpr (kTiles == 2 && kGroups == 2) _tile_zero(3);
  for (int64_t b = 0; b < n_blocks; ++b) {
    const int64_t line = kTileLines * b;
    _tile_loadd(6, w0 + line, 64);
    if constexpr (kGroups == 2) _tile_loadd(7, w1 + line, 64);
    _tile_loadd(4, a + line, 64);
    _tile_dpbf16ps(0, 4, 6);
    if constexpr (kGroups == 2) _tile_dpbf16ps(1, 4, 7);
    if constexpr (kTiles == 2) {
      _tile_loadd(5, a + a_tile_lines + line, 64);
      _tile_dpbf16ps(2, 5, 6);
      if constexpr (kGroups == 2) _tile_dpbf16ps(3, 5, 7);
    }
  }
  EDGELM_AMX_STORE(0, t0, r0);
  if constexpr (kGroups == 2) EDGELM_AMX_STORE(1, t0, r0 + 16);
  if constexpr (kTiles == 2) EDGELM_AMX_STORE(2, t0 + kTileTokens, r0);
  if constexpr (kTiles == 2 && kGroups == 2) EDGELM_AMX_STORE(3, t0 + kTileTokens, r0 + 16);
}

#undef EDGELM_AMX_STORE

template <TensorType kType>
EDGELM_AMX void rows_of(const MatrixView& w, int64_t row_begin, int64_t row_end,
                        const std::vector<Line>& tiles, int64_t n_tokens, float* y) {
  const int64_t n_blocks = w.cols / kActivationBlock;
  const int64_t bytes_per_group = interleaved::group_bytes(kType, n_blocks);
  const int64_t lines_per_group = n_blocks * kTileLines;  // widened weights; also per token tile
  const int64_t n_tiles = (n_tokens + kTileTokens - 1) / kTileTokens;
  thread_local std::vector<Line> widened;
  widened.resize(static_cast<size_t>(2 * lines_per_group));

  static const TileConfig config = make_config();
  // Tile instructions are opaque asm to GCC: every store they read must be done before them.
  std::atomic_signal_fence(std::memory_order_seq_cst);
  _tile_loadconfig(&config);
  const int64_t g_end = row_end / interleaved::kGroupRows;
  for (int64_t g = row_begin / interleaved::kGroupRows; g < g_end; g += 2) {
    const bool pair = g + 1 < g_end;
    widen_group<kType>(w.data + g * bytes_per_group, n_blocks, widened.data());
    if (pair) {
      widen_group<kType>(w.data + (g + 1) * bytes_per_group, n_blocks,
                         widened.data() + lines_per_group);
    }
    std::atomic_signal_fence(std::memory_order_seq_cst);
    const Line* w0 = widened.data();
    const Line* w1 = w0 + lines_per_group;
    const int64_t r0 = g * interleaved::kGroupRows;
    for (int64_t tile = 0; tile < n_tiles; tile += 2) {
      const Line* a = tiles.data() + tile * lines_per_group;
      const int64_t t0 = tile * kTileTokens;
      if (tile + 1 < n_tiles) {
        if (pair) {
          tile_block<2, 2>(a, w0, w1, n_blocks, lines_per_group, t0, r0, n_tokens, y, w.rows);
        } else {
          tile_block<2, 1>(a, w0, w1, n_blocks, lines_per_group, t0, r0, n_tokens, y, w.rows);
        }
      } else if (pair) {
        tile_block<1, 2>(a, w0, w1, n_blocks, lines_per_group, t0, r0, n_tokens, y, w.rows);
      } else {
        tile_block<1, 1>(a, w0, w1, n_blocks, lines_per_group, t0, r0, n_tokens, y, w.rows);
      }
    }
  }
  // Gives the tile state back, so that context switches stop saving it.
  _tile_release();
}

}  // namespace

bool available() {
  static const bool granted = [] {
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return false;
    const bool amx_bf16 = (edx >> 22) & 1, amx_tile = (edx >> 24) & 1;
    if (!__get_cpuid_count(7, 1, &eax, &ebx, &ecx, &edx)) return false;
    const bool avx512_bf16 = (eax >> 5) & 1;
    if (!amx_tile || !amx_bf16 || !avx512_bf16 || !avx512_vnni::cpu_has_avx512_vnni()) {
      return false;
    }
    constexpr int kArchRequestXcompPermission = 0x1023;
    constexpr int kXfeatureTileData = 18;
    return syscall(SYS_arch_prctl, kArchRequestXcompPermission, kXfeatureTileData) == 0;
  }();
  return granted;
}

EDGELM_AMX void tile_activations(const float* x, int64_t n_tokens, int64_t cols,
                                 std::vector<Line>& tiles) {
  const int64_t n_blocks = cols / kActivationBlock;
  const int64_t n_tiles = (n_tokens + kTileTokens - 1) / kTileTokens;
  tiles.resize(static_cast<size_t>(n_tiles * n_blocks * kTileLines));
  for (int64_t tile = 0; tile < n_tiles; ++tile) {
    for (int64_t b = 0; b < n_blocks; ++b) {
      Line* lines = tiles.data() + (tile * n_blocks + b) * kTileLines;
      for (int64_t t = 0; t < kTileTokens; ++t) {
        const int64_t token = tile * kTileTokens + t;
        if (token >= n_tokens) {
          std::memset(lines + t, 0, sizeof(Line));
          continue;
        }
        const float* src = x + token * cols + b * kActivationBlock;
        // cvtne2ps(b, a) places a's 16 values first: elements in order.
        _mm512_store_si512(lines + t, reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(
                                          _mm512_loadu_ps(src + 16), _mm512_loadu_ps(src))));
      }
    }
  }
}

void interleaved_rows(const MatrixView& w, int64_t row_begin, int64_t row_end,
                      const std::vector<Line>& tiles, int64_t n_tokens, float* y) {
  if (w.type == TensorType::kQ8_0) {
    rows_of<TensorType::kQ8_0>(w, row_begin, row_end, tiles, n_tokens, y);
  } else {
    rows_of<TensorType::kQ4_0>(w, row_begin, row_end, tiles, n_tokens, y);
  }
}

#else  // not x86-64: no AMX

bool available() {
  return false;
}
void tile_activations(const float*, int64_t, int64_t, std::vector<Line>&) {}
void interleaved_rows(const MatrixView&, int64_t, int64_t, const std::vector<Line>&, int64_t,
                      float*) {}

#endif

}  // namespace edgelm::kernels::amx
