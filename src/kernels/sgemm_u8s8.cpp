// The 8-bit GEMM of ONNX MatMulInteger: uint8 activations x int8 weights with int32 sums, as the
// AVX-512 VNNI instruction vpdpbusd computes them (4 products per 32-bit lane per instruction).
// Unsigned weights are shifted to signed (w - 128, zero point - 128) when packed, and the zero
// points are folded out of the integer sums afterwards:
//   sum (a - za)(w - zw) = sum a w - zw sum a - za sum w + k za zw.
// Other CPUs run the same arithmetic in plain C++ (the reference the VNNI path is tested against).
#include <algorithm>
#include <cmath>
#include <cstring>

#include "edgelm/kernels.h"
#include "edgelm/sgemm.h"
#include "kernels/parallel.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace edgelm::kernels {
namespace {

constexpr int64_t kPanel = PackedInt8Matrix::kPanelWidth;

// Integer sums to floats for columns [col, col + cols) of rows [0, rows): sums[i][j] holds
// sum a w' for row i and column col + j.
void finish_tile(const QuantizedRows& a, int64_t row0, int64_t rows, const PackedInt8Matrix& w,
                 int64_t col, int64_t cols, const int32_t* sums, int64_t sums_stride,
                 const float* bias, float* c, int64_t ldc, Activation activation) {
  const int32_t za = a.zero_point;
  const int64_t k = w.k();
  for (int64_t i = 0; i < rows; ++i) {
    float* out = c + (row0 + i) * ldc + col;
    const int32_t row_sum = a.row_sums[row0 + i];
    for (int64_t j = 0; j < cols; ++j) {
      const int32_t zw = w.zero_points()[col + j];
      const int64_t exact =
          static_cast<int64_t>(sums[i * sums_stride + j]) - static_cast<int64_t>(zw) * row_sum -
          static_cast<int64_t>(za) * w.column_sums()[col + j] + k * static_cast<int64_t>(za) * zw;
      out[j] = static_cast<float>(exact) * (a.scale * w.scales()[col + j]) +
               (bias ? bias[col + j] : 0.0f);
    }
    apply_activation(activation, out, cols);
  }
}

void scalar_panels(const QuantizedRows& a, const PackedInt8Matrix& w, int64_t p0, int64_t p1,
                   const float* bias, float* c, int64_t ldc, Activation activation) {
  int32_t sums[kPanel];
  for (int64_t p = p0; p < p1; ++p) {
    const int8_t* panel = w.panel(p);
    const int64_t cols = std::min(kPanel, w.n() - p * kPanel);
    for (int64_t i = 0; i < a.rows; ++i) {
      const uint8_t* row = a.data.data() + i * a.stride;
      std::fill(sums, sums + kPanel, 0);
      for (int64_t q = 0; q < w.k_quads(); ++q) {
        const int8_t* group = panel + q * kPanel * 4;
        for (int64_t j = 0; j < cols; ++j) {
          for (int64_t t = 0; t < 4; ++t) sums[j] += int32_t{row[4 * q + t]} * group[4 * j + t];
        }
      }
      finish_tile(a, i, 1, w, p * kPanel, cols, sums, kPanel, bias, c, ldc, activation);
    }
  }
}

#if defined(__x86_64__)
#define EDGELM_VNNI_TARGET __attribute__((target("avx512f,avx512bw,avx512vnni")))

constexpr int kVnniRows = 12;  // 24 accumulators + 2 weight vectors + 1 broadcast of 32 registers

// Cache lines [begin, end) of the weights read next, one prefetched every `every` steps of a
// tile's loop: spread over a panel's row strips, the next panel streams in from memory while this
// one computes.
struct WeightPrefetch {
  const int8_t* begin = nullptr;
  const int8_t* end = nullptr;
  int64_t every = int64_t{1} << 30;
};

template <int kRows>
EDGELM_VNNI_TARGET inline void vnni_tile(const uint8_t* a, int64_t lda, const int8_t* panel,
                                         int64_t quads, int32_t* sums, const WeightPrefetch& next) {
  __m512i acc0[kRows], acc1[kRows];
  for (int i = 0; i < kRows; ++i) {
    acc0[i] = _mm512_setzero_si512();
    acc1[i] = _mm512_setzero_si512();
  }
  const int8_t* fetch = next.begin;
  int64_t countdown = next.every;
  for (int64_t q = 0; q < quads; ++q) {
    if (--countdown == 0) {
      countdown = next.every;
      if (fetch < next.end) {
        _mm_prefetch(reinterpret_cast<const char*>(fetch), _MM_HINT_T0);
        fetch += 64;
      }
    }
    const __m512i w0 = _mm512_loadu_si512(panel + q * kPanel * 4);
    const __m512i w1 = _mm512_loadu_si512(panel + q * kPanel * 4 + 64);
    for (int i = 0; i < kRows; ++i) {
      int32_t four;
      std::memcpy(&four, a + i * lda + 4 * q, 4);
      const __m512i x = _mm512_set1_epi32(four);
      acc0[i] = _mm512_dpbusd_epi32(acc0[i], x, w0);
      acc1[i] = _mm512_dpbusd_epi32(acc1[i], x, w1);
    }
  }
  for (int i = 0; i < kRows; ++i) {
    _mm512_storeu_si512(sums + i * kPanel, acc0[i]);
    _mm512_storeu_si512(sums + i * kPanel + 16, acc1[i]);
  }
}

template <int kRows = kVnniRows>
EDGELM_VNNI_TARGET inline void vnni_rows(int rows, const uint8_t* a, int64_t lda,
                                         const int8_t* panel, int64_t quads, int32_t* sums,
                                         const WeightPrefetch& next) {
  if constexpr (kRows > 1) {
    if (rows < kRows) {
      vnni_rows<kRows - 1>(rows, a, lda, panel, quads, sums, next);
      return;
    }
  }
  vnni_tile<kRows>(a, lda, panel, quads, sums, next);
}

EDGELM_VNNI_TARGET void vnni_panels(const QuantizedRows& a, const PackedInt8Matrix& w, int64_t p0,
                                    int64_t p1, const float* bias, float* c, int64_t ldc,
                                    Activation activation) {
  alignas(64) int32_t sums[kVnniRows * kPanel];
  const int64_t quads = w.k_quads();
  const int64_t strips = (a.rows + kVnniRows - 1) / kVnniRows;
  const int64_t panel_lines = quads * kPanel * 4 / 64;
  const int64_t share = (panel_lines + strips - 1) / std::max<int64_t>(strips, 1);
  for (int64_t p = p0; p < p1; ++p) {
    const int64_t cols = std::min(kPanel, w.n() - p * kPanel);
    for (int64_t i = 0, strip = 0; i < a.rows; i += kVnniRows, ++strip) {
      const int rows = static_cast<int>(std::min<int64_t>(kVnniRows, a.rows - i));
      WeightPrefetch next;
      if (p + 1 < p1 && share > 0) {
        const int8_t* panel = w.panel(p + 1);
        next.begin = panel + std::min(strip * share, panel_lines) * 64;
        next.end = panel + std::min((strip + 1) * share, panel_lines) * 64;
        next.every = std::max<int64_t>(1, quads / share);
      }
      vnni_rows(rows, a.data.data() + i * a.stride, a.stride, w.panel(p), quads, sums, next);
      finish_tile(a, i, rows, w, p * kPanel, cols, sums, kPanel, bias, c, ldc, activation);
    }
  }
}

bool cpu_has_vnni() {
  static const bool has = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                          __builtin_cpu_supports("avx512vnni");
  return has;
}
#endif

}  // namespace

void dynamic_quantize_rows(const float* x, int64_t rows, int64_t cols, QuantizedRows& out) {
  out.rows = rows;
  out.cols = cols;
  out.stride = (cols + 3) / 4 * 4;
  out.data.assign(static_cast<size_t>(rows * out.stride), 0);
  out.row_sums.assign(static_cast<size_t>(rows), 0);
  float lo = 0.0f, hi = 0.0f;  // the range always includes 0
  for (int64_t i = 0; i < rows * cols; ++i) {
    lo = std::min(lo, x[i]);
    hi = std::max(hi, x[i]);
  }
  out.scale = (hi - lo) / 255.0f;
  const float inv = out.scale > 0 ? 1.0f / out.scale : 0.0f;
  out.zero_point =
      out.scale > 0
          ? static_cast<int32_t>(std::clamp(std::nearbyint(-lo / out.scale), 0.0f, 255.0f))
          : 0;
  if (out.scale == 0) out.scale = 1.0f;  // all zeros: any scale reproduces them
  for (int64_t r = 0; r < rows; ++r) {
    uint8_t* q = out.data.data() + r * out.stride;
    int32_t sum = 0;
    for (int64_t c = 0; c < cols; ++c) {
      // ONNX divides by the scale; multiplying by its inverse can differ in the last bit of a
      // tie, which only moves a value to the other nearest level.
      const float v = std::nearbyint(x[r * cols + c] * inv) + static_cast<float>(out.zero_point);
      q[c] = static_cast<uint8_t>(std::clamp(v, 0.0f, 255.0f));
      sum += q[c];
    }
    out.row_sums[r] = sum;
  }
}

PackedInt8Matrix PackedInt8Matrix::pack(const void* w, bool is_unsigned, int64_t k, int64_t n,
                                        const int32_t* zero_points, int64_t zero_point_count,
                                        const float* scales, int64_t scale_count) {
  PackedInt8Matrix m;
  m.k_ = k;
  m.n_ = n;
  const int64_t padded_n = m.panels() * kPanel;
  m.data_.assign(static_cast<size_t>(m.panels() * m.k_quads() * kPanel * 4), 0);
  m.zero_points_.assign(static_cast<size_t>(padded_n), 0);
  m.scales_.assign(static_cast<size_t>(padded_n), 0.0f);
  m.column_sums_.assign(static_cast<size_t>(padded_n), 0);
  const int32_t shift = is_unsigned ? 128 : 0;
  for (int64_t c = 0; c < n; ++c) {
    m.zero_points_[c] = zero_points[zero_point_count == 1 ? 0 : c] - shift;
    m.scales_[c] = scales[scale_count == 1 ? 0 : c];
  }
  for (int64_t r = 0; r < k; ++r) {
    for (int64_t c = 0; c < n; ++c) {
      const int32_t value = is_unsigned ? static_cast<const uint8_t*>(w)[r * n + c] - shift
                                        : static_cast<const int8_t*>(w)[r * n + c];
      const int64_t p = c / kPanel, j = c % kPanel;
      m.data_[static_cast<size_t>(((p * m.k_quads() + r / 4) * kPanel + j) * 4 + r % 4)] =
          static_cast<int8_t>(value);
      m.column_sums_[c] += value;
    }
  }
  return m;
}

bool gemm_u8s8_accelerated() {
#if defined(__x86_64__)
  return cpu_has_vnni() && active_cpu_path() == "avx512vnni";
#else
  return false;
#endif
}

void gemm_u8s8_packed(const QuantizedRows& a, const PackedInt8Matrix& w, const float* bias,
                      float* c, int64_t ldc, ThreadPool* pool, Activation activation) {
  if (a.rows <= 0 || w.n() <= 0) return;
  auto panels = &scalar_panels;
#if defined(__x86_64__)
  if (gemm_u8s8_accelerated()) panels = &vnni_panels;
#endif
  const int threads = pool == nullptr ? 1 : pool->size();
  const bool tiny = a.rows * w.n() * std::max<int64_t>(w.k(), 1) < (int64_t{1} << 20);
  if (threads == 1 || tiny) {
    panels(a, w, 0, w.panels(), bias, c, ldc, activation);
    return;
  }
  parallel_for(pool, w.panels(), 1,
               [&](int64_t p0, int64_t p1) { panels(a, w, p0, p1, bias, c, ldc, activation); });
}

}  // namespace edgelm::kernels
