// A readable description of a GGUF file for `edgelm inspect`: metadata with long arrays and strings
// summarized, and the tensor table.
#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>

#include "edgelm/gguf.h"

namespace edgelm::format {

struct GgufDescribeOptions {
  size_t max_array_items = 8;  // arrays longer than this show their first items and a count
  size_t max_string_bytes =
      200;  // longer strings (chat templates) are cut, with their length noted
};

// {"version", "alignment", "data_offset", "file_size",
//  "metadata": [{"key", "type", "value"} | {"key", "type": "array", "elem_type", "count", "items",
//               "truncated"}],
//  "tensors": [{"name", "type", "ne", "offset", "n_elements", "n_bytes"}],
//  "totals": {"n_tensors", "n_elements", "n_bytes", "by_type": {type: count}}}
// Strings are made valid UTF-8 (invalid bytes become U+FFFD) so the JSON can always be dumped.
nlohmann::json describe_gguf(const GgufFile& file, const GgufDescribeOptions& options = {});

// The same description as aligned text: a metadata listing, then one line per tensor.
std::string format_gguf_description(const nlohmann::json& description);

}  // namespace edgelm::format
