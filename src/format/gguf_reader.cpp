// GGUF v2/v3 parsing. The file is untrusted: every count and length is checked against the bytes
// that remain before anything is allocated, so memory use stays proportional to the file size.
#include <algorithm>
#include <bit>
#include <limits>
#include <map>
#include <numeric>
#include <type_traits>

#include "edgelm/gguf.h"
#include "format/gguf_internal.h"
#include "format/mapped_file.h"

namespace edgelm::format {

using detail::quote_name;

namespace {

// Everything parse_into() fills in.
struct ParsedFile {
  std::span<const uint8_t> bytes;
  uint32_t version = 0;
  uint64_t alignment = detail::kDefaultAlignment;
  uint64_t data_offset = 0;
  std::vector<std::pair<std::string, GgufValue>> metadata;
  std::map<std::string, size_t, std::less<>> key_index;
  std::vector<GgufTensorInfo> tensors;
  std::map<std::string, size_t, std::less<>> tensor_index;
};

// Smallest possible encodings, used to bound counts by the bytes left before allocating.
constexpr uint64_t kMinStringBytes = 8;                    // u64 length, empty text
constexpr uint64_t kMinKvBytes = kMinStringBytes + 4 + 1;  // key, type id, 1-byte value
constexpr uint64_t kMinArrayBytes = 4 + 8;                 // element type id, count
constexpr uint64_t kMinTensorInfoBytes =
    kMinStringBytes + 4 + 8 + 4 + 8;  // name, n_dims, ne[0], type, offset

// Limits far above any real model (the largest vocabularies hold ~1M strings in all their arrays),
// so that memory stays bounded even when a large file is crafted to widen into huge vectors.
constexpr uint64_t kMaxMetadataEntries = uint64_t{1} << 16;
constexpr uint64_t kMaxTensors = uint64_t{1} << 20;
constexpr uint64_t kMaxArrayElements = uint64_t{1} << 24;  // over all metadata arrays together

uint32_t byte_swap32(uint32_t v) {
  return (v >> 24) | ((v >> 8) & 0xff00u) | ((v << 8) & 0xff0000u) | (v << 24);
}

std::string at(uint64_t offset) {
  return " at offset " + std::to_string(offset);
}

Error invalid(std::string message) {
  return make_error(ErrorCode::kInvalidFormat, std::move(message));
}

// A bounds-checked little-endian cursor over the file bytes.
class Parser {
 public:
  explicit Parser(std::span<const uint8_t> bytes) : bytes_(bytes) {}

  uint64_t pos() const { return pos_; }
  uint64_t remaining() const { return bytes_.size() - pos_; }

  // `what` names the field for the error ("key 'x': string length").
  Status need(uint64_t n, const std::string& what) const {
    if (n > remaining()) {
      return invalid(what + at(pos_) + ": needs " + std::to_string(n) + " bytes but the file has " +
                     std::to_string(remaining()) + " left (truncated?)");
    }
    return {};
  }

  template <class T>
  Result<T> read(const std::string& what) {
    EDGELM_CHECK(need(sizeof(T), what));
    return take<T>();
  }

  // The caller has checked that sizeof(T) bytes remain.
  template <class T>
  T take() {
    uint64_t v = 0;
    for (size_t i = 0; i < sizeof(T); ++i) v |= uint64_t{bytes_[pos_ + i]} << (8 * i);
    pos_ += sizeof(T);
    if constexpr (std::is_same_v<T, float>) {
      return std::bit_cast<float>(static_cast<uint32_t>(v));
    } else if constexpr (std::is_same_v<T, double>) {
      return std::bit_cast<double>(v);
    } else {
      return static_cast<T>(v);
    }
  }

  // `index` >= 0 names an array element; the message is only built on error (vocabularies have
  // 100k+ strings).
  Result<std::string> read_string(const std::string& what, int64_t index = -1) {
    const auto name = [&] { return index < 0 ? what : what + "[" + std::to_string(index) + "]"; };
    if (remaining() < 8) return need(8, name() + " length").error();
    const uint64_t length = take<uint64_t>();
    if (length > remaining()) {
      return invalid(name() + at(pos_ - 8) + ": length " + std::to_string(length) +
                     " exceeds the " + std::to_string(remaining()) + " bytes left in the file");
    }
    std::string s(reinterpret_cast<const char*>(bytes_.data() + pos_), length);
    pos_ += length;
    return s;
  }

  // Reads a value of stored type `type`; `depth` counts enclosing arrays.
  Result<GgufValue> read_value(GgufType type, const std::string& what, int depth) {
    GgufValue value;
    value.type = type;
    if (detail::is_unsigned_int(type)) {
      EDGELM_TRY(value.data, read_uint(type, what));
    } else if (detail::is_signed_int(type)) {
      EDGELM_TRY(value.data, read_int(type, what));
    } else if (detail::is_float(type)) {
      EDGELM_TRY(value.data, read_float(type, what));
    } else if (type == GgufType::kBool) {
      EDGELM_TRY(value.data, read_bool(what));
    } else if (type == GgufType::kString) {
      EDGELM_TRY(value.data, read_string(what + ": string"));
    } else {
      EDGELM_TRY(value.data, read_array(what, depth + 1));
    }
    return value;
  }

 private:
  Result<uint64_t> read_uint(GgufType type, const std::string& what) {
    EDGELM_CHECK(need(detail::fixed_value_size(type), what));
    switch (type) {
      case GgufType::kUint8:
        return uint64_t{take<uint8_t>()};
      case GgufType::kUint16:
        return uint64_t{take<uint16_t>()};
      case GgufType::kUint32:
        return uint64_t{take<uint32_t>()};
      default:
        return take<uint64_t>();
    }
  }

  Result<int64_t> read_int(GgufType type, const std::string& what) {
    EDGELM_CHECK(need(detail::fixed_value_size(type), what));
    switch (type) {
      case GgufType::kInt8:
        return int64_t{take<int8_t>()};
      case GgufType::kInt16:
        return int64_t{take<int16_t>()};
      case GgufType::kInt32:
        return int64_t{take<int32_t>()};
      default:
        return take<int64_t>();
    }
  }

  Result<double> read_float(GgufType type, const std::string& what) {
    EDGELM_CHECK(need(detail::fixed_value_size(type), what));
    if (type == GgufType::kFloat32) return double{take<float>()};
    return take<double>();
  }

  Result<bool> read_bool(const std::string& what) {
    EDGELM_CHECK(need(1, what));
    const uint8_t b = take<uint8_t>();
    if (b > 1)
      return invalid(what + at(pos_ - 1) + ": bool value " + std::to_string(b) + " is not 0 or 1");
    return b == 1;
  }

  Result<GgufArray> read_array(const std::string& what, int depth) {
    if (depth > detail::kMaxArrayDepth) {
      return invalid(what + at(pos_) + ": arrays nested deeper than " +
                     std::to_string(detail::kMaxArrayDepth) + " levels");
    }
    const uint64_t start = pos_;
    EDGELM_TRY(const uint32_t elem_id, read<uint32_t>(what + ": array element type"));
    if (!detail::is_known_value_type(elem_id)) {
      return invalid(what + at(start) + ": unknown array element type id " +
                     std::to_string(elem_id));
    }
    EDGELM_TRY(const uint64_t count, read<uint64_t>(what + ": array length"));
    GgufArray array;
    array.elem_type = static_cast<GgufType>(elem_id);
    uint64_t min_elem_bytes = detail::fixed_value_size(array.elem_type);
    if (array.elem_type == GgufType::kString) min_elem_bytes = kMinStringBytes;
    if (array.elem_type == GgufType::kArray) min_elem_bytes = kMinArrayBytes;
    if (count > remaining() / min_elem_bytes) {
      return invalid(what + at(start) + ": array of " + std::to_string(count) + " " +
                     std::string(gguf_type_name(array.elem_type)) + " needs at least " +
                     std::to_string(count) + " x " + std::to_string(min_elem_bytes) +
                     " bytes but the file has " + std::to_string(remaining()) + " left");
    }
    if (count > array_elements_left_) {
      return make_error(ErrorCode::kOutOfRange,
                        what + at(start) + ": array of " + std::to_string(count) +
                            " elements exceeds the limit of " + std::to_string(kMaxArrayElements) +
                            " array elements per file");
    }
    array_elements_left_ -= count;
    const auto elem_what = [&](uint64_t i) { return what + "[" + std::to_string(i) + "]"; };
    switch (array.elem_type) {
      case GgufType::kString:
        array.strings.reserve(count);
        for (uint64_t i = 0; i < count; ++i) {
          EDGELM_TRY(std::string s, read_string(what, static_cast<int64_t>(i)));
          array.strings.push_back(std::move(s));
        }
        break;
      case GgufType::kArray:
        array.arrays.reserve(count);
        for (uint64_t i = 0; i < count; ++i) {
          EDGELM_TRY(GgufArray inner, read_array(elem_what(i), depth + 1));
          array.arrays.push_back(std::move(inner));
        }
        break;
      case GgufType::kFloat32:
      case GgufType::kFloat64:
        array.floats.reserve(count);  // the whole array is in bounds: checked above
        for (uint64_t i = 0; i < count; ++i) {
          array.floats.push_back(array.elem_type == GgufType::kFloat32 ? double{take<float>()}
                                                                       : take<double>());
        }
        break;
      default:
        array.ints.reserve(count);
        for (uint64_t i = 0; i < count; ++i) {
          EDGELM_TRY(const int64_t v, read_int_bits(array.elem_type, what, i));
          array.ints.push_back(v);
        }
        break;
    }
    return array;
  }

  // An integer or bool array element, widened (u64 kept bit for bit); in bounds by the caller's
  // check.
  Result<int64_t> read_int_bits(GgufType type, const std::string& what, uint64_t index) {
    switch (type) {
      case GgufType::kUint8:
        return int64_t{take<uint8_t>()};
      case GgufType::kInt8:
        return int64_t{take<int8_t>()};
      case GgufType::kUint16:
        return int64_t{take<uint16_t>()};
      case GgufType::kInt16:
        return int64_t{take<int16_t>()};
      case GgufType::kUint32:
        return int64_t{take<uint32_t>()};
      case GgufType::kInt32:
        return int64_t{take<int32_t>()};
      case GgufType::kUint64:
        return static_cast<int64_t>(take<uint64_t>());
      case GgufType::kInt64:
        return take<int64_t>();
      default: {  // kBool
        const uint8_t b = take<uint8_t>();
        if (b > 1) {
          return invalid(what + "[" + std::to_string(index) + "]" + at(pos_ - 1) + ": bool value " +
                         std::to_string(b) + " is not 0 or 1");
        }
        return int64_t{b};
      }
    }
  }

  std::span<const uint8_t> bytes_;
  uint64_t pos_ = 0;
  uint64_t array_elements_left_ = kMaxArrayElements;
};

Status check_header(Parser& p, std::span<const uint8_t> bytes, uint32_t& version) {
  if (bytes.size() < 4 || !std::equal(bytes.begin(), bytes.begin() + 4, detail::kGgufMagic)) {
    if (bytes.size() < 4) {
      return invalid("file of " + std::to_string(bytes.size()) + " bytes is too small to be GGUF");
    }
    std::string magic;
    for (int i = 0; i < 4; ++i) magic += static_cast<char>(bytes[i]);
    return invalid("bad magic " + quote_name(magic) + ", expected 'GGUF': not a GGUF file");
  }
  p.take<uint32_t>();  // the magic, checked above
  EDGELM_TRY(version, p.read<uint32_t>("version"));
  if (version == 1) {
    return make_error(ErrorCode::kUnsupported,
                      "unsupported GGUF v1 (legacy 32-bit counts); convert the file to GGUF v3");
  }
  if (version != 2 && version != 3) {
    const uint32_t swapped = byte_swap32(version);
    if (swapped >= 1 && swapped <= 3) {
      return make_error(ErrorCode::kUnsupported,
                        "big-endian (byte-swapped) GGUF v" + std::to_string(swapped) +
                            " is not supported; only little-endian files are");
    }
    return make_error(ErrorCode::kUnsupported,
                      "unsupported GGUF version " + std::to_string(version) + " (supported: 2, 3)");
  }
  return {};
}

Status read_metadata(Parser& p, uint64_t n_kv, ParsedFile& impl) {
  for (uint64_t i = 0; i < n_kv; ++i) {
    const uint64_t start = p.pos();
    const std::string entry = "metadata entry #" + std::to_string(i);
    EDGELM_TRY(std::string key, p.read_string(entry + ": key"));
    const std::string what = "key " + quote_name(key);
    if (impl.key_index.count(key) != 0) {
      return invalid(what + at(start) + ": duplicate key (first at entry #" +
                     std::to_string(impl.key_index.find(key)->second) + ")");
    }
    EDGELM_TRY(const uint32_t type_id, p.read<uint32_t>(what + ": value type"));
    if (!detail::is_known_value_type(type_id)) {
      return invalid(what + at(p.pos() - 4) + ": unknown value type id " + std::to_string(type_id));
    }
    EDGELM_TRY(GgufValue value, p.read_value(static_cast<GgufType>(type_id), what, 0));
    impl.key_index.emplace(key, impl.metadata.size());
    impl.metadata.emplace_back(std::move(key), std::move(value));
  }
  return {};
}

Status read_alignment(ParsedFile& impl) {
  const auto it = impl.key_index.find(detail::kAlignmentKey);
  if (it == impl.key_index.end()) return {};
  const GgufValue& value = impl.metadata[it->second].second;
  const std::string what = "key " + quote_name(detail::kAlignmentKey);
  if (value.type != GgufType::kUint32) {
    return invalid(what + ": stored as " + std::string(gguf_type_name(value.type)) +
                   ", expected u32");
  }
  const uint64_t alignment = std::get<uint64_t>(value.data);
  if (!detail::is_power_of_two(alignment)) {
    return invalid(what + ": alignment " + std::to_string(alignment) +
                   " is not a non-zero power of two");
  }
  impl.alignment = alignment;
  return {};
}

Status read_tensor_infos(Parser& p, uint64_t n_tensors, ParsedFile& impl) {
  for (uint64_t i = 0; i < n_tensors; ++i) {
    const uint64_t start = p.pos();
    GgufTensorInfo info;
    EDGELM_TRY(info.name, p.read_string("tensor info #" + std::to_string(i) + ": name"));
    const std::string what = "tensor " + quote_name(info.name);
    if (info.name.empty())
      return invalid("tensor info #" + std::to_string(i) + at(start) + ": empty name");
    if (impl.tensor_index.count(info.name) != 0) {
      return invalid(what + at(start) + ": duplicate tensor name (first at tensor info #" +
                     std::to_string(impl.tensor_index.find(info.name)->second) + ")");
    }
    EDGELM_TRY(const uint32_t n_dims, p.read<uint32_t>(what + ": n_dims"));
    if (n_dims < 1 || n_dims > detail::kMaxDims) {
      return invalid(what + at(p.pos() - 4) + ": n_dims " + std::to_string(n_dims) +
                     " is not in 1.." + std::to_string(detail::kMaxDims));
    }
    uint64_t n_elements = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      const std::string dim = what + ": ne[" + std::to_string(d) + "]";
      EDGELM_TRY(const uint64_t ne, p.read<uint64_t>(dim));
      if (ne == 0) return invalid(dim + at(p.pos() - 8) + " is 0");
      // ggml counts elements in int64_t.
      if (ne > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) / n_elements) {
        return invalid(dim + at(p.pos() - 8) + ": element count overflows (" + std::to_string(ne) +
                       " x " + std::to_string(n_elements) + ")");
      }
      n_elements *= ne;
      info.ne.push_back(ne);
    }
    info.n_elements = n_elements;
    EDGELM_TRY(const uint32_t type_id, p.read<uint32_t>(what + ": type"));
    const TensorTypeTraits* traits = find_tensor_type(type_id);
    if (traits == nullptr) {
      return invalid(what + at(p.pos() - 4) + ": unknown tensor type id " +
                     std::to_string(type_id));
    }
    info.type = traits->type;
    if (info.ne[0] % traits->block_size != 0) {
      return invalid(what + ": ne[0]=" + std::to_string(info.ne[0]) + " is not a multiple of the " +
                     std::string(traits->name) + " block size " +
                     std::to_string(traits->block_size));
    }
    auto n_bytes = tensor_bytes(info.type, n_elements);
    if (!n_bytes) return invalid(what + ": " + n_bytes.error().message);
    info.n_bytes = *n_bytes;
    EDGELM_TRY(info.offset, p.read<uint64_t>(what + ": offset"));
    if (info.offset % impl.alignment != 0) {
      return invalid(what + ": data offset " + std::to_string(info.offset) +
                     " is not a multiple of the alignment " + std::to_string(impl.alignment));
    }
    impl.tensor_index.emplace(info.name, impl.tensors.size());
    impl.tensors.push_back(std::move(info));
  }
  return {};
}

Status check_tensor_data(ParsedFile& impl) {
  const uint64_t file_size = impl.bytes.size();
  if (impl.tensors.empty()) return {};
  if (impl.data_offset > file_size) {
    return invalid("data section at offset " + std::to_string(impl.data_offset) +
                   " starts past the end of the file (" + std::to_string(file_size) + " bytes)");
  }
  const uint64_t data_size = file_size - impl.data_offset;
  for (const GgufTensorInfo& t : impl.tensors) {
    if (t.offset > data_size || t.n_bytes > data_size - t.offset) {
      return invalid("tensor " + quote_name(t.name) + ": data at file offset " +
                     std::to_string(impl.data_offset) + " + " + std::to_string(t.offset) +
                     " with " + std::to_string(t.n_bytes) +
                     " bytes runs past the end of the file (" + std::to_string(file_size) +
                     " bytes)");
    }
  }
  std::vector<size_t> order(impl.tensors.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return impl.tensors[a].offset < impl.tensors[b].offset; });
  for (size_t i = 1; i < order.size(); ++i) {
    const GgufTensorInfo& prev = impl.tensors[order[i - 1]];
    const GgufTensorInfo& next = impl.tensors[order[i]];
    if (prev.offset + prev.n_bytes > next.offset) {
      return invalid("tensor " + quote_name(next.name) + ": data at offset " +
                     std::to_string(next.offset) + " overlaps tensor " + quote_name(prev.name) +
                     " (offset " + std::to_string(prev.offset) + ", " +
                     std::to_string(prev.n_bytes) + " bytes)");
    }
  }
  return {};
}

Status parse_into(ParsedFile& impl) {
  Parser p(impl.bytes);
  EDGELM_CHECK(check_header(p, impl.bytes, impl.version));
  EDGELM_TRY(const uint64_t n_tensors, p.read<uint64_t>("tensor count"));
  EDGELM_TRY(const uint64_t n_kv, p.read<uint64_t>("metadata count"));
  // Every entry takes a minimum number of bytes, so counts the file cannot hold are rejected here.
  if (n_kv > p.remaining() / kMinKvBytes || n_tensors > p.remaining() / kMinTensorInfoBytes ||
      n_kv * kMinKvBytes + n_tensors * kMinTensorInfoBytes > p.remaining()) {
    return invalid("header claims " + std::to_string(n_kv) + " metadata entries and " +
                   std::to_string(n_tensors) + " tensors, more than the " +
                   std::to_string(p.remaining()) + " bytes after the header can hold");
  }
  if (n_kv > kMaxMetadataEntries || n_tensors > kMaxTensors) {
    return make_error(ErrorCode::kOutOfRange,
                      "header claims " + std::to_string(n_kv) + " metadata entries and " +
                          std::to_string(n_tensors) + " tensors; the limits are " +
                          std::to_string(kMaxMetadataEntries) + " and " +
                          std::to_string(kMaxTensors));
  }
  EDGELM_CHECK(read_metadata(p, n_kv, impl));
  EDGELM_CHECK(read_alignment(impl));
  EDGELM_CHECK(read_tensor_infos(p, n_tensors, impl));
  const uint64_t header_end = p.pos();
  impl.data_offset = (header_end + impl.alignment - 1) / impl.alignment * impl.alignment;
  return check_tensor_data(impl);
}

}  // namespace

struct GgufFile::Impl : ParsedFile {
  MappedFile storage;  // owns the bytes for open(); empty for parse()
  std::filesystem::path path;
};

Result<GgufFile> GgufFile::open(const std::filesystem::path& path, const GgufOpenOptions& options) {
  EDGELM_TRY(MappedFile storage, MappedFile::open(path, options.use_mmap));
  auto impl = std::make_unique<Impl>();
  impl->storage = std::move(storage);
  impl->bytes = impl->storage.bytes();
  impl->path = path;
  Status status = parse_into(*impl);
  if (!status) {
    Error error = std::move(status).error();
    error.message = detail::quote_path(path.string()) + ": " + error.message;
    return error;
  }
  return GgufFile(std::move(impl));
}

Result<GgufFile> GgufFile::parse(std::span<const uint8_t> bytes) {
  auto impl = std::make_unique<Impl>();
  impl->bytes = bytes;
  EDGELM_CHECK(parse_into(*impl));
  return GgufFile(std::move(impl));
}

GgufFile::GgufFile(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
GgufFile::GgufFile(GgufFile&&) noexcept = default;
GgufFile& GgufFile::operator=(GgufFile&&) noexcept = default;
GgufFile::~GgufFile() = default;

uint32_t GgufFile::version() const {
  return impl_->version;
}
uint64_t GgufFile::alignment() const {
  return impl_->alignment;
}
uint64_t GgufFile::data_offset() const {
  return impl_->data_offset;
}
bool GgufFile::is_mapped() const {
  return impl_->storage.is_mapped();
}

void GgufFile::release_pages(std::span<const uint8_t> range) const {
  impl_->storage.release_pages(range);
}

const std::filesystem::path& GgufFile::path() const {
  return impl_->path;
}
std::span<const uint8_t> GgufFile::bytes() const {
  return impl_->bytes;
}

const std::vector<std::pair<std::string, GgufValue>>& GgufFile::metadata() const {
  return impl_->metadata;
}

const GgufValue* GgufFile::find(std::string_view key) const {
  const auto it = impl_->key_index.find(key);
  return it == impl_->key_index.end() ? nullptr : &impl_->metadata[it->second].second;
}

const std::vector<GgufTensorInfo>& GgufFile::tensors() const {
  return impl_->tensors;
}

const GgufTensorInfo* GgufFile::find_tensor(std::string_view name) const {
  const auto it = impl_->tensor_index.find(name);
  return it == impl_->tensor_index.end() ? nullptr : &impl_->tensors[it->second];
}

std::span<const uint8_t> GgufFile::tensor_data(const GgufTensorInfo& info) const {
  const uint64_t size = impl_->bytes.size();
  // Infos of this file are in range (validated); anything else gets an empty span, not a wild one.
  if (impl_->data_offset > size || info.offset > size - impl_->data_offset ||
      info.n_bytes > size - impl_->data_offset - info.offset) {
    return {};
  }
  return impl_->bytes.subspan(impl_->data_offset + info.offset, info.n_bytes);
}

}  // namespace edgelm::format
