// Internal error signalling of the Jinja engine. The interpreter throws TemplateError deep inside
// evaluation; Template::parse/render catch it and return an edgelm::Error, so nothing escapes the
// library boundary.
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

#include "edgelm/error.h"

namespace edgelm::jinja {

struct TemplateError {
  ErrorCode code = ErrorCode::kInvalidFormat;
  std::string message;
  bool located =
      false;  // already names its position (or is raise_exception): pass it through as is
};

// Whether an error caught while evaluating a sub-expression should propagate unchanged rather than
// be re-wrapped with the position of the enclosing expression.
inline bool passes_through(const TemplateError& e) {
  return e.located || e.code == ErrorCode::kOutOfRange;
}

// Joins message pieces (GCC 12 reports a bogus -Wrestrict on `"literal" + std::string(...)`
// chains).
inline std::string concat(std::initializer_list<std::string_view> parts) {
  std::string out;
  for (std::string_view p : parts) out += p;
  return out;
}

[[noreturn]] inline void fail(std::string message) {
  throw TemplateError{ErrorCode::kInvalidFormat, std::move(message)};
}

[[noreturn]] inline void fail_limit(std::string message) {
  throw TemplateError{ErrorCode::kOutOfRange, std::move(message)};
}

}  // namespace edgelm::jinja
