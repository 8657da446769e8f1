// Typed metadata getters of GgufFile.
#include <limits>

#include "edgelm/gguf.h"
#include "format/gguf_internal.h"

namespace edgelm::format {
namespace {

Error not_found(std::string_view key) {
  return make_error(ErrorCode::kNotFound, "key " + detail::quote_name(key) + " not found");
}

Error wrong_type(std::string_view key, const GgufValue& value, std::string_view expected) {
  return make_error(ErrorCode::kInvalidFormat, "key " + detail::quote_name(key) + ": stored as " +
                                                   std::string(gguf_type_name(value.type)) +
                                                   ", expected " + std::string(expected));
}

Error does_not_fit(std::string_view key, const std::string& value, std::string_view target) {
  return make_error(ErrorCode::kInvalidFormat, "key " + detail::quote_name(key) + ": value " +
                                                   value + " does not fit " + std::string(target));
}

}  // namespace

Result<std::string> GgufFile::get_string(std::string_view key) const {
  const GgufValue* v = find(key);
  if (v == nullptr) return not_found(key);
  if (v->type != GgufType::kString) return wrong_type(key, *v, "string");
  return std::get<std::string>(v->data);
}

Result<uint64_t> GgufFile::get_uint(std::string_view key) const {
  const GgufValue* v = find(key);
  if (v == nullptr) return not_found(key);
  if (detail::is_unsigned_int(v->type)) return std::get<uint64_t>(v->data);
  if (detail::is_signed_int(v->type)) {
    const int64_t i = std::get<int64_t>(v->data);
    if (i < 0) return does_not_fit(key, std::to_string(i), "an unsigned integer");
    return static_cast<uint64_t>(i);
  }
  return wrong_type(key, *v, "an integer");
}

Result<int64_t> GgufFile::get_int(std::string_view key) const {
  const GgufValue* v = find(key);
  if (v == nullptr) return not_found(key);
  if (detail::is_signed_int(v->type)) return std::get<int64_t>(v->data);
  if (detail::is_unsigned_int(v->type)) {
    const uint64_t u = std::get<uint64_t>(v->data);
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return does_not_fit(key, std::to_string(u), "a signed 64-bit integer");
    }
    return static_cast<int64_t>(u);
  }
  return wrong_type(key, *v, "an integer");
}

Result<double> GgufFile::get_float(std::string_view key) const {
  const GgufValue* v = find(key);
  if (v == nullptr) return not_found(key);
  if (!detail::is_float(v->type)) return wrong_type(key, *v, "f32 or f64");
  return std::get<double>(v->data);
}

Result<bool> GgufFile::get_bool(std::string_view key) const {
  const GgufValue* v = find(key);
  if (v == nullptr) return not_found(key);
  if (v->type != GgufType::kBool) return wrong_type(key, *v, "bool");
  return std::get<bool>(v->data);
}

Result<const GgufArray*> GgufFile::get_array(std::string_view key) const {
  const GgufValue* v = find(key);
  if (v == nullptr) return not_found(key);
  if (v->type != GgufType::kArray) return wrong_type(key, *v, "array");
  return &std::get<GgufArray>(v->data);
}

Result<std::string> GgufFile::get_string_or(std::string_view key, std::string fallback) const {
  if (find(key) == nullptr) return fallback;
  return get_string(key);
}

Result<uint64_t> GgufFile::get_uint_or(std::string_view key, uint64_t fallback) const {
  if (find(key) == nullptr) return fallback;
  return get_uint(key);
}

Result<double> GgufFile::get_float_or(std::string_view key, double fallback) const {
  if (find(key) == nullptr) return fallback;
  return get_float(key);
}

Result<bool> GgufFile::get_bool_or(std::string_view key, bool fallback) const {
  if (find(key) == nullptr) return fallback;
  return get_bool(key);
}

}  // namespace edgelm::format
