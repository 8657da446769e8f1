#include <string>

#include "tokenizer/algorithms.h"
#include "tokenizer/unicode.h"

namespace edgelm::tokenizer {

namespace {

// CJK ideograph blocks BERT isolates as single-character words (the ranges HF's BasicTokenizer
// uses, including its 0x2B920 start of Extension E).
bool is_cjk_ideograph(uint32_t cp) {
  return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) ||
         (cp >= 0x20000 && cp <= 0x2A6DF) || (cp >= 0x2A700 && cp <= 0x2B73F) ||
         (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B920 && cp <= 0x2CEAF) ||
         (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

// BERT BasicTokenizer as llama.cpp applies it: strip accents (first code point of the canonical
// decomposition), drop controls and U+FFFD, lower-case, split at white space, and make every
// punctuation mark, ASCII symbol and CJK ideograph a word of its own.
std::vector<std::string> basic_words(std::string_view text) {
  std::vector<std::string> words(1);
  for (uint32_t cp : unicode::decode(text)) {
    cp = unicode::nfd_first(cp);
    const unicode::CharClass cls = unicode::classify(cp);
    if (cls.whitespace) {
      if (!words.back().empty()) words.emplace_back();
      continue;
    }
    if (cp == 0 || cp == unicode::kReplacement || cls.control) continue;
    std::string lowered;
    unicode::append_utf8(lowered, unicode::to_lower(cp));
    if (cls.punctuation || (cp < 0x7F && cls.symbol) || is_cjk_ideograph(cp)) {
      if (!words.back().empty()) words.emplace_back();
      words.back() = std::move(lowered);
      words.emplace_back();
    } else {
      words.back() += lowered;
    }
  }
  if (words.back().empty()) words.pop_back();
  return words;
}

}  // namespace

void wpm_tokenize(const Vocab& vocab, std::string_view text, std::vector<int32_t>& out) {
  for (const std::string& word : basic_words(text)) {
    // Word-initial pieces carry the U+2581 marker in llama.cpp's BERT vocabularies; pieces
    // inside a word are stored without BERT's "##".
    const std::string marked = "\xE2\x96\x81" + word;
    const size_t n = marked.size();
    const size_t first_token = out.size();
    for (size_t i = 0; i < n;) {
      size_t matched = 0;
      for (size_t j = std::min(n, i + vocab.max_token_len + 1); j > i; --j) {
        const int32_t id = vocab.find(std::string_view(marked).substr(i, j - i));
        if (id != kNoToken) {
          out.push_back(id);
          matched = j - i;
          break;
        }
      }
      if (matched == 0) {  // a piece cannot be matched: the whole word becomes <unk>
        out.resize(first_token);
        break;
      }
      i += matched;
    }
    if (out.size() == first_token && vocab.unk != kNoToken) out.push_back(vocab.unk);
  }
}

}  // namespace edgelm::tokenizer
