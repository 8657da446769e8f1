// The merge loop BPE and SentencePiece share: the text's characters become a linked list of
// symbols, and the adjacent pair with the highest priority (the leftmost on ties, as llama.cpp's
// llm_bigram_bpe / llm_bigram_spm order them) is merged until no pair can merge.
#pragma once

#include <cstdint>
#include <optional>
#include <queue>
#include <string_view>
#include <vector>

#include "tokenizer/unicode.h"

namespace edgelm::tokenizer {

struct MergeSymbol {
  int32_t prev;
  int32_t next;
  size_t offset;  // into the text
  size_t size;    // bytes; 0 once merged into its left neighbour
};

// One symbol per UTF-8 character, judged by the lead byte only (invalid bytes stay bytes).
inline void split_characters(std::string_view text, std::vector<MergeSymbol>& symbols) {
  symbols.clear();
  for (size_t offset = 0; offset < text.size();) {
    const size_t size = std::min(unicode::sequence_length(text[offset]), text.size() - offset);
    const int32_t index = static_cast<int32_t>(symbols.size());
    symbols.push_back({index - 1, offset + size == text.size() ? -1 : index + 1, offset, size});
    offset += size;
  }
}

// `priority(left_piece, right_piece)` returns std::optional<double>: empty when the pair cannot
// merge, else higher merges first. Afterwards the symbols from index 0 along `next` spell the
// merged pieces.
template <typename Priority>
void merge_symbols(std::string_view text, std::vector<MergeSymbol>& symbols, Priority&& priority) {
  struct Bigram {
    int32_t left;
    int32_t right;
    double priority;
    size_t left_size;
    size_t right_size;
  };
  struct Order {
    bool operator()(const Bigram& a, const Bigram& b) const {
      return a.priority < b.priority || (a.priority == b.priority && a.left > b.left);
    }
  };
  std::priority_queue<Bigram, std::vector<Bigram>, Order> queue;
  const auto try_add = [&](int32_t left, int32_t right) {
    if (left < 0 || right < 0) return;
    const MergeSymbol& l = symbols[left];
    const MergeSymbol& r = symbols[right];
    const std::optional<double> p =
        priority(text.substr(l.offset, l.size), text.substr(r.offset, r.size));
    if (p) queue.push({left, right, *p, l.size, r.size});
  };
  for (int32_t i = 1; i < static_cast<int32_t>(symbols.size()); ++i) try_add(i - 1, i);

  while (!queue.empty()) {
    const Bigram bigram = queue.top();
    queue.pop();
    MergeSymbol& left = symbols[bigram.left];
    MergeSymbol& right = symbols[bigram.right];
    // Symbols only grow, so unchanged sizes mean the pair still spells the text it was queued for.
    if (left.size != bigram.left_size || right.size != bigram.right_size) continue;
    left.size += right.size;
    right.size = 0;
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = bigram.left;
    try_add(left.prev, bigram.left);
    try_add(bigram.left, left.next);
  }
}

}  // namespace edgelm::tokenizer
