// The forward pass over one activation matrix whose rows may belong to several sequences: every
// weight matrix is multiplied once per pass over all rows, while RoPE positions, the KV cache
// writes and attention follow each row's own Context. Context::decode (one sequence) and
// BatchDecoder (many) both run through here.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "edgelm/model.h"
#include "edgelm/thread_pool.h"

namespace edgelm::model::detail {

// Rows [row0, row0 + n_rows) of a pass: tokens of `context` at positions context->n_past()...
struct Segment {
  Context* context = nullptr;
  int32_t row0 = 0;
  int32_t n_rows = 0;
};

class Forward {
 public:
  Forward(const Model& model, int32_t max_rows, int n_threads, MatmulObserver observer);

  int32_t max_rows() const { return max_rows_; }
  // Row indices first .. first + count - 1 (count <= max_rows), for out_rows.
  std::span<const int32_t> row_range(int32_t first, int32_t count) const {
    return std::span<const int32_t>(row_index_)
        .subspan(static_cast<size_t>(first), static_cast<size_t>(count));
  }

  // Evaluates `tokens` (the segments' rows stacked in order; at most max_rows, checked by the
  // caller, as are ids and free cache positions), appends each row's key and value to its
  // context's cache, advances every context's n_past and sets its last_hidden. Then, for the
  // rows listed in `out_rows` (ascending), leaves their final-normed hidden states in
  // out_hidden() and, unless logits_out is null, writes their logits ([n_out][n_vocab]).
  void run(std::span<const int32_t> tokens, std::span<const Segment> segments,
           std::span<const int32_t> out_rows, float* logits_out);

  // [out_rows.size()][n_embd] from the last run().
  std::span<const float> out_hidden() const {
    return {xn_.data(), n_out_ * static_cast<size_t>(n_embd_)};
  }

 private:
  struct LayerNames {  // GGUF names reported to the matmul observer
    std::string q, k, v, qkv, o, gate, up, down;
  };

  void attention_block(int32_t il, std::span<const Segment> segments, int32_t n_rows);
  void ffn_block(int32_t il, int32_t n_rows);
  void matmul(const kernels::MatrixView& w, const std::string& name, const float* x, int32_t n_rows,
              float* y);

  const Model& model_;
  const HParams& hp_;
  const int32_t max_rows_;
  const int64_t n_embd_;
  const int64_t q_dim_;   // n_head * head_dim
  const int64_t kv_dim_;  // n_head_kv * head_dim
  ThreadPool pool_;
  MatmulObserver observer_;
  std::vector<LayerNames> names_;
  std::string output_name_;
  size_t n_out_ = 0;

  // Scratch, sized for max_rows rows.
  std::vector<int32_t> row_index_;  // [max_rows] 0, 1, 2, ...
  std::vector<int32_t> positions_;  // [max_rows] position of each row in its sequence
  std::vector<float> x_;            // [max_rows][n_embd] residual stream
  std::vector<float> xn_;           // [max_rows][n_embd] normed input of a block
  std::vector<float> q_;            // [max_rows][q_dim]
  std::vector<float> k_;            // [max_rows][kv_dim] before the copy into the caches
  std::vector<float> v_;            // [max_rows][kv_dim]
  std::vector<float> qkv_;          // [max_rows][q_dim + 2 kv_dim] (fused qkv only)
  std::vector<float> attn_out_;     // [max_rows][q_dim]
  std::vector<float> proj_;         // [max_rows][n_embd] block output before the residual add
  // [max_rows][n_rot] cos and sin of each row's RoPE angles (kernels::rope_angles), computed at
  // the first layer of a pass that needs them: [0] for global layers, [1] for sliding-window ones.
  std::vector<float> rope_cos_sin_[2];
  bool rope_ready_[2] = {false, false};
  std::vector<float> gate_;         // [max_rows][n_ff] (fused: [max_rows][2 n_ff])
  std::vector<float> up_;           // [max_rows][n_ff]
};

}  // namespace edgelm::model::detail
