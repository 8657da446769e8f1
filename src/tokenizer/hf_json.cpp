// Hugging Face tokenizer.json (+ tokenizer_config.json) -> the GGUF tokenizer metadata llama.cpp's
// converter would write, so one tokenizer implementation (from_gguf) serves both sources.
//
// Supported: byte-level BPE, the family today's small models use (GPT-2, SmolLM/SmolLM2,
// StarCoder, Llama 3.x, Qwen2/2.5/3). The pre-tokenizer is recognised by its structure and regex;
// anything else is refused with an error that says what was found.
#include <nlohmann/json.hpp>

#include "edgelm/hf_tokenizer.h"
#include "edgelm/tokenizer.h"

namespace edgelm::tokenizer {
namespace {

using format::GgufArray;
using format::GgufType;
using format::GgufValue;
using nlohmann::json;

Error hf_error(const std::string& what) {
  return make_error(ErrorCode::kInvalidFormat, "tokenizer.json: " + what);
}

// The Split regexes of the Llama 3 and Qwen2 tokenizer.json files (Oniguruma syntax, as published).
constexpr std::string_view kLlama3Split =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr std::string_view kQwen2Split =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

// One pre-tokenizer step, reduced to what identifies a family.
std::string describe_step(const json& step) {
  const std::string type = step.value("type", "");
  if (type == "ByteLevel") return step.value("use_regex", true) ? "ByteLevel(regex)" : "ByteLevel";
  if (type == "Digits")
    return step.value("individual_digits", false) ? "Digits(individual)" : "Digits";
  if (type == "Split" && step.contains("pattern") && step["pattern"].is_object() &&
      step["pattern"].contains("Regex") && step["pattern"]["Regex"].is_string()) {
    const std::string regex = step["pattern"]["Regex"].get<std::string>();
    if (regex == kLlama3Split) return "Split(llama3)";
    if (regex == kQwen2Split) return "Split(qwen2)";
    return "Split(" + regex + ")";
  }
  return type.empty() ? "?" : type;
}

// llama.cpp's tokenizer.ggml.pre name for the pre-tokenizer, or an error naming what was found.
Result<std::string> pre_name(const json& pre) {
  std::vector<std::string> steps;
  if (pre.is_object() && pre.value("type", "") == "Sequence" && pre.contains("pretokenizers") &&
      pre["pretokenizers"].is_array()) {
    for (const json& step : pre["pretokenizers"]) steps.push_back(describe_step(step));
  } else if (pre.is_object()) {
    steps.push_back(describe_step(pre));
  }
  std::string joined;
  for (const auto& s : steps) joined += (joined.empty() ? "" : ", ") + s;
  if (joined == "ByteLevel(regex)") return std::string("gpt-2");
  if (joined == "Digits(individual), ByteLevel(regex)") return std::string("smollm");
  if (joined == "Split(llama3), ByteLevel") return std::string("llama-bpe");
  if (joined == "Split(qwen2), ByteLevel") return std::string("qwen2");
  return hf_error(
      "pre_tokenizer [" + joined +
      "] is not a supported byte-level BPE family (GPT-2, SmolLM/StarCoder, Llama 3, Qwen2)");
}

// Merges are "a b" strings (older files) or ["a", "b"] pairs (newer ones).
Result<std::vector<std::string>> merges_of(const json& model) {
  std::vector<std::string> out;
  if (!model.contains("merges")) return out;
  if (!model["merges"].is_array()) return hf_error("model.merges must be an array");
  out.reserve(model["merges"].size());
  for (const json& m : model["merges"]) {
    if (m.is_string()) {
      out.push_back(m.get<std::string>());
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      out.push_back(m[0].get<std::string>() + " " + m[1].get<std::string>());
    } else {
      return hf_error("model.merges[" + std::to_string(out.size()) +
                      "] is neither \"a b\" nor [\"a\", \"b\"]");
    }
  }
  return out;
}

// A special-token setting of tokenizer_config.json: "<s>" or {"content": "<s>", ...}.
std::string token_setting(const json& config, const char* key) {
  if (!config.contains(key)) return "";
  const json& v = config[key];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string())
    return v["content"].get<std::string>();
  return "";
}

}  // namespace

Result<format::GgufWriter> hf_tokenizer_to_gguf(std::string_view tokenizer_json,
                                                std::string_view tokenizer_config) {
  const json doc = json::parse(tokenizer_json, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) return hf_error("not a JSON object");
  json config = json::object();
  if (!tokenizer_config.empty()) {
    config = json::parse(tokenizer_config, nullptr, /*allow_exceptions=*/false);
    if (config.is_discarded() || !config.is_object()) {
      return make_error(ErrorCode::kInvalidFormat, "tokenizer_config.json: not a JSON object");
    }
  }
  if (!doc.contains("model") || !doc["model"].is_object()) return hf_error("no \"model\" object");
  const json& model = doc["model"];
  const std::string type = model.value("type", "");
  if (type != "BPE") {
    return hf_error("model type '" + type +
                    "' is not supported (byte-level BPE only; use a GGUF vocabulary)");
  }
  EDGELM_TRY(const std::string pre,
             pre_name(doc.contains("pre_tokenizer") ? doc["pre_tokenizer"] : json()));

  // Tokens by id: model.vocab plus added_tokens; every id in [0, n) must be named exactly once.
  if (!model.contains("vocab") || !model["vocab"].is_object())
    return hf_error("model.vocab must be an object");
  constexpr size_t kMaxTokens = 1u << 22;
  std::vector<std::string> tokens;
  std::vector<int64_t> types;
  std::vector<bool> seen;
  const auto put = [&](const std::string& text, const json& id_value,
                       int64_t token_type) -> Status {
    if (!id_value.is_number_unsigned() || id_value.get<uint64_t>() >= kMaxTokens) {
      return hf_error("token '" + text + "' has an id that is not an integer in [0, 2^22)");
    }
    const auto id = static_cast<size_t>(id_value.get<uint64_t>());
    if (id >= tokens.size()) {
      tokens.resize(id + 1);
      types.resize(id + 1, 0);
      seen.resize(id + 1, false);
    }
    if (seen[id] && tokens[id] != text) {
      return hf_error("id " + std::to_string(id) + " names both '" + tokens[id] + "' and '" + text +
                      "'");
    }
    tokens[id] = text;
    types[id] = token_type;
    seen[id] = true;
    return {};
  };
  for (const auto& [text, id] : model["vocab"].items()) EDGELM_CHECK(put(text, id, 1));
  if (doc.contains("added_tokens")) {
    if (!doc["added_tokens"].is_array()) return hf_error("added_tokens must be an array");
    for (const json& added : doc["added_tokens"]) {
      if (!added.is_object() || !added.contains("content") || !added["content"].is_string() ||
          !added.contains("id")) {
        return hf_error("each added_tokens entry needs \"id\" and \"content\"");
      }
      const bool special = added.value("special", false);
      EDGELM_CHECK(put(added["content"].get<std::string>(), added["id"], special ? 3 : 4));
    }
  }
  if (tokens.empty()) return hf_error("the vocabulary is empty");
  for (size_t id = 0; id < tokens.size(); ++id) {
    if (!seen[id]) {  // a hole in the ids: llama.cpp's converter pads with unused tokens too
      tokens[id] = "[PAD" + std::to_string(id) + "]";
      types[id] = 5;
    }
  }
  EDGELM_TRY(std::vector<std::string> merges, merges_of(model));

  format::GgufWriter out;
  out.set("tokenizer.ggml.model", GgufValue::string("gpt2"));
  out.set("tokenizer.ggml.pre", GgufValue::string(pre));
  GgufArray token_array{GgufType::kString, std::move(tokens), {}, {}, {}};
  GgufArray type_array{GgufType::kInt32, {}, std::move(types), {}, {}};
  GgufArray merge_array{GgufType::kString, std::move(merges), {}, {}, {}};
  const auto n_tokens = static_cast<int64_t>(token_array.strings.size());
  const auto find = [&](const std::string& text) -> int64_t {
    if (text.empty()) return -1;
    for (int64_t i = 0; i < n_tokens; ++i) {
      if (token_array.strings[static_cast<size_t>(i)] == text) return i;
    }
    return -1;
  };
  const auto set_id = [&](const char* key, const std::string& text) {
    if (const int64_t id = find(text); id >= 0)
      out.set(key, GgufValue::u32(static_cast<uint32_t>(id)));
  };
  set_id("tokenizer.ggml.bos_token_id", token_setting(config, "bos_token"));
  set_id("tokenizer.ggml.eos_token_id", token_setting(config, "eos_token"));
  set_id("tokenizer.ggml.padding_token_id", token_setting(config, "pad_token"));
  set_id("tokenizer.ggml.unknown_token_id", token_setting(config, "unk_token"));
  out.set("tokenizer.ggml.tokens", GgufValue::array(std::move(token_array)));
  out.set("tokenizer.ggml.token_type", GgufValue::array(std::move(type_array)));
  out.set("tokenizer.ggml.merges", GgufValue::array(std::move(merge_array)));
  if (config.contains("add_bos_token") && config["add_bos_token"].is_boolean()) {
    out.set("tokenizer.ggml.add_bos_token",
            GgufValue::boolean(config["add_bos_token"].get<bool>()));
  }
  if (config.contains("chat_template") && config["chat_template"].is_string()) {
    out.set("tokenizer.chat_template",
            GgufValue::string(config["chat_template"].get<std::string>()));
  }
  return out;
}

Result<std::unique_ptr<Tokenizer>> Tokenizer::from_hf_json(std::string_view tokenizer_json,
                                                           std::string_view tokenizer_config) {
  EDGELM_TRY(format::GgufWriter writer, hf_tokenizer_to_gguf(tokenizer_json, tokenizer_config));
  EDGELM_TRY(const std::vector<uint8_t> bytes, writer.to_bytes());
  EDGELM_TRY(format::GgufFile file, format::GgufFile::parse(bytes));
  return from_gguf(file);
}

}  // namespace edgelm::tokenizer
