#include <queue>

#include "tokenizer/algorithms.h"
#include "tokenizer/unicode.h"

namespace edgelm::tokenizer {

namespace {

struct Symbol {
  int32_t prev;
  int32_t next;
  size_t offset;  // into the text
  size_t size;    // bytes; 0 once merged into its left neighbour
};

struct Bigram {
  int32_t left;
  int32_t right;
  float score;
  size_t size;
};

// Highest score first; on ties the leftmost pair (llama.cpp's llm_bigram_spm ordering).
struct BigramOrder {
  bool operator()(const Bigram& a, const Bigram& b) const {
    return a.score < b.score || (a.score == b.score && a.left > b.left);
  }
};

}  // namespace

void spm_tokenize(const Vocab& vocab, std::string_view text, std::vector<int32_t>& out) {
  if (text.empty()) return;
  // One symbol per UTF-8 character, judged by the lead byte only (invalid bytes stay bytes).
  std::vector<Symbol> symbols;
  symbols.reserve(text.size());
  for (size_t offset = 0; offset < text.size();) {
    const size_t size = std::min(unicode::sequence_length(text[offset]), text.size() - offset);
    const int32_t index = static_cast<int32_t>(symbols.size());
    symbols.push_back({index - 1, offset + size == text.size() ? -1 : index + 1, offset, size});
    offset += size;
  }

  std::priority_queue<Bigram, std::vector<Bigram>, BigramOrder> queue;
  const auto try_add = [&](int32_t left, int32_t right) {
    if (left < 0 || right < 0) return;
    const size_t size = symbols[left].size + symbols[right].size;
    const int32_t id = vocab.find(text.substr(symbols[left].offset, size));
    if (id == kNoToken) return;
    queue.push({left, right, vocab.tokens[id].score, size});
  };
  for (int32_t i = 1; i < static_cast<int32_t>(symbols.size()); ++i) try_add(i - 1, i);

  while (!queue.empty()) {
    const Bigram bigram = queue.top();
    queue.pop();
    Symbol& left = symbols[bigram.left];
    Symbol& right = symbols[bigram.right];
    if (left.size == 0 || right.size == 0 || left.size + right.size != bigram.size) continue;
    left.size += right.size;
    right.size = 0;
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = bigram.left;
    try_add(left.prev, bigram.left);
    try_add(bigram.left, left.next);
  }

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
