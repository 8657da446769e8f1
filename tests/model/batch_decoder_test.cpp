// BatchDecoder: several sequences decoded in shared forward passes must give the logits each
// sequence gets decoded alone by Context::decode, for every architecture (tiny random-weight
// models) and on the real stories260K model (greedy tokens, 16 sequences).
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "model/model_test_util.h"

namespace edgelm::model::test {
namespace {

// Restores the CPU path a test switched away from.
class CpuPathGuard {
 public:
  CpuPathGuard() : initial_(kernels::active_cpu_path()) {}
  ~CpuPathGuard() { kernels::set_cpu_path(initial_); }
  const std::string& initial() const { return initial_; }

 private:
  std::string initial_;
};

// `count` token ids of sequence `seq` from its `start`-th token on; each sequence has its own.
std::vector<int32_t> sequence_tokens(int seq, int start, int count, int32_t n_vocab) {
  std::vector<int32_t> tokens;
  for (int k = start; k < start + count; ++k) {
    tokens.push_back(k == 0 ? 1 : static_cast<int32_t>((seq * 97 + k * 31 + 5) % n_vocab));
  }
  return tokens;
}

struct Piece {
  int seq = 0;
  int n_tokens = 0;
  bool all_logits = false;
};

// Sequences join, pause, continue and leave; prompts and single tokens are mixed in one step.
const std::vector<std::vector<Piece>>& schedule() {
  static const std::vector<std::vector<Piece>> steps = {
      {{0, 7, true}, {1, 3, false}},
      {{0, 1, false}, {1, 1, false}, {2, 5, true}},
      {{2, 1, false}, {0, 1, false}, {3, 4, false}},
      {{1, 1, false}, {3, 1, true}, {2, 1, false}, {0, 3, true}},
      {{4, 9, false}, {1, 1, false}},
      {{4, 1, false}, {3, 1, false}, {1, 2, true}},
  };
  return steps;
}
constexpr int kSequences = 5;

double relative_error(std::span<const float> got, const std::vector<float>& want) {
  double scale = 0.0;
  double diff = 0.0;
  for (size_t i = 0; i < want.size(); ++i) {
    scale = std::max(scale, std::fabs(static_cast<double>(want[i])));
    diff = std::max(diff, std::fabs(static_cast<double>(got[i]) - want[i]));
    if (!std::isfinite(got[i])) return INFINITY;
  }
  return diff / std::max(scale, 1e-6);
}

// n_ctx of each sequence; for phi3 one sequence is short enough to use the other LongRoPE factor
// set, so one pass mixes both.
int32_t sequence_n_ctx(int seq) {
  return seq == 2 ? 32 : 64;
}

// KV cache type of each sequence: passes mix F16 and F32 caches.
TensorType sequence_kv_type(int seq) {
  return seq % 2 == 0 ? TensorType::kF16 : TensorType::kF32;
}

// The logits of every piece of the schedule, each sequence decoded alone.
std::vector<std::vector<std::vector<float>>> decode_alone(const Model& model) {
  const int32_t n_vocab = model.hparams().n_vocab;
  std::vector<std::unique_ptr<Context>> contexts;
  std::vector<int> consumed(kSequences, 0);
  for (int s = 0; s < kSequences; ++s) {
    ContextOptions options;
    options.n_ctx = sequence_n_ctx(s);
    options.kv_type = sequence_kv_type(s);
    auto context = Context::create(model, options);
    EXPECT_TRUE(context.has_value());
    contexts.push_back(std::move(*context));
  }
  std::vector<std::vector<std::vector<float>>> logits;
  for (const auto& step : schedule()) {
    auto& step_logits = logits.emplace_back();
    for (const Piece& piece : step) {
      const auto tokens = sequence_tokens(piece.seq, consumed[piece.seq], piece.n_tokens, n_vocab);
      consumed[piece.seq] += piece.n_tokens;
      auto result = contexts[piece.seq]->decode(tokens, piece.all_logits);
      EXPECT_TRUE(result.has_value()) << result.error().to_string();
      step_logits.emplace_back(result->begin(), result->end());
    }
  }
  return logits;
}

// Runs the schedule through one BatchDecoder over cache-only contexts; returns the worst relative
// error against `alone`.
double decode_batched(const Model& model, int32_t max_batch_tokens, int n_threads,
                      const std::vector<std::vector<std::vector<float>>>& alone) {
  const int32_t n_vocab = model.hparams().n_vocab;
  auto decoder = BatchDecoder::create(model, max_batch_tokens, n_threads);
  EXPECT_TRUE(decoder.has_value()) << decoder.error().to_string();
  if (!decoder) return INFINITY;
  std::vector<std::unique_ptr<Context>> contexts;
  std::vector<int> consumed(kSequences, 0);
  for (int s = 0; s < kSequences; ++s) {
    ContextOptions options;
    options.n_ctx = sequence_n_ctx(s);
    options.kv_type = sequence_kv_type(s);
    options.cache_only = true;
    auto context = Context::create(model, options);
    EXPECT_TRUE(context.has_value());
    contexts.push_back(std::move(*context));
  }
  double worst = 0.0;
  for (size_t step = 0; step < schedule().size(); ++step) {
    std::vector<std::vector<int32_t>> tokens;
    for (const Piece& piece : schedule()[step]) {
      tokens.push_back(sequence_tokens(piece.seq, consumed[piece.seq], piece.n_tokens, n_vocab));
      consumed[piece.seq] += piece.n_tokens;
    }
    std::vector<SequenceInput> inputs;
    for (size_t i = 0; i < tokens.size(); ++i) {
      const Piece& piece = schedule()[step][i];
      inputs.push_back({contexts[piece.seq].get(), tokens[i], piece.all_logits});
    }
    auto result = (*decoder)->decode(inputs);
    EXPECT_TRUE(result.has_value()) << result.error().to_string();
    if (!result) return INFINITY;
    EXPECT_EQ(result->size(), inputs.size());
    for (size_t i = 0; i < inputs.size(); ++i) {
      const std::vector<float>& want = alone[step][i];
      EXPECT_EQ((*result)[i].size(), want.size()) << "step " << step << " input " << i;
      if ((*result)[i].size() != want.size()) return INFINITY;
      worst = std::max(worst, relative_error((*result)[i], want));
    }
  }
  for (int s = 0; s < kSequences; ++s) EXPECT_EQ(contexts[s]->n_past(), consumed[s]);
  return worst;
}

class TinyBatchTest : public ::testing::TestWithParam<std::string> {
 protected:
  static void SetUpTestSuite() {
    dir_ = new fs::path(scratch_dir("tiny_batch"));
    run_python("model_make_tiny.py",
               dir_->string() + " llama-f32 llama-q8_0 qwen2-f32 qwen3-f32 phi3-f32 gemma3-f32");
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  static fs::path* dir_;
};
fs::path* TinyBatchTest::dir_ = nullptr;

TEST_P(TinyBatchTest, MatchesEachSequenceDecodedAlone) {
  auto model = Model::load(*dir_ / (GetParam() + ".gguf"));
  ASSERT_TRUE(model.has_value()) << model.error().to_string();
  CpuPathGuard guard;
  // The scalar kernels compute each row alone, so only the reference path is held to float
  // rounding; the SIMD path may block rows differently for different row counts.
  std::vector<std::pair<std::string, double>> paths = {{"scalar", 1e-5}};
  if (guard.initial() != "scalar") {
    paths.emplace_back(guard.initial(), GetParam().ends_with("f32") ? 1e-4 : 6e-2);
  }
  for (const auto& [path, tolerance] : paths) {
    SCOPED_TRACE("cpu path " + path);
    ASSERT_TRUE(kernels::set_cpu_path(path));
    const auto alone = decode_alone(**model);
    EXPECT_LE(decode_batched(**model, 64, 1, alone), tolerance);
    // Steps larger than a pass: sequences continue in the next pass.
    EXPECT_LE(decode_batched(**model, 5, 2, alone), tolerance);
  }
}

INSTANTIATE_TEST_SUITE_P(AllArchitectures, TinyBatchTest,
                         ::testing::Values("llama-f32", "llama-q8_0", "qwen2-f32", "qwen3-f32",
                                           "phi3-f32", "gemma3-f32"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           std::string name = info.param;
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

class StoriesBatchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const fs::path path = edgelm::test::shared_models_dir() / "stories260K" / "stories260K.gguf";
    if (!fs::exists(path)) GTEST_SKIP() << "missing " << path;
    auto model = Model::load(path);
    ASSERT_TRUE(model.has_value()) << model.error().to_string();
    model_ = std::move(*model);
  }

  std::unique_ptr<Context> make_context(int32_t n_ctx, bool cache_only) {
    ContextOptions options;
    options.n_ctx = n_ctx;
    options.cache_only = cache_only;
    auto context = Context::create(*model_, options);
    EXPECT_TRUE(context.has_value()) << context.error().to_string();
    return context ? std::move(*context) : nullptr;
  }

  std::unique_ptr<Model> model_;
};

int32_t argmax(std::span<const float> logits) {
  return static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
}

TEST_F(StoriesBatchTest, SixteenSequencesGiveTheGreedyTokensOfEachAlone) {
  constexpr int kCount = 16;
  constexpr int kGenerated = 24;
  std::vector<std::vector<int32_t>> prompts;
  for (int s = 0; s < kCount; ++s) prompts.push_back(sequence_tokens(s, 0, 1 + s % 5, 512));

  std::vector<std::vector<int32_t>> alone(kCount);
  for (int s = 0; s < kCount; ++s) {
    auto context = make_context(64, false);
    ASSERT_NE(context, nullptr);
    auto logits = context->decode(prompts[s]);
    ASSERT_TRUE(logits.has_value());
    alone[s].push_back(argmax(*logits));
    while (alone[s].size() < kGenerated) {
      logits = context->decode(std::span(alone[s]).last(1));
      ASSERT_TRUE(logits.has_value());
      alone[s].push_back(argmax(*logits));
    }
  }

  // Sequence s joins at step s / 2 and leaves when it has its tokens.
  auto decoder = BatchDecoder::create(*model_, 32, 1);
  ASSERT_TRUE(decoder.has_value());
  std::vector<std::unique_ptr<Context>> contexts;
  for (int s = 0; s < kCount; ++s) contexts.push_back(make_context(64, true));
  std::vector<std::vector<int32_t>> batched(kCount);
  for (int step = 0; step < kCount / 2 + kGenerated; ++step) {
    std::vector<SequenceInput> inputs;
    std::vector<int> seqs;
    for (int s = 0; s < kCount; ++s) {
      if (step < s / 2 || batched[s].size() == kGenerated) continue;
      const auto tokens = batched[s].empty() ? std::span<const int32_t>(prompts[s])
                                             : std::span<const int32_t>(batched[s]).last(1);
      inputs.push_back({contexts[s].get(), tokens, false});
      seqs.push_back(s);
    }
    if (inputs.empty()) break;
    auto logits = (*decoder)->decode(inputs);
    ASSERT_TRUE(logits.has_value()) << logits.error().to_string();
    for (size_t i = 0; i < seqs.size(); ++i) batched[seqs[i]].push_back(argmax((*logits)[i]));
  }
  for (int s = 0; s < kCount; ++s) EXPECT_EQ(batched[s], alone[s]) << "sequence " << s;
}

TEST_F(StoriesBatchTest, ErrorsChangeNoContext) {
  auto decoder = BatchDecoder::create(*model_, 16, 1);
  ASSERT_TRUE(decoder.has_value());
  auto a = make_context(8, true);
  auto b = make_context(8, true);
  const std::vector<int32_t> prompt = {1, 403, 407};
  const std::vector<int32_t> too_long = {1, 2, 3, 4, 5, 6, 7, 8, 9};
  const std::vector<int32_t> bad_id = {1, 512};
  ASSERT_TRUE((*decoder)->decode(std::vector<SequenceInput>{{a.get(), prompt}}).has_value());

  auto expect_error = [&](std::vector<SequenceInput> inputs, ErrorCode code, const char* text) {
    auto result = (*decoder)->decode(inputs);
    ASSERT_FALSE(result.has_value());
    EXPECT_EQ(result.error().code, code);
    EXPECT_NE(result.error().message.find(text), std::string::npos) << result.error().message;
    EXPECT_EQ(a->n_past(), 3);
    EXPECT_EQ(b->n_past(), 0);
  };
  expect_error({{b.get(), prompt}, {a.get(), std::span(too_long).first(6)}},
               ErrorCode::kContextFull, "input 1");
  expect_error({{b.get(), prompt}, {a.get(), bad_id}}, ErrorCode::kInvalidArgument, "512");
  expect_error({{b.get(), prompt}, {a.get(), {}}}, ErrorCode::kInvalidArgument, "no tokens");
  expect_error({{b.get(), prompt}, {b.get(), prompt}}, ErrorCode::kInvalidArgument, "input 0");
  expect_error({{b.get(), prompt}, {nullptr, prompt}}, ErrorCode::kInvalidArgument, "input 1");
  expect_error({}, ErrorCode::kInvalidArgument, "no inputs");
  auto other = Model::load(edgelm::test::shared_models_dir() / "stories260K" / "stories260K.gguf");
  ASSERT_TRUE(other.has_value());
  auto foreign = Context::create(**other, ContextOptions{.n_ctx = 8, .cache_only = true});
  ASSERT_TRUE(foreign.has_value());
  expect_error({{foreign->get(), prompt}}, ErrorCode::kInvalidArgument, "another model");

  // After the failures, a continues as if they had not happened.
  auto alone = make_context(8, false);
  ASSERT_TRUE(alone->decode(prompt).has_value());
  auto want = alone->decode(std::span(too_long).first(5), true);
  ASSERT_TRUE(want.has_value());
  auto got =
      (*decoder)->decode(std::vector<SequenceInput>{{a.get(), std::span(too_long).first(5), true}});
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(std::vector<float>((*got)[0].begin(), (*got)[0].end()),
            std::vector<float>(want->begin(), want->end()));
  EXPECT_EQ(a->n_past(), 8);
}

TEST_F(StoriesBatchTest, CacheOnlyContextsAreDecodedByABatchDecoder) {
  auto context = make_context(8, true);
  EXPECT_TRUE(context->cache_only());
  const std::vector<int32_t> prompt = {1, 403};
  auto logits = context->decode(prompt);
  ASSERT_FALSE(logits.has_value());
  EXPECT_EQ(logits.error().code, ErrorCode::kInvalidArgument);
  EXPECT_FALSE(context->embed(prompt, Pooling::kMean).has_value());
  EXPECT_EQ(context->n_past(), 0);
  EXPECT_FALSE(BatchDecoder::create(*model_, 0, 1).has_value());
  EXPECT_FALSE(BatchDecoder::create(*model_, 8, 0).has_value());
}

// A full Context can also be stepped by a BatchDecoder, and the cache operations (truncate,
// shift) apply to contexts between steps.
TEST_F(StoriesBatchTest, FullContextsAndCacheOperationsBetweenSteps) {
  auto decoder = BatchDecoder::create(*model_, 8, 1);
  ASSERT_TRUE(decoder.has_value());
  auto batched = make_context(16, false);
  auto alone = make_context(16, false);
  const std::vector<int32_t> tokens = sequence_tokens(3, 0, 14, 512);
  const auto step = [&](std::span<const int32_t> part) {
    auto want = alone->decode(part, true);
    ASSERT_TRUE(want.has_value());
    const std::vector<float> want_logits(want->begin(), want->end());
    auto got = (*decoder)->decode(std::vector<SequenceInput>{{batched.get(), part, true}});
    ASSERT_TRUE(got.has_value());
    EXPECT_LE(relative_error((*got)[0], want_logits), 1e-5);
    EXPECT_LE(
        relative_error(batched->last_hidden(), std::vector<float>(alone->last_hidden().begin(),
                                                                  alone->last_hidden().end())),
        1e-5);
  };
  step(std::span(tokens).first(10));
  ASSERT_TRUE(batched->shift(1, 4).has_value());
  ASSERT_TRUE(alone->shift(1, 4).has_value());
  step(std::span(tokens).subspan(10, 2));
  batched->truncate(5);
  alone->truncate(5);
  step(std::span(tokens).subspan(12, 2));
  EXPECT_EQ(batched->n_past(), 7);
}

}  // namespace
}  // namespace edgelm::model::test
