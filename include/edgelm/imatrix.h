// Importance matrix: for every weight matrix W (y = W x), the mean of x_j^2 over calibration text
// for each input column j. The quantizer weights its rounding error by it (columns that see large
// activations matter more), and activation-aware pruning ranks channels and heads with it.
//
// File format: a GGUF file (readable by any GGUF tool) with
//   general.type              = "imatrix"
//   edgelm.imatrix.version    = 1 (u32)
//   edgelm.imatrix.model      = general.name or file name of the model it was collected on
//   edgelm.imatrix.dataset    = the calibration text's file name
//   edgelm.imatrix.n_tokens   = calibration tokens evaluated (u64)
//   edgelm.imatrix.n_ctx      = window length used (u32)
// and two F32 tensors per weight matrix named after it:
//   "<weight name>.in_sum_sq"  [n_cols]  sum over calibration tokens of x_j^2
//   "<weight name>.in_count"   [1]       number of tokens summed (so files can be merged)
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "edgelm/error.h"
#include "edgelm/model.h"

namespace edgelm::tools {

struct ImportanceMatrix {
  struct Entry {
    std::vector<double> sum_sq;  // [n_cols]
    int64_t count = 0;           // tokens summed
  };
  std::map<std::string, Entry, std::less<>> entries;  // by weight tensor name
  std::string model_name;
  std::string dataset;
  int64_t n_tokens = 0;
  int32_t n_ctx = 0;

  // Adds n_tokens input rows of n_cols floats seen by `tensor`. kInvalidArgument when the tensor
  // was seen before with another width.
  Status add(std::string_view tensor, const float* x, int64_t n_tokens, int64_t n_cols);
  const Entry* find(std::string_view tensor) const;
  // Mean of x_j^2 per column as floats (what quantize_row's `importance` takes); empty when the
  // tensor has no entry.
  std::vector<float> mean_sq(std::string_view tensor) const;
};

Status save_imatrix(const ImportanceMatrix& imatrix, const std::filesystem::path& path);
// Validates the file: every entry needs both tensors, finite non-negative sums, count >= 1.
Result<ImportanceMatrix> load_imatrix(const std::filesystem::path& path);

struct ImatrixOptions {
  int32_t n_ctx = 512;  // tokens per window; each window starts from an empty cache
  int n_threads = 1;
  int32_t n_batch = 512;
  TensorType kv_type = TensorType::kF16;  // KV cache of the observed contexts (as at run time)
};

// Evaluates `tokens` window by window and records the inputs of every weight matrix (including
// the output matrix, for every position) through model::ContextOptions::matmul_observer, so the
// statistics come from the one forward pass the runtime uses.
Result<ImportanceMatrix> collect_imatrix(const model::Model& model, std::span<const int32_t> tokens,
                                         const ImatrixOptions& options = {});

}  // namespace edgelm::tools
