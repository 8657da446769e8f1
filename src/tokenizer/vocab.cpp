#include "tokenizer/vocab.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <optional>
#include <variant>

#include "edgelm/gguf.h"

namespace edgelm::tokenizer {

namespace {

using format::GgufArray;
using format::GgufFile;
using format::GgufType;
using format::GgufValue;

constexpr std::string_view kModelKey = "tokenizer.ggml.model";
constexpr std::string_view kPreKey = "tokenizer.ggml.pre";
constexpr std::string_view kTokensKey = "tokenizer.ggml.tokens";
constexpr std::string_view kScoresKey = "tokenizer.ggml.scores";
constexpr std::string_view kTypesKey = "tokenizer.ggml.token_type";
constexpr std::string_view kMergesKey = "tokenizer.ggml.merges";

Error format_error(std::string message) {
  return make_error(ErrorCode::kInvalidFormat, std::move(message));
}

struct PreSettings {
  std::string_view name;
  PreType type;
  bool keep_clean_spaces = true;  // BPE default clean_spaces=true; some families turn it off
  bool ignore_merges = false;
  bool add_bos = false;
  bool no_bos = false;
};

// tokenizer.ggml.pre names llama.cpp accepts, and the settings it attaches to each.
constexpr PreSettings kPreSettings[] = {
    {"default", PreType::kDefault},
    {"llama3", PreType::kLlama3, true, true, true},
    {"llama-v3", PreType::kLlama3, true, true, true},
    {"llama-bpe", PreType::kLlama3, true, true, true},
    {"falcon3", PreType::kLlama3, true, true, true},
    {"deepseek-llm", PreType::kDeepseekLlm, false},
    {"deepseek-coder", PreType::kDeepseekCoder, false},
    {"deepseek-v3", PreType::kDeepseek3Llm, false},
    {"falcon", PreType::kFalcon},
    {"mpt", PreType::kMpt},
    {"starcoder", PreType::kStarcoder},
    {"gpt-2", PreType::kGpt2},
    {"phi-2", PreType::kGpt2},
    {"jina-es", PreType::kGpt2},
    {"jina-de", PreType::kGpt2},
    {"gigachat", PreType::kGpt2},
    {"jina-v1-en", PreType::kGpt2},
    {"jina-v2-es", PreType::kGpt2},
    {"jina-v2-de", PreType::kGpt2},
    {"jina-v2-code", PreType::kGpt2},
    {"roberta-bpe", PreType::kGpt2},
    {"refact", PreType::kRefact},
    {"command-r", PreType::kCommandR, false},
    {"qwen2", PreType::kQwen2, false},
    {"deepseek-r1-qwen", PreType::kQwen2, false},
    {"stablelm2", PreType::kStablelm2},
    {"olmo", PreType::kOlmo},
    {"dbrx", PreType::kDbrx},
    {"smaug-bpe", PreType::kSmaug},
    {"poro-chat", PreType::kPoro, false},
    {"chatglm-bpe", PreType::kChatglm4, true, false, false, true},
    {"viking", PreType::kViking, false},
    {"jais", PreType::kJais},
    {"tekken", PreType::kTekken, false, true, true},
    {"smollm", PreType::kSmollm, false},
    {"codeshell", PreType::kCodeshell},
    {"bloom", PreType::kBloom},
    {"gpt3-finnish", PreType::kGpt3Finnish},
    {"exaone", PreType::kExaone},
    {"chameleon", PreType::kChameleon, false, false, true},
    {"minerva-7b", PreType::kMinerva},
    {"megrez", PreType::kQwen2},
};

uint32_t attr_from_type(int64_t type) {
  switch (type) {
    case 1:
      return kAttrNormal;
    case 2:
      return kAttrUnknown;
    case 3:
      return kAttrControl;
    case 4:
      return kAttrUserDefined;
    case 5:
      return kAttrUnused;
    case 6:
      return kAttrByte;
    default:
      return kAttrUndefined;
  }
}

Result<const GgufArray*> get_array_of(const GgufFile& file, std::string_view key,
                                      std::string_view what, bool (*accepts)(GgufType)) {
  EDGELM_TRY(const GgufArray* array, file.get_array(key));
  if (!accepts(array->elem_type)) {
    return format_error("key '" + std::string(key) + "': expected an array of " +
                        std::string(what) + ", found an array of " +
                        std::string(format::gguf_type_name(array->elem_type)));
  }
  return array;
}

bool is_string_type(GgufType type) {
  return type == GgufType::kString;
}
bool is_float_type(GgufType type) {
  return type == GgufType::kFloat32 || type == GgufType::kFloat64;
}
bool is_int_type(GgufType type) {
  switch (type) {
    case GgufType::kUint8:
    case GgufType::kInt8:
    case GgufType::kUint16:
    case GgufType::kInt16:
    case GgufType::kUint32:
    case GgufType::kInt32:
    case GgufType::kUint64:
    case GgufType::kInt64:
      return true;
    default:
      return false;
  }
}

// A special token id key: absent keeps `id`; -1 / 0xFFFFFFFF mean "none" (converters write that);
// any other value must index the vocabulary.
Status read_special_id(const GgufFile& file, std::string_view key, int32_t n_tokens, int32_t& id) {
  const GgufValue* value = file.find(key);
  if (value == nullptr) return {};
  int64_t raw = 0;
  if (const auto* u = std::get_if<uint64_t>(&value->data)) {
    if (*u == 0xFFFFFFFFull || *u == ~0ull) {
      id = kNoToken;
      return {};
    }
    raw = *u > uint64_t(INT32_MAX) ? INT64_MAX : int64_t(*u);
  } else if (const auto* s = std::get_if<int64_t>(&value->data)) {
    if (*s == -1) {
      id = kNoToken;
      return {};
    }
    raw = *s;
  } else {
    return format_error("key '" + std::string(key) + "': expected an integer token id, found " +
                        std::string(format::gguf_type_name(value->type)));
  }
  if (raw < 0 || raw >= n_tokens) {
    return make_error(ErrorCode::kOutOfRange,
                      "key '" + std::string(key) + "': token id " + std::to_string(raw) +
                          " is outside the vocabulary of " + std::to_string(n_tokens) + " tokens");
  }
  id = static_cast<int32_t>(raw);
  return {};
}

Status load_tokens(const GgufFile& file, Vocab& vocab) {
  EDGELM_TRY(const GgufArray* texts, get_array_of(file, kTokensKey, "strings", is_string_type));
  const size_t n = texts->strings.size();
  if (n == 0) return format_error("key '" + std::string(kTokensKey) + "': the vocabulary is empty");
  if (n > size_t(INT32_MAX)) {
    return make_error(ErrorCode::kOutOfRange, "key '" + std::string(kTokensKey) +
                                                  "': too many tokens (" + std::to_string(n) + ")");
  }

  const GgufArray* scores = nullptr;
  if (file.find(kScoresKey) != nullptr) {
    EDGELM_TRY(scores, get_array_of(file, kScoresKey, "floats", is_float_type));
    if (scores->floats.size() != n) {
      return format_error("key '" + std::string(kScoresKey) + "': has " +
                          std::to_string(scores->floats.size()) + " entries but '" +
                          std::string(kTokensKey) + "' has " + std::to_string(n));
    }
  }
  const GgufArray* types = nullptr;
  if (file.find(kTypesKey) != nullptr) {
    EDGELM_TRY(types, get_array_of(file, kTypesKey, "integers", is_int_type));
    if (types->ints.size() != n) {
      return format_error("key '" + std::string(kTypesKey) + "': has " +
                          std::to_string(types->ints.size()) + " entries but '" +
                          std::string(kTokensKey) + "' has " + std::to_string(n));
    }
  }

  // llama.cpp renames empty tokens so every token has a distinct, non-empty text.
  std::vector<std::string> renamed(n);
  size_t total = 0;
  for (size_t i = 0; i < n; ++i) {
    if (texts->strings[i].empty()) renamed[i] = "[EMPTY_" + std::to_string(i) + "]";
    total += texts->strings[i].empty() ? renamed[i].size() : texts->strings[i].size();
  }
  vocab.text_arena.resize(total);
  vocab.tokens.resize(n);
  vocab.text_to_id.reserve(n);
  size_t offset = 0;
  for (size_t i = 0; i < n; ++i) {
    const std::string& text = texts->strings[i].empty() ? renamed[i] : texts->strings[i];
    std::copy(text.begin(), text.end(), vocab.text_arena.begin() + offset);
    TokenData& token = vocab.tokens[i];
    token.text = std::string_view(vocab.text_arena.data() + offset, text.size());
    offset += text.size();
    token.score = scores ? static_cast<float>(scores->floats[i]) : 0.0f;
    const int64_t type = types ? static_cast<int64_t>(types->ints[i]) : 1;
    token.attr = attr_from_type(type);
    token.type = (type >= 0 && type <= 6) ? static_cast<TokenType>(type) : TokenType::kUndefined;
    if (!vocab.text_to_id.emplace(token.text, int32_t(i)).second) {
      return format_error("key '" + std::string(kTokensKey) + "': token " + std::to_string(i) +
                          " repeats the text of token " +
                          std::to_string(vocab.text_to_id[token.text]));
    }
    vocab.max_token_len = std::max(vocab.max_token_len, text.size());
  }
  return {};
}

Status load_merges(const GgufFile& file, Vocab& vocab) {
  if (file.find(kMergesKey) == nullptr) {
    return make_error(ErrorCode::kNotFound, "key '" + std::string(kMergesKey) +
                                                "' is required by tokenizer model 'gpt2'");
  }
  EDGELM_TRY(const GgufArray* merges, get_array_of(file, kMergesKey, "strings", is_string_type));
  if (merges->strings.size() > size_t(INT32_MAX)) {
    return make_error(ErrorCode::kOutOfRange,
                      "key '" + std::string(kMergesKey) + "': too many merges");
  }
  size_t total = 0;
  for (const std::string& merge : merges->strings) total += merge.size();
  vocab.merge_arena.resize(total);
  vocab.merges.reserve(merges->strings.size());
  size_t offset = 0;
  for (size_t i = 0; i < merges->strings.size(); ++i) {
    const std::string& merge = merges->strings[i];
    // The pair separator is the first space after the first byte (so a left part may start
    // with a space, as llama.cpp reads it).
    const size_t split = merge.size() > 1 ? merge.find(' ', 1) : std::string::npos;
    if (split == std::string::npos || split + 1 >= merge.size()) {
      return format_error("key '" + std::string(kMergesKey) + "': entry " + std::to_string(i) +
                          " ('" + merge.substr(0, 64) + "') is not two parts separated by a space");
    }
    std::copy(merge.begin(), merge.end(), vocab.merge_arena.begin() + offset);
    const std::string_view key(vocab.merge_arena.data() + offset, merge.size());
    offset += merge.size();
    // A repeated pair keeps its first (best) rank; llama.cpp's map::emplace does the same.
    vocab.merges.emplace(key, MergeRank{int32_t(i), uint32_t(split)});
  }
  return {};
}

// llama.cpp re-types tokens whose text marks them as end-of-turn/FIM control tokens.
void detect_special_by_text(Vocab& vocab) {
  const auto first_present = [&](std::initializer_list<std::string_view> names) {
    for (std::string_view name : names) {
      const int32_t id = vocab.find(name);
      if (id != kNoToken) return id;
    }
    return kNoToken;
  };
  const auto make_control = [&](int32_t id) {
    if (id != kNoToken && (vocab.tokens[id].attr & kAttrControl) == 0) {
      vocab.tokens[id].attr = kAttrControl;
    }
  };
  struct Rule {
    int32_t* id;
    std::initializer_list<std::string_view> names;
  };
  const Rule rules[] = {
      {&vocab.eot,
       {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<EOT>", "_<EOT>",
        "<\xEF\xBD\x9C"
        "end\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>"}},
      {&vocab.eom, {"<|eom_id|>"}},
      {&vocab.fim_pre,
       {"<|fim_prefix|>", "<fim-prefix>",
        "<\xEF\xBD\x9C"
        "fim\xE2\x96\x81"
        "begin\xEF\xBD\x9C>",
        "<PRE>"}},
      {&vocab.fim_suf,
       {"<|fim_suffix|>", "<fim-suffix>",
        "<\xEF\xBD\x9C"
        "fim\xE2\x96\x81"
        "hole\xEF\xBD\x9C>",
        "<SUF>"}},
      {&vocab.fim_mid,
       {"<|fim_middle|>", "<fim-middle>",
        "<\xEF\xBD\x9C"
        "fim\xE2\x96\x81"
        "end\xEF\xBD\x9C>",
        "<MID>"}},
      {&vocab.fim_pad, {"<|fim_pad|>", "<fim-pad>", "<PAD>"}},
      {&vocab.fim_rep, {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>"}},
      {&vocab.fim_sep, {"<|file_sep|>"}},
  };
  for (const Rule& rule : rules) {
    if (*rule.id != kNoToken) continue;
    *rule.id = first_present(rule.names);
    make_control(*rule.id);
  }

  // End-of-generation set: FIM pad/repo/sep, every end-of-turn-looking token, eos, eot, eom.
  for (int32_t id : {vocab.fim_pad, vocab.fim_rep, vocab.fim_sep}) {
    if (id != kNoToken) vocab.eog.insert(id);
  }
  for (std::string_view name : {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>",
                                "<|endoftext|>", "<|eom_id|>", "<EOT>", "_<EOT>"}) {
    const int32_t id = vocab.find(name);
    if (id == kNoToken) continue;
    vocab.eog.insert(id);
    make_control(id);
  }
  for (int32_t id : {vocab.eos, vocab.eot, vocab.eom}) {
    if (id != kNoToken) vocab.eog.insert(id);
  }
}

// Per-model attribute fix-ups llama.cpp applies by name (the GGUF has no lstrip/rstrip flags).
Status apply_name_rules(const GgufFile& file, Vocab& vocab) {
  EDGELM_TRY(std::string model_name, file.get_string_or("general.name", ""));
  std::transform(model_name.begin(), model_name.end(), model_name.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  const auto contains = [](std::string_view haystack,
                           std::initializer_list<std::string_view> needles) {
    return std::any_of(needles.begin(), needles.end(), [&](std::string_view n) {
      return haystack.find(n) != std::string_view::npos;
    });
  };
  const auto set_attr = [&](std::string_view text, uint32_t attr, bool on) {
    const int32_t id = vocab.find(text);
    if (id == kNoToken) return;
    vocab.tokens[id].attr = on ? (vocab.tokens[id].attr | attr) : (vocab.tokens[id].attr & ~attr);
  };
  if (contains(vocab.pre_name, {"jina-v2-de", "jina-v2-es", "jina-v2-code"})) {
    set_attr("<mask>", kAttrLstrip, true);
  } else if (contains(model_name, {"phi-3", "phi3"})) {
    for (int32_t id : vocab.special_tokens) vocab.tokens[id].attr |= kAttrRstrip;
    set_attr("</s>", kAttrRstrip, true);
    for (std::string_view text : {"<unk>", "<s>", "<|endoftext|>"})
      set_attr(text, kAttrRstrip, false);
  }
  return {};
}

}  // namespace

std::optional<PreType> pre_type_for_name(std::string_view name) {
  for (const PreSettings& settings : kPreSettings) {
    if (settings.name == name) return settings.type;
  }
  return std::nullopt;
}

int32_t Vocab::merge_rank(std::string_view left, std::string_view right,
                          std::string& scratch) const {
  scratch.assign(left);
  scratch.push_back(' ');
  scratch.append(right);
  const auto it = merges.find(scratch);
  if (it == merges.end() || it->second.split != left.size()) return -1;
  return it->second.rank;
}

int32_t Vocab::byte_token(uint8_t byte) const {
  char name[7];
  std::snprintf(name, sizeof(name), "<0x%02X>", byte);
  const int32_t id = find(std::string_view(name, 6));
  if (id != kNoToken) return id;
  const char raw = static_cast<char>(byte);
  return find(std::string_view(&raw, 1));
}

Result<Vocab> load_vocab(const GgufFile& file) {
  Vocab vocab;
  if (file.find(kModelKey) == nullptr) {
    return make_error(ErrorCode::kNotFound, "key '" + std::string(kModelKey) + "' is missing");
  }
  EDGELM_TRY(const std::string model, file.get_string(kModelKey));
  EDGELM_TRY(vocab.pre_name, file.get_string_or(kPreKey, ""));

  // Defaults per model family, as llama.cpp sets them before reading overrides.
  if (model == "llama") {
    vocab.kind = ModelKind::kSpm;
    vocab.bos = 1, vocab.eos = 2, vocab.unk = 0;
    vocab.add_space_prefix = true;
    vocab.add_bos = true;
  } else if (model == "bert") {
    vocab.kind = ModelKind::kWpm;
    vocab.bos = 101, vocab.unk = 100, vocab.sep = 102, vocab.pad = 0, vocab.mask = 103;
    vocab.clean_spaces = true;
    vocab.add_bos = true;
  } else if (model == "gpt2") {
    vocab.kind = ModelKind::kBpe;
    vocab.bos = 11, vocab.eos = 11;
    vocab.clean_spaces = true;
    if (vocab.pre_name.empty()) {
      vocab.pre = PreType::kDefault;
    } else {
      const PreSettings* settings = nullptr;
      for (const PreSettings& candidate : kPreSettings) {
        if (candidate.name == vocab.pre_name) settings = &candidate;
      }
      if (settings == nullptr) {
        return make_error(ErrorCode::kUnsupported, "key '" + std::string(kPreKey) +
                                                       "': unknown pre-tokenizer type '" +
                                                       vocab.pre_name + "'");
      }
      vocab.pre = settings->type;
      vocab.clean_spaces = settings->keep_clean_spaces;
      vocab.ignore_merges = settings->ignore_merges;
      vocab.add_bos = settings->add_bos;
      if (settings->no_bos) vocab.bos = kNoToken;
    }
  } else {
    return make_error(ErrorCode::kUnsupported,
                      "key '" + std::string(kModelKey) + "': tokenizer model '" + model +
                          "' is not supported (expected llama, gpt2 or bert)");
  }
  EDGELM_TRY(vocab.add_space_prefix,
             file.get_bool_or("tokenizer.ggml.add_space_prefix", vocab.add_space_prefix));

  EDGELM_CHECK(load_tokens(file, vocab));
  if (vocab.kind == ModelKind::kBpe) EDGELM_CHECK(load_merges(file, vocab));

  // Family defaults may point past a small vocabulary; such a default means "none".
  for (int32_t* id : {&vocab.bos, &vocab.eos, &vocab.unk, &vocab.sep, &vocab.pad, &vocab.mask}) {
    if (!vocab.valid(*id)) *id = kNoToken;
  }
  const std::pair<std::string_view, int32_t*> special_keys[] = {
      {"tokenizer.ggml.bos_token_id", &vocab.bos},
      {"tokenizer.ggml.eos_token_id", &vocab.eos},
      {"tokenizer.ggml.eot_token_id", &vocab.eot},
      {"tokenizer.ggml.eom_token_id", &vocab.eom},
      {"tokenizer.ggml.unknown_token_id", &vocab.unk},
      {"tokenizer.ggml.seperator_token_id", &vocab.sep},
      {"tokenizer.ggml.padding_token_id", &vocab.pad},
      {"tokenizer.ggml.mask_token_id", &vocab.mask},
      {"tokenizer.ggml.fim_pre_token_id", &vocab.fim_pre},
      {"tokenizer.ggml.fim_suf_token_id", &vocab.fim_suf},
      {"tokenizer.ggml.fim_mid_token_id", &vocab.fim_mid},
      {"tokenizer.ggml.fim_pad_token_id", &vocab.fim_pad},
      {"tokenizer.ggml.fim_rep_token_id", &vocab.fim_rep},
      {"tokenizer.ggml.fim_sep_token_id", &vocab.fim_sep},
      {"tokenizer.ggml.prefix_token_id", &vocab.fim_pre},
      {"tokenizer.ggml.suffix_token_id", &vocab.fim_suf},
      {"tokenizer.ggml.middle_token_id", &vocab.fim_mid},
  };
  for (const auto& [key, id] : special_keys) {
    EDGELM_CHECK(read_special_id(file, key, vocab.n_tokens(), *id));
  }
  EDGELM_TRY(vocab.add_bos, file.get_bool_or("tokenizer.ggml.add_bos_token", vocab.add_bos));
  EDGELM_TRY(vocab.add_eos, file.get_bool_or("tokenizer.ggml.add_eos_token", vocab.add_eos));
  if (vocab.add_bos && vocab.kind != ModelKind::kWpm && vocab.bos == kNoToken) {
    return format_error(
        "key 'tokenizer.ggml.add_bos_token': BOS must be added but the model has no BOS token");
  }
  if (vocab.add_eos && vocab.eos == kNoToken) {
    return format_error(
        "key 'tokenizer.ggml.add_eos_token': EOS must be added but the model has no EOS token");
  }

  detect_special_by_text(vocab);

  for (int32_t id = 0; id < vocab.n_tokens(); ++id) {
    if (vocab.tokens[id].attr & (kAttrControl | kAttrUserDefined | kAttrUnknown)) {
      vocab.special_tokens.push_back(id);
    }
  }
  // Longest first; equal lengths by id so the order is deterministic.
  std::stable_sort(vocab.special_tokens.begin(), vocab.special_tokens.end(),
                   [&](int32_t a, int32_t b) {
                     return vocab.tokens[a].text.size() > vocab.tokens[b].text.size();
                   });
  EDGELM_CHECK(apply_name_rules(file, vocab));
  return vocab;
}

}  // namespace edgelm::tokenizer
