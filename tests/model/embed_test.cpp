// Pooled embeddings (embed(), Context::embed) against the final-normed hidden states of the numpy
// reference (tests/reference/forward.py "hidden_out").
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "model/model_test_util.h"

namespace edgelm::model::test {
namespace {

double relative_error(const std::vector<float>& got, const std::vector<double>& want) {
  EXPECT_EQ(got.size(), want.size());
  if (got.size() != want.size()) return INFINITY;
  double scale = 0.0;
  double diff = 0.0;
  for (size_t i = 0; i < want.size(); ++i) {
    scale = std::max(scale, std::fabs(want[i]));
    diff = std::max(diff, std::fabs(got[i] - want[i]));
    if (!std::isfinite(got[i])) return INFINITY;
  }
  return diff / std::max(scale, 1e-6);
}

void check_embeddings(const fs::path& model_path, const fs::path& dir) {
  const std::vector<int32_t> tokens = {1, 17, 250, 3, 99, 42, 7, 123, 200, 5};
  // embed() and the Context below use the default F16 cache: so does the reference.
  run_reference({{model_path,
                  16,
                  {decode(tokens)},
                  dir / "logits.bin",
                  dir / "hidden.bin",
                  TensorType::kF16}},
                dir);
  auto model = Model::load(model_path);
  ASSERT_TRUE(model.has_value()) << model.error().to_string();
  const size_t n_embd = static_cast<size_t>((*model)->hparams().n_embd);
  const std::vector<float> hidden = read_floats(dir / "hidden.bin");
  ASSERT_EQ(hidden.size(), tokens.size() * n_embd);
  std::vector<double> want_mean(n_embd, 0.0);
  std::vector<double> want_last(n_embd);
  for (size_t t = 0; t < tokens.size(); ++t) {
    for (size_t i = 0; i < n_embd; ++i) want_mean[i] += hidden[t * n_embd + i] / tokens.size();
  }
  for (size_t i = 0; i < n_embd; ++i) want_last[i] = hidden[(tokens.size() - 1) * n_embd + i];

  auto mean = embed(**model, tokens, Pooling::kMean);
  ASSERT_TRUE(mean.has_value()) << mean.error().to_string();
  EXPECT_LE(relative_error(*mean, want_mean), 1e-4);
  auto last = embed(**model, tokens, Pooling::kLast, 2);
  ASSERT_TRUE(last.has_value()) << last.error().to_string();
  EXPECT_LE(relative_error(*last, want_last), 1e-4);

  // Context::embed pools over its call's tokens only, across batches of 3.
  ContextOptions options;
  options.n_ctx = 16;
  options.n_batch = 3;
  auto context = Context::create(**model, options);
  ASSERT_TRUE(context.has_value());
  auto first = (*context)->embed(std::span(tokens).first(4), Pooling::kMean);
  ASSERT_TRUE(first.has_value());
  auto rest = (*context)->embed(std::span(tokens).subspan(4), Pooling::kMean);
  ASSERT_TRUE(rest.has_value());
  EXPECT_EQ((*context)->n_past(), 10);
  std::vector<float> combined(n_embd);
  for (size_t i = 0; i < n_embd; ++i) combined[i] = ((*first)[i] * 4 + (*rest)[i] * 6) / 10;
  EXPECT_LE(relative_error(combined, want_mean), 1e-4);
  auto full = (*context)->embed(tokens, Pooling::kMean);
  ASSERT_FALSE(full.has_value());
  EXPECT_EQ(full.error().code, ErrorCode::kContextFull);
}

class TinyEmbedTest : public ::testing::TestWithParam<std::string> {};

TEST_P(TinyEmbedTest, MatchesNumpyHiddenStates) {
  const fs::path dir = scratch_dir("embed_" + GetParam());
  run_python("model_make_tiny.py", dir.string() + " " + GetParam());
  check_embeddings(dir / (GetParam() + ".gguf"), dir);
}

INSTANTIATE_TEST_SUITE_P(AllArchitectures, TinyEmbedTest,
                         ::testing::Values("llama-f32", "qwen2-f32", "qwen3-f32", "phi3-f32",
                                           "gemma3-f32"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           std::string name = info.param;
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

TEST(StoriesEmbed, MatchesNumpyHiddenStates) {
  const fs::path path = edgelm::test::shared_models_dir() / "stories260K" / "stories260K.gguf";
  if (!fs::exists(path)) GTEST_SKIP() << "missing " << path;
  check_embeddings(path, scratch_dir("embed_stories"));
}

TEST(StoriesEmbed, RejectsBadInput) {
  const fs::path path = edgelm::test::shared_models_dir() / "stories260K" / "stories260K.gguf";
  if (!fs::exists(path)) GTEST_SKIP() << "missing " << path;
  auto model = Model::load(path);
  ASSERT_TRUE(model.has_value());
  EXPECT_EQ(embed(**model, {}, Pooling::kMean).error().code, ErrorCode::kInvalidArgument);
  const std::vector<int32_t> bad = {1, 600};
  EXPECT_EQ(embed(**model, bad, Pooling::kLast).error().code, ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace edgelm::model::test
