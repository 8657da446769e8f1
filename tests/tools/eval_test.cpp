// edgelm eval: perplexity and KL against the independent numpy reference
// (tests/reference/eval_reference.py over tests/reference/forward.py), Q8_0 against F32 on the real
// stories260K model, validation-set scoring, the gate, and the report/plot output.
#include "edgelm/eval.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/test_paths.h"
#include "edgelm/prune.h"
#include "edgelm/quantize.h"

namespace edgelm::tools {
namespace {

namespace fs = std::filesystem;

fs::path stories_path() {
  return test::shared_models_dir() / "stories260K" / "stories260K.gguf";
}

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// The real model, its tokenizer and a Q8_0 copy, shared by the tests of this file.
class StoriesEval : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = fs::temp_directory_path() / ("edgelm-eval-test-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    auto model = model::Model::load(stories_path());
    ASSERT_TRUE(model) << model.error().to_string();
    f32_ = std::move(*model).release();
    auto tok = tokenizer::Tokenizer::from_gguf(f32_->gguf());
    ASSERT_TRUE(tok) << tok.error().to_string();
    tokenizer_ = std::move(*tok).release();
    QuantizeOptions q;
    q.recipe = parse_quant_recipe("q8_0").value();
    ASSERT_TRUE(quantize_model(f32_->gguf(), dir_ / "q8_0.gguf", q));
    auto q8 = model::Model::load(dir_ / "q8_0.gguf");
    ASSERT_TRUE(q8) << q8.error().to_string();
    q8_ = std::move(*q8).release();
    // An F32 candidate: the F32 kernels multiply exactly what the numpy reference does (Q8_0
    // matmuls also round the activations to 8 bits, as llama.cpp does, which the reference does
    // not model).
    PruneOptions sparse;
    sparse.sparsity = 0.2;
    ASSERT_TRUE(prune_model(f32_->gguf(), dir_ / "sparse.gguf", sparse));
    auto sparse_model = model::Model::load(dir_ / "sparse.gguf");
    ASSERT_TRUE(sparse_model);
    sparse_ = std::move(*sparse_model).release();
    auto tokens =
        tokenize_text(*tokenizer_, read_text(test::source_dir() / "tests/data/stories_eval.txt"));
    ASSERT_TRUE(tokens);
    tokens_ = new std::vector<int32_t>(std::move(*tokens));
  }
  static void TearDownTestSuite() {
    delete q8_;
    delete sparse_;
    delete tokenizer_;
    delete f32_;
    delete tokens_;
    fs::remove_all(dir_);
  }

  // Runs eval_reference.py; returns its JSON output.
  // kv_type: how the reference rounds K and V (edgelm eval runs the default F16 KV cache).
  static nlohmann::json reference(const std::vector<int32_t>& tokens, int n_ctx, int stride,
                                  const fs::path& candidate = {},
                                  const std::string& kv_type = "f16") {
    const fs::path ids = dir_ / "ids.json", out = dir_ / "ref.json";
    std::ofstream(ids) << nlohmann::json(tokens).dump();
    std::string cmd = test::python3() + " " +
                      (test::source_dir() / "tests/reference/eval_reference.py").string() +
                      " --model " + stories_path().string() + " --tokens " + ids.string() +
                      " --n-ctx " + std::to_string(n_ctx) + " --stride " + std::to_string(stride) +
                      " --out " + out.string() + " --kv-type " + kv_type;
    if (!candidate.empty()) cmd += " --candidate " + candidate.string();
    EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
    return nlohmann::json::parse(read_text(out));
  }

  static inline fs::path dir_;
  static inline model::Model* f32_ = nullptr;
  static inline model::Model* q8_ = nullptr;
  static inline model::Model* sparse_ = nullptr;
  static inline tokenizer::Tokenizer* tokenizer_ = nullptr;
  static inline std::vector<int32_t>* tokens_ = nullptr;
};

std::vector<int32_t> head(const std::vector<int32_t>& v, size_t n) {
  return {v.begin(), v.begin() + std::min(n, v.size())};
}

// Perplexity equals the float64 numpy reference to 4 significant digits (several windows, so the
// window/stride bookkeeping is checked too), and so do KL, its 99th percentile and top-1 agreement.
TEST_F(StoriesEval, MatchesTheNumpyReference) {
  const auto tokens = head(*tokens_, 200);
  ASSERT_EQ(tokens.size(), 200u);
  WindowOptions w;
  w.n_ctx = 64;
  w.stride = 24;
  auto ppl = perplexity(*f32_, tokens, w);
  ASSERT_TRUE(ppl) << ppl.error().to_string();
  auto cmp = compare_distributions(*f32_, *sparse_, tokens, w);
  ASSERT_TRUE(cmp) << cmp.error().to_string();
  const auto ref = reference(tokens, 64, 24, dir_ / "sparse.gguf");

  EXPECT_EQ(ppl->n_scored, 199);
  EXPECT_EQ(ref["n_scored"], 199);
  EXPECT_EQ(ppl->n_windows, 7);  // starts 0, 24, ..., 144 (the last reaches token 200)
  const double ref_ppl = ref["perplexity"];
  EXPECT_NEAR(ppl->perplexity, ref_ppl, 5e-5 * ref_ppl);
  EXPECT_NEAR(cmp->base.perplexity, ref_ppl, 5e-5 * ref_ppl);
  const double ref_cand = ref["candidate_perplexity"];
  EXPECT_NEAR(cmp->candidate.perplexity, ref_cand, 5e-5 * ref_cand);
  const double ref_kl = ref["mean_kl"];
  EXPECT_GT(ref_kl, 0.01);
  EXPECT_NEAR(cmp->mean_kl, ref_kl, 1e-3 * ref_kl);
  // A single order statistic: F16 K/V rounding flips between the float32 and float64 runs move
  // it by 1.1e-3 (measured), more than the mean.
  EXPECT_NEAR(cmp->p99_kl, ref["p99_kl"].get<double>(), 3e-3 * ref["p99_kl"].get<double>());
  EXPECT_NEAR(cmp->top1_agreement, ref["top1"].get<double>(), 1.5 / 199);

  // With an F32 cache, eval matches the reference that keeps K and V unrounded, and sits nearer
  // to it than to the F16 one (so eval runs the cache type it is given).
  WindowOptions f32_cache = w;
  f32_cache.kv_type = TensorType::kF32;
  auto ppl_f32 = perplexity(*f32_, tokens, f32_cache);
  ASSERT_TRUE(ppl_f32) << ppl_f32.error().to_string();
  const double ref_f32 = reference(tokens, 64, 24, {}, "f32")["perplexity"];
  EXPECT_NEAR(ppl_f32->perplexity, ref_f32, 5e-5 * ref_f32);
  EXPECT_LT(std::fabs(ppl_f32->perplexity - ref_f32), std::fabs(ppl_f32->perplexity - ref_ppl))
      << "F32 cache " << ppl_f32->perplexity << ", references F32 " << ref_f32 << " F16 " << ref_ppl;
}

// The acceptance bound: Q8_0 within 0.5 % perplexity of F32 over the whole test text.
TEST_F(StoriesEval, Q8_0PerplexityWithinHalfAPercentOfF32) {
  ASSERT_GT(tokens_->size(), 600u);
  WindowOptions w;
  w.n_ctx = 128;
  auto cmp = compare_distributions(*f32_, *q8_, *tokens_, w);
  ASSERT_TRUE(cmp);
  const double increase = (cmp->candidate.perplexity - cmp->base.perplexity) / cmp->base.perplexity;
  EXPECT_LT(std::fabs(increase), 0.005)
      << cmp->base.perplexity << " -> " << cmp->candidate.perplexity;
  // A trained model on simple stories: far better than the uniform 512.
  EXPECT_LT(cmp->base.perplexity, 30.0);
  EXPECT_GT(cmp->top1_agreement, 0.9);
  EXPECT_LT(cmp->mean_kl, 0.01);
}

TEST_F(StoriesEval, AModelAgreesWithItself) {
  const auto tokens = head(*tokens_, 100);
  auto cmp = compare_distributions(*f32_, *f32_, tokens, {});
  ASSERT_TRUE(cmp);
  EXPECT_EQ(cmp->mean_kl, 0.0);
  EXPECT_EQ(cmp->max_kl, 0.0);
  EXPECT_EQ(cmp->top1_agreement, 1.0);
  EXPECT_EQ(cmp->base.perplexity, cmp->candidate.perplexity);
}

TEST_F(StoriesEval, RejectsBadWindowsAndShortTexts) {
  WindowOptions w;
  w.n_ctx = 16;
  w.stride = 16;  // must leave context
  EXPECT_EQ(perplexity(*f32_, *tokens_, w).error().code, ErrorCode::kInvalidArgument);
  w.stride = 0;
  const std::vector<int32_t> one = {1};
  EXPECT_EQ(perplexity(*f32_, one, w).error().code, ErrorCode::kInvalidArgument);
  const std::vector<int32_t> bad = {1, 100000};
  EXPECT_FALSE(perplexity(*f32_, bad, w));
}

// Choice log-likelihoods equal sums of the numpy reference's log-probabilities for the same
// tokens; the answers of the published greedy sample ("Once upon a time, there was ...") match.
TEST_F(StoriesEval, ScoresAValidationSetLikeTheReference) {
  auto items = parse_task_jsonl(read_text(test::source_dir() / "tests/data/eval_valset.jsonl"));
  ASSERT_TRUE(items) << items.error().to_string();
  ASSERT_EQ(items->size(), 10u);
  auto result = task_accuracy(*f32_, *tokenizer_, *items, {});
  ASSERT_TRUE(result) << result.error().to_string();
  EXPECT_TRUE(result->items[6].correct) << result->items[6].generated;  // Once upon a -> time
  EXPECT_TRUE(result->items[7].correct) << result->items[7].generated;  // ... there -> was
  EXPECT_EQ(result->n_correct,
            static_cast<int32_t>(std::count_if(result->items.begin(), result->items.end(),
                                               [](auto& r) { return r.correct; })));

  // Reference log-likelihoods of item 0's two choices.
  const TaskItem& item = (*items)[0];
  nlohmann::json jobs = nlohmann::json::array();
  std::vector<std::vector<int32_t>> seqs;
  for (const auto& choice : item.choices) {
    seqs.push_back(tokenize_text(*tokenizer_, item.prompt + choice).value());
    jobs.push_back(
        {{"model", stories_path().string()},
         {"n_ctx", 64},
         {"out", (dir_ / ("choice" + std::to_string(seqs.size()) + ".f32")).string()},
         {"ops", nlohmann::json::array({nlohmann::json::array({"decode", seqs.back()})})}});
  }
  std::ofstream(dir_ / "jobs.json") << jobs.dump();
  const std::string cmd = test::python3() + " " +
                          (test::source_dir() / "tests/reference/forward.py").string() + " " +
                          (dir_ / "jobs.json").string();
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  const auto prompt = tokenize_text(*tokenizer_, item.prompt).value();
  for (size_t c = 0; c < seqs.size(); ++c) {
    const std::string raw = read_text(dir_ / ("choice" + std::to_string(c + 1) + ".f32"));
    const auto* logits = reinterpret_cast<const float*>(raw.data());
    const int n_vocab = 512;
    ASSERT_EQ(raw.size(), seqs[c].size() * n_vocab * sizeof(float));
    size_t first = 0;
    while (first < prompt.size() && prompt[first] == seqs[c][first]) ++first;
    double expected = 0;
    for (size_t i = first; i < seqs[c].size(); ++i) {
      const float* row = logits + (i - 1) * n_vocab;
      double max = row[0], sum = 0;
      for (int v = 0; v < n_vocab; ++v) max = std::max(max, double{row[v]});
      for (int v = 0; v < n_vocab; ++v) sum += std::exp(row[v] - max);
      expected += row[seqs[c][i]] - max - std::log(sum);
    }
    EXPECT_NEAR(result->items[0].choice_logprobs[c], expected, 1e-3) << c;
  }
  EXPECT_EQ(result->items[0].chosen, 0);  // " girl" over " table"
}

TEST(TaskJsonl, ReportsTheLineAndField) {
  const auto error = [](std::string_view text) { return parse_task_jsonl(text).error().message; };
  EXPECT_NE(error("{\"prompt\": \"a\"}").find("line 1"), std::string::npos);
  EXPECT_NE(error("\n{\"prompt\": \"a\", \"choices\": [\"x\"], \"label\": 3}").find("line 2"),
            std::string::npos);
  EXPECT_NE(
      error("{\"prompt\": \"a\", \"answer\": \"b\", \"labels\": 1}").find("unknown key \"labels\""),
      std::string::npos);
  EXPECT_NE(error("{\"prompt\": \"a\", \"answer\": \"b\", \"choices\": [\"c\"], \"label\": 0}")
                .find("either"),
            std::string::npos);
  EXPECT_NE(error("not json").find("invalid JSON"), std::string::npos);
  EXPECT_NE(error("\n\n").find("no items"), std::string::npos);
  auto ok = parse_task_jsonl("{\"prompt\": \"p\", \"answer\": \"a\", \"match\": \"exact\"}\n");
  ASSERT_TRUE(ok);
  EXPECT_TRUE((*ok)[0].exact_match);
}

TEST(Gate, PassesWithinEveryThreshold) {
  auto policy = parse_gate_policy(
      R"({"max_ppl_increase_pct": 1.0, "max_mean_kl": 0.01, "max_p99_kl": 0.1, "min_top1_agreement": 0.9,
          "max_accuracy_drop": 0.05, "min_accuracy": 0.5})");
  ASSERT_TRUE(policy) << policy.error().to_string();
  EvalMetrics m;
  m.ppl_base = 10.0;
  m.ppl_candidate = 10.05;  // +0.5 %
  m.mean_kl = 0.005;
  m.p99_kl = 0.05;
  m.top1_agreement = 0.95;
  m.accuracy_base = 0.8;
  m.accuracy_candidate = 0.78;
  const GateResult r = check_gate(*policy, m);
  EXPECT_TRUE(r.passed);
  EXPECT_TRUE(r.failures.empty());
}

TEST(Gate, NamesEveryFailedThreshold) {
  auto policy = parse_gate_policy(
      R"({"max_ppl_increase_pct": 1, "max_mean_kl": 0.01, "min_top1_agreement": 0.9,
                                      "max_accuracy_drop": 0.05, "min_accuracy": 0.5})");
  ASSERT_TRUE(policy);
  EvalMetrics m;
  m.ppl_base = 10.0;
  m.ppl_candidate = 10.2;  // +2 %
  m.mean_kl = 0.02;
  m.top1_agreement = 0.95;  // passes
  m.accuracy_base = 0.8;
  m.accuracy_candidate = 0.4;  // drop 0.4 and below 0.5
  const GateResult r = check_gate(*policy, m);
  EXPECT_FALSE(r.passed);
  std::vector<std::string> names;
  for (const auto& f : r.failures) names.push_back(f.threshold);
  EXPECT_EQ(names, (std::vector<std::string>{"max_ppl_increase_pct", "max_mean_kl",
                                             "max_accuracy_drop", "min_accuracy"}));
  EXPECT_NE(r.failures[0].message.find("+2.000%"), std::string::npos) << r.failures[0].message;
}

// A threshold on something that was not measured fails: the gate never passes by omission.
TEST(Gate, UnmeasuredMetricsFail) {
  auto policy = parse_gate_policy(R"({"max_mean_kl": 0.01})");
  ASSERT_TRUE(policy);
  const GateResult r = check_gate(*policy, EvalMetrics{});
  EXPECT_FALSE(r.passed);
  ASSERT_EQ(r.failures.size(), 1u);
  EXPECT_NE(r.failures[0].message.find("not measured"), std::string::npos);
  EXPECT_TRUE(check_gate(GatePolicy{}, EvalMetrics{}).passed);
  EvalMetrics nan;
  nan.mean_kl = std::nan("");
  EXPECT_FALSE(check_gate(*policy, nan).passed);
}

TEST(Gate, PolicyErrorsNameTheKey) {
  EXPECT_NE(parse_gate_policy(R"({"max_kl": 1})").error().message.find("unknown key 'max_kl'"),
            std::string::npos);
  EXPECT_NE(parse_gate_policy(R"({"min_accuracy": "high"})")
                .error()
                .message.find("'min_accuracy' must be a number"),
            std::string::npos);
  EXPECT_FALSE(parse_gate_policy("[1]"));
  EXPECT_FALSE(parse_gate_policy("{"));
}

std::vector<EvalEntry> sample_entries() {
  EvalEntry base, q8, q4;
  base.name = "f32.gguf";
  base.is_base = true;
  base.file_bytes = 4 << 20;
  base.metrics.ppl_candidate = 10.0;
  q8.name = "q8<0>.gguf";
  q8.file_bytes = 1 << 20;
  q8.metrics.ppl_base = 10.0;
  q8.metrics.ppl_candidate = 10.02;
  q8.metrics.mean_kl = 0.001;
  q4 = q8;
  q4.name = "q4.gguf";
  q4.file_bytes = 600 << 10;
  q4.metrics.ppl_candidate = 11.0;
  q4.gate = GateResult{false, {{"max_mean_kl", "max_mean_kl: too high"}}};
  return {base, q8, q4};
}

TEST(EvalReport, TableJsonAndPlot) {
  const auto entries = sample_entries();
  const std::string table = eval_to_table(entries);
  EXPECT_NE(table.find("f32.gguf (base)"), std::string::npos);
  EXPECT_NE(table.find("+10.00"), std::string::npos);  // q4's perplexity increase
  EXPECT_NE(table.find("FAIL"), std::string::npos);
  const auto j = eval_to_json(entries);
  EXPECT_EQ(j["models"].size(), 3u);
  EXPECT_NEAR(j["models"][1]["ppl_increase_pct"].get<double>(), 0.2, 1e-9);
  EXPECT_EQ(j["models"][2]["gate"]["passed"], false);
  EXPECT_FALSE(j["models"][0].contains("mean_kl"));

  auto svg = size_quality_svg(entries);
  ASSERT_TRUE(svg) << svg.error().to_string();
  EXPECT_EQ(svg->rfind("<svg", 0), 0u);
  EXPECT_NE(svg->find("file size (MiB)"), std::string::npos);
  EXPECT_NE(svg->find("perplexity (lower is better)"), std::string::npos);
  EXPECT_NE(svg->find("q8&lt;0&gt;.gguf"), std::string::npos);  // names are escaped
  size_t circles = 0;
  for (size_t at = svg->find("<circle"); at != std::string::npos; at = svg->find("<circle", at + 1))
    ++circles;
  EXPECT_EQ(circles, 3u);
  // The points sit where their values say: the biggest file is right-most, the worst ppl lowest.
  const auto cx = [&](const std::string& label) {
    const size_t text = svg->find(">" + label + "<");
    const size_t circle = svg->rfind("<circle cx=\"", text);
    return std::stod(svg->substr(circle + 12));
  };
  EXPECT_GT(cx("f32.gguf (base)"), cx("q8&lt;0&gt;.gguf"));
  EXPECT_GT(cx("q8&lt;0&gt;.gguf"), cx("q4.gguf"));

  std::vector<EvalEntry> none(1);
  EXPECT_EQ(size_quality_svg(none).error().code, ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace edgelm::tools
