// Model quantization: rewrite a GGUF with its weight matrices in a smaller tensor type.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "edgelm/error.h"
#include "edgelm/gguf.h"
#include "edgelm/tensor_type.h"

namespace edgelm::tools {

struct ImportanceMatrix;  // edgelm/imatrix.h

// A quantization recipe: one target type for every weight matrix, or a llama.cpp-style K-quant
// mix (q4_k_m, q5_k_m) that gives more bits to output.weight and to attn_v/ffn_down of the layers
// where they matter most.
struct QuantRecipe {
  std::string name;      // "q8_0", "q4_k_m"
  TensorType base;       // most matrices
  TensorType more_bits;  // the favoured tensors (== base for single-type recipes)
  uint32_t file_type;    // general.file_type (llama.cpp's LLAMA_FTYPE_*)
};

// Accepts every quantizable type name (q8_0, q4_k, f16, tq2_0, ...) and q4_k_m, q5_k_m.
Result<QuantRecipe> parse_quant_recipe(std::string_view name);

// The recipe for the `quant_bits` config key: 8 -> q8_0, 4 -> q4_0 (rows that are not a whole
// number of 32-element blocks fall back to F16, as choose_tensor_type does). q4_0 rather than
// q4_k because K-quants need rows of 256 elements, which many small models do not have.
Result<QuantRecipe> recipe_for_quant_bits(int bits);

struct QuantizeOptions {
  QuantRecipe recipe;
  // Tensors whose name contains one of these stay in F16 (or their own type if narrower), e.g.
  // {"output", "token_embd"}.
  std::vector<std::string> keep_f16;
  int n_threads = 1;
  // Per-column importance (edgelm/imatrix.h) for the tensors it has an entry for: passed to
  // tensor::quantize_row, which weights the rounding error by it (the K-quants use it; the
  // fixed-rule types ignore it). Not owned; may be null.
  const ImportanceMatrix* imatrix = nullptr;
  // Called after each tensor with (tensors done, total); may be empty.
  std::function<void(size_t done, size_t total)> progress;
};

struct QuantizedTensor {
  std::string name;
  TensorType from = TensorType::kF32;
  TensorType to = TensorType::kF32;
  uint64_t bytes_before = 0;
  uint64_t bytes_after = 0;
  bool used_imatrix = false;
};

struct QuantizeReport {
  std::vector<QuantizedTensor> tensors;
  uint64_t bytes_before = 0;
  uint64_t bytes_after = 0;
};

// The type a tensor gets under `recipe` in a model of n_layer layers: the recipe's type for weight
// matrices whose rows are a whole number of its blocks; otherwise the nearest type that fits
// (K-quants -> 32-block types -> F16), like llama.cpp. Vectors (norms, biases) and tensors already
// narrower keep their type.
TensorType choose_tensor_type(const format::GgufTensorInfo& info, const QuantRecipe& recipe, int32_t n_layer);

// Quantizes `in` into a new GGUF written atomically to `out`; metadata is kept, general.file_type
// is updated. An imatrix entry whose width differs from a tensor's rows is an error naming both.
Result<QuantizeReport> quantize_model(const format::GgufFile& in, const std::filesystem::path& out,
                                      const QuantizeOptions& options);

// The same, returning the new file's bytes instead of writing them (load-time quantization:
// parse them with format::GgufFile::parse, keeping the vector alive as long as the file).
Result<std::vector<uint8_t>> quantize_model_to_bytes(const format::GgufFile& in,
                                                     const QuantizeOptions& options,
                                                     QuantizeReport* report = nullptr);

}  // namespace edgelm::tools
