// One error type and one expected-style result for the whole library boundary.
#pragma once

#include <cassert>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace edgelm {

enum class ErrorCode {
  kInvalidArgument,  // a caller-supplied value is wrong (CLI flag, config key, API argument)
  kNotFound,         // a file, key, tensor or token that should exist does not
  kIo,               // the OS refused a read, write, map or open
  kInvalidFormat,    // untrusted input (model file, request, template) is malformed
  kUnsupported,      // well-formed but not implemented here (GGUF v1, unknown tensor type, ...)
  kOutOfRange,       // a count, length or index exceeds a limit
  kContextFull,      // the KV cache has no room left
  kSecurity,         // a signature, hash or policy check failed
  kCancelled,        // the caller asked to stop
  kInternal,         // a bug: an invariant did not hold
};

std::string_view error_code_name(ErrorCode code);

struct Error {
  ErrorCode code = ErrorCode::kInternal;
  std::string message;  // names the file, key, tensor or field and what is wrong with it

  // "invalid format: tensor 'blk.0.attn_q.weight': offset 123 is not aligned to 32"
  std::string to_string() const;
};

inline Error make_error(ErrorCode code, std::string message) { return Error{code, std::move(message)}; }

// Result<T> holds either a T or an Error (like C++23 std::expected<T, Error>).
template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : state_(std::in_place_index<0>, std::move(value)) {}
  Result(Error error) : state_(std::in_place_index<1>, std::move(error)) {}

  bool has_value() const { return state_.index() == 0; }
  explicit operator bool() const { return has_value(); }

  T& value() & {
    assert(has_value());
    return std::get<0>(state_);
  }
  const T& value() const& {
    assert(has_value());
    return std::get<0>(state_);
  }
  T&& value() && {
    assert(has_value());
    return std::get<0>(std::move(state_));
  }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const Error& error() const& {
    assert(!has_value());
    return std::get<1>(state_);
  }
  Error&& error() && {
    assert(!has_value());
    return std::get<1>(std::move(state_));
  }

  template <class U>
  T value_or(U&& fallback) const& {
    return has_value() ? value() : static_cast<T>(std::forward<U>(fallback));
  }

 private:
  std::variant<T, Error> state_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)), ok_(false) {}

  bool has_value() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const& {
    assert(!ok_);
    return error_;
  }
  Error&& error() && {
    assert(!ok_);
    return std::move(error_);
  }

 private:
  Error error_;
  bool ok_ = true;
};

using Status = Result<void>;

}  // namespace edgelm

#define EDGELM_CONCAT_INNER(a, b) a##b
#define EDGELM_CONCAT(a, b) EDGELM_CONCAT_INNER(a, b)

// EDGELM_TRY(auto x, expr): evaluates a Result-returning expr; returns its error, or binds its value.
#define EDGELM_TRY(decl, expr) EDGELM_TRY_IMPL(EDGELM_CONCAT(edgelm_try_, __LINE__), decl, expr)
#define EDGELM_TRY_IMPL(tmp, decl, expr)      \
  auto tmp = (expr);                          \
  if (!tmp.has_value()) return std::move(tmp).error(); \
  decl = std::move(tmp).value()

// EDGELM_CHECK(status_expr): returns the error of a Status-returning expression.
#define EDGELM_CHECK(expr)                                        \
  do {                                                            \
    auto edgelm_status_ = (expr);                                 \
    if (!edgelm_status_.has_value()) return std::move(edgelm_status_).error(); \
  } while (0)
