// The fused edgelm.Attention node: it must fire on PyTorch's GPT-2 (Where mask) and Llama (Add
// mask, Cast) exports at opsets 13 and 17 and agree with the unfused graph; on hand-built graphs
// it must equal softmax(scale Q K^T + mask) V computed here in double, and it must not fire (or
// must fall back at run time) where the pattern differs.
#include <gtest/gtest.h>

#include <random>

#include "onnx/graph.h"
#include "onnx/model_builder.h"
#include "onnx/onnx_test_util.h"

namespace edgelm::onnx::test {
namespace {

std::vector<float> random_values(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

// How many nodes of the optimized plan have op type `op`.
int count_planned(ModelDef model, std::string_view op) {
  auto order = validate_model(model, "model");
  EXPECT_TRUE(order) << order.error().to_string();
  if (!order) return -1;
  auto plan = build_plan(model, *order, PlanOptions{});
  EXPECT_TRUE(plan) << plan.error().to_string();
  if (!plan) return -1;
  return static_cast<int>(
      std::count_if(plan->nodes.begin(), plan->nodes.end(),
                    [&](const PlannedNode& n) { return n.def->op_type == op; }));
}

int count_planned(const std::vector<uint8_t>& bytes, std::string_view op) {
  auto model = parse_model(bytes, nullptr, LoadOptions{});
  EXPECT_TRUE(model) << model.error().to_string();
  return model ? count_planned(*model, op) : -1;
}

std::vector<float> run_logits(const fs::path& model, int64_t batch, const std::vector<int64_t>& ids,
                              bool optimize, int threads) {
  SessionOptions options;
  options.optimize = optimize;
  options.threads = threads;
  auto session = Session::open(model, options);
  EXPECT_TRUE(session) << session.error().to_string();
  if (!session) return {};
  auto input = Tensor::from_int64({batch, static_cast<int64_t>(ids.size()) / batch}, ids);
  auto out = (*session)->run({"logits"}, {{"input_ids", *input}});
  EXPECT_TRUE(out) << out.error().to_string();
  if (!out) return {};
  return std::vector<float>((*out)[0].data<float>(), (*out)[0].data<float>() + (*out)[0].numel());
}

TEST(OnnxAttention, FusesTorchExportsAndMatchesTheUnfusedGraph) {
  const fs::path dir = models_dir();
  // Batch 2 of 23 tokens, besides the 7 the parity test uses.
  std::vector<int64_t> ids(46);
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int64_t>((i * 37 + 11) % 97);
  for (const char* file :
       {"gpt2_op13.onnx", "gpt2_op17.onnx", "llama_op13.onnx", "llama_op17.onnx"}) {
    auto model = load_model_file(dir / file, true);
    ASSERT_TRUE(model) << model.error().to_string();
    EXPECT_EQ(count_planned(*model, "edgelm.Attention"), 2) << file;  // one per layer
    EXPECT_EQ(count_planned(*model, "Softmax"), 0) << file;
    const auto unfused = run_logits(dir / file, 2, ids, false, 1);
    ASSERT_EQ(unfused.size(), 46u * 97u);
    for (int threads : {1, 2}) {
      const auto fused = run_logits(dir / file, 2, ids, true, threads);
      ASSERT_EQ(fused.size(), unfused.size());
      EXPECT_LT(max_abs_diff(unfused, fused.data(), fused.size()), 1e-4f)
          << file << " threads=" << threads;
    }
  }
}

// q [B, H, S, D], k and v [B, H, T, D] as graph inputs; scores = MatMul(q, Transpose(k)).
struct AttentionGraph {
  int64_t b = 1, h = 2, s = 5, t = 5, d = 8;
  float scale = 0.35f;
  std::string scale_op = "Mul";    // Mul, Div or empty (no scale)
  std::string mask_op;             // "", Add or Where
  std::vector<int64_t> mask_dims;  // shape of the mask input
  int64_t softmax_axis = -1;
  bool per_head_scale = false;     // scale of shape [H, 1, 1]
  bool scores_are_output = false;  // the scaled scores are a second graph output

  std::vector<uint8_t> bytes() const {
    TestModel m;
    TestAttr perm{"perm", 0, {0, 1, 3, 2}, true};
    m.inputs = {{"q", DataType::kFloat, {b, h, s, d}},
                {"k", DataType::kFloat, {b, h, t, d}},
                {"v", DataType::kFloat, {b, h, t, d}}};
    m.nodes = {{"Transpose", {"k"}, {"kt"}, {perm}}, {"MatMul", {"q", "kt"}, {"qk"}}};
    std::string x = "qk";
    if (!scale_op.empty()) {
      if (per_head_scale) {
        m.initializers.push_back({"c",
                                  DataType::kFloat,
                                  {h, 1, 1},
                                  float_bytes(std::vector<float>(static_cast<size_t>(h), scale))});
      } else {
        m.initializers.push_back({"c", DataType::kFloat, {}, float_bytes({scale})});
      }
      m.nodes.push_back({scale_op, {x, "c"}, {"scaled"}});
      x = "scaled";
    }
    if (mask_op == "Add") {
      m.inputs.push_back({"mask", DataType::kFloat, mask_dims});
      m.nodes.push_back({"Add", {x, "mask"}, {"masked"}});
      x = "masked";
    } else if (mask_op == "Where") {
      m.inputs.push_back({"mask", DataType::kBool, mask_dims});
      m.initializers.push_back({"fill", DataType::kFloat, {}, float_bytes({-INFINITY})});
      m.nodes.push_back({"Where", {"mask", "fill", x}, {"masked"}});
      x = "masked";
    }
    m.nodes.push_back({"Softmax", {x}, {"p"}, {TestAttr{"axis", softmax_axis, {}, false}}});
    m.nodes.push_back({"MatMul", {"p", "v"}, {"out"}});
    m.outputs = {{"out", DataType::kFloat, {}}};
    if (scores_are_output) m.outputs.push_back({"scaled", DataType::kFloat, {}});
    return m.bytes();
  }
};

// The definition in double: out[b,h,i,:] = sum_j softmax_j(scale q_i.k_j + mask_ij) v_j with a
// causal mask (j > i masked) when `causal`.
std::vector<double> reference(const AttentionGraph& g, const std::vector<float>& q,
                              const std::vector<float>& k, const std::vector<float>& v,
                              bool causal) {
  std::vector<double> out(static_cast<size_t>(g.b * g.h * g.s * g.d));
  std::vector<double> p(static_cast<size_t>(g.t));
  for (int64_t bh = 0; bh < g.b * g.h; ++bh) {
    for (int64_t i = 0; i < g.s; ++i) {
      double max = -INFINITY;
      for (int64_t j = 0; j < g.t; ++j) {
        double dot = 0;
        for (int64_t e = 0; e < g.d; ++e)
          dot += double{q[(bh * g.s + i) * g.d + e]} * k[(bh * g.t + j) * g.d + e];
        const double scale = g.scale_op == "Mul" ? g.scale : g.scale_op == "Div" ? 1 / g.scale : 1;
        p[j] = causal && j > i ? -INFINITY : dot * scale;
        max = std::max(max, p[j]);
      }
      double sum = 0;
      for (double& x : p) sum += (x = std::exp(x - max));
      for (int64_t e = 0; e < g.d; ++e) {
        double acc = 0;
        for (int64_t j = 0; j < g.t; ++j) acc += p[j] / sum * v[(bh * g.t + j) * g.d + e];
        out[(bh * g.s + i) * g.d + e] = acc;
      }
    }
  }
  return out;
}

struct Feeds {
  std::vector<float> q, k, v;
  Tensor mask;
  std::vector<std::pair<std::string, Tensor>> list;
};

// Random q, k, v and a causal mask of g.mask_dims (its last two dims are [S, T] or broadcast).
Feeds make_feeds(const AttentionGraph& g) {
  Feeds f;
  f.q = random_values(static_cast<size_t>(g.b * g.h * g.s * g.d), 11);
  f.k = random_values(static_cast<size_t>(g.b * g.h * g.t * g.d), 12);
  f.v = random_values(static_cast<size_t>(g.b * g.h * g.t * g.d), 13);
  f.list = {{"q", *Tensor::from_floats({g.b, g.h, g.s, g.d}, f.q)},
            {"k", *Tensor::from_floats({g.b, g.h, g.t, g.d}, f.k)},
            {"v", *Tensor::from_floats({g.b, g.h, g.t, g.d}, f.v)}};
  if (g.mask_op.empty()) return f;
  const bool is_bool = g.mask_op == "Where";
  f.mask = *Tensor::zeros(is_bool ? DataType::kBool : DataType::kFloat, g.mask_dims);
  const int64_t rows = g.mask_dims[g.mask_dims.size() - 2];
  const int64_t cols = g.mask_dims.back();
  for (int64_t n = 0; n < f.mask.numel(); ++n) {
    const int64_t i = (n / cols) % rows, j = n % cols;
    const bool future = j > i;
    if (is_bool) {
      f.mask.mutable_data<uint8_t>()[n] = future ? 1 : 0;
    } else {
      f.mask.mutable_data<float>()[n] = future ? -INFINITY : 0.0f;
    }
  }
  f.list.push_back({"mask", f.mask});
  return f;
}

Tensor run_graph(const std::vector<uint8_t>& bytes, const Feeds& feeds, bool optimize,
                 int threads) {
  SessionOptions options;
  options.optimize = optimize;
  options.threads = threads;
  auto session = Session::from_bytes(bytes, options);
  EXPECT_TRUE(session) << session.error().to_string();
  if (!session) return {};
  auto out = (*session)->run({"out"}, feeds.list);
  EXPECT_TRUE(out) << out.error().to_string();
  return out ? (*out)[0] : Tensor();
}

void expect_matches(const Tensor& got, const std::vector<double>& want, const char* what) {
  ASSERT_EQ(static_cast<size_t>(got.numel()), want.size()) << what;
  for (size_t i = 0; i < want.size(); ++i) {
    ASSERT_NEAR(got.data<float>()[i], want[i], 1e-4 * (1 + std::fabs(want[i]))) << what << " " << i;
  }
}

TEST(OnnxAttention, MatchesTheDefinitionWithAndWithoutMasks) {
  AttentionGraph no_mask;  // long enough for several query-row blocks
  no_mask.s = no_mask.t = 300;
  no_mask.d = 4;
  no_mask.scale_op = "Div";
  AttentionGraph add_mask;
  add_mask.b = 2;
  add_mask.s = add_mask.t = 9;
  add_mask.mask_op = "Add";
  add_mask.mask_dims = {1, 1, 9, 9};
  AttentionGraph where_mask;
  where_mask.s = where_mask.t = 6;
  where_mask.scale_op = "";
  where_mask.mask_op = "Where";
  where_mask.mask_dims = {6, 6};
  for (const AttentionGraph& g : {no_mask, add_mask, where_mask}) {
    const auto bytes = g.bytes();
    const std::string what = g.mask_op.empty() ? "no mask" : g.mask_op;
    EXPECT_EQ(count_planned(bytes, "edgelm.Attention"), 1) << what;
    const Feeds feeds = make_feeds(g);
    const auto want = reference(g, feeds.q, feeds.k, feeds.v, !g.mask_op.empty());
    for (int threads : {1, 2})
      expect_matches(run_graph(bytes, feeds, true, threads), want, what.c_str());
    expect_matches(run_graph(bytes, feeds, false, 1), want, what.c_str());
  }
}

TEST(OnnxAttention, DoesNotFireOnOtherPatterns) {
  std::vector<AttentionGraph> cases(3);
  cases[0].softmax_axis = 2;          // softmax over the query axis
  cases[1].per_head_scale = true;     // a [H, 1, 1] scale, not a scalar
  cases[2].scores_are_output = true;  // the scaled scores are also returned
  for (const AttentionGraph& g : cases) {
    const auto bytes = g.bytes();
    EXPECT_EQ(count_planned(bytes, "edgelm.Attention"), 0);
    const Feeds feeds = make_feeds(g);
    const Tensor fused = run_graph(bytes, feeds, true, 2);
    const Tensor unfused = run_graph(bytes, feeds, false, 1);
    ASSERT_EQ(fused.shape(), unfused.shape());
    const std::vector<float> u(unfused.data<float>(), unfused.data<float>() + unfused.numel());
    EXPECT_LT(max_abs_diff(u, fused.data<float>(), u.size()), 1e-5f);
  }
  // Softmax, then Add, then MatMul: the mask comes after the softmax, so no attention.
  TestModel wrong_order;
  wrong_order.inputs = {{"a", DataType::kFloat, {1, 2, 3, 3}},
                        {"b", DataType::kFloat, {1, 2, 3, 3}}};
  wrong_order.outputs = {{"out", DataType::kFloat, {}}};
  wrong_order.nodes = {{"MatMul", {"a", "b"}, {"ab"}},
                       {"Softmax", {"ab"}, {"p"}},
                       {"Add", {"p", "b"}, {"pb"}},
                       {"MatMul", {"pb", "b"}, {"out"}}};
  EXPECT_EQ(count_planned(wrong_order.bytes(), "edgelm.Attention"), 0);
}

// A mask that broadcasts the scores to a larger batch matches at load time but not at run time:
// the node runs the original ops and the result equals the unfused graph's.
TEST(OnnxAttention, FallsBackWhenTheMaskEnlargesTheScores) {
  AttentionGraph g;
  g.mask_op = "Add";
  g.mask_dims = {3, 2, 5, 5};  // batch 3 against q's batch 1
  const auto bytes = g.bytes();
  EXPECT_EQ(count_planned(bytes, "edgelm.Attention"), 1);
  const Feeds feeds = make_feeds(g);
  for (int threads : {1, 2}) {
    const Tensor fused = run_graph(bytes, feeds, true, threads);
    const Tensor unfused = run_graph(bytes, feeds, false, 1);
    ASSERT_EQ(fused.shape(), (std::vector<int64_t>{3, 2, 5, 8}));
    ASSERT_EQ(fused.shape(), unfused.shape());
    const std::vector<float> u(unfused.data<float>(), unfused.data<float>() + unfused.numel());
    EXPECT_LT(max_abs_diff(u, fused.data<float>(), u.size()), 1e-6f);
  }
}

}  // namespace
}  // namespace edgelm::onnx::test

namespace edgelm::onnx::test {
namespace {

// Packed weights' sources are freed at load (heap copies dropped, mapped pages given back): the
// logits must not depend on how the file was read, including external data and misaligned
// raw_data (copied by the loader), and a second run must read nothing stale.
TEST(OnnxWeights, ReleasingPackedSourcesKeepsResults) {
  const fs::path dir = models_dir();
  const auto ids = test_ids(dir);
  for (const char* file : {"gpt2_op17.onnx", "llama_ext_op17.onnx"}) {
    for (int quant_bits : {0, 8}) {
      std::vector<std::vector<float>> results;
      for (bool mmap : {true, false}) {
        SessionOptions options;
        options.use_mmap = mmap;
        options.quant_bits = quant_bits;
        auto session = Session::open(dir / file, options);
        ASSERT_TRUE(session) << session.error().to_string();
        auto input = Tensor::from_int64({1, static_cast<int64_t>(ids.size())}, ids);
        for (int run = 0; run < 2; ++run) {
          auto out = (*session)->run({"logits"}, {{"input_ids", *input}});
          ASSERT_TRUE(out) << out.error().to_string();
          const Tensor& t = (*out)[0];
          results.emplace_back(t.data<float>(), t.data<float>() + t.numel());
        }
      }
      for (const auto& r : results) EXPECT_EQ(r, results[0]) << file << " q" << quant_bits;
    }
  }
  // The float ones still agree with PyTorch.
  const auto torch = read_values<float>(dir / "torch_logits_llama.bin");
  auto session = Session::open(dir / "llama_ext_op17.onnx", SessionOptions{});
  ASSERT_TRUE(session);
  auto input = Tensor::from_int64({1, static_cast<int64_t>(ids.size())}, ids);
  auto out = (*session)->run({"logits"}, {{"input_ids", *input}});
  ASSERT_TRUE(out);
  ASSERT_EQ(static_cast<size_t>((*out)[0].numel()), torch.size());
  EXPECT_LT(max_abs_diff(torch, (*out)[0].data<float>(), torch.size()), 1e-4f);
}

}  // namespace
}  // namespace edgelm::onnx::test

namespace edgelm::onnx::test {
namespace {

// PyTorch's export of attention without a mask (MatMul -> Div -> Softmax -> MatMul), made by
// tests/onnx/make_unmasked_attention.py: fused at opsets 13 and 17 and equal to ONNX Runtime,
// PyTorch and the unfused graph.
TEST(OnnxAttention, FusesTorchExportWithoutMask) {
  const fs::path dir = edgelm::test::binary_dir() / "onnx_unmasked_attention";
  ASSERT_TRUE(build_once(dir, [](const fs::path& tmp) {
    const std::string script =
        (edgelm::test::source_dir() / "tests/onnx/make_unmasked_attention.py").string();
    return shell(edgelm::test::python3() + " " + script + " " + tmp.string() + " > " +
                 tmp.string() + "/make.log 2>&1") == 0;
  }));
  const auto ids = read_values<int64_t>(dir / "ids.bin");
  const auto torch = read_values<float>(dir / "torch_logits.bin");
  for (const char* file : {"unmasked_op13.onnx", "unmasked_op17.onnx"}) {
    auto model = load_model_file(dir / file, true);
    ASSERT_TRUE(model) << model.error().to_string();
    EXPECT_EQ(count_planned(*model, "edgelm.Attention"), 2) << file;
    const auto ort = run_ort(
        dir / file,
        {ort_input("input_ids", "int64", {1, static_cast<int64_t>(ids.size())}, dir / "ids.bin")});
    ASSERT_EQ(ort.size(), 1u);
    const auto expected = ort[0].floats();
    ASSERT_EQ(expected.size(), torch.size());
    EXPECT_LT(max_abs_diff(expected, torch.data(), torch.size()), 1e-4f) << file;
    for (bool optimize : {true, false}) {
      for (int threads : {1, 2}) {
        const auto logits = run_logits(dir / file, 1, ids, optimize, threads);
        ASSERT_EQ(logits.size(), expected.size());
        EXPECT_LT(max_abs_diff(expected, logits.data(), logits.size()), 1e-4f)
            << file << " optimize=" << optimize << " threads=" << threads;
      }
    }
  }
}

}  // namespace
}  // namespace edgelm::onnx::test
