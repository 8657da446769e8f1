// GGUF v3 writer: header, metadata and tensor infos, then each tensor's bytes at an aligned offset,
// zero-padded. The layout matches what GgufWriter::from_file needs to reproduce its own files.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <limits>

#include "edgelm/gguf.h"
#include "format/gguf_internal.h"

namespace edgelm::format {

using detail::quote_name;

namespace {

Error invalid_argument(std::string message) {
  return make_error(ErrorCode::kInvalidArgument, std::move(message));
}

class Encoder {
 public:
  explicit Encoder(std::vector<uint8_t>& out) : out_(out) {}

  template <class T>
  void put(T v) {
    uint64_t bits;
    if constexpr (std::is_same_v<T, float>) {
      bits = std::bit_cast<uint32_t>(v);
    } else if constexpr (std::is_same_v<T, double>) {
      bits = std::bit_cast<uint64_t>(v);
    } else {
      bits = static_cast<uint64_t>(v);
    }
    for (size_t i = 0; i < sizeof(T); ++i) out_.push_back(static_cast<uint8_t>(bits >> (8 * i)));
  }

  void put_string(std::string_view s) {
    put<uint64_t>(s.size());
    out_.insert(out_.end(), s.begin(), s.end());
  }

  // Writes the bytes of `value`; `what` names the key (and element) for errors.
  Status put_value(const GgufValue& value, const std::string& what) {
    const GgufType type = value.type;
    if (detail::is_unsigned_int(type) || detail::is_signed_int(type)) {
      int64_t bits;
      if (const auto* u = std::get_if<uint64_t>(&value.data)) {
        bits = static_cast<int64_t>(*u);
        if (detail::is_signed_int(type) && type != GgufType::kInt64 &&
            *u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
          return out_of_range(what, std::to_string(*u), type);
        }
      } else if (const auto* i = std::get_if<int64_t>(&value.data)) {
        bits = *i;
        if (detail::is_unsigned_int(type) && *i < 0)
          return out_of_range(what, std::to_string(*i), type);
      } else {
        return mismatch(what, type);
      }
      return put_int(type, bits, detail::is_unsigned_int(type), what);
    }
    if (detail::is_float(type)) {
      const auto* d = std::get_if<double>(&value.data);
      if (d == nullptr) return mismatch(what, type);
      put_float(type, *d);
      return {};
    }
    if (type == GgufType::kBool) {
      const auto* b = std::get_if<bool>(&value.data);
      if (b == nullptr) return mismatch(what, type);
      put<uint8_t>(*b ? 1 : 0);
      return {};
    }
    if (type == GgufType::kString) {
      const auto* s = std::get_if<std::string>(&value.data);
      if (s == nullptr) return mismatch(what, type);
      put_string(*s);
      return {};
    }
    if (type == GgufType::kArray) {
      const auto* a = std::get_if<GgufArray>(&value.data);
      if (a == nullptr) return mismatch(what, type);
      return put_array(*a, what, 1);
    }
    return invalid_argument(what + ": unknown value type id " +
                            std::to_string(static_cast<uint32_t>(type)));
  }

 private:
  static Error mismatch(const std::string& what, GgufType type) {
    return invalid_argument(what + ": the value held does not match its type " +
                            std::string(gguf_type_name(type)));
  }

  static Error out_of_range(const std::string& what, const std::string& v, GgufType type) {
    return invalid_argument(what + ": value " + v + " does not fit " +
                            std::string(gguf_type_name(type)));
  }

  // `bits` is the value as int64 (u64 bit for bit when `is_unsigned`).
  Status put_int(GgufType type, int64_t bits, bool is_unsigned, const std::string& what) {
    int64_t lo = 0;
    int64_t hi = 0;
    switch (type) {
      case GgufType::kUint8:
        hi = 0xff;
        break;
      case GgufType::kUint16:
        hi = 0xffff;
        break;
      case GgufType::kUint32:
        hi = 0xffffffff;
        break;
      case GgufType::kInt8:
        lo = -128, hi = 127;
        break;
      case GgufType::kInt16:
        lo = -32768, hi = 32767;
        break;
      case GgufType::kInt32:
        lo = std::numeric_limits<int32_t>::min(), hi = std::numeric_limits<int32_t>::max();
        break;
      case GgufType::kBool:
        hi = 1;
        break;
      default:  // 64-bit types take every bit pattern
        put<uint64_t>(static_cast<uint64_t>(bits));
        return {};
    }
    if (bits < lo || bits > hi) {
      return out_of_range(
          what, is_unsigned ? std::to_string(static_cast<uint64_t>(bits)) : std::to_string(bits),
          type);
    }
    const uint32_t size = detail::fixed_value_size(type);
    for (uint32_t i = 0; i < size; ++i)
      out_.push_back(static_cast<uint8_t>(static_cast<uint64_t>(bits) >> (8 * i)));
    return {};
  }

  void put_float(GgufType type, double v) {
    if (type == GgufType::kFloat32) {
      put<float>(static_cast<float>(v));
    } else {
      put<double>(v);
    }
  }

  Status put_array(const GgufArray& a, const std::string& what, int depth) {
    if (depth > detail::kMaxArrayDepth) {
      return invalid_argument(what + ": arrays nested deeper than " +
                              std::to_string(detail::kMaxArrayDepth) + " levels");
    }
    const GgufType elem = a.elem_type;
    if (!detail::is_known_value_type(static_cast<uint32_t>(elem))) {
      return invalid_argument(what + ": unknown array element type id " +
                              std::to_string(static_cast<uint32_t>(elem)));
    }
    // Exactly one vector may hold elements: the one elem_type selects.
    const bool uses_strings = elem == GgufType::kString;
    const bool uses_arrays = elem == GgufType::kArray;
    const bool uses_floats = detail::is_float(elem);
    const bool uses_ints = !uses_strings && !uses_arrays && !uses_floats;
    if ((!uses_strings && !a.strings.empty()) || (!uses_arrays && !a.arrays.empty()) ||
        (!uses_floats && !a.floats.empty()) || (!uses_ints && !a.ints.empty())) {
      return invalid_argument(what + ": array of " + std::string(gguf_type_name(elem)) +
                              " has elements in a vector of another type");
    }
    put<uint32_t>(static_cast<uint32_t>(elem));
    put<uint64_t>(a.size());
    const auto elem_what = [&](size_t i) { return what + "[" + std::to_string(i) + "]"; };
    if (uses_strings) {
      for (const std::string& s : a.strings) put_string(s);
    } else if (uses_arrays) {
      for (size_t i = 0; i < a.arrays.size(); ++i) {
        EDGELM_CHECK(put_array(a.arrays[i], elem_what(i), depth + 1));
      }
    } else if (uses_floats) {
      for (double v : a.floats) put_float(elem, v);
    } else {
      for (size_t i = 0; i < a.ints.size(); ++i) {
        EDGELM_CHECK(put_int(elem, a.ints[i], detail::is_unsigned_int(elem), elem_what(i)));
      }
    }
    return {};
  }

  std::vector<uint8_t>& out_;
};

uint64_t align_up(uint64_t v, uint64_t alignment) {
  return (v + alignment - 1) / alignment * alignment;
}

// Closes (and on failure removes) a temporary file.
struct TempFile {
  std::string path;
  int fd = -1;
  bool keep = false;
  ~TempFile() {
    if (fd >= 0) ::close(fd);
    if (!keep && !path.empty()) ::unlink(path.c_str());
  }
};

Status write_all(int fd, const uint8_t* data, size_t size, const std::string& path) {
  while (size > 0) {
    const ssize_t n = ::write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return make_error(ErrorCode::kIo,
                        detail::quote_path(path) + ": write failed: " + std::strerror(errno));
    }
    data += n;
    size -= static_cast<size_t>(n);
  }
  return {};
}

}  // namespace

GgufWriter::GgufWriter() = default;

GgufWriter GgufWriter::from_file(const GgufFile& file) {
  GgufWriter writer;
  writer.metadata_ = file.metadata();
  writer.alignment_ = file.alignment();
  writer.tensors_.reserve(file.tensors().size());
  for (const GgufTensorInfo& info : file.tensors()) {
    const std::span<const uint8_t> data = file.tensor_data(info);
    writer.tensors_.push_back(Tensor{info, std::vector<uint8_t>(data.begin(), data.end())});
  }
  return writer;
}

void GgufWriter::set(std::string key, GgufValue value) {
  if (key == detail::kAlignmentKey) {
    if (const auto* u = std::get_if<uint64_t>(&value.data)) alignment_ = *u;
  }
  for (auto& [k, v] : metadata_) {
    if (k == key) {
      v = std::move(value);
      return;
    }
  }
  metadata_.emplace_back(std::move(key), std::move(value));
}

void GgufWriter::remove(std::string_view key) {
  std::erase_if(metadata_, [&](const auto& kv) { return kv.first == key; });
  if (key == detail::kAlignmentKey) alignment_ = detail::kDefaultAlignment;
}

void GgufWriter::set_alignment(uint64_t alignment) {
  const bool has_key = std::any_of(metadata_.begin(), metadata_.end(), [](const auto& kv) {
    return kv.first == detail::kAlignmentKey;
  });
  alignment_ = alignment;
  if (alignment != detail::kDefaultAlignment || has_key) {
    // A value that does not fit u32 is reported by to_bytes().
    set(std::string(detail::kAlignmentKey), GgufValue{GgufType::kUint32, alignment});
  }
}

Status GgufWriter::add_tensor(std::string name, TensorType type, std::vector<uint64_t> ne,
                              std::span<const uint8_t> data) {
  const std::string what = "tensor " + quote_name(name);
  if (name.empty()) return invalid_argument("tensor name is empty");
  for (const Tensor& t : tensors_) {
    if (t.info.name == name) return invalid_argument(what + ": added twice");
  }
  const TensorTypeTraits* traits = find_tensor_type(static_cast<uint32_t>(type));
  if (traits == nullptr) {
    return invalid_argument(what + ": unknown tensor type id " +
                            std::to_string(static_cast<uint32_t>(type)));
  }
  if (ne.empty() || ne.size() > detail::kMaxDims) {
    return invalid_argument(what + ": " + std::to_string(ne.size()) + " dimensions, expected 1..4");
  }
  uint64_t n_elements = 1;
  for (size_t d = 0; d < ne.size(); ++d) {
    if (ne[d] == 0) return invalid_argument(what + ": ne[" + std::to_string(d) + "] is 0");
    if (ne[d] > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) / n_elements) {
      return invalid_argument(what + ": element count overflows");
    }
    n_elements *= ne[d];
  }
  if (ne[0] % traits->block_size != 0) {
    return invalid_argument(what + ": ne[0]=" + std::to_string(ne[0]) +
                            " is not a multiple of the " + std::string(traits->name) +
                            " block size " + std::to_string(traits->block_size));
  }
  auto n_bytes = tensor_bytes(type, n_elements);
  if (!n_bytes) return invalid_argument(what + ": " + n_bytes.error().message);
  if (data.size() != *n_bytes) {
    return invalid_argument(what + ": " + std::to_string(data.size()) + " data bytes, expected " +
                            std::to_string(*n_bytes));
  }
  Tensor tensor;
  tensor.info.name = std::move(name);
  tensor.info.ne = std::move(ne);
  tensor.info.type = type;
  tensor.info.n_elements = n_elements;
  tensor.info.n_bytes = *n_bytes;
  tensor.data.assign(data.begin(), data.end());
  tensors_.push_back(std::move(tensor));
  return {};
}

namespace {

// Serializes everything up to the data section, including the padding before it.
Result<std::vector<uint8_t>> encode_header(
    const std::vector<std::pair<std::string, GgufValue>>& metadata,
    const std::vector<GgufTensorInfo>& infos, uint64_t alignment) {
  if (!detail::is_power_of_two(alignment) || alignment > std::numeric_limits<uint32_t>::max()) {
    return invalid_argument("alignment " + std::to_string(alignment) +
                            " is not a power of two that fits u32");
  }
  std::vector<uint8_t> out;
  Encoder enc(out);
  for (uint8_t c : detail::kGgufMagic) enc.put<uint8_t>(c);
  enc.put<uint32_t>(detail::kWriteVersion);
  enc.put<uint64_t>(infos.size());
  enc.put<uint64_t>(metadata.size());
  for (const auto& [key, value] : metadata) {
    const std::string what = "key " + quote_name(key);
    if (key == detail::kAlignmentKey) {
      const auto* u = std::get_if<uint64_t>(&value.data);
      if (value.type != GgufType::kUint32 || u == nullptr || *u != alignment) {
        return invalid_argument(what + ": must be a u32 equal to the writer's alignment " +
                                std::to_string(alignment));
      }
    }
    enc.put_string(key);
    enc.put<uint32_t>(static_cast<uint32_t>(value.type));
    EDGELM_CHECK(enc.put_value(value, what));
  }
  for (const GgufTensorInfo& info : infos) {
    enc.put_string(info.name);
    enc.put<uint32_t>(static_cast<uint32_t>(info.ne.size()));
    for (uint64_t ne : info.ne) enc.put<uint64_t>(ne);
    enc.put<uint32_t>(static_cast<uint32_t>(info.type));
    enc.put<uint64_t>(info.offset);
  }
  // A file without tensors ends right after its header (as gguf-py writes vocab-only files).
  if (!infos.empty()) out.resize(align_up(out.size(), alignment), 0);
  return out;
}

}  // namespace

std::vector<GgufTensorInfo> GgufWriter::layout() const {
  std::vector<GgufTensorInfo> infos;
  infos.reserve(tensors_.size());
  uint64_t offset = 0;
  for (const Tensor& t : tensors_) {
    infos.push_back(t.info);
    infos.back().offset = offset;
    offset = align_up(offset + t.data.size(), alignment_);
  }
  return infos;
}

Result<std::vector<uint8_t>> GgufWriter::to_bytes() const {
  const std::vector<GgufTensorInfo> infos = layout();
  EDGELM_TRY(std::vector<uint8_t> out, encode_header(metadata_, infos, alignment_));
  if (!infos.empty()) out.reserve(out.size() + infos.back().offset + infos.back().n_bytes);
  for (const Tensor& t : tensors_) {
    out.insert(out.end(), t.data.begin(), t.data.end());
    out.resize(align_up(out.size(), alignment_), 0);
  }
  return out;
}

Status GgufWriter::write(const std::filesystem::path& path) const {
  // The header is serialized first so a bad value fails before any file is created.
  EDGELM_TRY(const std::vector<uint8_t> header, encode_header(metadata_, layout(), alignment_));

  const std::filesystem::path dir = path.has_parent_path() ? path.parent_path() : ".";
  TempFile tmp;
  std::string temp_name = path.filename().string();
  temp_name.insert(0, 1, '.');  // hidden while incomplete
  temp_name += ".tmp.XXXXXX";
  tmp.path = (dir / temp_name).string();
  tmp.fd = ::mkstemp(tmp.path.data());
  if (tmp.fd < 0) {
    const std::string reason = std::strerror(errno);
    tmp.path.clear();
    return make_error(ErrorCode::kIo, detail::quote_path(path.string()) +
                                          ": cannot create a temporary file in '" + dir.string() +
                                          "': " + reason);
  }
  ::fchmod(tmp.fd, 0644);  // mkstemp creates 0600; model files are normally world-readable
  EDGELM_CHECK(write_all(tmp.fd, header.data(), header.size(), tmp.path));
  uint64_t written = 0;
  static constexpr uint8_t kZeros[4096] = {};
  for (const Tensor& t : tensors_) {
    EDGELM_CHECK(write_all(tmp.fd, t.data.data(), t.data.size(), tmp.path));
    written += t.data.size();
    for (uint64_t pad = align_up(written, alignment_) - written; pad > 0;) {
      const uint64_t n = std::min<uint64_t>(pad, sizeof kZeros);
      EDGELM_CHECK(write_all(tmp.fd, kZeros, n, tmp.path));
      pad -= n;
      written += n;
    }
  }
  if (::fsync(tmp.fd) != 0 || ::close(tmp.fd) != 0) {
    tmp.fd = -1;
    return make_error(ErrorCode::kIo,
                      detail::quote_path(tmp.path) + ": cannot flush: " + std::strerror(errno));
  }
  tmp.fd = -1;
  if (::rename(tmp.path.c_str(), path.c_str()) != 0) {
    return make_error(ErrorCode::kIo, detail::quote_path(path.string()) + ": cannot rename '" +
                                          tmp.path + "' into place: " + std::strerror(errno));
  }
  tmp.keep = true;
  return {};
}

}  // namespace edgelm::format
