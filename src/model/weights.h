// Views of a model's tensors, checked against the hyper-parameters when the model loads.
// Shapes are written [rows][cols] (GGUF ne = [cols, rows]): y = W x maps cols -> rows.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "edgelm/error.h"
#include "edgelm/gguf.h"
#include "edgelm/kernels.h"
#include "edgelm/model.h"

namespace edgelm::model::detail {

struct LayerWeights {
  const float* attn_norm = nullptr;       // [n_embd]
  kernels::MatrixView wq;                 // [n_head * head_dim][n_embd]
  kernels::MatrixView wk;                 // [n_head_kv * head_dim][n_embd]
  kernels::MatrixView wv;                 // [n_head_kv * head_dim][n_embd]
  kernels::MatrixView wqkv;               // fused_qkv: [q_dim + 2 kv_dim][n_embd], rows q, k, v
  const float* bq = nullptr;              // attn_bias: [q_dim]
  const float* bk = nullptr;              // attn_bias: [kv_dim]
  const float* bv = nullptr;              // attn_bias: [kv_dim]
  const float* q_norm = nullptr;          // qk_norm: [head_dim]
  const float* k_norm = nullptr;          // qk_norm: [head_dim]
  kernels::MatrixView wo;                 // [n_embd][q_dim]
  const float* post_attn_norm = nullptr;  // post_norms: [n_embd]
  const float* ffn_norm = nullptr;        // [n_embd]
  kernels::MatrixView ffn_gate;           // [n_ff][n_embd] (absent when fused_gate_up)
  kernels::MatrixView ffn_up;             // [n_ff][n_embd]; fused_gate_up: [2 n_ff][n_embd]
  kernels::MatrixView ffn_down;           // [n_embd][n_ff]
  const float* post_ffn_norm = nullptr;   // post_norms: [n_embd]
};

struct Weights {
  kernels::MatrixView token_embd;             // [n_vocab][n_embd]
  kernels::MatrixView output;                 // [n_vocab][n_embd]; token_embd when tied
  const float* output_norm = nullptr;         // [n_embd]
  const float* rope_freqs = nullptr;          // [n_rot / 2] llama3 frequency divisors
  const float* rope_factors_long = nullptr;   // [n_rot / 2] LongRoPE, n_ctx > rope_n_ctx_orig
  const float* rope_factors_short = nullptr;  // [n_rot / 2] LongRoPE otherwise
  std::vector<LayerWeights> layers;
  // 1-D tensors (norms, biases, rope factors) converted to floats at load time; a deque keeps
  // the pointers above stable as it grows.
  std::deque<std::vector<float>> vectors;
  // Copies of matrices in the active CPU path's preferred layout (the views above point into it).
  kernels::RepackedWeights repacked;
};

// The GGUF name of a tensor of block il: "blk.<il>.<suffix>".
inline std::string block_name(int32_t il, const char* suffix) {
  return "blk." + std::to_string(il) + "." + suffix;
}

// Looks tensors up by name and checks their shape and type; errors name the tensor.
class TensorLoader {
 public:
  TensorLoader(const format::GgufFile& file, Weights& weights) : file_(file), weights_(weights) {}

  // A weight matrix [rows][cols] whose type the kernels multiply.
  Result<kernels::MatrixView> matrix(const std::string& name, int64_t rows, int64_t cols);
  // A vector of n elements, converted to floats.
  Result<const float*> vector(const std::string& name, int64_t n);

 private:
  Result<const format::GgufTensorInfo*> find(const std::string& name,
                                             std::vector<uint64_t> expected_ne);
  const format::GgufFile& file_;
  Weights& weights_;
};

// Loads and checks every tensor the hyper-parameters call for.
Result<std::unique_ptr<Weights>> load_weights(const format::GgufFile& file, const HParams& hp);

// Repacks every matrix the kernels multiply faster in another layout (kernels::RepackedMatrix) and
// points its views at the copy; the file pages the copies replace are released (mapped files).
void repack_weights(Weights& weights, const format::GgufFile& file);

}  // namespace edgelm::model::detail
