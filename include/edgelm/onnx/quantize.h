// Dynamic 8-bit quantization of an ONNX model's MatMul/Gemm weights, producing the same standard
// operator pattern as onnxruntime.quantization.quantize_dynamic, so ONNX Runtime runs the output:
//   X -> DynamicQuantizeLinear -> (Xq, Xscale, Xzp)
//   MatMulInteger(Xq, Wq, Xzp, Wzp) -> Cast(float) -> Mul(Xscale * Wscale) [-> Add(bias) for Gemm]
// Weights: quint8 asymmetric (scale = (max - min) / 255 over a range holding 0) or qint8
// symmetric (scale = max|w| / 127, zero point 0); per tensor, or per output column.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string_view>

#include "edgelm/error.h"

namespace edgelm::onnx {

enum class WeightType { kQUInt8, kQInt8 };
Result<WeightType> parse_weight_type(std::string_view name);  // "quint8" | "qint8"

struct QuantizeOptions {
  WeightType weight_type = WeightType::kQUInt8;
  bool per_channel = false;
  int64_t min_elements = 16;  // smaller weights stay float (as ORT skips tiny ones)
};

struct QuantizeReport {
  int64_t quantized = 0;  // MatMul/Gemm nodes rewritten
  int64_t skipped = 0;    // MatMul/Gemm nodes left as they were (dynamic or non-2-D weights)
  uint64_t bytes_in = 0;
  uint64_t bytes_out = 0;
};

// Reads `in` (validated like Session::open; external data is inlined into `out`), writes `out`.
Result<QuantizeReport> quantize_dynamic(const std::filesystem::path& in,
                                        const std::filesystem::path& out,
                                        const QuantizeOptions& options);

}  // namespace edgelm::onnx
