// attention_q8_0: the scalar reference against a double-precision oracle on the dequantized
// cache, every fast path against the reference, and the q8_0 rounding of the numpy model
// reference (tests/reference/forward.py) against tensor::quantize_row bit for bit.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include "common/test_paths.h"
#include "kernels/test_util.h"

namespace edgelm::kernels {
namespace {

using test::max_abs_diff;
using test::nmse;
using test::random_floats;

struct Shape {
  int n_head, n_head_kv, head_dim;
  int64_t n_tokens;
  int32_t pos0;
  float softcap;
  int32_t window;
};

std::string describe(const Shape& s) {
  return std::to_string(s.n_head) + "/" + std::to_string(s.n_head_kv) + " heads of " +
         std::to_string(s.head_dim) + ", " + std::to_string(s.n_tokens) + " tokens at pos0 " +
         std::to_string(s.pos0) + ", softcap " + std::to_string(s.softcap) + ", window " +
         std::to_string(s.window);
}

AttentionParams params_for(const Shape& s) {
  return test::attention_params(s.n_head, s.n_head_kv, s.head_dim, s.softcap, s.window);
}

// A cache of n_pos rows as the model stores it: quantized by tensor::quantize_row, and what its
// blocks decode to.
struct Q8Cache {
  std::vector<uint8_t> blocks;
  std::vector<float> values;
};

Q8Cache make_cache(const std::vector<float>& x) {
  Q8Cache c;
  const auto n = static_cast<int64_t>(x.size());
  c.blocks.resize(tensor_bytes(TensorType::kQ8_0, static_cast<uint64_t>(n)).value());
  c.values.resize(x.size());
  EXPECT_TRUE(tensor::quantize_row(TensorType::kQ8_0, x.data(), c.blocks.data(), n).has_value());
  EXPECT_TRUE(
      tensor::dequantize_row(TensorType::kQ8_0, c.blocks.data(), c.values.data(), n).has_value());
  return c;
}

// Causal attention in double precision over float caches, written from the definition.
std::vector<double> attention_oracle(const Shape& s, const std::vector<float>& q,
                                     const std::vector<float>& k, const std::vector<float>& v) {
  const AttentionParams p = params_for(s);
  const int64_t hd = s.head_dim, kv_row = s.n_head_kv * hd, q_row = s.n_head * hd;
  std::vector<double> out(q.size(), 0.0);
  for (int64_t t = 0; t < s.n_tokens; ++t) {
    const int64_t pos = s.pos0 + t;
    for (int h = 0; h < s.n_head; ++h) {
      const int64_t kv_head = h / (s.n_head / s.n_head_kv);
      std::vector<int64_t> seen;
      std::vector<double> scores;
      for (int64_t j = 0; j <= pos; ++j) {
        if (s.window > 0 && j <= pos - s.window) continue;
        double dot = 0.0;
        for (int64_t d = 0; d < hd; ++d) {
          dot += static_cast<double>(q[t * q_row + h * hd + d]) * k[j * kv_row + kv_head * hd + d];
        }
        double score = dot * p.scale;
        if (s.softcap > 0.0f) score = s.softcap * std::tanh(score / s.softcap);
        seen.push_back(j);
        scores.push_back(score);
      }
      double max_score = -INFINITY, sum = 0.0;
      for (double x : scores) max_score = std::max(max_score, x);
      for (double& x : scores) sum += (x = std::exp(x - max_score));
      for (size_t i = 0; i < seen.size(); ++i) {
        for (int64_t d = 0; d < hd; ++d) {
          out[t * q_row + h * hd + d] += scores[i] / sum * v[seen[i] * kv_row + kv_head * hd + d];
        }
      }
    }
  }
  return out;
}

// GQA groups of 1..3, head_dim 32..128, windows, softcap, pos0 > 0, and token counts below and
// above the fast path's transposed-keys threshold (16).
std::vector<Shape> shapes() {
  std::vector<Shape> all = {{8, 2, 64, 1, 40, 0.0f, 0},  {4, 4, 32, 7, 3, 0.0f, 0},
                            {6, 3, 32, 9, 30, 50.0f, 8}, {2, 1, 128, 17, 0, 0.0f, 5},
                            {9, 3, 64, 33, 20, 0.0f, 0}, {4, 2, 96, 19, 0, 30.0f, 7},
                            {3, 3, 32, 70, 1, 0.0f, 0},  {6, 2, 64, 16, 11, 20.0f, 12}};
  for (int64_t n = 1; n <= 17; ++n) all.push_back({6, 2, 32, n, 5, 0.0f, n % 3 == 0 ? 6 : 0});
  return all;
}

struct Inputs {
  std::vector<float> q;
  Q8Cache k, v;
};

Inputs make_inputs(const Shape& s, uint32_t seed) {
  const int64_t n_pos = s.pos0 + s.n_tokens;
  Inputs in;
  in.q = random_floats(s.n_tokens * s.n_head * s.head_dim, seed, 2.0f);
  in.k = make_cache(random_floats(n_pos * s.n_head_kv * s.head_dim, seed + 1, 2.0f));
  in.v = make_cache(random_floats(n_pos * s.n_head_kv * s.head_dim, seed + 2));
  return in;
}

std::vector<float> run_q8(const Shape& s, const Inputs& in, int threads) {
  ThreadPool pool(threads);
  std::vector<float> out(in.q.size(), std::nanf(""));
  attention_q8_0(params_for(s), in.q.data(), s.n_tokens, s.pos0, in.k.blocks.data(),
                 in.v.blocks.data(), out.data(), &pool);
  return out;
}

class AttentionQ8_0 : public ::testing::Test {
 protected:
  void TearDown() override { set_cpu_path(available_cpu_paths().front()); }
};

TEST_F(AttentionQ8_0, ReferenceMatchesDoubleOracleOnDequantizedCache) {
  ASSERT_TRUE(set_cpu_path("scalar"));
  uint32_t seed = 100;
  for (const Shape& s : shapes()) {
    SCOPED_TRACE(describe(s));
    const Inputs in = make_inputs(s, seed += 3);
    const std::vector<double> expected = attention_oracle(s, in.q, in.k.values, in.v.values);
    for (int threads : {1, 3}) {
      EXPECT_LT(max_abs_diff(run_q8(s, in, threads), expected), 1e-5) << threads << " threads";
    }
    // The reference reads each element as its block decodes it, then does the F32 cache's
    // arithmetic: the same floats in, the same floats out.
    std::vector<float> f32_out(in.q.size());
    attention(params_for(s), in.q.data(), s.n_tokens, s.pos0, in.k.values.data(),
              in.v.values.data(), f32_out.data(), nullptr);
    EXPECT_EQ(run_q8(s, in, 2), f32_out);
  }
}

TEST_F(AttentionQ8_0, QuantizationMovesTheResultMeasurably) {
  ASSERT_TRUE(set_cpu_path("scalar"));
  const Shape s{4, 2, 64, 3, 20, 0.0f, 0};
  const Inputs in = make_inputs(s, 7);
  const int64_t n_pos = s.pos0 + s.n_tokens;
  const auto exact = attention_oracle(s, in.q, random_floats(n_pos * 2 * 64, 8, 2.0f),
                                      random_floats(n_pos * 2 * 64, 9));
  // Same keys and values before quantization: q8_0 differs by far more than float rounding,
  // far less than the values themselves.
  const double diff = max_abs_diff(run_q8(s, in, 1), exact);
  EXPECT_GT(diff, 1e-4);
  EXPECT_LT(diff, 5e-2);
}

TEST_F(AttentionQ8_0, FastPathsMatchReference) {
  std::vector<std::string> fast;
  for (std::string_view p : available_cpu_paths()) {
    if (p != "scalar") fast.emplace_back(p);
  }
  ASSERT_FALSE(fast.empty());
  uint32_t seed = 500;
  for (const Shape& s : shapes()) {
    SCOPED_TRACE(describe(s));
    const Inputs in = make_inputs(s, seed += 3);
    ASSERT_TRUE(set_cpu_path("scalar"));
    const std::vector<float> expected = run_q8(s, in, 1);
    for (const std::string& path : fast) {
      SCOPED_TRACE("path " + path);
      ASSERT_TRUE(set_cpu_path(path));
      EXPECT_LT(nmse(run_q8(s, in, 1), expected), 1e-11);
      EXPECT_LT(nmse(run_q8(s, in, 3), expected), 1e-11);
    }
  }
}

// The model oracle rounds K and V with forward.py's round_q8_0; it must give exactly the floats
// tensor::quantize_row's blocks decode to, including ties, zero blocks and f16-subnormal scales.
TEST(ForwardReference, RoundQ8_0MatchesQuantizeRowBitForBit) {
  std::vector<float> x;
  for (float scale : {1e-6f, 1e-3f, 1.0f, 37.5f, 1000.0f}) {
    const auto r = random_floats(64, static_cast<uint32_t>(scale * 1000) + 1, scale);
    x.insert(x.end(), r.begin(), r.end());
  }
  x.insert(x.end(), 32, 0.0f);
  // amax 127 gives d = 1 and 1/d = 1: x.5 values are exact ties, rounded away from zero.
  for (int i = 0; i < 32; ++i) x.push_back(i == 0 ? 127.0f : (i % 2 ? 1.0f : -1.0f) * (i + 0.5f));
  // amax 63.5 gives d = 0.5, 1/d = 2: quarter values tie.
  for (int i = 0; i < 32; ++i) x.push_back(i == 0 ? -63.5f : (i % 2 ? -0.25f : 0.75f) * i);
  const Q8Cache expected = make_cache(x);

  const std::filesystem::path dir = edgelm::test::binary_dir() / "attention_q8_0_test";
  std::filesystem::create_directories(dir);
  const std::filesystem::path in_file = dir / "x.bin", out_file = dir / "rounded.bin";
  std::ofstream(in_file, std::ios::binary)
      .write(reinterpret_cast<const char*>(x.data()), static_cast<std::streamsize>(x.size() * 4));
  const std::string script =
      "import sys, numpy as np; sys.path.insert(0, sys.argv[1]); from forward import round_q8_0; "
      "round_q8_0(np.fromfile(sys.argv[2], '<f4')).astype('<f4').tofile(sys.argv[3])";
  const std::string command = edgelm::test::python3() + " -c \"" + script + "\" " +
                              (edgelm::test::source_dir() / "tests" / "reference").string() + " " +
                              in_file.string() + " " + out_file.string();
  ASSERT_EQ(std::system(command.c_str()), 0) << command;
  std::vector<float> got(x.size());
  std::ifstream(out_file, std::ios::binary)
      .read(reinterpret_cast<char*>(got.data()), static_cast<std::streamsize>(got.size() * 4));
  for (size_t i = 0; i < x.size(); ++i) {
    uint32_t a, b;
    std::memcpy(&a, &got[i], 4);
    std::memcpy(&b, &expected.values[i], 4);
    ASSERT_EQ(a, b) << "element " << i << " of " << x[i] << ": numpy " << got[i] << ", tensor "
                    << expected.values[i];
  }
}

}  // namespace
}  // namespace edgelm::kernels
