// The three subword algorithms, each appending the ids for one run of plain text (no special
// tokens inside) to `out`.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "edgelm/error.h"
#include "tokenizer/pretokenizer.h"
#include "tokenizer/vocab.h"

namespace edgelm::tokenizer {

// SentencePiece BPE: `text` is already space-escaped (U+2581). Highest-score merges first.
void spm_tokenize(const Vocab& vocab, std::string_view text, std::vector<int32_t>& out);

// Byte-level BPE over the pre-tokenizer's words, lowest merge rank first.
Status bpe_tokenize(const Vocab& vocab, const PreTokenizer& pre, std::string_view text,
                    std::vector<int32_t>& out);

// WordPiece: BERT basic normalisation, then greedy longest match per word.
void wpm_tokenize(const Vocab& vocab, std::string_view text, std::vector<int32_t>& out);

// One piece of the input after special-token splitting: plain text, or a special token id.
struct Fragment {
  int32_t token = kNoToken;  // kNoToken for text
  std::string_view text;
};

// Splits `text` at occurrences of special tokens, longest token text first (llama.cpp's
// tokenizer_st_partition). Control and unknown tokens are matched only when parse_special.
std::vector<Fragment> split_special_tokens(const Vocab& vocab, std::string_view text,
                                           bool parse_special);

}  // namespace edgelm::tokenizer
