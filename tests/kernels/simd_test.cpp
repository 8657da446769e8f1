// Every fast path this CPU can run against the scalar reference, for every weight type, on odd
// and edge shapes, token counts 1..17, and extreme values.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <tuple>

#include "kernels/interleaved.h"
#include "kernels/test_util.h"

namespace edgelm::kernels {
namespace {

using test::random_floats;

std::vector<std::string> fast_paths() {
  std::vector<std::string> paths;
  for (std::string_view p : available_cpu_paths()) {
    if (p != "scalar") paths.emplace_back(p);
  }
  return paths;
}

class FastPaths : public ::testing::Test {
 protected:
  void TearDown() override { set_cpu_path(available_cpu_paths().front()); }

  // Runs fn once on the reference and once per fast path, handing it the path name.
  template <class Fn>
  void for_each_fast_path(const Fn& fn) {
    ASSERT_FALSE(fast_paths().empty());
    for (const std::string& path : fast_paths()) {
      SCOPED_TRACE("path " + path);
      ASSERT_TRUE(set_cpu_path(path));
      fn(path);
    }
  }
};

std::vector<float> run_matmul(const MatrixView& w, const std::vector<float>& x, int64_t n_tokens,
                              ThreadPool& pool) {
  std::vector<float> y(static_cast<size_t>(w.rows * n_tokens), std::nanf(""));
  matmul(w, x.data(), n_tokens, y.data(), &pool);
  return y;
}

// What matmul must produce: the double-precision product of the decoded weights and the exact x,
// within a per-output bound. Fast paths may quantize x to int8 in blocks of 32 (round to nearest,
// step d = max|x_block|/127), which moves each x_c by at most d/2. So
// |y - oracle| <= sum_c |w_rc| * d(c) / 2, plus float rounding of the sums (relative 1e-5 of
// sum |w_rc x_c|, far above the ~cols * 6e-8 it can reach).
struct MatmulExpectation {
  std::vector<double> oracle, bound;
  int64_t n_outputs = 0;

  MatmulExpectation(const test::QuantMatrix& m, const std::vector<float>& x, int64_t n_tokens)
      : oracle(test::matmul_oracle(m, x, n_tokens)), bound(oracle.size()) {
    const int64_t rows = m.view.rows, cols = m.view.cols;
    n_outputs = rows * n_tokens;
    std::vector<double> half_step(static_cast<size_t>(cols * n_tokens), 0.0);
    if (cols % 32 == 0) {
      for (int64_t b = 0; b < cols * n_tokens / 32; ++b) {
        float amax = 0.0f;
        for (int i = 0; i < 32; ++i) amax = std::max(amax, std::abs(x[b * 32 + i]));
        std::fill_n(half_step.begin() + b * 32, 32, amax / 127.0 / 2.0 * (1.0 + 1e-6));
      }
    }
    for (int64_t t = 0; t < n_tokens; ++t) {
      for (int64_t r = 0; r < rows; ++r) {
        double b = 0.0, magnitude = 0.0;
        for (int64_t c = 0; c < cols; ++c) {
          const double w = std::abs(m.dequantized[r * cols + c]);
          b += w * half_step[t * cols + c];
          magnitude += w * std::abs(x[t * cols + c]);
        }
        bound[t * rows + r] = b + 1e-5 * magnitude + 1e-30;
      }
    }
  }

  void check(const std::vector<float>& y) const {
    double err2 = 0.0, ref2 = 0.0;
    for (size_t i = 0; i < oracle.size(); ++i) {
      ASSERT_LE(std::abs(y[i] - oracle[i]), bound[i]) << "output " << i;
      err2 += (y[i] - oracle[i]) * (y[i] - oracle[i]);
      ref2 += oracle[i] * oracle[i];
    }
    // The worst-case bound is loose on average: the rounding errors are independent and uniform,
    // so for Gaussian x the relative squared error is about (d^2/12) / E[x^2] ~ 3e-5
    // (d ~ 2.5 sigma / 127 for 32 samples); meaningful only over enough outputs.
    if (ref2 > 0.0 && n_outputs >= 19) {
      EXPECT_LT(err2 / ref2, 2e-4);
    }
  }
};

TEST_F(FastPaths, MatmulEveryTypeShapeAndTokenCount) {
  ThreadPool one(1), three(3);  // three threads: row counts that do not split evenly
  for (TensorType type : test::matmul_test_types()) {
    const int64_t bs = tensor_type_traits(type).block_size;
    const std::vector<int64_t> col_counts = bs == 1
                                                ? std::vector<int64_t>{1, 7, 33, 300}
                                                : std::vector<int64_t>{bs, 3 * bs, 9 * bs, 37 * bs};
    for (int64_t cols : col_counts) {
      for (int64_t rows : {1, 37}) {
        SCOPED_TRACE(std::string(tensor_type_name(type)) + " " + std::to_string(rows) + "x" +
                     std::to_string(cols));
        const auto m = test::make_matrix(type, rows, cols, random_floats(rows * cols, 20));
        for (int64_t n_tokens : {1, 2, 3, 4, 5, 8, 17}) {
          // Fewer token counts on big shapes: each is the same code with another tile.
          if (cols * rows > 20000 && n_tokens != 1 && n_tokens != 5) continue;
          SCOPED_TRACE(std::to_string(n_tokens) + " tokens");
          const auto x = random_floats(cols * n_tokens, 21 + static_cast<uint32_t>(n_tokens));
          const MatmulExpectation expected(m, x, n_tokens);
          for_each_fast_path([&](const std::string&) {
            expected.check(run_matmul(m.view, x, n_tokens, one));
            expected.check(run_matmul(m.view, x, n_tokens, three));
          });
        }
      }
    }
  }
}

// Prompt-sized batches: the AVX-512 VNNI path repacks q8_0 / q4_0 rows in groups of 16 and runs
// tiles of up to 8 tokens; row counts that are not multiples of 16 and token tails included.
TEST_F(FastPaths, MatmulPromptBatches) {
  ThreadPool one(1), two(2);
  for (TensorType type : {TensorType::kQ8_0, TensorType::kQ4_0}) {
    for (int64_t rows : {16, 50}) {
      for (int64_t cols : {32, 32 * 37}) {
        SCOPED_TRACE(std::string(tensor_type_name(type)) + " " + std::to_string(rows) + "x" +
                     std::to_string(cols));
        const auto m = test::make_matrix(type, rows, cols, random_floats(rows * cols, 60));
        for (int64_t n_tokens : {6, 9, 33}) {
          SCOPED_TRACE(std::to_string(n_tokens) + " tokens");
          const auto x = random_floats(cols * n_tokens, 61 + static_cast<uint32_t>(n_tokens), 3.0f);
          const MatmulExpectation expected(m, x, n_tokens);
          for_each_fast_path([&](const std::string&) {
            expected.check(run_matmul(m.view, x, n_tokens, one));
            expected.check(run_matmul(m.view, x, n_tokens, two));
          });
        }
      }
    }
  }
}

TEST_F(FastPaths, MatmulExtremeValues) {
  ThreadPool pool(2);
  for (TensorType type : test::matmul_test_types()) {
    SCOPED_TRACE(std::string(tensor_type_name(type)));
    const int64_t rows = 5, cols = 512;
    auto wv = random_floats(rows * cols, 30, 100.0f);
    wv[3] = 6e4f;  // near the f16 limit: stresses scales
    const auto m = test::make_matrix(type, rows, cols, wv);
    // Token 3i: huge values; 3i+1: zero except one block (zero blocks have scale 0); 3i+2: tiny
    // values. 3 tokens run the row kernels, 9 the prompt kernels.
    for (int64_t n_tokens : {3, 9}) {
      auto x = random_floats(cols * n_tokens, 31, 1e4f);
      for (int64_t t = 1; t < n_tokens; t += 3) {
        std::fill(x.begin() + t * cols, x.begin() + (t + 1) * cols, 0.0f);
        x[t * cols + 100] = -3.0f;
      }
      for (int64_t t = 2; t < n_tokens; t += 3) {
        for (int64_t c = 0; c < cols; ++c) x[t * cols + c] *= 1e-12f;
      }
      const MatmulExpectation expected(m, x, n_tokens);
      for_each_fast_path(
          [&](const std::string&) { expected.check(run_matmul(m.view, x, n_tokens, pool)); });
    }
  }
}

TEST_F(FastPaths, ElementwiseMatchReference) {
  for (int64_t n : {1, 3, 16, 17, 100, 4099}) {
    SCOPED_TRACE(std::to_string(n) + " elements");
    const auto x = random_floats(n, 40, 5.0f);
    const auto w = random_floats(n, 41);
    auto compute = [&] {
      std::vector<std::vector<float>> r(4);
      r[0].resize(n);
      rms_norm(x.data(), w.data(), n, 1e-6f, r[0].data());
      r[1] = x;
      softmax(r[1].data(), n);
      r[2] = x;
      silu_mul(r[2].data(), w.data(), n);
      r[3] = x;
      gelu_mul(r[3].data(), w.data(), n);
      return r;
    };
    ASSERT_TRUE(set_cpu_path("scalar"));
    const auto expected = compute();
    for_each_fast_path([&](const std::string&) {
      const auto got = compute();
      // Float sums over up to 4099 terms in another order: relative error well under 1e-5.
      for (int k = 0; k < 4; ++k)
        EXPECT_LT(test::nmse(got[k], expected[k]), 1e-10) << "kernel " << k;
    });
  }
}

TEST_F(FastPaths, AttentionMatchesReference) {
  struct Case {
    int n_head, n_head_kv, head_dim;
    int64_t n_tokens;
    int32_t pos0;
    float softcap;
    int32_t window;
  };
  const Case cases[] = {{8, 2, 64, 1, 40, 0.0f, 0},
                        {4, 4, 17, 7, 3, 0.0f, 0},
                        {6, 3, 32, 9, 30, 50.0f, 8},
                        {2, 1, 128, 17, 0, 0.0f, 5},
                        // 16 tokens and more: keys transposed once per call
                        {9, 3, 64, 33, 20, 0.0f, 0},
                        {4, 2, 20, 19, 0, 30.0f, 7},
                        {3, 3, 16, 70, 1, 0.0f, 0}};
  for (const Case& c : cases) {
    const int64_t n_pos = c.pos0 + c.n_tokens;
    const auto q = random_floats(c.n_tokens * c.n_head * c.head_dim, 50);
    const auto k = random_floats(n_pos * c.n_head_kv * c.head_dim, 51);
    const auto v = random_floats(n_pos * c.n_head_kv * c.head_dim, 52);
    const AttentionParams p =
        test::attention_params(c.n_head, c.n_head_kv, c.head_dim, c.softcap, c.window);
    // The same keys and values in an F16 cache (rounded by the reference conversion).
    std::vector<uint16_t> k16(k.size()), v16(v.size());
    for (size_t i = 0; i < k.size(); ++i) k16[i] = tensor::fp32_to_fp16(k[i]);
    for (size_t i = 0; i < v.size(); ++i) v16[i] = tensor::fp32_to_fp16(v[i]);
    auto run = [&](int threads, bool f16) {
      ThreadPool pool(threads);
      std::vector<float> out(q.size());
      if (f16) {
        attention_f16(p, q.data(), c.n_tokens, c.pos0, k16.data(), v16.data(), out.data(), &pool);
      } else {
        attention(p, q.data(), c.n_tokens, c.pos0, k.data(), v.data(), out.data(), &pool);
      }
      return out;
    };
    for (bool f16 : {false, true}) {
      SCOPED_TRACE(f16 ? "F16 cache" : "F32 cache");
      ASSERT_TRUE(set_cpu_path("scalar"));
      const auto expected = run(1, f16);
      for_each_fast_path([&](const std::string&) {
        EXPECT_LT(test::nmse(run(1, f16), expected), 1e-11);
        EXPECT_LT(test::nmse(run(3, f16), expected), 1e-11);
      });
    }
  }
}

// Bit for bit the reference conversion, on every length 0..70 (vector bodies and tails) and on
// values around every rounding case, including inf, NaN payloads and subnormal halves.
TEST_F(FastPaths, ToF16MatchesReference) {
  std::vector<float> x = random_floats(70, 60, 3.0f);
  const float specials[] = {0.0f,
                            -0.0f,
                            65504.0f,
                            65520.0f,
                            -65536.0f,
                            1e-10f,
                            6.0e-8f,
                            2.98e-8f,
                            -3.0e-6f,
                            1.0f + 1.0f / 2048.0f,
                            1.0f + 3.0f / 2048.0f,
                            std::numeric_limits<float>::infinity(),
                            -std::numeric_limits<float>::infinity(),
                            std::numeric_limits<float>::quiet_NaN(),
                            std::bit_cast<float>(0xff812345u)};
  std::copy(std::begin(specials), std::end(specials), x.begin() + 20);
  std::vector<uint16_t> expected(x.size());
  for (size_t i = 0; i < x.size(); ++i) expected[i] = tensor::fp32_to_fp16(x[i]);
  for_each_fast_path([&](const std::string&) {
    for (int64_t n = 0; n <= static_cast<int64_t>(x.size()); ++n) {
      std::vector<uint16_t> got(x.size() + 1, 0xabcd);
      to_f16(x.data(), got.data(), n);
      for (int64_t i = 0; i < n; ++i) ASSERT_EQ(got[i], expected[i]) << "n " << n << " i " << i;
      EXPECT_EQ(got[n], 0xabcd) << "wrote past n = " << n;
    }
  });
}

// Load-time repacking (RepackedMatrix, WeightLayout::kInterleaved16): the copy holds exactly the
// file's blocks, every path multiplies it (the reference by unpacking rows, the AVX-512 VNNI path
// natively, the AMX path from BF16 widened groups) within the same bound as the row-major matrix,
// and lookups read it back exactly.
TEST_F(FastPaths, RepackedMatricesMatchReference) {
  ThreadPool one(1), three(3);
  bool any_repacked = false;
  for (TensorType type : {TensorType::kQ8_0, TensorType::kQ4_0}) {
    // 1, 3 and 9 groups: decode's side-by-side streams (4) with and without groups left over.
    for (int64_t rows : {16, 48, 144}) {
      for (int64_t cols : {32, 96, 576}) {
        SCOPED_TRACE(std::string(tensor_type_name(type)) + " " + std::to_string(rows) + "x" +
                     std::to_string(cols));
        auto values = random_floats(rows * cols, 70, 2.0f);
        values[5] = 0.0f;  // and a zero block: scale 0
        std::fill_n(values.begin() + cols, 32, 0.0f);
        const auto m = test::make_matrix(type, rows, cols, values);
        for (const std::string& path : fast_paths()) {
          ASSERT_TRUE(set_cpu_path(path));
          MatrixView packed = m.view;
          const RepackedWeights repacked = RepackedWeights::repack({&packed});
          if (repacked.bytes() == 0) {
            EXPECT_EQ(packed.data, m.view.data);
            continue;
          }
          SCOPED_TRACE("repacked on " + path);
          any_repacked = true;
          ASSERT_EQ(packed.layout, WeightLayout::kInterleaved16);
          std::vector<uint8_t> row(m.view.row_bytes);
          std::vector<float> expected_row(static_cast<size_t>(cols)), actual_row(expected_row);
          for (int64_t r = 0; r < rows; ++r) {
            interleaved::unpack_row(packed, r, row.data());
            ASSERT_EQ(0, std::memcmp(row.data(), m.view.data + r * m.view.row_bytes, row.size()))
                << "row " << r;
            get_row(m.view, r, expected_row.data());
            get_row(packed, r, actual_row.data());
            ASSERT_EQ(expected_row, actual_row) << "row " << r;
          }
          // 16 and more: whole, padded, paired and lone 16-token tiles on the AMX path.
          for (int64_t n_tokens : {1, 2, 3, 5, 8, 9, 16, 17, 33, 50}) {
            SCOPED_TRACE(std::to_string(n_tokens) + " tokens");
            const auto x = random_floats(cols * n_tokens, 71 + static_cast<uint32_t>(n_tokens));
            const MatmulExpectation expected(m, x, n_tokens);
            expected.check(run_matmul(packed, x, n_tokens, one));
            expected.check(run_matmul(packed, x, n_tokens, three));
            // A path switched after loading still multiplies the copy (through the reference).
            ASSERT_TRUE(set_cpu_path("scalar"));
            const auto unpacked = run_matmul(m.view, x, n_tokens, one);
            EXPECT_EQ(unpacked, run_matmul(packed, x, n_tokens, three));
            ASSERT_TRUE(set_cpu_path(path));
          }
        }
      }
    }
  }
  // This machine's fast path either repacks (AVX-512 VNNI) or keeps the file layout.
  EXPECT_EQ(any_repacked, std::find(fast_paths().begin(), fast_paths().end(), "avx512vnni") !=
                              fast_paths().end());
}

TEST(Repack, OnlyWholeGroupsOfQ8_0AndQ4_0) {
  for (auto [type, rows, cols, holds] :
       {std::tuple{TensorType::kQ8_0, 32, 64, true}, std::tuple{TensorType::kQ4_0, 16, 32, true},
        std::tuple{TensorType::kQ8_0, 17, 64, false}, std::tuple{TensorType::kQ4_1, 16, 64, false},
        std::tuple{TensorType::kF16, 16, 64, false}, std::tuple{TensorType::kQ8_0, 0, 64, false}}) {
    const auto m = test::make_matrix(type, rows, cols, random_floats(rows * cols, 80));
    EXPECT_EQ(interleaved::can_hold(m.view), holds)
        << tensor_type_name(type) << " " << rows << "x" << cols;
    set_cpu_path("scalar");
    MatrixView view = m.view;
    EXPECT_EQ(RepackedWeights::repack({&view}).bytes(), 0u)
        << "the reference keeps the file layout";
    EXPECT_EQ(view.layout, WeightLayout::kRowMajor);
    set_cpu_path(available_cpu_paths().front());
  }
}

TEST(CpuPaths, ScalarIsLastAndSelectable) {
  const auto paths = available_cpu_paths();
  ASSERT_FALSE(paths.empty());
  EXPECT_EQ(paths.back(), "scalar");
  EXPECT_FALSE(set_cpu_path("no-such-path"));
  EXPECT_TRUE(set_cpu_path("scalar"));
  EXPECT_EQ(active_cpu_path(), "scalar");
  EXPECT_TRUE(set_cpu_path(paths.front()));
  EXPECT_EQ(active_cpu_path(), paths.front());
}

}  // namespace
}  // namespace edgelm::kernels
