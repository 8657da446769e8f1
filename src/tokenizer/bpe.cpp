#include <queue>
#include <string>

#include "tokenizer/algorithms.h"
#include "tokenizer/unicode.h"

namespace edgelm::tokenizer {

namespace {

struct Symbol {
  int32_t prev;
  int32_t next;
  size_t offset;  // into the byte-encoded word
  size_t size;    // 0 once merged into its left neighbour
};

struct Bigram {
  int32_t left;
  int32_t right;
  int32_t rank;
  size_t left_size;
  size_t right_size;
};

// Lowest rank first; on ties the leftmost pair (llama.cpp's llm_bigram_bpe ordering).
struct BigramOrder {
  bool operator()(const Bigram& a, const Bigram& b) const {
    return a.rank > b.rank || (a.rank == b.rank && a.left > b.left);
  }
};

// Merges the characters of one byte-encoded word and appends its tokens.
void merge_word(const Vocab& vocab, std::string_view word, std::vector<Symbol>& symbols,
                std::string& scratch, std::vector<int32_t>& out) {
  symbols.clear();
  if (vocab.ignore_merges) {
    const int32_t id = vocab.find(word);
    if (id != kNoToken) {
      out.push_back(id);
      return;
    }
  }
  for (size_t offset = 0; offset < word.size();) {
    const size_t size = std::min(unicode::sequence_length(word[offset]), word.size() - offset);
    const int32_t index = static_cast<int32_t>(symbols.size());
    symbols.push_back({index - 1, offset + size == word.size() ? -1 : index + 1, offset, size});
    offset += size;
  }
  if (symbols.empty()) return;

  std::priority_queue<Bigram, std::vector<Bigram>, BigramOrder> queue;
  const auto try_add = [&](int32_t left, int32_t right) {
    if (left < 0 || right < 0) return;
    const Symbol& l = symbols[left];
    const Symbol& r = symbols[right];
    const int32_t rank =
        vocab.merge_rank(word.substr(l.offset, l.size), word.substr(r.offset, r.size), scratch);
    if (rank < 0) return;
    queue.push({left, right, rank, l.size, r.size});
  };
  for (int32_t i = 1; i < static_cast<int32_t>(symbols.size()); ++i) try_add(i - 1, i);

  while (!queue.empty()) {
    const Bigram bigram = queue.top();
    queue.pop();
    Symbol& left = symbols[bigram.left];
    Symbol& right = symbols[bigram.right];
    // Symbols only grow, so unchanged sizes mean the pair still spells the merged text.
    if (left.size != bigram.left_size || right.size != bigram.right_size) continue;
    left.size += right.size;
    right.size = 0;
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = bigram.left;
    try_add(left.prev, bigram.left);
    try_add(bigram.left, left.next);
  }

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
  std::vector<Symbol> symbols;
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
