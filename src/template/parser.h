// Recursive-descent parser for the Jinja subset chat templates use, following jinja2's grammar and
// operator precedence. Depth is bounded so hostile templates cannot overflow the stack.
#pragma once

#include <string_view>
#include <vector>

#include "template/ast.h"
#include "template/lexer.h"

namespace edgelm::jinja {

// Parser recursion and syntax-tree height limit (jinja2 itself has none; real templates nest < 20).
inline constexpr int kMaxSyntaxDepth = 200;

// Throws TemplateError naming line:col on a syntax error.
Body parse_template(std::string_view source, const std::vector<Token>& tokens);

}  // namespace edgelm::jinja
