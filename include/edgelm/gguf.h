// GGUF v2/v3 reader (validating, memory-mapped) and writer.
// Model files are untrusted: every malformed file yields an Error naming the key or tensor at
// fault.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "edgelm/error.h"
#include "edgelm/tensor_type.h"

namespace edgelm::format {

// GGUF metadata value type ids, as stored in the file.
enum class GgufType : uint32_t {
  kUint8 = 0,
  kInt8 = 1,
  kUint16 = 2,
  kInt16 = 3,
  kUint32 = 4,
  kInt32 = 5,
  kFloat32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kUint64 = 10,
  kInt64 = 11,
  kFloat64 = 12,
};
std::string_view gguf_type_name(GgufType type);

// A homogeneous array. Exactly one vector is used, chosen by elem_type:
// strings for kString, ints for every integer type and kBool (u64 stored bit-for-bit),
// floats for kFloat32/kFloat64, arrays for kArray (nested).
struct GgufArray {
  GgufType elem_type = GgufType::kUint8;
  std::vector<std::string> strings;
  std::vector<int64_t> ints;
  std::vector<double> floats;
  std::vector<GgufArray> arrays;

  uint64_t size() const;
};

// A metadata value. `type` is the stored type; the variant holds it widened:
// uint64_t for unsigned ints, int64_t for signed ints, double for floats, bool, string, or array.
struct GgufValue {
  GgufType type = GgufType::kUint32;
  std::variant<uint64_t, int64_t, double, bool, std::string, GgufArray> data;

  static GgufValue u32(uint32_t v) { return {GgufType::kUint32, uint64_t{v}}; }
  static GgufValue i32(int32_t v) { return {GgufType::kInt32, int64_t{v}}; }
  static GgufValue u64(uint64_t v) { return {GgufType::kUint64, v}; }
  static GgufValue f32(float v) { return {GgufType::kFloat32, double{v}}; }
  static GgufValue boolean(bool v) { return {GgufType::kBool, v}; }
  static GgufValue string(std::string v) { return {GgufType::kString, std::move(v)}; }
  static GgufValue array(GgufArray v) { return {GgufType::kArray, std::move(v)}; }
};

struct GgufTensorInfo {
  std::string name;
  std::vector<uint64_t> ne;  // dimensions, ne[0] innermost (row length); at most 4
  TensorType type = TensorType::kF32;
  uint64_t offset = 0;  // from the start of the data section
  uint64_t n_elements = 0;
  uint64_t n_bytes = 0;
};

struct GgufOpenOptions {
  bool use_mmap = true;  // false: read the whole file into memory instead
};

class GgufFile {
 public:
  // Opens and fully validates a file. Tensor bytes are mapped read-only (or read when !use_mmap,
  // into a page-aligned buffer). Error messages start with the quoted path. GGUF v1 and big-endian
  // files are kUnsupported; malformed ones kInvalidFormat.
  static Result<GgufFile> open(const std::filesystem::path& path,
                               const GgufOpenOptions& options = {});
  // Parses bytes the caller keeps alive (fuzzing, in-memory models). Same validation as open().
  static Result<GgufFile> parse(std::span<const uint8_t> bytes);

  GgufFile(GgufFile&&) noexcept;
  GgufFile& operator=(GgufFile&&) noexcept;
  ~GgufFile();

  uint32_t version() const;
  uint64_t alignment() const;
  // Byte offset of the data section: the end of the header rounded up to alignment(). A file
  // without tensors may end before it (vocab-only files are not padded).
  uint64_t data_offset() const;
  bool is_mapped() const;
  // Drops the whole pages inside `range` (bytes of this file) from the process's resident memory
  // when the file is mapped, after their contents were copied elsewhere; reading them again
  // faults them back in from the file. No effect when the bytes were read into memory.
  void release_pages(std::span<const uint8_t> range) const;
  const std::filesystem::path& path() const;  // empty for parse()
  std::span<const uint8_t> bytes() const;     // the whole file

  const std::vector<std::pair<std::string, GgufValue>>& metadata() const;
  const GgufValue* find(std::string_view key) const;

  // Typed getters: kNotFound when absent, kInvalidFormat naming the key when the stored type
  // does not fit. Integer getters accept every integer type whose value fits.
  Result<std::string> get_string(std::string_view key) const;
  Result<uint64_t> get_uint(std::string_view key) const;
  Result<int64_t> get_int(std::string_view key) const;
  Result<double> get_float(std::string_view key) const;  // f32/f64
  Result<bool> get_bool(std::string_view key) const;
  Result<const GgufArray*> get_array(std::string_view key) const;
  // The same, but `fallback` when the key is absent (a present key of the wrong type is an error).
  Result<std::string> get_string_or(std::string_view key, std::string fallback) const;
  Result<uint64_t> get_uint_or(std::string_view key, uint64_t fallback) const;
  Result<double> get_float_or(std::string_view key, double fallback) const;
  Result<bool> get_bool_or(std::string_view key, bool fallback) const;

  const std::vector<GgufTensorInfo>& tensors() const;
  const GgufTensorInfo* find_tensor(std::string_view name) const;
  std::span<const uint8_t> tensor_data(const GgufTensorInfo& info) const;

 private:
  struct Impl;
  explicit GgufFile(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Builds a GGUF v3 file. Keys keep insertion order; set() on an existing key replaces its value.
class GgufWriter {
 public:
  GgufWriter();
  // Copies every key and tensor of `file` (writing the result reproduces a file we wrote, byte for
  // byte).
  static GgufWriter from_file(const GgufFile& file);

  void set(std::string key, GgufValue value);
  void remove(std::string_view key);
  void set_alignment(uint64_t alignment);  // also stored as general.alignment when not 32

  // `data` must hold tensor_bytes(type, product(ne)) bytes; it is copied.
  Status add_tensor(std::string name, TensorType type, std::vector<uint64_t> ne,
                    std::span<const uint8_t> data);

  Result<std::vector<uint8_t>> to_bytes() const;
  // Writes to a temporary file beside `path` and renames it into place.
  Status write(const std::filesystem::path& path) const;

 private:
  struct Tensor {
    GgufTensorInfo info;
    std::vector<uint8_t> data;
  };
  // Tensor infos with the offsets write() gives them: add order, each aligned.
  std::vector<GgufTensorInfo> layout() const;

  std::vector<std::pair<std::string, GgufValue>> metadata_;
  std::vector<Tensor> tensors_;
  uint64_t alignment_ = 32;
};

}  // namespace edgelm::format
