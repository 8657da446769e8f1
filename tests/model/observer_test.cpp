// ContextOptions::matmul_observer: every weight matmul reports its GGUF tensor name and its input
// rows; the first layer's input is recomputed here from the file's floats.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "model/model_test_util.h"

namespace edgelm::model::test {
namespace {

struct Observed {
  int calls = 0;
  int64_t rows = 0;
  int64_t cols = 0;
  std::vector<float> first_input;  // the rows of the first call
};

using ObservedMap = std::map<std::string, Observed, std::less<>>;

MatmulObserver recorder(ObservedMap& seen) {
  return [&seen](std::string_view name, const float* input, int64_t n_rows, int64_t n_cols) {
    Observed& o = seen[std::string(name)];
    if (o.calls++ == 0) o.first_input.assign(input, input + n_rows * n_cols);
    o.rows += n_rows;
    o.cols = n_cols;
  };
}

std::vector<float> tensor_floats(const format::GgufFile& file, const char* name) {
  const format::GgufTensorInfo* info = file.find_tensor(name);
  EXPECT_NE(info, nullptr) << name;
  if (info == nullptr) return {};
  EXPECT_EQ(info->type, TensorType::kF32) << name;
  const auto bytes = file.tensor_data(*info);
  std::vector<float> values(bytes.size() / sizeof(float));
  std::memcpy(values.data(), bytes.data(), values.size() * sizeof(float));
  return values;
}

TEST(MatmulObserver, ReportsEveryWeightOfStoriesWithItsInput) {
  const fs::path path = edgelm::test::shared_models_dir() / "stories260K" / "stories260K.gguf";
  if (!fs::exists(path)) GTEST_SKIP() << "missing " << path;
  auto model = Model::load(path);
  ASSERT_TRUE(model.has_value()) << model.error().to_string();
  const std::vector<int32_t> tokens = {1, 403, 407, 261, 378, 432};

  ObservedMap seen;
  ContextOptions options;
  options.n_ctx = 16;
  options.n_batch = 4;  // two passes: rows add up over calls
  options.matmul_observer = recorder(seen);
  auto observed = Context::create(**model, options);
  ASSERT_TRUE(observed.has_value());
  auto logits = (*observed)->decode(tokens, /*all_logits=*/true);
  ASSERT_TRUE(logits.has_value());

  std::set<std::string> want_names = {"output.weight"};
  for (int il = 0; il < 5; ++il) {
    for (const char* w :
         {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"}) {
      want_names.insert("blk." + std::to_string(il) + "." + w + ".weight");
    }
  }
  std::set<std::string> names;
  for (const auto& [name, o] : seen) {
    names.insert(name);
    EXPECT_EQ(o.calls, 2) << name;
    EXPECT_EQ(o.rows, 6) << name;
    EXPECT_EQ(o.cols, name.ends_with("ffn_down.weight") ? 172 : 64) << name;
  }
  EXPECT_EQ(names, want_names);

  // blk.0's q, k and v read RMSNorm(embedding) * attn_norm of the first pass's 4 tokens.
  const auto embd = tensor_floats((*model)->gguf(), "token_embd.weight");
  const auto norm = tensor_floats((*model)->gguf(), "blk.0.attn_norm.weight");
  const Observed& q = seen["blk.0.attn_q.weight"];
  ASSERT_EQ(q.first_input.size(), 4u * 64);
  for (size_t t = 0; t < 4; ++t) {
    const float* row = embd.data() + tokens[t] * 64;
    double sum_sq = 0.0;
    for (int i = 0; i < 64; ++i) sum_sq += static_cast<double>(row[i]) * row[i];
    const double inv_rms = 1.0 / std::sqrt(sum_sq / 64 + 1e-5);
    for (int i = 0; i < 64; ++i) {
      EXPECT_NEAR(q.first_input[t * 64 + i], row[i] * inv_rms * norm[i], 1e-5) << t << " " << i;
    }
  }
  EXPECT_EQ(seen["blk.0.attn_k.weight"].first_input, q.first_input);
  EXPECT_EQ(seen["blk.0.attn_v.weight"].first_input, q.first_input);

  // The observer only watches: the logits are those of a context without one.
  const std::vector<float> observed_logits(logits->begin(), logits->end());
  options.matmul_observer = nullptr;
  auto plain = Context::create(**model, options);
  ASSERT_TRUE(plain.has_value());
  auto plain_logits = (*plain)->decode(tokens, true);
  ASSERT_TRUE(plain_logits.has_value());
  EXPECT_EQ(observed_logits, std::vector<float>(plain_logits->begin(), plain_logits->end()));

  // Without all_logits the head runs on the last row only, and the observer sees just that row:
  // the final-normed hidden state.
  seen.clear();
  options.matmul_observer = recorder(seen);
  auto last_only = Context::create(**model, options);
  ASSERT_TRUE(last_only.has_value());
  ASSERT_TRUE((*last_only)->decode(tokens).has_value());
  EXPECT_EQ(seen["output.weight"].rows, 1);
  EXPECT_EQ(
      seen["output.weight"].first_input,
      std::vector<float>((*last_only)->last_hidden().begin(), (*last_only)->last_hidden().end()));
}

// Fused and tied weights are reported under the names the file stores them by.
TEST(MatmulObserver, NamesFusedAndTiedWeights) {
  const fs::path dir = scratch_dir("observer_names");
  run_python("model_make_tiny.py", dir.string() + " phi3-f32 gemma3-f32");
  for (const char* variant : {"phi3-f32", "gemma3-f32"}) {
    auto model = Model::load(dir / (std::string(variant) + ".gguf"));
    ASSERT_TRUE(model.has_value()) << model.error().to_string();
    ObservedMap seen;
    ContextOptions options;
    options.n_ctx = 8;
    options.matmul_observer = recorder(seen);
    auto context = Context::create(**model, options);
    ASSERT_TRUE(context.has_value());
    const std::vector<int32_t> tokens = {1, 20, 30};
    ASSERT_TRUE((*context)->decode(tokens).has_value());
    std::set<std::string> names;
    for (const auto& entry : seen) names.insert(entry.first);
    const int n_layer = (*model)->hparams().n_layer;
    if (std::string(variant) == "phi3-f32") {
      EXPECT_EQ(names.size(), 4u * n_layer + 1);
      EXPECT_TRUE(names.count("blk.1.attn_qkv.weight"));
      EXPECT_TRUE(names.count("blk.1.ffn_up.weight"));
      EXPECT_FALSE(names.count("blk.1.ffn_gate.weight"));
      EXPECT_TRUE(names.count("output.weight"));
    } else {
      EXPECT_EQ(names.size(), 7u * n_layer + 1);
      EXPECT_TRUE(names.count("token_embd.weight"));  // tied output
      EXPECT_FALSE(names.count("output.weight"));
    }
  }
}

}  // namespace
}  // namespace edgelm::model::test
