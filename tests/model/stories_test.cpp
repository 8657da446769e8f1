// The real stories260K model (llama2.c, converted by llama.cpp): logits and the greedy
// continuation from BOS against stories260K.greedy-from-bos.json (a numpy reference decode, see
// ../shared/models/MANIFEST.md) and against tests/reference/forward.py; cache operations.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <iterator>
#include <memory>
#include <nlohmann/json.hpp>
#include <vector>

#include "model/model_test_util.h"

namespace edgelm::model::test {
namespace {

fs::path stories_dir() {
  return edgelm::test::shared_models_dir() / "stories260K";
}

class StoriesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const fs::path path = stories_dir() / "stories260K.gguf";
    if (!fs::exists(path)) GTEST_SKIP() << "missing " << path;
    auto model = Model::load(path);
    ASSERT_TRUE(model.has_value()) << model.error().to_string();
    model_ = std::move(*model);
    std::ifstream f(stories_dir() / "stories260K.greedy-from-bos.json");
    golden_ = nlohmann::json::parse(f);
  }

  std::unique_ptr<Context> make_context(int32_t n_ctx = 0, int32_t n_batch = 512) {
    ContextOptions options;
    options.n_ctx = n_ctx;
    options.n_batch = n_batch;
    auto context = Context::create(*model_, options);
    EXPECT_TRUE(context.has_value()) << context.error().to_string();
    return context ? std::move(*context) : nullptr;
  }

  std::vector<int32_t> golden_tokens() const {
    return golden_["tokens"].get<std::vector<int32_t>>();
  }

  std::unique_ptr<Model> model_;
  nlohmann::json golden_;
};

TEST_F(StoriesTest, HParams) {
  const HParams& hp = model_->hparams();
  EXPECT_EQ(hp.arch, "llama");
  EXPECT_EQ(hp.n_vocab, 512);
  EXPECT_EQ(hp.n_embd, 64);
  EXPECT_EQ(hp.n_layer, 5);
  EXPECT_EQ(hp.n_head, 8);
  EXPECT_EQ(hp.n_head_kv, 4);
  EXPECT_EQ(hp.head_dim, 8);
  EXPECT_EQ(hp.n_ff, 172);
  EXPECT_EQ(hp.n_ctx_train, 2048);
  EXPECT_FLOAT_EQ(hp.rope_freq_base, 10000.0f);
  EXPECT_FALSE(hp.tied_embeddings);  // output.weight is a stored copy
}

// The golden logits come from a float64 decode that keeps K and V unrounded: the F32 cache is
// held to float rounding; the default F16 cache moves them by 4.0e-4 of the largest logit
// (measured), and by no more than 1e-3.
TEST_F(StoriesTest, FirstLogitsMatchGolden) {
  const std::vector<int32_t> tokens = golden_tokens();
  const auto& golden = golden_["logits_first8"];
  for (const auto& [kv_type, tolerance] :
       {std::pair{TensorType::kF32, 1e-4}, std::pair{TensorType::kF16, 1e-3}}) {
    for (int32_t n_batch : {512, 3}) {
      ContextOptions options;
      options.n_ctx = 64;
      options.n_batch = n_batch;
      options.kv_type = kv_type;
      auto created = Context::create(*model_, options);
      ASSERT_TRUE(created.has_value()) << created.error().to_string();
      auto& context = *created;
      auto logits = context->decode(std::span(tokens).first(8), /*all_logits=*/true);
      ASSERT_TRUE(logits.has_value()) << logits.error().to_string();
      std::vector<LogitsRow> rows;
      std::vector<float> want;
      for (size_t t = 0; t < 8; ++t) {
        rows.push_back(
            {t, std::vector<float>(logits->begin() + t * 512, logits->begin() + (t + 1) * 512)});
        const auto row = golden[t].get<std::vector<float>>();
        want.insert(want.end(), row.begin(), row.end());
      }
      EXPECT_LE(max_relative_error(rows, want, 512), tolerance)
          << "n_batch " << n_batch << ", KV cache " << tensor_type_name(kv_type);
    }
  }
}

TEST_F(StoriesTest, GreedyContinuationFromBos) {
  const std::vector<int32_t> want = golden_tokens();
  ASSERT_EQ(want.size(), 257u);
  auto context = make_context(512);
  ASSERT_NE(context, nullptr);
  std::vector<int32_t> got = {want[0]};
  while (got.size() < want.size()) {
    auto logits = context->decode(std::span(got).last(1));
    ASSERT_TRUE(logits.has_value()) << logits.error().to_string();
    got.push_back(
        static_cast<int32_t>(std::max_element(logits->begin(), logits->end()) - logits->begin()));
  }
  EXPECT_EQ(got, want);
}

// Each KV cache type against the reference rounding K and V the same way.
TEST_F(StoriesTest, MatchesNumpyReferenceThroughShiftAndTruncate) {
  const fs::path dir = scratch_dir("stories_reference");
  const std::vector<Op> script = standard_script();
  const fs::path model_path = stories_dir() / "stories260K.gguf";
  run_reference({{model_path, 64, script, dir / "f16.bin", {}, TensorType::kF16},
                 {model_path, 64, script, dir / "f32.bin", {}, TensorType::kF32}},
                dir);
  for (TensorType kv_type : {TensorType::kF16, TensorType::kF32}) {
    const std::string name(tensor_type_name(kv_type));
    ContextOptions options;
    options.n_ctx = 64;
    options.n_batch = 4;
    options.kv_type = kv_type;
    const std::vector<LogitsRow> rows = run_ops(*model_, options, script);
    EXPECT_LE(max_relative_error(rows, read_floats(dir / (name + ".bin")), 512), 1e-4)
        << "KV cache " << name;
    const std::string other = kv_type == TensorType::kF16 ? "f32" : "f16";
    expect_closer_to_own_reference(rows, read_floats(dir / (name + ".bin")),
                                   read_floats(dir / (other + ".bin")), 512);
  }
}

// F16 by default; a q8_0 cache needs whole 32-value blocks per head, and stories260K's heads are 8.
TEST_F(StoriesTest, KvTypeIsF16ByDefaultAndQ8_0NeedsWholeBlocksPerHead) {
  auto context = make_context(16);
  ASSERT_NE(context, nullptr);
  EXPECT_EQ(context->kv_type(), TensorType::kF16);
  ContextOptions q8;
  q8.n_ctx = 16;
  q8.kv_type = TensorType::kQ8_0;
  auto bad = Context::create(*model_, q8);
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().code, ErrorCode::kUnsupported);
  EXPECT_NE(bad.error().message.find("kv_type"), std::string::npos) << bad.error().message;
  EXPECT_NE(bad.error().message.find("q8_0"), std::string::npos) << bad.error().message;
  EXPECT_NE(bad.error().message.find("head_dim is 8"), std::string::npos) << bad.error().message;
}

TEST_F(StoriesTest, ReadIntoMemoryGivesTheSameLogitsAsMmap) {
  LoadOptions in_memory;
  in_memory.use_mmap = false;
  auto copy = Model::load(stories_dir() / "stories260K.gguf", in_memory);
  ASSERT_TRUE(copy.has_value()) << copy.error().to_string();
  const std::vector<int32_t> tokens = golden_tokens();
  auto mapped_context = make_context(32);
  auto read_context = Context::create(**copy, ContextOptions{32, 1, 512});
  ASSERT_TRUE(read_context.has_value());
  auto mapped = mapped_context->decode(std::span(tokens).first(12), true);
  ASSERT_TRUE(mapped.has_value());
  const std::vector<float> mapped_logits(mapped->begin(), mapped->end());
  auto read = (*read_context)->decode(std::span(tokens).first(12), true);
  ASSERT_TRUE(read.has_value());
  EXPECT_EQ(mapped_logits, std::vector<float>(read->begin(), read->end()));
}

// A model parsed from a buffer it owns: the caller's handle can go away, the logits stay those
// of the mapped file.
TEST_F(StoriesTest, ModelFromMemoryOwnsItsBuffer) {
  std::ifstream f(stories_dir() / "stories260K.gguf", std::ios::binary);
  auto bytes = std::make_shared<std::vector<uint8_t>>(std::istreambuf_iterator<char>(f),
                                                      std::istreambuf_iterator<char>());
  ASSERT_EQ(bytes->size(), 1185376u);
  auto owned = Model::from_memory(*bytes, bytes);
  ASSERT_TRUE(owned.has_value()) << owned.error().to_string();
  std::weak_ptr<std::vector<uint8_t>> watch = bytes;
  bytes.reset();
  EXPECT_FALSE(watch.expired());  // the model holds the buffer

  const std::vector<int32_t> tokens = golden_tokens();
  auto mapped_context = make_context(32);
  auto mapped = mapped_context->decode(std::span(tokens).first(12), true);
  ASSERT_TRUE(mapped.has_value());
  const std::vector<float> mapped_logits(mapped->begin(), mapped->end());
  {
    auto owned_context = Context::create(**owned, ContextOptions{.n_ctx = 32});
    ASSERT_TRUE(owned_context.has_value());
    auto logits = (*owned_context)->decode(std::span(tokens).first(12), true);
    ASSERT_TRUE(logits.has_value());
    EXPECT_EQ(mapped_logits, std::vector<float>(logits->begin(), logits->end()));
  }
  owned->reset();
  EXPECT_TRUE(watch.expired());

  const std::vector<uint8_t> garbage = {'G', 'G', 'U', 'F', 3, 0};
  auto bad = Model::from_memory(garbage, std::make_shared<int>(0));
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().code, ErrorCode::kInvalidFormat);
  EXPECT_FALSE(Model::from_memory(garbage, nullptr).has_value());
}

TEST_F(StoriesTest, TruncateThenRedecodeGivesTheSameLogits) {
  const std::vector<int32_t> tokens = golden_tokens();
  auto context = make_context(32, 1);  // one token per batch: the same arithmetic both times
  ASSERT_NE(context, nullptr);
  auto first = context->decode(std::span(tokens).first(10), true);
  ASSERT_TRUE(first.has_value());
  const std::vector<float> original(first->begin(), first->end());
  const std::vector<float> hidden(context->last_hidden().begin(), context->last_hidden().end());
  context->truncate(4);
  EXPECT_EQ(context->n_past(), 4);
  auto again = context->decode(std::span(tokens).subspan(4, 6), true);
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(std::vector<float>(again->begin(), again->end()),
            std::vector<float>(original.begin() + 4 * 512, original.end()));
  EXPECT_EQ(std::vector<float>(context->last_hidden().begin(), context->last_hidden().end()),
            hidden);
}

TEST_F(StoriesTest, ContextFullLeavesStateUnchanged) {
  const std::vector<int32_t> tokens = golden_tokens();
  auto context = make_context(16);
  ASSERT_NE(context, nullptr);
  ASSERT_TRUE(context->decode(std::span(tokens).first(10)).has_value());
  auto full = context->decode(std::span(tokens).subspan(10, 7));
  ASSERT_FALSE(full.has_value());
  EXPECT_EQ(full.error().code, ErrorCode::kContextFull);
  EXPECT_EQ(context->n_past(), 10);
  EXPECT_TRUE(context->decode(std::span(tokens).subspan(10, 6)).has_value());
  EXPECT_EQ(context->n_past(), 16);
}

TEST_F(StoriesTest, ShiftLetsGenerationContinuePastTheContext) {
  auto context = make_context(16);
  ASSERT_NE(context, nullptr);
  std::vector<int32_t> tokens = {1};
  for (int step = 0; step < 40; ++step) {
    if (context->n_past() == context->n_ctx()) {
      ASSERT_TRUE(context->shift(1, 8).has_value());
    }
    auto logits = context->decode(std::span(tokens).last(1));
    ASSERT_TRUE(logits.has_value()) << logits.error().to_string();
    tokens.push_back(
        static_cast<int32_t>(std::max_element(logits->begin(), logits->end()) - logits->begin()));
  }
  EXPECT_LE(context->n_past(), 16);
  const auto bad_shift = context->shift(10, 10);
  ASSERT_FALSE(bad_shift.has_value());
  EXPECT_EQ(bad_shift.error().code, ErrorCode::kInvalidArgument);
}

TEST_F(StoriesTest, RejectsBadTokens) {
  auto context = make_context(16);
  ASSERT_NE(context, nullptr);
  const std::vector<int32_t> out_of_range = {1, 512};
  auto result = context->decode(out_of_range);
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(result.error().message.find("512"), std::string::npos) << result.error().message;
  const std::vector<int32_t> negative = {-1};
  EXPECT_FALSE(context->decode(negative).has_value());
  EXPECT_FALSE(context->decode({}).has_value());
  EXPECT_EQ(context->n_past(), 0);
}

TEST_F(StoriesTest, DefaultContextSize) {
  auto context = make_context();
  ASSERT_NE(context, nullptr);
  EXPECT_EQ(context->n_ctx(), 2048);  // min(n_ctx_train 2048, 4096)
  EXPECT_FALSE(Context::create(*model_, ContextOptions{-1, 1, 512}).has_value());
  EXPECT_FALSE(Context::create(*model_, ContextOptions{16, 0, 512}).has_value());
  EXPECT_FALSE(Context::create(*model_, ContextOptions{16, 1, 0}).has_value());
}

}  // namespace
}  // namespace edgelm::model::test
