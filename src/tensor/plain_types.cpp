// Unblocked element types: floats of every width and the integer types GGUF can store.
#include <cstring>
#include <limits>

#include "edgelm/quant.h"
#include "tensor/blocks.h"

namespace edgelm::tensor::detail {
namespace {

// Reads element i of a little-endian array of T at an arbitrary byte address.
template <class T>
T load_element(const uint8_t* src, int64_t i) {
  T value;
  std::memcpy(&value, src + i * static_cast<int64_t>(sizeof(T)), sizeof(T));
  return value;
}

template <class T>
void store_element(uint8_t* dst, int64_t i, T value) {
  std::memcpy(dst + i * static_cast<int64_t>(sizeof(T)), &value, sizeof(T));
}

void dequantize_f32(const uint8_t* src, float* dst, int64_t n) {
  std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
}

void quantize_f32(const float* src, uint8_t* dst, int64_t n, const float*) {
  std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
}

void dequantize_f16(const uint8_t* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = fp16_to_fp32(load_element<uint16_t>(src, i));
}

void quantize_f16(const float* src, uint8_t* dst, int64_t n, const float*) {
  for (int64_t i = 0; i < n; ++i) store_element<uint16_t>(dst, i, fp32_to_fp16(src[i]));
}

void dequantize_bf16(const uint8_t* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_fp32(load_element<uint16_t>(src, i));
}

void quantize_bf16(const float* src, uint8_t* dst, int64_t n, const float*) {
  for (int64_t i = 0; i < n; ++i) store_element<uint16_t>(dst, i, fp32_to_bf16(src[i]));
}

// IEEE double -> float: out-of-range values become inf (a plain cast would be undefined).
float narrow_to_float(double value) {
  // Half-way between FLT_MAX and 2^128; ties round to inf because FLT_MAX's mantissa is odd.
  constexpr double kOverflow = 0x1p128 - 0x1p103;
  if (value >= kOverflow) return std::numeric_limits<float>::infinity();
  if (value <= -kOverflow) return -std::numeric_limits<float>::infinity();
  return static_cast<float>(value);
}

void dequantize_f64(const uint8_t* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = narrow_to_float(load_element<double>(src, i));
}

// Integers convert with the usual rounding to the nearest float.
template <class T>
void dequantize_integer(const uint8_t* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = static_cast<float>(load_element<T>(src, i));
}

}  // namespace

TypeCodec plain_codec(TensorType type) {
  switch (type) {
    case TensorType::kF32:
      return {dequantize_f32, quantize_f32};
    case TensorType::kF16:
      return {dequantize_f16, quantize_f16};
    case TensorType::kBF16:
      return {dequantize_bf16, quantize_bf16};
    case TensorType::kF64:
      return {dequantize_f64, nullptr};
    case TensorType::kI8:
      return {dequantize_integer<int8_t>, nullptr};
    case TensorType::kI16:
      return {dequantize_integer<int16_t>, nullptr};
    case TensorType::kI32:
      return {dequantize_integer<int32_t>, nullptr};
    case TensorType::kI64:
      return {dequantize_integer<int64_t>, nullptr};
    default:
      return {};
  }
}

}  // namespace edgelm::tensor::detail
