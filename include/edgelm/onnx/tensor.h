// Values flowing through an ONNX graph: a data type from onnx.proto, a shape and shared bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "edgelm/error.h"

namespace edgelm::onnx {

// TensorProto.DataType values.
enum class DataType : int32_t {
  kUndefined = 0,
  kFloat = 1,
  kUint8 = 2,
  kInt8 = 3,
  kUint16 = 4,
  kInt16 = 5,
  kInt32 = 6,
  kInt64 = 7,
  kString = 8,
  kBool = 9,
  kFloat16 = 10,
  kDouble = 11,
  kUint32 = 12,
  kUint64 = 13,
  kComplex64 = 14,
  kComplex128 = 15,
  kBfloat16 = 16,
};

// "float", "int64", ...; "type <n>" for values outside the enum.
std::string data_type_name(DataType type);
// Bytes per element; 0 for types edgelm cannot hold (string, complex, unknown).
size_t data_type_size(DataType type);

// Tensors larger than this are refused (a malformed shape must not exhaust memory).
inline constexpr uint64_t kDefaultMaxTensorBytes = uint64_t{1} << 31;

// Element count of a shape; an error on negative dims or overflow.
Result<int64_t> shape_elements(std::span<const int64_t> shape);

// A tensor value. Copies share the bytes; the bytes of a tensor handed out by a session or built
// from caller data are never written by edgelm afterwards.
class Tensor {
 public:
  Tensor() = default;

  // Zero-filled owned storage; fails on bad shapes or more than max_bytes.
  static Result<Tensor> zeros(DataType type, std::vector<int64_t> shape,
                              uint64_t max_bytes = kDefaultMaxTensorBytes);
  // Copies of caller data (values.size() must equal the shape's element count).
  static Result<Tensor> from_floats(std::vector<int64_t> shape, std::span<const float> values);
  static Result<Tensor> from_int64(std::vector<int64_t> shape, std::span<const int64_t> values);
  // A view of bytes kept alive by owner (e.g. a memory-mapped file); data must be aligned to the
  // element size.
  static Tensor view(DataType type, std::vector<int64_t> shape, const void* data,
                     std::shared_ptr<const void> owner);

  DataType dtype() const { return dtype_; }
  const std::vector<int64_t>& shape() const { return shape_; }
  int64_t rank() const { return static_cast<int64_t>(shape_.size()); }
  int64_t numel() const { return numel_; }
  size_t nbytes() const { return static_cast<size_t>(numel_) * data_type_size(dtype_); }
  bool empty() const { return dtype_ == DataType::kUndefined; }

  const void* raw() const { return data_; }
  void* mutable_raw() { return data_; }
  template <class T>
  const T* data() const {
    return static_cast<const T*>(data_);
  }
  template <class T>
  T* mutable_data() {
    return static_cast<T*>(data_);
  }
  std::span<const uint8_t> bytes() const { return {static_cast<const uint8_t*>(data_), nbytes()}; }

  // Same bytes, another shape with the same element count (Reshape, Squeeze, ...).
  Tensor reshaped(std::vector<int64_t> shape) const;
  const std::shared_ptr<const void>& owner() const { return owner_; }

 private:
  DataType dtype_ = DataType::kUndefined;
  std::vector<int64_t> shape_;
  int64_t numel_ = 0;
  void* data_ = nullptr;
  std::shared_ptr<const void> owner_;
};

}  // namespace edgelm::onnx
