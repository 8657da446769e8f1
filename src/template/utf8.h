// UTF-8 helpers with Python str semantics: Python indexes, slices and measures strings by code
// point, and its strip/split/upper/lower work on Unicode characters.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace edgelm::jinja::utf8 {

// Decodes the code point at s[pos] and advances pos; invalid bytes decode as themselves (one byte
// each, like Python's surrogateescape) so arbitrary input never fails.
char32_t decode(std::string_view s, size_t& pos);
void append(std::string& out, char32_t cp);

std::vector<char32_t> to_code_points(std::string_view s);
std::string from_code_points(const std::vector<char32_t>& cps, size_t begin, size_t end);
size_t length(std::string_view s);

bool is_space(char32_t cp);      // Python str.isspace()
bool is_printable(char32_t cp);  // Python str.isprintable()
bool is_cased(char32_t cp);
bool is_upper(char32_t cp);
bool is_lower(char32_t cp);
bool is_alpha(char32_t cp);
bool is_digit(char32_t cp);
char32_t to_upper(char32_t cp);
char32_t to_lower(char32_t cp);
char32_t to_title(char32_t cp);

std::string upper(std::string_view s);
std::string lower(std::string_view s);
std::string title_words(std::string_view s);  // Python str.title()
std::string capitalize(std::string_view s);   // Python str.capitalize()

// Python str.strip/lstrip/rstrip: with chars == nullptr strip whitespace, else any of chars.
std::string strip(std::string_view s, const std::string* chars, bool left, bool right);

// Python str.splitlines() (keepends=False).
std::vector<std::string> splitlines(std::string_view s);

}  // namespace edgelm::jinja::utf8
