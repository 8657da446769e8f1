#include "model/weights.h"

#include <string>
#include <utility>

#include "edgelm/quant.h"

namespace edgelm::model::detail {
namespace {

std::string shape_string(const std::vector<uint64_t>& ne) {
  std::string s = "[";
  for (size_t i = 0; i < ne.size(); ++i) s += (i ? ", " : "") + std::to_string(ne[i]);
  return s + "]";
}

// Trailing dimensions of 1 carry no information (a [64] vector may be stored as [64, 1]).
std::vector<uint64_t> trimmed(std::vector<uint64_t> ne) {
  while (ne.size() > 1 && ne.back() == 1) ne.pop_back();
  return ne;
}

}  // namespace

Result<const format::GgufTensorInfo*> TensorLoader::find(const std::string& name,
                                                         std::vector<uint64_t> expected_ne) {
  const format::GgufTensorInfo* info = file_.find_tensor(name);
  if (info == nullptr) {
    return make_error(ErrorCode::kNotFound, "tensor '" + name + "' is missing");
  }
  if (trimmed(info->ne) != trimmed(expected_ne)) {
    return make_error(ErrorCode::kInvalidFormat, "tensor '" + name + "': shape " +
                                                     shape_string(info->ne) + ", expected " +
                                                     shape_string(expected_ne));
  }
  return info;
}

Result<kernels::MatrixView> TensorLoader::matrix(const std::string& name, int64_t rows,
                                                 int64_t cols) {
  EDGELM_TRY(const format::GgufTensorInfo* info,
             find(name, {static_cast<uint64_t>(cols), static_cast<uint64_t>(rows)}));
  if (!kernels::supports_type(info->type)) {
    return make_error(ErrorCode::kUnsupported, "tensor '" + name + "': type " +
                                                   std::string(tensor_type_name(info->type)) +
                                                   " is not supported by the matmul kernels");
  }
  auto row_bytes = tensor_bytes(info->type, static_cast<uint64_t>(cols));
  if (!row_bytes) {
    return make_error(ErrorCode::kInvalidFormat,
                      "tensor '" + name + "': rows of " + std::to_string(cols) +
                          " elements are not whole " + std::string(tensor_type_name(info->type)) +
                          " blocks");
  }
  const std::span<const uint8_t> data = file_.tensor_data(*info);
  if (data.size() < *row_bytes * static_cast<uint64_t>(rows)) {
    return make_error(ErrorCode::kInvalidFormat, "tensor '" + name + "': data is truncated");
  }
  return kernels::MatrixView{info->type, data.data(), rows, cols, *row_bytes};
}

Result<const float*> TensorLoader::vector(const std::string& name, int64_t n) {
  EDGELM_TRY(const format::GgufTensorInfo* info, find(name, {static_cast<uint64_t>(n)}));
  const std::span<const uint8_t> data = file_.tensor_data(*info);
  auto n_bytes = tensor_bytes(info->type, static_cast<uint64_t>(n));
  if (!tensor::can_dequantize(info->type) || !n_bytes || data.size() < *n_bytes) {
    return make_error(ErrorCode::kUnsupported, "tensor '" + name +
                                                   "': cannot read a vector of type " +
                                                   std::string(tensor_type_name(info->type)));
  }
  std::vector<float>& values = weights_.vectors.emplace_back(static_cast<size_t>(n));
  Status status = tensor::dequantize_row(info->type, data.data(), values.data(), n);
  if (!status) {
    return make_error(status.error().code, "tensor '" + name + "': " + status.error().message);
  }
  return values.data();
}

Result<std::unique_ptr<Weights>> load_weights(const format::GgufFile& file, const HParams& hp) {
  auto weights = std::make_unique<Weights>();
  Weights& w = *weights;
  TensorLoader loader(file, w);
  const int64_t n_embd = hp.n_embd;
  const int64_t q_dim = static_cast<int64_t>(hp.n_head) * hp.head_dim;
  const int64_t kv_dim = static_cast<int64_t>(hp.n_head_kv) * hp.head_dim;
  const int64_t n_ff = hp.n_ff;

  EDGELM_TRY(w.token_embd, loader.matrix("token_embd.weight", hp.n_vocab, n_embd));
  EDGELM_TRY(w.output_norm, loader.vector("output_norm.weight", n_embd));
  if (hp.tied_embeddings) {
    w.output = w.token_embd;
  } else {
    EDGELM_TRY(w.output, loader.matrix("output.weight", hp.n_vocab, n_embd));
  }
  if (hp.has_rope_freqs) {
    EDGELM_TRY(w.rope_freqs, loader.vector("rope_freqs.weight", hp.n_rot / 2));
  }
  if (hp.rope_scaling == RopeScaling::kLongRope) {
    EDGELM_TRY(w.rope_factors_long, loader.vector("rope_factors_long.weight", hp.n_rot / 2));
    EDGELM_TRY(w.rope_factors_short, loader.vector("rope_factors_short.weight", hp.n_rot / 2));
  }

  w.layers.resize(static_cast<size_t>(hp.n_layer));
  for (int32_t il = 0; il < hp.n_layer; ++il) {
    LayerWeights& l = w.layers[static_cast<size_t>(il)];
    auto name = [il](const char* suffix) { return block_name(il, suffix); };
    EDGELM_TRY(l.attn_norm, loader.vector(name("attn_norm.weight"), n_embd));
    if (hp.fused_qkv) {
      EDGELM_TRY(l.wqkv, loader.matrix(name("attn_qkv.weight"), q_dim + 2 * kv_dim, n_embd));
    } else {
      EDGELM_TRY(l.wq, loader.matrix(name("attn_q.weight"), q_dim, n_embd));
      EDGELM_TRY(l.wk, loader.matrix(name("attn_k.weight"), kv_dim, n_embd));
      EDGELM_TRY(l.wv, loader.matrix(name("attn_v.weight"), kv_dim, n_embd));
    }
    if (hp.attn_bias) {
      EDGELM_TRY(l.bq, loader.vector(name("attn_q.bias"), q_dim));
      EDGELM_TRY(l.bk, loader.vector(name("attn_k.bias"), kv_dim));
      EDGELM_TRY(l.bv, loader.vector(name("attn_v.bias"), kv_dim));
    }
    if (hp.qk_norm) {
      EDGELM_TRY(l.q_norm, loader.vector(name("attn_q_norm.weight"), hp.head_dim));
      EDGELM_TRY(l.k_norm, loader.vector(name("attn_k_norm.weight"), hp.head_dim));
    }
    EDGELM_TRY(l.wo, loader.matrix(name("attn_output.weight"), n_embd, q_dim));
    EDGELM_TRY(l.ffn_norm, loader.vector(name("ffn_norm.weight"), n_embd));
    if (hp.fused_gate_up) {
      EDGELM_TRY(l.ffn_up, loader.matrix(name("ffn_up.weight"), 2 * n_ff, n_embd));
    } else {
      EDGELM_TRY(l.ffn_gate, loader.matrix(name("ffn_gate.weight"), n_ff, n_embd));
      EDGELM_TRY(l.ffn_up, loader.matrix(name("ffn_up.weight"), n_ff, n_embd));
    }
    EDGELM_TRY(l.ffn_down, loader.matrix(name("ffn_down.weight"), n_embd, n_ff));
    if (hp.post_norms) {
      EDGELM_TRY(l.post_attn_norm, loader.vector(name("post_attention_norm.weight"), n_embd));
      EDGELM_TRY(l.post_ffn_norm, loader.vector(name("post_ffw_norm.weight"), n_embd));
    }
  }
  return weights;
}

void repack_weights(Weights& weights, const format::GgufFile& file) {
  std::vector<kernels::MatrixView*> matrices;
  // Tied embeddings: the lookup reads the output matrix's copy too (get_row reads any layout).
  const bool tied = weights.token_embd.data == weights.output.data;
  matrices.push_back(&weights.output);
  for (LayerWeights& l : weights.layers) {
    for (kernels::MatrixView* m : {&l.wq, &l.wk, &l.wv, &l.wqkv, &l.wo, &l.ffn_gate, &l.ffn_up,
                                   &l.ffn_down}) {
      if (m->data != nullptr) matrices.push_back(m);
    }
  }
  weights.repacked = kernels::RepackedWeights::repack(matrices, [&](const kernels::MatrixView& m) {
    file.release_pages({m.data, m.row_bytes * static_cast<uint64_t>(m.rows)});
  });
  if (tied) weights.token_embd = weights.output;
}

}  // namespace edgelm::model::detail
