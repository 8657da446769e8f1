// BatchDecoder: the new tokens of several sequences evaluated in shared forward passes.
#include <algorithm>
#include <new>
#include <string>

#include "edgelm/model.h"
#include "model/forward.h"

namespace edgelm::model {

BatchDecoder::BatchDecoder(const Model& model, int32_t max_batch_tokens, int n_threads)
    : model_(model),
      max_batch_tokens_(max_batch_tokens),
      forward_(std::make_unique<detail::Forward>(model, max_batch_tokens, n_threads,
                                                 MatmulObserver())) {}

BatchDecoder::~BatchDecoder() = default;

Result<std::unique_ptr<BatchDecoder>> BatchDecoder::create(const Model& model,
                                                           int32_t max_batch_tokens,
                                                           int n_threads) {
  if (max_batch_tokens < 1) {
    return make_error(
        ErrorCode::kInvalidArgument,
        "batch decoder: max_batch_tokens " + std::to_string(max_batch_tokens) + " must be >= 1");
  }
  if (n_threads < 1) {
    return make_error(ErrorCode::kInvalidArgument,
                      "batch decoder: n_threads " + std::to_string(n_threads) + " must be >= 1");
  }
  try {
    return std::unique_ptr<BatchDecoder>(new BatchDecoder(model, max_batch_tokens, n_threads));
  } catch (const std::bad_alloc&) {
    return make_error(ErrorCode::kOutOfRange, "batch decoder: scratch for " +
                                                  std::to_string(max_batch_tokens) +
                                                  " tokens does not fit in memory");
  } catch (const std::length_error&) {
    return make_error(
        ErrorCode::kOutOfRange,
        "batch decoder: scratch for " + std::to_string(max_batch_tokens) + " tokens is too large");
  }
}

Result<std::vector<std::span<const float>>> BatchDecoder::decode(
    std::span<const SequenceInput> inputs) {
  if (inputs.empty()) return make_error(ErrorCode::kInvalidArgument, "batch decode: no inputs");
  // Everything is checked before any cache changes.
  size_t n_out_total = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const std::string what = "batch decode: input " + std::to_string(i) + ": ";
    const Context* context = inputs[i].context;
    if (context == nullptr) return make_error(ErrorCode::kInvalidArgument, what + "no context");
    if (&context->model() != &model_) {
      return make_error(ErrorCode::kInvalidArgument,
                        what + "the context belongs to another model than the decoder's");
    }
    for (size_t j = 0; j < i; ++j) {
      if (inputs[j].context == context) {
        return make_error(ErrorCode::kInvalidArgument,
                          what + "the context is also input " + std::to_string(j));
      }
    }
    EDGELM_CHECK(context->check_tokens(inputs[i].tokens, what));
    n_out_total += inputs[i].all_logits ? inputs[i].tokens.size() : 1;
  }
  const size_t n_vocab = static_cast<size_t>(model_.hparams().n_vocab);
  if (logits_.size() < n_out_total * n_vocab) logits_.resize(n_out_total * n_vocab);

  std::vector<std::span<const float>> results;
  results.reserve(inputs.size());
  size_t offset = 0;
  for (const SequenceInput& input : inputs) {
    const size_t n_out = input.all_logits ? input.tokens.size() : 1;
    results.emplace_back(logits_.data() + offset * n_vocab, n_out * n_vocab);
    offset += n_out;
  }

  // Passes of at most max_batch_tokens rows; a sequence may continue in the next pass. Each
  // pass's logits rows come in input order, so they fill logits_ front to back.
  float* logits_cursor = logits_.data();
  size_t input_index = 0;
  size_t token_index = 0;  // next token of inputs[input_index]
  while (input_index < inputs.size()) {
    pass_tokens_.clear();
    segments_.clear();
    out_rows_.clear();
    while (input_index < inputs.size() &&
           pass_tokens_.size() < static_cast<size_t>(max_batch_tokens_)) {
      const SequenceInput& input = inputs[input_index];
      const size_t room = static_cast<size_t>(max_batch_tokens_) - pass_tokens_.size();
      const size_t n = std::min(room, input.tokens.size() - token_index);
      const auto row0 = static_cast<int32_t>(pass_tokens_.size());
      pass_tokens_.insert(pass_tokens_.end(), input.tokens.begin() + token_index,
                          input.tokens.begin() + token_index + n);
      segments_.push_back({input.context, row0, static_cast<int32_t>(n)});
      token_index += n;
      const bool finished = token_index == input.tokens.size();
      if (input.all_logits) {
        for (int32_t r = 0; r < static_cast<int32_t>(n); ++r) out_rows_.push_back(row0 + r);
      } else if (finished) {
        out_rows_.push_back(row0 + static_cast<int32_t>(n) - 1);
      }
      if (finished) {
        ++input_index;
        token_index = 0;
      }
    }
    forward_->run(pass_tokens_, segments_, out_rows_, logits_cursor);
    logits_cursor += out_rows_.size() * n_vocab;
  }
  return results;
}

}  // namespace edgelm::model
