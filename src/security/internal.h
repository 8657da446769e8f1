// Helpers shared by the security module's sources (not part of the public API).
#pragma once

#include <sys/types.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "edgelm/error.h"

namespace edgelm::security::detail {

// Initializes libsodium once; false when it cannot be used (no entropy source).
bool sodium_ready();
Status require_sodium();

// Owns a file descriptor (closed on destruction); -1 is "none".
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  Fd& operator=(Fd&& o) noexcept {
    std::swap(fd_, o.fd_);
    return *this;
  }
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

Error security_error(std::string message);
// 'path' in single quotes (built by appending: GCC 12 warns falsely on "'" + std::string).
std::string quoted(const std::filesystem::path& path);
Error io_error(const std::filesystem::path& path,
               std::string_view what);  // appends strerror(errno)

inline std::span<const uint8_t> as_bytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

// Reads a whole file of at most max_bytes (kOutOfRange naming the file when larger).
Result<std::string> read_file(const std::filesystem::path& path, uint64_t max_bytes);

// Writes `bytes` to a temporary file beside `path`, fsyncs it, renames it over `path` and fsyncs
// the folder. `before_rename` (may be empty) runs between the write and the rename.
Status write_file_atomic(const std::filesystem::path& path, std::span<const uint8_t> bytes,
                         mode_t mode, const std::function<void()>& before_rename = {});
// Creates `path` with `mode`; kInvalidArgument when it exists already.
Status write_new_file(const std::filesystem::path& path, std::span<const uint8_t> bytes,
                      mode_t mode);
Status fsync_path(const std::filesystem::path& path);  // a file or a folder
Status create_dirs(const std::filesystem::path& dir);  // with parents; kIo naming the folder
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
