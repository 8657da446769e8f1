// Read-only bytes of a whole file: memory-mapped, or read into a page-aligned heap buffer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>

#include "edgelm/error.h"

namespace edgelm::format {

class MappedFile {
 public:
  // use_mmap=false reads the file into memory; both give the same bytes with the same (page)
  // alignment.
  static Result<MappedFile> open(const std::filesystem::path& path, bool use_mmap);

  MappedFile() = default;
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();

  std::span<const uint8_t> bytes() const { return {data_, size_}; }
  bool is_mapped() const { return mapped_; }
  // See GgufFile::release_pages.
  void release_pages(std::span<const uint8_t> range) const;

 private:
  void release();

  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  bool mapped_ = false;  // true: munmap on release; false: the heap buffer is freed
};

}  // namespace edgelm::format
