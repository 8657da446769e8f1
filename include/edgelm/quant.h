// Reference (scalar) quantization and dequantization for every supported tensor type.
// These define the numerics; SIMD paths in kernels/ are tested against them.
#pragma once

#include <cstdint>
#include <span>

#include "edgelm/error.h"
#include "edgelm/tensor_type.h"

namespace edgelm::tensor {

// Exact bit-level conversions. NaNs behave as x86 F16C does: sign and top payload bits kept, made
// quiet. Every non-NaN half round-trips through fp32 unchanged.
float fp16_to_fp32(uint16_t h);
uint16_t fp32_to_fp16(float f);  // round to nearest even; overflow gives inf
float bf16_to_fp32(uint16_t h);
uint16_t fp32_to_bf16(float f);  // round to nearest even, NaN stays NaN

// Dequantize: f32 f16 bf16 f64 i8 i16 i32 i64 q4_0 q4_1 q5_0 q5_1 q8_0 q8_1 q2_K..q6_K q8_K tq1_0
// tq2_0. Quantize: the same minus f64 and the integer types. Other types (the IQ family) are
// reported as unsupported.
bool can_dequantize(TensorType type);
bool can_quantize(TensorType type);

// dst[0..n) = values of n elements stored at src (any alignment). n must be a multiple of the
// block size; errors name the type and the problem ("dequantize: tensor type iq2_xxs is not
// supported"). Never fails on the contents: any bytes decode to some floats.
Status dequantize_row(TensorType type, const void* src, float* dst, int64_t n);
// Encodes n floats into `type` blocks at dst (tensor_bytes(type, n) bytes). q4_0..q8_1, q8_K and
// tq1_0/tq2_0 follow ggml's reference rules byte for byte; the K-quants search their scales.
// `importance`, when given (n weights, e.g. from an importance matrix), weights the rounding
// error that the scale search of q4_0..q5_1 and the K-quants minimises; q8_0/q8_1 and the
// ternary types ignore it. NaN/inf input gives
// garbage in its own block only, never undefined behaviour.
Status quantize_row(TensorType type, const float* src, void* dst, int64_t n,
                    const float* importance = nullptr);

}  // namespace edgelm::tensor
