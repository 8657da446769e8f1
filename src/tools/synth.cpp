#include "edgelm/synth.h"

#include <cmath>
#include <cstring>

#include "edgelm/quant.h"
#include "edgelm/thread_pool.h"

namespace edgelm::tools {
namespace {

// Shapes from the models' published configs (hidden size, layers, heads, KV heads, FFN size, vocab).
const std::vector<ModelShape> kShapes = {
    {"stories260k", "llama", 512, 64, 5, 8, 4, 8, 172, 512, 10000.0f, 1e-5f, true, false},
    {"smollm2-135m", "llama", 49152, 576, 30, 9, 3, 64, 1536, 8192, 100000.0f, 1e-5f, true, false},
    {"smollm2-360m", "llama", 49152, 960, 32, 15, 5, 64, 2560, 8192, 100000.0f, 1e-5f, true, false},
    {"smollm2-1.7b", "llama", 49152, 2048, 24, 32, 32, 64, 8192, 8192, 130000.0f, 1e-5f, true, false},
    {"tinyllama-1.1b", "llama", 32000, 2048, 22, 32, 4, 64, 5632, 2048, 10000.0f, 1e-5f, false, false},
    {"llama3.2-1b", "llama", 128256, 2048, 16, 32, 8, 64, 8192, 131072, 500000.0f, 1e-5f, true, true},
    {"llama3.2-3b", "llama", 128256, 3072, 28, 24, 8, 128, 8192, 131072, 500000.0f, 1e-5f, true, true},
    {"qwen2.5-0.5b", "qwen2", 151936, 896, 24, 14, 2, 64, 4864, 32768, 1000000.0f, 1e-6f, true, false},
    {"qwen2.5-1.5b", "qwen2", 151936, 1536, 28, 12, 2, 128, 8960, 32768, 1000000.0f, 1e-6f, true, false},
    {"qwen3-0.6b", "qwen3", 151936, 1024, 28, 16, 8, 128, 3072, 40960, 1000000.0f, 1e-6f, true, false},
    {"gemma3-1b", "gemma3", 262144, 1152, 26, 4, 1, 256, 6912, 32768, 1000000.0f, 1e-6f, true, false, 512},
    {"phi3-mini", "phi3", 32064, 3072, 32, 32, 32, 96, 8192, 4096, 10000.0f, 1e-5f, false, false},
};

// splitmix64: a fast, well-mixed generator; weights only need plausible magnitudes.
uint64_t next_random(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// Approximately normal (sum of uniforms), scaled by `stddev`.
float random_normal(uint64_t& state, float stddev) {
  const uint64_t r = next_random(state);
  float sum = 0;
  for (int i = 0; i < 4; ++i) sum += static_cast<float>((r >> (16 * i)) & 0xFFFF) / 65535.0f;
  return (sum - 2.0f) * 1.7320508f * stddev;  // var of a sum of 4 U(0,1) is 1/3
}

struct TensorPlan {
  std::string name;
  std::vector<uint64_t> ne;
  float value_stddev;  // 0: all ones (norm weights)
};

std::vector<TensorPlan> plan_tensors(const ModelShape& s) {
  const uint64_t embd = s.n_embd, q_dim = uint64_t(s.n_head) * s.head_dim, kv_dim = uint64_t(s.n_head_kv) * s.head_dim;
  const float w = 0.02f;
  std::vector<TensorPlan> plan = {{"token_embd.weight", {embd, uint64_t(s.n_vocab)}, w},
                                  {"output_norm.weight", {embd}, 0}};
  if (!s.tied_embeddings) plan.push_back({"output.weight", {embd, uint64_t(s.n_vocab)}, w});
  if (s.llama3_rope) plan.push_back({"rope_freqs.weight", {uint64_t(s.head_dim / 2)}, 0});
  for (int32_t il = 0; il < s.n_layer; ++il) {
    const std::string b = "blk." + std::to_string(il) + ".";
    plan.push_back({b + "attn_norm.weight", {embd}, 0});
    if (s.arch == "phi3") {
      plan.push_back({b + "attn_qkv.weight", {embd, q_dim + 2 * kv_dim}, w});
    } else {
      plan.push_back({b + "attn_q.weight", {embd, q_dim}, w});
      plan.push_back({b + "attn_k.weight", {embd, kv_dim}, w});
      plan.push_back({b + "attn_v.weight", {embd, kv_dim}, w});
    }
    if (s.arch == "qwen2") {
      plan.push_back({b + "attn_q.bias", {q_dim}, w});
      plan.push_back({b + "attn_k.bias", {kv_dim}, w});
      plan.push_back({b + "attn_v.bias", {kv_dim}, w});
    }
    if (s.arch == "qwen3" || s.arch == "gemma3") {
      plan.push_back({b + "attn_q_norm.weight", {uint64_t(s.head_dim)}, 0});
      plan.push_back({b + "attn_k_norm.weight", {uint64_t(s.head_dim)}, 0});
    }
    plan.push_back({b + "attn_output.weight", {q_dim, embd}, w});
    if (s.arch == "gemma3") plan.push_back({b + "post_attention_norm.weight", {embd}, 0});
    plan.push_back({b + "ffn_norm.weight", {embd}, 0});
    if (s.arch == "phi3") {
      plan.push_back({b + "ffn_up.weight", {embd, 2 * uint64_t(s.n_ff)}, w});
    } else {
      plan.push_back({b + "ffn_gate.weight", {embd, uint64_t(s.n_ff)}, w});
      plan.push_back({b + "ffn_up.weight", {embd, uint64_t(s.n_ff)}, w});
    }
    plan.push_back({b + "ffn_down.weight", {uint64_t(s.n_ff), embd}, w});
    if (s.arch == "gemma3") plan.push_back({b + "post_ffw_norm.weight", {embd}, 0});
  }
  return plan;
}

void set_hparams(format::GgufWriter& writer, const ModelShape& s, int32_t n_vocab) {
  using format::GgufValue;
  const std::string a = s.arch + ".";
  writer.set("general.architecture", GgufValue::string(s.arch));
  writer.set("general.name", GgufValue::string(s.name + " (random weights)"));
  writer.set(a + "vocab_size", GgufValue::u32(n_vocab));
  writer.set(a + "context_length", GgufValue::u32(s.n_ctx));
  writer.set(a + "embedding_length", GgufValue::u32(s.n_embd));
  writer.set(a + "block_count", GgufValue::u32(s.n_layer));
  writer.set(a + "feed_forward_length", GgufValue::u32(s.n_ff));
  writer.set(a + "attention.head_count", GgufValue::u32(s.n_head));
  writer.set(a + "attention.head_count_kv", GgufValue::u32(s.n_head_kv));
  writer.set(a + "attention.layer_norm_rms_epsilon", GgufValue::f32(s.rms_eps));
  writer.set(a + "rope.freq_base", GgufValue::f32(s.rope_freq_base));
  writer.set(a + "rope.dimension_count", GgufValue::u32(s.head_dim));
  if (s.head_dim * s.n_head != s.n_embd) {
    writer.set(a + "attention.key_length", GgufValue::u32(s.head_dim));
    writer.set(a + "attention.value_length", GgufValue::u32(s.head_dim));
  }
  if (s.sliding_window > 0) {
    writer.set(a + "attention.sliding_window", GgufValue::u32(s.sliding_window));
  }
}

// A SentencePiece-style vocabulary of n tokens: control tokens, the 256 byte tokens, then
// placeholder pieces. Enough for every command to run; text is meaningless, as are the weights.
void set_placeholder_vocab(format::GgufWriter& writer, int32_t n_vocab) {
  format::GgufArray tokens, scores, types;
  tokens.elem_type = format::GgufType::kString;
  scores.elem_type = format::GgufType::kFloat32;
  types.elem_type = format::GgufType::kInt32;
  for (int32_t i = 0; i < n_vocab; ++i) {
    std::string text;
    int32_t type = 1;  // normal
    if (i == 0) text = "<unk>", type = 2;
    else if (i == 1) text = "<s>", type = 3;
    else if (i == 2) text = "</s>", type = 3;
    else if (i < 3 + 256) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "<0x%02X>", i - 3);
      text = buf;
      type = 6;
    } else {
      text = "\xE2\x96\x81t" + std::to_string(i);  // "▁t<i>"
    }
    tokens.strings.push_back(std::move(text));
    scores.floats.push_back(-static_cast<double>(i));
    types.ints.push_back(type);
  }
  writer.set("tokenizer.ggml.model", format::GgufValue::string("llama"));
  writer.set("tokenizer.ggml.tokens", format::GgufValue::array(std::move(tokens)));
  writer.set("tokenizer.ggml.scores", format::GgufValue::array(std::move(scores)));
  writer.set("tokenizer.ggml.token_type", format::GgufValue::array(std::move(types)));
  writer.set("tokenizer.ggml.bos_token_id", format::GgufValue::u32(1));
  writer.set("tokenizer.ggml.eos_token_id", format::GgufValue::u32(2));
  writer.set("tokenizer.ggml.unknown_token_id", format::GgufValue::u32(0));
}

}  // namespace

const std::vector<ModelShape>& known_shapes() { return kShapes; }

Result<ModelShape> find_shape(std::string_view name) {
  std::string names;
  for (const auto& s : kShapes) {
    if (s.name == name) return s;
    names += (names.empty() ? "" : ", ") + s.name;
  }
  return make_error(ErrorCode::kInvalidArgument, "unknown shape '" + std::string(name) + "' (known: " + names + ")");
}

Result<uint64_t> synthesize_model(const SynthOptions& options, const std::filesystem::path& out) {
  EDGELM_TRY(ModelShape shape, find_shape(options.shape));
  EDGELM_TRY(QuantRecipe recipe, parse_quant_recipe(options.recipe));
  format::GgufWriter writer;
  int32_t n_vocab = shape.n_vocab;
  if (!options.vocab.empty()) {
    EDGELM_TRY(auto vocab, format::GgufFile::open(options.vocab));
    EDGELM_TRY(const format::GgufArray* tokens, vocab.get_array("tokenizer.ggml.tokens"));
    n_vocab = static_cast<int32_t>(tokens->size());
    for (const auto& [key, value] : vocab.metadata()) {
      if (key.rfind("tokenizer.", 0) == 0) writer.set(key, value);
    }
  } else {
    set_placeholder_vocab(writer, n_vocab);
  }
  shape.n_vocab = n_vocab;
  set_hparams(writer, shape, n_vocab);
  writer.set("general.file_type", format::GgufValue::u32(recipe.file_type));
  writer.set("general.quantization_version", format::GgufValue::u32(2));

  ThreadPool pool(std::max(1, options.n_threads));
  uint64_t seed = options.seed;
  for (const auto& t : plan_tensors(shape)) {
    format::GgufTensorInfo info;
    info.name = t.name;
    info.ne = t.ne;
    info.type = TensorType::kF32;
    const TensorType type = choose_tensor_type(info, recipe, shape.n_layer);
    const int64_t row_len = static_cast<int64_t>(t.ne[0]);
    const int64_t n_rows = t.ne.size() > 1 ? static_cast<int64_t>(t.ne[1]) : 1;
    EDGELM_TRY(uint64_t row_bytes, tensor_bytes(type, t.ne[0]));
    std::vector<uint8_t> data(row_bytes * n_rows);
    const uint64_t tensor_seed = next_random(seed);
    std::vector<Status> status(pool.size());
    pool.run([&](int thread, int n_threads) {
      std::vector<float> row(row_len);
      for (int64_t r = thread; r < n_rows; r += n_threads) {
        uint64_t state = tensor_seed ^ (static_cast<uint64_t>(r) * 0xD1B54A32D192ED03ull);
        for (float& x : row) x = t.value_stddev > 0 ? random_normal(state, t.value_stddev) : 1.0f;
        Status s = tensor::quantize_row(type, row.data(), data.data() + r * row_bytes, row_len);
        if (!s) {
          status[thread] = std::move(s);
          return;
        }
      }
    });
    for (auto& s : status) EDGELM_CHECK(std::move(s));
    EDGELM_CHECK(writer.add_tensor(t.name, type, t.ne, data));
  }
  EDGELM_CHECK(writer.write(out));
  std::error_code ec;
  const uint64_t size = std::filesystem::file_size(out, ec);
  return ec ? 0 : size;
}

}  // namespace edgelm::tools
