// Context: the KV cache, the scratch buffers, and decode() driving the layers batch by batch.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <new>
#include <string>

#include "edgelm/model.h"
#include "model/weights.h"

namespace edgelm::model {
namespace {

constexpr int32_t kDefaultMaxContext = 4096;

}  // namespace

Context::Context(const Model& model, const ContextOptions& options, int32_t n_ctx)
    : model_(model),
      hp_(model.hparams()),
      n_ctx_(n_ctx),
      n_batch_(std::min(options.n_batch, n_ctx)),
      pool_(options.n_threads) {
  const detail::Weights& w = model.weights();
  if (w.rope_freqs != nullptr) {
    rope_factors_ = w.rope_freqs;
  } else if (hp_.rope_scaling == RopeScaling::kLongRope) {
    rope_factors_ = n_ctx_ > hp_.rope_n_ctx_orig ? w.rope_factors_long : w.rope_factors_short;
  }
  const auto batch = static_cast<size_t>(n_batch_);
  const int64_t q_dim = static_cast<int64_t>(hp_.n_head) * hp_.head_dim;
  const int64_t kv_dim = static_cast<int64_t>(hp_.n_head_kv) * hp_.head_dim;
  layer_cache_size_ = static_cast<int64_t>(n_ctx_) * kv_dim;
  k_cache_.resize(static_cast<size_t>(layer_cache_size_ * hp_.n_layer));
  v_cache_.resize(k_cache_.size());
  x_.resize(batch * hp_.n_embd);
  xn_.resize(batch * hp_.n_embd);
  q_.resize(batch * q_dim);
  if (hp_.fused_qkv) qkv_.resize(batch * (q_dim + 2 * kv_dim));
  attn_out_.resize(batch * q_dim);
  proj_.resize(batch * hp_.n_embd);
  gate_.resize(batch * hp_.n_ff * (hp_.fused_gate_up ? 2 : 1));
  if (!hp_.fused_gate_up) up_.resize(batch * hp_.n_ff);
  logits_.resize(static_cast<size_t>(hp_.n_vocab));
  last_hidden_.resize(static_cast<size_t>(hp_.n_embd));
}

Context::~Context() = default;

Result<std::unique_ptr<Context>> Context::create(const Model& model,
                                                 const ContextOptions& options) {
  const HParams& hp = model.hparams();
  int32_t n_ctx = options.n_ctx;
  if (n_ctx == 0) n_ctx = std::min(hp.n_ctx_train, kDefaultMaxContext);
  if (n_ctx < 1) {
    return make_error(ErrorCode::kInvalidArgument,
                      "context option n_ctx: " + std::to_string(options.n_ctx) + " must be >= 0");
  }
  if (options.n_batch < 1) {
    return make_error(
        ErrorCode::kInvalidArgument,
        "context option n_batch: " + std::to_string(options.n_batch) + " must be >= 1");
  }
  if (options.n_threads < 1) {
    return make_error(
        ErrorCode::kInvalidArgument,
        "context option n_threads: " + std::to_string(options.n_threads) + " must be >= 1");
  }
  try {
    return std::unique_ptr<Context>(new Context(model, options, n_ctx));
  } catch (const std::bad_alloc&) {
    return make_error(ErrorCode::kOutOfRange,
                      "context of " + std::to_string(n_ctx) + " positions does not fit in memory");
  } catch (const std::length_error&) {
    return make_error(ErrorCode::kOutOfRange,
                      "context of " + std::to_string(n_ctx) + " positions is too large");
  }
}

Result<std::span<const float>> Context::decode(std::span<const int32_t> tokens, bool all_logits) {
  if (tokens.empty()) {
    return make_error(ErrorCode::kInvalidArgument, "decode: no tokens");
  }
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (tokens[i] < 0 || tokens[i] >= hp_.n_vocab) {
      return make_error(ErrorCode::kInvalidArgument, "decode: token " + std::to_string(i) +
                                                         " has id " + std::to_string(tokens[i]) +
                                                         ", outside the vocabulary [0, " +
                                                         std::to_string(hp_.n_vocab) + ")");
    }
  }
  if (tokens.size() > static_cast<size_t>(n_ctx_ - n_past_)) {
    return make_error(ErrorCode::kContextFull,
                      "decode: " + std::to_string(tokens.size()) + " tokens do not fit after " +
                          std::to_string(n_past_) + " of " + std::to_string(n_ctx_) + " positions");
  }
  const size_t n_vocab = static_cast<size_t>(hp_.n_vocab);
  const size_t n_out = all_logits ? tokens.size() : 1;
  if (logits_.size() < n_out * n_vocab) logits_.resize(n_out * n_vocab);

  for (size_t start = 0; start < tokens.size(); start += static_cast<size_t>(n_batch_)) {
    const auto batch = tokens.subspan(start, std::min<size_t>(n_batch_, tokens.size() - start));
    const bool last_batch = start + batch.size() == tokens.size();
    float* out =
        all_logits ? logits_.data() + start * n_vocab : (last_batch ? logits_.data() : nullptr);
    eval_batch(batch, out, all_logits);
  }
  return std::span<const float>(logits_.data(), n_out * n_vocab);
}

void Context::eval_batch(std::span<const int32_t> tokens, float* logits_out, bool all_logits) {
  const detail::Weights& w = model_.weights();
  const auto n_tokens = static_cast<int32_t>(tokens.size());
  const int64_t n_embd = hp_.n_embd;
  pos0_ = n_past_;

  for (int32_t t = 0; t < n_tokens; ++t) {
    float* row = x_.data() + t * n_embd;
    kernels::get_row(w.token_embd, tokens[static_cast<size_t>(t)], row);
    if (hp_.embd_scale != 1.0f) {
      for (int64_t i = 0; i < n_embd; ++i) row[i] *= hp_.embd_scale;
    }
  }
  for (int32_t il = 0; il < hp_.n_layer; ++il) eval_layer(il, n_tokens);
  n_past_ += n_tokens;

  // Logits only for the rows asked for: every token, or just the last one of the call.
  const int32_t first_out = all_logits ? 0 : n_tokens - 1;
  const int32_t n_out = n_tokens - first_out;
  for (int32_t t = first_out; t < n_tokens; ++t) {
    kernels::rms_norm(x_.data() + t * n_embd, w.output_norm, n_embd, hp_.rms_eps,
                      xn_.data() + (t - first_out) * n_embd);
  }
  std::copy_n(xn_.data() + (n_out - 1) * n_embd, n_embd, last_hidden_.data());
  if (logits_out == nullptr) return;
  kernels::matmul(w.output, xn_.data(), n_out, logits_out, &pool_);
  if (hp_.final_softcap > 0.0f) {
    const float cap = hp_.final_softcap;
    for (int64_t i = 0; i < n_out * static_cast<int64_t>(hp_.n_vocab); ++i) {
      logits_out[i] = cap * std::tanh(logits_out[i] / cap);
    }
  }
}

void Context::truncate(int32_t n_keep) {
  n_past_ = std::clamp(n_keep, 0, n_past_);
}

Status Context::shift(int32_t n_keep, int32_t n_discard) {
  if (n_keep < 0 || n_discard < 1 || n_discard > n_past_ - n_keep) {
    return make_error(ErrorCode::kInvalidArgument,
                      "shift: cannot drop " + std::to_string(n_discard) + " positions after " +
                          std::to_string(n_keep) + " of " + std::to_string(n_past_));
  }
  const int64_t kv_dim = static_cast<int64_t>(hp_.n_head_kv) * hp_.head_dim;
  const int32_t n_moved = n_past_ - n_keep - n_discard;
  for (int32_t il = 0; il < hp_.n_layer; ++il) {
    float* k = k_cache(il);
    float* v = v_cache(il);
    std::memmove(k + n_keep * kv_dim, k + (n_keep + n_discard) * kv_dim,
                 sizeof(float) * n_moved * kv_dim);
    std::memmove(v + n_keep * kv_dim, v + (n_keep + n_discard) * kv_dim,
                 sizeof(float) * n_moved * kv_dim);
    // Rotations compose: rotating a key cached at position p by -n_discard gives the key at
    // p - n_discard, so no recomputation is needed.
    const bool swa = hp_.is_swa(il);
    const float base = swa ? hp_.rope_freq_base_swa : hp_.rope_freq_base;
    const float scale = swa ? hp_.rope_freq_scale_swa : hp_.rope_freq_scale;
    for (int32_t p = n_keep; p < n_keep + n_moved; ++p) {
      kernels::rope(k + p * kv_dim, hp_.n_head_kv, hp_.head_dim, hp_.n_rot, -n_discard, base, scale,
                    rope_factors_, hp_.rope_style);
    }
  }
  n_past_ -= n_discard;
  return {};
}

}  // namespace edgelm::model
