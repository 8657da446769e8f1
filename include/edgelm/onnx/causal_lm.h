// A causal language model exported to ONNX the way torch.onnx.export / optimum write them:
// input_ids int64 [batch, seq] -> logits float [batch, seq, vocab]. Optional attention_mask
// (all ones) and position_ids (0..seq-1) inputs are fed when the graph declares them. Exports
// without past key/values recompute the whole sequence per token.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <vector>

#include "edgelm/error.h"
#include "edgelm/onnx/session.h"

namespace edgelm::onnx {

class CausalLm {
 public:
  // Fails (naming the input or output) when the graph is not shaped like a causal LM.
  static Result<std::unique_ptr<CausalLm>> open(const std::filesystem::path& path,
                                                const SessionOptions& options);

  // Logits of the last position of `ids` ([vocab] floats); ids outside the vocabulary are errors.
  Result<std::vector<float>> next_logits(std::span<const int32_t> ids);
  // Vocabulary size (from the declared logits shape, else learned from the first run; 0 before).
  int64_t n_vocab() const { return n_vocab_; }
  Session& session() { return *session_; }

 private:
  explicit CausalLm(std::unique_ptr<Session> session) : session_(std::move(session)) {}
  std::unique_ptr<Session> session_;
  int64_t n_vocab_ = 0;
  bool feed_mask_ = false;
  bool feed_positions_ = false;
};

}  // namespace edgelm::onnx
