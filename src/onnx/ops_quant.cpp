// The quantization operators quantize_dynamic emits, with ONNX's exact integer semantics:
// round half to even, saturate to the 8-bit range, int32 accumulation.
#include <algorithm>
#include <cmath>

#include "onnx/ops.h"

namespace edgelm::onnx {
namespace {

// round-half-even then clamp, NaN to the zero point region's 0.
inline int32_t round_saturate(float v, int32_t lo, int32_t hi) {
  if (std::isnan(v)) return 0;
  const float r = std::nearbyint(std::clamp(v, static_cast<float>(lo), static_cast<float>(hi)));
  return static_cast<int32_t>(r);
}

Status dynamic_quantize_op(const OpContext& ctx, std::span<const Tensor* const> in,
                           std::vector<Tensor>& out) {
  const Tensor& x = *in[0];
  EDGELM_CHECK(expect_type(ctx, x, DataType::kFloat, "x"));
  const float* src = x.data<float>();
  float lo = 0, hi = 0;  // the range always holds 0 so that 0 is exact
  for (int64_t i = 0; i < x.numel(); ++i) {
    if (std::isnan(src[i])) continue;
    lo = std::min(lo, src[i]);
    hi = std::max(hi, src[i]);
  }
  const float scale = (hi - lo) / 255.0f;
  const int32_t zp =
      scale > 0 && std::isfinite(scale) ? round_saturate(0.0f - lo / scale, 0, 255) : 0;
  EDGELM_TRY(out[0], ctx.alloc(DataType::kUint8, x.shape()));
  EDGELM_TRY(out[1], ctx.alloc(DataType::kFloat, {}));
  EDGELM_TRY(out[2], ctx.alloc(DataType::kUint8, {}));
  *out[1].mutable_data<float>() = scale;
  *out[2].mutable_data<uint8_t>() = static_cast<uint8_t>(zp);
  uint8_t* dst = out[0].mutable_data<uint8_t>();
  if (!(scale > 0) || !std::isfinite(scale)) {
    std::fill_n(dst, x.numel(), static_cast<uint8_t>(zp));
    return {};
  }
  for (int64_t i = 0; i < x.numel(); ++i) {
    dst[i] = static_cast<uint8_t>(round_saturate(src[i] / scale + static_cast<float>(zp), 0, 255));
  }
  return {};
}

// Values of an 8-bit tensor as int32 (uint8 or int8).
Result<std::vector<int32_t>> widen(const OpContext& ctx, const Tensor& t, std::string_view what) {
  std::vector<int32_t> v(static_cast<size_t>(t.numel()));
  if (t.dtype() == DataType::kUint8) {
    std::copy_n(t.data<uint8_t>(), t.numel(), v.begin());
  } else if (t.dtype() == DataType::kInt8) {
    std::copy_n(t.data<int8_t>(), t.numel(), v.begin());
  } else {
    return ctx.error(std::string(what) + " must be uint8 or int8, got " +
                     data_type_name(t.dtype()));
  }
  return v;
}

Status matmul_integer_op(const OpContext& ctx, std::span<const Tensor* const> in,
                         std::vector<Tensor>& out) {
  const Tensor& a = *in[0];
  const Tensor& b = *in[1];
  if (a.rank() < 2 || b.rank() < 2) return ctx.unsupported("inputs of rank 1");
  const int64_t k = a.shape().back(), n = b.shape().back();
  if (b.shape()[b.rank() - 2] != k) {
    return ctx.error("A " + shape_string(a.shape()) + " and B " + shape_string(b.shape()) +
                     " have different inner dimensions");
  }
  if (b.rank() != 2) return ctx.unsupported("batched B (only a 2-D B is supported)");
  EDGELM_TRY(auto av, widen(ctx, a, "A"));
  EDGELM_TRY(auto bv, widen(ctx, b, "B"));
  int32_t a_zp = 0;
  if (in.size() > 2 && in[2]) {
    if (in[2]->numel() != 1) return ctx.unsupported("per-row a_zero_point");
    EDGELM_TRY(auto z, widen(ctx, *in[2], "a_zero_point"));
    a_zp = z[0];
  }
  std::vector<int32_t> b_zp(static_cast<size_t>(n), 0);
  if (in.size() > 3 && in[3]) {
    EDGELM_TRY(auto z, widen(ctx, *in[3], "b_zero_point"));
    if (z.size() == 1) {
      std::fill(b_zp.begin(), b_zp.end(), z[0]);
    } else if (static_cast<int64_t>(z.size()) == n) {
      b_zp = z;
    } else {
      return ctx.error("b_zero_point must hold 1 or " + std::to_string(n) + " values");
    }
  }
  std::vector<int64_t> shape = a.shape();
  shape.back() = n;
  EDGELM_TRY(out[0], ctx.alloc(DataType::kInt32, shape));
  // B - zp transposed to [n, k] so each output is one contiguous dot product.
  std::vector<int32_t> bt(static_cast<size_t>(n * k));
  for (int64_t r = 0; r < k; ++r) {
    for (int64_t c = 0; c < n; ++c) bt[c * k + r] = bv[r * n + c] - b_zp[c];
  }
  const int64_t rows = a.numel() / std::max<int64_t>(k, 1);
  int32_t* y = out[0].mutable_data<int32_t>();
  std::vector<int32_t> row(static_cast<size_t>(k));
  // |a - zp|, |b - zp| <= 255: an int32 sum of k products cannot overflow while k <= 32768.
  const bool wide = k > 32768;
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t i = 0; i < k; ++i) row[i] = av[r * k + i] - a_zp;
    for (int64_t c = 0; c < n; ++c) {
      const int32_t* w = bt.data() + c * k;
      if (wide) {
        int64_t acc = 0;
        for (int64_t i = 0; i < k; ++i) acc += int64_t{row[i]} * w[i];
        y[r * n + c] = static_cast<int32_t>(static_cast<uint32_t>(acc));  // wraps like int32 math
      } else {
        int32_t acc = 0;
        for (int64_t i = 0; i < k; ++i) acc += row[i] * w[i];
        y[r * n + c] = acc;
      }
    }
  }
  return {};
}

// Per-tensor or per-axis parameters: index of the scale/zero point for flat element i.
struct AxisParams {
  int64_t inner = 1;  // elements after the axis
  int64_t dim = 1;    // 1: per tensor
  int64_t index(int64_t i) const { return dim == 1 ? 0 : (i / inner) % dim; }
};

Result<AxisParams> axis_params(const OpContext& ctx, const Tensor& x, const Tensor& scale) {
  AxisParams p;
  if (scale.numel() == 1) return p;
  if (scale.rank() != 1) return ctx.unsupported("blocked quantization (scale of rank > 1)");
  EDGELM_TRY(const int64_t axis, normalize_axis(ctx, ctx.attr_int("axis", 1), x.rank()));
  if (x.shape()[axis] != scale.numel()) {
    return ctx.error("scale holds " + std::to_string(scale.numel()) +
                     " values for an axis of size " + std::to_string(x.shape()[axis]));
  }
  p.dim = scale.numel();
  for (int64_t d = axis + 1; d < x.rank(); ++d) p.inner *= x.shape()[d];
  return p;
}

Status quantize_linear_op(const OpContext& ctx, std::span<const Tensor* const> in,
                          std::vector<Tensor>& out) {
  const Tensor& x = *in[0];
  const Tensor& scale = *in[1];
  const Tensor* zp = in.size() > 2 ? in[2] : nullptr;
  EDGELM_CHECK(expect_type(ctx, x, DataType::kFloat, "x"));
  EDGELM_CHECK(expect_type(ctx, scale, DataType::kFloat, "y_scale"));
  EDGELM_TRY(const AxisParams p, axis_params(ctx, x, scale));
  const DataType type = zp ? zp->dtype() : DataType::kUint8;
  std::vector<int32_t> zps(static_cast<size_t>(p.dim), 0);
  if (zp) {
    if (zp->numel() != scale.numel()) return ctx.error("y_zero_point and y_scale differ in size");
    EDGELM_TRY(zps, widen(ctx, *zp, "y_zero_point"));
  }
  const int32_t lo = type == DataType::kInt8 ? -128 : 0, hi = type == DataType::kInt8 ? 127 : 255;
  EDGELM_TRY(out[0], ctx.alloc(type, x.shape()));
  auto* dst = static_cast<uint8_t*>(out[0].mutable_raw());
  for (int64_t i = 0; i < x.numel(); ++i) {
    const int64_t j = p.index(i);
    const float s = scale.data<float>()[j];
    const int32_t q = round_saturate(x.data<float>()[i] / s + static_cast<float>(zps[j]), lo, hi);
    dst[i] = static_cast<uint8_t>(q);
  }
  return {};
}

Status dequantize_linear_op(const OpContext& ctx, std::span<const Tensor* const> in,
                            std::vector<Tensor>& out) {
  const Tensor& x = *in[0];
  const Tensor& scale = *in[1];
  const Tensor* zp = in.size() > 2 ? in[2] : nullptr;
  EDGELM_CHECK(expect_type(ctx, scale, DataType::kFloat, "x_scale"));
  EDGELM_TRY(const AxisParams p, axis_params(ctx, x, scale));
  std::vector<int32_t> zps(static_cast<size_t>(p.dim), 0);
  if (zp) {
    if (zp->numel() != scale.numel()) return ctx.error("x_zero_point and x_scale differ in size");
    if (zp->dtype() != x.dtype()) return ctx.error("x_zero_point and x differ in type");
    if (x.dtype() != DataType::kInt32) {
      EDGELM_TRY(zps, widen(ctx, *zp, "x_zero_point"));
    } else {
      std::copy_n(zp->data<int32_t>(), zp->numel(), zps.begin());
    }
  }
  std::vector<int32_t> values;
  if (x.dtype() == DataType::kInt32) {
    values.assign(x.data<int32_t>(), x.data<int32_t>() + x.numel());
  } else {
    EDGELM_TRY(values, widen(ctx, x, "x"));
  }
  EDGELM_TRY(out[0], ctx.alloc(DataType::kFloat, x.shape()));
  float* dst = out[0].mutable_data<float>();
  for (int64_t i = 0; i < x.numel(); ++i) {
    const int64_t j = p.index(i);
    dst[i] = static_cast<float>(static_cast<int64_t>(values[i]) - zps[j]) * scale.data<float>()[j];
  }
  return {};
}

}  // namespace

void register_quant_ops(std::vector<OpSpec>& t) {
  t.push_back({"DynamicQuantizeLinear", &dynamic_quantize_op, 1, 1, 3, 3});
  t.push_back({"MatMulInteger", &matmul_integer_op, 2, 4, 1, 1});
  t.push_back({"QuantizeLinear", &quantize_linear_op, 2, 3, 1, 1});
  t.push_back({"DequantizeLinear", &dequantize_linear_op, 2, 3, 1, 1});
}

}  // namespace edgelm::onnx
