#include "tokenizer/detokenize.h"

#include "tokenizer/unicode.h"

namespace edgelm::tokenizer {

namespace {

std::string unescape_spaces(std::string_view text) {
  std::string result;
  result.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    if (text.compare(i, 3, "\xE2\x96\x81") == 0) {
      result.push_back(' ');
      i += 3;
    } else {
      result.push_back(text[i++]);
    }
  }
  return result;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// "<0xNN>" -> that byte; anything else renders as nothing.
std::string byte_piece(std::string_view text) {
  if (text.size() != 6 || text.substr(0, 3) != "<0x" || text[5] != '>') return {};
  const int high = hex_value(text[3]);
  const int low = hex_value(text[4]);
  if (high < 0 || low < 0) return {};
  return std::string(1, static_cast<char>(high * 16 + low));
}

// GPT-2 byte-level text back to bytes. Characters outside the byte alphabet (possible in
// added tokens typed normal) are kept as their UTF-8; llama.cpp writes "[UNK_BYTE_...]" there.
std::string byte_level_piece(std::string_view text) {
  std::string result;
  for (uint32_t cp : unicode::decode(text)) {
    const int byte = unicode::utf8_to_byte(cp);
    if (byte >= 0) {
      result.push_back(static_cast<char>(byte));
    } else {
      unicode::append_utf8(result, cp);
    }
  }
  return result;
}

}  // namespace

std::vector<std::string> build_pieces(const Vocab& vocab) {
  std::vector<std::string> pieces(vocab.tokens.size());
  for (size_t id = 0; id < vocab.tokens.size(); ++id) {
    const TokenData& token = vocab.tokens[id];
    if (token.attr & (kAttrUnknown | kAttrControl | kAttrUserDefined)) {
      pieces[id] = std::string(token.text);
    } else if (token.attr & kAttrNormal) {
      pieces[id] = vocab.kind == ModelKind::kBpe ? byte_level_piece(token.text)
                                                 : unescape_spaces(token.text);
    } else if ((token.attr & kAttrByte) && vocab.kind != ModelKind::kBpe) {
      pieces[id] = byte_piece(token.text);
    }
  }
  return pieces;
}

void SpaceCleaner::step(int pass, Pass& p, bool finished) {
  if (p.in.empty()) return;
  if (p.out.empty() && p.next == 1 && p.passed == 0) p.out.push_back(p.in[0]);
  if (pass == 1) p.blanked.resize(p.in.size() + 1, false);
  while (p.next < p.in.size()) {
    const size_t i = p.next;
    const char x = p.in[i];
    const size_t n = p.in.size();  // the final length once `finished`
    if (pass == 0) {
      if (p.in[i - 1] == ' ' && (x == '?' || x == '!' || x == '.' || x == ',')) p.out.pop_back();
      p.out.push_back(x);
      p.next = i + 1;
    } else if (pass == 1) {
      const char prev = p.blanked[i - 1] ? '\0' : p.in[i - 1];
      const bool candidate = x == '\'' && prev == ' ';
      if (candidate && !finished && i + 1 >= n) break;  // need the next byte to decide
      if (candidate && i + 1 < n && p.in[i + 1] == ' ') {
        p.out.pop_back();
        p.blanked[i + 1] = true;
        p.out.push_back(x);
        p.next = i + 2;
      } else {
        p.out.push_back(x);
        p.next = i + 1;
      }
    } else {
      const bool candidate = p.in[i - 1] == ' ' && x == '\'';
      if (candidate && !finished && i + 2 >= n) break;  // need two more bytes to decide
      if (candidate && i + 1 < n) {
        const char x1 = p.in[i + 1];
        if (x1 == 't' || x1 == 'd') {
          // " 't" and " 'd" keep their space
        } else if (x1 == 's' || x1 == 'm') {
          p.out.pop_back();
        } else if (i + 2 < n) {
          const char x2 = p.in[i + 2];
          if ((x1 == 'r' && x2 == 'e') || (x1 == 'v' && x2 == 'e')) p.out.pop_back();
        }
      }
      p.out.push_back(x);
      p.next = i + 1;
    }
  }
}

std::string SpaceCleaner::run(bool finished) {
  for (int pass = 0; pass < 3; ++pass) {
    Pass& p = passes_[pass];
    step(pass, p, finished);
    // Only a trailing space can still be removed (by what follows it).
    size_t stable = p.out.size();
    if (!finished && stable > 0 && p.out.back() == ' ') --stable;
    const std::string_view ready = std::string_view(p.out).substr(p.passed, stable - p.passed);
    p.passed = stable;
    if (pass < 2) {
      passes_[pass + 1].in.append(ready);
    } else {
      return std::string(ready);
    }
  }
  return {};
}

std::string SpaceCleaner::feed(std::string_view text) {
  passes_[0].in.append(text);
  return run(false);
}

std::string SpaceCleaner::finish() {
  return run(true);
}

}  // namespace edgelm::tokenizer
