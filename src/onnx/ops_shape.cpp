// Operators that move data without arithmetic: shapes, views, slices, gathers, constants.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>

#include "onnx/ops.h"

namespace edgelm::onnx {
namespace {

template <class T>
void copy_strided(const uint8_t* src, int64_t stride, int64_t n, uint8_t* dst) {
  for (int64_t i = 0; i < n; ++i) {
    T v;
    std::memcpy(&v, src + i * stride * sizeof(T), sizeof(T));
    std::memcpy(dst + i * sizeof(T), &v, sizeof(T));
  }
}

// Copies a strided N-d view of src (element size elem) into contiguous dst.
void gather_strided(const uint8_t* src, const std::vector<int64_t>& shape,
                    const std::vector<int64_t>& src_strides, int64_t src_offset, size_t elem,
                    uint8_t* dst) {
  int64_t total = 1;
  for (int64_t d : shape) total *= d;
  if (total == 0) return;
  const size_t rank = shape.size();
  if (rank == 0) {
    std::memcpy(dst, src + src_offset * elem, elem);
    return;
  }
  const int64_t inner = shape[rank - 1];
  const int64_t inner_stride = src_strides[rank - 1];
  std::vector<int64_t> index(rank, 0);
  int64_t offset = src_offset;
  for (int64_t out = 0; out < total; out += inner) {
    if (inner_stride == 1) {
      std::memcpy(dst + out * elem, src + offset * elem, inner * elem);
    } else if (elem == 4) {  // float / int32: typed copies, not a memcpy call per element
      copy_strided<uint32_t>(src + offset * elem, inner_stride, inner, dst + out * elem);
    } else if (elem == 8) {
      copy_strided<uint64_t>(src + offset * elem, inner_stride, inner, dst + out * elem);
    } else {
      for (int64_t i = 0; i < inner; ++i) {
        std::memcpy(dst + (out + i) * elem, src + (offset + i * inner_stride) * elem, elem);
      }
    }
    for (size_t d = rank - 1; d-- > 0;) {
      if (++index[d] < shape[d]) {
        offset += src_strides[d];
        break;
      }
      offset -= src_strides[d] * (shape[d] - 1);
      index[d] = 0;
    }
  }
}

Status identity_op(const OpContext&, std::span<const Tensor* const> in, std::vector<Tensor>& out) {
  out[0] = *in[0];
  return {};
}

Status shape_op(const OpContext& ctx, std::span<const Tensor* const> in, std::vector<Tensor>& out) {
  const int64_t rank = in[0]->rank();
  int64_t start = ctx.attr_int("start", 0);
  int64_t end = ctx.attr_int("end", rank);
  if (start < 0) start += rank;
  if (end < 0) end += rank;
  start = std::clamp<int64_t>(start, 0, rank);
  end = std::clamp<int64_t>(end, start, rank);
  EDGELM_TRY(out[0], ctx.alloc(DataType::kInt64, {end - start}));
  std::copy(in[0]->shape().begin() + start, in[0]->shape().begin() + end,
            out[0].mutable_data<int64_t>());
  return {};
}

Status size_op(const OpContext& ctx, std::span<const Tensor* const> in, std::vector<Tensor>& out) {
  EDGELM_TRY(out[0], ctx.alloc(DataType::kInt64, {}));
  *out[0].mutable_data<int64_t>() = in[0]->numel();
  return {};
}

Status reshape_op(const OpContext& ctx, std::span<const Tensor* const> in,
                  std::vector<Tensor>& out) {
  const Tensor& x = *in[0];
  EDGELM_TRY(auto shape, read_int_list(ctx, *in[1], "shape"));
  const bool allow_zero = ctx.attr_int("allowzero", 0) != 0;
  int64_t known = 1;
  int infer = -1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == 0 && !allow_zero) {
      if (i >= x.shape().size())
        return ctx.error("shape has 0 at index " + std::to_string(i) + " beyond the input rank");
      shape[i] = x.shape()[i];
    }
    if (shape[i] == -1) {
      if (infer >= 0) return ctx.error("shape has more than one -1");
      infer = static_cast<int>(i);
      continue;
    }
    if (shape[i] < 0) return ctx.error("shape has negative dimension " + std::to_string(shape[i]));
    if (shape[i] != 0 && known > INT64_MAX / shape[i]) return ctx.error("shape overflows");
    known *= shape[i];
  }
  if (infer >= 0) {
    if (known == 0 || x.numel() % known != 0) {
      return ctx.error("cannot reshape " + shape_string(x.shape()) + " to " + shape_string(shape));
    }
    shape[infer] = x.numel() / known;
  } else if (known != x.numel()) {
    return ctx.error("cannot reshape " + shape_string(x.shape()) + " to " + shape_string(shape));
  }
  out[0] = x.reshaped(std::move(shape));
  return {};
}

Status flatten_op(const OpContext& ctx, std::span<const Tensor* const> in,
                  std::vector<Tensor>& out) {
  const Tensor& x = *in[0];
  int64_t axis = ctx.attr_int("axis", 1);
  if (axis < 0) axis += x.rank();
  if (axis < 0 || axis > x.rank()) return ctx.error("axis out of range");
  int64_t outer = 1;
  for (int64_t i = 0; i < axis; ++i) outer *= x.shape()[i];
  out[0] = x.reshaped({outer, outer ? x.numel() / outer : 0});
  return {};
}

// Axes from the second input (opset >= 13) or the `axes` attribute (older files).
Result<std::vector<int64_t>> axes_of(const OpContext& ctx, std::span<const Tensor* const> in) {
  if (in.size() > 1 && in[1]) return read_int_list(ctx, *in[1], "axes");
  if (const auto* a = ctx.attr_ints("axes")) return *a;
  return std::vector<int64_t>{};
}

Status squeeze_op(const OpContext& ctx, std::span<const Tensor* const> in,
                  std::vector<Tensor>& out) {
  const Tensor& x = *in[0];
  EDGELM_TRY(auto axes, axes_of(ctx, in));
  std::vector<bool> drop(x.shape().size(), false);
  if (axes.empty()) {
    for (size_t i = 0; i < drop.size(); ++i) drop[i] = x.shape()[i] == 1;
  }
  for (int64_t a : axes) {
    EDGELM_TRY(const int64_t axis, normalize_axis(ctx, a, x.rank()));
    if (x.shape()[axis] != 1)
      return ctx.error("cannot squeeze axis " + std::to_string(a) + " of size " +
                       std::to_string(x.shape()[axis]));
    drop[axis] = true;
  }
  std::vector<int64_t> shape;
  for (size_t i = 0; i < drop.size(); ++i) {
    if (!drop[i]) shape.push_back(x.shape()[i]);
  }
  out[0] = x.reshaped(std::move(shape));
  return {};
}

Status unsqueeze_op(const OpContext& ctx, std::span<const Tensor* const> in,
                    std::vector<Tensor>& out) {
  const Tensor& x = *in[0];
  EDGELM_TRY(auto axes, axes_of(ctx, in));
  const int64_t rank = x.rank() + static_cast<int64_t>(axes.size());
  if (rank > 16) return ctx.error("output rank above 16");
  std::vector<bool> inserted(rank, false);
  for (int64_t a : axes) {
    EDGELM_TRY(const int64_t axis, normalize_axis(ctx, a, rank));
    if (inserted[axis]) return ctx.error("axis " + std::to_string(a) + " repeated");
    inserted[axis] = true;
  }
  std::vector<int64_t> shape;
  size_t next = 0;
  for (int64_t i = 0; i < rank; ++i) shape.push_back(inserted[i] ? 1 : x.shape()[next++]);
  out[0] = x.reshaped(std::move(shape));
  return {};
}

Status transpose_op(const OpContext& ctx, std::span<const Tensor* const> in,
                    std::vector<Tensor>& out) {
  const Tensor& x = *in[0];
  const size_t rank = x.shape().size();
  std::vector<int64_t> perm;
  if (const auto* p = ctx.attr_ints("perm")) {
    perm = *p;
  } else {
    for (size_t i = 0; i < rank; ++i) perm.push_back(static_cast<int64_t>(rank - 1 - i));
  }
  if (perm.size() != rank)
    return ctx.error("perm has " + std::to_string(perm.size()) + " entries for rank " +
                     std::to_string(rank));
  std::vector<bool> seen(rank, false);
  for (int64_t p : perm) {
    if (p < 0 || p >= static_cast<int64_t>(rank) || seen[p])
      return ctx.error("perm is not a permutation");
    seen[p] = true;
  }
  const auto strides = contiguous_strides(x.shape());
  std::vector<int64_t> shape(rank), src_strides(rank);
  for (size_t i = 0; i < rank; ++i) {
    shape[i] = x.shape()[perm[i]];
    src_strides[i] = strides[perm[i]];
  }
  EDGELM_TRY(out[0], ctx.alloc(x.dtype(), shape));
  gather_strided(static_cast<const uint8_t*>(x.raw()), shape, src_strides, 0,
                 data_type_size(x.dtype()), static_cast<uint8_t*>(out[0].mutable_raw()));
  return {};
}

Status concat_op(const OpContext& ctx, std::span<const Tensor* const> in,
                 std::vector<Tensor>& out) {
  const Tensor& first = *in[0];
  EDGELM_TRY(const int64_t axis, normalize_axis(ctx, ctx.attr_int("axis", 0), first.rank()));
  std::vector<int64_t> shape = first.shape();
  shape[axis] = 0;
  for (const Tensor* t : in) {
    if (!t) return ctx.error("missing input");
    if (t->dtype() != first.dtype() || t->rank() != first.rank()) {
      return ctx.error("inputs differ in type or rank");
    }
    for (int64_t d = 0; d < first.rank(); ++d) {
      if (d != axis && t->shape()[d] != first.shape()[d]) {
        return ctx.error("input shapes " + shape_string(first.shape()) + " and " +
                         shape_string(t->shape()) + " differ off the axis");
      }
    }
    shape[axis] += t->shape()[axis];
  }
  EDGELM_TRY(out[0], ctx.alloc(first.dtype(), shape));
  const size_t elem = data_type_size(first.dtype());
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < axis; ++d) outer *= shape[d];
  for (int64_t d = axis + 1; d < first.rank(); ++d) inner *= shape[d];
  auto* dst = static_cast<uint8_t*>(out[0].mutable_raw());
  const int64_t out_row = shape[axis] * inner;
  int64_t column = 0;
  for (const Tensor* t : in) {
    const int64_t row = t->shape()[axis] * inner;
    const auto* src = static_cast<const uint8_t*>(t->raw());
    for (int64_t o = 0; o < outer; ++o) {
      std::memcpy(dst + (o * out_row + column) * elem, src + o * row * elem, row * elem);
    }
    column += row;
  }
  return {};
}

Status split_op(const OpContext& ctx, std::span<const Tensor* const> in, std::vector<Tensor>& out) {
  const Tensor& x = *in[0];
  EDGELM_TRY(const int64_t axis, normalize_axis(ctx, ctx.attr_int("axis", 0), x.rank()));
  const int64_t dim = x.shape()[axis];
  const int64_t parts = static_cast<int64_t>(out.size());
  std::vector<int64_t> sizes;
  if (in.size() > 1 && in[1]) {
    EDGELM_TRY(sizes, read_int_list(ctx, *in[1], "split"));
  } else if (const auto* s = ctx.attr_ints("split")) {
    sizes = *s;
  } else {
    const int64_t each = (dim + parts - 1) / parts;  // opset 18 lets the last part be smaller
    for (int64_t i = 0; i < parts; ++i)
      sizes.push_back(std::max<int64_t>(0, std::min(each, dim - i * each)));
  }
  int64_t sum = 0;
  for (int64_t s : sizes) {
    if (s < 0) return ctx.error("negative split size");
    sum += s;
  }
  if (static_cast<int64_t>(sizes.size()) != parts || sum != dim) {
    return ctx.error("split sizes do not cover axis " + std::to_string(axis) + " of " +
                     shape_string(x.shape()));
  }
  const size_t elem = data_type_size(x.dtype());
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < axis; ++d) outer *= x.shape()[d];
  for (int64_t d = axis + 1; d < x.rank(); ++d) inner *= x.shape()[d];
  const auto* src = static_cast<const uint8_t*>(x.raw());
  int64_t column = 0;
  for (int64_t p = 0; p < parts; ++p) {
    std::vector<int64_t> shape = x.shape();
    shape[axis] = sizes[p];
    EDGELM_TRY(out[p], ctx.alloc(x.dtype(), shape));
    auto* dst = static_cast<uint8_t*>(out[p].mutable_raw());
    const int64_t row = sizes[p] * inner;
    for (int64_t o = 0; o < outer; ++o) {
      std::memcpy(dst + o * row * elem, src + (o * dim * inner + column) * elem, row * elem);
    }
    column += row;
  }
  return {};
}

Status slice_op(const OpContext& ctx, std::span<const Tensor* const> in, std::vector<Tensor>& out) {
  const Tensor& x = *in[0];
  const int64_t rank = x.rank();
  EDGELM_TRY(auto starts, read_int_list(ctx, *in[1], "starts"));
  EDGELM_TRY(auto ends, read_int_list(ctx, *in[2], "ends"));
  std::vector<int64_t> axes, steps;
  if (in.size() > 3 && in[3]) {
    EDGELM_TRY(axes, read_int_list(ctx, *in[3], "axes"));
  } else {
    for (size_t i = 0; i < starts.size(); ++i) axes.push_back(static_cast<int64_t>(i));
  }
  if (in.size() > 4 && in[4]) {
    EDGELM_TRY(steps, read_int_list(ctx, *in[4], "steps"));
  } else {
    steps.assign(starts.size(), 1);
  }
  if (ends.size() != starts.size() || axes.size() != starts.size() ||
      steps.size() != starts.size()) {
    return ctx.error("starts, ends, axes and steps differ in length");
  }
  std::vector<int64_t> begin(rank, 0), step(rank, 1), shape = x.shape();
  std::vector<bool> seen(rank, false);
  for (size_t i = 0; i < starts.size(); ++i) {
    EDGELM_TRY(const int64_t axis, normalize_axis(ctx, axes[i], rank));
    if (seen[axis]) return ctx.error("axis repeated");
    seen[axis] = true;
    const int64_t dim = x.shape()[axis];
    if (steps[i] == 0) return ctx.error("step is 0");
    // A step longer than the axis takes one element either way; clamping keeps the arithmetic
    // below from overflowing.
    const int64_t s = std::clamp<int64_t>(steps[i], -dim - 1, dim + 1);
    // Clamp as the spec says; computed in a way that cannot overflow for extreme values.
    auto clamp_index = [&](int64_t v) {
      if (v < 0) v = v < -dim ? -1 : v + dim;
      return s > 0 ? std::clamp<int64_t>(v, 0, dim) : std::clamp<int64_t>(v, -1, dim - 1);
    };
    const int64_t b = clamp_index(starts[i]);
    const int64_t e = clamp_index(ends[i]);
    int64_t count = 0;
    if (s > 0 && e > b) count = (e - b + s - 1) / s;
    if (s < 0 && b > e) count = (b - e + (-s) - 1) / (-s);
    begin[axis] = b;
    step[axis] = s;
    shape[axis] = count;
  }
  const auto strides = contiguous_strides(x.shape());
  int64_t offset = 0;
  std::vector<int64_t> src_strides(rank);
  for (int64_t d = 0; d < rank; ++d) {
    if (shape[d] > 0) offset += begin[d] * strides[d];
    src_strides[d] = strides[d] * step[d];
  }
  EDGELM_TRY(out[0], ctx.alloc(x.dtype(), shape));
  gather_strided(static_cast<const uint8_t*>(x.raw()), shape, src_strides, offset,
                 data_type_size(x.dtype()), static_cast<uint8_t*>(out[0].mutable_raw()));
  return {};
}

Status gather_op(const OpContext& ctx, std::span<const Tensor* const> in,
                 std::vector<Tensor>& out) {
  const Tensor& data = *in[0];
  const Tensor& indices = *in[1];
  if (data.rank() == 0) return ctx.error("data must have rank >= 1");
  EDGELM_TRY(const int64_t axis, normalize_axis(ctx, ctx.attr_int("axis", 0), data.rank()));
  std::vector<int64_t> idx;
  if (indices.dtype() == DataType::kInt64) {
    idx.assign(indices.data<int64_t>(), indices.data<int64_t>() + indices.numel());
  } else if (indices.dtype() == DataType::kInt32) {
    idx.assign(indices.data<int32_t>(), indices.data<int32_t>() + indices.numel());
  } else {
    return ctx.error("indices must be int64 or int32");
  }
  const int64_t dim = data.shape()[axis];
  for (int64_t& i : idx) {
    if (i < -dim || i >= dim)
      return ctx.error("index " + std::to_string(i) + " out of range for axis of size " +
                       std::to_string(dim));
    if (i < 0) i += dim;
  }
  std::vector<int64_t> shape(data.shape().begin(), data.shape().begin() + axis);
  shape.insert(shape.end(), indices.shape().begin(), indices.shape().end());
  shape.insert(shape.end(), data.shape().begin() + axis + 1, data.shape().end());
  EDGELM_TRY(out[0], ctx.alloc(data.dtype(), shape));
  const size_t elem = data_type_size(data.dtype());
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < axis; ++d) outer *= data.shape()[d];
  for (int64_t d = axis + 1; d < data.rank(); ++d) inner *= data.shape()[d];
  const auto* src = static_cast<const uint8_t*>(data.raw());
  auto* dst = static_cast<uint8_t*>(out[0].mutable_raw());
  const size_t row = inner * elem;
  for (int64_t o = 0; o < outer; ++o) {
    for (size_t j = 0; j < idx.size(); ++j) {
      std::memcpy(dst + (o * idx.size() + j) * row, src + (o * dim + idx[j]) * row, row);
    }
  }
  return {};
}

Status expand_op(const OpContext& ctx, std::span<const Tensor* const> in,
                 std::vector<Tensor>& out) {
  const Tensor& x = *in[0];
  EDGELM_TRY(auto target, read_int_list(ctx, *in[1], "shape"));
  EDGELM_TRY(auto shape, broadcast_shapes(ctx, x.shape(), target));
  const size_t rank = shape.size();
  std::vector<int64_t> src_strides(rank, 0);
  const auto strides = contiguous_strides(x.shape());
  for (size_t i = 0; i < x.shape().size(); ++i) {
    const size_t o = rank - x.shape().size() + i;
    src_strides[o] = x.shape()[i] == 1 ? 0 : strides[i];
  }
  EDGELM_TRY(out[0], ctx.alloc(x.dtype(), shape));
  gather_strided(static_cast<const uint8_t*>(x.raw()), shape, src_strides, 0,
                 data_type_size(x.dtype()), static_cast<uint8_t*>(out[0].mutable_raw()));
  return {};
}

Status constant_of_shape_op(const OpContext& ctx, std::span<const Tensor* const> in,
                            std::vector<Tensor>& out) {
  EDGELM_TRY(auto shape, read_int_list(ctx, *in[0], "shape"));
  const AttributeDef* value = ctx.node.attr("value");
  DataType type = DataType::kFloat;
  const void* fill = nullptr;
  const float zero[2] = {0, 0};
  if (value && !value->t.empty()) {
    if (value->t.numel() != 1) return ctx.error("value must hold one element");
    type = value->t.dtype();
    fill = value->t.raw();
  } else {
    fill = zero;
  }
  EDGELM_TRY(out[0], ctx.alloc(type, shape));
  const size_t elem = data_type_size(type);
  auto* dst = static_cast<uint8_t*>(out[0].mutable_raw());
  for (int64_t i = 0; i < out[0].numel(); ++i) std::memcpy(dst + i * elem, fill, elem);
  return {};
}

Status constant_op(const OpContext& ctx, std::span<const Tensor* const>, std::vector<Tensor>& out) {
  if (const AttributeDef* a = ctx.node.attr("value"); a && !a->t.empty()) {
    out[0] = a->t;
    return {};
  }
  if (const AttributeDef* a = ctx.node.attr("value_float")) {
    EDGELM_TRY(out[0], Tensor::from_floats({}, std::span<const float>(&a->f, 1)));
    return {};
  }
  if (const AttributeDef* a = ctx.node.attr("value_floats")) {
    EDGELM_TRY(out[0], Tensor::from_floats({static_cast<int64_t>(a->floats.size())}, a->floats));
    return {};
  }
  if (const AttributeDef* a = ctx.node.attr("value_int")) {
    EDGELM_TRY(out[0], Tensor::from_int64({}, std::span<const int64_t>(&a->i, 1)));
    return {};
  }
  if (const AttributeDef* a = ctx.node.attr("value_ints")) {
    EDGELM_TRY(out[0], Tensor::from_int64({static_cast<int64_t>(a->ints.size())}, a->ints));
    return {};
  }
  return ctx.unsupported("no value attribute edgelm reads (value, value_float(s), value_int(s))");
}

template <class T>
Status range_typed(const OpContext& ctx, std::span<const Tensor* const> in,
                   std::vector<Tensor>& out) {
  const T start = *in[0]->data<T>();
  const T limit = *in[1]->data<T>();
  const T delta = *in[2]->data<T>();
  if (delta == 0) return ctx.error("delta is 0");
  const double count = std::ceil((static_cast<double>(limit) - static_cast<double>(start)) /
                                 static_cast<double>(delta));
  if (!(count < 1e12)) return ctx.error("range too long");
  const int64_t n = count > 0 ? static_cast<int64_t>(count) : 0;
  EDGELM_TRY(out[0], ctx.alloc(in[0]->dtype(), {n}));
  T* dst = out[0].mutable_data<T>();
  for (int64_t i = 0; i < n; ++i) {
    if constexpr (std::is_integral_v<T>) {  // wraps like ONNX Runtime instead of overflowing
      dst[i] = static_cast<T>(static_cast<uint64_t>(start) +
                              static_cast<uint64_t>(i) * static_cast<uint64_t>(delta));
    } else {
      dst[i] = start + static_cast<T>(i) * delta;
    }
  }
  return {};
}

Status range_op(const OpContext& ctx, std::span<const Tensor* const> in, std::vector<Tensor>& out) {
  for (int i = 0; i < 3; ++i) {
    if (in[i]->numel() != 1 || in[i]->dtype() != in[0]->dtype())
      return ctx.error("start, limit and delta must be scalars of one type");
  }
  switch (in[0]->dtype()) {
    case DataType::kFloat:
      return range_typed<float>(ctx, in, out);
    case DataType::kInt64:
      return range_typed<int64_t>(ctx, in, out);
    case DataType::kInt32:
      return range_typed<int32_t>(ctx, in, out);
    default:
      return ctx.unsupported("type " + data_type_name(in[0]->dtype()));
  }
}

Status trilu_op(const OpContext& ctx, std::span<const Tensor* const> in, std::vector<Tensor>& out) {
  const Tensor& x = *in[0];
  if (x.rank() < 2) return ctx.error("input must have rank >= 2");
  int64_t k = 0;
  if (in.size() > 1 && in[1]) {
    EDGELM_TRY(auto ks, read_int_list(ctx, *in[1], "k"));
    if (ks.size() != 1) return ctx.error("k must hold one value");
    k = std::clamp<int64_t>(ks[0], -(int64_t{1} << 40), int64_t{1} << 40);
  }
  const bool upper = ctx.attr_int("upper", 1) != 0;
  const int64_t rows = x.shape()[x.rank() - 2];
  const int64_t cols = x.shape()[x.rank() - 1];
  EDGELM_TRY(out[0], ctx.alloc(x.dtype(), x.shape()));
  const size_t elem = data_type_size(x.dtype());
  const auto* src = static_cast<const uint8_t*>(x.raw());
  auto* dst = static_cast<uint8_t*>(out[0].mutable_raw());
  const int64_t mats = rows > 0 && cols > 0 ? x.numel() / (rows * cols) : 0;
  for (int64_t m = 0; m < mats; ++m) {
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t c = 0; c < cols; ++c) {
        const int64_t i = (m * rows + r) * cols + c;
        const bool keep = upper ? c - r >= k : c - r <= k;
        if (keep) {
          std::memcpy(dst + i * elem, src + i * elem, elem);
        } else {
          std::memset(dst + i * elem, 0, elem);
        }
      }
    }
  }
  return {};
}

}  // namespace

void register_shape_ops(std::vector<OpSpec>& t) {
  t.push_back({"Identity", &identity_op, 1, 1, 1, 1});
  t.push_back({"Shape", &shape_op, 1, 1, 1, 1});
  t.push_back({"Size", &size_op, 1, 1, 1, 1});
  t.push_back({"Reshape", &reshape_op, 2, 2, 1, 1});
  t.push_back({"Flatten", &flatten_op, 1, 1, 1, 1});
  t.push_back({"Squeeze", &squeeze_op, 1, 2, 1, 1});
  t.push_back({"Unsqueeze", &unsqueeze_op, 1, 2, 1, 1});
  t.push_back({"Transpose", &transpose_op, 1, 1, 1, 1});
  t.push_back({"Concat", &concat_op, 1, 1 << 16, 1, 1});
  t.push_back({"Split", &split_op, 1, 2, 1, 1 << 16});
  t.push_back({"Slice", &slice_op, 3, 5, 1, 1});
  t.push_back({"Gather", &gather_op, 2, 2, 1, 1});
  t.push_back({"Expand", &expand_op, 2, 2, 1, 1});
  t.push_back({"ConstantOfShape", &constant_of_shape_op, 1, 1, 1, 1});
  t.push_back({"Constant", &constant_op, 0, 0, 1, 1});
  t.push_back({"Range", &range_op, 3, 3, 1, 1});
  t.push_back({"Trilu", &trilu_op, 1, 2, 1, 1});
}

}  // namespace edgelm::onnx
