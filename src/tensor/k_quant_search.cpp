#include "tensor/k_quant_search.h"

#include <cmath>

#include "tensor/rounding.h"

namespace edgelm::tensor::detail {
namespace {

constexpr float kTinyMagnitude = 1e-30f;  // below this a group is treated as all zeros

// Weighted sums for the least-squares scale of a fixed integer assignment.
struct SymmetricSums {
  float sum_xl = 0.0f;
  float sum_ll = 0.0f;
};

SymmetricSums assign_symmetric(const float* x, const float* w, int n, int qmax, float inv_scale) {
  SymmetricSums sums;
  for (int i = 0; i < n; ++i) {
    const auto level = static_cast<float>(round_even_clamped(inv_scale * x[i], -qmax, qmax - 1));
    sums.sum_xl += w[i] * x[i] * level;
    sums.sum_ll += w[i] * level * level;
  }
  return sums;
}

float weighted_error(const float* x, const float* w, int n, const int* levels, float scale,
                     float shift) {
  float error = 0.0f;
  for (int i = 0; i < n; ++i) {
    const float diff = scale * static_cast<float>(levels[i]) + shift - x[i];
    error += w[i] * diff * diff;
  }
  return error;
}

}  // namespace

float fit_symmetric(const float* x, const float* w, int n, int qmax) {
  float amax = 0.0f;
  float max = 0.0f;
  for (int i = 0; i < n; ++i) {
    if (std::fabs(x[i]) > amax) {
      amax = std::fabs(x[i]);
      max = x[i];
    }
  }
  if (!(amax >= kTinyMagnitude) || !std::isfinite(amax)) return 0.0f;
  // The extreme value maps to -qmax, the end of the grid with one more step.
  const SymmetricSums first = assign_symmetric(x, w, n, qmax, -static_cast<float>(qmax) / max);
  float scale = first.sum_ll > 0 ? first.sum_xl / first.sum_ll : 0.0f;
  // Maximising sum_xl^2 / sum_ll minimises the weighted error of the optimal scale.
  float best_score = scale * first.sum_xl;
  for (int step = -9; step <= 9; ++step) {
    if (step == 0) continue;
    const float inv_scale = -(static_cast<float>(qmax) + 0.1f * static_cast<float>(step)) / max;
    const SymmetricSums sums = assign_symmetric(x, w, n, qmax, inv_scale);
    if (sums.sum_ll > 0 && sums.sum_xl * sums.sum_xl > best_score * sums.sum_ll) {
      scale = sums.sum_xl / sums.sum_ll;
      best_score = scale * sums.sum_xl;
    }
  }
  // Alternate "round to the grid" and "refit the scale" while it keeps helping.
  for (int iteration = 0; iteration < 4 && scale != 0.0f; ++iteration) {
    const SymmetricSums sums = assign_symmetric(x, w, n, qmax, 1.0f / scale);
    if (!(sums.sum_ll > 0 && sums.sum_xl * sums.sum_xl > best_score * sums.sum_ll)) break;
    scale = sums.sum_xl / sums.sum_ll;
    best_score = scale * sums.sum_xl;
  }
  return scale;
}

AffineFit fit_affine(const float* x, const float* w, int n, const AffineSearch& search) {
  float min = x[0];
  float max = x[0];
  for (int i = 1; i < n; ++i) {
    min = std::fmin(min, x[i]);
    max = std::fmax(max, x[i]);
  }
  min = std::fmin(min, 0.0f);  // the offset is stored unsigned, so the grid starts at or below 0
  if (!(max > min) || !std::isfinite(max - min)) return {0.0f, -min};
  const float range = max - min;
  const auto assign = [&](float inv_scale, int* out) {
    for (int i = 0; i < n; ++i)
      out[i] = round_even_clamped(inv_scale * (x[i] - min), 0, search.qmax);
  };
  // Start from the plain min/max grid.
  int levels[kMaxSearchGroup];
  float best_scale = range / static_cast<float>(search.qmax);
  float best_min = min;
  assign(static_cast<float>(search.qmax) / range, levels);
  float best_error = weighted_error(x, w, n, levels, best_scale, best_min);

  int trial[kMaxSearchGroup];
  for (int step = 0; step <= search.nstep; ++step) {
    const float inv_scale =
        (search.rmin + search.rdelta * static_cast<float>(step) + static_cast<float>(search.qmax)) /
        range;
    assign(inv_scale, trial);
    // Weighted least squares for x ~ scale * l + shift.
    float sum_w = 0, sum_x = 0, sum_l = 0, sum_ll = 0, sum_xl = 0;
    for (int i = 0; i < n; ++i) {
      const float l = static_cast<float>(trial[i]);
      sum_w += w[i];
      sum_x += w[i] * x[i];
      sum_l += w[i] * l;
      sum_ll += w[i] * l * l;
      sum_xl += w[i] * x[i] * l;
    }
    const float det = sum_w * sum_ll - sum_l * sum_l;
    if (!(det > 0)) continue;
    float scale = (sum_w * sum_xl - sum_x * sum_l) / det;
    float shift = (sum_ll * sum_x - sum_l * sum_xl) / det;
    if (shift > 0) {  // an unsigned offset cannot move the grid up: refit with the grid at 0
      shift = 0;
      scale = sum_xl / sum_ll;
    }
    if (!(scale > 0)) continue;
    const float error = weighted_error(x, w, n, trial, scale, shift);
    if (error < best_error) {
      best_error = error;
      best_scale = scale;
      best_min = shift;
    }
  }
  return {best_scale, -best_min};
}

}  // namespace edgelm::tensor::detail
