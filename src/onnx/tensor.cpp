#include "edgelm/onnx/tensor.h"

#include <cstring>
#include <string>

namespace edgelm::onnx {

std::string data_type_name(DataType type) {
  switch (type) {
    case DataType::kFloat:
      return "float";
    case DataType::kUint8:
      return "uint8";
    case DataType::kInt8:
      return "int8";
    case DataType::kUint16:
      return "uint16";
    case DataType::kInt16:
      return "int16";
    case DataType::kInt32:
      return "int32";
    case DataType::kInt64:
      return "int64";
    case DataType::kString:
      return "string";
    case DataType::kBool:
      return "bool";
    case DataType::kFloat16:
      return "float16";
    case DataType::kDouble:
      return "double";
    case DataType::kUint32:
      return "uint32";
    case DataType::kUint64:
      return "uint64";
    case DataType::kComplex64:
      return "complex64";
    case DataType::kComplex128:
      return "complex128";
    case DataType::kBfloat16:
      return "bfloat16";
    case DataType::kUndefined:
      break;
  }
  return "type " + std::to_string(static_cast<int32_t>(type));
}

size_t data_type_size(DataType type) {
  switch (type) {
    case DataType::kUint8:
    case DataType::kInt8:
    case DataType::kBool:
      return 1;
    case DataType::kUint16:
    case DataType::kInt16:
    case DataType::kFloat16:
    case DataType::kBfloat16:
      return 2;
    case DataType::kFloat:
    case DataType::kInt32:
    case DataType::kUint32:
      return 4;
    case DataType::kInt64:
    case DataType::kDouble:
    case DataType::kUint64:
      return 8;
    default:
      return 0;
  }
}

Result<int64_t> shape_elements(std::span<const int64_t> shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0)
      return make_error(ErrorCode::kInvalidFormat, "negative dimension " + std::to_string(d));
    if (d != 0 && n > INT64_MAX / d) {
      return make_error(ErrorCode::kOutOfRange, "shape element count overflows int64");
    }
    n *= d;
  }
  return n;
}

namespace {

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ',';
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

}  // namespace

Result<Tensor> Tensor::zeros(DataType type, std::vector<int64_t> shape, uint64_t max_bytes) {
  const size_t elem = data_type_size(type);
  if (elem == 0) {
    return make_error(ErrorCode::kUnsupported,
                      "tensor type " + data_type_name(type) + " is not supported");
  }
  EDGELM_TRY(const int64_t n, shape_elements(shape));
  if (static_cast<uint64_t>(n) > max_bytes / elem) {
    return make_error(ErrorCode::kOutOfRange, "tensor of shape " + shape_text(shape) + " (" +
                                                  data_type_name(type) + ") exceeds the limit of " +
                                                  std::to_string(max_bytes) + " bytes");
  }
  // At least one 64-byte line so empty tensors still have a valid pointer.
  const size_t bytes = (static_cast<size_t>(n) * elem + 63) / 64 * 64 + 64;
  auto* storage = static_cast<uint8_t*>(::operator new[](bytes, std::align_val_t{64}));
  std::memset(storage, 0, bytes);
  std::shared_ptr<uint8_t> owner(storage,
                                 [](uint8_t* p) { ::operator delete[](p, std::align_val_t{64}); });
  Tensor t;
  t.dtype_ = type;
  t.shape_ = std::move(shape);
  t.numel_ = n;
  t.data_ = storage;
  t.owner_ = std::move(owner);
  return t;
}

Result<Tensor> Tensor::from_floats(std::vector<int64_t> shape, std::span<const float> values) {
  EDGELM_TRY(Tensor t, zeros(DataType::kFloat, std::move(shape)));
  if (static_cast<size_t>(t.numel()) != values.size()) {
    return make_error(ErrorCode::kInvalidArgument, "tensor of shape " + shape_text(t.shape()) +
                                                       " given " + std::to_string(values.size()) +
                                                       " values");
  }
  if (!values.empty()) std::memcpy(t.data_, values.data(), values.size_bytes());
  return t;
}

Result<Tensor> Tensor::from_int64(std::vector<int64_t> shape, std::span<const int64_t> values) {
  EDGELM_TRY(Tensor t, zeros(DataType::kInt64, std::move(shape)));
  if (static_cast<size_t>(t.numel()) != values.size()) {
    return make_error(ErrorCode::kInvalidArgument, "tensor of shape " + shape_text(t.shape()) +
                                                       " given " + std::to_string(values.size()) +
                                                       " values");
  }
  if (!values.empty()) std::memcpy(t.data_, values.data(), values.size_bytes());
  return t;
}

Tensor Tensor::view(DataType type, std::vector<int64_t> shape, const void* data,
                    std::shared_ptr<const void> owner) {
  Tensor t;
  t.dtype_ = type;
  t.numel_ = shape_elements(shape).value_or(0);
  t.shape_ = std::move(shape);
  t.data_ = const_cast<void*>(data);  // views are read-only by contract
  t.owner_ = std::move(owner);
  return t;
}

Tensor Tensor::reshaped(std::vector<int64_t> shape) const {
  Tensor t = *this;
  t.shape_ = std::move(shape);
  return t;
}

}  // namespace edgelm::onnx
