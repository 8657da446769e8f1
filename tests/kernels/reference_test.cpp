// The scalar reference kernels against independent formulations: double-precision loops written
// differently here, and numpy (oracle.py) for rope and attention.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "common/test_paths.h"
#include "kernels/test_util.h"

namespace edgelm::kernels {
namespace {

using test::max_abs_diff;
using test::nmse;
using test::random_floats;

class ReferenceKernels : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(set_cpu_path("scalar")); }
  void TearDown() override { set_cpu_path(available_cpu_paths().front()); }
};

TEST_F(ReferenceKernels, MatmulEveryTypeMatchesDecodedWeights) {
  const auto types = test::matmul_test_types();
  ASSERT_FALSE(types.empty());
  for (TensorType type : types) {
    SCOPED_TRACE(std::string(tensor_type_name(type)));
    const int64_t cols = 512, rows = 37, n_tokens = 3;
    const auto m = test::make_matrix(type, rows, cols, random_floats(rows * cols, 1));
    const auto x = random_floats(cols * n_tokens, 2);
    for (int threads : {1, 2, 3}) {
      ThreadPool pool(threads);
      std::vector<float> y(rows * n_tokens);
      matmul(m.view, x.data(), n_tokens, y.data(), &pool);
      EXPECT_LT(nmse(y, test::matmul_oracle(m, x, n_tokens)), 1e-12) << threads << " threads";
    }
  }
}

TEST_F(ReferenceKernels, MatmulF32IsExact) {
  // Small integers: every product and partial sum is exact in float and double.
  const int64_t rows = 5, cols = 7;
  std::vector<float> w(rows * cols), x(cols * 2);
  for (size_t i = 0; i < w.size(); ++i) w[i] = static_cast<float>(static_cast<int>(i % 7) - 3);
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(static_cast<int>(i % 5) - 2);
  const MatrixView view{TensorType::kF32, reinterpret_cast<const uint8_t*>(w.data()), rows, cols,
                        cols * sizeof(float)};
  std::vector<float> y(rows * 2);
  matmul(view, x.data(), 2, y.data(), nullptr);
  for (int64_t t = 0; t < 2; ++t) {
    for (int64_t r = 0; r < rows; ++r) {
      float expected = 0.0f;
      for (int64_t c = 0; c < cols; ++c) expected += w[r * cols + c] * x[t * cols + c];
      EXPECT_EQ(y[t * rows + r], expected);
    }
  }
}

TEST_F(ReferenceKernels, GetRowDecodesOneRow) {
  for (TensorType type : test::matmul_test_types()) {
    SCOPED_TRACE(std::string(tensor_type_name(type)));
    const int64_t rows = 3, cols = 256;
    const auto m = test::make_matrix(type, rows, cols, random_floats(rows * cols, 3));
    std::vector<float> row(cols);
    get_row(m.view, 2, row.data());
    EXPECT_EQ(row, std::vector<float>(m.dequantized.begin() + 2 * cols, m.dequantized.end()));
  }
}

TEST_F(ReferenceKernels, RmsNorm) {
  const auto x = random_floats(1000, 4, 3.0f);
  const auto weight = random_floats(1000, 5);
  double mean_square = 0.0;
  for (float v : x) mean_square += static_cast<double>(v) * v / x.size();
  const double eps = 1e-5;
  std::vector<float> out(x.size());
  rms_norm(x.data(), weight.data(), static_cast<int64_t>(x.size()), static_cast<float>(eps),
           out.data());
  std::vector<double> expected(x.size());
  for (size_t i = 0; i < x.size(); ++i)
    expected[i] = x[i] * weight[i] / std::sqrt(mean_square + eps);
  EXPECT_LT(nmse(out, expected), 1e-12);

  // In place, no weight.
  std::vector<float> inplace = x;
  rms_norm(inplace.data(), nullptr, static_cast<int64_t>(x.size()), static_cast<float>(eps),
           inplace.data());
  for (size_t i = 0; i < x.size(); ++i) expected[i] = x[i] / std::sqrt(mean_square + eps);
  EXPECT_LT(nmse(inplace, expected), 1e-12);
}

TEST_F(ReferenceKernels, SoftmaxIsStableForLargeLogits) {
  std::vector<float> x = {1000.0f, 999.0f, -1000.0f, 998.0f};
  softmax(x.data(), 4);
  // Shifted by the max: exp(0), exp(-1), exp(-2000) = 0, exp(-2).
  const double z = 1.0 + std::exp(-1.0) + std::exp(-2.0);
  const std::vector<double> expected = {1.0 / z, std::exp(-1.0) / z, 0.0, std::exp(-2.0) / z};
  EXPECT_LT(max_abs_diff(x, expected), 1e-7);

  std::vector<float> masked = {-std::numeric_limits<float>::infinity(), 3.0f};
  softmax(masked.data(), 2);
  EXPECT_EQ(masked[0], 0.0f);
  EXPECT_FLOAT_EQ(masked[1], 1.0f);
}

TEST_F(ReferenceKernels, SiluMulAndGeluMul) {
  const auto gate = random_floats(300, 6, 4.0f);
  const auto up = random_floats(300, 7);
  std::vector<float> silu = gate, gelu = gate;
  silu_mul(silu.data(), up.data(), 300);
  gelu_mul(gelu.data(), up.data(), 300);
  std::vector<double> silu_expected(300), gelu_expected(300);
  const double pi = std::acos(-1.0);
  for (size_t i = 0; i < 300; ++i) {
    const double g = gate[i];
    silu_expected[i] = g * (1.0 / (1.0 + std::exp(-g))) * up[i];
    // ggml's GELU: the tanh approximation of Hendrycks & Gimpel.
    gelu_expected[i] =
        0.5 * g * (1.0 + std::tanh(std::sqrt(2.0 / pi) * (g + 0.044715 * g * g * g))) * up[i];
  }
  EXPECT_LT(nmse(silu, silu_expected), 1e-12);
  EXPECT_LT(nmse(gelu, gelu_expected), 1e-12);
}

// Runs oracle.py `op` on `args` and returns its output array.
std::vector<double> run_oracle(const std::string& op, const nlohmann::json& args) {
  const auto dir = std::filesystem::temp_directory_path();
  const std::string stem = "edgelm_kernels_" + op + "_" +
                           std::to_string(::testing::UnitTest::GetInstance()->random_seed()) + "_" +
                           std::to_string(reinterpret_cast<uintptr_t>(&args));
  const auto in_path = dir / (stem + ".in.json");
  const auto out_path = dir / (stem + ".out.json");
  std::ofstream(in_path) << args.dump();
  const std::string command = edgelm::test::python3() + " " +
                              (edgelm::test::source_dir() / "tests/kernels/oracle.py").string() +
                              " " + op + " " + in_path.string() + " " + out_path.string();
  EXPECT_EQ(std::system(command.c_str()), 0) << command;
  std::vector<double> result;
  std::ifstream out(out_path);
  if (out) result = nlohmann::json::parse(out).get<std::vector<double>>();
  std::filesystem::remove(in_path);
  std::filesystem::remove(out_path);
  return result;
}

TEST_F(ReferenceKernels, RopeMatchesNumpy) {
  struct Case {
    RopeStyle style;
    int n_heads, head_dim, n_rot;
    int32_t pos;
    float base, scale;
    bool factors;
  };
  const Case cases[] = {
      {RopeStyle::kNorm, 3, 16, 16, 7, 10000.0f, 1.0f, false},
      {RopeStyle::kNeox, 2, 16, 16, 1234, 1000000.0f, 1.0f, false},
      {RopeStyle::kNeox, 2, 32, 16, 4095, 500000.0f, 0.25f, true},  // partial rotation
      {RopeStyle::kNorm, 1, 8, 8, 0, 10000.0f, 1.0f, true},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(std::to_string(c.pos) + " " + std::to_string(c.n_rot));
    auto x = random_floats(c.n_heads * c.head_dim, 8);
    const auto factors = random_floats(c.n_rot / 2, 9);
    std::vector<float> pos_factors(factors.size());
    for (size_t i = 0; i < factors.size(); ++i) pos_factors[i] = 1.0f + std::abs(factors[i]) * 4.0f;
    nlohmann::json args = {
        {"x", x},
        {"n_heads", c.n_heads},
        {"head_dim", c.head_dim},
        {"n_rot", c.n_rot},
        {"pos", c.pos},
        {"freq_base", c.base},
        {"freq_scale", c.scale},
        {"style", c.style == RopeStyle::kNorm ? "norm" : "neox"},
        {"freq_factors", c.factors ? nlohmann::json(pos_factors) : nlohmann::json()}};
    const auto expected = run_oracle("rope", args);
    rope(x.data(), c.n_heads, c.head_dim, c.n_rot, c.pos, c.base, c.scale,
         c.factors ? pos_factors.data() : nullptr, c.style);
    ASSERT_EQ(expected.size(), x.size());
    // Float angles at position ~4000 carry ~1e-4 relative phase error in any float formulation.
    EXPECT_LT(max_abs_diff(x, expected), 1e-5);
  }
}

TEST_F(ReferenceKernels, AttentionMatchesNumpy) {
  struct Case {
    int n_head, n_head_kv, head_dim;
    int64_t n_tokens;
    int32_t pos0;
    float softcap;
    int32_t window;
  };
  const Case cases[] = {
      {4, 4, 8, 1, 0, 0.0f, 0},  {4, 2, 16, 5, 0, 0.0f, 0}, {6, 2, 8, 3, 9, 0.0f, 0},
      {4, 1, 8, 4, 6, 30.0f, 0}, {4, 2, 8, 6, 10, 0.0f, 4}, {2, 2, 32, 1, 20, 50.0f, 3},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(std::to_string(c.n_head) + "/" + std::to_string(c.n_head_kv) + " pos0 " +
                 std::to_string(c.pos0) + " window " + std::to_string(c.window));
    const int64_t n_pos = c.pos0 + c.n_tokens;
    const auto q = random_floats(c.n_tokens * c.n_head * c.head_dim, 10, 2.0f);
    const auto k = random_floats(n_pos * c.n_head_kv * c.head_dim, 11, 2.0f);
    const auto v = random_floats(n_pos * c.n_head_kv * c.head_dim, 12);
    const AttentionParams p =
        test::attention_params(c.n_head, c.n_head_kv, c.head_dim, c.softcap, c.window);
    nlohmann::json args = {{"q", q},
                           {"k", k},
                           {"v", v},
                           {"n_head", p.n_head},
                           {"n_head_kv", p.n_head_kv},
                           {"head_dim", p.head_dim},
                           {"n_tokens", c.n_tokens},
                           {"pos0", c.pos0},
                           {"scale", p.scale},
                           {"softcap", p.softcap},
                           {"window", p.window}};
    const auto expected = run_oracle("attention", args);
    ASSERT_EQ(expected.size(), q.size());
    args["kv_f16"] = true;
    const auto expected_f16 = run_oracle("attention", args);
    ASSERT_EQ(expected_f16.size(), q.size());
    // The F16 cache as the model writes it: rounded by to_f16, read by attention_f16.
    std::vector<uint16_t> k16(k.size()), v16(v.size());
    to_f16(k.data(), k16.data(), static_cast<int64_t>(k.size()));
    to_f16(v.data(), v16.data(), static_cast<int64_t>(v.size()));
    for (int threads : {1, 2, 3}) {
      ThreadPool pool(threads);
      std::vector<float> out(q.size());
      attention(p, q.data(), c.n_tokens, c.pos0, k.data(), v.data(), out.data(), &pool);
      EXPECT_LT(max_abs_diff(out, expected), 1e-5) << threads << " threads";
      attention_f16(p, q.data(), c.n_tokens, c.pos0, k16.data(), v16.data(), out.data(), &pool);
      EXPECT_LT(max_abs_diff(out, expected_f16), 1e-5) << threads << " threads, F16 cache";
    }
    // Half precision moves the result measurably: the F16 oracle is not the F32 one.
    EXPECT_GT(max_abs_diff(expected_f16, expected), 1e-5);
  }
}

// to_f16 rounds as numpy's float32 -> float16 conversion (round to nearest even) on values
// around every rounding case: halfway ties both ways, subnormal halves, overflow to inf (JSON
// cannot carry inf or NaN; tests/tensor checks those bit patterns).
TEST_F(ReferenceKernels, ToF16MatchesNumpy) {
  std::vector<float> x = {0.0f,    -0.0f,    1.0f,     65504.0f, 65519.99f, 65520.0f, -70000.0f,
                          6.1e-5f, 5.96e-8f, 2.98e-8f, 2.99e-8f, 1e-10f,    -3.0e-6f};
  for (float tie : {1.0f + 1.0f / 2048.0f, 1.0f + 3.0f / 2048.0f}) {  // halfway between halves
    x.push_back(tie);
    x.push_back(-tie);
    x.push_back(std::nextafter(tie, 0.0f));
    x.push_back(std::nextafter(tie, 2.0f));
  }
  const auto noise = random_floats(37, 13, 100.0f);
  x.insert(x.end(), noise.begin(), noise.end());
  nlohmann::json args = {{"x", x}};
  const auto expected = run_oracle("to_f16", args);
  ASSERT_EQ(expected.size(), x.size());
  std::vector<uint16_t> bits(x.size());
  to_f16(x.data(), bits.data(), static_cast<int64_t>(x.size()));
  for (size_t i = 0; i < x.size(); ++i) {
    EXPECT_EQ(bits[i], static_cast<uint16_t>(expected[i])) << "x = " << x[i];
  }
}

}  // namespace
}  // namespace edgelm::kernels
