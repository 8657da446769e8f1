// The causal-LM wrapper and the optimizer's bookkeeping on the exported test models.
#include "edgelm/onnx/causal_lm.h"

#include <gtest/gtest.h>

#include "onnx/onnx_test_util.h"

namespace edgelm::onnx::test {
namespace {

// Logits for every prefix equal the matching row of one full run (causal masking works at every
// sequence length) and the full run's last row equals ONNX Runtime's.
TEST(OnnxCausalLm, PrefixLogitsMatchFullRunAndOnnxRuntime) {
  const fs::path dir = models_dir();
  for (const char* file : {"gpt2_op17.onnx", "llama_op13.onnx"}) {
    auto lm = CausalLm::open(dir / file, SessionOptions{});
    ASSERT_TRUE(lm) << lm.error().to_string();
    const auto ids64 = test_ids(dir);
    const std::vector<int32_t> ids(ids64.begin(), ids64.end());
    const auto ort = run_ort(
        dir / file,
        {ort_input("input_ids", "int64", {1, static_cast<int64_t>(ids.size())}, dir / "ids.bin")});
    ASSERT_EQ(ort.size(), 1u);
    const auto full = ort[0].floats();
    const size_t vocab = full.size() / ids.size();
    for (size_t k = 1; k <= ids.size(); ++k) {
      auto logits = (*lm)->next_logits(std::span<const int32_t>(ids.data(), k));
      ASSERT_TRUE(logits) << logits.error().to_string();
      ASSERT_EQ(logits->size(), vocab);
      EXPECT_LT(max_abs_diff(*logits, full.data() + (k - 1) * vocab, vocab), 1e-4f)
          << file << " prefix " << k;
    }
    EXPECT_EQ((*lm)->n_vocab(), static_cast<int64_t>(vocab));
    const std::vector<int32_t> bad = {1, static_cast<int32_t>(vocab)};
    EXPECT_FALSE((*lm)->next_logits(bad));
  }
}

TEST(OnnxCausalLm, RejectsModelsOfOtherShapes) {
  auto lm = CausalLm::open(models_dir() / "zoo_op17.onnx", SessionOptions{});
  ASSERT_FALSE(lm);
  EXPECT_NE(lm.error().message.find("input 'x'"), std::string::npos) << lm.error().to_string();
}

// Folding and fusion do what they claim on PyTorch's exports.
TEST(OnnxOptimizer, FusesNormsAndLinearsOfTorchExports) {
  struct Expect {
    const char* file;
    int64_t fused;
  };
  // GPT-2 (2 layers): 4 weight MatMuls per layer + head = 9 Linears (their bias Adds absorbed);
  // opset 13 also spells 5 LayerNorms out as ReduceMean/Sub/Pow/.../Add chains. Each layer's GELU
  // chain (tanh in layer 0, erf in layer 1) becomes one op, then the fc Linear's epilogue: +4.
  // Llama (2 layers): 7 weight MatMuls per layer + head = 15 Linears and 5 RMSNorm chains; each
  // layer's SiLU (Sigmoid, Mul) becomes one op, then the gate Linear's epilogue: +4.
  // Attention MatMuls absorb their Transposes: GPT-2's Q K^T (both inputs) and P V (V and the
  // head merge after it), 2 per layer; Llama's Q K^T (K^T; Q passes through the rotary ops), 1.
  // Then each layer's scores -> scale -> mask -> Softmax -> P V chain becomes one Attention: +2.
  for (const Expect& e :
       {Expect{"gpt2_op13.onnx", 9 + 5 + 4 + 4 + 2}, Expect{"gpt2_op17.onnx", 9 + 4 + 4 + 2},
        Expect{"llama_op13.onnx", 15 + 5 + 4 + 2 + 2},
        Expect{"llama_op17.onnx", 15 + 5 + 4 + 2 + 2}}) {
    auto session = Session::open(models_dir() / e.file, SessionOptions{});
    ASSERT_TRUE(session) << session.error().to_string();
    const SessionStats& stats = (*session)->stats();
    EXPECT_EQ(stats.fused_patterns, e.fused) << e.file;
    EXPECT_GT(stats.folded_nodes, 0) << e.file;
    // The ~150 Constant nodes fold away; shape arithmetic on the dynamic input stays.
    EXPECT_LT(stats.nodes_scheduled, stats.nodes_in_file * 2 / 3) << e.file;
    SessionOptions plain;
    plain.optimize = false;
    auto unoptimized = Session::open(models_dir() / e.file, plain);
    ASSERT_TRUE(unoptimized);
    EXPECT_EQ((*unoptimized)->stats().nodes_scheduled, (*unoptimized)->stats().nodes_in_file);
  }
}

// Buffers are recycled within a run: the arena's peak stays well under the sum of all values.
TEST(OnnxOptimizer, ArenaReusesBuffers) {
  const fs::path dir = models_dir();
  SessionOptions options;
  options.optimize = false;
  auto session = Session::open(dir / "llama_op13.onnx", options);
  ASSERT_TRUE(session);
  const auto ids = test_ids(dir);
  auto input = Tensor::from_int64({1, static_cast<int64_t>(ids.size())}, ids);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE((*session)->run({}, {{"input_ids", *input}}));
  const uint64_t peak = (*session)->stats().peak_arena_bytes;
  const uint64_t requested = (*session)->stats().last_run_value_bytes;
  EXPECT_GT(peak, 0u);
  EXPECT_LT(peak * 4, requested) << "peak " << peak << " of " << requested << " bytes computed";
}

}  // namespace
}  // namespace edgelm::onnx::test

namespace edgelm::onnx::test {
namespace {

// quant_bits 8 / 4 repack float MatMul weights as q8_0 / q4_0 at load: the logits move by about
// the quantization error and no more (reference: ONNX Runtime's fp32 run).
TEST(OnnxOptimizer, LoadTimeQuantizationStaysClose) {
  const fs::path dir = models_dir();
  const auto ids = test_ids(dir);
  const auto ort = run_ort(
      dir / "llama_op17.onnx",
      {ort_input("input_ids", "int64", {1, static_cast<int64_t>(ids.size())}, dir / "ids.bin")});
  ASSERT_EQ(ort.size(), 1u);
  const auto expected = ort[0].floats();
  float max_logit = 0;
  for (float v : expected) max_logit = std::max(max_logit, std::abs(v));
  for (int bits : {8, 4}) {
    SessionOptions options;
    options.quant_bits = bits;
    auto session = Session::open(dir / "llama_op17.onnx", options);
    ASSERT_TRUE(session) << session.error().to_string();
    auto input = Tensor::from_int64({1, static_cast<int64_t>(ids.size())}, ids);
    auto out = (*session)->run({"logits"}, {{"input_ids", *input}});
    ASSERT_TRUE(out) << out.error().to_string();
    const float diff = max_abs_diff(expected, (*out)[0].data<float>(), expected.size());
    EXPECT_GT(diff, 0.0f) << bits
                          << " bits changed nothing";  // the weights really were requantized
    EXPECT_LT(diff, (bits == 8 ? 0.02f : 0.2f) * max_logit) << bits << " bits";
    std::printf("quant_bits %d: max |logit - ORT fp32| = %.4f (max |logit| %.3f)\n", bits, diff,
                max_logit);
  }
}

}  // namespace
}  // namespace edgelm::onnx::test
