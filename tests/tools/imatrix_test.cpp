// Importance matrices: the file format, collection over the real model, and their effect on
// quantization (lower error where the calibration activations are large).
#include "edgelm/imatrix.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <random>

#include "common/test_paths.h"
#include "edgelm/quant.h"
#include "edgelm/quantize.h"

namespace edgelm::tools {
namespace {

namespace fs = std::filesystem;

class Imatrix : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("edgelm-imatrix-test-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

std::span<const uint8_t> bytes_of(const std::vector<float>& v) {
  return {reinterpret_cast<const uint8_t*>(v.data()), v.size() * sizeof(float)};
}

std::vector<float> dequantized(const format::GgufFile& f, const std::string& name) {
  const auto* info = f.find_tensor(name);
  std::vector<float> v(info->n_elements);
  EXPECT_TRUE(tensor::dequantize_row(info->type, f.tensor_data(*info).data(), v.data(),
                                     static_cast<int64_t>(v.size())));
  return v;
}

TEST_F(Imatrix, SavesAndLoads) {
  ImportanceMatrix m;
  m.model_name = "tiny";
  m.dataset = "calib.txt";
  m.n_ctx = 64;
  m.n_tokens = 3;
  const std::vector<float> x = {1, 2, 3, -1, 0, 0.5f, 2, 2, 2};  // 3 tokens x 3 columns
  ASSERT_TRUE(m.add("blk.0.attn_q.weight", x.data(), 3, 3));
  ASSERT_TRUE(m.add("output.weight", x.data(), 2, 3));
  EXPECT_FALSE(m.add("output.weight", x.data(), 1, 2));  // width changed
  EXPECT_EQ(m.mean_sq("blk.0.attn_q.weight"), (std::vector<float>{2.0f, 8.0f / 3, 13.25f / 3}));
  EXPECT_TRUE(m.mean_sq("blk.9.attn_q.weight").empty());

  ASSERT_TRUE(save_imatrix(m, dir_ / "m.gguf"));
  auto loaded = load_imatrix(dir_ / "m.gguf");
  ASSERT_TRUE(loaded) << loaded.error().to_string();
  EXPECT_EQ(loaded->model_name, "tiny");
  EXPECT_EQ(loaded->dataset, "calib.txt");
  EXPECT_EQ(loaded->n_ctx, 64);
  EXPECT_EQ(loaded->n_tokens, 3);
  ASSERT_EQ(loaded->entries.size(), 2u);
  EXPECT_EQ(loaded->find("output.weight")->count, 2);
  EXPECT_EQ(loaded->mean_sq("blk.0.attn_q.weight"), m.mean_sq("blk.0.attn_q.weight"));
  // A standard GGUF: every tool can read it.
  auto raw = format::GgufFile::open(dir_ / "m.gguf");
  ASSERT_TRUE(raw);
  EXPECT_EQ(raw->get_string("general.type").value(), "imatrix");
  EXPECT_NE(raw->find_tensor("output.weight.in_sum_sq"), nullptr);
}

TEST_F(Imatrix, RejectsOtherAndBrokenFiles) {
  EXPECT_FALSE(load_imatrix(test::shared_models_dir() / "stories260K" / "stories260K.gguf"));
  const std::vector<float> sums = {1.0f, -2.0f}, count = {4.0f};
  format::GgufWriter w;
  w.set("general.type", format::GgufValue::string("imatrix"));
  w.set("edgelm.imatrix.version", format::GgufValue::u32(1));
  ASSERT_TRUE(w.add_tensor("a.weight.in_sum_sq", TensorType::kF32, {2}, bytes_of(sums)));
  ASSERT_TRUE(w.write(dir_ / "nocount.gguf"));
  auto e = load_imatrix(dir_ / "nocount.gguf");
  ASSERT_FALSE(e);
  EXPECT_NE(e.error().message.find("a.weight.in_count"), std::string::npos) << e.error().message;
  ASSERT_TRUE(w.add_tensor("a.weight.in_count", TensorType::kF32, {1}, bytes_of(count)));
  ASSERT_TRUE(w.write(dir_ / "negative.gguf"));
  e = load_imatrix(dir_ / "negative.gguf");
  ASSERT_FALSE(e);
  EXPECT_NE(e.error().message.find("negative"), std::string::npos) << e.error().message;
}

// K-quants weighted by the importance matrix lose less where the activations are large: both the
// importance-weighted weight error and the output error on the calibration activations drop.
TEST_F(Imatrix, ChangesTheQuantizationWhereItMatters) {
  const int rows = 64, cols = 256, n_tokens = 128;
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> log_scale(-2.5f, 2.5f);
  std::vector<float> w(rows * cols), x(n_tokens * cols), scale(cols);
  for (float& v : w) v = normal(rng);
  for (float& s : scale) s = std::exp(log_scale(rng));  // activations differ ~150x across columns
  for (int t = 0; t < n_tokens; ++t) {
    for (int c = 0; c < cols; ++c) x[t * cols + c] = normal(rng) * scale[c];
  }
  ImportanceMatrix imatrix;
  ASSERT_TRUE(imatrix.add("blk.0.ffn_up.weight", x.data(), n_tokens, cols));
  format::GgufWriter writer;
  writer.set("general.architecture", format::GgufValue::string("llama"));
  ASSERT_TRUE(
      writer.add_tensor("blk.0.ffn_up.weight", TensorType::kF32, {cols, rows}, bytes_of(w)));
  ASSERT_TRUE(writer.write(dir_ / "in.gguf"));
  auto in = format::GgufFile::open(dir_ / "in.gguf");
  ASSERT_TRUE(in);
  const std::vector<float> importance = imatrix.mean_sq("blk.0.ffn_up.weight");

  for (const char* type : {"q4_0", "q4_1", "q5_0", "q5_1", "q2_k", "q3_k", "q4_k", "q5_k", "q6_k"}) {
    double weighted[2], output[2];
    for (int with = 0; with < 2; ++with) {
      QuantizeOptions options;
      options.recipe = parse_quant_recipe(type).value();
      options.imatrix = with ? &imatrix : nullptr;
      const fs::path out = dir_ / (std::string(type) + std::to_string(with) + ".gguf");
      auto report = quantize_model(*in, out, options);
      ASSERT_TRUE(report) << report.error().to_string();
      EXPECT_EQ(report->tensors[0].used_imatrix, with == 1);
      auto q = format::GgufFile::open(out);
      ASSERT_TRUE(q);
      const auto wq = dequantized(*q, "blk.0.ffn_up.weight");
      weighted[with] = output[with] = 0;
      for (int r = 0; r < rows; ++r) {
        for (int c = 0; c < cols; ++c) {
          const double d = w[r * cols + c] - wq[r * cols + c];
          weighted[with] += importance[c] * d * d;
        }
        for (int t = 0; t < n_tokens; ++t) {
          double y = 0;
          for (int c = 0; c < cols; ++c)
            y += (w[r * cols + c] - wq[r * cols + c]) * x[t * cols + c];
          output[with] += y * y;
        }
      }
    }
    EXPECT_LT(weighted[1], 0.9 * weighted[0]) << type;
    EXPECT_LT(output[1], 0.9 * output[0]) << type;
  }

  ImportanceMatrix wrong;
  ASSERT_TRUE(wrong.add("blk.0.ffn_up.weight", x.data(), 1, 128));
  QuantizeOptions options;
  options.recipe = parse_quant_recipe("q4_k").value();
  options.imatrix = &wrong;
  auto r = quantize_model(*in, dir_ / "wrong.gguf", options);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("blk.0.ffn_up.weight"), std::string::npos);
}

// Collection over the real model: every weight matrix, every token; the first layer's q/k/v input
// (RMS-normed embeddings scaled by attn_norm) recomputed here from the file's floats.
TEST_F(Imatrix, CollectsEveryMatrixOfTheRealModel) {
  auto model = model::Model::load(test::shared_models_dir() / "stories260K" / "stories260K.gguf");
  ASSERT_TRUE(model);
  std::vector<int32_t> tokens;
  for (int i = 0; i < 100; ++i) tokens.push_back((i * 37 + 1) % 512);
  ImatrixOptions options;
  options.n_ctx = 40;  // three windows
  auto m = collect_imatrix(**model, tokens, options);
  ASSERT_TRUE(m) << m.error().to_string();
  EXPECT_EQ(m->n_tokens, 100);
  EXPECT_EQ(m->entries.size(), 5u * 7 + 1);
  for (const auto& [name, e] : m->entries) EXPECT_EQ(e.count, 100) << name;
  EXPECT_EQ(m->find("blk.4.ffn_down.weight")->sum_sq.size(), 172u);
  EXPECT_EQ(m->find("blk.0.attn_output.weight")->sum_sq.size(), 64u);

  const auto& file = (*model)->gguf();
  const auto embd = dequantized(file, "token_embd.weight");
  const auto norm = dequantized(file, "blk.0.attn_norm.weight");
  std::vector<double> expected(64, 0.0);
  for (int32_t t : tokens) {
    const float* e = embd.data() + t * 64;
    double ms = 0;
    for (int i = 0; i < 64; ++i) ms += double{e[i]} * e[i];
    const double inv = 1.0 / std::sqrt(ms / 64 + 1e-5);
    for (int i = 0; i < 64; ++i) expected[i] += std::pow(e[i] * inv * norm[i], 2) / tokens.size();
  }
  const auto got = m->mean_sq("blk.0.attn_k.weight");
  for (int i = 0; i < 64; ++i) EXPECT_NEAR(got[i], expected[i], 1e-4 * expected[i] + 1e-7) << i;
}

}  // namespace
}  // namespace edgelm::tools
