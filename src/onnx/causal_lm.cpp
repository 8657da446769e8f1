#include "edgelm/onnx/causal_lm.h"

namespace edgelm::onnx {

Result<std::unique_ptr<CausalLm>> CausalLm::open(const std::filesystem::path& path,
                                                 const SessionOptions& options) {
  EDGELM_TRY(auto session, Session::open(path, options));
  const std::string source = path.filename().string();
  auto lm = std::unique_ptr<CausalLm>(new CausalLm(std::move(session)));
  bool has_ids = false;
  for (const ValueInfo& in : lm->session_->inputs()) {
    if (in.name == "input_ids") {
      has_ids = in.dtype == DataType::kInt64 && in.shape.size() == 2;
    } else if (in.name == "attention_mask" && in.dtype == DataType::kInt64) {
      lm->feed_mask_ = true;
    } else if (in.name == "position_ids" && in.dtype == DataType::kInt64) {
      lm->feed_positions_ = true;
    } else {
      return make_error(ErrorCode::kUnsupported, source + ": input '" + in.name +
                                                     "' is not one a causal LM takes "
                                                     "(input_ids, attention_mask, position_ids)");
    }
  }
  if (!has_ids)
    return make_error(ErrorCode::kUnsupported, source + ": no int64 input 'input_ids' of rank 2");
  bool has_logits = false;
  for (const ValueInfo& out : lm->session_->outputs()) {
    if (out.name == "logits" && out.shape.size() == 3) {
      has_logits = true;
      lm->n_vocab_ = out.shape[2] > 0 ? out.shape[2] : 0;
    }
  }
  if (!has_logits)
    return make_error(ErrorCode::kUnsupported, source + ": no output 'logits' of rank 3");
  return lm;
}

Result<std::vector<float>> CausalLm::next_logits(std::span<const int32_t> ids) {
  if (ids.empty()) return make_error(ErrorCode::kInvalidArgument, "onnx: no input tokens");
  const int64_t n = static_cast<int64_t>(ids.size());
  std::vector<int64_t> wide(ids.begin(), ids.end());
  for (int64_t id : wide) {
    if (id < 0 || (n_vocab_ > 0 && id >= n_vocab_)) {
      return make_error(ErrorCode::kOutOfRange,
                        "onnx: token id " + std::to_string(id) + " is outside the vocabulary");
    }
  }
  std::vector<std::pair<std::string, Tensor>> feeds;
  EDGELM_TRY(Tensor input, Tensor::from_int64({1, n}, wide));
  feeds.emplace_back("input_ids", std::move(input));
  if (feed_mask_) {
    EDGELM_TRY(Tensor mask, Tensor::from_int64({1, n}, std::vector<int64_t>(wide.size(), 1)));
    feeds.emplace_back("attention_mask", std::move(mask));
  }
  if (feed_positions_) {
    std::vector<int64_t> positions(wide.size());
    for (int64_t i = 0; i < n; ++i) positions[i] = i;
    EDGELM_TRY(Tensor pos, Tensor::from_int64({1, n}, positions));
    feeds.emplace_back("position_ids", std::move(pos));
  }
  EDGELM_TRY(auto outputs, session_->run({"logits"}, feeds));
  const Tensor& logits = outputs[0];
  if (logits.dtype() != DataType::kFloat || logits.rank() != 3 || logits.shape()[0] != 1 ||
      logits.shape()[1] != n) {
    return make_error(ErrorCode::kInvalidFormat,
                      "onnx: logits of shape " + std::to_string(logits.rank()) +
                          "-D do not match [1, " + std::to_string(n) + ", vocab]");
  }
  n_vocab_ = logits.shape()[2];
  const float* last = logits.data<float>() + (n - 1) * n_vocab_;
  return std::vector<float>(last, last + n_vocab_);
}

}  // namespace edgelm::onnx
