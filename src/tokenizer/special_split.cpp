#include <algorithm>

#include "tokenizer/algorithms.h"

namespace edgelm::tokenizer {

namespace {

// ASCII white space (what llama.cpp's isspace() sees in the C locale).
bool is_ascii_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

}  // namespace

std::vector<Fragment> split_special_tokens(const Vocab& vocab, std::string_view text,
                                           bool parse_special) {
  std::vector<Fragment> fragments;
  if (text.empty()) return fragments;
  fragments.push_back({kNoToken, text});
  std::vector<Fragment> next;
  for (int32_t id : vocab.special_tokens) {
    const TokenData& token = vocab.tokens[id];
    if (!parse_special && (token.attr & (kAttrControl | kAttrUnknown))) continue;
    const std::string_view needle = token.text;
    const bool occurs = std::any_of(fragments.begin(), fragments.end(), [&](const Fragment& f) {
      return f.token == kNoToken && f.text.find(needle) != std::string_view::npos;
    });
    if (!occurs) continue;

    next.clear();
    for (const Fragment& fragment : fragments) {
      if (fragment.token != kNoToken) {
        next.push_back(fragment);
        continue;
      }
      std::string_view rest = fragment.text;
      while (!rest.empty()) {
        const size_t match = rest.find(needle);
        if (match == std::string_view::npos) {
          next.push_back({kNoToken, rest});
          break;
        }
        std::string_view left = rest.substr(0, match);
        if (token.attr & kAttrLstrip) {
          while (!left.empty() && is_ascii_space(left.back())) left.remove_suffix(1);
        }
        if (!left.empty()) next.push_back({kNoToken, left});
        next.push_back({id, {}});
        rest.remove_prefix(match + needle.size());
        if (token.attr & kAttrRstrip) {
          while (!rest.empty() && is_ascii_space(rest.front())) rest.remove_prefix(1);
        }
      }
    }
    fragments.swap(next);
  }
  return fragments;
}

}  // namespace edgelm::tokenizer
