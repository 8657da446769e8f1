#include "template/lexer.h"

#include <cstring>

#include "template/template_error.h"
#include "template/utf8.h"

namespace edgelm::jinja {

std::string describe_position(std::string_view source, size_t offset) {
  size_t line = 1, column = 1;
  for (size_t i = 0; i < offset && i < source.size(); ++i) {
    if (source[i] == '\n') {
      ++line;
      column = 1;
    } else {
      ++column;
    }
  }
  return "line " + std::to_string(line) + ", column " + std::to_string(column);
}

namespace {

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}
bool is_name_start(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
bool is_name_char(char c) {
  return is_name_start(c) || (c >= '0' && c <= '9');
}
bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

// jinja2 normalises every newline sequence in template data and string literals to "\n".
std::string normalize_newlines(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\r') {
      out += '\n';
      if (i + 1 < s.size() && s[i + 1] == '\n') ++i;
    } else {
      out += s[i];
    }
  }
  return out;
}

class Lexer {
 public:
  // Like jinja2, newlines are normalised before lexing, so "\r\n" behaves as "\n" everywhere.
  Lexer(std::string_view source, const LexerOptions& options)
      : owned_(normalize_newlines(source)), src_(owned_), options_(options) {}

  std::vector<Token> run() {
    if (!options_.keep_trailing_newline && !src_.empty() && src_.back() == '\n')
      src_.remove_suffix(1);
    bool line_starting = true;  // the previous tag ended a line (for lstrip_blocks)
    while (pos_ < src_.size()) {
      const size_t tag = find_tag(pos_);
      std::string_view text = src_.substr(pos_, tag - pos_);
      if (tag == src_.size()) {
        emit_text(text, pos_);
        break;
      }
      const char kind = src_[tag + 1];  // '{', '%' or '#'
      const char modifier = tag + 2 < src_.size() ? src_[tag + 2] : '\0';
      if (modifier == '-') {
        while (!text.empty() && is_space(text.back())) text.remove_suffix(1);
      } else if (kind != '{' && options_.lstrip_blocks && modifier != '+') {
        const size_t newline = text.rfind('\n');
        const size_t line_start = newline == std::string_view::npos ? 0 : newline + 1;
        if (line_start > 0 || line_starting) {
          bool only_blanks = true;
          for (size_t i = line_start; i < text.size(); ++i)
            if (text[i] != ' ' && text[i] != '\t') only_blanks = false;
          if (only_blanks) text = text.substr(0, line_start);
        }
      }
      emit_text(text, pos_);
      pos_ = tag + 2 + ((modifier == '-' || modifier == '+') ? 1 : 0);
      if (kind == '#') {
        lex_comment(tag);
      } else if (kind == '%' && is_raw_block()) {
        lex_raw(tag);
      } else {
        lex_tag(kind == '{', tag);
      }
      line_starting = pos_ > 0 && src_[pos_ - 1] == '\n';
    }
    Token end;
    end.type = TokenType::kEnd;
    end.offset = src_.size();
    tokens_.push_back(std::move(end));
    return std::move(tokens_);
  }

 private:
  [[noreturn]] void error_at(size_t offset, const std::string& what) {
    fail("template syntax error at " + describe_position(src_, offset) + ": " + what);
  }

  size_t find_tag(size_t from) const {
    for (size_t i = from; i + 1 < src_.size(); ++i) {
      if (src_[i] == '{' && (src_[i + 1] == '{' || src_[i + 1] == '%' || src_[i + 1] == '#'))
        return i;
    }
    return src_.size();
  }

  void emit_text(std::string_view text, size_t offset) {
    if (text.empty()) return;
    Token t;
    t.type = TokenType::kText;
    t.value = std::string(text);
    t.offset = offset;
    tokens_.push_back(std::move(t));
  }

  // After a block/comment end: `-` eats all following whitespace, otherwise trim_blocks eats one
  // newline unless the tag ended with `+`.
  void after_block_end(char modifier) {
    if (modifier == '-') {
      while (pos_ < src_.size() && is_space(src_[pos_])) ++pos_;
    } else if (modifier != '+' && options_.trim_blocks && pos_ < src_.size() &&
               src_[pos_] == '\n') {
      ++pos_;
    }
  }

  void lex_comment(size_t tag) {
    const size_t end = src_.find("#}", pos_);
    if (end == std::string_view::npos) error_at(tag, "missing end of comment tag '#}'");
    const char modifier = end > pos_ ? src_[end - 1] : '\0';
    pos_ = end + 2;
    after_block_end(modifier == '-' || modifier == '+' ? modifier : '\0');
  }

  bool is_raw_block() const {
    size_t i = pos_;
    while (i < src_.size() && is_space(src_[i])) ++i;
    if (src_.compare(i, 3, "raw") != 0) return false;
    i += 3;
    while (i < src_.size() && is_space(src_[i])) ++i;
    return src_.compare(i, 2, "%}") == 0 || src_.compare(i, 3, "-%}") == 0 ||
           src_.compare(i, 3, "+%}") == 0;
  }

  void lex_raw(size_t tag) {
    const size_t close = src_.find("%}", pos_);
    const char open_modifier = src_[close - 1];
    pos_ = close + 2;
    after_block_end(open_modifier == '-' || open_modifier == '+' ? open_modifier : '\0');
    // Find "{%[-+]? endraw [-+]?%}".
    for (size_t i = pos_; i + 1 < src_.size(); ++i) {
      if (src_[i] != '{' || src_[i + 1] != '%') continue;
      size_t j = i + 2;
      const char modifier = j < src_.size() ? src_[j] : '\0';
      if (modifier == '-' || modifier == '+') ++j;
      while (j < src_.size() && is_space(src_[j])) ++j;
      if (src_.compare(j, 6, "endraw") != 0) continue;
      j += 6;
      while (j < src_.size() && is_space(src_[j])) ++j;
      char end_modifier = '\0';
      if (j < src_.size() && (src_[j] == '-' || src_[j] == '+')) end_modifier = src_[j++];
      if (src_.compare(j, 2, "%}") != 0) continue;
      std::string_view body = src_.substr(pos_, i - pos_);
      if (modifier == '-')
        while (!body.empty() && is_space(body.back())) body.remove_suffix(1);
      emit_text(body, pos_);
      pos_ = j + 2;
      after_block_end(end_modifier);
      return;
    }
    error_at(tag, "missing '{% endraw %}'");
  }

  void push(TokenType type, std::string value, size_t offset) {
    Token t;
    t.type = type;
    t.value = std::move(value);
    t.offset = offset;
    tokens_.push_back(std::move(t));
  }

  void lex_tag(bool is_variable, size_t tag) {
    push(is_variable ? TokenType::kVariableBegin : TokenType::kBlockBegin, "", tag);
    std::vector<char> brackets;
    while (true) {
      while (pos_ < src_.size() && is_space(src_[pos_])) ++pos_;
      if (pos_ >= src_.size())
        error_at(tag, is_variable ? "unexpected end of template, expected '}}'"
                                  : "unexpected end of template, expected '%}'");
      if (brackets.empty()) {
        const char* close = is_variable ? "}}" : "%}";
        char modifier = '\0';
        size_t at = pos_;
        if ((src_[at] == '-' || (!is_variable && src_[at] == '+')) &&
            src_.compare(at + 1, 2, close) == 0) {
          modifier = src_[at];
          ++at;
        }
        if (src_.compare(at, 2, close) == 0) {
          push(is_variable ? TokenType::kVariableEnd : TokenType::kBlockEnd, "", pos_);
          pos_ = at + 2;
          if (is_variable) {
            if (modifier == '-')
              while (pos_ < src_.size() && is_space(src_[pos_])) ++pos_;
          } else {
            after_block_end(modifier);
          }
          return;
        }
      }
      const char c = src_[pos_];
      if (is_name_start(c)) {
        const size_t start = pos_;
        while (pos_ < src_.size() && is_name_char(src_[pos_])) ++pos_;
        push(TokenType::kName, std::string(src_.substr(start, pos_ - start)), start);
      } else if (is_digit(c)) {
        lex_number();
      } else if (c == '\'' || c == '"') {
        lex_string();
      } else {
        lex_operator(brackets);
      }
    }
  }

  void lex_number() {
    const size_t start = pos_;
    std::string digits;
    const auto take_digits = [&] {
      while (pos_ < src_.size() &&
             (is_digit(src_[pos_]) ||
              (src_[pos_] == '_' && pos_ + 1 < src_.size() && is_digit(src_[pos_ + 1])))) {
        if (src_[pos_] != '_') digits += src_[pos_];
        ++pos_;
      }
    };
    take_digits();
    bool is_float = false;
    if (pos_ + 1 < src_.size() && src_[pos_] == '.' && is_digit(src_[pos_ + 1])) {
      is_float = true;
      digits += '.';
      ++pos_;
      take_digits();
    }
    if (pos_ < src_.size() && (src_[pos_] == 'e' || src_[pos_] == 'E')) {
      size_t look = pos_ + 1;
      if (look < src_.size() && (src_[look] == '+' || src_[look] == '-')) ++look;
      if (look < src_.size() && is_digit(src_[look])) {
        is_float = true;
        digits += 'e';
        digits.append(src_.substr(pos_ + 1, look - pos_ - 1));
        pos_ = look;
        take_digits();
      }
    }
    Token t;
    t.offset = start;
    t.value = digits;
    if (is_float) {
      t.type = TokenType::kFloat;
      t.number = std::strtod(digits.c_str(), nullptr);
    } else {
      t.type = TokenType::kInteger;
      int64_t value = 0;
      for (char d : digits) {
        if (value > (INT64_MAX - (d - '0')) / 10) error_at(start, "integer literal too large");
        value = value * 10 + (d - '0');
      }
      t.integer = value;
    }
    tokens_.push_back(std::move(t));
  }

  static int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }

  // Python string-literal escapes (jinja2 decodes literals with Python's rules).
  void lex_string() {
    const size_t start = pos_;
    const char quote = src_[pos_++];
    std::string raw;
    while (true) {
      if (pos_ >= src_.size()) error_at(start, "unterminated string literal");
      const char c = src_[pos_];
      if (c == quote) {
        ++pos_;
        break;
      }
      if (c == '\\' && pos_ + 1 < src_.size()) {
        raw += c;
        raw += src_[pos_ + 1];
        pos_ += 2;
        continue;
      }
      raw += c;
      ++pos_;
    }
    std::string value;
    for (size_t i = 0; i < raw.size(); ++i) {
      if (raw[i] != '\\' || i + 1 >= raw.size()) {
        value += raw[i];
        continue;
      }
      const char e = raw[++i];
      switch (e) {
        case 'n':
          value += '\n';
          break;
        case 't':
          value += '\t';
          break;
        case 'r':
          value += '\r';
          break;
        case '\\':
          value += '\\';
          break;
        case '\'':
          value += '\'';
          break;
        case '"':
          value += '"';
          break;
        case 'a':
          value += '\a';
          break;
        case 'b':
          value += '\b';
          break;
        case 'f':
          value += '\f';
          break;
        case 'v':
          value += '\v';
          break;
        case '\n':
          break;  // line continuation
        case 'N':
          error_at(start, "\\N{...} escapes are not supported");
        case 'x':
        case 'u':
        case 'U': {
          const size_t width = e == 'x' ? 2 : (e == 'u' ? 4 : 8);
          uint32_t cp = 0;
          if (i + width >= raw.size())
            error_at(start, "truncated \\" + std::string(1, e) + " escape");
          for (size_t k = 1; k <= width; ++k) {
            const int h = hex_value(raw[i + k]);
            if (h < 0) error_at(start, "invalid \\" + std::string(1, e) + " escape");
            cp = cp * 16 + static_cast<uint32_t>(h);
          }
          if (cp > 0x10FFFF) error_at(start, "escape beyond U+10FFFF");
          utf8::append(value, cp);
          i += width;
          break;
        }
        default:
          if (e >= '0' && e <= '7') {
            uint32_t cp = static_cast<uint32_t>(e - '0');
            for (int k = 0; k < 2 && i + 1 < raw.size() && raw[i + 1] >= '0' && raw[i + 1] <= '7';
                 ++k)
              cp = cp * 8 + static_cast<uint32_t>(raw[++i] - '0');
            utf8::append(value, cp);
          } else {
            value += '\\';  // Python keeps unknown escapes verbatim
            value += e;
          }
      }
    }
    push(TokenType::kString, std::move(value), start);
  }

  void lex_operator(std::vector<char>& brackets) {
    static const char* const kOperators[] = {"//", "**", "==", "!=", "<=", ">=", "+", "-", "*",
                                             "/",  "%",  "~",  "<",  ">",  "=",  "(", ")", "[",
                                             "]",  "{",  "}",  ",",  ".",  ":",  "|"};
    for (const char* op : kOperators) {
      const size_t len = std::strlen(op);
      if (src_.compare(pos_, len, op) != 0) continue;
      const char c = op[0];
      if (len == 1 && (c == '(' || c == '[' || c == '{')) {
        brackets.push_back(c == '(' ? ')' : (c == '[' ? ']' : '}'));
      } else if (len == 1 && (c == ')' || c == ']' || c == '}')) {
        if (brackets.empty() || brackets.back() != c)
          error_at(pos_, std::string("unexpected '") + c + "'");
        brackets.pop_back();
      }
      push(TokenType::kOperator, op, pos_);
      pos_ += len;
      return;
    }
    error_at(pos_, std::string("unexpected character '") + src_[pos_] + "'");
  }

  std::string owned_;
  std::string_view src_;
  LexerOptions options_;
  size_t pos_ = 0;
  std::vector<Token> tokens_;
};

}  // namespace

std::vector<Token> tokenize(std::string_view source, const LexerOptions& options) {
  return Lexer(source, options).run();
}

}  // namespace edgelm::jinja
