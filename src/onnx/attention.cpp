// The fused attention node (matched in fusion.cpp): softmax(scale(Q K) + mask) V computed per
// (batch, head, block of query rows), so the [B, H, S, T] score tensor never exists beyond one
// row block. Shapes the fast path does not handle run the original nodes instead.
#include <algorithm>
#include <array>

#include "edgelm/kernels.h"
#include "edgelm/sgemm.h"
#include "onnx/ops.h"

namespace edgelm::onnx {
namespace {

constexpr int kRank = 4;  // [batch, heads, rows, columns]
// Scores kept per row block: enough rows to amortise packing K and V, small enough for L2.
constexpr int64_t kBlockScoreFloats = 32 * 1024;
// Multiply-adds below which waking the pool costs more than it saves (a few microseconds).
constexpr int64_t kMinParallelWork = 64 * 1024;

// A rank-4 operand as the fast path reads it: logical shape and element strides (0: broadcast).
struct View4 {
  std::array<int64_t, kRank> shape{}, strides{};
};

bool is_permutation(std::span<const int64_t> perm) {
  if (perm.size() != kRank) return false;
  std::array<bool, kRank> seen{};
  for (int64_t p : perm) {
    if (p < 0 || p >= kRank || seen[p]) return false;
    seen[p] = true;
  }
  return true;
}

// x (rank 4) read through perm; false when x or perm is not rank 4.
bool permuted_view4(const Tensor& x, std::span<const int64_t> perm, View4& view) {
  if (x.rank() != kRank || (!perm.empty() && !is_permutation(perm))) return false;
  const auto strides = contiguous_strides(x.shape());
  for (int d = 0; d < kRank; ++d) {
    const int64_t from = perm.empty() ? d : perm[d];
    view.shape[d] = x.shape()[from];
    view.strides[d] = strides[from];
  }
  return true;
}

// The mask broadcast onto scores of shape `into` without enlarging them (numpy rules, aligned
// right); false when it would broadcast differently.
bool mask_view(const Tensor& mask, const std::array<int64_t, kRank>& into, View4& view) {
  if (mask.rank() > kRank) return false;
  const auto strides = contiguous_strides(mask.shape());
  const int64_t offset = kRank - mask.rank();
  for (int d = 0; d < kRank; ++d) {
    view.shape[d] = into[d];
    view.strides[d] = 0;
    if (d < offset) continue;
    const int64_t dim = mask.shape()[d - offset];
    if (dim != 1 && dim != into[d]) return false;
    if (dim != 1) view.strides[d] = strides[d - offset];
  }
  return true;
}

struct FastPlan {
  View4 q, k, v, mask;  // q [B,H,S,D], k [B,H,D,T], v [B,H,T,Dv], mask onto [B,H,S,T]
  std::array<int64_t, kRank> out_strides{};
};

// Checks every assumption of the fast path and allocates the output; false (nothing allocated)
// to fall back to the original nodes.
Result<bool> plan_fast(const OpContext& ctx, const AttentionSpec& spec,
                       std::span<const Tensor* const> in, FastPlan& p, Tensor& out) {
  if (ctx.opset < 13) return false;  // Softmax flattened trailing axes before opset 13
  const Tensor& q = *in[spec.q];
  const Tensor& k = *in[spec.k];
  const Tensor& v = *in[spec.v];
  for (const Tensor* t : {&q, &k, &v}) {
    if (t->dtype() != DataType::kFloat || t->numel() == 0) return false;
  }
  if (!permuted_view4(q, spec.qk.a, p.q) || !permuted_view4(k, spec.qk.b, p.k) ||
      !permuted_view4(v, spec.pv.b, p.v))
    return false;
  const int64_t batch = p.q.shape[0], heads = p.q.shape[1], rows = p.q.shape[2];
  const int64_t depth = p.q.shape[3], cols = p.k.shape[3], v_depth = p.v.shape[3];
  if (p.q.strides[3] != 1 || p.k.shape[0] != batch || p.k.shape[1] != heads ||
      p.k.shape[2] != depth || p.v.shape[0] != batch || p.v.shape[1] != heads ||
      p.v.shape[2] != cols)
    return false;
  if (spec.mask_input >= 0) {
    const Tensor& mask = *in[spec.mask_input];
    const DataType want =
        spec.mask == AttentionSpec::Mask::kAdd ? DataType::kFloat : DataType::kBool;
    if (mask.dtype() != want || !mask_view(mask, {batch, heads, rows, cols}, p.mask)) return false;
  }
  const std::array<int64_t, kRank> logical{batch, heads, rows, v_depth};
  const std::vector<int64_t>& perm = spec.pv.out;
  if (!perm.empty() && (!is_permutation(perm) || perm.back() != kRank - 1)) return false;
  std::vector<int64_t> stored(logical.begin(), logical.end());
  for (size_t i = 0; i < perm.size(); ++i) stored[i] = logical[perm[i]];
  const auto strides = contiguous_strides(stored);
  for (int d = 0; d < kRank; ++d) p.out_strides[perm.empty() ? d : perm[d]] = strides[d];
  EDGELM_TRY(out, ctx.alloc(DataType::kFloat, stored));
  return true;
}

// Rows [row0, row0 + n) of head (b, h): scores, scale, mask, softmax, then P V into the output.
void attend_block(const AttentionSpec& spec, const FastPlan& p, std::span<const Tensor* const> in,
                  int64_t b, int64_t h, int64_t row0, int64_t n, float* scores, float* out) {
  const int64_t depth = p.q.shape[3], cols = p.k.shape[3], v_depth = p.v.shape[3];
  const float* q =
      in[spec.q]->data<float>() + b * p.q.strides[0] + h * p.q.strides[1] + row0 * p.q.strides[2];
  const float* k = in[spec.k]->data<float>() + b * p.k.strides[0] + h * p.k.strides[1];
  const float* v = in[spec.v]->data<float>() + b * p.v.strides[0] + h * p.v.strides[1];
  kernels::sgemm(q, n, depth, p.q.strides[2], k, cols, p.k.strides[2], p.k.strides[3], nullptr,
                 scores, cols, nullptr);
  const Tensor* mask = spec.mask_input >= 0 ? in[spec.mask_input] : nullptr;
  for (int64_t r = 0; r < n; ++r) {
    float* row = scores + r * cols;
    // The same float operations, in the same order, as the unfused nodes.
    if (spec.scale_op == AttentionSpec::Scale::kMul) {
      for (int64_t c = 0; c < cols; ++c) row[c] *= spec.scale;
    } else if (spec.scale_op == AttentionSpec::Scale::kDiv) {
      for (int64_t c = 0; c < cols; ++c) row[c] /= spec.scale;
    }
    if (mask) {
      const int64_t base =
          b * p.mask.strides[0] + h * p.mask.strides[1] + (row0 + r) * p.mask.strides[2];
      const int64_t step = p.mask.strides[3];
      if (spec.mask == AttentionSpec::Mask::kAdd) {
        const float* m = mask->data<float>() + base;
        for (int64_t c = 0; c < cols; ++c) row[c] += m[c * step];
      } else {
        const uint8_t* m = mask->data<uint8_t>() + base;
        const bool fill_when_true = spec.mask == AttentionSpec::Mask::kWhereFillIfTrue;
        for (int64_t c = 0; c < cols; ++c) {
          if ((m[c * step] != 0) == fill_when_true) row[c] = spec.fill;
        }
      }
    }
    kernels::softmax(row, cols);
  }
  float* o = out + b * p.out_strides[0] + h * p.out_strides[1] + row0 * p.out_strides[2];
  kernels::sgemm(scores, n, cols, cols, v, v_depth, p.v.strides[2], p.v.strides[3], nullptr, o,
                 p.out_strides[2], nullptr);
}

void run_fast(const OpContext& ctx, const AttentionSpec& spec, const FastPlan& p,
              std::span<const Tensor* const> in, float* out) {
  const int64_t batch = p.q.shape[0], heads = p.q.shape[1], rows = p.q.shape[2];
  const int64_t cols = p.k.shape[3];
  const int64_t block =
      std::clamp<int64_t>(kBlockScoreFloats / std::max<int64_t>(cols, 1), 1, rows);
  const int64_t blocks_per_head = (rows + block - 1) / block;
  const int64_t tasks = batch * heads * blocks_per_head;
  auto run_tasks = [&](int64_t begin, int64_t end) {
    thread_local std::vector<float> scores;  // reused across runs: no allocation once warm
    scores.resize(static_cast<size_t>(block * cols));
    for (int64_t t = begin; t < end; ++t) {
      const int64_t head = t / blocks_per_head;
      const int64_t row0 = (t % blocks_per_head) * block;
      attend_block(spec, p, in, head / heads, head % heads, row0, std::min(block, rows - row0),
                   scores.data(), out);
    }
  };
  const int threads = ctx.pool ? ctx.pool->size() : 1;
  const int64_t work = batch * heads * rows * cols * (p.q.shape[3] + p.v.shape[3]);
  if (threads == 1 || tasks < 2 || work < kMinParallelWork) {
    run_tasks(0, tasks);
    return;
  }
  ctx.pool->run(
      [&](int index, int count) { run_tasks(tasks * index / count, tasks * (index + 1) / count); });
}

// The original nodes, one after the other (shapes or types the fast path does not take).
Status run_steps(const OpContext& ctx, const AttentionSpec& spec, std::span<const Tensor* const> in,
                 std::vector<Tensor>& out) {
  std::vector<Tensor> produced(spec.steps.size());
  std::vector<const Tensor*> inputs;
  std::vector<Tensor> outputs;
  Status status;
  for (size_t i = 0; i < spec.steps.size() && status; ++i) {
    const AttentionSpec::Step& step = spec.steps[i];
    inputs.clear();
    for (int slot : step.inputs) {
      inputs.push_back(slot < static_cast<int>(in.size()) ? in[slot] : &produced[slot - in.size()]);
    }
    outputs.assign(1, Tensor());
    const OpContext step_ctx{*step.def, ctx.opset, ctx.pool, ctx.arena, step.prepared.get()};
    status = step.fn(step_ctx, inputs, outputs);
    if (status) produced[i] = std::move(outputs[0]);
  }
  if (status) out[0] = std::move(produced.back());
  const size_t intermediates = status ? produced.size() - 1 : produced.size();
  for (size_t i = 0; i < intermediates; ++i) {
    if (!produced[i].empty()) ctx.arena->release(std::move(produced[i]));
  }
  return status;
}

}  // namespace

Status attention_op(const OpContext& ctx, std::span<const Tensor* const> in,
                    std::vector<Tensor>& out) {
  const auto& spec = *static_cast<const AttentionSpec*>(ctx.prepared);
  FastPlan plan;
  EDGELM_TRY(const bool fast, plan_fast(ctx, spec, in, plan, out[0]));
  if (!fast) return run_steps(ctx, spec, in, out);
  run_fast(ctx, spec, plan, in, out[0].mutable_data<float>());
  return {};
}

}  // namespace edgelm::onnx
