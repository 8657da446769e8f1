#include "edgelm/tensor_type.h"

#include <array>
#include <cctype>
#include <limits>
#include <string>

namespace edgelm {
namespace {

// Block sizes and byte counts follow ggml's block structs (ggml-common.h).
constexpr std::array<TensorTypeTraits, 31> kTraits = {{
    {TensorType::kF32, "f32", 1, 4},
    {TensorType::kF16, "f16", 1, 2},
    {TensorType::kQ4_0, "q4_0", 32, 2 + 16},
    {TensorType::kQ4_1, "q4_1", 32, 2 + 2 + 16},
    {TensorType::kQ5_0, "q5_0", 32, 2 + 4 + 16},
    {TensorType::kQ5_1, "q5_1", 32, 2 + 2 + 4 + 16},
    {TensorType::kQ8_0, "q8_0", 32, 2 + 32},
    {TensorType::kQ8_1, "q8_1", 32, 2 + 2 + 32},
    {TensorType::kQ2_K, "q2_k", 256, 16 + 64 + 2 + 2},
    {TensorType::kQ3_K, "q3_k", 256, 32 + 64 + 12 + 2},
    {TensorType::kQ4_K, "q4_k", 256, 2 + 2 + 12 + 128},
    {TensorType::kQ5_K, "q5_k", 256, 2 + 2 + 12 + 32 + 128},
    {TensorType::kQ6_K, "q6_k", 256, 128 + 64 + 16 + 2},
    {TensorType::kQ8_K, "q8_k", 256, 4 + 256 + 32},
    {TensorType::kIQ2_XXS, "iq2_xxs", 256, 2 + 64},
    {TensorType::kIQ2_XS, "iq2_xs", 256, 2 + 64 + 8},
    {TensorType::kIQ3_XXS, "iq3_xxs", 256, 2 + 96},
    {TensorType::kIQ1_S, "iq1_s", 256, 2 + 32 + 16},
    {TensorType::kIQ4_NL, "iq4_nl", 32, 2 + 16},
    {TensorType::kIQ3_S, "iq3_s", 256, 2 + 64 + 8 + 32 + 4},
    {TensorType::kIQ2_S, "iq2_s", 256, 2 + 64 + 8 + 8},
    {TensorType::kIQ4_XS, "iq4_xs", 256, 2 + 2 + 4 + 128},
    {TensorType::kI8, "i8", 1, 1},
    {TensorType::kI16, "i16", 1, 2},
    {TensorType::kI32, "i32", 1, 4},
    {TensorType::kI64, "i64", 1, 8},
    {TensorType::kF64, "f64", 1, 8},
    {TensorType::kIQ1_M, "iq1_m", 256, 32 + 16 + 8},
    {TensorType::kBF16, "bf16", 1, 2},
    {TensorType::kTQ1_0, "tq1_0", 256, 48 + 4 + 2},
    {TensorType::kTQ2_0, "tq2_0", 256, 64 + 2},
}};

}  // namespace

const TensorTypeTraits* find_tensor_type(uint32_t id) {
  for (const auto& t : kTraits) {
    if (static_cast<uint32_t>(t.type) == id) return &t;
  }
  return nullptr;
}

const TensorTypeTraits& tensor_type_traits(TensorType type) {
  const TensorTypeTraits* t = find_tensor_type(static_cast<uint32_t>(type));
  assert(t != nullptr);
  return *t;
}

Result<TensorType> parse_tensor_type(std::string_view name) {
  std::string lower(name);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (const auto& t : kTraits) {
    if (t.name == lower) return t.type;
  }
  std::string valid;
  for (const auto& t : kTraits) valid += (valid.empty() ? "" : ", ") + std::string(t.name);
  return make_error(ErrorCode::kInvalidArgument,
                    "unknown tensor type '" + std::string(name) + "' (valid: " + valid + ")");
}

Result<uint64_t> tensor_bytes(TensorType type, uint64_t n_elements) {
  const TensorTypeTraits& t = tensor_type_traits(type);
  if (n_elements % t.block_size != 0) {
    return make_error(ErrorCode::kInvalidFormat,
                      std::to_string(n_elements) + " elements is not a whole number of " +
                          std::string(t.name) + " blocks of " + std::to_string(t.block_size));
  }
  const uint64_t blocks = n_elements / t.block_size;
  if (blocks > std::numeric_limits<uint64_t>::max() / t.block_bytes) {
    return make_error(ErrorCode::kOutOfRange, std::to_string(n_elements) + " elements of " +
                                                  std::string(t.name) +
                                                  " overflow a 64-bit byte count");
  }
  return blocks * t.block_bytes;
}

}  // namespace edgelm
