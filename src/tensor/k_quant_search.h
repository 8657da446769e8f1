// Scale searches for the K-quants: given values x and per-element weights w, find the grid that
// minimises sum(w * (x - dequantized)^2). The ideas follow ggml's make_qx_quants /
// make_qkx2_quants: try a fan of candidate inverse scales, and for each resulting integer
// assignment solve the weighted least-squares problem for the scale (and offset) exactly.
#pragma once

namespace edgelm::tensor::detail {

inline constexpr int kMaxSearchGroup = 32;  // n must not exceed this

// Symmetric grid x ~ scale * q, q in [-qmax, qmax-1]. Returns the (signed) scale; 0 when the
// values are all zero.
float fit_symmetric(const float* x, const float* w, int n, int qmax);

// Affine grid x ~ scale * q - offset, q in [0, qmax], offset >= 0 (the grid always reaches down
// to zero or below). The search tries inverse scales (qmax + rmin + rdelta * step) / range for
// step in [0, nstep].
struct AffineSearch {
  int qmax;
  float rmin;
  float rdelta;
  int nstep;
};
struct AffineFit {
  float scale = 0.0f;
  float offset = 0.0f;
};
AffineFit fit_affine(const float* x, const float* w, int n, const AffineSearch& search);

}  // namespace edgelm::tensor::detail
