// The packed float GEMM on every CPU path (SIMD targets and the scalar path) against the
// double-precision triple loop, on odd and edge sizes, strided and transposed operands, with and
// without bias, on 1 and 2 threads.
#include "edgelm/sgemm.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "edgelm/kernels.h"
#include "kernels/test_util.h"

namespace edgelm::kernels {
namespace {

struct Shape {
  int64_t m, k, n;
};

// Sizes around every blocking boundary: tile rows (6/12, and the 8 + 8 split of a last 13-16
// rows), vector widths (4/8/16), the 32-column panel, the 256 depth block (and the weight
// prefetch that crosses panels and depth blocks), plus degenerate ones.
const Shape kShapes[] = {{1, 1, 1},     {1, 7, 5},     {3, 5, 7},    {6, 16, 16},
                         {7, 17, 31},   {12, 32, 32},  {13, 33, 33}, {16, 40, 64},
                         {25, 255, 65}, {2, 257, 3},   {64, 64, 64}, {19, 300, 97},
                         {64, 513, 48}, {28, 520, 70}, {5, 0, 9},    {40, 80, 260}};

// |got - want| must stay within float rounding of a length-k dot product of these magnitudes.
void expect_close(const std::vector<float>& got, const std::vector<float>& want,
                  const std::vector<float>& magnitude, int64_t k, int64_t m, int64_t n,
                  int64_t ldc) {
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      const size_t at = static_cast<size_t>(i * ldc + j);
      const double bound = 1e-6 * static_cast<double>(k + 4) * magnitude[at] + 1e-30;
      ASSERT_NEAR(got[at], want[at], bound) << "row " << i << " col " << j;
    }
  }
}

class Sgemm : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override { ASSERT_TRUE(set_cpu_path(GetParam())); }
  void TearDown() override { set_cpu_path(available_cpu_paths().front()); }
};

TEST_P(Sgemm, MatchesReferenceOnEdgeShapes) {
  EXPECT_STREQ(sgemm_path(), GetParam().c_str());
  ThreadPool one(1), two(2);
  uint32_t seed = 1;
  for (const Shape& s : kShapes) {
    for (bool transposed : {false, true}) {
      for (bool with_bias : {false, true}) {
        SCOPED_TRACE("m " + std::to_string(s.m) + " k " + std::to_string(s.k) + " n " +
                     std::to_string(s.n) + (transposed ? " B^T" : "") + (with_bias ? " bias" : ""));
        // Row strides wider than the rows exercise lda/ldc.
        const int64_t lda = s.k + 3, ldc = s.n + 5;
        const auto a = test::random_floats(static_cast<size_t>(s.m * lda), seed++);
        const auto b = test::random_floats(static_cast<size_t>(s.k * s.n), seed++);
        const auto bias = test::random_floats(static_cast<size_t>(s.n), seed++);
        const int64_t row_stride = transposed ? 1 : s.n, col_stride = transposed ? s.k : 1;
        const float* bias_ptr = with_bias ? bias.data() : nullptr;

        std::vector<float> want(static_cast<size_t>(s.m * ldc), 0.0f);
        sgemm_reference(a.data(), s.m, s.k, lda, b.data(), s.n, row_stride, col_stride, bias_ptr,
                        want.data(), ldc);
        // Magnitudes: the same sums over |a| |b| (+ |bias|).
        std::vector<float> abs_a(a.size()), abs_b(b.size()), abs_bias(bias.size());
        for (size_t i = 0; i < a.size(); ++i) abs_a[i] = std::fabs(a[i]);
        for (size_t i = 0; i < b.size(); ++i) abs_b[i] = std::fabs(b[i]);
        for (size_t i = 0; i < bias.size(); ++i) abs_bias[i] = std::fabs(bias[i]);
        std::vector<float> magnitude(want.size(), 0.0f);
        sgemm_reference(abs_a.data(), s.m, s.k, lda, abs_b.data(), s.n, row_stride, col_stride,
                        with_bias ? abs_bias.data() : nullptr, magnitude.data(), ldc);

        const PackedMatrix packed = PackedMatrix::pack(b.data(), s.k, s.n, row_stride, col_stride);
        ASSERT_EQ(packed.k(), s.k);
        ASSERT_EQ(packed.n(), s.n);
        for (ThreadPool* pool : {&one, &two}) {
          // NaN everywhere: every output must be written; the padding columns must stay untouched.
          std::vector<float> got(want.size(), std::nanf(""));
          sgemm_packed(a.data(), s.m, lda, packed, bias_ptr, got.data(), ldc, pool);
          expect_close(got, want, magnitude, s.k, s.m, s.n, ldc);
          for (int64_t i = 0; i < s.m; ++i) {
            for (int64_t j = s.n; j < ldc; ++j) ASSERT_TRUE(std::isnan(got[i * ldc + j]));
          }
          std::vector<float> unpacked(want.size(), std::nanf(""));
          sgemm(a.data(), s.m, s.k, lda, b.data(), s.n, row_stride, col_stride, bias_ptr,
                unpacked.data(), ldc, pool);
          expect_close(unpacked, want, magnitude, s.k, s.m, s.n, ldc);
        }
      }
    }
  }
}

// The fused activation: the GEMM with an epilogue equals the GEMM followed by the exact function
// (the slopes of GELU and SiLU stay below 1.13, so the GEMM bound carries over; the activation
// adds 1e-6 of |x|).
TEST_P(Sgemm, ActivationEpilogueMatchesReference) {
  ThreadPool two(2);
  uint32_t seed = 100;
  for (const Shape& s : {Shape{13, 33, 70}, Shape{64, 520, 64}, Shape{3, 0, 5}}) {
    for (Activation act : {Activation::kGeluErf, Activation::kGeluTanh, Activation::kSilu}) {
      SCOPED_TRACE("m " + std::to_string(s.m) + " k " + std::to_string(s.k) + " n " +
                   std::to_string(s.n) + " activation " + std::to_string(static_cast<int>(act)));
      const auto a = test::random_floats(static_cast<size_t>(s.m * s.k), seed++, 0.3f);
      const auto b = test::random_floats(static_cast<size_t>(s.k * s.n), seed++);
      const auto bias = test::random_floats(static_cast<size_t>(s.n), seed++);
      std::vector<float> want(static_cast<size_t>(s.m * s.n)), magnitude(want.size());
      sgemm_reference(a.data(), s.m, s.k, s.k, b.data(), s.n, s.n, 1, bias.data(), want.data(),
                      s.n);
      std::vector<float> abs_a(a.size()), abs_b(b.size()), abs_bias(bias.size());
      for (size_t i = 0; i < a.size(); ++i) abs_a[i] = std::fabs(a[i]);
      for (size_t i = 0; i < b.size(); ++i) abs_b[i] = std::fabs(b[i]);
      for (size_t i = 0; i < bias.size(); ++i) abs_bias[i] = std::fabs(bias[i]);
      sgemm_reference(abs_a.data(), s.m, s.k, s.k, abs_b.data(), s.n, s.n, 1, abs_bias.data(),
                      magnitude.data(), s.n);
      apply_activation_reference(act, want.data(), static_cast<int64_t>(want.size()));
      const PackedMatrix packed = PackedMatrix::pack(b.data(), s.k, s.n, s.n, 1);
      std::vector<float> got(want.size(), std::nanf(""));
      sgemm_packed(a.data(), s.m, s.k, packed, bias.data(), got.data(), s.n, &two, act);
      for (size_t i = 0; i < want.size(); ++i) {
        const double bound = 1.13e-6 * static_cast<double>(s.k + 4) * magnitude[i] +
                             1e-6 * std::max(1.0f, std::fabs(want[i]));
        ASSERT_NEAR(got[i], want[i], bound) << i;
      }
    }
  }
}

TEST_P(Sgemm, ActivationMatchesExactFunctions) {
  std::vector<float> x;
  for (float v = -12.0f; v <= 12.0f; v += 0.01f) x.push_back(v);
  for (float v : {0.0f, -0.0f, 1e-30f, -1e-30f, 40.0f, -40.0f, 1e20f, -1e20f}) x.push_back(v);
  for (Activation act :
       {Activation::kNone, Activation::kGeluErf, Activation::kGeluTanh, Activation::kSilu}) {
    std::vector<float> want = x, got = x;
    apply_activation_reference(act, want.data(), static_cast<int64_t>(want.size()));
    apply_activation(act, got.data(), static_cast<int64_t>(got.size()));
    for (size_t i = 0; i < x.size(); ++i) {
      ASSERT_NEAR(got[i], want[i], 1e-6 * std::max(1.0f, std::fabs(want[i]))) << "x " << x[i];
    }
  }
}

// Large enough for the threaded split over panels and over rows to both run.
TEST_P(Sgemm, ThreadedSplitsAgree) {
  ThreadPool two(2);
  for (const Shape& s : {Shape{64, 128, 1024}, Shape{96, 384, 40}}) {
    const auto a = test::random_floats(static_cast<size_t>(s.m * s.k), 11);
    const auto b = test::random_floats(static_cast<size_t>(s.k * s.n), 12);
    std::vector<float> want(static_cast<size_t>(s.m * s.n)), got(want.size(), std::nanf(""));
    sgemm_reference(a.data(), s.m, s.k, s.k, b.data(), s.n, s.n, 1, nullptr, want.data(), s.n);
    const PackedMatrix packed = PackedMatrix::pack(b.data(), s.k, s.n, s.n, 1);
    sgemm_packed(a.data(), s.m, s.k, packed, nullptr, got.data(), s.n, &two);
    for (size_t i = 0; i < want.size(); ++i) ASSERT_NEAR(got[i], want[i], 1e-3) << i;
  }
}

// DynamicQuantizeLinear by its ONNX definition (division, round half to even), in double.
TEST(DynamicQuantizeRows, FollowsOnnxDefinition) {
  for (int64_t cols : {1, 3, 4, 37}) {
    auto x = test::random_floats(static_cast<size_t>(5 * cols), 7 + static_cast<uint32_t>(cols));
    x[0] = 2.5f;  // a positive maximum
    QuantizedRows q;
    dynamic_quantize_rows(x.data(), 5, cols, q);
    ASSERT_EQ(q.stride % 4, 0);
    double lo = 0, hi = 0;
    for (float v : x) {
      lo = std::min<double>(lo, v);
      hi = std::max<double>(hi, v);
    }
    const double scale = (hi - lo) / 255.0;
    EXPECT_NEAR(q.scale, scale, 1e-6 * scale);
    EXPECT_EQ(q.zero_point,
              static_cast<int32_t>(std::clamp(std::nearbyint(-lo / scale), 0.0, 255.0)));
    for (int64_t r = 0; r < 5; ++r) {
      int32_t sum = 0;
      for (int64_t c = 0; c < q.stride; ++c) {
        const uint8_t got = q.data[r * q.stride + c];
        if (c >= cols) {
          EXPECT_EQ(got, 0);  // padding
          continue;
        }
        const double want =
            std::clamp(std::nearbyint(x[r * cols + c] / scale) + q.zero_point, 0.0, 255.0);
        EXPECT_LE(std::fabs(got - want), 1.0);  // a tie may round either way
        EXPECT_NEAR(q.scale * (got - q.zero_point), x[r * cols + c], q.scale * 0.5001 + 1e-6);
        sum += got;
      }
      EXPECT_EQ(q.row_sums[r], sum);
    }
  }
}

// The integer GEMM against the ONNX formula evaluated in double from the unpacked weights.
TEST_P(Sgemm, U8S8MatchesMatMulIntegerDefinition) {
  EXPECT_EQ(gemm_u8s8_accelerated(), GetParam() == "avx512vnni");
  ThreadPool two(2);
  uint32_t seed = 300;
  const Shape shapes[] = {{1, 1, 1},    {3, 5, 7},     {13, 33, 65},
                          {12, 64, 32}, {25, 130, 97}, {64, 256, 300}};
  for (const Shape& s : shapes) {
    for (bool is_unsigned : {true, false}) {
      for (bool per_column : {false, true}) {
        SCOPED_TRACE("m " + std::to_string(s.m) + " k " + std::to_string(s.k) + " n " +
                     std::to_string(s.n) + (is_unsigned ? " u8" : " s8") +
                     (per_column ? " per column" : ""));
        std::mt19937 rng(seed++);
        std::uniform_int_distribution<int> byte(0, 255);
        std::vector<uint8_t> w(static_cast<size_t>(s.k * s.n));
        for (auto& v : w) v = static_cast<uint8_t>(byte(rng));
        const int64_t columns = per_column ? s.n : 1;
        std::vector<int32_t> zero(static_cast<size_t>(columns));
        std::vector<float> scale(static_cast<size_t>(columns));
        for (int64_t c = 0; c < columns; ++c) {
          zero[c] = is_unsigned ? byte(rng) : byte(rng) - 128;
          scale[c] = 0.001f + 0.01f * static_cast<float>(byte(rng)) / 255.0f;
        }
        const auto x = test::random_floats(static_cast<size_t>(s.m * s.k), seed++);
        const auto bias = test::random_floats(static_cast<size_t>(s.n), seed++);
        QuantizedRows a;
        dynamic_quantize_rows(x.data(), s.m, s.k, a);
        const auto packed = PackedInt8Matrix::pack(w.data(), is_unsigned, s.k, s.n, zero.data(),
                                                   columns, scale.data(), columns);
        std::vector<float> got(static_cast<size_t>(s.m * (s.n + 3)), std::nanf(""));
        gemm_u8s8_packed(a, packed, bias.data(), got.data(), s.n + 3, &two);
        for (int64_t i = 0; i < s.m; ++i) {
          for (int64_t j = 0; j < s.n; ++j) {
            const int64_t cj = per_column ? j : 0;
            double acc = 0;
            for (int64_t r = 0; r < s.k; ++r) {
              const int32_t wv = is_unsigned ? int32_t{w[r * s.n + j]}
                                             : int32_t{static_cast<int8_t>(w[r * s.n + j])};
              acc += static_cast<double>(a.data[i * a.stride + r] - a.zero_point) *
                     static_cast<double>(wv - zero[cj]);
            }
            const double want = acc * a.scale * scale[cj] + bias[j];
            ASSERT_NEAR(got[i * (s.n + 3) + j], want, 1e-5 * std::max(1.0, std::fabs(want)))
                << "row " << i << " col " << j;
          }
          for (int64_t j = s.n; j < s.n + 3; ++j) ASSERT_TRUE(std::isnan(got[i * (s.n + 3) + j]));
        }
      }
    }
  }
}

std::vector<std::string> all_paths() {
  std::vector<std::string> paths;
  for (std::string_view p : available_cpu_paths()) paths.emplace_back(p);
  return paths;
}

INSTANTIATE_TEST_SUITE_P(EveryCpuPath, Sgemm, ::testing::ValuesIn(all_paths()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

}  // namespace
}  // namespace edgelm::kernels
