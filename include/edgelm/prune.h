// Pruning: a smaller, faster dense model by removing whole FFN channels and attention heads, or
// (optionally) zeroing the smallest individual weights.
//
// Structured pruning removes the same number of units from every layer, each layer its own least
// important ones, because the model loader (like llama.cpp for most architectures) needs uniform
// per-layer counts:
//  - FFN channel c of a layer: row c of ffn_gate and ffn_up (phi3's fused ffn_up: rows c and
//    n_ff + c) and column c of ffn_down. feed_forward_length is updated. When n_ff is a multiple
//    of 32 the kept count is rounded to a multiple of 32 so 32-element block types still fit.
//  - Attention heads go by whole KV groups: a KV head together with the n_head / n_head_kv query
//    heads that read it (rows of attn_q, attn_k, attn_v and their biases, or of phi3's fused
//    attn_qkv; columns of attn_output). Grouped-query attention keeps its group size, the KV
//    cache shrinks with the heads, and head_count, head_count_kv, key_length and value_length are
//    updated (head_dim stays).
// Importance scores (higher = kept):
//  - magnitude (no calibration): channel c -> |gate_c| * |up_c| * |down_:,c| (L2 norms of its
//    rows/column); KV group g -> |Wv_g| * sum over its query heads h of |Wo_:,h| (Frobenius).
//  - activation-aware (an importance matrix, e.g. from calibration text): channel c ->
//    sqrt(E[h_c^2]) * |down_:,c| with h the input of ffn_down; query head h ->
//    sqrt(sum over its columns j of E[a_j^2] |Wo_:,j|^2) with a the input of attn_output, summed
//    over the group.
// Unstructured pruning zeroes, in each row of every blk.* weight matrix, the `sparsity` share of
// weights with the smallest |w| (or |w| * sqrt(E[x_j^2]) with an importance matrix, as in Wanda).
// The file keeps its dense layout: the kernels do not skip zeros, so size and speed do not change
// (the zeros only help a later compression step).
// Tensors whose columns were removed are re-encoded in their type when the new row length is a
// whole number of its blocks, else in F16 (F32 stays F32). Prune before quantizing, and collect
// an importance matrix for quantization on the pruned model (widths change).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include "edgelm/error.h"
#include "edgelm/gguf.h"

namespace edgelm::tools {

struct ImportanceMatrix;  // edgelm/imatrix.h

struct PruneOptions {
  double ffn_ratio = 0.0;   // share of FFN channels removed per layer, [0, 1)
  double head_ratio = 0.0;  // share of KV groups (with their query heads) removed per layer, [0, 1)
  double sparsity = 0.0;    // share of weights zeroed per row of blk.* matrices, [0, 1)
  // Activation statistics for activation-aware scores; null: weight magnitude. Not owned.
  const ImportanceMatrix* imatrix = nullptr;
};

struct PruneReport {
  int32_t n_ff_before = 0, n_ff_after = 0;
  int32_t n_head_before = 0, n_head_after = 0;
  int32_t n_head_kv_before = 0, n_head_kv_after = 0;
  uint64_t bytes_before = 0, bytes_after = 0;  // tensor data
  uint64_t params_before = 0, params_after = 0;
  uint64_t weights_zeroed = 0;  // by unstructured pruning
  bool activation_aware = false;
};

// Prunes `in` into a new GGUF written atomically to `out`. Errors: ratios outside [0, 1), a ratio
// that would remove every unit, an architecture or file the model loader rejects, an importance
// matrix that lacks ffn_down/attn_output entries or has other widths.
Result<PruneReport> prune_model(const format::GgufFile& in, const std::filesystem::path& out,
                                const PruneOptions& options);

}  // namespace edgelm::tools
