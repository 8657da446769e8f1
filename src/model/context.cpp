// Context: the KV cache of one sequence, and decode() / embed() driving the forward pass batch by
// batch.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <new>
#include <string>

#include "edgelm/model.h"
#include "edgelm/quant.h"
#include "model/forward.h"
#include "model/weights.h"

namespace edgelm::model {
namespace {

constexpr int32_t kDefaultMaxContext = 4096;

// Bytes of n_values cache elements of `type` (kF32, kF16 or kQ8_0 with whole blocks).
int64_t cache_bytes(TensorType type, int64_t n_values) {
  const TensorTypeTraits& traits = tensor_type_traits(type);
  return n_values / traits.block_size * traits.block_bytes;
}

}  // namespace

Context::Context(const Model& model, const ContextOptions& options, int32_t n_ctx)
    : model_(model),
      hp_(model.hparams()),
      n_ctx_(n_ctx),
      n_batch_(std::min(options.n_batch, n_ctx)),
      kv_type_(options.kv_type) {
  const detail::Weights& w = model.weights();
  if (w.rope_freqs != nullptr) {
    rope_factors_ = w.rope_freqs;
  } else if (hp_.rope_scaling == RopeScaling::kLongRope) {
    rope_factors_ = n_ctx_ > hp_.rope_n_ctx_orig ? w.rope_factors_long : w.rope_factors_short;
  }
  const int64_t kv_dim = static_cast<int64_t>(hp_.n_head_kv) * hp_.head_dim;
  layer_cache_size_ = static_cast<int64_t>(n_ctx_) * kv_dim;
  const auto cache_size = static_cast<size_t>(layer_cache_size_ * hp_.n_layer);
  if (kv_type_ == TensorType::kF16) {
    k_f16_.resize(cache_size);
    v_f16_.resize(cache_size);
  } else if (kv_type_ == TensorType::kQ8_0) {
    const auto bytes = static_cast<size_t>(cache_bytes(kv_type_, layer_cache_size_) * hp_.n_layer);
    k_q8_.resize(bytes);
    v_q8_.resize(bytes);
  } else {
    k_f32_.resize(cache_size);
    v_f32_.resize(cache_size);
  }
  last_hidden_.resize(static_cast<size_t>(hp_.n_embd));
  if (!options.cache_only) {
    forward_ = std::make_unique<detail::Forward>(model, n_batch_, options.n_threads,
                                                 options.matmul_observer);
    logits_.resize(static_cast<size_t>(hp_.n_vocab));
  }
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
  if (options.kv_type != TensorType::kF16 && options.kv_type != TensorType::kF32 &&
      options.kv_type != TensorType::kQ8_0) {
    return make_error(ErrorCode::kUnsupported,
                      "context option kv_type: " + std::string(tensor_type_name(options.kv_type)) +
                          " is not supported (valid: f16, f32, q8_0)");
  }
  // q8_0 blocks must not straddle two heads: attention reads one head's row at a time.
  if (options.kv_type == TensorType::kQ8_0 &&
      hp.head_dim % static_cast<int32_t>(tensor_type_traits(TensorType::kQ8_0).block_size) != 0) {
    return make_error(ErrorCode::kUnsupported,
                      "context option kv_type: q8_0 needs head_dim to be a multiple of 32, but "
                      "this model's head_dim is " +
                          std::to_string(hp.head_dim) + " (use f16 or f32)");
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

Status Context::check_tokens(std::span<const int32_t> tokens, const std::string& what) const {
  if (tokens.empty()) {
    return make_error(ErrorCode::kInvalidArgument, what + "no tokens");
  }
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (tokens[i] < 0 || tokens[i] >= hp_.n_vocab) {
      return make_error(ErrorCode::kInvalidArgument, what + "token " + std::to_string(i) +
                                                         " has id " + std::to_string(tokens[i]) +
                                                         ", outside the vocabulary [0, " +
                                                         std::to_string(hp_.n_vocab) + ")");
    }
  }
  if (tokens.size() > static_cast<size_t>(n_ctx_ - n_past_)) {
    return make_error(ErrorCode::kContextFull,
                      what + std::to_string(tokens.size()) + " tokens do not fit after " +
                          std::to_string(n_past_) + " of " + std::to_string(n_ctx_) + " positions");
  }
  return {};
}

void Context::run(std::span<const int32_t> tokens, bool all_logits, float* logits_out,
                  double* hidden_sum) {
  const size_t n_vocab = static_cast<size_t>(hp_.n_vocab);
  const auto n_embd = static_cast<size_t>(hp_.n_embd);
  for (size_t start = 0; start < tokens.size(); start += static_cast<size_t>(n_batch_)) {
    const auto batch = tokens.subspan(start, std::min<size_t>(n_batch_, tokens.size() - start));
    const auto n_rows = static_cast<int32_t>(batch.size());
    const bool last_batch = start + batch.size() == tokens.size();
    // Rows whose head runs: every row for hidden sums or all logits, else the call's last row.
    std::span<const int32_t> out_rows;
    float* out = nullptr;
    if (hidden_sum != nullptr || all_logits) {
      out_rows = forward_->row_range(0, n_rows);
      if (logits_out != nullptr) out = logits_out + start * n_vocab;
    } else if (last_batch) {
      out_rows = forward_->row_range(n_rows - 1, 1);
      out = logits_out;
    }
    const detail::Segment segment{this, 0, n_rows};
    forward_->run(batch, std::span(&segment, 1), out_rows, out);
    if (hidden_sum != nullptr) {
      const std::span<const float> hidden = forward_->out_hidden();
      for (size_t i = 0; i < hidden.size(); ++i) hidden_sum[i % n_embd] += hidden[i];
    }
  }
}

Result<std::span<const float>> Context::decode(std::span<const int32_t> tokens, bool all_logits) {
  if (cache_only()) {
    return make_error(ErrorCode::kInvalidArgument,
                      "decode: a cache_only context is evaluated by a BatchDecoder");
  }
  EDGELM_CHECK(check_tokens(tokens, "decode: "));
  const size_t n_vocab = static_cast<size_t>(hp_.n_vocab);
  const size_t n_out = all_logits ? tokens.size() : 1;
  if (logits_.size() < n_out * n_vocab) logits_.resize(n_out * n_vocab);
  run(tokens, all_logits, logits_.data(), nullptr);
  return std::span<const float>(logits_.data(), n_out * n_vocab);
}

Result<std::vector<float>> Context::embed(std::span<const int32_t> tokens, Pooling pooling) {
  if (cache_only()) {
    return make_error(ErrorCode::kInvalidArgument,
                      "embed: a cache_only context is evaluated by a BatchDecoder");
  }
  EDGELM_CHECK(check_tokens(tokens, "embed: "));
  if (pooling == Pooling::kLast) {
    run(tokens, false, nullptr, nullptr);
    return last_hidden_;
  }
  std::vector<double> sum(static_cast<size_t>(hp_.n_embd), 0.0);
  run(tokens, false, nullptr, sum.data());
  std::vector<float> mean(sum.size());
  for (size_t i = 0; i < sum.size(); ++i) {
    mean[i] = static_cast<float>(sum[i] / static_cast<double>(tokens.size()));
  }
  return mean;
}

Result<std::vector<float>> embed(const Model& model, std::span<const int32_t> tokens,
                                 Pooling pooling, int n_threads) {
  if (tokens.empty()) return make_error(ErrorCode::kInvalidArgument, "embed: no tokens");
  if (tokens.size() > static_cast<size_t>(INT32_MAX)) {
    return make_error(ErrorCode::kInvalidArgument,
                      "embed: " + std::to_string(tokens.size()) + " tokens are too many");
  }
  ContextOptions options;
  options.n_ctx = static_cast<int32_t>(tokens.size());
  options.n_threads = n_threads;
  EDGELM_TRY(std::unique_ptr<Context> context, Context::create(model, options));
  return context->embed(tokens, pooling);
}

void Context::truncate(int32_t n_keep) {
  n_past_ = std::clamp(n_keep, 0, n_past_);
}

void Context::store_kv(int32_t il, int32_t pos0, const float* k, const float* v, int32_t n_rows) {
  const int64_t kv_dim = static_cast<int64_t>(hp_.n_head_kv) * hp_.head_dim;
  const int64_t offset = il * layer_cache_size_ + pos0 * kv_dim;
  const int64_t n_values = n_rows * kv_dim;
  if (kv_type_ == TensorType::kF16) {
    kernels::to_f16(k, k_f16_.data() + offset, n_values);
    kernels::to_f16(v, v_f16_.data() + offset, n_values);
  } else if (kv_type_ == TensorType::kQ8_0) {
    // Cannot fail: whole blocks (create() checked head_dim % 32) at valid addresses.
    const int64_t byte_offset = cache_bytes(kv_type_, offset);
    static_cast<void>(tensor::quantize_row(kv_type_, k, k_q8_.data() + byte_offset, n_values));
    static_cast<void>(tensor::quantize_row(kv_type_, v, v_q8_.data() + byte_offset, n_values));
  } else {
    std::copy_n(k, n_values, k_f32_.data() + offset);
    std::copy_n(v, n_values, v_f32_.data() + offset);
  }
}

void Context::attend(int32_t il, const kernels::AttentionParams& params, const float* q,
                     int32_t n_rows, int32_t pos0, float* out, ThreadPool* pool) const {
  const int64_t offset = il * layer_cache_size_;
  if (kv_type_ == TensorType::kF16) {
    kernels::attention_f16(params, q, n_rows, pos0, k_f16_.data() + offset, v_f16_.data() + offset,
                           out, pool);
  } else if (kv_type_ == TensorType::kQ8_0) {
    const int64_t byte_offset = cache_bytes(kv_type_, offset);
    kernels::attention_q8_0(params, q, n_rows, pos0, k_q8_.data() + byte_offset,
                            v_q8_.data() + byte_offset, out, pool);
  } else {
    kernels::attention(params, q, n_rows, pos0, k_f32_.data() + offset, v_f32_.data() + offset, out,
                       pool);
  }
}

namespace {

// Context shift of layer il's cache k, v (rows of kv_dim elements of `type`, row_bytes each)
// holding n_past positions: see Context::shift().
Status shift_layer(const HParams& hp, TensorType type, int32_t il, const float* rope_factors,
                   int32_t n_past, int32_t n_keep, int32_t n_discard, uint8_t* k, uint8_t* v) {
  const int64_t kv_dim = static_cast<int64_t>(hp.n_head_kv) * hp.head_dim;
  const int64_t row_bytes = cache_bytes(type, kv_dim);
  const int32_t n_moved = n_past - n_keep - n_discard;
  std::memmove(k + n_keep * row_bytes, k + (n_keep + n_discard) * row_bytes,
               static_cast<size_t>(n_moved * row_bytes));
  std::memmove(v + n_keep * row_bytes, v + (n_keep + n_discard) * row_bytes,
               static_cast<size_t>(n_moved * row_bytes));
  // Rotations compose: rotating a key cached at position p by -n_discard gives the key at
  // p - n_discard, so no recomputation is needed. An F16 or q8_0 key is widened to floats,
  // rotated and rounded (quantized) again, as llama.cpp's shift of such a cache does.
  const bool swa = hp.is_swa(il);
  const float base = swa ? hp.rope_freq_base_swa : hp.rope_freq_base;
  const float scale = swa ? hp.rope_freq_scale_swa : hp.rope_freq_scale;
  std::vector<float> key(static_cast<size_t>(kv_dim));
  for (int32_t p = n_keep; p < n_keep + n_moved; ++p) {
    uint8_t* row = k + p * row_bytes;
    EDGELM_CHECK(tensor::dequantize_row(type, row, key.data(), kv_dim));
    kernels::rope(key.data(), hp.n_head_kv, hp.head_dim, hp.n_rot, -n_discard, base, scale,
                  rope_factors, hp.rope_style);
    EDGELM_CHECK(tensor::quantize_row(type, key.data(), row, kv_dim));
  }
  return {};
}

}  // namespace

Status Context::shift(int32_t n_keep, int32_t n_discard) {
  if (n_keep < 0 || n_discard < 1 || n_discard > n_past_ - n_keep) {
    return make_error(ErrorCode::kInvalidArgument,
                      "shift: cannot drop " + std::to_string(n_discard) + " positions after " +
                          std::to_string(n_keep) + " of " + std::to_string(n_past_));
  }
  uint8_t* k = nullptr;
  uint8_t* v = nullptr;
  if (kv_type_ == TensorType::kF16) {
    k = reinterpret_cast<uint8_t*>(k_f16_.data());
    v = reinterpret_cast<uint8_t*>(v_f16_.data());
  } else if (kv_type_ == TensorType::kQ8_0) {
    k = k_q8_.data();
    v = v_q8_.data();
  } else {
    k = reinterpret_cast<uint8_t*>(k_f32_.data());
    v = reinterpret_cast<uint8_t*>(v_f32_.data());
  }
  const int64_t layer_bytes = cache_bytes(kv_type_, layer_cache_size_);
  for (int32_t il = 0; il < hp_.n_layer; ++il) {
    EDGELM_CHECK(shift_layer(hp_, kv_type_, il, rope_factors_, n_past_, n_keep, n_discard,
                             k + il * layer_bytes, v + il * layer_bytes));
  }
  n_past_ -= n_discard;
  return {};
}

}  // namespace edgelm::model
