// edgelm's ONNX executor against ONNX Runtime (and PyTorch) on small exported language models.
#include <gtest/gtest.h>

#include "onnx/onnx_test_util.h"

namespace edgelm::onnx::test {
namespace {

struct ModelCase {
  const char* file;
  const char* torch_logits;  // PyTorch's own forward pass, written by the export script
};

class OrtParity : public ::testing::TestWithParam<ModelCase> {};

// Runs the LM on ids with the given options; returns the logits.
std::vector<float> edgelm_logits(const fs::path& model, const std::vector<int64_t>& ids,
                                 SessionOptions options) {
  auto session = Session::open(model, options);
  EXPECT_TRUE(session) << session.error().to_string();
  if (!session) return {};
  auto input = Tensor::from_int64({1, static_cast<int64_t>(ids.size())}, ids);
  EXPECT_TRUE(input);
  auto out = (*session)->run({"logits"}, {{"input_ids", *input}});
  EXPECT_TRUE(out) << out.error().to_string();
  if (!out) return {};
  const Tensor& logits = (*out)[0];
  EXPECT_EQ(logits.shape(), (std::vector<int64_t>{1, static_cast<int64_t>(ids.size()), 97}));
  return std::vector<float>(logits.data<float>(), logits.data<float>() + logits.numel());
}

TEST_P(OrtParity, LogitsMatchOnnxRuntimeWithin1e4) {
  const fs::path dir = models_dir();
  const fs::path model = dir / GetParam().file;
  const auto ids = test_ids(dir);
  const auto ort = run_ort(
      model,
      {ort_input("input_ids", "int64", {1, static_cast<int64_t>(ids.size())}, dir / "ids.bin")});
  ASSERT_EQ(ort.size(), 1u);
  const auto expected = ort[0].floats();
  const auto torch = read_values<float>(dir / GetParam().torch_logits);
  ASSERT_EQ(expected.size(), torch.size());
  // The oracle itself agrees with PyTorch.
  EXPECT_LT(max_abs_diff(expected, torch.data(), torch.size()), 1e-4f);

  for (bool optimize : {true, false}) {
    for (int threads : {1, 2}) {
      SessionOptions options;
      options.optimize = optimize;
      options.threads = threads;
      const auto logits = edgelm_logits(model, ids, options);
      ASSERT_EQ(logits.size(), expected.size());
      EXPECT_LT(max_abs_diff(expected, logits.data(), logits.size()), 1e-4f)
          << "optimize=" << optimize << " threads=" << threads;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(TorchExports, OrtParity,
                         ::testing::Values(ModelCase{"gpt2_op13.onnx", "torch_logits_gpt2.bin"},
                                           ModelCase{"gpt2_op17.onnx", "torch_logits_gpt2.bin"},
                                           ModelCase{"llama_op13.onnx", "torch_logits_llama.bin"},
                                           ModelCase{"llama_op17.onnx", "torch_logits_llama.bin"},
                                           ModelCase{"llama_ext_op17.onnx",
                                                     "torch_logits_llama.bin"}),
                         [](const auto& info) {
                           std::string name = info.param.file;
                           return name.substr(0, name.find('.'));
                         });

// The operator zoo: every output compared with ONNX Runtime's.
class ZooParity : public ::testing::TestWithParam<const char*> {};

TEST_P(ZooParity, EveryOutputMatchesOnnxRuntime) {
  const fs::path dir = models_dir();
  const fs::path model = dir / GetParam();
  const auto x = read_values<float>(dir / "zoo_x.bin");
  const auto ort = run_ort(model, {ort_input("x", "float", {3, 8}, dir / "zoo_x.bin")});
  ASSERT_EQ(ort.size(), 9u);
  for (bool optimize : {true, false}) {
    SessionOptions options;
    options.optimize = optimize;
    auto session = Session::open(model, options);
    ASSERT_TRUE(session) << session.error().to_string();
    auto input = Tensor::from_floats({3, 8}, x);
    ASSERT_TRUE(input);
    auto out = (*session)->run({}, {{"x", *input}});
    ASSERT_TRUE(out) << out.error().to_string();
    ASSERT_EQ(out->size(), ort.size());
    for (size_t i = 0; i < ort.size(); ++i) {
      const Tensor& t = (*out)[i];
      EXPECT_EQ(t.shape(), ort[i].shape) << ort[i].name;
      ASSERT_EQ(t.dtype(), DataType::kFloat) << ort[i].name;
      const auto expected = ort[i].floats();
      ASSERT_EQ(static_cast<size_t>(t.numel()), expected.size()) << ort[i].name;
      EXPECT_LT(max_abs_diff(expected, t.data<float>(), expected.size()), 1e-4f) << ort[i].name;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(TorchExports, ZooParity,
                         ::testing::Values("zoo_op13.onnx", "zoo_op17.onnx"), [](const auto& info) {
                           std::string name = info.param;
                           return name.substr(0, name.find('.'));
                         });

}  // namespace
}  // namespace edgelm::onnx::test
