// Model-level quantization round trip on the real stories260K model: every recipe's file decodes
// to the same values with our dequantizer and with the numpy block reference
// (tests/reference/quants.py via eval_quant_check.py), within the error each type allows.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/test_paths.h"
#include "edgelm/model.h"
#include "edgelm/quant.h"
#include "edgelm/quantize.h"

namespace edgelm::tools {
namespace {

namespace fs = std::filesystem;

// Largest relative RMS error ||w - q(w)|| / ||w|| accepted per stored type on trained weights:
// about twice what each format's step size gives (8-bit ~0.4 %, 5-bit ~2-3 %, 4-bit ~6-8 %).
const std::map<std::string, double> kRelRmsBound = {
    {"f16", 1e-3},  {"bf16", 8e-3}, {"q8_0", 0.01}, {"q6_k", 0.02}, {"q5_0", 0.05}, {"q5_1", 0.05},
    {"q5_k", 0.05}, {"q4_0", 0.12}, {"q4_1", 0.12}, {"q4_k", 0.12}, {"q3_k", 0.25}, {"q2_k", 0.45},
};

std::vector<double> dequantized(const format::GgufFile& f, const format::GgufTensorInfo& info) {
  std::vector<float> v(info.n_elements);
  EXPECT_TRUE(tensor::dequantize_row(info.type, f.tensor_data(info).data(), v.data(),
                                     static_cast<int64_t>(v.size())));
  return {v.begin(), v.end()};
}

TEST(QuantizedModels, EveryRecipeDecodesLikeTheNumpyReferenceWithinItsBound) {
  const fs::path original = test::shared_models_dir() / "stories260K" / "stories260K.gguf";
  const fs::path dir =
      fs::temp_directory_path() / ("edgelm-quantized-models-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  auto in = format::GgufFile::open(original);
  ASSERT_TRUE(in);
  const std::vector<std::string> recipes = {"f16",  "bf16",   "q8_0",   "q6_k", "q5_0",
                                            "q5_1", "q5_k",   "q5_k_m", "q4_0", "q4_1",
                                            "q4_k", "q4_k_m", "q3_k",   "q2_k"};
  std::string cmd = test::python3() + " " +
                    (test::source_dir() / "tests/reference/eval_quant_check.py").string() + " " +
                    original.string() + " " + (dir / "check.json").string();
  for (const auto& name : recipes) {
    QuantizeOptions options;
    options.recipe = parse_quant_recipe(name).value();
    ASSERT_TRUE(quantize_model(*in, dir / (name + ".gguf"), options)) << name;
    cmd.append(" ").append((dir / (name + ".gguf")).string());
  }
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  std::ifstream json_in(dir / "check.json");
  const auto ref = nlohmann::json::parse(json_in);

  const auto originals = [&] {
    std::map<std::string, std::vector<double>> m;
    for (const auto& t : in->tensors()) m[t.name] = dequantized(*in, t);
    return m;
  }();
  for (const auto& name : recipes) {
    const fs::path path = dir / (name + ".gguf");
    auto q = format::GgufFile::open(path);
    ASSERT_TRUE(q) << name;
    const auto& expected = ref.at(path.string());
    EXPECT_EQ(q->tensors().size(), in->tensors().size());
    for (const auto& t : q->tensors()) {
      const std::string type(tensor_type_name(t.type));
      const auto& r = expected.at(t.name);
      EXPECT_EQ(r["type"], type) << name << " " << t.name;
      const auto got = dequantized(*q, t);
      const auto& w = originals.at(t.name);
      double err = 0, norm = 0, sum = 0;
      for (size_t i = 0; i < got.size(); ++i) {
        err += (w[i] - got[i]) * (w[i] - got[i]);
        norm += w[i] * w[i];
        sum += got[i];
      }
      const double rel = std::sqrt(err / norm);
      EXPECT_NEAR(rel, r["rel_rms"].get<double>(), 1e-6 + 1e-5 * rel) << name << " " << t.name;
      EXPECT_NEAR(sum, r["sum"].get<double>(), 1e-4 * (1 + std::fabs(sum)))
          << name << " " << t.name;
      if (t.type != TensorType::kF32) {
        ASSERT_TRUE(kRelRmsBound.count(type)) << type;
        EXPECT_LT(rel, kRelRmsBound.at(type)) << name << " " << t.name;
      }
    }
    // Every quantized file loads and decodes.
    auto model = model::Model::load(path);
    ASSERT_TRUE(model) << name << ": " << model.error().to_string();
  }
  fs::remove_all(dir);
}

// quant_bits at load time: 8 -> Q8_0 and 4 -> Q4_0 where rows fit 32-element blocks (ffn_down's
// 172-long rows fall back to F16); what is already at or below the width stays.
TEST(QuantizedModels, QuantBitsQuantizesToBytesThatLoad) {
  auto in = format::GgufFile::open(test::shared_models_dir() / "stories260K" / "stories260K.gguf");
  ASSERT_TRUE(in);
  for (int bits : {8, 4}) {
    QuantizeOptions options;
    options.recipe = recipe_for_quant_bits(bits).value();
    QuantizeReport report;
    auto bytes = quantize_model_to_bytes(*in, options, &report);
    ASSERT_TRUE(bytes) << bytes.error().to_string();
    auto file = format::GgufFile::parse(*bytes);
    ASSERT_TRUE(file) << file.error().to_string();
    const TensorType want = bits == 8 ? TensorType::kQ8_0 : TensorType::kQ4_0;
    EXPECT_EQ(file->find_tensor("blk.0.attn_q.weight")->type, want);
    EXPECT_EQ(file->find_tensor("blk.0.ffn_down.weight")->type, TensorType::kF16);
    EXPECT_EQ(file->find_tensor("blk.0.attn_norm.weight")->type, TensorType::kF32);
    EXPECT_EQ(report.bytes_after, [&] {
      uint64_t n = 0;
      for (const auto& t : file->tensors()) n += t.n_bytes;
      return n;
    }());
    auto model = model::Model::from_gguf(std::move(*file));
    ASSERT_TRUE(model) << model.error().to_string();

    // Already narrow: quantizing the 8-bit result to 8 bits again changes no tensor type.
    if (bits == 8) {
      auto again = format::GgufFile::parse(*bytes);
      ASSERT_TRUE(again);
      QuantizeReport second;
      ASSERT_TRUE(quantize_model_to_bytes(*again, options, &second));
      for (const auto& t : second.tensors) EXPECT_EQ(t.from, t.to) << t.name;
    }
  }
  EXPECT_FALSE(recipe_for_quant_bits(6));
}

}  // namespace
}  // namespace edgelm::tools
