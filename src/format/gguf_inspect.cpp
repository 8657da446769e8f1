#include "edgelm/gguf_inspect.h"

#include <cstdio>
#include <map>

#include "format/gguf_internal.h"

namespace edgelm::format {
namespace {

// Length of the valid UTF-8 sequence starting at s[i], or 0 when it is not valid.
size_t utf8_sequence_length(std::string_view s, size_t i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  size_t n = 0;
  uint32_t min = 0;
  uint32_t cp = 0;
  if (b0 < 0x80) return 1;
  if ((b0 & 0xe0) == 0xc0)
    n = 2, min = 0x80, cp = b0 & 0x1f;
  else if ((b0 & 0xf0) == 0xe0)
    n = 3, min = 0x800, cp = b0 & 0x0f;
  else if ((b0 & 0xf8) == 0xf0)
    n = 4, min = 0x10000, cp = b0 & 0x07;
  else
    return 0;
  if (i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    if ((b & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (b & 0x3f);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
  return n;
}

// Valid UTF-8, at most max_bytes of it (cut at a character boundary), with the cut noted.
std::string display_string(std::string_view s, size_t max_bytes) {
  std::string out;
  size_t i = 0;
  while (i < s.size() && out.size() < max_bytes) {
    const size_t n = utf8_sequence_length(s, i);
    if (n == 0) {
      out += "\xef\xbf\xbd";  // U+FFFD
      ++i;
    } else {
      out.append(s, i, n);
      i += n;
    }
  }
  if (i < s.size()) out += "...(" + std::to_string(s.size()) + " bytes)";
  return out;
}

nlohmann::json describe_array(const GgufArray& a, const GgufDescribeOptions& options) {
  nlohmann::json items = nlohmann::json::array();
  const uint64_t shown = std::min<uint64_t>(a.size(), options.max_array_items);
  for (uint64_t i = 0; i < shown; ++i) {
    switch (a.elem_type) {
      case GgufType::kString:
        items.push_back(display_string(a.strings[i], options.max_string_bytes));
        break;
      case GgufType::kArray:
        items.push_back(describe_array(a.arrays[i], options));
        break;
      case GgufType::kFloat32:
      case GgufType::kFloat64:
        items.push_back(a.floats[i]);
        break;
      case GgufType::kBool:
        items.push_back(a.ints[i] != 0);
        break;
      case GgufType::kUint64:
        items.push_back(static_cast<uint64_t>(a.ints[i]));
        break;
      default:
        items.push_back(a.ints[i]);
        break;
    }
  }
  return {{"elem_type", gguf_type_name(a.elem_type)},
          {"count", a.size()},
          {"items", std::move(items)},
          {"truncated", shown < a.size()}};
}

nlohmann::json describe_value(const GgufValue& v, const GgufDescribeOptions& options) {
  if (const auto* u = std::get_if<uint64_t>(&v.data)) return *u;
  if (const auto* i = std::get_if<int64_t>(&v.data)) return *i;
  if (const auto* d = std::get_if<double>(&v.data)) return *d;
  if (const auto* b = std::get_if<bool>(&v.data)) return *b;
  if (const auto* s = std::get_if<std::string>(&v.data))
    return display_string(*s, options.max_string_bytes);
  return describe_array(std::get<GgufArray>(v.data), options);
}

std::string pad_right(std::string s, size_t width) {
  if (s.size() < width) s.append(width - s.size(), ' ');
  return s;
}

}  // namespace

nlohmann::json describe_gguf(const GgufFile& file, const GgufDescribeOptions& options) {
  nlohmann::json metadata = nlohmann::json::array();
  for (const auto& [key, value] : file.metadata()) {
    nlohmann::json entry = {{"key", display_string(key, options.max_string_bytes)},
                            {"type", gguf_type_name(value.type)}};
    nlohmann::json described = describe_value(value, options);
    if (value.type == GgufType::kArray) {
      entry.update(described);
    } else {
      entry["value"] = std::move(described);
    }
    metadata.push_back(std::move(entry));
  }
  nlohmann::json tensors = nlohmann::json::array();
  uint64_t total_elements = 0;
  uint64_t total_bytes = 0;
  std::map<std::string, uint64_t> by_type;
  for (const GgufTensorInfo& t : file.tensors()) {
    tensors.push_back({{"name", display_string(t.name, options.max_string_bytes)},
                       {"type", tensor_type_name(t.type)},
                       {"ne", t.ne},
                       {"offset", t.offset},
                       {"n_elements", t.n_elements},
                       {"n_bytes", t.n_bytes}});
    total_elements += t.n_elements;
    total_bytes += t.n_bytes;
    ++by_type[std::string(tensor_type_name(t.type))];
  }
  return {{"version", file.version()},
          {"alignment", file.alignment()},
          {"data_offset", file.data_offset()},
          {"file_size", file.bytes().size()},
          {"metadata", std::move(metadata)},
          {"tensors", std::move(tensors)},
          {"totals",
           {{"n_tensors", file.tensors().size()},
            {"n_elements", total_elements},
            {"n_bytes", total_bytes},
            {"by_type", by_type}}}};
}

std::string format_gguf_description(const nlohmann::json& d) {
  try {
    std::string out = "GGUF v" + d.at("version").dump() + ", " + d.at("file_size").dump() +
                      " bytes, alignment " + d.at("alignment").dump() + ", data at offset " +
                      d.at("data_offset").dump() + "\n\nmetadata (" +
                      std::to_string(d.at("metadata").size()) + " keys):\n";
    size_t key_width = 0;
    for (const auto& m : d.at("metadata"))
      key_width = std::max(key_width, m.at("key").get_ref<const std::string&>().size());
    for (const auto& m : d.at("metadata")) {
      std::string type = m.at("type").get<std::string>();
      std::string value;
      if (type == "array") {
        type = "array<" + m.at("elem_type").get<std::string>() + ">[" + m.at("count").dump() + "]";
        value = m.at("items").dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
        if (m.at("truncated").get<bool>()) value.insert(value.size() - 1, ", ...");
      } else {
        value = m.at("value").dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
      }
      out += "  " + pad_right(m.at("key").get<std::string>(), key_width) + "  " +
             pad_right(type, 20) + " " + value + "\n";
    }
    const auto& totals = d.at("totals");
    out += "\ntensors (" + totals.at("n_tensors").dump() + ", " + totals.at("n_elements").dump() +
           " elements, " + totals.at("n_bytes").dump() + " bytes):\n";
    size_t name_width = 0;
    for (const auto& t : d.at("tensors"))
      name_width = std::max(name_width, t.at("name").get_ref<const std::string&>().size());
    for (const auto& t : d.at("tensors")) {
      out += "  " + pad_right(t.at("name").get<std::string>(), name_width) + "  " +
             pad_right(t.at("type").get<std::string>(), 8) + " " +
             pad_right(t.at("ne").dump(), 24) + " offset " + t.at("offset").dump() + ", " +
             t.at("n_bytes").dump() + " bytes\n";
    }
    return out;
  } catch (const nlohmann::json::exception& e) {
    return std::string("(not a GGUF description: ") + e.what() + ")\n";
  }
}

}  // namespace edgelm::format
