// Unicode helpers for the tokenizers: UTF-8 coding, character classes (from utf8proc), the GPT-2
// byte-level alphabet. Code points are uint32_t.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace edgelm::tokenizer::unicode {

inline constexpr uint32_t kReplacement = 0xFFFD;

// Length of the UTF-8 sequence a lead byte announces, judged by its top four bits only (1 for
// continuation bytes), as llama.cpp's unicode_len_utf8.
inline size_t sequence_length(char lead) {
  static constexpr uint8_t kLengths[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
  return kLengths[static_cast<uint8_t>(lead) >> 4];
}

// Decodes one strictly valid UTF-8 sequence at text[pos]. Returns its length (1..4) and sets
// `cp`, or 0 when the bytes there are not a valid sequence; -1 when they are a valid but
// truncated prefix that ends at the end of `text`.
int decode_one(std::string_view text, size_t pos, uint32_t& cp);

// Code points of `text`; each byte that does not start a valid sequence becomes U+FFFD.
std::vector<uint32_t> decode(std::string_view text);

void append_utf8(std::string& out, uint32_t cp);
std::string encode(std::span<const uint32_t> cps);

// Unicode White_Space (the property llama.cpp's tables use): Zs, Zl, Zp, U+0009..U+000D, U+0085.
bool is_whitespace(uint32_t cp);

struct CharClass {
  bool letter = false;       // L*
  bool number = false;       // N*
  bool punctuation = false;  // P*
  bool symbol = false;       // S*
  bool control = false;      // Cc, Cf, Co, Cs (not Cn)
  bool whitespace = false;
};
CharClass classify(uint32_t cp);

// Simple (single code point) lower-case mapping.
uint32_t to_lower(uint32_t cp);
// First code point of the canonical decomposition (llama.cpp's one-to-one "NFD" used by WPM:
// it drops combining accents of precomposed letters).
uint32_t nfd_first(uint32_t cp);

// GPT-2 byte-level alphabet: byte -> UTF-8 of its stand-in character, and back (-1 if none).
const std::array<std::string, 256>& byte_to_utf8();
int utf8_to_byte(uint32_t cp);

}  // namespace edgelm::tokenizer::unicode
