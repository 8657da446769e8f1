// Reference (scalar) quantization and dequantization for every supported tensor type.
// These define the numerics; SIMD paths in kernels/ are tested against them.
#pragma once

#include <cstdint>
#include <span>

#include "edgelm/error.h"
#include "edgelm/tensor_type.h"

namespace edgelm::tensor {

float fp16_to_fp32(uint16_t h);
uint16_t fp32_to_fp16(float f);  // round to nearest even
float bf16_to_fp32(uint16_t h);
uint16_t fp32_to_bf16(float f);  // round to nearest even, NaN preserved

bool can_dequantize(TensorType type);
bool can_quantize(TensorType type);

// dst[0..n) = values of n elements stored at src. n must be a multiple of the block size.
Status dequantize_row(TensorType type, const void* src, float* dst, int64_t n);
// Encodes n floats into `type` blocks at dst (tensor_bytes(type, n) bytes). `importance`, when
// given (n weights, e.g. from an importance matrix), weights the rounding error the search minimises.
Status quantize_row(TensorType type, const float* src, void* dst, int64_t n,
                    const float* importance = nullptr);

}  // namespace edgelm::tensor
