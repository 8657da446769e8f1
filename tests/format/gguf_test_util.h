// Helpers shared by the GGUF tests: the real model files, raw file bytes, a little-endian builder
// for hand-crafted (often malformed) files, and a canonical listing matching
// tests/reference/gguf_reader.py.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

#include "common/test_paths.h"
#include "edgelm/gguf.h"

namespace edgelm::format::test {

inline std::filesystem::path stories_path() {
  return edgelm::test::shared_models_dir() / "stories260K" / "stories260K.gguf";
}
inline std::filesystem::path stories_v1_path() {
  return edgelm::test::shared_models_dir() / "stories260K" / "tinyllamas-stories-260k-f32.v1.gguf";
}

// Every *.gguf under ../shared/models, sorted.
inline std::vector<std::filesystem::path> real_gguf_files() {
  std::vector<std::filesystem::path> files;
  for (const auto& entry :
       std::filesystem::recursive_directory_iterator(edgelm::test::shared_models_dir())) {
    if (entry.is_regular_file() && entry.path().extension() == ".gguf")
      files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

inline std::vector<uint8_t> read_bytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

inline void write_bytes(const std::filesystem::path& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
}

// Appends little-endian fields, independent of the writer under test.
class ByteBuilder {
 public:
  ByteBuilder& u8(uint8_t v) { return raw(&v, 1); }
  ByteBuilder& u32(uint32_t v) { return le(v, 4); }
  ByteBuilder& u64(uint64_t v) { return le(v, 8); }
  ByteBuilder& str(std::string_view s) {
    u64(s.size());
    return raw(s.data(), s.size());
  }
  ByteBuilder& magic() { return raw("GGUF", 4); }
  // magic, version, tensor count, kv count
  ByteBuilder& header(uint32_t version, uint64_t n_tensors, uint64_t n_kv) {
    return magic().u32(version).u64(n_tensors).u64(n_kv);
  }
  ByteBuilder& kv_u32(std::string_view key, uint32_t v) { return str(key).u32(4).u32(v); }
  ByteBuilder& tensor(std::string_view name, std::vector<uint64_t> ne, uint32_t type,
                      uint64_t offset) {
    str(name).u32(static_cast<uint32_t>(ne.size()));
    for (uint64_t d : ne) u64(d);
    return u32(type).u64(offset);
  }
  ByteBuilder& pad_to(size_t alignment) {
    while (bytes.size() % alignment != 0) bytes.push_back(0);
    return *this;
  }
  ByteBuilder& zeros(size_t n) {
    bytes.insert(bytes.end(), n, 0);
    return *this;
  }

  std::vector<uint8_t> bytes;

 private:
  ByteBuilder& le(uint64_t v, int n) {
    for (int i = 0; i < n; ++i) bytes.push_back(static_cast<uint8_t>(v >> (8 * i)));
    return *this;
  }
  ByteBuilder& raw(const void* p, size_t n) {
    const auto* b = static_cast<const uint8_t*>(p);
    bytes.insert(bytes.end(), b, b + n);
    return *this;
  }
};

// --- structural equality (NaN-free files) ---

inline bool arrays_equal(const GgufArray& a, const GgufArray& b) {
  if (a.elem_type != b.elem_type || a.strings != b.strings || a.ints != b.ints ||
      a.floats != b.floats || a.arrays.size() != b.arrays.size()) {
    return false;
  }
  for (size_t i = 0; i < a.arrays.size(); ++i) {
    if (!arrays_equal(a.arrays[i], b.arrays[i])) return false;
  }
  return true;
}

inline bool values_equal(const GgufValue& a, const GgufValue& b) {
  if (a.type != b.type || a.data.index() != b.data.index()) return false;
  if (const auto* x = std::get_if<GgufArray>(&a.data))
    return arrays_equal(*x, std::get<GgufArray>(b.data));
  if (const auto* x = std::get_if<uint64_t>(&a.data)) return *x == std::get<uint64_t>(b.data);
  if (const auto* x = std::get_if<int64_t>(&a.data)) return *x == std::get<int64_t>(b.data);
  if (const auto* x = std::get_if<double>(&a.data)) return *x == std::get<double>(b.data);
  if (const auto* x = std::get_if<bool>(&a.data)) return *x == std::get<bool>(b.data);
  return std::get<std::string>(a.data) == std::get<std::string>(b.data);
}

// Same header, metadata and tensor infos (tensor bytes are compared by the caller).
inline bool same_contents(const GgufFile& a, const GgufFile& b) {
  if (a.version() != b.version() || a.alignment() != b.alignment() ||
      a.data_offset() != b.data_offset() || a.metadata().size() != b.metadata().size() ||
      a.tensors().size() != b.tensors().size()) {
    return false;
  }
  for (size_t i = 0; i < a.metadata().size(); ++i) {
    if (a.metadata()[i].first != b.metadata()[i].first ||
        !values_equal(a.metadata()[i].second, b.metadata()[i].second)) {
      return false;
    }
  }
  for (size_t i = 0; i < a.tensors().size(); ++i) {
    const GgufTensorInfo& x = a.tensors()[i];
    const GgufTensorInfo& y = b.tensors()[i];
    if (x.name != y.name || x.ne != y.ne || x.type != y.type || x.offset != y.offset ||
        x.n_elements != y.n_elements || x.n_bytes != y.n_bytes) {
      return false;
    }
  }
  return true;
}

// --- the listing format of tests/reference/gguf_reader.py (appended to `out`) ---

inline void render_string(std::string_view s, std::string& out) {
  for (unsigned char c : s) {
    if (c >= 0x20 && c <= 0x7e && c != '\\') {
      out += static_cast<char>(c);
    } else {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02x", c);
      out += hex;
    }
  }
}

inline void render_float(double v, std::string& out) {
  uint64_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  char hex[24];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(bits));
  out += hex;
}

inline void render_int(GgufType type, int64_t bits, std::string& out) {
  if (type == GgufType::kBool) {
    out += bits != 0 ? "true" : "false";
  } else if (type == GgufType::kUint64) {
    out += std::to_string(static_cast<uint64_t>(bits));
  } else {
    out += std::to_string(bits);
  }
}

inline void render_array(const GgufArray& a, std::string& out) {
  out += "array ";
  out += gguf_type_name(a.elem_type);
  out += ' ';
  out += std::to_string(a.size());
  out += '\n';
  for (const auto& s : a.strings) {
    out += "v ";
    render_string(s, out);
    out += '\n';
  }
  for (int64_t i : a.ints) {
    out += "v ";
    render_int(a.elem_type, i, out);
    out += '\n';
  }
  for (double f : a.floats) {
    out += "v ";
    render_float(f, out);
    out += '\n';
  }
  for (const auto& inner : a.arrays) render_array(inner, out);
}

inline void render_value(const GgufValue& v, std::string& out) {
  if (const auto* a = std::get_if<GgufArray>(&v.data)) {
    render_array(*a, out);
    return;
  }
  out += "v ";
  if (const auto* u = std::get_if<uint64_t>(&v.data)) out += std::to_string(*u);
  if (const auto* i = std::get_if<int64_t>(&v.data)) out += std::to_string(*i);
  if (const auto* d = std::get_if<double>(&v.data)) render_float(*d, out);
  if (const auto* b = std::get_if<bool>(&v.data)) out += *b ? "true" : "false";
  if (const auto* s = std::get_if<std::string>(&v.data)) render_string(*s, out);
  out += '\n';
}

inline std::string render_listing(const GgufFile& f) {
  std::string out = "version " + std::to_string(f.version()) + " alignment " +
                    std::to_string(f.alignment()) + " tensors " +
                    std::to_string(f.tensors().size()) + " kv " +
                    std::to_string(f.metadata().size()) + "\n";
  for (const auto& [key, value] : f.metadata()) {
    out += "kv ";
    render_string(key, out);
    out += ' ';
    out += gguf_type_name(value.type);
    out += '\n';
    render_value(value, out);
  }
  for (const auto& t : f.tensors()) {
    out += "tensor ";
    render_string(t.name, out);
    out += ' ';
    out += std::to_string(static_cast<uint32_t>(t.type));
    out += ' ';
    for (size_t d = 0; d < t.ne.size(); ++d) {
      if (d > 0) out += ',';
      out += std::to_string(t.ne[d]);
    }
    out += ' ';
    out += std::to_string(t.offset);
    out += ' ';
    out += std::to_string(t.n_bytes);
    out += '\n';
  }
  return out;
}

}  // namespace edgelm::format::test
