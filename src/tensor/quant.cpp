// Argument checks and dispatch for quantize_row / dequantize_row.
#include "edgelm/quant.h"

#include <string>

#include "tensor/blocks.h"

namespace edgelm::tensor {
namespace {

detail::TypeCodec codec_for(TensorType type) {
  for (auto lookup :
       {detail::plain_codec, detail::legacy_codec, detail::k_quant_codec, detail::ternary_codec}) {
    const detail::TypeCodec codec = lookup(type);
    if (codec.dequantize != nullptr) return codec;
  }
  return {};
}

std::string type_label(TensorType type) {
  const TensorTypeTraits* traits = find_tensor_type(static_cast<uint32_t>(type));
  return traits != nullptr ? std::string(traits->name)
                           : "id " + std::to_string(static_cast<uint32_t>(type));
}

// Checks everything but the codec; returns the number of blocks.
Result<int64_t> check_row(const char* operation, TensorType type, const void* src, const void* dst,
                          int64_t n) {
  const TensorTypeTraits* traits = find_tensor_type(static_cast<uint32_t>(type));
  if (traits == nullptr) {
    return make_error(ErrorCode::kUnsupported,
                      std::string(operation) + ": unknown tensor type " + type_label(type));
  }
  if (n < 0 || n % traits->block_size != 0) {
    return make_error(ErrorCode::kInvalidArgument,
                      std::string(operation) + ": " + std::to_string(n) +
                          " elements is not a whole number of " + std::string(traits->name) +
                          " blocks of " + std::to_string(traits->block_size));
  }
  if (n > 0 && (src == nullptr || dst == nullptr)) {
    return make_error(ErrorCode::kInvalidArgument, std::string(operation) + ": null buffer for " +
                                                       std::to_string(n) + " elements of " +
                                                       std::string(traits->name));
  }
  return n / traits->block_size;
}

Error unsupported(const char* operation, TensorType type) {
  return make_error(ErrorCode::kUnsupported, std::string(operation) + ": tensor type " +
                                                 type_label(type) + " is not supported");
}

}  // namespace

bool can_dequantize(TensorType type) {
  return codec_for(type).dequantize != nullptr;
}

bool can_quantize(TensorType type) {
  return codec_for(type).quantize != nullptr;
}

Status dequantize_row(TensorType type, const void* src, float* dst, int64_t n) {
  EDGELM_TRY(const int64_t n_blocks, check_row("dequantize", type, src, dst, n));
  const detail::TypeCodec codec = codec_for(type);
  if (codec.dequantize == nullptr) return unsupported("dequantize", type);
  codec.dequantize(static_cast<const uint8_t*>(src), dst, n_blocks);
  return {};
}

Status quantize_row(TensorType type, const float* src, void* dst, int64_t n,
                    const float* importance) {
  EDGELM_TRY(const int64_t n_blocks, check_row("quantize", type, src, dst, n));
  const detail::TypeCodec codec = codec_for(type);
  if (codec.quantize == nullptr) return unsupported("quantize", type);
  codec.quantize(src, static_cast<uint8_t*>(dst), n_blocks, importance);
  return {};
}

}  // namespace edgelm::tensor
