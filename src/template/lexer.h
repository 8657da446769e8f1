// Splits Jinja source into text and tag tokens, applying jinja2's whitespace control exactly:
// `-` strips whitespace beside a tag, `+` disables lstrip/trim for that tag, trim_blocks drops the
// first newline after a block or comment tag, lstrip_blocks drops the indentation before one.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace edgelm::jinja {

enum class TokenType : uint8_t {
  kText,
  kVariableBegin,  // {{
  kVariableEnd,    // }}
  kBlockBegin,     // {%
  kBlockEnd,       // %}
  kName,
  kString,
  kInteger,
  kFloat,
  kOperator,
  kEnd,
};

struct Token {
  TokenType type = TokenType::kEnd;
  std::string value;  // text, name, decoded string literal, or operator spelling
  int64_t integer = 0;
  double number = 0.0;
  size_t offset = 0;  // byte offset in the source, turned into line:col for messages
};

struct LexerOptions {
  bool trim_blocks = true;
  bool lstrip_blocks = true;
  bool keep_trailing_newline = false;
};

// "line 3, column 14" for a byte offset.
std::string describe_position(std::string_view source, size_t offset);

// Throws TemplateError (with line:col) on unterminated tags, strings or comments.
std::vector<Token> tokenize(std::string_view source, const LexerOptions& options);

}  // namespace edgelm::jinja
