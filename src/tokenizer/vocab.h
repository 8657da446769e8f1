// The vocabulary and the settings llama.cpp derives from GGUF tokenizer metadata.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "edgelm/error.h"
#include "edgelm/tokenizer.h"

namespace edgelm::format {
class GgufFile;
}

namespace edgelm::tokenizer {

// Token attributes as bit flags (llama.cpp's llama_token_attr); several may be set at once.
enum TokenAttr : uint32_t {
  kAttrUndefined = 0,
  kAttrUnknown = 1u << 0,
  kAttrUnused = 1u << 1,
  kAttrNormal = 1u << 2,
  kAttrControl = 1u << 3,
  kAttrUserDefined = 1u << 4,
  kAttrByte = 1u << 5,
  kAttrLstrip = 1u << 7,  // a matched special token swallows white space on its left
  kAttrRstrip = 1u << 8,  // ... and on its right
};

// Pre-tokenizer families (tokenizer.ggml.pre names map many-to-one onto these regex sets).
enum class PreType {
  kDefault,
  kLlama3,
  kDeepseekLlm,
  kDeepseekCoder,
  kDeepseek3Llm,
  kFalcon,
  kMpt,
  kStarcoder,
  kGpt2,
  kRefact,
  kCommandR,
  kStablelm2,
  kQwen2,
  kOlmo,
  kDbrx,
  kSmaug,
  kPoro,
  kChatglm4,
  kViking,
  kJais,
  kTekken,
  kSmollm,
  kCodeshell,
  kBloom,
  kGpt3Finnish,
  kExaone,
  kChameleon,
  kMinerva,
};

struct TokenData {
  std::string_view text;  // into Vocab::text_arena
  float score = 0.0f;
  uint32_t attr = kAttrNormal;
  TokenType type = TokenType::kNormal;
};

struct MergeRank {
  int32_t rank = 0;
  uint32_t split = 0;  // length of the left part; the key is "<left> <right>"
};

struct Vocab {
  ModelKind kind = ModelKind::kSpm;
  PreType pre = PreType::kDefault;
  std::string pre_name;

  std::vector<char> text_arena;  // all token texts, back to back (moves keep views valid)
  std::vector<TokenData> tokens;
  std::unordered_map<std::string_view, int32_t> text_to_id;
  size_t max_token_len = 0;

  std::vector<char> merge_arena;
  std::unordered_map<std::string_view, MergeRank> merges;

  int32_t bos = kNoToken, eos = kNoToken, eot = kNoToken, eom = kNoToken, unk = kNoToken;
  int32_t sep = kNoToken, pad = kNoToken, mask = kNoToken;
  int32_t fim_pre = kNoToken, fim_suf = kNoToken, fim_mid = kNoToken;
  int32_t fim_pad = kNoToken, fim_rep = kNoToken, fim_sep = kNoToken;

  bool add_bos = false;
  bool add_eos = false;
  bool add_space_prefix = false;
  bool clean_spaces = false;
  bool ignore_merges = false;  // BPE: a pre-token that is itself a token skips the merges

  std::unordered_set<int32_t> eog;
  std::vector<int32_t> special_tokens;  // control/user-defined/unknown, longest text first

  int32_t n_tokens() const { return static_cast<int32_t>(tokens.size()); }
  bool valid(int32_t id) const { return id >= 0 && id < n_tokens(); }
  int32_t find(std::string_view text) const {
    const auto it = text_to_id.find(text);
    return it == text_to_id.end() ? kNoToken : it->second;
  }
  // BPE merge rank of (left, right), or -1.
  int32_t merge_rank(std::string_view left, std::string_view right, std::string& scratch) const;
  // SPM/byte-fallback token for a raw byte: <0xNN>, else the one-byte text, else kNoToken.
  int32_t byte_token(uint8_t byte) const;
};

Result<Vocab> load_vocab(const format::GgufFile& file);

// The pre-tokenizer family llama.cpp uses for a tokenizer.ggml.pre value (nullopt if unknown).
std::optional<PreType> pre_type_for_name(std::string_view name);

}  // namespace edgelm::tokenizer
