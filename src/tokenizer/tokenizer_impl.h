// Tokenizer internals shared by tokenizer.cpp and stream_decoder.cpp.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "edgelm/tokenizer.h"
#include "tokenizer/pretokenizer.h"
#include "tokenizer/vocab.h"

namespace edgelm::tokenizer {

struct Tokenizer::Impl {
  Vocab vocab;
  std::optional<PreTokenizer> pre;  // BPE only
  std::vector<std::string> pieces;  // per token, specials rendered

  // The bytes of `id` (empty for control/unknown tokens unless render_special).
  std::string_view piece(int32_t id, bool render_special) const;
};

}  // namespace edgelm::tokenizer
