#include "edgelm/quantize.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <random>
#include <unistd.h>

#include "edgelm/quant.h"

namespace edgelm::tools {
namespace {

namespace fs = std::filesystem;

format::GgufTensorInfo info(std::string name, std::vector<uint64_t> ne, TensorType type = TensorType::kF32) {
  format::GgufTensorInfo t;
  t.name = std::move(name);
  t.ne = std::move(ne);
  t.type = type;
  return t;
}

QuantRecipe recipe(const char* name) { return parse_quant_recipe(name).value(); }

TEST(ChooseTensorType, MatricesTakeTheTargetWhenRowsFitItsBlocks) {
  EXPECT_EQ(choose_tensor_type(info("blk.0.attn_q.weight", {64, 64}), recipe("q8_0"), 1), TensorType::kQ8_0);
  EXPECT_EQ(choose_tensor_type(info("blk.0.attn_q.weight", {256, 64}), recipe("q4_k"), 1), TensorType::kQ4_K);
}

TEST(ChooseTensorType, FallsBackLikeLlamaCpp) {
  // stories260K's ffn_down rows are 172 long: no 32-element block type fits, F16 does.
  EXPECT_EQ(choose_tensor_type(info("blk.0.ffn_down.weight", {172, 64}), recipe("q8_0"), 1), TensorType::kF16);
  EXPECT_EQ(choose_tensor_type(info("blk.0.ffn_up.weight", {64, 172}), recipe("q4_k"), 1), TensorType::kQ5_0);
  EXPECT_EQ(choose_tensor_type(info("blk.0.ffn_up.weight", {64, 172}), recipe("q6_k"), 1), TensorType::kQ8_0);
}

TEST(ChooseTensorType, VectorsAndNarrowTensorsStay) {
  EXPECT_EQ(choose_tensor_type(info("blk.0.attn_norm.weight", {64}), recipe("q4_0"), 1), TensorType::kF32);
  EXPECT_EQ(choose_tensor_type(info("blk.0.attn_q.weight", {64, 64}, TensorType::kQ4_0), recipe("q8_0"), 1),
            TensorType::kQ4_0);
}

// Q4_K_M: Q6_K for output.weight and for attn_v/ffn_down in llama.cpp's use_more_bits layers.
TEST(ChooseTensorType, KQuantMixFavoursTheSensitiveTensors) {
  const auto mix = recipe("q4_k_m");
  const int n_layer = 16;  // more bits: layers 0-1, 14-15, and 4, 7, 10, 13
  EXPECT_EQ(choose_tensor_type(info("output.weight", {256, 512}), mix, n_layer), TensorType::kQ6_K);
  EXPECT_EQ(choose_tensor_type(info("token_embd.weight", {256, 512}), mix, n_layer), TensorType::kQ4_K);
  for (int layer = 0; layer < n_layer; ++layer) {
    const bool more = layer < 2 || layer >= 14 || (layer - 2) % 3 == 2;
    const std::string prefix = "blk." + std::to_string(layer) + ".";
    EXPECT_EQ(choose_tensor_type(info(prefix + "attn_v.weight", {256, 256}), mix, n_layer),
              more ? TensorType::kQ6_K : TensorType::kQ4_K) << layer;
    EXPECT_EQ(choose_tensor_type(info(prefix + "ffn_down.weight", {512, 256}), mix, n_layer),
              more ? TensorType::kQ6_K : TensorType::kQ4_K) << layer;
    EXPECT_EQ(choose_tensor_type(info(prefix + "attn_q.weight", {256, 256}), mix, n_layer), TensorType::kQ4_K);
  }
  EXPECT_FALSE(parse_quant_recipe("q3_k_xl"));
}

// Quantizing a small model: types as chosen, values within each type's error, metadata kept.
TEST(QuantizeModel, WritesAValidSmallerModel) {
  std::mt19937 rng(1);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> matrix(64 * 32), ragged(172 * 8), norm(64, 1.0f);
  for (float& x : matrix) x = normal(rng);
  for (float& x : ragged) x = normal(rng);
  auto bytes = [](const std::vector<float>& v) {
    return std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(v.data()), v.size() * sizeof(float));
  };
  format::GgufWriter writer;
  writer.set("general.architecture", format::GgufValue::string("llama"));
  ASSERT_TRUE(writer.add_tensor("blk.0.attn_q.weight", TensorType::kF32, {64, 32}, bytes(matrix)));
  ASSERT_TRUE(writer.add_tensor("blk.0.ffn_down.weight", TensorType::kF32, {172, 8}, bytes(ragged)));
  ASSERT_TRUE(writer.add_tensor("blk.0.attn_norm.weight", TensorType::kF32, {64}, bytes(norm)));
  const fs::path dir = fs::temp_directory_path() / ("edgelm-quantize-test-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  ASSERT_TRUE(writer.write(dir / "in.gguf"));

  auto in = format::GgufFile::open(dir / "in.gguf");
  ASSERT_TRUE(in) << in.error().to_string();
  QuantizeOptions options;
  options.recipe = recipe("q8_0");
  options.n_threads = 2;
  size_t progress_calls = 0;
  options.progress = [&](size_t done, size_t total) {
    ++progress_calls;
    EXPECT_EQ(total, 3u);
    EXPECT_EQ(done, progress_calls);
  };
  auto report = quantize_model(*in, dir / "out.gguf", options);
  ASSERT_TRUE(report) << report.error().to_string();
  EXPECT_EQ(progress_calls, 3u);
  EXPECT_LT(report->bytes_after, report->bytes_before);

  auto out = format::GgufFile::open(dir / "out.gguf");
  ASSERT_TRUE(out) << out.error().to_string();
  EXPECT_EQ(out->get_string("general.architecture").value_or(""), "llama");
  EXPECT_EQ(out->get_uint("general.file_type").value_or(0), 7u);  // LLAMA_FTYPE_MOSTLY_Q8_0
  const auto* q = out->find_tensor("blk.0.attn_q.weight");
  const auto* d = out->find_tensor("blk.0.ffn_down.weight");
  const auto* n = out->find_tensor("blk.0.attn_norm.weight");
  ASSERT_TRUE(q && d && n);
  EXPECT_EQ(q->type, TensorType::kQ8_0);
  EXPECT_EQ(d->type, TensorType::kF16);
  EXPECT_EQ(n->type, TensorType::kF32);

  std::vector<float> back(matrix.size());
  ASSERT_TRUE(tensor::dequantize_row(q->type, out->tensor_data(*q).data(), back.data(), back.size()));
  for (size_t i = 0; i < matrix.size(); i += 32) {
    float amax = 0;
    for (size_t j = i; j < i + 32; ++j) amax = std::max(amax, std::fabs(matrix[j]));
    // Q8_0: scale amax/127, rounding error at most half a step (plus the F16 rounding of the scale).
    for (size_t j = i; j < i + 32; ++j) EXPECT_NEAR(back[j], matrix[j], amax / 127 * 0.51 + amax * 1e-3);
  }
  std::vector<float> back_ragged(ragged.size());
  ASSERT_TRUE(tensor::dequantize_row(d->type, out->tensor_data(*d).data(), back_ragged.data(), back_ragged.size()));
  for (size_t i = 0; i < ragged.size(); ++i) EXPECT_NEAR(back_ragged[i], ragged[i], std::fabs(ragged[i]) * 1e-3);
  fs::remove_all(dir);
}

TEST(QuantizeModel, RefusesTypesItCannotProduce) {
  auto r = parse_quant_recipe("iq2_xxs");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("iq2_xxs"), std::string::npos);
  EXPECT_NE(r.error().message.find("q4_k_m"), std::string::npos);
}

}  // namespace
}  // namespace edgelm::tools
