// Structured (FFN channels, KV groups of heads) and unstructured (magnitude) pruning; see prune.h.
#include "edgelm/prune.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <numeric>
#include <vector>

#include "edgelm/imatrix.h"
#include "edgelm/model.h"
#include "edgelm/quant.h"

namespace edgelm::tools {
namespace {

constexpr int32_t kBlockAlign = 32;      // keep n_ff a multiple of the 32-element block types
constexpr int32_t kGemma27BLayers = 62;  // its q·k scale depends on n_head (see model/gemma3.cpp)

// A tensor dequantized to floats, row-major [rows][cols].
struct Dense {
  int64_t rows = 0;
  int64_t cols = 0;
  std::vector<float> v;
  const float* row(int64_t r) const { return v.data() + r * cols; }
};

Result<Dense> load_dense(const format::GgufFile& file, const format::GgufTensorInfo& info) {
  Dense d;
  d.cols = static_cast<int64_t>(info.ne[0]);
  d.rows = static_cast<int64_t>(info.n_elements / std::max<uint64_t>(info.ne[0], 1));
  d.v.resize(info.n_elements);
  const auto bytes = file.tensor_data(info);
  const uint64_t row_bytes = info.n_bytes / static_cast<uint64_t>(std::max<int64_t>(d.rows, 1));
  for (int64_t r = 0; r < d.rows; ++r) {
    const Status s = tensor::dequantize_row(info.type, bytes.data() + r * row_bytes,
                                            d.v.data() + r * d.cols, d.cols);
    if (!s)
      return make_error(s.error().code, "prune: tensor '" + info.name + "': " + s.error().message);
  }
  return d;
}

Result<Dense> load_dense(const format::GgufFile& file, const std::string& name) {
  const format::GgufTensorInfo* info = file.find_tensor(name);
  if (info == nullptr)
    return make_error(ErrorCode::kNotFound, "prune: tensor '" + name + "' is missing");
  return load_dense(file, *info);
}

double row_norm_sq(const Dense& m, int64_t r) {
  double s = 0;
  for (int64_t c = 0; c < m.cols; ++c) s += double{m.row(r)[c]} * m.row(r)[c];
  return s;
}

std::vector<double> col_norms_sq(const Dense& m) {
  std::vector<double> s(static_cast<size_t>(m.cols), 0.0);
  for (int64_t r = 0; r < m.rows; ++r) {
    for (int64_t c = 0; c < m.cols; ++c)
      s[static_cast<size_t>(c)] += double{m.row(r)[c]} * m.row(r)[c];
  }
  return s;
}

// Indices of the n_keep highest scores, in ascending index order (ties keep the lower index).
std::vector<int64_t> keep_top(const std::vector<double>& scores, int64_t n_keep) {
  std::vector<int64_t> order(scores.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
    return scores[static_cast<size_t>(a)] > scores[static_cast<size_t>(b)];
  });
  order.resize(static_cast<size_t>(n_keep));
  std::sort(order.begin(), order.end());
  return order;
}

Result<std::vector<float>> imatrix_means(const ImportanceMatrix& imatrix, const std::string& name,
                                         int64_t n_cols) {
  std::vector<float> mean = imatrix.mean_sq(name);
  if (mean.empty()) {
    return make_error(ErrorCode::kInvalidArgument,
                      "prune: the importance matrix has no entry for '" + name + "'");
  }
  if (static_cast<int64_t>(mean.size()) != n_cols) {
    return make_error(ErrorCode::kInvalidArgument,
                      "prune: importance matrix entry '" + name + "' has " +
                          std::to_string(mean.size()) + " columns, the tensor " +
                          std::to_string(n_cols) + " (collected on another model?)");
  }
  return mean;
}

std::string layer_name(int32_t il, const char* tensor) {
  return "blk." + std::to_string(il) + "." + tensor;
}

// Kept FFN channels of layer il.
Result<std::vector<int64_t>> rank_ffn(const format::GgufFile& file, const model::HParams& hp,
                                      int32_t il, int64_t n_keep, const ImportanceMatrix* imatrix) {
  const int64_t n_ff = hp.n_ff;
  EDGELM_TRY(Dense down, load_dense(file, layer_name(il, "ffn_down.weight")));
  const std::vector<double> down_cols = col_norms_sq(down);
  std::vector<double> scores(static_cast<size_t>(n_ff));
  if (imatrix != nullptr) {
    EDGELM_TRY(std::vector<float> act,
               imatrix_means(*imatrix, layer_name(il, "ffn_down.weight"), n_ff));
    for (int64_t c = 0; c < n_ff; ++c) scores[c] = std::sqrt(double{act[c]} * down_cols[c]);
  } else {
    EDGELM_TRY(Dense up, load_dense(file, layer_name(il, "ffn_up.weight")));
    Dense gate_separate;
    if (!hp.fused_gate_up) {
      EDGELM_TRY(gate_separate, load_dense(file, layer_name(il, "ffn_gate.weight")));
    }
    for (int64_t c = 0; c < n_ff; ++c) {
      const double gate = hp.fused_gate_up ? row_norm_sq(up, c) : row_norm_sq(gate_separate, c);
      const double up_sq = row_norm_sq(up, hp.fused_gate_up ? n_ff + c : c);
      scores[c] = std::sqrt(gate * up_sq * down_cols[c]);
    }
  }
  return keep_top(scores, n_keep);
}

// Kept KV groups of layer il.
Result<std::vector<int64_t>> rank_groups(const format::GgufFile& file, const model::HParams& hp,
                                         int32_t il, int64_t n_keep,
                                         const ImportanceMatrix* imatrix) {
  const int64_t hd = hp.head_dim, q_dim = int64_t{hp.n_head} * hd,
                kv_dim = int64_t{hp.n_head_kv} * hd;
  const int64_t group = hp.n_head / hp.n_head_kv;
  EDGELM_TRY(Dense wo, load_dense(file, layer_name(il, "attn_output.weight")));
  const std::vector<double> wo_cols = col_norms_sq(wo);
  std::vector<double> head_scores(static_cast<size_t>(hp.n_head), 0.0);
  std::vector<double> group_scores(static_cast<size_t>(hp.n_head_kv), 0.0);
  if (imatrix != nullptr) {
    EDGELM_TRY(std::vector<float> act,
               imatrix_means(*imatrix, layer_name(il, "attn_output.weight"), q_dim));
    for (int64_t h = 0; h < hp.n_head; ++h) {
      double s = 0;
      for (int64_t j = h * hd; j < (h + 1) * hd; ++j) s += act[j] * wo_cols[j];
      group_scores[h / group] += std::sqrt(s);
    }
  } else {
    // Wv rows of group g: the separate attn_v, or rows q_dim + kv_dim + ... of the fused attn_qkv.
    Dense wv;
    int64_t v_row0 = 0;
    if (hp.fused_qkv) {
      EDGELM_TRY(wv, load_dense(file, layer_name(il, "attn_qkv.weight")));
      v_row0 = q_dim + kv_dim;
    } else {
      EDGELM_TRY(wv, load_dense(file, layer_name(il, "attn_v.weight")));
    }
    for (int64_t g = 0; g < hp.n_head_kv; ++g) {
      double v_norm = 0;
      for (int64_t r = v_row0 + g * hd; r < v_row0 + (g + 1) * hd; ++r)
        v_norm += row_norm_sq(wv, r);
      double o_norms = 0;
      for (int64_t h = g * group; h < (g + 1) * group; ++h) {
        double s = 0;
        for (int64_t j = h * hd; j < (h + 1) * hd; ++j) s += wo_cols[j];
        o_norms += std::sqrt(s);
      }
      group_scores[g] = std::sqrt(v_norm) * o_norms;
    }
  }
  return keep_top(group_scores, n_keep);
}

// Which rows and columns of a tensor survive; empty = all.
struct Selection {
  std::vector<int64_t> rows;
  std::vector<int64_t> cols;
};

void append_range(std::vector<int64_t>& out, int64_t begin, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out.push_back(begin + i);
}

struct LayerPlan {
  std::vector<int64_t> ffn;     // kept channels (empty: FFN not pruned)
  std::vector<int64_t> groups;  // kept KV groups (empty: heads not pruned)
};

// Rows of q (kept query heads) and of k/v (kept KV heads), in the projection's row numbering.
void head_rows(const model::HParams& hp, const LayerPlan& plan, std::vector<int64_t>& q_rows,
               std::vector<int64_t>& kv_rows) {
  const int64_t hd = hp.head_dim, group = hp.n_head / hp.n_head_kv;
  for (int64_t g : plan.groups) {
    append_range(q_rows, g * group * hd, group * hd);
    append_range(kv_rows, g * hd, hd);
  }
}

Selection select_for(const std::string& name, const model::HParams& hp,
                     const std::vector<LayerPlan>& plans) {
  Selection s;
  if (name.rfind("blk.", 0) != 0) return s;
  const size_t dot = name.find('.', 4);
  if (dot == std::string::npos) return s;
  const int32_t il = std::atoi(name.c_str() + 4);
  if (il < 0 || il >= static_cast<int32_t>(plans.size())) return s;
  const std::string tensor = name.substr(dot + 1);
  const LayerPlan& plan = plans[static_cast<size_t>(il)];
  const int64_t q_dim = int64_t{hp.n_head} * hp.head_dim,
                kv_dim = int64_t{hp.n_head_kv} * hp.head_dim;
  if (!plan.groups.empty()) {
    std::vector<int64_t> q_rows, kv_rows;
    head_rows(hp, plan, q_rows, kv_rows);
    if (tensor == "attn_q.weight") s.rows = q_rows;
    if (tensor == "attn_k.weight" || tensor == "attn_v.weight") s.rows = kv_rows;
    if (tensor == "attn_q.bias") s.cols = q_rows;  // 1-D: elements are columns of one row
    if (tensor == "attn_k.bias" || tensor == "attn_v.bias") s.cols = kv_rows;
    if (tensor == "attn_output.weight") s.cols = q_rows;
    if (tensor == "attn_qkv.weight" || tensor == "attn_qkv.bias") {
      auto& out = tensor == "attn_qkv.weight" ? s.rows : s.cols;
      out = q_rows;
      for (int64_t r : kv_rows) out.push_back(q_dim + r);
      for (int64_t r : kv_rows) out.push_back(q_dim + kv_dim + r);
    }
  }
  if (!plan.ffn.empty()) {
    if (tensor == "ffn_gate.weight") s.rows = plan.ffn;
    if (tensor == "ffn_up.weight") {
      s.rows = plan.ffn;
      if (hp.fused_gate_up) {
        for (int64_t c : plan.ffn) s.rows.push_back(hp.n_ff + c);
      }
    }
    if (tensor == "ffn_down.weight") s.cols = plan.ffn;
  }
  return s;
}

bool is_block_matrix(const format::GgufTensorInfo& info) {
  return info.name.rfind("blk.", 0) == 0 && info.ne.size() == 2 && info.ne[1] > 1 &&
         info.name.size() > 7 && info.name.compare(info.name.size() - 7, 7, ".weight") == 0;
}

// Zeroes the `sparsity` share of each row with the lowest |w| * sqrt(importance_j).
uint64_t zero_smallest(Dense& m, double sparsity, const std::vector<float>& importance) {
  const auto n_zero = static_cast<int64_t>(std::floor(sparsity * static_cast<double>(m.cols)));
  if (n_zero == 0) return 0;
  std::vector<std::pair<float, int64_t>> scores(static_cast<size_t>(m.cols));
  for (int64_t r = 0; r < m.rows; ++r) {
    float* row = m.v.data() + r * m.cols;
    for (int64_t c = 0; c < m.cols; ++c) {
      const float scale = importance.empty() ? 1.0f : std::sqrt(importance[static_cast<size_t>(c)]);
      scores[static_cast<size_t>(c)] = {std::fabs(row[c]) * scale, c};
    }
    std::nth_element(scores.begin(), scores.begin() + (n_zero - 1), scores.end());
    for (int64_t i = 0; i < n_zero; ++i) row[scores[static_cast<size_t>(i)].second] = 0.0f;
  }
  return static_cast<uint64_t>(n_zero * m.rows);
}

Status check_ratio(const char* name, double ratio) {
  if (!(ratio >= 0.0 && ratio < 1.0)) {
    return make_error(
        ErrorCode::kInvalidArgument,
        std::string("prune: ") + name + " " + std::to_string(ratio) + " must be in [0, 1)");
  }
  return {};
}

struct Encoded {
  TensorType type;
  std::vector<uint64_t> ne;
  std::vector<uint8_t> data;
};

// Re-encodes a float matrix: in `type` when its rows are whole blocks of it, else F16 (F32 stays).
Result<Encoded> encode(const Dense& m, TensorType type, bool one_dim,
                       const std::vector<float>& importance) {
  const auto& traits = tensor_type_traits(type);
  if (m.cols % traits.block_size != 0 || !tensor::can_quantize(type)) {
    type = type == TensorType::kF32 ? TensorType::kF32 : TensorType::kF16;
  }
  Encoded e;
  e.type = type;
  e.ne = one_dim
             ? std::vector<uint64_t>{static_cast<uint64_t>(m.cols)}
             : std::vector<uint64_t>{static_cast<uint64_t>(m.cols), static_cast<uint64_t>(m.rows)};
  EDGELM_TRY(uint64_t row_bytes, tensor_bytes(type, static_cast<uint64_t>(m.cols)));
  e.data.resize(row_bytes * static_cast<uint64_t>(m.rows));
  for (int64_t r = 0; r < m.rows; ++r) {
    EDGELM_CHECK(tensor::quantize_row(type, m.row(r), e.data.data() + r * row_bytes, m.cols,
                                      importance.empty() ? nullptr : importance.data()));
  }
  return e;
}

}  // namespace

Result<PruneReport> prune_model(const format::GgufFile& in, const std::filesystem::path& out,
                                const PruneOptions& options) {
  EDGELM_CHECK(check_ratio("ffn ratio", options.ffn_ratio));
  EDGELM_CHECK(check_ratio("head ratio", options.head_ratio));
  EDGELM_CHECK(check_ratio("sparsity", options.sparsity));
  EDGELM_TRY(model::HParams hp, model::read_hparams(in));
  PruneReport report;
  report.activation_aware = options.imatrix != nullptr;
  report.n_ff_before = report.n_ff_after = hp.n_ff;
  report.n_head_before = report.n_head_after = hp.n_head;
  report.n_head_kv_before = report.n_head_kv_after = hp.n_head_kv;

  int64_t ffn_keep = hp.n_ff - std::llround(options.ffn_ratio * hp.n_ff);
  if (hp.n_ff % kBlockAlign == 0 && ffn_keep >= kBlockAlign) {
    ffn_keep = (ffn_keep + kBlockAlign / 2) / kBlockAlign * kBlockAlign;
  }
  const int64_t kv_keep = hp.n_head_kv - std::llround(options.head_ratio * hp.n_head_kv);
  if (ffn_keep < 1 || kv_keep < 1) {
    return make_error(ErrorCode::kInvalidArgument,
                      "prune: the ratios would remove every FFN channel or head");
  }
  const bool prune_ffn = ffn_keep < hp.n_ff;
  const bool prune_heads = kv_keep < hp.n_head_kv;
  if (prune_heads && hp.arch == "gemma3" && hp.n_layer == kGemma27BLayers) {
    return make_error(
        ErrorCode::kUnsupported,
        "prune: gemma3 27B scales attention by n_embd / n_head; removing heads would change it");
  }

  std::vector<LayerPlan> plans(static_cast<size_t>(hp.n_layer));
  for (int32_t il = 0; il < hp.n_layer; ++il) {
    if (prune_ffn) {
      EDGELM_TRY(plans[il].ffn, rank_ffn(in, hp, il, ffn_keep, options.imatrix));
    }
    if (prune_heads) {
      EDGELM_TRY(plans[il].groups, rank_groups(in, hp, il, kv_keep, options.imatrix));
    }
  }

  format::GgufWriter writer;
  writer.set_alignment(in.alignment());
  for (const auto& [key, value] : in.metadata()) writer.set(key, value);
  const std::string arch = hp.arch + ".";
  if (prune_ffn) {
    writer.set(arch + "feed_forward_length",
               format::GgufValue::u32(static_cast<uint32_t>(ffn_keep)));
    report.n_ff_after = static_cast<int32_t>(ffn_keep);
  }
  if (prune_heads) {
    const int64_t group = hp.n_head / hp.n_head_kv;
    report.n_head_kv_after = static_cast<int32_t>(kv_keep);
    report.n_head_after = static_cast<int32_t>(kv_keep * group);
    writer.set(arch + "attention.head_count",
               format::GgufValue::u32(static_cast<uint32_t>(report.n_head_after)));
    writer.set(arch + "attention.head_count_kv",
               format::GgufValue::u32(static_cast<uint32_t>(kv_keep)));
    // head_dim was n_embd / n_head when these were absent; it must not change with n_head.
    writer.set(arch + "attention.key_length",
               format::GgufValue::u32(static_cast<uint32_t>(hp.head_dim)));
    writer.set(arch + "attention.value_length",
               format::GgufValue::u32(static_cast<uint32_t>(hp.head_dim)));
  }

  for (const auto& info : in.tensors()) {
    report.bytes_before += info.n_bytes;
    report.params_before += info.n_elements;
    const Selection sel = select_for(info.name, hp, plans);
    const bool sparsify = options.sparsity > 0.0 && is_block_matrix(info);
    const std::span<const uint8_t> src = in.tensor_data(info);
    if (sel.rows.empty() && sel.cols.empty() && !sparsify) {
      EDGELM_CHECK(writer.add_tensor(info.name, info.type, info.ne, src));
      report.bytes_after += info.n_bytes;
      report.params_after += info.n_elements;
      continue;
    }
    if (!tensor::can_dequantize(info.type)) {
      return make_error(ErrorCode::kUnsupported, "prune: tensor '" + info.name + "' has type " +
                                                     std::string(tensor_type_name(info.type)) +
                                                     " which cannot be converted");
    }
    EDGELM_TRY(Dense full, load_dense(in, info));
    Dense kept;
    kept.rows = sel.rows.empty() ? full.rows : static_cast<int64_t>(sel.rows.size());
    kept.cols = sel.cols.empty() ? full.cols : static_cast<int64_t>(sel.cols.size());
    kept.v.resize(static_cast<size_t>(kept.rows * kept.cols));
    for (int64_t r = 0; r < kept.rows; ++r) {
      const float* from = full.row(sel.rows.empty() ? r : sel.rows[static_cast<size_t>(r)]);
      float* to = kept.v.data() + r * kept.cols;
      for (int64_t c = 0; c < kept.cols; ++c)
        to[c] = from[sel.cols.empty() ? c : sel.cols[static_cast<size_t>(c)]];
    }
    std::vector<float> importance;
    if (options.imatrix != nullptr && is_block_matrix(info)) {
      const std::vector<float> all = options.imatrix->mean_sq(info.name);
      if (static_cast<int64_t>(all.size()) == full.cols) {
        for (int64_t c = 0; c < kept.cols; ++c) {
          importance.push_back(
              all[static_cast<size_t>(sel.cols.empty() ? c : sel.cols[static_cast<size_t>(c)])]);
        }
      }
    }
    if (sparsify) report.weights_zeroed += zero_smallest(kept, options.sparsity, importance);
    EDGELM_TRY(Encoded e, encode(kept, info.type, info.ne.size() == 1, importance));
    EDGELM_CHECK(writer.add_tensor(info.name, e.type, e.ne, e.data));
    report.bytes_after += e.data.size();
    report.params_after += static_cast<uint64_t>(kept.rows * kept.cols);
  }
  EDGELM_CHECK(writer.write(out));
  return report;
}

}  // namespace edgelm::tools
