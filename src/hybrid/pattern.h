// A compiled PCRE2 pattern (UTF + Unicode properties, JIT when available) and a match loop over
// text that is already valid UTF-8 (the redactor sanitizes its input first).
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "edgelm/error.h"

struct pcre2_real_code_8;

namespace edgelm::hybrid::detail {

struct Match {
  size_t begin = 0;
  size_t end = 0;
};

class Pattern {
 public:
  // `caseless` adds PCRE2_CASELESS. The error names `name` and the offset of the problem.
  static Result<Pattern> compile(std::string_view name, std::string_view pattern,
                                 bool caseless = false);
  Pattern(Pattern&&) noexcept = default;
  Pattern& operator=(Pattern&&) noexcept = default;
  ~Pattern();

  // Calls `on_match` for each non-overlapping match (whole match bytes) from left to right;
  // returning false stops. A match that hits the backtracking limit ends the loop quietly.
  void for_each(std::string_view text, const std::function<bool(const Match&)>& on_match) const;

 private:
  struct CodeDeleter {
    void operator()(pcre2_real_code_8* code) const;
  };
  explicit Pattern(std::unique_ptr<pcre2_real_code_8, CodeDeleter> code) : code_(std::move(code)) {}
  std::unique_ptr<pcre2_real_code_8, CodeDeleter> code_;
};

}  // namespace edgelm::hybrid::detail
