// Matrix x activations for every Highway target. Quantized weights are never expanded to floats:
// the activations are quantized once per call to int8 blocks of 32 (quantized_activations.h) and
// each 32-weight group is multiplied with integer dot products (AVX-VNNI vpdpbusd, AVX2
// vpmaddubsw + vpmaddwd, or portable Highway ops), then scaled once per group. F32/F16/BF16
// weights use float FMA.
// Several tokens share each pass over a weight row (prompt processing reads weights once per tile).
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/simd_matmul.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
//
#include <hwy/cache_control.h>
#include <hwy/highway.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "edgelm/quant.h"
#include "kernels/amx.h"
#include "kernels/avx512_vnni_dot.h"
#include "kernels/avx512_vnni_gemm.h"
#include "kernels/avx512_vnni_interleaved.h"
#include "kernels/interleaved.h"
#include "kernels/kernel_set.h"
#include "kernels/parallel.h"
#include "kernels/quantized_activations.h"

HWY_BEFORE_NAMESPACE();
namespace edgelm::kernels {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Rows per scheduling granule (16 floats of y = one cache line per token) and per cache block:
// a block of rows stays in L2 while every token tile passes over it.
constexpr int64_t kRowGranule = 16;
// Tokens sharing one pass over a weight row: bounded by the accumulator registers (32 vector
// registers with AVX-512, 16 otherwise).
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3
constexpr int kMaxTokenTile = 8;
#else
constexpr int kMaxTokenTile = 4;
#endif

// ---------------------------------------------------------------- float weights (all targets)

template <class D>
HWY_INLINE hn::Vec<D> LoadWeights(D df, TensorType type, const uint8_t* row, int64_t c) {
  if (type == TensorType::kF32) return hn::LoadU(df, reinterpret_cast<const float*>(row) + c);
  const hn::Rebind<uint16_t, D> du16;
  const hn::Rebind<uint32_t, D> du32;
  const auto bits = hn::LoadU(du16, reinterpret_cast<const uint16_t*>(row) + c);
  if (type == TensorType::kBF16) {
    // bf16 is the upper half of an f32.
    return hn::BitCast(df, hn::ShiftLeft<16>(hn::PromoteTo(du32, bits)));
  }
  const hn::Rebind<hwy::float16_t, D> df16;
  return hn::PromoteTo(df, hn::BitCast(df16, bits));
}

HWY_INLINE float ScalarWeight(TensorType type, const uint8_t* row, int64_t c) {
  if (type == TensorType::kF32) return reinterpret_cast<const float*>(row)[c];
  uint16_t bits;
  std::memcpy(&bits, row + 2 * c, 2);
  if (type == TensorType::kBF16) {
    const uint32_t wide = static_cast<uint32_t>(bits) << 16;
    float f;
    std::memcpy(&f, &wide, 4);
    return f;
  }
  return tensor::fp16_to_fp32(bits);
}

template <int T>
HWY_INLINE void FloatRowTile(TensorType type, const uint8_t* row, int64_t cols, const float* x,
                             float* y, int64_t y_stride) {
  const hn::ScalableTag<float> df;
  const int64_t n = static_cast<int64_t>(hn::Lanes(df));
  hn::Vec<decltype(df)> acc[T];
  for (int t = 0; t < T; ++t) acc[t] = hn::Zero(df);
  int64_t c = 0;
  for (; c + n <= cols; c += n) {
    const auto w = LoadWeights(df, type, row, c);
    for (int t = 0; t < T; ++t) acc[t] = hn::MulAdd(w, hn::LoadU(df, x + t * cols + c), acc[t]);
  }
  for (int t = 0; t < T; ++t) {
    float sum = hn::GetLane(hn::SumOfLanes(df, acc[t]));
    for (int64_t i = c; i < cols; ++i) sum += ScalarWeight(type, row, i) * x[t * cols + i];
    y[t * y_stride] = sum;
  }
}

// -------------------------------------------------------------------- integer dot products
// Weight groups are 32 small integers ("Bytes"): one 256-bit register on x86 AVX2 and up, two
// 128-bit Highway vectors elsewhere. The decoders below are written once against these helpers.

#undef EDGELM_INT8_DOT  // set per target below; this file is compiled once per target
#undef EDGELM_X86_INT8
#if HWY_TARGET != HWY_SCALAR
#define EDGELM_INT8_DOT 1
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
#define EDGELM_X86_INT8 1
#endif

#if EDGELM_X86_INT8

using Bytes = __m256i;

HWY_INLINE float Half(const uint8_t* p) {
  uint16_t bits;
  std::memcpy(&bits, p, 2);
  return _cvtsh_ss(bits);
}

HWY_INLINE Bytes Load32(const uint8_t* p) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
}
HWY_INLINE Bytes AndC(Bytes v, uint8_t c) {
  return _mm256_and_si256(v, _mm256_set1_epi8(static_cast<char>(c)));
}
HWY_INLINE Bytes Or(Bytes a, Bytes b) {
  return _mm256_or_si256(a, b);
}
// Bit shifts inside each byte; bits crossing into a neighbour byte must be masked by the caller.
HWY_INLINE Bytes Shr(Bytes v, int n) {
  return _mm256_srli_epi16(v, n);
}
HWY_INLINE Bytes Shl(Bytes v, int n) {
  return _mm256_slli_epi16(v, n);
}
// Byte = value where (byte & bit) != 0, else 0.
HWY_INLINE Bytes IfBit(Bytes v, uint8_t bit, uint8_t value) {
  const __m256i b = _mm256_set1_epi8(static_cast<char>(bit));
  return _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(v, b), b),
                          _mm256_set1_epi8(static_cast<char>(value)));
}

// 16 packed bytes -> 32 nibbles: low nibbles are elements 0-15, high nibbles 16-31.
HWY_INLINE Bytes Nibbles16(const uint8_t* p) {
  const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  const __m128i mask = _mm_set1_epi8(0x0F);
  return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(b, 4), mask), _mm_and_si128(b, mask));
}

// 32 bits -> 32 bytes, byte i = 0x10 when bit i is set (the 5th bit of q5 weights).
HWY_INLINE Bytes FifthBits(const uint8_t* p) {
  uint32_t bits;
  std::memcpy(&bits, p, 4);
  const __m256i spread = _mm256_shuffle_epi8(
      _mm256_set1_epi32(static_cast<int>(bits)),
      _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0));
  const __m256i bit = _mm256_set1_epi64x(static_cast<int64_t>(0x8040201008040201ULL));
  const __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit);
  return _mm256_and_si256(set, _mm256_set1_epi8(0x10));
}

// Sums of 4 adjacent u8 * s8 products: lanes 0-3 cover elements 0-15, lanes 4-7 elements 16-31.
HWY_INLINE __m256i DotU8S8(__m256i u, __m256i s) {
#if HWY_TARGET == HWY_AVX3_DL
  // Highway 1.0.3 compiles AVX3_DL with "avxvnni" but not "avx512vnni", so this is the VEX
  // (AVX-VNNI) vpdpbusd; simd_kernels.cpp only offers this target on CPUs that have AVX-VNNI.
  return _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s);
#else
  // Safe from vpmaddubsw saturation: unsigned weights are at most 63 here (2*63*127 < 32767).
  return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
#endif
}

// Signed weights: |w| * (x * sign(w)); |-128| = 128 fits u8 and 2*128*127 < 32767.
HWY_INLINE __m256i DotS8S8(__m256i w, __m256i x) {
  return DotU8S8(_mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w));
}

// Accumulates one 32-weight group against T tokens. Weights of a group decode to
// scale_lo * q + bias_lo on elements 0-15 and scale_hi * q + bias_hi on 16-31; the integer dot
// covers q, and the bias terms are multiplied by the activation block (half) sums.
template <int T>
struct GroupSink {
  const QuantizedActivations* xq;
  int64_t token0;
  __m256 acc[T];
  // With one token, consecutive groups alternate between acc and spare so that the FMA latency
  // chain does not limit the row loop (several tokens already give independent chains).
  __m256 spare[T];
  float bias_acc[T];

  HWY_INLINE void Init() {
    for (int t = 0; t < T; ++t) {
      acc[t] = _mm256_setzero_ps();
      spare[t] = _mm256_setzero_ps();
      bias_acc[t] = 0.0f;
    }
  }
  HWY_INLINE void Fma(int t, __m256i dot, __m256 scale) {
    acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), scale, acc[t]);
    if constexpr (T == 1) std::swap(acc[t], spare[t]);
  }
  HWY_INLINE int64_t Block(int t, int64_t group) const {
    return (token0 + t) * xq->blocks_per_token + group;
  }
  HWY_INLINE __m256i X(int64_t block) const {
    return Load32(reinterpret_cast<const uint8_t*>(xq->qs.data() + block * kActivationBlock));
  }

  // Signed weights, one scale, no bias (q8_0).
  HWY_INLINE void Signed(int64_t group, Bytes w, float scale) {
    for (int t = 0; t < T; ++t) {
      const int64_t b = Block(t, group);
      Fma(t, DotS8S8(w, X(b)), _mm256_set1_ps(scale * xq->d[b]));
    }
  }
  // Unsigned weights, one scale and one bias for the whole group.
  HWY_INLINE void Uniform(int64_t group, Bytes w, float scale, float bias) {
    for (int t = 0; t < T; ++t) {
      const int64_t b = Block(t, group);
      Fma(t, DotU8S8(w, X(b)), _mm256_set1_ps(scale * xq->d[b]));
      bias_acc[t] += bias * xq->d_sum[b];
    }
  }
  // Unsigned weights with separate scales and biases for the two 16-element halves.
  HWY_INLINE void Halves(int64_t group, Bytes w, float scale_lo, float scale_hi, float bias_lo,
                         float bias_hi) {
    for (int t = 0; t < T; ++t) {
      const int64_t b = Block(t, group);
      const float dx = xq->d[b];
      Fma(t, DotU8S8(w, X(b)),
          _mm256_set_m128(_mm_set1_ps(scale_hi * dx), _mm_set1_ps(scale_lo * dx)));
      const float lo = xq->d_half_sum[b];
      bias_acc[t] += bias_lo * lo + bias_hi * (xq->d_sum[b] - lo);
    }
  }

  HWY_INLINE void Store(float* y, int64_t y_stride) const {
    for (int t = 0; t < T; ++t) {
      const __m256 sum = _mm256_add_ps(acc[t], spare[t]);
      __m128 s = _mm_add_ps(_mm256_castps256_ps128(sum), _mm256_extractf128_ps(sum, 1));
      s = _mm_add_ps(s, _mm_movehl_ps(s, s));
      s = _mm_add_ss(s, _mm_movehdup_ps(s));
      y[t * y_stride] = _mm_cvtss_f32(s) + bias_acc[t];
    }
  }
};

#else  // portable Highway version (NEON, SSE4, ...): two 128-bit vectors per group

using DU8 = hn::FixedTag<uint8_t, 16>;
using DI8 = hn::FixedTag<int8_t, 16>;
using DI16 = hn::FixedTag<int16_t, 8>;
using DI32 = hn::FixedTag<int32_t, 4>;
using DF32 = hn::FixedTag<float, 4>;
using VU8 = hn::Vec<DU8>;
using VI32 = hn::Vec<DI32>;

struct Bytes {
  VU8 lo, hi;  // elements 0-15, 16-31
};

HWY_INLINE float Half(const uint8_t* p) {
  uint16_t bits;
  std::memcpy(&bits, p, 2);
  return tensor::fp16_to_fp32(bits);
}

HWY_INLINE Bytes Load32(const uint8_t* p) {
  const DU8 d;
  return {hn::LoadU(d, p), hn::LoadU(d, p + 16)};
}
HWY_INLINE Bytes AndC(Bytes v, uint8_t c) {
  const auto m = hn::Set(DU8(), c);
  return {hn::And(v.lo, m), hn::And(v.hi, m)};
}
HWY_INLINE Bytes Or(Bytes a, Bytes b) {
  return {hn::Or(a.lo, b.lo), hn::Or(a.hi, b.hi)};
}
HWY_INLINE Bytes Shr(Bytes v, int n) {
  return {hn::ShiftRightSame(v.lo, n), hn::ShiftRightSame(v.hi, n)};
}
HWY_INLINE Bytes Shl(Bytes v, int n) {
  return {hn::ShiftLeftSame(v.lo, n), hn::ShiftLeftSame(v.hi, n)};
}
HWY_INLINE Bytes IfBit(Bytes v, uint8_t bit, uint8_t value) {
  const DU8 d;
  const auto b = hn::Set(d, bit);
  const auto val = hn::Set(d, value);
  return {hn::IfThenElseZero(hn::Eq(hn::And(v.lo, b), b), val),
          hn::IfThenElseZero(hn::Eq(hn::And(v.hi, b), b), val)};
}

HWY_INLINE Bytes Nibbles16(const uint8_t* p) {
  const DU8 d;
  const auto b = hn::LoadU(d, p);
  return {hn::And(b, hn::Set(d, 0x0F)), hn::ShiftRight<4>(b)};
}

HWY_INLINE Bytes FifthBits(const uint8_t* p) {
  const DU8 d;
  uint32_t bits;
  std::memcpy(&bits, p, 4);
  const auto word = hn::BitCast(d, hn::Set(hn::FixedTag<uint32_t, 4>(), bits));
  alignas(16) static constexpr uint8_t kLo[16] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1};
  alignas(16) static constexpr uint8_t kHi[16] = {2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3};
  alignas(16) static constexpr uint8_t kBit[16] = {1, 2, 4, 8, 16, 32, 64, 128,
                                                   1, 2, 4, 8, 16, 32, 64, 128};
  const auto bit = hn::Load(d, kBit);
  const auto sixteen = hn::Set(d, 0x10);
  const auto lo = hn::TableLookupBytes(word, hn::Load(d, kLo));
  const auto hi = hn::TableLookupBytes(word, hn::Load(d, kHi));
  return {hn::IfThenElseZero(hn::Eq(hn::And(lo, bit), bit), sixteen),
          hn::IfThenElseZero(hn::Eq(hn::And(hi, bit), bit), sixteen)};
}

// Sum of 16 products of widened bytes (w unsigned or signed, x signed), spread over 4 lanes.
template <class VW>
HWY_INLINE VI32 Dot16(VW w, hn::Vec<DI8> x) {
  const DI16 d16;
  const DI32 d32;
  const hn::Half<hn::DFromV<VW> > dwh;
  const hn::Half<DI8> dxh;
  auto sum1 = hn::Zero(d32);
  auto sum0 =
      hn::ReorderWidenMulAccumulate(d32, hn::PromoteTo(d16, hn::LowerHalf(dwh, w)),
                                    hn::PromoteTo(d16, hn::LowerHalf(dxh, x)), hn::Zero(d32), sum1);
  sum0 = hn::ReorderWidenMulAccumulate(d32, hn::PromoteTo(d16, hn::UpperHalf(dwh, w)),
                                       hn::PromoteTo(d16, hn::UpperHalf(dxh, x)), sum0, sum1);
  return hn::Add(sum0, sum1);
}

template <int T>
struct GroupSink {
  const QuantizedActivations* xq;
  int64_t token0;
  hn::Vec<DF32> acc[T];
  float bias_acc[T];

  HWY_INLINE void Init() {
    for (int t = 0; t < T; ++t) {
      acc[t] = hn::Zero(DF32());
      bias_acc[t] = 0.0f;
    }
  }
  HWY_INLINE int64_t Block(int t, int64_t group) const {
    return (token0 + t) * xq->blocks_per_token + group;
  }
  HWY_INLINE hn::Vec<DI8> X(int64_t block, int half) const {
    return hn::LoadU(DI8(), xq->qs.data() + block * kActivationBlock + 16 * half);
  }
  HWY_INLINE void Accumulate(int t, VI32 dot, float scale) {
    const DF32 df;
    acc[t] = hn::MulAdd(hn::ConvertTo(df, dot), hn::Set(df, scale), acc[t]);
  }

  HWY_INLINE void Signed(int64_t group, Bytes w, float scale) {
    const DI8 di8;
    for (int t = 0; t < T; ++t) {
      const int64_t b = Block(t, group);
      const VI32 dot =
          hn::Add(Dot16(hn::BitCast(di8, w.lo), X(b, 0)), Dot16(hn::BitCast(di8, w.hi), X(b, 1)));
      Accumulate(t, dot, scale * xq->d[b]);
    }
  }
  HWY_INLINE void Uniform(int64_t group, Bytes w, float scale, float bias) {
    for (int t = 0; t < T; ++t) {
      const int64_t b = Block(t, group);
      const float dx = xq->d[b];
      Accumulate(t, hn::Add(Dot16(w.lo, X(b, 0)), Dot16(w.hi, X(b, 1))), scale * dx);
      bias_acc[t] += bias * xq->d_sum[b];
    }
  }
  HWY_INLINE void Halves(int64_t group, Bytes w, float scale_lo, float scale_hi, float bias_lo,
                         float bias_hi) {
    for (int t = 0; t < T; ++t) {
      const int64_t b = Block(t, group);
      const float dx = xq->d[b];
      Accumulate(t, Dot16(w.lo, X(b, 0)), scale_lo * dx);
      Accumulate(t, Dot16(w.hi, X(b, 1)), scale_hi * dx);
      const float lo = xq->d_half_sum[b];
      bias_acc[t] += bias_lo * lo + bias_hi * (xq->d_sum[b] - lo);
    }
  }

  HWY_INLINE void Store(float* y, int64_t y_stride) const {
    const DF32 df;
    for (int t = 0; t < T; ++t) {
      y[t * y_stride] = hn::GetLane(hn::SumOfLanes(df, acc[t])) + bias_acc[t];
    }
  }
};

#endif  // EDGELM_X86_INT8

// One decoder per weight type: feeds every 32-weight group of a row to the sink. Layouts follow
// ggml's block structs (the byte offsets below); n_blocks counts the type's blocks in the row.

template <class Sink>
HWY_INLINE void DecodeQ8_0(const uint8_t* row, int64_t n_blocks, Sink& sink) {
  for (int64_t i = 0; i < n_blocks; ++i, row += 34) sink.Signed(i, Load32(row + 2), Half(row));
}

template <class Sink>
HWY_INLINE void DecodeQ4_0(const uint8_t* row, int64_t n_blocks, Sink& sink) {
  for (int64_t i = 0; i < n_blocks; ++i, row += 18) {
    const float d = Half(row);
    sink.Uniform(i, Nibbles16(row + 2), d, -8.0f * d);
  }
}

template <class Sink>
HWY_INLINE void DecodeQ4_1(const uint8_t* row, int64_t n_blocks, Sink& sink) {
  for (int64_t i = 0; i < n_blocks; ++i, row += 20) {
    sink.Uniform(i, Nibbles16(row + 4), Half(row), Half(row + 2));
  }
}

template <class Sink>
HWY_INLINE void DecodeQ5_0(const uint8_t* row, int64_t n_blocks, Sink& sink) {
  for (int64_t i = 0; i < n_blocks; ++i, row += 22) {
    const float d = Half(row);
    sink.Uniform(i, Or(Nibbles16(row + 6), FifthBits(row + 2)), d, -16.0f * d);
  }
}

template <class Sink>
HWY_INLINE void DecodeQ5_1(const uint8_t* row, int64_t n_blocks, Sink& sink) {
  for (int64_t i = 0; i < n_blocks; ++i, row += 24) {
    sink.Uniform(i, Or(Nibbles16(row + 8), FifthBits(row + 4)), Half(row), Half(row + 2));
  }
}

// The 6-bit scales and mins of q4_K / q5_K sub-block j, packed in 12 bytes.
HWY_INLINE void KScaleMin(const uint8_t* s, int j, float* scale, float* min) {
  if (j < 4) {
    *scale = static_cast<float>(s[j] & 63);
    *min = static_cast<float>(s[j + 4] & 63);
  } else {
    *scale = static_cast<float>((s[j + 4] & 0x0F) | ((s[j - 4] >> 6) << 4));
    *min = static_cast<float>((s[j + 4] >> 4) | ((s[j] >> 6) << 4));
  }
}

// q4_K (144 bytes: d, dmin, scales[12], qs[128]) and q5_K (176: d, dmin, scales[12], qh[32],
// qs[128]): 8 groups of 32, weight = d * scale_j * q - dmin * min_j. Group 2j is the low
// nibbles of qs[32j..], group 2j+1 the high ones; q5_K's 5th bits are bits 2j, 2j+1 of qh[l].
template <bool kFiveBits, class Sink>
HWY_INLINE void DecodeQ45_K(const uint8_t* row, int64_t n_blocks, Sink& sink) {
  constexpr int kBytes = kFiveBits ? 176 : 144;
  for (int64_t i = 0; i < n_blocks; ++i, row += kBytes) {
    const float d = Half(row);
    const float dmin = Half(row + 2);
    const uint8_t* scales = row + 4;
    const uint8_t* qs = row + (kFiveBits ? 48 : 16);
    for (int j = 0; j < 4; ++j) {
      const Bytes packed = Load32(qs + 32 * j);
      Bytes lo = AndC(packed, 0x0F);
      Bytes hi = AndC(Shr(packed, 4), 0x0F);
      if (kFiveBits) {
        const Bytes qh = Load32(row + 16);
        lo = Or(lo, IfBit(qh, static_cast<uint8_t>(1 << (2 * j)), 0x10));
        hi = Or(hi, IfBit(qh, static_cast<uint8_t>(2 << (2 * j)), 0x10));
      }
      float scale, min;
      KScaleMin(scales, 2 * j, &scale, &min);
      sink.Uniform(8 * i + 2 * j, lo, d * scale, -dmin * min);
      KScaleMin(scales, 2 * j + 1, &scale, &min);
      sink.Uniform(8 * i + 2 * j + 1, hi, d * scale, -dmin * min);
    }
  }
}

// q6_K (210 bytes: ql[128], qh[64], int8 scales[16], d): weight = d * scale * (q - 32), one
// scale per 16 elements. Each 128-element half n holds 4 groups built from ql[64n..], qh[32n..].
template <class Sink>
HWY_INLINE void DecodeQ6_K(const uint8_t* row, int64_t n_blocks, Sink& sink) {
  for (int64_t i = 0; i < n_blocks; ++i, row += 210) {
    const float d = Half(row + 208);
    const int8_t* scales = reinterpret_cast<const int8_t*>(row + 192);
    for (int n = 0; n < 2; ++n) {
      const Bytes ql_a = Load32(row + 64 * n);
      const Bytes ql_b = Load32(row + 64 * n + 32);
      const Bytes qh = Load32(row + 128 + 32 * n);
      const Bytes groups[4] = {
          Or(AndC(ql_a, 0x0F), AndC(Shl(qh, 4), 0x30)),
          Or(AndC(ql_b, 0x0F), AndC(Shl(qh, 2), 0x30)),
          Or(AndC(Shr(ql_a, 4), 0x0F), AndC(qh, 0x30)),
          Or(AndC(Shr(ql_b, 4), 0x0F), AndC(Shr(qh, 2), 0x30)),
      };
      for (int k = 0; k < 4; ++k) {
        const float s_lo = d * scales[8 * n + 2 * k];
        const float s_hi = d * scales[8 * n + 2 * k + 1];
        sink.Halves(8 * i + 4 * n + k, groups[k], s_lo, s_hi, -32.0f * s_lo, -32.0f * s_hi);
      }
    }
  }
}

// q2_K (84 bytes: scales[16], qs[64], d, dmin) and q3_K (110: hmask[32], qs[64], scales[12], d):
// group g = 4h + s takes bits 2s..2s+1 of qs[32h + l]; q3_K adds bit g of hmask[l] as bit 2.
// One scale (and min) per 16 elements: q2_K weight = d * (sc & 15) * q - dmin * (sc >> 4);
// q3_K weight = d * (scale - 32) * (q - 4) with 6-bit scales packed as in ggml's q3_K.
template <bool kThreeBits, class Sink>
HWY_INLINE void DecodeQ23_K(const uint8_t* row, int64_t n_blocks, Sink& sink) {
  constexpr int kBytes = kThreeBits ? 110 : 84;
  for (int64_t i = 0; i < n_blocks; ++i, row += kBytes) {
    const uint8_t* qs = row + (kThreeBits ? 32 : 16);
    const float d = Half(row + (kThreeBits ? 108 : 80));
    float scale[16], bias[16];
    for (int k = 0; k < 16; ++k) {
      if (kThreeBits) {
        const uint8_t* packed = row + 96;
        const int low = k < 8 ? (packed[k] & 0x0F) : (packed[k - 8] >> 4);
        const int high = (packed[8 + k % 4] >> (2 * (k / 4))) & 3;
        scale[k] = d * static_cast<float>((low | (high << 4)) - 32);
        bias[k] = -4.0f * scale[k];
      } else {
        scale[k] = d * static_cast<float>(row[k] & 0x0F);
        bias[k] = -Half(row + 82) * static_cast<float>(row[k] >> 4);
      }
    }
    for (int h = 0; h < 2; ++h) {
      const Bytes packed = Load32(qs + 32 * h);
      for (int sub = 0; sub < 4; ++sub) {
        const int g = 4 * h + sub;
        Bytes q = AndC(Shr(packed, 2 * sub), 3);
        if (kThreeBits) q = Or(q, IfBit(Load32(row), static_cast<uint8_t>(1 << g), 4));
        sink.Halves(8 * i + g, q, scale[2 * g], scale[2 * g + 1], bias[2 * g], bias[2 * g + 1]);
      }
    }
  }
}

template <int T>
HWY_INLINE void QuantRowTile(TensorType type, const uint8_t* row, int64_t cols,
                             const QuantizedActivations& xq, int64_t token0, float* y,
                             int64_t y_stride) {
  GroupSink<T> sink{&xq, token0, {}, {}};
  sink.Init();
  switch (type) {
    case TensorType::kQ8_0:
      DecodeQ8_0(row, cols / 32, sink);
      break;
    case TensorType::kQ4_0:
      DecodeQ4_0(row, cols / 32, sink);
      break;
    case TensorType::kQ4_1:
      DecodeQ4_1(row, cols / 32, sink);
      break;
    case TensorType::kQ5_0:
      DecodeQ5_0(row, cols / 32, sink);
      break;
    case TensorType::kQ5_1:
      DecodeQ5_1(row, cols / 32, sink);
      break;
    case TensorType::kQ2_K:
      DecodeQ23_K<false>(row, cols / 256, sink);
      break;
    case TensorType::kQ3_K:
      DecodeQ23_K<true>(row, cols / 256, sink);
      break;
    case TensorType::kQ4_K:
      DecodeQ45_K<false>(row, cols / 256, sink);
      break;
    case TensorType::kQ5_K:
      DecodeQ45_K<true>(row, cols / 256, sink);
      break;
    case TensorType::kQ6_K:
      DecodeQ6_K(row, cols / 256, sink);
      break;
    default:
      break;
  }
  sink.Store(y, y_stride);
}

bool HasIntegerPath(TensorType type) {
  switch (type) {
    case TensorType::kQ8_0:
    case TensorType::kQ4_0:
    case TensorType::kQ4_1:
    case TensorType::kQ5_0:
    case TensorType::kQ5_1:
    case TensorType::kQ2_K:
    case TensorType::kQ3_K:
    case TensorType::kQ4_K:
    case TensorType::kQ5_K:
    case TensorType::kQ6_K:
      return true;
    default:
      return false;
  }
}

#endif  // HWY_TARGET != HWY_SCALAR

#if EDGELM_INT8_DOT
// The vector form of quantize_activations, with the same results: NearestInt rounds to nearest
// even like lrintf in the default rounding mode, and the scales are computed alike.
void QuantizeActivations(const float* x, int64_t n_tokens, int64_t cols,
                         QuantizedActivations& out) {
  const hn::ScalableTag<float> df;
  const hn::RebindToSigned<decltype(df)> di;
  const hn::Rebind<int8_t, decltype(di)> di8;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  constexpr int64_t kHalf = kActivationBlock / 2;
  if (kHalf % lanes != 0) {
    quantize_activations(x, n_tokens, cols, out);
    return;
  }
  const int64_t n_blocks = n_tokens * cols / kActivationBlock;
  out.blocks_per_token = cols / kActivationBlock;
  out.qs.resize(static_cast<size_t>(n_tokens * cols));
  out.d.resize(static_cast<size_t>(n_blocks));
  out.d_sum.resize(static_cast<size_t>(n_blocks));
  out.d_half_sum.resize(static_cast<size_t>(n_blocks));
  const auto lo = hn::Set(di, -127);
  const auto hi = hn::Set(di, 127);
  for (int64_t b = 0; b < n_blocks; ++b) {
    const float* xb = x + b * kActivationBlock;
    int8_t* qb = out.qs.data() + b * kActivationBlock;
    auto vmax = hn::Zero(df);
    for (int64_t i = 0; i < kActivationBlock; i += lanes) {
      vmax = hn::Max(vmax, hn::Abs(hn::LoadU(df, xb + i)));
    }
    const float amax = hn::GetLane(hn::MaxOfLanes(df, vmax));
    const float d = amax / 127.0f;
    const auto inv_d = hn::Set(df, amax > 0.0f ? 127.0f / amax : 0.0f);
    int32_t sum = 0, half_sum = 0;
    for (int64_t i = 0; i < kActivationBlock; i += lanes) {
      const auto q =
          hn::Min(hn::Max(hn::NearestInt(hn::Mul(hn::LoadU(df, xb + i), inv_d)), lo), hi);
      hn::StoreU(hn::DemoteTo(di8, q), di8, qb + i);
      const int32_t part = hn::GetLane(hn::SumOfLanes(di, q));
      sum += part;
      if (i < kHalf) half_sum += part;
    }
    out.d[b] = d;
    out.d_sum[b] = d * static_cast<float>(sum);
    out.d_half_sum[b] = d * static_cast<float>(half_sum);
  }
}
#endif

// ------------------------------------------------------------------------------ driver

// Calls row_tile<T>(row, token0, y + token0 * rows + row) over rows [begin, end) and all tokens,
// sweeping every token tile over a cache block of rows before moving to the next block.
template <class RowTile>
HWY_INLINE void TiledRows(int64_t begin, int64_t end, int64_t n_tokens, const RowTile& row_tile) {
  for (int64_t block = begin; block < end; block += kRowGranule) {
    const int64_t block_end = std::min(end, block + kRowGranule);
    for (int64_t t0 = 0; t0 < n_tokens;) {
      const int64_t left = n_tokens - t0;
      const int64_t tile = left >= kMaxTokenTile ? kMaxTokenTile : std::min<int64_t>(left, 4);
      for (int64_t r = block; r < block_end; ++r) {
        switch (tile) {
          case 1:
            row_tile(std::integral_constant<int, 1>(), r, t0);
            break;
          case 2:
            row_tile(std::integral_constant<int, 2>(), r, t0);
            break;
          case 3:
            row_tile(std::integral_constant<int, 3>(), r, t0);
            break;
          case 4:
            row_tile(std::integral_constant<int, 4>(), r, t0);
            break;
          default:
            row_tile(std::integral_constant<int, kMaxTokenTile>(), r, t0);
            break;
        }
      }
      t0 += tile;
    }
  }
}

// Weights stream from memory once per token; hardware prefetchers stop at 4 KiB page boundaries
// (model files are mapped with small pages). While row r runs, the bytes one row further than
// kPrefetchDistance ahead are requested, so every line is asked for once (requesting the whole
// next row at once measured 20-40% slower decode; distances of 4 KiB and more were slower too).
constexpr int64_t kPrefetchDistance = 1024;
HWY_INLINE void PrefetchAhead(const MatrixView& w, int64_t r, int64_t end) {
  const uint8_t* limit = w.data + end * w.row_bytes;
  const uint8_t* first = w.data + r * w.row_bytes + kPrefetchDistance;
  const uint8_t* last = std::min(limit, first + w.row_bytes);
  for (const uint8_t* p = first; p < last; p += 64) hwy::Prefetch(p);
}

#if EDGELM_INT8_DOT && HWY_TARGET == HWY_AVX3_DL
bool InterleavedMatmul(const MatrixView& w, const float* x, int64_t n_tokens, float* y,
                       ThreadPool* pool) {
  if (w.layout != WeightLayout::kInterleaved16 || !avx512_vnni::cpu_has_avx512_vnni()) return false;
  // Buffers grow once per calling thread and are reused by every later call; workers must read
  // the caller's buffers (naming a thread_local in the lambda would not).
  thread_local QuantizedActivations buffers;
  thread_local std::vector<int32_t> block_sums_buffer;
  QuantizeActivations(x, n_tokens, w.cols, buffers);
  avx512_vnni::prepare_interleaved(buffers, block_sums_buffer);
  const QuantizedActivations& xq = buffers;
  const std::vector<int32_t>& block_sums = block_sums_buffer;
  parallel_for(pool, w.rows, interleaved::kGroupRows, [&](int64_t begin, int64_t end) {
    avx512_vnni::interleaved_rows(w, begin, end, xq, block_sums, y);
  });
  return true;
}
#endif

bool Matmul(const MatrixView& w, const float* x, int64_t n_tokens, float* y, ThreadPool* pool) {
  if (w.layout != WeightLayout::kRowMajor) {
#if EDGELM_INT8_DOT && HWY_TARGET == HWY_AVX3_DL
    return InterleavedMatmul(w, x, n_tokens, y, pool);
#else
    return false;  // the reference reads every layout
#endif
  }
  if (w.type == TensorType::kF32 || w.type == TensorType::kF16 || w.type == TensorType::kBF16) {
    parallel_for(pool, w.rows, kRowGranule, [&](int64_t begin, int64_t end) {
      TiledRows(begin, end, n_tokens, [&](auto tile, int64_t r, int64_t t0) {
        if (t0 == 0) PrefetchAhead(w, r, end);
        FloatRowTile<decltype(tile)::value>(w.type, w.data + r * w.row_bytes, w.cols,
                                            x + t0 * w.cols, y + t0 * w.rows + r, w.rows);
      });
    });
    return true;
  }
#if EDGELM_INT8_DOT
  if (HasIntegerPath(w.type) && w.cols % kActivationBlock == 0) {
    // Buffers grow once per calling thread and are reused by every later call.
    thread_local QuantizedActivations buffers;
    // Workers must read the caller's buffers: naming a thread_local in the lambda would not.
    const QuantizedActivations& xq = buffers;
    QuantizeActivations(x, n_tokens, w.cols, buffers);
#if HWY_TARGET == HWY_AVX3_DL
    if (n_tokens >= avx512_vnni::kGemmMinTokens && avx512_vnni::has_gemm(w.type) &&
        avx512_vnni::cpu_has_avx512_vnni()) {
      thread_local avx512_vnni::GemmActivations gemm_buffers;
      avx512_vnni::prepare_gemm(w.type, xq, gemm_buffers);
      const avx512_vnni::GemmActivations& xg = gemm_buffers;
      parallel_for(pool, w.rows, kRowGranule, [&](int64_t begin, int64_t end) {
        avx512_vnni::gemm_rows(w, begin, end, xq, xg, y);
      });
      return true;
    }
    const int max_tile = static_cast<int>(std::min<int64_t>(n_tokens, kMaxTokenTile));
    if (avx512_vnni::has_row_tile(w.type, max_tile) && avx512_vnni::cpu_has_avx512_vnni()) {
      thread_local std::vector<int8_t> reordered_buffer;
      avx512_vnni::prepare(w.type, xq, reordered_buffer);
      const std::vector<int8_t>& reordered = reordered_buffer;
      const int64_t n_blocks = w.cols / kActivationBlock;
      parallel_for(pool, w.rows, kRowGranule, [&](int64_t begin, int64_t end) {
        TiledRows(begin, end, n_tokens, [&](auto tile, int64_t r, int64_t t0) {
          if (t0 == 0) PrefetchAhead(w, r, end);
          avx512_vnni::row_tile(w.type, decltype(tile)::value, w.data + r * w.row_bytes, n_blocks,
                                xq, reordered, t0, y + t0 * w.rows + r, w.rows);
        });
      });
      return true;
    }
#endif
    parallel_for(pool, w.rows, kRowGranule, [&](int64_t begin, int64_t end) {
      TiledRows(begin, end, n_tokens, [&](auto tile, int64_t r, int64_t t0) {
        if (t0 == 0) PrefetchAhead(w, r, end);
        QuantRowTile<decltype(tile)::value>(w.type, w.data + r * w.row_bytes, w.cols, xq, t0,
                                            y + t0 * w.rows + r, w.rows);
      });
    });
    return true;
  }
#endif
  return false;
}

void FillMatmul(KernelSet* set) {
  set->matmul = &Matmul;
#if EDGELM_INT8_DOT && HWY_TARGET == HWY_AVX3_DL
  if (avx512_vnni::cpu_has_avx512_vnni()) set->preferred_layout = WeightLayout::kInterleaved16;
#endif
}

#if EDGELM_INT8_DOT && HWY_TARGET == HWY_AVX3_DL
// Matmul, with prompt batches of repacked q8_0 / q4_0 weights on AMX tiles.
bool MatmulWithAmx(const MatrixView& w, const float* x, int64_t n_tokens, float* y,
                   ThreadPool* pool) {
  if (w.layout != WeightLayout::kInterleaved16 || n_tokens < amx::kTileTokens) {
    return Matmul(w, x, n_tokens, y, pool);
  }
  thread_local std::vector<amx::Line> tiles_buffer;
  amx::tile_activations(x, n_tokens, w.cols, tiles_buffer);
  const std::vector<amx::Line>& tiles = tiles_buffer;
  // Pairs of groups, which the kernel multiplies together.
  parallel_for(pool, w.rows, 2 * interleaved::kGroupRows, [&](int64_t begin, int64_t end) {
    amx::interleaved_rows(w, begin, end, tiles, n_tokens, y);
  });
  return true;
}
#endif

// Only the AVX-512 VNNI target has an AMX variant; others leave the set as it is.
void FillAmxMatmul(KernelSet* set) {
#if EDGELM_INT8_DOT && HWY_TARGET == HWY_AVX3_DL
  set->matmul = &MatmulWithAmx;
#else
  (void)set;
#endif
}

}  // namespace HWY_NAMESPACE
}  // namespace edgelm::kernels
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace edgelm::kernels {

HWY_EXPORT(FillMatmul);

void fill_matmul_kernels(KernelSet* set) {
  HWY_DYNAMIC_DISPATCH(FillMatmul)(set);
}

HWY_EXPORT(FillAmxMatmul);

void fill_amx_matmul_kernels(KernelSet* set) {
  HWY_DYNAMIC_DISPATCH(FillAmxMatmul)(set);
}

}  // namespace edgelm::kernels
#endif
