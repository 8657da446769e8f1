// Helpers shared by the security module's sources (not part of the public API).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <span>
#include <string>
#include <string_view>

#include "edgelm/error.h"

namespace edgelm::security::detail {

// Initializes libsodium once; false when it cannot be used (no entropy source).
bool sodium_ready();
Status require_sodium();

Error security_error(std::string message);
// 'path' in single quotes (built by appending: GCC 12 warns falsely on "'" + std::string).
std::string quoted(const std::filesystem::path& path);
Error io_error(const std::filesystem::path& path, std::string_view what);  // appends strerror(errno)

inline std::span<const uint8_t> as_bytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

// Reads a whole file of at most max_bytes (kOutOfRange naming the file when larger).
Result<std::string> read_file(const std::filesystem::path& path, uint64_t max_bytes);

// Writes `bytes` to a temporary file beside `path`, fsyncs it, renames it over `path` and fsyncs the
// folder. `before_rename` (may be empty) runs between the write and the rename.
Status write_file_atomic(const std::filesystem::path& path, std::span<const uint8_t> bytes, mode_t mode,
                         const std::function<void()>& before_rename = {});
// Creates `path` with `mode`; kInvalidArgument when it exists already.
Status write_new_file(const std::filesystem::path& path, std::span<const uint8_t> bytes, mode_t mode);
Status fsync_path(const std::filesystem::path& path);  // a file or a folder
Status write_all(int fd, std::span<const uint8_t> bytes, const std::filesystem::path& path);

// A read-only mapping of a whole file (empty files map to an empty span).
class MappedFile {
 public:
  static Result<MappedFile> open(const std::filesystem::path& path);
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&&) = delete;
  MappedFile(const MappedFile&) = delete;
  ~MappedFile();
  std::span<const uint8_t> bytes() const { return {data_, size_}; }

 private:
  MappedFile() = default;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace edgelm::security::detail
