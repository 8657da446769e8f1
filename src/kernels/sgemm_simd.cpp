// The float GEMM micro-kernel for every Highway target: a tile of kMaxRows rows of A by two vectors
// of columns of one packed B panel accumulates in registers over a depth block of k, so each B
// load feeds kMaxRows FMAs and each broadcast of A feeds two.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/sgemm_simd.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
//
#include <hwy/highway.h>
//
#include <hwy/contrib/math/math-inl.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "kernels/kernel_set.h"
#include "kernels/sgemm_internal.h"

HWY_BEFORE_NAMESPACE();
namespace edgelm::kernels {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

constexpr int64_t kPanel = PackedMatrix::kPanelWidth;
// Depth block: a panel slice of kDepthBlock x 32 floats (32 KiB) stays in L1 while every row strip
// of A passes over it (measured on AVX-512 at m = 64: 256 runs ~1.8x faster than 512 once the
// weights come from memory, with the prefetch below; 192-320 are within noise).
constexpr int64_t kDepthBlock = 256;
// Accumulator rows: 2 vectors per row, plus two B vectors and one broadcast must fit the register
// file (32 vector registers with AVX-512, 16 otherwise).
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3
constexpr int kMaxRows = 12;
#else
constexpr int kMaxRows = 6;
#endif

using DF = hn::ScalableTag<float>;
using VF = hn::Vec<DF>;

// erf(x) by Abramowitz & Stegun 7.1.26 (|error| <= 1.5e-7):
// 1 - (a1 t + a2 t^2 + a3 t^3 + a4 t^4 + a5 t^5) exp(-x^2), t = 1 / (1 + p |x|), odd in x.
HWY_INLINE VF Erf(DF df, VF x) {
  const VF ax = hn::Abs(x);
  const VF t =
      hn::Div(hn::Set(df, 1.0f), hn::MulAdd(hn::Set(df, 0.3275911f), ax, hn::Set(df, 1.0f)));
  VF poly = hn::Set(df, 1.061405429f);
  poly = hn::MulAdd(poly, t, hn::Set(df, -1.453152027f));
  poly = hn::MulAdd(poly, t, hn::Set(df, 1.421413741f));
  poly = hn::MulAdd(poly, t, hn::Set(df, -0.284496736f));
  poly = hn::MulAdd(poly, t, hn::Set(df, 0.254829592f));
  poly = hn::Mul(poly, t);
  const VF e = hn::Sub(hn::Set(df, 1.0f), hn::Mul(poly, hn::Exp(df, hn::Neg(hn::Mul(ax, ax)))));
  return hn::CopySign(e, x);
}

HWY_INLINE VF Activate(DF df, Activation activation, VF x) {
  const VF half_x = hn::Mul(hn::Set(df, 0.5f), x);
  if (activation == Activation::kGeluErf) {
    return hn::MulAdd(half_x, Erf(df, hn::Mul(x, hn::Set(df, 0.70710678118654752f))), half_x);
  }
  if (activation == Activation::kGeluTanh) {
    const VF x3 = hn::Mul(hn::Mul(x, x), x);
    const VF inner =
        hn::Mul(hn::Set(df, 0.79788456080286536f), hn::MulAdd(hn::Set(df, 0.044715f), x3, x));
    return hn::MulAdd(half_x, hn::Tanh(df, inner), half_x);
  }
  if (activation == Activation::kSilu) {
    return hn::Div(x, hn::Add(hn::Set(df, 1.0f), hn::Exp(df, hn::Neg(x))));
  }
  return x;
}

// Out of line: inlining the transcendental code into every tile height would multiply the
// object size (and compile time) for no speed (the tile is still in L1 when this runs).
HWY_NOINLINE void ApplyActivation(Activation activation, float* x, int64_t n) {
  if (activation == Activation::kNone) return;
  const DF df;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  int64_t i = 0;
  for (; i + lanes <= n; i += lanes)
    hn::StoreU(Activate(df, activation, hn::LoadU(df, x + i)), df, x + i);
  if (i < n) {
    HWY_ALIGN float tail[hn::MaxLanes(DF())] = {};
    std::copy(x + i, x + n, tail);
    hn::Store(Activate(df, activation, hn::Load(df, tail)), df, tail);
    std::copy_n(tail, n - i, x + i);
  }
}

constexpr int64_t kLineFloats = 64 / sizeof(float);

// Cache lines [begin, end) to prefetch, one every `every` iterations of a tile's depth loop:
// spread evenly over the strips of a panel, the next panel's weights arrive from memory while
// this one computes (all at once, they would stall the first strip on memory instead).
struct Prefetch {
  const float* begin = nullptr;
  const float* end = nullptr;
  int64_t every = 1 << 30;
};

// c[i][0 .. 2N) (+)= sum_{kk < kc} a[i][kk] * panel[kk][0 .. 2N) for i < kRows. `first` starts
// from the bias (null: zero) instead of c.
template <int kRows>
HWY_NOINLINE void FullTile(const float* a, int64_t lda, const float* panel, int64_t kc, float* c,
                           int64_t ldc, const float* bias, bool first, const Prefetch& next) {
  const DF df;
  const size_t n = hn::Lanes(df);
  VF acc0[kRows], acc1[kRows];
  if (first) {
    const VF b0 = bias ? hn::LoadU(df, bias) : hn::Zero(df);
    const VF b1 = bias ? hn::LoadU(df, bias + n) : hn::Zero(df);
    for (int i = 0; i < kRows; ++i) {
      acc0[i] = b0;
      acc1[i] = b1;
    }
  } else {
    for (int i = 0; i < kRows; ++i) {
      acc0[i] = hn::LoadU(df, c + i * ldc);
      acc1[i] = hn::LoadU(df, c + i * ldc + n);
    }
  }
  const float* fetch = next.begin;
  int64_t countdown = next.every;
  for (int64_t kk = 0; kk < kc; ++kk) {
    if (--countdown == 0) {
      countdown = next.every;
      if (fetch < next.end) {
        __builtin_prefetch(fetch, 0, 3);
        fetch += kLineFloats;
      }
    }
    const VF w0 = hn::LoadU(df, panel + kk * kPanel);
    const VF w1 = hn::LoadU(df, panel + kk * kPanel + n);
    for (int i = 0; i < kRows; ++i) {
      const VF x = hn::Set(df, a[i * lda + kk]);
      acc0[i] = hn::MulAdd(x, w0, acc0[i]);
      acc1[i] = hn::MulAdd(x, w1, acc1[i]);
    }
  }
  for (int i = 0; i < kRows; ++i) {
    hn::StoreU(acc0[i], df, c + i * ldc);
    hn::StoreU(acc1[i], df, c + i * ldc + n);
  }
}

// A tile whose columns run past n: computed in a padded scratch tile, then the valid part copied.
template <int kRows>
HWY_NOINLINE void EdgeTile(const float* a, int64_t lda, const float* panel, int64_t kc, float* c,
                           int64_t ldc, int64_t cols, const float* bias, bool first,
                           const Prefetch& next) {
  const DF df;
  const int64_t width = 2 * static_cast<int64_t>(hn::Lanes(df));
  HWY_ALIGN float scratch[kMaxRows * 2 * hn::MaxLanes(DF())] = {};
  HWY_ALIGN float padded_bias[2 * hn::MaxLanes(DF())] = {};
  if (bias) std::copy_n(bias, cols, padded_bias);
  if (!first) {
    for (int i = 0; i < kRows; ++i) std::copy_n(c + i * ldc, cols, scratch + i * width);
  }
  FullTile<kRows>(a, lda, panel, kc, scratch, width, bias ? padded_bias : nullptr, first, next);
  for (int i = 0; i < kRows; ++i) std::copy_n(scratch + i * width, cols, c + i * ldc);
}

template <int kRows>
HWY_NOINLINE void Tile(const float* a, int64_t lda, const float* panel, int64_t kc, float* c,
                       int64_t ldc, int64_t cols, const float* bias, bool first,
                       const Prefetch& next) {
  const int64_t width = 2 * static_cast<int64_t>(hn::Lanes(DF()));
  if (cols == width) {
    FullTile<kRows>(a, lda, panel, kc, c, ldc, bias, first, next);
  } else {
    EdgeTile<kRows>(a, lda, panel, kc, c, ldc, cols, bias, first, next);
  }
}

// A strip of `rows` < kRows rows run as a kRows tile: A rows copied into a zero-padded strip.
template <int kRows>
HWY_NOINLINE void PaddedStrip(int rows, const float* a, int64_t lda, const float* panel, int64_t kc,
                              float* c, int64_t ldc, int64_t cols, const float* bias, bool first,
                              const Prefetch& next, std::vector<float>& a_strip) {
  const int64_t width = 2 * static_cast<int64_t>(hn::Lanes(DF()));
  a_strip.assign(static_cast<size_t>(kRows * kc), 0.0f);
  for (int r = 0; r < rows; ++r) std::copy_n(a + r * lda, kc, a_strip.data() + r * kc);
  HWY_ALIGN float c_strip[kRows * 2 * hn::MaxLanes(DF())] = {};
  if (!first) {
    for (int r = 0; r < rows; ++r) std::copy_n(c + r * ldc, cols, c_strip + r * width);
  }
  Tile<kRows>(a_strip.data(), kc, panel, kc, c_strip, width, cols, bias, first, next);
  for (int r = 0; r < rows; ++r) std::copy_n(c_strip + r * width, cols, c + r * ldc);
}

// Three tile heights (kMaxRows and its thirds) cover the last strip of A with little padding;
// each extra height would be another copy of the unrolled kernel per Highway target.
constexpr int kMidRows = kMaxRows * 2 / 3;
constexpr int kLowRows = kMaxRows / 3;

// Rows the next strip takes when `left` rows remain: full tiles, except that the last
// kMaxRows + kLowRows rows go as two mid-height tiles (16 = 8 + 8 rather than 12 + 4: a low tile
// has too few independent accumulators to keep both FMA units busy).
int64_t StripRows(int64_t left) {
  if (left > kMaxRows + kLowRows || left == kMaxRows) return kMaxRows;
  if (left > kMaxRows) return kMidRows;
  return left;
}

template <int kRows>
HWY_INLINE void StripOf(int rows, const float* a, int64_t lda, const float* panel, int64_t kc,
                        float* c, int64_t ldc, int64_t cols, const float* bias, bool first,
                        const Prefetch& next, std::vector<float>& a_strip) {
  if (rows == kRows) {
    Tile<kRows>(a, lda, panel, kc, c, ldc, cols, bias, first, next);
  } else {
    PaddedStrip<kRows>(rows, a, lda, panel, kc, c, ldc, cols, bias, first, next, a_strip);
  }
}

HWY_INLINE void Strip(int rows, const float* a, int64_t lda, const float* panel, int64_t kc,
                      float* c, int64_t ldc, int64_t cols, const float* bias, bool first,
                      const Prefetch& next, std::vector<float>& a_strip) {
  if (rows > kMidRows) {
    StripOf<kMaxRows>(rows, a, lda, panel, kc, c, ldc, cols, bias, first, next, a_strip);
  } else if (rows > kLowRows) {
    StripOf<kMidRows>(rows, a, lda, panel, kc, c, ldc, cols, bias, first, next, a_strip);
  } else {
    StripOf<kLowRows>(rows, a, lda, panel, kc, c, ldc, cols, bias, first, next, a_strip);
  }
}

// Panels [panel_begin, panel_end) of C for all m rows.
void SgemmPanels(const float* a, int64_t m, int64_t lda, const PackedMatrix& b, int64_t panel_begin,
                 int64_t panel_end, const float* bias, float* c, int64_t ldc,
                 Activation activation) {
  const int64_t width = 2 * static_cast<int64_t>(hn::Lanes(DF()));
  const int64_t k = b.k(), n = b.n();
  std::vector<float> a_strip;
  int64_t strips = 0;
  for (int64_t i = 0; i < m; i += StripRows(m - i)) ++strips;
  const int64_t tiles_per_panel = std::max<int64_t>(1, strips * (kPanel / width));
  for (int64_t k0 = 0; k0 < k; k0 += kDepthBlock) {
    const int64_t kc = std::min(kDepthBlock, k - k0);
    const bool first = k0 == 0;
    // The activation applies once, to each tile right after its last depth block.
    const Activation epilogue = k0 + kc == k ? activation : Activation::kNone;
    for (int64_t p = panel_begin; p < panel_end; ++p) {
      const float* slice = b.panel(p) + k0 * kPanel;
      // The weights read next: the following panel's slice, or the first panel's next depth block.
      const float* next = nullptr;
      int64_t next_rows = 0;
      if (p + 1 < panel_end) {
        next = b.panel(p + 1) + k0 * kPanel;
        next_rows = kc;
      } else if (k0 + kc < k) {
        next = b.panel(panel_begin) + (k0 + kc) * kPanel;
        next_rows = std::min(kDepthBlock, k - k0 - kc);
      }
      const int64_t next_lines = next_rows * kPanel / kLineFloats;
      const int64_t share = (next_lines + tiles_per_panel - 1) / tiles_per_panel;
      int64_t tile = 0;
      for (int64_t sub = 0; sub < kPanel; sub += width) {
        const int64_t col = p * kPanel + sub;
        if (col >= n) break;
        const int64_t cols = std::min(width, n - col);
        const float* tile_bias = bias ? bias + col : nullptr;
        for (int64_t i = 0; i < m; ++tile) {
          const int rows = static_cast<int>(StripRows(m - i));
          Prefetch fetch;
          if (next != nullptr && share > 0) {
            fetch.begin = next + std::min(tile * share, next_lines) * kLineFloats;
            fetch.end = next + std::min((tile + 1) * share, next_lines) * kLineFloats;
            fetch.every = std::max<int64_t>(1, kc / share);
          }
          Strip(rows, a + i * lda + k0, lda, slice + sub, kc, c + i * ldc + col, ldc, cols,
                tile_bias, first, fetch, a_strip);
          if (epilogue != Activation::kNone) {
            for (int r = 0; r < rows; ++r) ApplyActivation(epilogue, c + (i + r) * ldc + col, cols);
          }
          i += rows;
        }
      }
    }
  }
  if (k == 0) {  // no depth blocks ran: C is just the bias
    for (int64_t i = 0; i < m; ++i) {
      const int64_t c0 = panel_begin * kPanel, c1 = std::min(n, panel_end * kPanel);
      for (int64_t j = c0; j < c1; ++j) c[i * ldc + j] = bias ? bias[j] : 0.0f;
      ApplyActivation(activation, c + i * ldc + c0, c1 - c0);
    }
  }
}

int64_t SgemmRowGranule() {
  return kMaxRows;
}

void FillSgemm(SgemmTarget* target) {
  target->panels = &SgemmPanels;
  target->row_granule = &SgemmRowGranule;
  target->activation = &ApplyActivation;
}

}  // namespace HWY_NAMESPACE
}  // namespace edgelm::kernels
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace edgelm::kernels {

HWY_EXPORT(FillSgemm);

std::vector<SgemmTarget> sgemm_targets() {
  std::vector<SgemmTarget> targets;
  // As in simd_kernels.cpp: pin Highway's chosen target to each one to capture its pointers.
  for (int64_t target : hwy::SupportedAndGeneratedTargets()) {
    hwy::SetSupportedTargetsForTest(target);
    SgemmTarget entry;
    entry.name = std::string(highway_target_name(target));
    HWY_DYNAMIC_DISPATCH(FillSgemm)(&entry);
    targets.push_back(std::move(entry));
  }
  hwy::SetSupportedTargetsForTest(0);
  return targets;
}

}  // namespace edgelm::kernels
#endif
