// Byte-level BPE pre-tokenization: the text is cut into words by a sequence of regexes, each
// applied to every piece the previous ones produced (llama.cpp's unicode_regex_split): within a
// piece, every match and every stretch between matches becomes a piece of its own.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "edgelm/error.h"
#include "tokenizer/vocab.h"

namespace edgelm::tokenizer {

class PreTokenizer {
 public:
  static Result<PreTokenizer> create(PreType type);
  PreTokenizer(PreTokenizer&&) noexcept;
  PreTokenizer& operator=(PreTokenizer&&) noexcept;
  ~PreTokenizer();

  // Words of `text` as UTF-8. Invalid UTF-8 is first replaced (U+FFFD per bad byte). Fails only
  // when a regex exceeds its match/stack limits on pathological input.
  Result<std::vector<std::string>> split(std::string_view text) const;

  // The regexes (PCRE2 syntax) used for `type`, in order.
  static std::vector<std::string> patterns(PreType type);

 private:
  struct Regex;
  explicit PreTokenizer(std::vector<std::unique_ptr<Regex>> regexes);
  std::vector<std::unique_ptr<Regex>> regexes_;
};

}  // namespace edgelm::tokenizer
