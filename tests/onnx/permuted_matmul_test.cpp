// Transposes folded into activation x activation MatMuls (attention's head split, K^T and head
// merge): the fused node must equal the definition (Transpose, then numpy-broadcast MatMul)
// evaluated here in double, on 1 and 2 threads, and the session must reuse its output buffers.
#include <gtest/gtest.h>

#include <random>

#include "onnx/model_builder.h"
#include "onnx/onnx_test_util.h"

namespace edgelm::onnx::test {
namespace {

TestAttr perm(std::vector<int64_t> p) {
  TestAttr a;
  a.name = "perm";
  a.ints = std::move(p);
  a.is_ints = true;
  return a;
}

std::vector<float> random_values(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

// Element (b, t, h, d) of a [B, T, H, D] row-major tensor.
struct Bthd {
  const std::vector<float>& v;
  int64_t t, h, d;
  double at(int64_t b, int64_t ti, int64_t hi, int64_t di) const {
    return v[static_cast<size_t>(((b * t + ti) * h + hi) * d + di)];
  }
};

// Attention without scale or mask, as a PyTorch export spells it over x [B, T, H, D] (queries)
// and y [B, T, H, D] (keys and values):
//   q = Transpose(x, 0 2 1 3), kt = Transpose(y, 0 2 3 1), v = Transpose(y2, 0 2 1 3)
//   s = MatMul(q, kt); o = MatMul(s, v); out = Transpose(o, 0 2 1 3)   [B, T, H, D]
// y is read by two Transposes, so each Transpose has one reader (the MatMul) as in the exports.
TestModel attention_model(int64_t b, int64_t t, int64_t h, int64_t d) {
  TestModel m;
  m.inputs = {{"x", DataType::kFloat, {b, -1, h, d}}, {"y", DataType::kFloat, {b, -1, h, d}}};
  m.outputs = {{"out", DataType::kFloat, {b, -1, h, d}}};
  m.nodes = {{"Transpose", {"x"}, {"q"}, {perm({0, 2, 1, 3})}},
             {"Transpose", {"y"}, {"kt"}, {perm({0, 2, 3, 1})}},
             {"Transpose", {"y"}, {"v"}, {perm({0, 2, 1, 3})}},
             {"MatMul", {"q", "kt"}, {"s"}},
             {"MatMul", {"s", "v"}, {"o"}},
             {"Transpose", {"o"}, {"out"}, {perm({0, 2, 1, 3})}}};
  return m;
}

TEST(OnnxPermutedMatMul, AttentionTransposesFoldAndMatchTheDefinition) {
  const int64_t B = 2, T = 7, H = 3, D = 5;
  const auto bytes = attention_model(B, T, H, D).bytes();
  const auto x = random_values(static_cast<size_t>(B * T * H * D), 1);
  const auto y = random_values(static_cast<size_t>(B * T * H * D), 2);
  // want[b][t][h][d] = sum_u (sum_e x[b,t,h,e] y[b,u,h,e]) y[b,u,h,d]
  std::vector<double> want(x.size());
  const Bthd xs{x, T, H, D}, ys{y, T, H, D};
  for (int64_t bi = 0; bi < B; ++bi) {
    for (int64_t hi = 0; hi < H; ++hi) {
      for (int64_t ti = 0; ti < T; ++ti) {
        for (int64_t di = 0; di < D; ++di) {
          double acc = 0;
          for (int64_t u = 0; u < T; ++u) {
            double score = 0;
            for (int64_t e = 0; e < D; ++e) score += xs.at(bi, ti, hi, e) * ys.at(bi, u, hi, e);
            acc += score * ys.at(bi, u, hi, di);
          }
          want[static_cast<size_t>(((bi * T + ti) * H + hi) * D + di)] = acc;
        }
      }
    }
  }
  for (int threads : {1, 2}) {
    SessionOptions options;
    options.threads = threads;
    auto session = Session::from_bytes(bytes, options);
    ASSERT_TRUE(session) << session.error().to_string();
    // Both MatMuls absorb their Transposes: only the two fused nodes are left.
    EXPECT_EQ((*session)->stats().fused_patterns, 2);
    EXPECT_EQ((*session)->stats().nodes_scheduled, 2);
    auto xt = Tensor::from_floats({B, T, H, D}, x);
    auto yt = Tensor::from_floats({B, T, H, D}, y);
    for (int run = 0; run < 2; ++run) {
      auto out = (*session)->run({"out"}, {{"x", *xt}, {"y", *yt}});
      ASSERT_TRUE(out) << out.error().to_string();
      const Tensor& o = (*out)[0];
      ASSERT_EQ(o.shape(), (std::vector<int64_t>{B, T, H, D}));
      for (size_t i = 0; i < want.size(); ++i) {
        ASSERT_NEAR(o.data<float>()[i], want[i], 1e-4 * (1.0 + std::fabs(want[i]))) << i;
      }
    }
  }
}

// B's batch broadcasts (one [K, N] matrix for every batch of A) and A keeps its layout; B is
// read transposed from [N, K].
TEST(OnnxPermutedMatMul, BroadcastBatchAndTransposedB) {
  const int64_t B = 3, M = 4, K = 6, N = 5;
  TestModel m;
  m.inputs = {{"a", DataType::kFloat, {B, M, K}}, {"w", DataType::kFloat, {1, N, K}}};
  m.outputs = {{"y", DataType::kFloat, {B, M, N}}};
  m.nodes = {{"Transpose", {"w"}, {"wt"}, {perm({0, 2, 1})}}, {"MatMul", {"a", "wt"}, {"y"}}};
  const auto bytes = m.bytes();
  const auto a = random_values(static_cast<size_t>(B * M * K), 3);
  const auto w = random_values(static_cast<size_t>(N * K), 4);
  for (int threads : {1, 2}) {
    SessionOptions options;
    options.threads = threads;
    auto session = Session::from_bytes(bytes, options);
    ASSERT_TRUE(session) << session.error().to_string();
    EXPECT_EQ((*session)->stats().fused_patterns, 1);
    auto at = Tensor::from_floats({B, M, K}, a);
    auto wt = Tensor::from_floats({1, N, K}, w);
    auto out = (*session)->run({"y"}, {{"a", *at}, {"w", *wt}});
    ASSERT_TRUE(out) << out.error().to_string();
    ASSERT_EQ((*out)[0].shape(), (std::vector<int64_t>{B, M, N}));
    for (int64_t bi = 0; bi < B; ++bi) {
      for (int64_t i = 0; i < M; ++i) {
        for (int64_t j = 0; j < N; ++j) {
          double want = 0;
          for (int64_t r = 0; r < K; ++r) want += double{a[(bi * M + i) * K + r]} * w[j * K + r];
          ASSERT_NEAR((*out)[0].data<float>()[(bi * M + i) * N + j], want, 1e-4) << bi << i << j;
        }
      }
    }
  }
}

// A Transpose that moves A's last axis cannot be folded (the GEMM reads A's rows contiguously):
// it stays a node and the result is still right.
TEST(OnnxPermutedMatMul, TransposeOfALastAxisStaysUnfolded) {
  const int64_t M = 3, K = 4, N = 2;
  TestModel m;
  m.inputs = {{"a", DataType::kFloat, {K, M}}, {"b", DataType::kFloat, {K, N}}};
  m.outputs = {{"y", DataType::kFloat, {M, N}}};
  m.nodes = {{"Transpose", {"a"}, {"at"}, {perm({1, 0})}}, {"MatMul", {"at", "b"}, {"y"}}};
  const auto bytes = m.bytes();
  auto session = Session::from_bytes(bytes, SessionOptions{});
  ASSERT_TRUE(session) << session.error().to_string();
  EXPECT_EQ((*session)->stats().fused_patterns, 0);
  const auto a = random_values(static_cast<size_t>(K * M), 5);
  const auto b = random_values(static_cast<size_t>(K * N), 6);
  auto at = Tensor::from_floats({K, M}, a);
  auto bt = Tensor::from_floats({K, N}, b);
  auto out = (*session)->run({"y"}, {{"a", *at}, {"b", *bt}});
  ASSERT_TRUE(out) << out.error().to_string();
  for (int64_t i = 0; i < M; ++i) {
    for (int64_t j = 0; j < N; ++j) {
      double want = 0;
      for (int64_t r = 0; r < K; ++r) want += double{a[r * M + i]} * b[r * N + j];
      ASSERT_NEAR((*out)[0].data<float>()[i * N + j], want, 1e-5);
    }
  }
}

// A graph output handed to the caller returns to the arena once the caller drops it: repeated
// runs then allocate nothing new (the arena's peak stops growing).
TEST(OnnxArena, OutputBuffersAreReusedAfterTheCallerDropsThem) {
  const auto bytes = attention_model(1, 9, 2, 4).bytes();
  auto session = Session::from_bytes(bytes, SessionOptions{});
  ASSERT_TRUE(session) << session.error().to_string();
  const auto x = random_values(72, 7);
  auto xt = Tensor::from_floats({1, 9, 2, 4}, x);
  uint64_t peak_after_first = 0;
  for (int run = 0; run < 4; ++run) {
    auto out = (*session)->run({"out"}, {{"x", *xt}, {"y", *xt}});
    ASSERT_TRUE(out) << out.error().to_string();
    if (run == 0) peak_after_first = (*session)->stats().peak_arena_bytes;
  }
  EXPECT_GT(peak_after_first, 0u);
  EXPECT_EQ((*session)->stats().peak_arena_bytes, peak_after_first);
  // While the caller still holds an output, the next run must not overwrite it.
  auto held = (*session)->run({"out"}, {{"x", *xt}, {"y", *xt}});
  ASSERT_TRUE(held);
  const std::vector<float> before((*held)[0].data<float>(), (*held)[0].data<float>() + 72);
  const auto other = random_values(72, 8);
  auto ot = Tensor::from_floats({1, 9, 2, 4}, other);
  auto next = (*session)->run({"out"}, {{"x", *ot}, {"y", *ot}});
  ASSERT_TRUE(next);
  EXPECT_NE((*next)[0].raw(), (*held)[0].raw());
  EXPECT_EQ(std::vector<float>((*held)[0].data<float>(), (*held)[0].data<float>() + 72), before);
}

}  // namespace
}  // namespace edgelm::onnx::test
