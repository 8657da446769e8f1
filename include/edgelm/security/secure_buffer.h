// Memory for secrets and decrypted model weights: page-aligned, locked in RAM where the OS allows
// (so it is not swapped out), excluded from core dumps, and wiped when freed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "edgelm/error.h"

namespace edgelm::security {

class SecureBuffer {
 public:
  SecureBuffer() = default;
  // kOutOfRange when the OS refuses the allocation. Locking is best effort: see locked().
  static Result<SecureBuffer> allocate(size_t size);

  SecureBuffer(SecureBuffer&& other) noexcept;
  SecureBuffer& operator=(SecureBuffer&& other) noexcept;
  SecureBuffer(const SecureBuffer&) = delete;
  SecureBuffer& operator=(const SecureBuffer&) = delete;
  ~SecureBuffer();

  uint8_t* data() { return data_; }
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  std::span<uint8_t> span() { return {data_, size_}; }
  std::span<const uint8_t> bytes() const { return {data_, size_}; }
  // True when mlock succeeded (false e.g. when RLIMIT_MEMLOCK is smaller than the buffer).
  bool locked() const { return locked_; }

 private:
  void release();
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
  size_t mapped_size_ = 0;
  bool locked_ = false;
};

}  // namespace edgelm::security
