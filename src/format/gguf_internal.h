// Constants and small helpers shared by the GGUF reader, writer and inspector.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "edgelm/gguf.h"

namespace edgelm::format::detail {

inline constexpr uint8_t kGgufMagic[4] = {'G', 'G', 'U', 'F'};
inline constexpr uint32_t kWriteVersion = 3;
inline constexpr uint64_t kDefaultAlignment = 32;
inline constexpr std::string_view kAlignmentKey = "general.alignment";
inline constexpr uint32_t kMaxDims = 4;
// Arrays of arrays nest at most this deep (the top-level array is depth 1); bounds recursion.
inline constexpr int kMaxArrayDepth = 8;

// Stored size of a fixed-size value type, 0 for string and array.
uint32_t fixed_value_size(GgufType type);
// True for the 13 type ids GGUF defines.
bool is_known_value_type(uint32_t id);
bool is_unsigned_int(GgufType type);
bool is_signed_int(GgufType type);
bool is_float(GgufType type);

inline bool is_power_of_two(uint64_t v) {
  return v != 0 && (v & (v - 1)) == 0;
}

// A file path in quotes for an error message. (Built by appending: GCC 12 -O3 reports a false
// -Wrestrict for the `"'" + std::string` form.)
inline std::string quote_path(std::string_view path) {
  std::string s;
  s.reserve(path.size() + 2);
  s += '\'';
  s += path;
  s += '\'';
  return s;
}

// A key or tensor name quoted for an error message: non-printable bytes escaped, long names cut.
std::string quote_name(std::string_view name);

}  // namespace edgelm::format::detail
