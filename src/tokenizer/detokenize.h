// Token pieces and llama.cpp's detokenizer post-processing.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/vocab.h"

namespace edgelm::tokenizer {

// The bytes of every token as llama.cpp renders it with special=true (control and unknown
// tokens as their text; callers blank them when not rendering specials).
std::vector<std::string> build_pieces(const Vocab& vocab);

// llama.cpp's clean_spaces passes, run incrementally: (1) drop a space before ? ! . ,
// (2) " ' " -> "'", (3) drop the space before 's 'm 're 've. feed() returns the output that
// can no longer change; finish() the rest. Feeding a whole text at once equals the batch passes.
class SpaceCleaner {
 public:
  std::string feed(std::string_view text);
  std::string finish();

 private:
  struct Pass {
    std::string in;
    std::vector<bool> blanked;  // pass 2: a space consumed by " ' " reads as '\0' afterwards
    size_t next = 1;            // next input index to process (index 0 is copied as is)
    std::string out;
    size_t passed = 0;  // output bytes already handed to the next pass
  };
  std::string run(bool finished);
  void step(int pass, Pass& p, bool finished);

  Pass passes_[3];
};

}  // namespace edgelm::tokenizer
