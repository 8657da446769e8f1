// MatMul, Gemm, softmax, reductions and LayerNormalization (float).
#include <algorithm>
#include <cmath>
#include <cstring>

#include "edgelm/kernels.h"
#include "edgelm/sgemm.h"
#include "onnx/ops.h"

namespace edgelm::onnx {

// dst[c][r] = src[r][c] for src [rows][cols], in cache-sized tiles (weights are large).
void transpose_blocked(const float* src, int64_t rows, int64_t cols, float* dst) {
  constexpr int64_t kTile = 32;
  for (int64_t r0 = 0; r0 < rows; r0 += kTile) {
    for (int64_t c0 = 0; c0 < cols; c0 += kTile) {
      const int64_t r1 = std::min(rows, r0 + kTile), c1 = std::min(cols, c0 + kTile);
      for (int64_t r = r0; r < r1; ++r) {
        for (int64_t c = c0; c < c1; ++c) dst[c * rows + r] = src[r * cols + c];
      }
    }
  }
}

void matmul_f32(const float* a, const float* b, int64_t m, int64_t k, int64_t n, float* out,
                ThreadPool* pool) {
  kernels::sgemm(a, m, k, k, b, n, n, 1, nullptr, out, n, pool);
}

namespace {

// An operand as the matmul reads it: logical shape and element strides into its tensor.
struct StridedView {
  std::vector<int64_t> shape, strides;
};

// x viewed through perm (logical dim i is x's dim perm[i]; empty perm: x itself).
StridedView permuted_view(const Tensor& x, std::span<const int64_t> perm) {
  const auto strides = contiguous_strides(x.shape());
  if (perm.empty()) return {x.shape(), strides};
  StridedView v;
  for (int64_t p : perm) {
    v.shape.push_back(x.shape()[p]);
    v.strides.push_back(strides[p]);
  }
  return v;
}

bool valid_perm(std::span<const int64_t> perm, int64_t rank) {
  if (perm.empty()) return true;
  if (static_cast<int64_t>(perm.size()) != rank) return false;
  std::vector<bool> seen(perm.size(), false);
  for (int64_t p : perm) {
    if (p < 0 || p >= rank || seen[p]) return false;
    seen[p] = true;
  }
  return true;
}

}  // namespace

Status matmul_permuted(const OpContext& ctx, const Tensor& a, const Tensor& b,
                       const MatMulPerms& perms, Tensor& out) {
  EDGELM_CHECK(expect_type(ctx, a, DataType::kFloat, "A"));
  EDGELM_CHECK(expect_type(ctx, b, DataType::kFloat, "B"));
  if (a.rank() == 0 || b.rank() == 0) return ctx.error("inputs must have rank >= 1");
  if (!valid_perm(perms.a, a.rank()) || !valid_perm(perms.b, b.rank()))
    return ctx.error("a folded Transpose does not fit its input's rank");
  if (!perms.a.empty() && perms.a.back() != a.rank() - 1)
    return ctx.error("a folded Transpose of A must keep its rows contiguous");
  StridedView av = permuted_view(a, perms.a), bv = permuted_view(b, perms.b);
  if (av.shape.size() == 1) {
    av.shape.insert(av.shape.begin(), 1);
    av.strides.insert(av.strides.begin(), 0);
  }
  if (bv.shape.size() == 1) {
    bv.shape.push_back(1);
    bv.strides.push_back(0);
  }
  const size_t ar = av.shape.size(), br = bv.shape.size();
  const int64_t m = av.shape[ar - 2], k = av.shape[ar - 1], n = bv.shape[br - 1];
  if (bv.shape[br - 2] != k) {
    return ctx.error("A " + shape_string(av.shape) + " and B " + shape_string(bv.shape) +
                     " have different inner dimensions");
  }
  const std::vector<int64_t> a_batch(av.shape.begin(), av.shape.end() - 2);
  const std::vector<int64_t> b_batch(bv.shape.begin(), bv.shape.end() - 2);
  EDGELM_TRY(auto batch, broadcast_shapes(ctx, a_batch, b_batch));
  std::vector<int64_t> logical = batch;  // the product's shape before perms.out
  if (a.rank() > 1) logical.push_back(m);
  if (b.rank() > 1) logical.push_back(n);
  const size_t rank = batch.size();
  // Element strides of every logical output dim (batch..., m, n) in the stored output.
  std::vector<int64_t> c_strides(rank + 2, 0);
  if (perms.out.empty()) {
    EDGELM_TRY(out, ctx.alloc(DataType::kFloat, logical));
    const auto strides = contiguous_strides(batch);
    for (size_t d = 0; d < rank; ++d) c_strides[d] = strides[d] * m * n;
    c_strides[rank] = n;
    c_strides[rank + 1] = 1;
  } else {
    if (logical.size() != rank + 2 || !valid_perm(perms.out, rank + 2) ||
        perms.out.back() != static_cast<int64_t>(rank + 1))
      return ctx.error("a folded output Transpose does not fit the product's rank");
    std::vector<int64_t> stored;
    for (int64_t p : perms.out) stored.push_back(logical[p]);
    EDGELM_TRY(out, ctx.alloc(DataType::kFloat, stored));
    const auto strides = contiguous_strides(stored);
    for (size_t i = 0; i < perms.out.size(); ++i) c_strides[perms.out[i]] = strides[i];
  }
  float* y = out.mutable_data<float>();
  if (out.numel() == 0) return {};
  int64_t batches = 1;
  for (int64_t d : batch) batches *= d;
  const bool plain = perms.a.empty() && perms.b.empty() && perms.out.empty();
  int64_t b_count = 1;
  for (int64_t d : b_batch) b_count *= d;
  if (plain && b_count == 1 && a_batch == batch) {  // one weight for every row of A: one call
    matmul_f32(a.data<float>(), b.data<float>(), batches * m, k, n, y, ctx.pool);
    return {};
  }
  // Per output batch dim, the element step of each operand (0 where it broadcasts).
  auto batch_steps = [&](const StridedView& v) {
    std::vector<int64_t> steps(rank, 0);
    const size_t vb = v.shape.size() - 2;
    for (size_t i = 0; i < vb; ++i) {
      if (v.shape[i] != 1) steps[rank - vb + i] = v.strides[i];
    }
    return steps;
  };
  const auto sa = batch_steps(av), sb = batch_steps(bv);
  const int64_t lda = av.strides[ar - 2];
  const int64_t b_row = bv.strides[br - 2], b_col = bv.strides[br - 1];
  const int64_t ldc = c_strides[rank];
  const float* a_data = a.data<float>();
  const float* b_data = b.data<float>();
  auto run_batches = [&](int64_t begin, int64_t end, ThreadPool* pool) {
    for (int64_t bi = begin; bi < end; ++bi) {
      int64_t oa = 0, ob = 0, oc = 0, rem = bi;
      for (size_t d = rank; d-- > 0;) {
        const int64_t i = rem % batch[d];
        rem /= batch[d];
        oa += i * sa[d];
        ob += i * sb[d];
        oc += i * c_strides[d];
      }
      kernels::sgemm(a_data + oa, m, k, lda, b_data + ob, n, b_row, b_col, nullptr, y + oc, ldc,
                     pool);
    }
  };
  // Batched products (attention heads) are small: each thread takes whole matrices.
  const int threads = ctx.pool ? ctx.pool->size() : 1;
  if (threads == 1 || batches < threads) {
    run_batches(0, batches, ctx.pool);
  } else {
    ctx.pool->run([&](int index, int count) {
      run_batches(batches * index / count, batches * (index + 1) / count, nullptr);
    });
  }
  return {};
}

Status permuted_matmul_op(const OpContext& ctx, std::span<const Tensor* const> in,
                          std::vector<Tensor>& out) {
  return matmul_permuted(ctx, *in[0], *in[1], *static_cast<const MatMulPerms*>(ctx.prepared),
                         out[0]);
}

namespace {

Status matmul_op(const OpContext& ctx, std::span<const Tensor* const> in,
                 std::vector<Tensor>& out) {
  return matmul_permuted(ctx, *in[0], *in[1], MatMulPerms{}, out[0]);
}

Status gemm_op(const OpContext& ctx, std::span<const Tensor* const> in, std::vector<Tensor>& out) {
  const Tensor& a = *in[0];
  const Tensor& b = *in[1];
  EDGELM_CHECK(expect_type(ctx, a, DataType::kFloat, "A"));
  EDGELM_CHECK(expect_type(ctx, b, DataType::kFloat, "B"));
  if (a.rank() != 2 || b.rank() != 2) return ctx.error("A and B must be 2-D");
  const bool ta = ctx.attr_int("transA", 0) != 0, tb = ctx.attr_int("transB", 0) != 0;
  const float alpha = ctx.attr_float("alpha", 1.0f), beta = ctx.attr_float("beta", 1.0f);
  const int64_t m = ta ? a.shape()[1] : a.shape()[0], k = ta ? a.shape()[0] : a.shape()[1];
  const int64_t n = tb ? b.shape()[0] : b.shape()[1];
  if ((tb ? b.shape()[1] : b.shape()[0]) != k) {
    return ctx.error("A " + shape_string(a.shape()) + " and B " + shape_string(b.shape()) +
                     " do not multiply");
  }
  EDGELM_TRY(out[0], ctx.alloc(DataType::kFloat, {m, n}));
  float* y = out[0].mutable_data<float>();
  std::vector<float> a_rows;
  const float* ap = a.data<float>();
  if (ta) {
    a_rows.resize(static_cast<size_t>(m * k));
    for (int64_t r = 0; r < k; ++r) {
      for (int64_t c = 0; c < m; ++c) a_rows[c * k + r] = ap[r * m + c];
    }
    ap = a_rows.data();
  }
  // B(r, c) is b[c][r] when transposed.
  kernels::sgemm(ap, m, k, k, b.data<float>(), n, tb ? 1 : n, tb ? k : 1, nullptr, y, n, ctx.pool);
  if (alpha != 1.0f) {
    for (int64_t i = 0; i < m * n; ++i) y[i] *= alpha;
  }
  if (in.size() > 2 && in[2] && beta != 0.0f) {
    const Tensor& c = *in[2];
    EDGELM_CHECK(expect_type(ctx, c, DataType::kFloat, "C"));
    EDGELM_TRY(auto shape, broadcast_shapes(ctx, c.shape(), std::vector<int64_t>{m, n}));
    if (shape != std::vector<int64_t>{m, n})
      return ctx.error("C " + shape_string(c.shape()) + " does not broadcast to the output");
    const int64_t cr = c.rank() == 2 ? c.shape()[0] : 1;
    const int64_t cc = c.rank() >= 1 ? c.shape().back() : 1;
    for (int64_t r = 0; r < m; ++r) {
      for (int64_t col = 0; col < n; ++col) {
        y[r * n + col] += beta * c.data<float>()[(cr == 1 ? 0 : r) * cc + (cc == 1 ? 0 : col)];
      }
    }
  }
  return {};
}

// Splits shape around axis into [outer, dim, inner].
void split_axis(const std::vector<int64_t>& shape, int64_t axis, int64_t& outer, int64_t& dim,
                int64_t& inner) {
  outer = 1;
  inner = 1;
  for (int64_t d = 0; d < axis; ++d) outer *= shape[d];
  for (size_t d = axis + 1; d < shape.size(); ++d) inner *= shape[d];
  dim = shape[axis];
}

template <bool kLog>
Status softmax_op(const OpContext& ctx, std::span<const Tensor* const> in,
                  std::vector<Tensor>& out) {
  const Tensor& x = *in[0];
  EDGELM_CHECK(expect_type(ctx, x, DataType::kFloat, "input"));
  EDGELM_TRY(const int64_t axis,
             normalize_axis(ctx, ctx.attr_int("axis", -1), std::max<int64_t>(x.rank(), 1)));
  EDGELM_TRY(out[0], ctx.alloc(DataType::kFloat, x.shape()));
  if (x.numel() == 0) return {};
  int64_t outer, dim, inner;
  split_axis(x.rank() ? x.shape() : std::vector<int64_t>{1}, axis, outer, dim, inner);
  const float* src = x.data<float>();
  float* dst = out[0].mutable_data<float>();
  if (!kLog && inner == 1) {  // rows along the last axis (attention): edgelm's SIMD softmax
    std::copy_n(src, x.numel(), dst);
    for (int64_t o = 0; o < outer; ++o) kernels::softmax(dst + o * dim, dim);
    return {};
  }
  std::vector<float> row(static_cast<size_t>(dim));
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t i = 0; i < inner; ++i) {
      const float* s = src + o * dim * inner + i;
      float max = -INFINITY;
      for (int64_t d = 0; d < dim; ++d) max = std::max(max, s[d * inner]);
      double sum = 0;
      for (int64_t d = 0; d < dim; ++d) {
        row[d] = std::exp(s[d * inner] - max);
        sum += row[d];
      }
      float* t = dst + o * dim * inner + i;
      if constexpr (kLog) {
        const float log_sum = static_cast<float>(std::log(sum));
        for (int64_t d = 0; d < dim; ++d) t[d * inner] = s[d * inner] - max - log_sum;
      } else {
        const float scale = static_cast<float>(1.0 / sum);
        for (int64_t d = 0; d < dim; ++d) t[d * inner] = row[d] * scale;
      }
    }
  }
  return {};
}

enum class Reduce { kMean, kSum, kMax };

template <Reduce kKind>
Status reduce_op(const OpContext& ctx, std::span<const Tensor* const> in,
                 std::vector<Tensor>& out) {
  const Tensor& x = *in[0];
  EDGELM_CHECK(expect_type(ctx, x, DataType::kFloat, "input"));
  std::vector<int64_t> axes;
  if (in.size() > 1 && in[1]) {
    EDGELM_TRY(axes, read_int_list(ctx, *in[1], "axes"));
  } else if (const auto* a = ctx.attr_ints("axes")) {
    axes = *a;
  }
  const bool keepdims = ctx.attr_int("keepdims", 1) != 0;
  if (axes.empty() && ctx.attr_int("noop_with_empty_axes", 0) != 0) {
    out[0] = x;
    return {};
  }
  const int64_t rank = x.rank();
  std::vector<bool> reduced(rank, axes.empty());
  for (int64_t a : axes) {
    EDGELM_TRY(const int64_t axis, normalize_axis(ctx, a, rank));
    reduced[axis] = true;
  }
  std::vector<int64_t> shape, kept_shape;
  for (int64_t d = 0; d < rank; ++d) {
    if (!reduced[d]) shape.push_back(x.shape()[d]);
    if (keepdims) kept_shape.push_back(reduced[d] ? 1 : x.shape()[d]);
  }
  EDGELM_TRY(out[0], ctx.alloc(DataType::kFloat, keepdims ? kept_shape : shape));
  float* dst = out[0].mutable_data<float>();
  const int64_t n_out = out[0].numel();
  const int64_t count = n_out ? x.numel() / n_out : 0;
  const float* src = x.data<float>();
  auto combine = [](double acc, float v) {
    return kKind == Reduce::kMax ? std::max<double>(acc, v) : acc + v;
  };
  auto finish = [count](double acc) {
    return static_cast<float>(kKind == Reduce::kMean && count ? acc / count : acc);
  };
  // Fast path: only trailing axes reduced (LayerNorm/RMSNorm statistics).
  int64_t first_reduced = rank;
  while (first_reduced > 0 && reduced[first_reduced - 1]) --first_reduced;
  bool trailing = true;
  for (int64_t d = 0; d < first_reduced; ++d) trailing = trailing && !reduced[d];
  if (trailing) {
    for (int64_t o = 0; o < n_out; ++o) {
      double acc = kKind == Reduce::kMax ? -INFINITY : 0.0;
      for (int64_t i = 0; i < count; ++i) acc = combine(acc, src[o * count + i]);
      dst[o] = finish(acc);
    }
    return {};
  }
  std::vector<double> acc(static_cast<size_t>(n_out), kKind == Reduce::kMax ? -INFINITY : 0.0);
  const auto out_strides = contiguous_strides(shape);
  std::vector<int64_t> index(rank, 0);
  for (int64_t i = 0; i < x.numel(); ++i) {
    int64_t o = 0;
    for (int64_t d = 0, k = 0; d < rank; ++d) {
      if (!reduced[d]) o += index[d] * out_strides[k++];
    }
    acc[o] = combine(acc[o], src[i]);
    for (int64_t d = rank; d-- > 0;) {
      if (++index[d] < x.shape()[d]) break;
      index[d] = 0;
    }
  }
  for (int64_t o = 0; o < n_out; ++o) dst[o] = finish(acc[o]);
  return {};
}

// sum of x[i] - center (squared when `square`) in kLanes independent float partial sums, which
// the compiler vectorizes (a single double accumulator serializes on the add latency), combined
// in double at the end.
double lane_sum(const float* x, int64_t n, float center, bool square) {
  constexpr int kLanes = 16;
  float part[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int l = 0; l < kLanes; ++l) {
      const float d = x[i + l] - center;
      part[l] += square ? d * d : d;
    }
  }
  double total = 0;
  for (; i < n; ++i) {
    const double d = static_cast<double>(x[i]) - center;
    total += square ? d * d : d;
  }
  for (float p : part) total += p;
  return total;
}

Status layer_norm_op(const OpContext& ctx, std::span<const Tensor* const> in,
                     std::vector<Tensor>& out) {
  const Tensor& x = *in[0];
  const Tensor& scale = *in[1];
  const Tensor* bias = in.size() > 2 ? in[2] : nullptr;
  EDGELM_CHECK(expect_type(ctx, x, DataType::kFloat, "X"));
  EDGELM_CHECK(expect_type(ctx, scale, DataType::kFloat, "Scale"));
  if (bias) EDGELM_CHECK(expect_type(ctx, *bias, DataType::kFloat, "B"));
  EDGELM_TRY(const int64_t axis, normalize_axis(ctx, ctx.attr_int("axis", -1), x.rank()));
  const float eps = ctx.attr_float("epsilon", 1e-5f);
  int64_t rows = 1, cols = 1;
  for (int64_t d = 0; d < axis; ++d) rows *= x.shape()[d];
  for (int64_t d = axis; d < x.rank(); ++d) cols *= x.shape()[d];
  if (scale.numel() != cols || (bias && bias->numel() != cols)) {
    return ctx.error("Scale/B must hold " + std::to_string(cols) +
                     " values (only unbroadcast scales are supported)");
  }
  EDGELM_TRY(out[0], ctx.alloc(DataType::kFloat, x.shape()));
  std::vector<int64_t> stat_shape = x.shape();
  for (int64_t d = axis; d < x.rank(); ++d) stat_shape[d] = 1;
  float* mean_out = nullptr;
  float* inv_out = nullptr;
  if (out.size() > 1) {
    EDGELM_TRY(out[1], ctx.alloc(DataType::kFloat, stat_shape));
    mean_out = out[1].mutable_data<float>();
  }
  if (out.size() > 2) {
    EDGELM_TRY(out[2], ctx.alloc(DataType::kFloat, stat_shape));
    inv_out = out[2].mutable_data<float>();
  }
  const float* src = x.data<float>();
  const float* g = scale.data<float>();
  const float* b = bias ? bias->data<float>() : nullptr;
  float* dst = out[0].mutable_data<float>();
  for (int64_t r = 0; r < rows; ++r) {
    const float* s = src + r * cols;
    const float mean = static_cast<float>(lane_sum(s, cols, 0.0f, false) / cols);
    const double var = lane_sum(s, cols, mean, true);
    const float inv = static_cast<float>(1.0 / std::sqrt(var / cols + eps));
    float* t = dst + r * cols;
    if (b) {
      for (int64_t c = 0; c < cols; ++c) t[c] = (s[c] - mean) * inv * g[c] + b[c];
    } else {
      for (int64_t c = 0; c < cols; ++c) t[c] = (s[c] - mean) * inv * g[c];
    }
    if (mean_out) mean_out[r] = mean;
    if (inv_out) inv_out[r] = inv;
  }
  return {};
}

}  // namespace

void register_math_ops(std::vector<OpSpec>& t) {
  t.push_back({"MatMul", &matmul_op, 2, 2, 1, 1});
  t.push_back({"Gemm", &gemm_op, 2, 3, 1, 1});
  t.push_back({"Softmax", &softmax_op<false>, 1, 1, 1, 1});
  t.push_back({"LogSoftmax", &softmax_op<true>, 1, 1, 1, 1});
  t.push_back({"ReduceMean", &reduce_op<Reduce::kMean>, 1, 2, 1, 1});
  t.push_back({"ReduceSum", &reduce_op<Reduce::kSum>, 1, 2, 1, 1});
  t.push_back({"ReduceMax", &reduce_op<Reduce::kMax>, 1, 2, 1, 1});
  t.push_back({"LayerNormalization", &layer_norm_op, 2, 3, 1, 3});
}

}  // namespace edgelm::onnx
