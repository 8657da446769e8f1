// Unary and broadcasting binary operators, Where and Cast.
#include <array>
#include <cmath>
#include <cstring>
#include <limits>

#include "edgelm/quant.h"
#include "onnx/ops.h"

namespace edgelm::onnx {
namespace {

// Calls body(out_offset, offsets[], inner, steps[]) for each innermost run of the broadcast of
// `shapes` to out_shape; steps are 0 (broadcast) or 1 along the innermost dimension.
template <size_t N, class Body>
void for_each_run(const std::vector<int64_t>& out_shape,
                  const std::array<const std::vector<int64_t>*, N>& shapes, const Body& body) {
  const size_t rank = out_shape.size();
  std::array<std::vector<int64_t>, N> strides;
  for (size_t k = 0; k < N; ++k) {
    const auto& s = *shapes[k];
    strides[k].assign(rank, 0);
    int64_t stride = 1;
    for (size_t i = 0; i < s.size(); ++i) {
      const size_t d = s.size() - 1 - i;
      const size_t o = rank - 1 - i;
      strides[k][o] = s[d] == 1 ? 0 : stride;
      stride *= s[d];
    }
  }
  int64_t total = 1;
  for (int64_t d : out_shape) total *= d;
  if (total == 0) return;
  const int64_t inner = rank ? out_shape[rank - 1] : 1;
  std::array<int64_t, N> steps;
  for (size_t k = 0; k < N; ++k) steps[k] = rank ? strides[k][rank - 1] : 0;
  std::vector<int64_t> index(rank, 0);
  std::array<int64_t, N> offsets{};
  for (int64_t out = 0; out < total; out += inner) {
    body(out, offsets, inner, steps);
    // Advance the outer index (all dims but the last), updating input offsets.
    for (size_t d = rank >= 1 ? rank - 1 : 0; d-- > 0;) {
      if (++index[d] < out_shape[d]) {
        for (size_t k = 0; k < N; ++k) offsets[k] += strides[k][d];
        break;
      }
      for (size_t k = 0; k < N; ++k) offsets[k] -= strides[k][d] * (out_shape[d] - 1);
      index[d] = 0;
    }
  }
}

template <class Out, class In, class Fn>
Status binary_typed(const OpContext& ctx, const Tensor& a, const Tensor& b, Tensor& out,
                    const Fn& fn) {
  const In* pa = a.data<In>();
  const In* pb = b.data<In>();
  Out* po = out.mutable_data<Out>();
  if (a.shape() == b.shape()) {
    for (int64_t i = 0; i < out.numel(); ++i) po[i] = fn(pa[i], pb[i]);
    return {};
  }
  for_each_run<2>(out.shape(), {&a.shape(), &b.shape()},
                  [&](int64_t o, const std::array<int64_t, 2>& off, int64_t n,
                      const std::array<int64_t, 2>& st) {
                    const In* x = pa + off[0];
                    const In* y = pb + off[1];
                    Out* z = po + o;
                    if (st[0] == 1 && st[1] == 1) {
                      for (int64_t i = 0; i < n; ++i) z[i] = fn(x[i], y[i]);
                    } else if (st[0] == 1) {
                      const In yv = *y;
                      for (int64_t i = 0; i < n; ++i) z[i] = fn(x[i], yv);
                    } else {
                      for (int64_t i = 0; i < n; ++i) z[i] = fn(x[i * st[0]], y[i * st[1]]);
                    }
                  });
  return {};
}

enum class BinOp { kAdd, kSub, kMul, kDiv, kPow, kEqual, kLess, kGreater, kAnd, kOr };

template <BinOp kOp>
Status binary_op(const OpContext& ctx, std::span<const Tensor* const> in,
                 std::vector<Tensor>& out) {
  const Tensor& a = *in[0];
  const Tensor& b = *in[1];
  if (a.dtype() != b.dtype() && kOp != BinOp::kPow) {
    return ctx.error("inputs have different types " + data_type_name(a.dtype()) + " and " +
                     data_type_name(b.dtype()));
  }
  EDGELM_TRY(auto shape, broadcast_shapes(ctx, a.shape(), b.shape()));
  constexpr bool kCompare = kOp == BinOp::kEqual || kOp == BinOp::kLess || kOp == BinOp::kGreater;
  constexpr bool kLogic = kOp == BinOp::kAnd || kOp == BinOp::kOr;
  EDGELM_TRY(out[0], ctx.alloc(kCompare || kLogic ? DataType::kBool : a.dtype(), shape));
  if constexpr (kLogic) {
    if (a.dtype() != DataType::kBool) return ctx.error("inputs must be bool");
    return binary_typed<uint8_t, uint8_t>(ctx, a, b, out[0], [](uint8_t x, uint8_t y) -> uint8_t {
      return kOp == BinOp::kAnd ? (x && y) : (x || y);
    });
  } else if constexpr (kCompare) {
    auto cmp = [](auto x, auto y) -> uint8_t {
      if constexpr (kOp == BinOp::kEqual) return x == y;
      if constexpr (kOp == BinOp::kLess) return x < y;
      return x > y;
    };
    switch (a.dtype()) {
      case DataType::kFloat:
        return binary_typed<uint8_t, float>(ctx, a, b, out[0], cmp);
      case DataType::kInt64:
        return binary_typed<uint8_t, int64_t>(ctx, a, b, out[0], cmp);
      case DataType::kInt32:
        return binary_typed<uint8_t, int32_t>(ctx, a, b, out[0], cmp);
      case DataType::kBool:
        if (kOp == BinOp::kEqual) return binary_typed<uint8_t, uint8_t>(ctx, a, b, out[0], cmp);
        break;
      default:
        break;
    }
    return ctx.unsupported("input type " + data_type_name(a.dtype()));
  } else if constexpr (kOp == BinOp::kPow) {
    if (a.dtype() != DataType::kFloat)
      return ctx.unsupported("base type " + data_type_name(a.dtype()));
    if (b.dtype() != DataType::kFloat) {
      return ctx.unsupported("exponent type " + data_type_name(b.dtype()));
    }
    return binary_typed<float, float>(
        ctx, a, b, out[0], [](float x, float y) { return y == 2.0f ? x * x : std::pow(x, y); });
  } else {
    auto arith = [](auto x, auto y) -> decltype(x) {
      if constexpr (kOp == BinOp::kAdd) return x + y;
      if constexpr (kOp == BinOp::kSub) return x - y;
      if constexpr (kOp == BinOp::kMul) return x * y;
      return x / y;
    };
    switch (a.dtype()) {
      case DataType::kFloat:
        return binary_typed<float, float>(ctx, a, b, out[0], arith);
      case DataType::kDouble:
        return binary_typed<double, double>(ctx, a, b, out[0], arith);
      case DataType::kInt64:
      case DataType::kInt32: {
        // Wrap-around integer arithmetic (as ONNX Runtime); division by zero is an error.
        auto int_op = [&](auto x, auto y, bool& bad) -> decltype(x) {
          using T = decltype(x);
          using U = std::make_unsigned_t<T>;
          if constexpr (kOp == BinOp::kAdd)
            return static_cast<T>(static_cast<U>(x) + static_cast<U>(y));
          if constexpr (kOp == BinOp::kSub)
            return static_cast<T>(static_cast<U>(x) - static_cast<U>(y));
          if constexpr (kOp == BinOp::kMul)
            return static_cast<T>(static_cast<U>(x) * static_cast<U>(y));
          if (y == 0 || (x == std::numeric_limits<T>::min() && y == -1)) {
            bad = true;
            return 0;
          }
          return x / y;
        };
        bool bad = false;
        if (a.dtype() == DataType::kInt64) {
          EDGELM_CHECK((binary_typed<int64_t, int64_t>(
              ctx, a, b, out[0], [&](int64_t x, int64_t y) { return int_op(x, y, bad); })));
        } else {
          EDGELM_CHECK((binary_typed<int32_t, int32_t>(
              ctx, a, b, out[0], [&](int32_t x, int32_t y) { return int_op(x, y, bad); })));
        }
        if (bad) return ctx.error("integer division by zero or overflow");
        return {};
      }
      default:
        break;
    }
    return ctx.unsupported("input type " + data_type_name(a.dtype()));
  }
}

enum class UnOp { kSqrt, kReciprocal, kNeg, kErf, kTanh, kSigmoid, kRelu, kCos, kSin, kExp, kAbs };

template <UnOp kOp>
Status unary_op(const OpContext& ctx, std::span<const Tensor* const> in, std::vector<Tensor>& out) {
  const Tensor& x = *in[0];
  if constexpr (kOp == UnOp::kNeg || kOp == UnOp::kAbs) {
    if (x.dtype() == DataType::kInt64) {
      EDGELM_TRY(out[0], ctx.alloc(x.dtype(), x.shape()));
      const int64_t* src = x.data<int64_t>();
      int64_t* dst = out[0].mutable_data<int64_t>();
      for (int64_t i = 0; i < x.numel(); ++i) {
        const uint64_t neg = uint64_t{0} - static_cast<uint64_t>(src[i]);
        dst[i] = kOp == UnOp::kNeg || src[i] < 0 ? static_cast<int64_t>(neg) : src[i];
      }
      return {};
    }
  }
  EDGELM_CHECK(expect_type(ctx, x, DataType::kFloat, "input"));
  EDGELM_TRY(out[0], ctx.alloc(x.dtype(), x.shape()));
  const float* src = x.data<float>();
  float* dst = out[0].mutable_data<float>();
  const int64_t n = x.numel();
  for (int64_t i = 0; i < n; ++i) {
    const float v = src[i];
    if constexpr (kOp == UnOp::kSqrt) dst[i] = std::sqrt(v);
    if constexpr (kOp == UnOp::kReciprocal) dst[i] = 1.0f / v;
    if constexpr (kOp == UnOp::kNeg) dst[i] = -v;
    if constexpr (kOp == UnOp::kErf) dst[i] = std::erf(v);
    if constexpr (kOp == UnOp::kTanh) dst[i] = std::tanh(v);
    if constexpr (kOp == UnOp::kSigmoid) dst[i] = 1.0f / (1.0f + std::exp(-v));
    if constexpr (kOp == UnOp::kRelu) dst[i] = v > 0 ? v : 0.0f;
    if constexpr (kOp == UnOp::kCos) dst[i] = std::cos(v);
    if constexpr (kOp == UnOp::kSin) dst[i] = std::sin(v);
    if constexpr (kOp == UnOp::kExp) dst[i] = std::exp(v);
    if constexpr (kOp == UnOp::kAbs) dst[i] = std::fabs(v);
  }
  return {};
}

Status not_op(const OpContext& ctx, std::span<const Tensor* const> in, std::vector<Tensor>& out) {
  EDGELM_CHECK(expect_type(ctx, *in[0], DataType::kBool, "input"));
  EDGELM_TRY(out[0], ctx.alloc(DataType::kBool, in[0]->shape()));
  const uint8_t* src = in[0]->data<uint8_t>();
  uint8_t* dst = out[0].mutable_data<uint8_t>();
  for (int64_t i = 0; i < in[0]->numel(); ++i) dst[i] = !src[i];
  return {};
}

Status where_op(const OpContext& ctx, std::span<const Tensor* const> in, std::vector<Tensor>& out) {
  const Tensor& cond = *in[0];
  const Tensor& x = *in[1];
  const Tensor& y = *in[2];
  EDGELM_CHECK(expect_type(ctx, cond, DataType::kBool, "condition"));
  if (x.dtype() != y.dtype()) return ctx.error("X and Y have different types");
  EDGELM_TRY(auto shape, broadcast_shapes(ctx, cond.shape(), x.shape()));
  EDGELM_TRY(shape, broadcast_shapes(ctx, shape, y.shape()));
  EDGELM_TRY(out[0], ctx.alloc(x.dtype(), shape));
  const size_t elem = data_type_size(x.dtype());
  const uint8_t* pc = cond.data<uint8_t>();
  const auto* px = static_cast<const uint8_t*>(x.raw());
  const auto* py = static_cast<const uint8_t*>(y.raw());
  auto* po = static_cast<uint8_t*>(out[0].mutable_raw());
  for_each_run<3>(shape, {&cond.shape(), &x.shape(), &y.shape()},
                  [&](int64_t o, const std::array<int64_t, 3>& off, int64_t n,
                      const std::array<int64_t, 3>& st) {
                    for (int64_t i = 0; i < n; ++i) {
                      const bool c = pc[off[0] + i * st[0]];
                      const uint8_t* src =
                          c ? px + (off[1] + i * st[1]) * elem : py + (off[2] + i * st[2]) * elem;
                      std::memcpy(po + (o + i) * elem, src, elem);
                    }
                  });
  return {};
}

// Float to integer conversions saturate (NaN gives 0): C++ leaves out-of-range casts undefined.
template <class To>
To saturate_cast(double v) {
  if (std::isnan(v)) return 0;
  if (v <= static_cast<double>(std::numeric_limits<To>::lowest()))
    return std::numeric_limits<To>::lowest();
  if (v >= static_cast<double>(std::numeric_limits<To>::max()))
    return std::numeric_limits<To>::max();
  return static_cast<To>(v);
}

double load_as_double(const void* base, DataType type, int64_t i) {
  switch (type) {
    case DataType::kFloat:
      return static_cast<const float*>(base)[i];
    case DataType::kDouble:
      return static_cast<const double*>(base)[i];
    case DataType::kInt64:
      return static_cast<double>(static_cast<const int64_t*>(base)[i]);
    case DataType::kInt32:
      return static_cast<const int32_t*>(base)[i];
    case DataType::kInt8:
      return static_cast<const int8_t*>(base)[i];
    case DataType::kUint8:
    case DataType::kBool:
      return static_cast<const uint8_t*>(base)[i];
    case DataType::kFloat16:
      return tensor::fp16_to_fp32(static_cast<const uint16_t*>(base)[i]);
    case DataType::kBfloat16:
      return tensor::bf16_to_fp32(static_cast<const uint16_t*>(base)[i]);
    default:
      return 0;
  }
}

bool castable(DataType t) {
  switch (t) {
    case DataType::kFloat:
    case DataType::kDouble:
    case DataType::kInt64:
    case DataType::kInt32:
    case DataType::kInt8:
    case DataType::kUint8:
    case DataType::kBool:
    case DataType::kFloat16:
    case DataType::kBfloat16:
      return true;
    default:
      return false;
  }
}

Status cast_op(const OpContext& ctx, std::span<const Tensor* const> in, std::vector<Tensor>& out) {
  const Tensor& x = *in[0];
  const auto to = static_cast<DataType>(ctx.attr_int("to", 0));
  if (!castable(x.dtype()) || !castable(to)) {
    return ctx.unsupported("cast from " + data_type_name(x.dtype()) + " to " + data_type_name(to));
  }
  if (to == x.dtype()) {
    out[0] = x;
    return {};
  }
  EDGELM_TRY(out[0], ctx.alloc(to, x.shape()));
  void* dst = out[0].mutable_raw();
  const int64_t n = x.numel();
  // int64 <-> int64-sized values must not pass through double (precision).
  if (x.dtype() == DataType::kInt64 && to == DataType::kInt32) {
    for (int64_t i = 0; i < n; ++i)
      static_cast<int32_t*>(dst)[i] = static_cast<int32_t>(x.data<int64_t>()[i]);
    return {};
  }
  for (int64_t i = 0; i < n; ++i) {
    const double v = load_as_double(x.raw(), x.dtype(), i);
    switch (to) {
      case DataType::kFloat:
        static_cast<float*>(dst)[i] = static_cast<float>(v);
        break;
      case DataType::kDouble:
        static_cast<double*>(dst)[i] = v;
        break;
      case DataType::kInt64:
        static_cast<int64_t*>(dst)[i] =
            x.dtype() == DataType::kInt64 ? x.data<int64_t>()[i] : saturate_cast<int64_t>(v);
        break;
      case DataType::kInt32:
        static_cast<int32_t*>(dst)[i] = saturate_cast<int32_t>(v);
        break;
      case DataType::kInt8:
        static_cast<int8_t*>(dst)[i] = saturate_cast<int8_t>(v);
        break;
      case DataType::kUint8:
        static_cast<uint8_t*>(dst)[i] = saturate_cast<uint8_t>(v);
        break;
      case DataType::kBool:
        static_cast<uint8_t*>(dst)[i] = v != 0;
        break;
      case DataType::kFloat16:
        static_cast<uint16_t*>(dst)[i] = tensor::fp32_to_fp16(static_cast<float>(v));
        break;
      case DataType::kBfloat16:
        static_cast<uint16_t*>(dst)[i] = tensor::fp32_to_bf16(static_cast<float>(v));
        break;
      default:
        break;
    }
  }
  return {};
}

}  // namespace

void register_elementwise_ops(std::vector<OpSpec>& t) {
  t.push_back({"Add", &binary_op<BinOp::kAdd>, 2, 2, 1, 1});
  t.push_back({"Sub", &binary_op<BinOp::kSub>, 2, 2, 1, 1});
  t.push_back({"Mul", &binary_op<BinOp::kMul>, 2, 2, 1, 1});
  t.push_back({"Div", &binary_op<BinOp::kDiv>, 2, 2, 1, 1});
  t.push_back({"Pow", &binary_op<BinOp::kPow>, 2, 2, 1, 1});
  t.push_back({"Equal", &binary_op<BinOp::kEqual>, 2, 2, 1, 1});
  t.push_back({"Less", &binary_op<BinOp::kLess>, 2, 2, 1, 1});
  t.push_back({"Greater", &binary_op<BinOp::kGreater>, 2, 2, 1, 1});
  t.push_back({"And", &binary_op<BinOp::kAnd>, 2, 2, 1, 1});
  t.push_back({"Or", &binary_op<BinOp::kOr>, 2, 2, 1, 1});
  t.push_back({"Sqrt", &unary_op<UnOp::kSqrt>, 1, 1, 1, 1});
  t.push_back({"Reciprocal", &unary_op<UnOp::kReciprocal>, 1, 1, 1, 1});
  t.push_back({"Neg", &unary_op<UnOp::kNeg>, 1, 1, 1, 1});
  t.push_back({"Erf", &unary_op<UnOp::kErf>, 1, 1, 1, 1});
  t.push_back({"Tanh", &unary_op<UnOp::kTanh>, 1, 1, 1, 1});
  t.push_back({"Sigmoid", &unary_op<UnOp::kSigmoid>, 1, 1, 1, 1});
  t.push_back({"Relu", &unary_op<UnOp::kRelu>, 1, 1, 1, 1});
  t.push_back({"Cos", &unary_op<UnOp::kCos>, 1, 1, 1, 1});
  t.push_back({"Sin", &unary_op<UnOp::kSin>, 1, 1, 1, 1});
  t.push_back({"Exp", &unary_op<UnOp::kExp>, 1, 1, 1, 1});
  t.push_back({"Abs", &unary_op<UnOp::kAbs>, 1, 1, 1, 1});
  t.push_back({"Not", &not_op, 1, 1, 1, 1});
  t.push_back({"Where", &where_op, 3, 3, 1, 1});
  t.push_back({"Cast", &cast_op, 1, 1, 1, 1});
}

}  // namespace edgelm::onnx
