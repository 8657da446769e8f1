// onnx-quantize output run by ONNX Runtime and by edgelm: both must accept it and agree.
#include "edgelm/onnx/quantize.h"

#include <gtest/gtest.h>

#include "onnx/onnx_test_util.h"

namespace edgelm::onnx::test {
namespace {

struct QuantCase {
  const char* model;
  WeightType type;
  bool per_channel;
  int64_t weight_matmuls;     // MatMuls with a weight initializer (rewritten)
  int64_t attention_matmuls;  // MatMuls of two activations (left as float)
};

std::string case_name(const QuantCase& c) {
  std::string name = c.model;
  name = name.substr(0, name.find('.'));
  return name + (c.type == WeightType::kQInt8 ? "_qint8" : "_quint8") +
         (c.per_channel ? "_per_channel" : "");
}

class QuantizeDynamic : public ::testing::TestWithParam<QuantCase> {};

std::vector<float> run_edgelm(const fs::path& model, const std::vector<int64_t>& ids,
                              bool optimize) {
  SessionOptions options;
  options.optimize = optimize;
  auto session = Session::open(model, options);
  EXPECT_TRUE(session) << session.error().to_string();
  if (!session) return {};
  auto input = Tensor::from_int64({1, static_cast<int64_t>(ids.size())}, ids);
  auto out = (*session)->run({"logits"}, {{"input_ids", *input}});
  EXPECT_TRUE(out) << out.error().to_string();
  if (!out) return {};
  return std::vector<float>((*out)[0].data<float>(), (*out)[0].data<float>() + (*out)[0].numel());
}

TEST_P(QuantizeDynamic, OnnxRuntimeRunsOurFileAndAgrees) {
  const fs::path dir = models_dir();
  const QuantCase c = GetParam();
  const fs::path out = fs::temp_directory_path() /
                       ("edgelm_q_" + std::to_string(::getpid()) + "_" + case_name(c) + ".onnx");
  QuantizeOptions options;
  options.weight_type = c.type;
  options.per_channel = c.per_channel;
  auto report = quantize_dynamic(dir / c.model, out, options);
  ASSERT_TRUE(report) << report.error().to_string();
  EXPECT_EQ(report->quantized, c.weight_matmuls);
  EXPECT_EQ(report->skipped, c.attention_matmuls);
  EXPECT_LT(report->bytes_out, report->bytes_in);  // the embeddings stay float (as in ORT)

  const auto ids = test_ids(dir);
  const std::string feed =
      ort_input("input_ids", "int64", {1, static_cast<int64_t>(ids.size())}, dir / "ids.bin");
  const auto fp32 = run_ort(dir / c.model, {feed});
  const auto quant = run_ort(out, {feed});
  ASSERT_EQ(quant.size(), 1u);
  ASSERT_EQ(fp32.size(), 1u);
  const auto ort_q = quant[0].floats();
  const auto ort_f = fp32[0].floats();
  // The quantization error ONNX Runtime itself shows on this file: our tolerance unit.
  const float q_error = max_abs_diff(ort_q, ort_f.data(), ort_f.size());
  EXPECT_GT(q_error, 0.0f);

  // Exact ONNX semantics (node by node): the same integers as ONNX Runtime, float rounding aside.
  const auto exact = run_edgelm(out, ids, false);
  ASSERT_EQ(exact.size(), ort_q.size());
  EXPECT_LT(max_abs_diff(ort_q, exact.data(), exact.size()), 1e-3f);
  // Fused onto the int8 kernels (q8_0 blocks): within the quantization error.
  const auto fused = run_edgelm(out, ids, true);
  ASSERT_EQ(fused.size(), ort_q.size());
  const float fused_vs_ort = max_abs_diff(ort_q, fused.data(), fused.size());
  const float fused_vs_fp32 = max_abs_diff(ort_f, fused.data(), fused.size());
  EXPECT_LT(fused_vs_ort, 2 * q_error);
  EXPECT_LT(fused_vs_fp32, 2 * q_error);
  std::printf(
      "%s: ORT quantization error %.5f, edgelm exact vs ORT %.2e, fused vs ORT %.5f, fused vs fp32 "
      "%.5f\n",
      case_name(c).c_str(), q_error, max_abs_diff(ort_q, exact.data(), exact.size()), fused_vs_ort,
      fused_vs_fp32);
  fs::remove(out);
}

INSTANTIATE_TEST_SUITE_P(
    Models, QuantizeDynamic,
    // 2 layers: GPT-2 has 4 weight MatMuls per layer + the head, Llama 7 + the head;
    // both have 2 attention MatMuls per layer.
    ::testing::Values(QuantCase{"gpt2_op17.onnx", WeightType::kQUInt8, false, 9, 4},
                      QuantCase{"gpt2_op13.onnx", WeightType::kQInt8, true, 9, 4},
                      QuantCase{"llama_op13.onnx", WeightType::kQInt8, false, 15, 4},
                      QuantCase{"llama_ext_op17.onnx", WeightType::kQUInt8, true, 15, 4}),
    [](const auto& info) { return case_name(info.param); });

}  // namespace
}  // namespace edgelm::onnx::test

namespace edgelm::onnx::test {
namespace {

// A Gemm (nn.Linear on a 2-D input) becomes MatMulInteger + scales + bias Add; every output of
// the operator zoo still matches ONNX Runtime on the rewritten file.
TEST(QuantizeDynamicGemm, ZooOutputsMatchOnnxRuntime) {
  const fs::path dir = models_dir();
  const fs::path out =
      fs::temp_directory_path() / ("edgelm_q_zoo_" + std::to_string(::getpid()) + ".onnx");
  QuantizeOptions options;
  options.weight_type = WeightType::kQUInt8;
  auto report = quantize_dynamic(dir / "zoo_op17.onnx", out, options);
  ASSERT_TRUE(report) << report.error().to_string();
  EXPECT_EQ(report->quantized, 1);
  const auto x = read_values<float>(dir / "zoo_x.bin");
  const auto ort = run_ort(out, {ort_input("x", "float", {3, 8}, dir / "zoo_x.bin")});
  ASSERT_EQ(ort.size(), 9u);
  for (bool optimize : {false, true}) {
    SessionOptions session_options;
    session_options.optimize = optimize;
    auto session = Session::open(out, session_options);
    ASSERT_TRUE(session) << session.error().to_string();
    auto input = Tensor::from_floats({3, 8}, x);
    auto result = (*session)->run({}, {{"x", *input}});
    ASSERT_TRUE(result) << result.error().to_string();
    for (size_t i = 0; i < ort.size(); ++i) {
      const auto expected = ort[i].floats();
      ASSERT_EQ(static_cast<size_t>((*result)[i].numel()), expected.size());
      // y0 (the quantized Gemm) is exact node by node; the fused kernel requantizes per block.
      const float tolerance = optimize && i == 0 ? 0.1f : 1e-4f;
      EXPECT_LT(max_abs_diff(expected, (*result)[i].data<float>(), expected.size()), tolerance)
          << ort[i].name << " optimize=" << optimize;
    }
  }
  fs::remove(out);
}

}  // namespace
}  // namespace edgelm::onnx::test
