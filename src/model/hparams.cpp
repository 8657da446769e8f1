// Hyper-parameters shared by every architecture, read from the `<arch>.*` GGUF keys the way
// llama.cpp writes and reads them (defaults included), then checked for consistency.
#include <cmath>
#include <string>

#include "edgelm/model.h"
#include "model/architectures.h"

namespace edgelm::model {
namespace {

using detail::KeyReader;

// Loose bounds that keep every size product well inside int64 and reject absurd files early;
// the tensor shape checks are the real test.
constexpr int64_t kMaxWidth = int64_t{1} << 20;  // n_embd, n_ff, head_dim, heads
constexpr int64_t kMaxLayers = 4096;
constexpr int64_t kMaxVocab = int64_t{1} << 24;
constexpr int64_t kMaxContext = int64_t{1} << 30;

constexpr detail::Architecture kArchitectures[] = {
    {"llama", detail::configure_llama},   {"qwen2", detail::configure_qwen2},
    {"qwen3", detail::configure_qwen3},   {"phi3", detail::configure_phi3},
    {"gemma3", detail::configure_gemma3},
};

const detail::Architecture* find_architecture(std::string_view name) {
  for (const auto& arch : kArchitectures) {
    if (arch.name == name) return &arch;
  }
  return nullptr;
}

Error invalid_key(const std::string& key, const std::string& what) {
  return make_error(ErrorCode::kInvalidFormat, "key '" + key + "': " + what);
}

Result<int32_t> read_vocab_size(const format::GgufFile& file, const KeyReader& keys) {
  if (file.find(keys.key("vocab_size")) != nullptr) {
    return keys.count("vocab_size", kMaxVocab);
  }
  if (file.find("tokenizer.ggml.tokens") != nullptr) {
    EDGELM_TRY(const format::GgufArray* tokens, file.get_array("tokenizer.ggml.tokens"));
    if (tokens->size() == 0 || tokens->size() > static_cast<uint64_t>(kMaxVocab)) {
      return invalid_key("tokenizer.ggml.tokens",
                         std::to_string(tokens->size()) + " tokens is not a usable vocabulary");
    }
    return static_cast<int32_t>(tokens->size());
  }
  const format::GgufTensorInfo* embd = file.find_tensor("token_embd.weight");
  if (embd != nullptr && embd->ne.size() == 2 && embd->ne[1] >= 1 &&
      embd->ne[1] <= static_cast<uint64_t>(kMaxVocab)) {
    return static_cast<int32_t>(embd->ne[1]);
  }
  return make_error(ErrorCode::kNotFound, "no vocabulary size: key '" + keys.key("vocab_size") +
                                              "', 'tokenizer.ggml.tokens' and tensor "
                                              "'token_embd.weight' are all missing");
}

Result<RopeScaling> parse_rope_scaling(const KeyReader& keys, const std::string& type) {
  if (type == "none") return RopeScaling::kNone;
  if (type == "linear") return RopeScaling::kLinear;
  if (type == "longrope") return RopeScaling::kLongRope;
  if (type == "yarn") {
    return make_error(ErrorCode::kUnsupported,
                      "key '" + keys.key("rope.scaling.type") + "': yarn is not supported");
  }
  return invalid_key(keys.key("rope.scaling.type"), "unknown rope scaling '" + type + "'");
}

Status read_rope(const format::GgufFile& file, const KeyReader& keys, HParams& hp) {
  EDGELM_TRY(hp.rope_freq_base, keys.real_or("rope.freq_base", 10000.0f));
  if (!(hp.rope_freq_base > 0.0f)) return invalid_key(keys.key("rope.freq_base"), "must be > 0");
  EDGELM_TRY(std::string type, keys.string_or("rope.scaling.type", "linear"));
  EDGELM_TRY(hp.rope_scaling, parse_rope_scaling(keys, type));
  EDGELM_TRY(float legacy_factor, keys.real_or("rope.scale_linear", 0.0f));
  EDGELM_TRY(float factor, keys.real_or("rope.scaling.factor", legacy_factor));
  if (factor < 0.0f) return invalid_key(keys.key("rope.scaling.factor"), "must be >= 0");
  hp.rope_freq_scale =
      (factor == 0.0f || hp.rope_scaling == RopeScaling::kNone) ? 1.0f : 1.0f / factor;
  EDGELM_TRY(hp.rope_n_ctx_orig,
             keys.count_or("rope.scaling.original_context_length", hp.n_ctx_train, kMaxContext));
  EDGELM_TRY(hp.rope_attn_factor, keys.real_or("rope.scaling.attn_factor", 1.0f));
  if (!(hp.rope_attn_factor > 0.0f)) {
    return invalid_key(keys.key("rope.scaling.attn_factor"), "must be > 0");
  }
  hp.has_rope_freqs = file.find_tensor("rope_freqs.weight") != nullptr;
  return {};
}

Status check_consistency(const KeyReader& keys, const HParams& hp) {
  if (hp.n_head % hp.n_head_kv != 0) {
    return invalid_key(keys.key("attention.head_count_kv"),
                       std::to_string(hp.n_head_kv) + " does not divide attention.head_count " +
                           std::to_string(hp.n_head));
  }
  if (hp.n_rot > hp.head_dim || hp.n_rot % 2 != 0) {
    return invalid_key(keys.key("rope.dimension_count"), std::to_string(hp.n_rot) +
                                                             " must be even and at most head_dim " +
                                                             std::to_string(hp.head_dim));
  }
  if (hp.n_head * static_cast<int64_t>(hp.head_dim) > kMaxWidth) {
    return invalid_key(keys.key("attention.head_count"), "heads * head_dim is too large");
  }
  return {};
}

}  // namespace

namespace detail {

Result<int32_t> KeyReader::read_count(std::string_view suffix, std::optional<int32_t> fallback,
                                      int64_t min, int64_t limit) const {
  const std::string name = key(suffix);
  const format::GgufValue* value = file_.find(name);
  if (value == nullptr && fallback) return *fallback;
  int64_t n = 0;
  if (value != nullptr && value->type == format::GgufType::kArray) {
    // Per-layer values (llama.cpp allows them for head counts and n_ff): only uniform ones here.
    EDGELM_TRY(const format::GgufArray* array, file_.get_array(name));
    if (array->ints.empty() || array->ints.size() != array->size()) {
      return invalid_key(name, "expected an integer or an array of integers");
    }
    for (int64_t v : array->ints) {
      if (v != array->ints.front()) {
        return make_error(ErrorCode::kUnsupported,
                          "key '" + name + "': per-layer values that differ are not supported");
      }
    }
    n = array->ints.front();
  } else {
    EDGELM_TRY(uint64_t u, file_.get_uint(name));
    n = u > static_cast<uint64_t>(limit) ? limit + 1 : static_cast<int64_t>(u);
  }
  if (n < min || n > limit) {
    return invalid_key(name, std::to_string(n) + " is outside [" + std::to_string(min) + ", " +
                                 std::to_string(limit) + "]");
  }
  return static_cast<int32_t>(n);
}

Result<int32_t> KeyReader::count(std::string_view suffix, int64_t limit) const {
  return read_count(suffix, std::nullopt, 1, limit);
}

Result<int32_t> KeyReader::count_or(std::string_view suffix, int32_t fallback,
                                    int64_t limit) const {
  return read_count(suffix, fallback, 1, limit);
}

Result<int32_t> KeyReader::size_or(std::string_view suffix, int32_t fallback, int64_t limit) const {
  return read_count(suffix, fallback, 0, limit);
}

Result<float> KeyReader::real(std::string_view suffix) const {
  const std::string name = key(suffix);
  EDGELM_TRY(double v, file_.get_float(name));
  if (!std::isfinite(v) || std::fabs(v) > 1e30) return invalid_key(name, "not a finite number");
  return static_cast<float>(v);
}

Result<float> KeyReader::real_or(std::string_view suffix, float fallback) const {
  if (file_.find(key(suffix)) == nullptr) return fallback;
  return real(suffix);
}

Result<std::string> KeyReader::string_or(std::string_view suffix, std::string fallback) const {
  return file_.get_string_or(key(suffix), std::move(fallback));
}

}  // namespace detail

std::vector<std::string> supported_architectures() {
  std::vector<std::string> names;
  for (const auto& arch : kArchitectures) names.emplace_back(arch.name);
  return names;
}

Result<HParams> read_hparams(const format::GgufFile& file) {
  EDGELM_TRY(std::string arch_name, file.get_string("general.architecture"));
  const detail::Architecture* arch = find_architecture(arch_name);
  if (arch == nullptr) {
    std::string supported;
    for (const auto& a : kArchitectures)
      supported += (supported.empty() ? "" : ", ") + std::string(a.name);
    return make_error(ErrorCode::kUnsupported, "key 'general.architecture': '" + arch_name +
                                                   "' is not supported (supported: " + supported +
                                                   ")");
  }
  const KeyReader keys(file, arch_name);
  HParams hp;
  hp.arch = arch_name;
  EDGELM_TRY(hp.n_ctx_train, keys.count("context_length", kMaxContext));
  EDGELM_TRY(hp.n_embd, keys.count("embedding_length", kMaxWidth));
  EDGELM_TRY(hp.n_layer, keys.count("block_count", kMaxLayers));
  EDGELM_TRY(hp.n_ff, keys.count("feed_forward_length", kMaxWidth));
  EDGELM_TRY(hp.n_head, keys.count("attention.head_count", kMaxWidth));
  EDGELM_TRY(hp.n_head_kv, keys.count_or("attention.head_count_kv", hp.n_head, kMaxWidth));
  const bool has_key_length = file.find(keys.key("attention.key_length")) != nullptr;
  if (!has_key_length && hp.n_embd % hp.n_head != 0) {
    return invalid_key(keys.key("attention.head_count"),
                       std::to_string(hp.n_head) + " does not divide embedding_length " +
                           std::to_string(hp.n_embd) + " and attention.key_length is missing");
  }
  EDGELM_TRY(hp.head_dim, keys.count_or("attention.key_length", hp.n_embd / hp.n_head, kMaxWidth));
  EDGELM_TRY(int32_t value_length, keys.count_or("attention.value_length", hp.head_dim, kMaxWidth));
  if (value_length != hp.head_dim) {
    return make_error(ErrorCode::kUnsupported, "key '" + keys.key("attention.value_length") +
                                                   "': " + std::to_string(value_length) +
                                                   " differs from the key length " +
                                                   std::to_string(hp.head_dim));
  }
  EDGELM_TRY(hp.n_rot, keys.count_or("rope.dimension_count", hp.head_dim, kMaxWidth));
  EDGELM_TRY(hp.rms_eps, keys.real("attention.layer_norm_rms_epsilon"));
  if (!(hp.rms_eps > 0.0f)) {
    return invalid_key(keys.key("attention.layer_norm_rms_epsilon"), "must be > 0");
  }
  EDGELM_CHECK(read_rope(file, keys, hp));
  EDGELM_TRY(hp.n_vocab, read_vocab_size(file, keys));
  hp.tied_embeddings = file.find_tensor("output.weight") == nullptr;
  hp.attn_scale = 1.0f / std::sqrt(static_cast<float>(hp.head_dim));
  hp.swa_layers.assign(static_cast<size_t>(hp.n_layer), false);

  EDGELM_CHECK(arch->configure(file, keys, hp));
  EDGELM_CHECK(check_consistency(keys, hp));
  return hp;
}

}  // namespace edgelm::model
