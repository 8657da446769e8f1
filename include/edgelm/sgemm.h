// Single-precision GEMM: C = A * B (+ bias) with B packed into 32-column panels, cache-blocked over
// k and split over a ThreadPool. Constant weights are packed once (PackedMatrix) and reused by
// every call, which is where the speed over a loop of dot products comes from. The SIMD path
// follows kernels::active_cpu_path() ("scalar" runs the plain reference).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "edgelm/thread_pool.h"

namespace edgelm::kernels {

// B [k][n] rearranged for the GEMM micro-kernel: columns grouped in panels of kPanelWidth, each
// panel stored k rows of kPanelWidth floats (the last panel zero-padded).
class PackedMatrix {
 public:
  static constexpr int64_t kPanelWidth = 32;

  PackedMatrix() = default;
  // Element (r, c) of B is b[r * row_stride + c * col_stride]: col_stride 1 for a row-major
  // [k][n] matrix, row_stride 1 and col_stride k for its transpose stored [n][k].
  static PackedMatrix pack(const float* b, int64_t k, int64_t n, int64_t row_stride,
                           int64_t col_stride);

  // Number of floats the packed form of a [k][n] matrix takes.
  static int64_t packed_floats(int64_t k, int64_t n);
  // Packs into caller storage of packed_floats(k, n) floats; the result views it.
  static PackedMatrix pack_into(const float* b, int64_t k, int64_t n, int64_t row_stride,
                                int64_t col_stride, float* storage);

  int64_t k() const { return k_; }
  int64_t n() const { return n_; }
  int64_t panels() const { return (n_ + kPanelWidth - 1) / kPanelWidth; }
  // Panel p: k() rows of kPanelWidth floats.
  const float* panel(int64_t p) const { return data_ + p * k_ * kPanelWidth; }
  bool empty() const { return data_ == nullptr; }

 private:
  std::shared_ptr<float> owned_;
  const float* data_ = nullptr;
  int64_t k_ = 0;
  int64_t n_ = 0;
};

// An elementwise function applied to C as it leaves the registers (fused Linear + activation).
enum class Activation {
  kNone,
  kGeluErf,   // 0.5 x (1 + erf(x / sqrt 2))
  kGeluTanh,  // 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3)))
  kSilu,      // x sigmoid(x) = x / (1 + exp(-x))
};

// c[i * ldc + j] = act(bias[j] + sum_r a[i * lda + r] * B(r, j)) for i < m, j < b.n(); bias may be
// null. a must not alias c.
void sgemm_packed(const float* a, int64_t m, int64_t lda, const PackedMatrix& b, const float* bias,
                  float* c, int64_t ldc, ThreadPool* pool,
                  Activation activation = Activation::kNone);

// x[i] = act(x[i]) for i < n with the epilogue's SIMD code (within 1e-6 relative of the exact
// function: erf uses a 1.5e-7 polynomial approximation).
void apply_activation(Activation activation, float* x, int64_t n);
// The exact functions in double precision: the oracle for the tests.
void apply_activation_reference(Activation activation, float* x, int64_t n);

// The same with B given unpacked (B(r, j) = b[r * b_row_stride + j * b_col_stride]): packs it
// into a per-thread buffer first.
void sgemm(const float* a, int64_t m, int64_t k, int64_t lda, const float* b, int64_t n,
           int64_t b_row_stride, int64_t b_col_stride, const float* bias, float* c, int64_t ldc,
           ThreadPool* pool);

// Plain triple loop (double accumulation) with sgemm's arguments: the oracle for the tests.
void sgemm_reference(const float* a, int64_t m, int64_t k, int64_t lda, const float* b, int64_t n,
                     int64_t b_row_stride, int64_t b_col_stride, const float* bias, float* c,
                     int64_t ldc);

// Name of the micro-kernel sgemm uses now (the Highway target of active_cpu_path()).
const char* sgemm_path();

}  // namespace edgelm::kernels

namespace edgelm::kernels {

// ---- 8-bit integer GEMM (ONNX MatMulInteger as quantize_dynamic writes it) ----

// Quantizes x like ONNX DynamicQuantizeLinear: scale = (max(x, 0) - min(x, 0)) / 255, zero point
// = round(-min / scale) clamped to [0, 255], q = clamp(round_half_even(x / scale) + zero).
struct QuantizedRows {
  std::vector<uint8_t> data;  // rows x stride, the pad past `cols` zero
  std::vector<int32_t> row_sums;
  int64_t rows = 0, cols = 0, stride = 0;
  float scale = 1.0f;
  int32_t zero_point = 0;
};
void dynamic_quantize_rows(const float* x, int64_t rows, int64_t cols, QuantizedRows& out);

// Weights W [k][n] of uint8 or int8 with a zero point and a float scale per column (or one for
// all), packed for the u8 x s8 dot-product instructions.
class PackedInt8Matrix {
 public:
  static constexpr int64_t kPanelWidth = 32;
  PackedInt8Matrix() = default;
  // w[r * n + c]; zero_points/scales hold n values, or 1 shared by every column.
  static PackedInt8Matrix pack(const void* w, bool is_unsigned, int64_t k, int64_t n,
                               const int32_t* zero_points, int64_t zero_point_count,
                               const float* scales, int64_t scale_count);
  int64_t k() const { return k_; }
  int64_t n() const { return n_; }
  int64_t k_quads() const { return (k_ + 3) / 4; }
  int64_t panels() const { return (n_ + kPanelWidth - 1) / kPanelWidth; }
  bool empty() const { return data_.empty(); }
  // Panel p: k_quads() groups of kPanelWidth columns x 4 consecutive k values (signed bytes).
  const int8_t* panel(int64_t p) const { return data_.data() + p * k_quads() * kPanelWidth * 4; }
  // Per column (padded to whole panels): zero point (as a signed byte value), scale, sum of the
  // column's signed weights.
  const int32_t* zero_points() const { return zero_points_.data(); }
  const float* scales() const { return scales_.data(); }
  const int32_t* column_sums() const { return column_sums_.data(); }

 private:
  std::vector<int8_t> data_;
  std::vector<int32_t> zero_points_, column_sums_;
  std::vector<float> scales_;
  int64_t k_ = 0, n_ = 0;
};

// c[i][j] = act(bias[j] + a.scale * w.scale[j] * sum_r (a[i][r] - a.zero) (w[r][j] - w.zero[j])).
void gemm_u8s8_packed(const QuantizedRows& a, const PackedInt8Matrix& w, const float* bias,
                      float* c, int64_t ldc, ThreadPool* pool,
                      Activation activation = Activation::kNone);
// True when gemm_u8s8_packed has a dot-product instruction path on this CPU and CPU path
// (AVX-512 VNNI); otherwise it runs plain C++.
bool gemm_u8s8_accelerated();

}  // namespace edgelm::kernels
