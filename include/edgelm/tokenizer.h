// Tokenizers built from GGUF `tokenizer.*` metadata, reproducing llama.cpp's llama-vocab behaviour:
// SentencePiece-style BPE over UTF-8 characters ("llama", SPM), byte-level BPE with pre-tokenizer
// regexes ("gpt2"), and WordPiece ("bert", WPM).
//
// Untrusted input: the prompt may hold any bytes. Invalid UTF-8 never fails or crashes:
//  - SPM keeps the bytes and encodes characters it has no token for as byte-fallback tokens
//    <0xNN> (exactly like llama.cpp), so decode(encode(x)) returns the same bytes.
//  - BPE and WPM first decode the text as UTF-8 and replace each byte that does not start a
//    valid sequence (including overlong forms, surrogates and values above U+10FFFF) by U+FFFD,
//    as llama.cpp does; BPE then encodes U+FFFD, WPM drops it.
// Malformed tokenizer metadata is rejected by from_gguf() with an error naming the key.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "edgelm/error.h"

namespace edgelm::format {
class GgufFile;
}

namespace edgelm::tokenizer {

// tokenizer.ggml.model: "llama" -> kSpm, "gpt2" -> kBpe, "bert" -> kWpm.
enum class ModelKind { kSpm, kBpe, kWpm };
std::string_view model_kind_name(ModelKind kind);

// tokenizer.ggml.token_type values as stored in GGUF (llama.cpp's llama_token_type).
enum class TokenType : int32_t {
  kUndefined = 0,
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,
  kUserDefined = 4,
  kUnused = 5,
  kByte = 6,
};

inline constexpr int32_t kNoToken = -1;

class Tokenizer {
 public:
  // Reads tokenizer.ggml.{model,pre,tokens,scores,token_type,merges,*_token_id,add_*} and
  // applies llama.cpp's per-model defaults (special ids, add_bos, add_space_prefix, ...).
  static Result<std::unique_ptr<Tokenizer>> from_gguf(const format::GgufFile& file);
  // A Hugging Face tokenizer.json (and optionally its tokenizer_config.json, which names the
  // bos/eos/pad tokens, add_bos_token and the chat template), converted as llama.cpp's converter
  // would (see edgelm/hf_tokenizer.h). Byte-level BPE families only; others are clear errors.
  static Result<std::unique_ptr<Tokenizer>> from_hf_json(std::string_view tokenizer_json,
                                                         std::string_view tokenizer_config = {});

  ~Tokenizer();
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

  // add_special: prepend BOS / append EOS as the model asks (SPM/BPE: add_bos/add_eos flags;
  // WPM: [CLS] ... [SEP]). parse_special: text equal to a control token becomes that token
  // (user-defined tokens are always matched, as in llama.cpp). Thread-safe.
  Result<std::vector<int32_t>> encode(std::string_view text, bool add_special,
                                      bool parse_special) const;

  // The raw bytes of one token (byte tokens give their byte, SPM U+2581 gives a space, GPT-2
  // byte-level characters give their bytes). Control/unknown tokens render as their text only
  // when render_special; otherwise as "". Out-of-range ids give "".
  std::string token_to_piece(int32_t id, bool render_special) const;

  // llama.cpp's llama_detokenize(remove_special=false): for models that add a space prefix
  // (SPM), one leading space is removed from the first token's piece when the first token is
  // not BOS; BPE/WPM vocabs with clean_spaces drop spaces before ?!., and in contractions.
  // The result is raw bytes (it may be invalid UTF-8 if the ids are arbitrary).
  std::string decode(std::span<const int32_t> ids, bool render_special) const;

  int32_t n_vocab() const;
  ModelKind kind() const;
  std::string_view pre_type() const;  // tokenizer.ggml.pre ("" when absent)
  int32_t bos() const;                // kNoToken (-1) when the model has none
  int32_t eos() const;
  int32_t eot() const;
  int32_t unk() const;
  int32_t pad() const;
  int32_t sep() const;
  bool add_bos() const;
  bool add_eos() const;
  bool add_space_prefix() const;
  bool is_eog(int32_t id) const;      // end of generation: eos, eot, <|im_end|>, <|eot_id|>, ...
  bool is_control(int32_t id) const;  // control-type token (after llama.cpp's re-typing)
  TokenType token_type(int32_t id) const;
  std::string_view token_text(int32_t id) const;    // "" for out-of-range ids
  int32_t find_token(std::string_view text) const;  // kNoToken when no token has this text

  struct Impl;

 private:
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
  friend class StreamDecoder;
};

// Incremental detokenizer for one generation. Each push() returns only complete, valid UTF-8:
// a multi-byte character split across tokens is held back until it is complete, and bytes that
// can never form a valid character become U+FFFD. For valid-UTF-8 output the concatenation of
// all push() results and flush() equals decode(ids pushed) (after `context`, see below),
// including llama.cpp's SPM leading-space rule and BPE space clean-up (which may hold back a
// few characters until the next token shows whether they change).
class StreamDecoder {
 public:
  // `continues_text`: the pushed tokens continue earlier text (e.g. a prompt); then the SPM
  // first-token space is never stripped. Otherwise the first pushed token starts the text:
  // BOS (if pushed) keeps the following space, like decode().
  explicit StreamDecoder(const Tokenizer& tokenizer, bool render_special = false,
                         bool continues_text = false);
  ~StreamDecoder();
  StreamDecoder(StreamDecoder&&) noexcept;
  StreamDecoder& operator=(StreamDecoder&&) noexcept;

  std::string push(int32_t id);
  std::string flush();  // the held-back tail; an incomplete final character becomes U+FFFD

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace edgelm::tokenizer
