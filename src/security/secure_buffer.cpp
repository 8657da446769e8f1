#include "edgelm/security/secure_buffer.h"

#include <sodium.h>
#include <sys/mman.h>
#include <unistd.h>

#include <utility>

#include "security/internal.h"

namespace edgelm::security {

Result<SecureBuffer> SecureBuffer::allocate(size_t size) {
  detail::sodium_ready();
  SecureBuffer buffer;
  if (size == 0) return buffer;
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  if (size > SIZE_MAX - page)
    return make_error(ErrorCode::kOutOfRange, "secure buffer size overflows");
  const size_t mapped = (size + page - 1) / page * page;
  void* p = ::mmap(nullptr, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    return make_error(ErrorCode::kOutOfRange, "cannot allocate " + std::to_string(size) +
                                                  " bytes of memory for decrypted data");
  }
  buffer.data_ = static_cast<uint8_t*>(p);
  buffer.size_ = size;
  buffer.mapped_size_ = mapped;
  // sodium_mlock also marks the pages MADV_DONTDUMP; without the lock, still keep them out of
  // dumps.
  buffer.locked_ = sodium_mlock(p, mapped) == 0;
  if (!buffer.locked_) ::madvise(p, mapped, MADV_DONTDUMP);
  return buffer;
}

SecureBuffer::SecureBuffer(SecureBuffer&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      mapped_size_(std::exchange(other.mapped_size_, 0)),
      locked_(std::exchange(other.locked_, false)) {}

SecureBuffer& SecureBuffer::operator=(SecureBuffer&& other) noexcept {
  if (this != &other) {
    release();
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    mapped_size_ = std::exchange(other.mapped_size_, 0);
    locked_ = std::exchange(other.locked_, false);
  }
  return *this;
}

SecureBuffer::~SecureBuffer() {
  release();
}

void SecureBuffer::release() {
  if (data_ == nullptr) return;
  if (locked_) {
    sodium_munlock(data_, mapped_size_);  // wipes, then unlocks
  } else {
    sodium_memzero(data_, mapped_size_);
  }
  ::munmap(data_, mapped_size_);
  data_ = nullptr;
  size_ = mapped_size_ = 0;
  locked_ = false;
}

}  // namespace edgelm::security
