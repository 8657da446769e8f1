// Forward: scratch planning, the token embeddings entering a pass, and the output head leaving it.
#include "model/forward.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <utility>

#include "model/weights.h"

namespace edgelm::model::detail {

Forward::Forward(const Model& model, int32_t max_rows, int n_threads, MatmulObserver observer)
    : model_(model),
      hp_(model.hparams()),
      max_rows_(max_rows),
      n_embd_(hp_.n_embd),
      q_dim_(static_cast<int64_t>(hp_.n_head) * hp_.head_dim),
      kv_dim_(static_cast<int64_t>(hp_.n_head_kv) * hp_.head_dim),
      pool_(n_threads),
      observer_(std::move(observer)) {
  for (int32_t il = 0; il < hp_.n_layer; ++il) {
    names_.push_back({block_name(il, "attn_q.weight"), block_name(il, "attn_k.weight"),
                      block_name(il, "attn_v.weight"), block_name(il, "attn_qkv.weight"),
                      block_name(il, "attn_output.weight"), block_name(il, "ffn_gate.weight"),
                      block_name(il, "ffn_up.weight"), block_name(il, "ffn_down.weight")});
  }
  output_name_ = hp_.tied_embeddings ? "token_embd.weight" : "output.weight";

  const auto rows = static_cast<size_t>(max_rows_);
  row_index_.resize(rows);
  std::iota(row_index_.begin(), row_index_.end(), 0);
  positions_.resize(rows);
  x_.resize(rows * n_embd_);
  xn_.resize(rows * n_embd_);
  q_.resize(rows * q_dim_);
  k_.resize(rows * kv_dim_);
  v_.resize(rows * kv_dim_);
  if (hp_.fused_qkv) qkv_.resize(rows * (q_dim_ + 2 * kv_dim_));
  attn_out_.resize(rows * q_dim_);
  for (std::vector<float>& table : rope_cos_sin_) table.resize(rows * std::max(hp_.n_rot, 0));
  proj_.resize(rows * n_embd_);
  gate_.resize(rows * hp_.n_ff * (hp_.fused_gate_up ? 2 : 1));
  if (!hp_.fused_gate_up) up_.resize(rows * hp_.n_ff);
}

void Forward::run(std::span<const int32_t> tokens, std::span<const Segment> segments,
                  std::span<const int32_t> out_rows, float* logits_out) {
  const Weights& w = model_.weights();
  const auto n_rows = static_cast<int32_t>(tokens.size());

  for (int32_t t = 0; t < n_rows; ++t) {
    float* row = x_.data() + t * n_embd_;
    kernels::get_row(w.token_embd, tokens[static_cast<size_t>(t)], row);
    if (hp_.embd_scale != 1.0f) {
      for (int64_t i = 0; i < n_embd_; ++i) row[i] *= hp_.embd_scale;
    }
  }
  for (const Segment& seg : segments) {
    for (int32_t t = 0; t < seg.n_rows; ++t) {
      positions_[static_cast<size_t>(seg.row0 + t)] = seg.context->n_past_ + t;
    }
  }
  rope_ready_[0] = rope_ready_[1] = false;
  for (int32_t il = 0; il < hp_.n_layer; ++il) {
    attention_block(il, segments, n_rows);
    ffn_block(il, n_rows);
  }
  for (const Segment& seg : segments) {
    Context& ctx = *seg.context;
    ctx.n_past_ += seg.n_rows;
    kernels::rms_norm(x_.data() + (seg.row0 + seg.n_rows - 1) * n_embd_, w.output_norm, n_embd_,
                      hp_.rms_eps, ctx.last_hidden_.data());
  }

  // The head only for the rows asked for.
  n_out_ = out_rows.size();
  const auto n_out = static_cast<int32_t>(n_out_);
  for (int32_t i = 0; i < n_out; ++i) {
    kernels::rms_norm(x_.data() + out_rows[static_cast<size_t>(i)] * n_embd_, w.output_norm,
                      n_embd_, hp_.rms_eps, xn_.data() + i * n_embd_);
  }
  if (logits_out == nullptr || n_out == 0) return;
  matmul(w.output, output_name_, xn_.data(), n_out, logits_out);
  if (hp_.final_softcap > 0.0f) {
    const float cap = hp_.final_softcap;
    for (int64_t i = 0; i < n_out * static_cast<int64_t>(hp_.n_vocab); ++i) {
      logits_out[i] = cap * std::tanh(logits_out[i] / cap);
    }
  }
}

}  // namespace edgelm::model::detail
