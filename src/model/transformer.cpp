// The pre-norm decoder block every supported architecture shares, over a pass of n_rows rows:
//
//   h = x + PostNorm_attn( Wo · Attention( RoPE(QKNorm(Wq·n + bq)), RoPE(QKNorm(Wk·n + bk)),
//                                          Wv·n + bv ) )          with n = RMSNorm(x) · attn_norm
//   y = h + PostNorm_ffn( Wdown · (act(Wgate·m) ⊙ Wup·m) )       with m = RMSNorm(h) · ffn_norm
//
// Optional pieces (biases, q/k norms, post norms, fused qkv / gate+up, GeGLU) follow HParams.
// Every projection is one matmul over all rows of the pass; each row is rotated at its own
// position, its key and value are copied into its sequence's cache, and attention runs per
// sequence.
#include <algorithm>
#include <cstring>

#include "model/forward.h"
#include "model/weights.h"

namespace edgelm::model::detail {
namespace {

void add_bias(float* rows, const float* bias, int32_t n_rows, int64_t width) {
  for (int32_t t = 0; t < n_rows; ++t) {
    float* row = rows + t * width;
    for (int64_t i = 0; i < width; ++i) row[i] += bias[i];
  }
}

// RMS-normalizes each head_dim slice of n_rows * n_heads heads in place.
void norm_heads(float* rows, const float* weight, int64_t n_heads_total, int head_dim, float eps) {
  for (int64_t h = 0; h < n_heads_total; ++h) {
    float* head = rows + h * head_dim;
    kernels::rms_norm(head, weight, head_dim, eps, head);
  }
}

// Multiplies the rotated dims of every head by the LongRoPE attention factor (ggml folds it
// into the rotation's cos and sin).
void scale_rotated(float* rows, int64_t n_heads_total, int head_dim, int n_rot, float factor) {
  for (int64_t h = 0; h < n_heads_total; ++h) {
    float* head = rows + h * head_dim;
    for (int i = 0; i < n_rot; ++i) head[i] *= factor;
  }
}

}  // namespace

void Forward::matmul(const kernels::MatrixView& w, const std::string& name, const float* x,
                     int32_t n_rows, float* y) {
  if (observer_) observer_(name, x, n_rows, w.cols);
  kernels::matmul(w, x, n_rows, y, &pool_);
}

void Forward::attention_block(int32_t il, std::span<const Segment> segments, int32_t n_rows) {
  const LayerWeights& l = model_.weights().layers[static_cast<size_t>(il)];
  const LayerNames& names = names_[static_cast<size_t>(il)];
  const int64_t q_dim = q_dim_;
  const int64_t kv_dim = kv_dim_;

  for (int32_t t = 0; t < n_rows; ++t) {
    kernels::rms_norm(x_.data() + t * n_embd_, l.attn_norm, n_embd_, hp_.rms_eps,
                      xn_.data() + t * n_embd_);
  }
  if (hp_.fused_qkv) {
    const int64_t width = q_dim + 2 * kv_dim;
    matmul(l.wqkv, names.qkv, xn_.data(), n_rows, qkv_.data());
    for (int32_t t = 0; t < n_rows; ++t) {
      const float* row = qkv_.data() + t * width;
      std::copy_n(row, q_dim, q_.data() + t * q_dim);
      std::copy_n(row + q_dim, kv_dim, k_.data() + t * kv_dim);
      std::copy_n(row + q_dim + kv_dim, kv_dim, v_.data() + t * kv_dim);
    }
  } else {
    matmul(l.wq, names.q, xn_.data(), n_rows, q_.data());
    matmul(l.wk, names.k, xn_.data(), n_rows, k_.data());
    matmul(l.wv, names.v, xn_.data(), n_rows, v_.data());
  }
  if (hp_.attn_bias) {
    add_bias(q_.data(), l.bq, n_rows, q_dim);
    add_bias(k_.data(), l.bk, n_rows, kv_dim);
    add_bias(v_.data(), l.bv, n_rows, kv_dim);
  }
  if (hp_.qk_norm) {
    norm_heads(q_.data(), l.q_norm, int64_t{n_rows} * hp_.n_head, hp_.head_dim, hp_.rms_eps);
    norm_heads(k_.data(), l.k_norm, int64_t{n_rows} * hp_.n_head_kv, hp_.head_dim, hp_.rms_eps);
  }
  const bool swa = hp_.is_swa(il);
  const float base = swa ? hp_.rope_freq_base_swa : hp_.rope_freq_base;
  const float scale = swa ? hp_.rope_freq_scale_swa : hp_.rope_freq_scale;
  const int n_rot = hp_.n_rot;
  float* cos_sin = rope_cos_sin_[swa ? 1 : 0].data();
  if (!rope_ready_[swa ? 1 : 0]) {
    for (const Segment& seg : segments) {
      for (int32_t t = seg.row0; t < seg.row0 + seg.n_rows; ++t) {
        kernels::rope_angles(n_rot, positions_[static_cast<size_t>(t)], base, scale,
                             seg.context->rope_factors_, cos_sin + int64_t{t} * n_rot);
      }
    }
    rope_ready_[swa ? 1 : 0] = true;
  }
  for (int32_t t = 0; t < n_rows; ++t) {
    const float* angles = cos_sin + int64_t{t} * n_rot;
    kernels::rope_rotate(q_.data() + t * q_dim, hp_.n_head, hp_.head_dim, n_rot, angles,
                         hp_.rope_style);
    kernels::rope_rotate(k_.data() + t * kv_dim, hp_.n_head_kv, hp_.head_dim, n_rot, angles,
                         hp_.rope_style);
  }
  if (hp_.rope_attn_factor != 1.0f) {
    scale_rotated(q_.data(), int64_t{n_rows} * hp_.n_head, hp_.head_dim, hp_.n_rot,
                  hp_.rope_attn_factor);
    scale_rotated(k_.data(), int64_t{n_rows} * hp_.n_head_kv, hp_.head_dim, hp_.n_rot,
                  hp_.rope_attn_factor);
  }

  kernels::AttentionParams params;
  params.n_head = hp_.n_head;
  params.n_head_kv = hp_.n_head_kv;
  params.head_dim = hp_.head_dim;
  params.scale = hp_.attn_scale;
  params.softcap = hp_.attn_softcap;
  params.window = swa ? hp_.sliding_window : 0;
  for (const Segment& seg : segments) {
    Context& ctx = *seg.context;
    const int32_t pos0 = positions_[static_cast<size_t>(seg.row0)];
    ctx.store_kv(il, pos0, k_.data() + seg.row0 * kv_dim, v_.data() + seg.row0 * kv_dim,
                 seg.n_rows);
    ctx.attend(il, params, q_.data() + seg.row0 * q_dim, seg.n_rows, pos0,
               attn_out_.data() + seg.row0 * q_dim, &pool_);
  }

  matmul(l.wo, names.o, attn_out_.data(), n_rows, proj_.data());
  for (int32_t t = 0; t < n_rows; ++t) {
    float* out = proj_.data() + t * n_embd_;
    if (l.post_attn_norm != nullptr)
      kernels::rms_norm(out, l.post_attn_norm, n_embd_, hp_.rms_eps, out);
    float* x = x_.data() + t * n_embd_;
    for (int64_t i = 0; i < n_embd_; ++i) x[i] += out[i];
  }
}

void Forward::ffn_block(int32_t il, int32_t n_rows) {
  const LayerWeights& l = model_.weights().layers[static_cast<size_t>(il)];
  const LayerNames& names = names_[static_cast<size_t>(il)];
  const int64_t n_ff = hp_.n_ff;
  const bool gelu = hp_.ffn_activation == FfnActivation::kGelu;

  for (int32_t t = 0; t < n_rows; ++t) {
    kernels::rms_norm(x_.data() + t * n_embd_, l.ffn_norm, n_embd_, hp_.rms_eps,
                      xn_.data() + t * n_embd_);
  }
  if (hp_.fused_gate_up) {
    // gate_ holds [gate | up] rows of 2 n_ff; activate in place, then pack the products densely.
    matmul(l.ffn_up, names.up, xn_.data(), n_rows, gate_.data());
    for (int32_t t = 0; t < n_rows; ++t) {
      float* gate = gate_.data() + t * 2 * n_ff;
      if (gelu) {
        kernels::gelu_mul(gate, gate + n_ff, n_ff);
      } else {
        kernels::silu_mul(gate, gate + n_ff, n_ff);
      }
      std::memmove(gate_.data() + t * n_ff, gate, sizeof(float) * n_ff);
    }
  } else {
    matmul(l.ffn_gate, names.gate, xn_.data(), n_rows, gate_.data());
    matmul(l.ffn_up, names.up, xn_.data(), n_rows, up_.data());
    if (gelu) {
      kernels::gelu_mul(gate_.data(), up_.data(), n_rows * n_ff);
    } else {
      kernels::silu_mul(gate_.data(), up_.data(), n_rows * n_ff);
    }
  }
  matmul(l.ffn_down, names.down, gate_.data(), n_rows, proj_.data());
  for (int32_t t = 0; t < n_rows; ++t) {
    float* out = proj_.data() + t * n_embd_;
    if (l.post_ffn_norm != nullptr)
      kernels::rms_norm(out, l.post_ffn_norm, n_embd_, hp_.rms_eps, out);
    float* x = x_.data() + t * n_embd_;
    for (int64_t i = 0; i < n_embd_; ++i) x[i] += out[i];
  }
}

}  // namespace edgelm::model::detail
