#include "format/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <new>
#include <string>
#include <utility>

#include "format/gguf_internal.h"

namespace edgelm::format {
namespace {

// Heap copies use page alignment so tensor data has the same alignment as in a mapping.
constexpr std::align_val_t kHeapAlignment{4096};

Error io_error(const std::filesystem::path& path, const std::string& what) {
  return make_error(ErrorCode::kIo,
                    detail::quote_path(path.string()) + ": " + what + ": " + std::strerror(errno));
}

// Closes the descriptor on every return path.
struct FdGuard {
  int fd;
  ~FdGuard() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

Result<MappedFile> MappedFile::open(const std::filesystem::path& path, bool use_mmap) {
  FdGuard guard{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (guard.fd < 0) {
    if (errno == ENOENT) {
      return make_error(ErrorCode::kNotFound, detail::quote_path(path.string()) + ": no such file");
    }
    return io_error(path, "cannot open");
  }
  struct stat st {};
  if (::fstat(guard.fd, &st) != 0) return io_error(path, "cannot stat");
  if (!S_ISREG(st.st_mode)) {
    return make_error(ErrorCode::kIo, detail::quote_path(path.string()) + ": not a regular file");
  }
  const auto size = static_cast<size_t>(st.st_size);

  MappedFile file;
  if (size == 0) return file;  // nothing to map; the parser reports the file as too small
  if (use_mmap) {
    void* addr = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, guard.fd, 0);
    if (addr == MAP_FAILED) return io_error(path, "cannot mmap " + std::to_string(size) + " bytes");
    file.data_ = static_cast<const uint8_t*>(addr);
    file.size_ = size;
    file.mapped_ = true;
    return file;
  }

  auto* buffer = static_cast<uint8_t*>(::operator new(size, kHeapAlignment, std::nothrow));
  if (buffer == nullptr) {
    return make_error(ErrorCode::kIo, detail::quote_path(path.string()) + ": cannot allocate " +
                                          std::to_string(size) + " bytes to read the file");
  }
  file.data_ = buffer;
  file.size_ = size;
  size_t done = 0;
  while (done < size) {
    const ssize_t n = ::read(guard.fd, buffer + done, size - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return io_error(path, "read failed at offset " + std::to_string(done));
    }
    if (n == 0) {
      return make_error(ErrorCode::kIo, detail::quote_path(path.string()) +
                                            ": file shrank while reading (" + std::to_string(done) +
                                            " of " + std::to_string(size) + " bytes)");
    }
    done += static_cast<size_t>(n);
  }
  return file;
}

void MappedFile::release_pages(std::span<const uint8_t> range) const {
  // Only a mapping can give pages back: on a heap copy MADV_DONTNEED would zero them.
  if (!mapped_ || range.empty() || range.data() < data_ || range.data() + range.size() > data_ + size_) {
    return;
  }
  const auto page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const auto begin = (reinterpret_cast<uintptr_t>(range.data()) + page - 1) / page * page;
  const auto end = (reinterpret_cast<uintptr_t>(range.data()) + range.size()) / page * page;
  if (begin < end) (void)::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
}

MappedFile::MappedFile(MappedFile&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      mapped_(std::exchange(other.mapped_, false)) {}

MappedFile& MappedFile::operator=(MappedFile&& other) noexcept {
  if (this != &other) {
    release();
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    mapped_ = std::exchange(other.mapped_, false);
  }
  return *this;
}

MappedFile::~MappedFile() {
  release();
}

void MappedFile::release() {
  if (data_ == nullptr) return;
  if (mapped_) {
    ::munmap(const_cast<uint8_t*>(data_), size_);
  } else {
    ::operator delete(const_cast<uint8_t*>(data_), kHeapAlignment);
  }
  data_ = nullptr;
  size_ = 0;
  mapped_ = false;
}

}  // namespace edgelm::format
