// Protocol-buffer wire format, read and written by hand: ONNX files are untrusted input, and a
// reader that hands out spans into the (memory-mapped) file parses them without copying tensor
// data and without allocating more than the file holds.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace edgelm::onnx::wire {

enum class WireType : uint8_t { kVarint = 0, kFixed64 = 1, kBytes = 2, kFixed32 = 5 };

struct Field {
  uint32_t number = 0;
  WireType type = WireType::kVarint;
  uint64_t varint = 0;             // kVarint, kFixed64, kFixed32 (raw bits)
  std::span<const uint8_t> bytes;  // kBytes
};

// Iterates the fields of one message. next() returns false at the end or on malformed input;
// failed() tells which (the message then names the byte offset within this message).
class Reader {
 public:
  explicit Reader(std::span<const uint8_t> data) : data_(data) {}
  bool next(Field& field);
  bool failed() const { return !error_.empty(); }
  const std::string& error() const { return error_; }

 private:
  bool read_varint(uint64_t& value);
  bool fail(const char* what);

  std::span<const uint8_t> data_;
  size_t pos_ = 0;
  std::string error_;
};

// Decodes a packed run of varints (repeated int64/int32/enum) into out; false when malformed.
bool unpack_varints(std::span<const uint8_t> bytes, std::vector<int64_t>& out);
std::string_view as_string(std::span<const uint8_t> bytes);

// Appends encoded fields to a byte string.
class Writer {
 public:
  void varint_field(uint32_t number, uint64_t value);
  void bytes_field(uint32_t number, std::span<const uint8_t> bytes);
  void string_field(uint32_t number, std::string_view text);
  void float_field(uint32_t number, float value);
  void raw(std::span<const uint8_t> bytes);  // an already encoded field, copied verbatim
  const std::vector<uint8_t>& bytes() const { return out_; }
  std::vector<uint8_t>& bytes() { return out_; }

 private:
  void put_varint(uint64_t value);
  std::vector<uint8_t> out_;
};

}  // namespace edgelm::onnx::wire
