#include "security/internal.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <random>
#include <utility>

namespace edgelm::security::detail {
namespace fs = std::filesystem;

bool sodium_ready() {
  static const bool ready = sodium_init() >= 0;
  return ready;
}

Status require_sodium() {
  if (!sodium_ready()) return make_error(ErrorCode::kInternal, "libsodium failed to initialize");
  return {};
}

Error security_error(std::string message) {
  return make_error(ErrorCode::kSecurity, std::move(message));
}

std::string quoted(const fs::path& path) {
  std::string out;
  out.reserve(path.native().size() + 2);
  out.append("'").append(path.native()).append("'");
  return out;
}

Error io_error(const fs::path& path, std::string_view what) {
  const int saved_errno = errno;
  return make_error(ErrorCode::kIo,
                    quoted(path) + ": " + std::string(what) + ": " + std::strerror(saved_errno));
}

Status create_dirs(const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) {
    return make_error(ErrorCode::kIo, "cannot create folder " + quoted(dir) + ": " + ec.message());
  }
  return {};
}

Result<std::string> read_file(const fs::path& path, uint64_t max_bytes) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    if (errno == ENOENT) return make_error(ErrorCode::kNotFound, quoted(path) + " does not exist");
    return io_error(path, "cannot open");
  }
  std::string out;
  char buf[65536];
  for (;;) {
    const ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return io_error(path, "read failed");
    }
    if (n == 0) break;
    if (out.size() + static_cast<size_t>(n) > max_bytes) {
      return make_error(ErrorCode::kOutOfRange, quoted(path) + " is larger than the " +
                                                    std::to_string(max_bytes) + "-byte limit");
    }
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

Status write_all(int fd, std::span<const uint8_t> bytes, const fs::path& path) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return io_error(path, "write failed");
    }
    bytes = bytes.subspan(static_cast<size_t>(n));
  }
  return {};
}

Status fsync_path(const fs::path& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return io_error(path, "cannot open for fsync");
  if (::fsync(fd.get()) != 0) return io_error(path, "fsync failed");
  return {};
}

namespace {

fs::path parent_or_dot(const fs::path& path) {
  return path.has_parent_path() ? path.parent_path() : fs::path(".");
}

Status write_fd_file(const fs::path& path, int flags, std::span<const uint8_t> bytes, mode_t mode) {
  Fd fd(::open(path.c_str(), flags | O_WRONLY | O_CLOEXEC, mode));
  if (fd.get() < 0) {
    if (errno == EEXIST) {
      return make_error(ErrorCode::kInvalidArgument,
                        quoted(path) + " exists already; not replacing it");
    }
    return io_error(path, "cannot create");
  }
  if (::fchmod(fd.get(), mode) != 0)
    return io_error(path, "chmod failed");  // umask may have widened it
  EDGELM_CHECK(write_all(fd.get(), bytes, path));
  if (::fsync(fd.get()) != 0) return io_error(path, "fsync failed");
  if (::close(fd.release()) != 0) return io_error(path, "close failed");
  return {};
}

}  // namespace

Status write_file_atomic(const fs::path& path, std::span<const uint8_t> bytes, mode_t mode,
                         const std::function<void()>& before_rename) {
  std::random_device rd;
  const fs::path tmp =
      path.string() + ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(rd());
  Status written = write_fd_file(tmp, O_CREAT | O_EXCL, bytes, mode);
  if (!written) {
    ::unlink(tmp.c_str());
    return written;
  }
  if (before_rename) before_rename();
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    Error e = io_error(path, "cannot rename the new file into place");
    ::unlink(tmp.c_str());
    return e;
  }
  return fsync_path(parent_or_dot(path));
}

Status write_new_file(const fs::path& path, std::span<const uint8_t> bytes, mode_t mode) {
  EDGELM_CHECK(write_fd_file(path, O_CREAT | O_EXCL, bytes, mode));
  return fsync_path(parent_or_dot(path));
}

Result<MappedFile> MappedFile::open(const fs::path& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    if (errno == ENOENT) return make_error(ErrorCode::kNotFound, quoted(path) + " does not exist");
    return io_error(path, "cannot open");
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return io_error(path, "stat failed");
  if (!S_ISREG(st.st_mode))
    return make_error(ErrorCode::kInvalidArgument, quoted(path) + " is not a file");
  MappedFile file;
  file.size_ = static_cast<size_t>(st.st_size);
  if (file.size_ == 0) return file;
  void* p = ::mmap(nullptr, file.size_, PROT_READ, MAP_PRIVATE, fd.get(), 0);
  if (p == MAP_FAILED) return io_error(path, "mmap failed");
  ::madvise(p, file.size_, MADV_SEQUENTIAL);
  file.data_ = static_cast<const uint8_t*>(p);
  return file;
}

MappedFile::MappedFile(MappedFile&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}

MappedFile::~MappedFile() {
  if (data_ != nullptr) ::munmap(const_cast<uint8_t*>(data_), size_);
}

}  // namespace edgelm::security::detail
