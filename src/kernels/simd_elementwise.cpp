// Norm, activations, softmax and attention for every Highway target.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/simd_elementwise.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
//
#include <hwy/contrib/math/math-inl.h>
#include <hwy/highway.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "edgelm/quant.h"
#include "kernels/kernel_set.h"
#include "kernels/parallel.h"
#include "kernels/reference.h"

HWY_BEFORE_NAMESPACE();
namespace edgelm::kernels {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::ScalableTag<float>;

// Applies op(vector) to out[0..n) reading in[0..n) in full vectors, then the tail through a
// partial load (LoadN-style: copy to a padded buffer) so results do not depend on alignment.
template <class Op>
HWY_INLINE void Transform2(float* out, const float* in, int64_t n, const Op& op) {
  const DF df;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  int64_t i = 0;
  for (; i + lanes <= n; i += lanes) {
    hn::StoreU(op(hn::LoadU(df, out + i), hn::LoadU(df, in + i)), df, out + i);
  }
  if (i < n) {
    HWY_ALIGN float a[hn::MaxLanes(df)] = {};
    HWY_ALIGN float b[hn::MaxLanes(df)] = {};
    std::copy(out + i, out + n, a);
    std::copy(in + i, in + n, b);
    hn::Store(op(hn::Load(df, a), hn::Load(df, b)), df, a);
    std::copy(a, a + (n - i), out + i);
  }
}

// Cache elements widened to float: F32 caches are loaded as they are, F16 ones (IEEE half bits)
// through PromoteTo, which is exact for every finite half.
HWY_INLINE float ToFloat(float x) {
  return x;
}
HWY_INLINE float ToFloat(uint16_t h) {
  return tensor::fp16_to_fp32(h);
}

HWY_INLINE hn::Vec<DF> LoadFloats(DF df, const float* p) {
  return hn::LoadU(df, p);
}
HWY_INLINE hn::Vec<DF> LoadFloats(DF df, const uint16_t* p) {
  const hn::Rebind<hwy::float16_t, DF> dh;
  return hn::PromoteTo(df, hn::LoadU(dh, reinterpret_cast<const hwy::float16_t*>(p)));
}

// The n elements at src as floats: src itself for F32, else widened into buffer.
HWY_INLINE const float* WidenRow(const float* src, int64_t, float*) {
  return src;
}
HWY_INLINE const float* WidenRow(const uint16_t* src, int64_t n, float* buffer) {
  const DF df;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  int64_t i = 0;
  for (; i + lanes <= n; i += lanes) hn::StoreU(LoadFloats(df, src + i), df, buffer + i);
  for (; i < n; ++i) buffer[i] = ToFloat(src[i]);
  return buffer;
}

template <class T>
HWY_INLINE float Dot(const float* a, const T* b, int64_t n) {
  const DF df;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  auto acc0 = hn::Zero(df), acc1 = hn::Zero(df);
  int64_t i = 0;
  for (; i + 2 * lanes <= n; i += 2 * lanes) {
    acc0 = hn::MulAdd(hn::LoadU(df, a + i), LoadFloats(df, b + i), acc0);
    acc1 = hn::MulAdd(hn::LoadU(df, a + i + lanes), LoadFloats(df, b + i + lanes), acc1);
  }
  for (; i + lanes <= n; i += lanes)
    acc0 = hn::MulAdd(hn::LoadU(df, a + i), LoadFloats(df, b + i), acc0);
  float sum = hn::GetLane(hn::SumOfLanes(df, hn::Add(acc0, acc1)));
  for (; i < n; ++i) sum += a[i] * ToFloat(b[i]);
  return sum;
}

// q8_0 caches (GGUF blocks: f16 scale d, 32 int8 quants q; value d * q): quants widened to
// float in vectors of at most 16 lanes (two per block on AVX-512, four on AVX2), each block's
// scale applied once.
using DQ = hn::CappedTag<float, 16>;
constexpr int64_t kQ8Values = reference::kQ8_0BlockValues;
constexpr int64_t kQ8Bytes = reference::kQ8_0BlockBytes;

HWY_INLINE hn::Vec<DQ> LoadQuants(DQ dq, const int8_t* p) {
  const hn::RebindToSigned<DQ> di;
  const hn::Rebind<int8_t, DQ> d8;
  return hn::ConvertTo(dq, hn::PromoteTo(di, hn::LoadU(d8, p)));
}

// The f16 scale of a q8_0 block widened by the CPU's conversion where it has one.
HWY_INLINE float BlockScale(const uint8_t* block) {
  const hn::CappedTag<float, 1> d1;
  const hn::Rebind<hwy::float16_t, decltype(d1)> dh;
  return hn::GetLane(
      hn::PromoteTo(d1, hn::LoadU(dh, reinterpret_cast<const hwy::float16_t*>(block))));
}

// A q8_0 cache with its block scales widened once per call into `scales` (one float per block):
// every query head of a GQA group, and every query of a prompt, reads each block again.
// Addressed in elements like a pointer; offsets are multiples of 32.
struct ScaledQ8_0 {
  const uint8_t* blocks;
  const float* scales;

  ScaledQ8_0 operator+(int64_t n) const {
    const int64_t b = n / kQ8Values;
    return {blocks + b * kQ8Bytes, scales + b};
  }
  const int8_t* quants(int64_t b) const {
    return reinterpret_cast<const int8_t*>(blocks + b * kQ8Bytes + 2);
  }
};

HWY_INLINE const float* WidenRow(ScaledQ8_0 src, int64_t n, float* buffer) {
  const DQ dq;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(dq));
  for (int64_t b = 0; b < n / kQ8Values; ++b) {
    const auto d = hn::Set(dq, src.scales[b]);
    const int8_t* qs = src.quants(b);
    for (int64_t i = 0; i < kQ8Values; i += lanes) {
      hn::StoreU(hn::Mul(d, LoadQuants(dq, qs + i)), dq, buffer + b * kQ8Values + i);
    }
  }
  return buffer;
}

// sum_i a[i] * b[i] as the sum over blocks of d * (sum a[i] * q[i]).
HWY_INLINE float Dot(const float* a, ScaledQ8_0 b, int64_t n) {
  const DQ dq;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(dq));
  auto acc = hn::Zero(dq);
  for (int64_t blk = 0; blk < n / kQ8Values; ++blk) {
    const int8_t* qs = b.quants(blk);
    const float* ab = a + blk * kQ8Values;
    auto s0 = hn::Zero(dq), s1 = hn::Zero(dq);
    for (int64_t i = 0; i < kQ8Values; i += 2 * lanes) {
      s0 = hn::MulAdd(hn::LoadU(dq, ab + i), LoadQuants(dq, qs + i), s0);
      s1 = hn::MulAdd(hn::LoadU(dq, ab + i + lanes), LoadQuants(dq, qs + i + lanes), s1);
    }
    acc = hn::MulAdd(hn::Set(dq, b.scales[blk]), hn::Add(s0, s1), acc);
  }
  return hn::GetLane(hn::SumOfLanes(dq, acc));
}

void RmsNorm(const float* x, const float* weight, int64_t n, float eps, float* out) {
  const float inv_rms = 1.0f / std::sqrt(Dot(x, x, n) / static_cast<float>(n) + eps);
  const DF df;
  const auto scale = hn::Set(df, inv_rms);
  if (out != x) std::copy(x, x + n, out);
  if (weight == nullptr) {
    Transform2(out, out, n, [&](auto v, auto) { return hn::Mul(v, scale); });
  } else {
    Transform2(out, weight, n, [&](auto v, auto w) { return hn::Mul(hn::Mul(v, scale), w); });
  }
}

void Softmax(float* x, int64_t n) {
  const DF df;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  float max_value = -std::numeric_limits<float>::infinity();
  int64_t i = 0;
  if (n >= lanes) {
    auto vmax = hn::LoadU(df, x);
    for (i = lanes; i + lanes <= n; i += lanes) vmax = hn::Max(vmax, hn::LoadU(df, x + i));
    max_value = hn::GetLane(hn::MaxOfLanes(df, vmax));
  }
  for (; i < n; ++i) max_value = std::max(max_value, x[i]);
  if (max_value == -std::numeric_limits<float>::infinity()) {
    reference::softmax(x, n);  // everything masked: the reference defines the uniform result
    return;
  }
  const auto shift = hn::Set(df, max_value);
  auto vsum = hn::Zero(df);
  Transform2(x, x, n, [&](auto v, auto) { return hn::Exp(df, hn::Sub(v, shift)); });
  for (i = 0; i + lanes <= n; i += lanes) vsum = hn::Add(vsum, hn::LoadU(df, x + i));
  float sum = hn::GetLane(hn::SumOfLanes(df, vsum));
  for (; i < n; ++i) sum += x[i];
  const auto inv_sum = hn::Set(df, 1.0f / sum);
  Transform2(x, x, n, [&](auto v, auto) { return hn::Mul(v, inv_sum); });
}

void SiluMul(float* gate, const float* up, int64_t n) {
  const DF df;
  const auto one = hn::Set(df, 1.0f);
  Transform2(gate, up, n, [&](auto g, auto u) {
    return hn::Mul(hn::Div(g, hn::Add(one, hn::Exp(df, hn::Neg(g)))), u);
  });
}

void GeluMul(float* gate, const float* up, int64_t n) {
  const DF df;
  const auto half = hn::Set(df, 0.5f);
  const auto one = hn::Set(df, 1.0f);
  const auto sqrt_2_over_pi = hn::Set(df, 0.7978845608028654f);
  const auto cubic = hn::Set(df, 0.044715f);
  Transform2(gate, up, n, [&](auto g, auto u) {
    const auto inner = hn::Mul(sqrt_2_over_pi, hn::MulAdd(hn::Mul(cubic, g), hn::Mul(g, g), g));
    return hn::Mul(hn::Mul(hn::Mul(half, g), hn::Add(one, hn::Tanh(df, inner))), u);
  });
}

// out[c] = sum_j weight[j] * v[j * stride + c] for c < n, in registers (accumulating through
// memory would chain every position's FMA on a store-to-load forward).
template <class T>
HWY_INLINE void WeightedSum(const float* weight, int n_pos, const T* v, int64_t stride, int64_t n,
                            float* out) {
  const DF df;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  int64_t c = 0;
  for (; c + 4 * lanes <= n; c += 4 * lanes) {
    auto a0 = hn::Zero(df), a1 = hn::Zero(df), a2 = hn::Zero(df), a3 = hn::Zero(df);
    const T* vj = v + c;
    for (int j = 0; j < n_pos; ++j, vj += stride) {
      const auto w = hn::Set(df, weight[j]);
      a0 = hn::MulAdd(w, LoadFloats(df, vj), a0);
      a1 = hn::MulAdd(w, LoadFloats(df, vj + lanes), a1);
      a2 = hn::MulAdd(w, LoadFloats(df, vj + 2 * lanes), a2);
      a3 = hn::MulAdd(w, LoadFloats(df, vj + 3 * lanes), a3);
    }
    hn::StoreU(a0, df, out + c);
    hn::StoreU(a1, df, out + c + lanes);
    hn::StoreU(a2, df, out + c + 2 * lanes);
    hn::StoreU(a3, df, out + c + 3 * lanes);
  }
  for (; c + lanes <= n; c += lanes) {
    auto a = hn::Zero(df);
    for (int j = 0; j < n_pos; ++j) {
      a = hn::MulAdd(hn::Set(df, weight[j]), LoadFloats(df, v + j * stride + c), a);
    }
    hn::StoreU(a, df, out + c);
  }
  for (; c < n; ++c) {
    float a = 0.0f;
    for (int j = 0; j < n_pos; ++j) a += weight[j] * ToFloat(v[j * stride + c]);
    out[c] = a;
  }
}

// WeightedSum over a q8_0 cache: the weights times the positions' block scales, then the quants
// of two blocks at a time (four chains of FMAs on AVX-512) in registers.
HWY_INLINE void WeightedSum(const float* weight, int n_pos, ScaledQ8_0 v, int64_t stride, int64_t n,
                            float* out) {
  const DQ dq;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(dq));
  const int64_t row_blocks = stride / kQ8Values;
  const int64_t row_bytes = row_blocks * kQ8Bytes;
  const int64_t n_blocks = n / kQ8Values;
  thread_local std::vector<float> scaled;  // [2][n_pos]: weight[j] * scale of j's block
  scaled.resize(static_cast<size_t>(2 * n_pos));
  float* s0 = scaled.data();
  float* s1 = scaled.data() + n_pos;
  for (int64_t blk = 0; blk < n_blocks; blk += 2) {
    const int64_t blk1 = blk + 1 < n_blocks ? blk + 1 : blk;  // an odd last block pairs itself
    for (int j = 0; j < n_pos; ++j) {
      s0[j] = weight[j] * v.scales[j * row_blocks + blk];
      s1[j] = weight[j] * v.scales[j * row_blocks + blk1];
    }
    for (int64_t c = 0; c < kQ8Values; c += 2 * lanes) {
      auto a0 = hn::Zero(dq), a1 = hn::Zero(dq), a2 = hn::Zero(dq), a3 = hn::Zero(dq);
      const int8_t* q0 = v.quants(blk) + c;
      const int8_t* q1 = v.quants(blk1) + c;
      for (int j = 0; j < n_pos; ++j, q0 += row_bytes, q1 += row_bytes) {
        const auto w0 = hn::Set(dq, s0[j]);
        const auto w1 = hn::Set(dq, s1[j]);
        a0 = hn::MulAdd(w0, LoadQuants(dq, q0), a0);
        a1 = hn::MulAdd(w0, LoadQuants(dq, q0 + lanes), a1);
        a2 = hn::MulAdd(w1, LoadQuants(dq, q1), a2);
        a3 = hn::MulAdd(w1, LoadQuants(dq, q1 + lanes), a3);
      }
      hn::StoreU(a0, dq, out + blk * kQ8Values + c);
      hn::StoreU(a1, dq, out + blk * kQ8Values + c + lanes);
      hn::StoreU(a2, dq, out + blk1 * kQ8Values + c);
      hn::StoreU(a3, dq, out + blk1 * kQ8Values + c + lanes);
    }
  }
}

// Prompts at least this long transpose the keys once per call (below, the copy costs more than
// the horizontal sums it saves).
constexpr int64_t kTransposedKeysMinTokens = 16;

// Scores of one query against positions first .. first + n - 1 from keys transposed to
// kt[d * kt_stride + position]: vertical FMAs only, four vectors of positions at a time. kt has
// at least 4 vectors of zero padding past the last position, so whole chunks may be computed.
HWY_INLINE void ScoresTransposed(const float* qh, const float* kt, int64_t kt_stride, int head_dim,
                                 int32_t first, int n, float scale, float* scores) {
  const DF df;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  const auto vscale = hn::Set(df, scale);
  for (int64_t j = 0; j < n; j += 4 * lanes) {
    const float* col = kt + first + j;
    auto a0 = hn::Zero(df), a1 = hn::Zero(df), a2 = hn::Zero(df), a3 = hn::Zero(df);
    for (int d = 0; d < head_dim; ++d, col += kt_stride) {
      const auto qd = hn::Set(df, qh[d]);
      a0 = hn::MulAdd(qd, hn::LoadU(df, col), a0);
      a1 = hn::MulAdd(qd, hn::LoadU(df, col + lanes), a1);
      a2 = hn::MulAdd(qd, hn::LoadU(df, col + 2 * lanes), a2);
      a3 = hn::MulAdd(qd, hn::LoadU(df, col + 3 * lanes), a3);
    }
    hn::StoreU(hn::Mul(a0, vscale), df, scores + j);
    hn::StoreU(hn::Mul(a1, vscale), df, scores + j + lanes);
    hn::StoreU(hn::Mul(a2, vscale), df, scores + j + 2 * lanes);
    hn::StoreU(hn::Mul(a3, vscale), df, scores + j + 3 * lanes);
  }
}

// Attention over caches of float, F16 (uint16_t) or q8_0 elements: Cache is a pointer or a
// ScaledQ8_0, addressed in elements.
template <class Cache>
void AttentionOver(const AttentionParams& p, const float* q, int64_t n_tokens, int32_t pos0,
                   Cache k, Cache v, float* out, ThreadPool* pool) {
  const int group = p.n_head / p.n_head_kv;
  const int64_t kv_row = static_cast<int64_t>(p.n_head_kv) * p.head_dim;
  const int64_t q_row = static_cast<int64_t>(p.n_head) * p.head_dim;
  const int64_t n_pos = pos0 + n_tokens;
  const int64_t pad = 4 * static_cast<int64_t>(hn::Lanes(DF()));
  // Keys as [kv head][dim][position] for long prompts, where each key meets many queries.
  const bool transposed = n_tokens >= kTransposedKeysMinTokens;
  const int64_t kt_stride = n_pos + pad;
  thread_local std::vector<float> kt_buffer;
  if (transposed) {
    thread_local std::vector<float> key_row;
    key_row.resize(static_cast<size_t>(kv_row));
    kt_buffer.assign(static_cast<size_t>(kv_row * kt_stride), 0.0f);
    for (int64_t j = 0; j < n_pos; ++j) {
      const float* kj = WidenRow(k + j * kv_row, kv_row, key_row.data());
      for (int64_t c = 0; c < kv_row; ++c) kt_buffer[static_cast<size_t>(c * kt_stride + j)] = kj[c];
    }
  }
  const float* kt = kt_buffer.data();
  parallel_for(pool, n_tokens * p.n_head, 1, [&](int64_t begin, int64_t end) {
    thread_local std::vector<float> scores;
    scores.resize(static_cast<size_t>(n_pos + pad));
    for (int64_t item = begin; item < end; ++item) {
      const int64_t t = item / p.n_head;
      const int h = static_cast<int>(item % p.n_head);
      const int64_t kv_offset = static_cast<int64_t>(h / group) * p.head_dim;
      const int32_t pos = pos0 + static_cast<int32_t>(t);
      const int32_t first = reference::first_visible_position(pos, p.window);
      const int n_visible = pos - first + 1;
      const float* qh = q + t * q_row + static_cast<int64_t>(h) * p.head_dim;
      if (transposed) {
        ScoresTransposed(qh, kt + kv_offset * kt_stride, kt_stride, p.head_dim, first, n_visible,
                         p.scale, scores.data());
      } else {
        for (int j = 0; j < n_visible; ++j) {
          scores[j] = Dot(qh, k + (first + j) * kv_row + kv_offset, p.head_dim) * p.scale;
        }
      }
      if (p.softcap > 0.0f) {
        for (int j = 0; j < n_visible; ++j)
          scores[j] = p.softcap * std::tanh(scores[j] / p.softcap);
      }
      Softmax(scores.data(), n_visible);
      WeightedSum(scores.data(), n_visible, v + first * kv_row + kv_offset, kv_row, p.head_dim,
                  out + t * q_row + static_cast<int64_t>(h) * p.head_dim);
    }
  });
}

void Attention(const AttentionParams& p, const float* q, int64_t n_tokens, int32_t pos0,
               const float* k, const float* v, float* out, ThreadPool* pool) {
  AttentionOver(p, q, n_tokens, pos0, k, v, out, pool);
}

void AttentionF16(const AttentionParams& p, const float* q, int64_t n_tokens, int32_t pos0,
                  const uint16_t* k, const uint16_t* v, float* out, ThreadPool* pool) {
  AttentionOver(p, q, n_tokens, pos0, k, v, out, pool);
}

void AttentionQ8_0(const AttentionParams& p, const float* q, int64_t n_tokens, int32_t pos0,
                   const uint8_t* k, const uint8_t* v, float* out, ThreadPool* pool) {
  const int64_t n_blocks =
      (pos0 + n_tokens) * static_cast<int64_t>(p.n_head_kv) * p.head_dim / kQ8Values;
  thread_local std::vector<float> k_scales, v_scales;
  k_scales.resize(static_cast<size_t>(n_blocks));
  v_scales.resize(static_cast<size_t>(n_blocks));
  for (int64_t b = 0; b < n_blocks; ++b) {
    k_scales[b] = BlockScale(k + b * kQ8Bytes);
    v_scales[b] = BlockScale(v + b * kQ8Bytes);
  }
  AttentionOver(p, q, n_tokens, pos0, ScaledQ8_0{k, k_scales.data()},
                ScaledQ8_0{v, v_scales.data()}, out, pool);
}

// F16C (AVX2 and AVX-512 targets) rounds to nearest even and quiets NaNs as the reference does;
// Highway's emulated DemoteTo on other targets truncates, so they use the reference.
void ToF16(const float* src, uint16_t* dst, int64_t n) {
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2 && !defined(HWY_DISABLE_F16C)
  const DF df;
  const hn::Rebind<hwy::float16_t, DF> dh;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  int64_t i = 0;
  for (; i + lanes <= n; i += lanes) {
    hn::StoreU(hn::DemoteTo(dh, hn::LoadU(df, src + i)), dh,
               reinterpret_cast<hwy::float16_t*>(dst + i));
  }
  reference::to_f16(src + i, dst + i, n - i);
#else
  reference::to_f16(src, dst, n);
#endif
}

void FillElementwise(KernelSet* set) {
  set->rms_norm = &RmsNorm;
  set->softmax = &Softmax;
  set->silu_mul = &SiluMul;
  set->gelu_mul = &GeluMul;
  set->attention = &Attention;
  set->attention_f16 = &AttentionF16;
  set->attention_q8_0 = &AttentionQ8_0;
  set->to_f16 = &ToF16;
}

}  // namespace HWY_NAMESPACE
}  // namespace edgelm::kernels
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace edgelm::kernels {

HWY_EXPORT(FillElementwise);

void fill_elementwise_kernels(KernelSet* set) {
  HWY_DYNAMIC_DISPATCH(FillElementwise)(set);
}

}  // namespace edgelm::kernels
#endif
