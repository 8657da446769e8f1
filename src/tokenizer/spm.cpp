
#include "tokenizer/algorithms.h"
#include "tokenizer/symbol_merge.h"

namespace edgelm::tokenizer {

void spm_tokenize(const Vocab& vocab, std::string_view text, std::vector<int32_t>& out) {
  if (text.empty()) return;
  std::vector<MergeSymbol> symbols;
  symbols.reserve(text.size());
  split_characters(text, symbols);
  merge_symbols(
      text, symbols, [&](std::string_view left, std::string_view right) -> std::optional<double> {
        // Pieces are adjacent in `text`, so their concatenation is a view of it.
        const int32_t id = vocab.find(std::string_view(left.data(), left.size() + right.size()));
        if (id == kNoToken) return std::nullopt;
        return vocab.tokens[id].score;  // the highest score merges first
      });

  // Every merged symbol is a token; characters without a token fall back to byte tokens.
  for (int32_t i = 0; i != -1; i = symbols[i].next) {
    const std::string_view piece = text.substr(symbols[i].offset, symbols[i].size);
    const int32_t id = vocab.find(piece);
    if (id != kNoToken) {
      out.push_back(id);
      continue;
    }
    for (char byte : piece) {
      // A vocabulary without byte tokens gives <unk> (or nothing when it has none either).
      const int32_t byte_id = vocab.byte_token(static_cast<uint8_t>(byte));
      if (byte_id != kNoToken) {
        out.push_back(byte_id);
      } else if (vocab.unk != kNoToken) {
        out.push_back(vocab.unk);
      }
    }
  }
}

}  // namespace edgelm::tokenizer
