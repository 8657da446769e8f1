// Tensor element types with the exact GGUF/ggml type ids and block layouts.
#pragma once

#include <cstdint>
#include <string_view>

#include "edgelm/error.h"

namespace edgelm {

// Values are the ggml type ids stored in GGUF tensor infos; gaps are ids ggml retired.
enum class TensorType : uint32_t {
  kF32 = 0,
  kF16 = 1,
  kQ4_0 = 2,
  kQ4_1 = 3,
  kQ5_0 = 6,
  kQ5_1 = 7,
  kQ8_0 = 8,
  kQ8_1 = 9,
  kQ2_K = 10,
  kQ3_K = 11,
  kQ4_K = 12,
  kQ5_K = 13,
  kQ6_K = 14,
  kQ8_K = 15,
  kIQ2_XXS = 16,
  kIQ2_XS = 17,
  kIQ3_XXS = 18,
  kIQ1_S = 19,
  kIQ4_NL = 20,
  kIQ3_S = 21,
  kIQ2_S = 22,
  kIQ4_XS = 23,
  kI8 = 24,
  kI16 = 25,
  kI32 = 26,
  kI64 = 27,
  kF64 = 28,
  kIQ1_M = 29,
  kBF16 = 30,
  kTQ1_0 = 34,
  kTQ2_0 = 35,
};

struct TensorTypeTraits {
  TensorType type;
  std::string_view name;  // lower-case ggml name: "q4_k", "bf16"
  uint32_t block_size;    // elements per block (1 for plain types)
  uint32_t block_bytes;   // bytes per block
};

// Traits for a raw type id read from a file; nullptr when the id is not a known ggml type.
const TensorTypeTraits* find_tensor_type(uint32_t id);
const TensorTypeTraits& tensor_type_traits(TensorType type);
inline std::string_view tensor_type_name(TensorType type) { return tensor_type_traits(type).name; }
// Case-insensitive: "Q8_0", "q8_0", "f16".
Result<TensorType> parse_tensor_type(std::string_view name);

// Bytes used by n elements of `type`; an error unless n is a whole number of blocks or on overflow.
Result<uint64_t> tensor_bytes(TensorType type, uint64_t n_elements);

}  // namespace edgelm
