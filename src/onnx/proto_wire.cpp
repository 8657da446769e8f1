#include "onnx/proto_wire.h"

#include <cstring>

namespace edgelm::onnx::wire {

bool Reader::fail(const char* what) {
  error_ = std::string(what) + " at byte " + std::to_string(pos_);
  return false;
}

bool Reader::read_varint(uint64_t& value) {
  value = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (pos_ >= data_.size()) return fail("truncated varint");
    const uint8_t b = data_[pos_++];
    value |= static_cast<uint64_t>(b & 0x7F) << shift;
    if (!(b & 0x80)) return true;
  }
  return fail("varint longer than 10 bytes");
}

bool Reader::next(Field& field) {
  if (pos_ >= data_.size() || failed()) return false;
  uint64_t key = 0;
  if (!read_varint(key)) return false;
  const uint64_t number = key >> 3;
  if (number == 0 || number > 0x1FFFFFFF) return fail("invalid field number");
  field.number = static_cast<uint32_t>(number);
  field.varint = 0;
  field.bytes = {};
  const size_t left = data_.size() - pos_;
  switch (key & 7) {
    case 0:
      field.type = WireType::kVarint;
      return read_varint(field.varint);
    case 1:
      if (left < 8) return fail("truncated fixed64");
      field.type = WireType::kFixed64;
      std::memcpy(&field.varint, data_.data() + pos_, 8);
      pos_ += 8;
      return true;
    case 2: {
      uint64_t length = 0;
      if (!read_varint(length)) return false;
      if (length > data_.size() - pos_) return fail("length-delimited field runs past its message");
      field.type = WireType::kBytes;
      field.bytes = data_.subspan(pos_, length);
      pos_ += length;
      return true;
    }
    case 5: {
      if (left < 4) return fail("truncated fixed32");
      uint32_t bits = 0;
      std::memcpy(&bits, data_.data() + pos_, 4);
      field.type = WireType::kFixed32;
      field.varint = bits;
      pos_ += 4;
      return true;
    }
    default:
      return fail("unsupported wire type (groups are not used by ONNX)");
  }
}

bool unpack_varints(std::span<const uint8_t> bytes, std::vector<int64_t>& out) {
  size_t pos = 0;
  while (pos < bytes.size()) {
    uint64_t value = 0;
    bool done = false;
    for (int shift = 0; shift < 64 && pos < bytes.size(); shift += 7) {
      const uint8_t b = bytes[pos++];
      value |= static_cast<uint64_t>(b & 0x7F) << shift;
      if (!(b & 0x80)) {
        done = true;
        break;
      }
    }
    if (!done) return false;
    out.push_back(static_cast<int64_t>(value));
  }
  return true;
}

std::string_view as_string(std::span<const uint8_t> bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

void Writer::put_varint(uint64_t value) {
  while (value >= 0x80) {
    out_.push_back(static_cast<uint8_t>(value | 0x80));
    value >>= 7;
  }
  out_.push_back(static_cast<uint8_t>(value));
}

void Writer::varint_field(uint32_t number, uint64_t value) {
  put_varint(static_cast<uint64_t>(number) << 3);
  put_varint(value);
}

void Writer::bytes_field(uint32_t number, std::span<const uint8_t> bytes) {
  put_varint(static_cast<uint64_t>(number) << 3 | 2);
  put_varint(bytes.size());
  out_.insert(out_.end(), bytes.begin(), bytes.end());
}

void Writer::string_field(uint32_t number, std::string_view text) {
  bytes_field(number, {reinterpret_cast<const uint8_t*>(text.data()), text.size()});
}

void Writer::float_field(uint32_t number, float value) {
  put_varint(static_cast<uint64_t>(number) << 3 | 5);
  uint8_t bits[4];
  std::memcpy(bits, &value, 4);
  out_.insert(out_.end(), bits, bits + 4);
}

void Writer::raw(std::span<const uint8_t> bytes) {
  out_.insert(out_.end(), bytes.begin(), bytes.end());
}

}  // namespace edgelm::onnx::wire
