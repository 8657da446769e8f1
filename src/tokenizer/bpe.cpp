#include <string>

#include "tokenizer/algorithms.h"
#include "tokenizer/symbol_merge.h"
#include "tokenizer/unicode.h"

namespace edgelm::tokenizer {

namespace {

// Merges the characters of one byte-encoded word and appends its tokens.
void merge_word(const Vocab& vocab, std::string_view word, std::vector<MergeSymbol>& symbols,
                std::string& scratch, std::vector<int32_t>& out) {
  symbols.clear();
  if (vocab.ignore_merges) {
    const int32_t id = vocab.find(word);
    if (id != kNoToken) {
      out.push_back(id);
      return;
    }
  }
  split_characters(word, symbols);
  if (symbols.empty()) return;
  merge_symbols(word, symbols,
                [&](std::string_view left, std::string_view right) -> std::optional<double> {
                  const int32_t rank = vocab.merge_rank(left, right, scratch);
                  if (rank < 0) return std::nullopt;
                  return -static_cast<double>(rank);  // the lowest rank merges first
                });

  for (int32_t i = 0; i != -1; i = symbols[i].next) {
    const std::string_view piece = word.substr(symbols[i].offset, symbols[i].size);
    const int32_t id = vocab.find(piece);
    if (id != kNoToken) {
      out.push_back(id);
      continue;
    }
    // No token for the merged text: llama.cpp emits the single-byte tokens that exist.
    for (char byte : piece) {
      const int32_t byte_id = vocab.find(std::string_view(&byte, 1));
      if (byte_id != kNoToken) out.push_back(byte_id);
    }
  }
}

}  // namespace

Status bpe_tokenize(const Vocab& vocab, const PreTokenizer& pre, std::string_view text,
                    std::vector<int32_t>& out) {
  EDGELM_TRY(const std::vector<std::string> words, pre.split(text));
  const auto& byte_chars = unicode::byte_to_utf8();
  std::vector<MergeSymbol> symbols;
  std::string encoded;
  std::string scratch;
  for (const std::string& word : words) {
    encoded.clear();
    for (char byte : word) encoded += byte_chars[static_cast<uint8_t>(byte)];
    merge_word(vocab, encoded, symbols, scratch, out);
  }
  return {};
}

}  // namespace edgelm::tokenizer
