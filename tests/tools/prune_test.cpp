// Structured and unstructured pruning on the real stories260K model.
//
// The oracle for the structural surgery: units made exactly dead (an FFN channel whose ffn_down
// column is zero; a KV group whose attn_v rows are zero) contribute nothing, rank last, and are
// the ones pruned, so the pruned model must compute the same logits as the unpruned one. Any
// mistake in row/column selection, GQA grouping or the updated hyper-parameters breaks that.
#include "edgelm/prune.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>

#include "common/test_paths.h"
#include "edgelm/imatrix.h"
#include "edgelm/model.h"
#include "edgelm/quant.h"

namespace edgelm::tools {
namespace {

namespace fs = std::filesystem;

fs::path stories_path() {
  return test::shared_models_dir() / "stories260K" / "stories260K.gguf";
}

class Prune : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("edgelm-prune-test-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
    auto file = format::GgufFile::open(stories_path());
    ASSERT_TRUE(file) << file.error().to_string();
    in_ = std::make_unique<format::GgufFile>(std::move(*file));
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::vector<float> floats(const format::GgufFile& f, const std::string& name) {
    const auto* info = f.find_tensor(name);
    EXPECT_NE(info, nullptr) << name;
    std::vector<float> v(info->n_elements);
    EXPECT_TRUE(tensor::dequantize_row(info->type, f.tensor_data(*info).data(), v.data(),
                                       static_cast<int64_t>(v.size())));
    return v;
  }

  // Logits of every position for a fixed token sequence.
  std::vector<float> logits(const fs::path& path) {
    auto m = model::Model::load(path);
    EXPECT_TRUE(m) << m.error().to_string();
    if (!m) return {};
    // An F32 KV cache: an F16 one would round K and V of the two models (equal up to float
    // rounding) to different halves now and then, moving logits by ~1e-4.
    model::ContextOptions options;
    options.kv_type = TensorType::kF32;
    auto ctx = model::Context::create(**m, options);
    EXPECT_TRUE(ctx);
    const std::vector<int32_t> tokens = {1,   403, 407,        261, 378, 432, 383,
                                         286, 261, 1000 % 512, 42,  7,   300};
    auto out = (*ctx)->decode(tokens, true);
    EXPECT_TRUE(out);
    return {out->begin(), out->end()};
  }

  fs::path dir_;
  std::unique_ptr<format::GgufFile> in_;
};

// stories260K: n_ff 172, 8 query heads in 4 KV groups of 2, head_dim 8, 5 layers.
TEST_F(Prune, DeadUnitsArePrunedWithoutChangingTheOutput) {
  // Kill FFN channels c % 4 == 1 (43 of 172) and KV group (il % 4) of each layer.
  format::GgufWriter writer;
  for (const auto& [key, value] : in_->metadata()) writer.set(key, value);
  for (const auto& t : in_->tensors()) {
    std::vector<float> v = floats(*in_, t.name);
    const int il = t.name.rfind("blk.", 0) == 0 ? std::atoi(t.name.c_str() + 4) : -1;
    if (t.name.find("ffn_down.weight") != std::string::npos) {
      for (uint64_t r = 0; r < t.ne[1]; ++r) {
        for (uint64_t c = 1; c < t.ne[0]; c += 4) v[r * t.ne[0] + c] = 0.0f;
      }
    }
    if (t.name.find("attn_v.weight") != std::string::npos) {
      std::fill_n(v.begin() + (il % 4) * 8 * 64, 8 * 64, 0.0f);
    }
    ASSERT_TRUE(writer.add_tensor(t.name, TensorType::kF32, t.ne,
                                  {reinterpret_cast<const uint8_t*>(v.data()), v.size() * 4}));
  }
  ASSERT_TRUE(writer.write(dir_ / "dead.gguf"));
  auto dead = format::GgufFile::open(dir_ / "dead.gguf");
  ASSERT_TRUE(dead);

  PruneOptions options;
  options.ffn_ratio = 0.25;
  options.head_ratio = 0.25;
  auto report = prune_model(*dead, dir_ / "pruned.gguf", options);
  ASSERT_TRUE(report) << report.error().to_string();
  EXPECT_EQ(report->n_ff_before, 172);
  EXPECT_EQ(report->n_ff_after, 129);
  EXPECT_EQ(report->n_head_after, 6);
  EXPECT_EQ(report->n_head_kv_after, 3);
  EXPECT_FALSE(report->activation_aware);
  // Per layer: q 6*8 and k, v 3*8 rows of 64; attn_output 64 x 48; gate, up 129 rows; down 64 x
  // 129.
  const uint64_t removed_per_layer = (16 + 8 + 8) * 64 + 64 * 16 + 3 * 43 * 64;
  EXPECT_EQ(report->params_before - report->params_after, 5 * removed_per_layer);
  EXPECT_EQ(report->bytes_before - report->bytes_after, 4 * 5 * removed_per_layer);
  EXPECT_LT(fs::file_size(dir_ / "pruned.gguf"), fs::file_size(dir_ / "dead.gguf"));

  auto pruned = model::Model::load(dir_ / "pruned.gguf");
  ASSERT_TRUE(pruned) << pruned.error().to_string();
  EXPECT_EQ((*pruned)->hparams().n_ff, 129);
  EXPECT_EQ((*pruned)->hparams().n_head, 6);
  EXPECT_EQ((*pruned)->hparams().n_head_kv, 3);
  EXPECT_EQ((*pruned)->hparams().head_dim, 8);

  const auto before = logits(dir_ / "dead.gguf");
  const auto after = logits(dir_ / "pruned.gguf");
  ASSERT_EQ(before.size(), after.size());
  double max_diff = 0;
  for (size_t i = 0; i < before.size(); ++i)
    max_diff = std::max(max_diff, double{std::fabs(before[i] - after[i])});
  EXPECT_LT(max_diff, 1e-4);
}

TEST_F(Prune, RealModelShrinksAndStillRuns) {
  PruneOptions options;
  options.ffn_ratio = 0.5;
  options.head_ratio = 0.5;
  auto report = prune_model(*in_, dir_ / "half.gguf", options);
  ASSERT_TRUE(report) << report.error().to_string();
  EXPECT_EQ(report->n_ff_after, 86);
  EXPECT_EQ(report->n_head_after, 4);
  EXPECT_EQ(report->n_head_kv_after, 2);
  EXPECT_LT(fs::file_size(dir_ / "half.gguf"), fs::file_size(stories_path()));
  const auto out = logits(dir_ / "half.gguf");
  ASSERT_FALSE(out.empty());
  for (float x : out) ASSERT_TRUE(std::isfinite(x));
  // Every kept ffn_gate row is an original row, in the original order.
  auto pruned = format::GgufFile::open(dir_ / "half.gguf");
  ASSERT_TRUE(pruned);
  const auto orig = floats(*in_, "blk.2.ffn_gate.weight");
  const auto kept = floats(*pruned, "blk.2.ffn_gate.weight");
  size_t next = 0;
  for (size_t r = 0; r < 86; ++r) {
    while (next < 172 && !std::equal(kept.begin() + r * 64, kept.begin() + (r + 1) * 64,
                                     orig.begin() + next * 64))
      ++next;
    ASSERT_LT(next, 172u) << "row " << r << " is not an original row in order";
    ++next;
  }
}

// With an importance matrix the ffn_down input statistics decide: channels that never activate
// go first, whatever their weights.
TEST_F(Prune, ActivationStatisticsDecideWithAnImportanceMatrix) {
  ImportanceMatrix imatrix;
  std::vector<float> act(172);
  for (int il = 0; il < 5; ++il) {
    for (int c = 0; c < 172; ++c) act[c] = c < 43 ? 0.0f : 1.0f;  // channels 0..42 silent
    ASSERT_TRUE(imatrix.add("blk." + std::to_string(il) + ".ffn_down.weight", act.data(), 1, 172));
  }
  PruneOptions options;
  options.ffn_ratio = 0.25;
  options.imatrix = &imatrix;
  auto report = prune_model(*in_, dir_ / "act.gguf", options);
  ASSERT_TRUE(report) << report.error().to_string();
  EXPECT_TRUE(report->activation_aware);
  auto pruned = format::GgufFile::open(dir_ / "act.gguf");
  ASSERT_TRUE(pruned);
  const auto orig = floats(*in_, "blk.3.ffn_down.weight");     // [64 rows][172]
  const auto kept = floats(*pruned, "blk.3.ffn_down.weight");  // [64 rows][129]
  for (int r = 0; r < 64; ++r) {
    for (int c = 0; c < 129; ++c)
      ASSERT_EQ(kept[r * 129 + c], orig[r * 172 + 43 + c]) << r << "," << c;
  }
  // Heads need attn_output statistics, which this matrix lacks.
  options.head_ratio = 0.25;
  auto missing = prune_model(*in_, dir_ / "x.gguf", options);
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message.find("blk.0.attn_output.weight"), std::string::npos);
}

TEST_F(Prune, SparsityZeroesTheSmallestWeightsOfEachRow) {
  PruneOptions options;
  options.sparsity = 0.5;
  auto report = prune_model(*in_, dir_ / "sparse.gguf", options);
  ASSERT_TRUE(report) << report.error().to_string();
  auto sparse = format::GgufFile::open(dir_ / "sparse.gguf");
  ASSERT_TRUE(sparse);
  const auto orig = floats(*in_, "blk.1.ffn_down.weight");  // rows of 172
  const auto got = floats(*sparse, "blk.1.ffn_down.weight");
  for (int r = 0; r < 64; ++r) {
    int zeros = 0;
    float max_zeroed = 0, min_kept = 1e30f;
    for (int c = 0; c < 172; ++c) {
      const float w = orig[r * 172 + c];
      if (got[r * 172 + c] == 0.0f) {
        ++zeros;
        max_zeroed = std::max(max_zeroed, std::fabs(w));
      } else {
        ASSERT_EQ(got[r * 172 + c], w);
        min_kept = std::min(min_kept, std::fabs(w));
      }
    }
    EXPECT_EQ(zeros, 86);
    EXPECT_LE(max_zeroed, min_kept);
  }
  // Embeddings and norms are untouched; the model still runs.
  EXPECT_EQ(floats(*sparse, "token_embd.weight"), floats(*in_, "token_embd.weight"));
  EXPECT_EQ(floats(*sparse, "blk.0.attn_norm.weight"), floats(*in_, "blk.0.attn_norm.weight"));
  // 7 matrices of 64*64, 64*32 x2, 64*64, 64*172 x2, 172*64 per layer, half of each row.
  EXPECT_EQ(report->weights_zeroed,
            5u * (64 * 32 + 2 * 32 * 32 + 64 * 32 + 2 * 172 * 32 + 64 * 86));
  EXPECT_FALSE(logits(dir_ / "sparse.gguf").empty());
}

TEST_F(Prune, RejectsBadRatiosAndMismatchedImatrix) {
  PruneOptions options;
  options.ffn_ratio = 1.0;
  EXPECT_EQ(prune_model(*in_, dir_ / "x.gguf", options).error().code, ErrorCode::kInvalidArgument);
  options.ffn_ratio = -0.1;
  EXPECT_FALSE(prune_model(*in_, dir_ / "x.gguf", options));
  options.ffn_ratio = 0.25;
  ImportanceMatrix wrong;
  std::vector<float> act(100, 1.0f);
  for (int il = 0; il < 5; ++il)
    ASSERT_TRUE(wrong.add("blk." + std::to_string(il) + ".ffn_down.weight", act.data(), 1, 100));
  options.imatrix = &wrong;
  auto r = prune_model(*in_, dir_ / "x.gguf", options);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("100 columns"), std::string::npos) << r.error().message;
  EXPECT_FALSE(fs::exists(dir_ / "x.gguf"));
}

}  // namespace
}  // namespace edgelm::tools
