// Float -> integer conversions that stay defined for any input (NaN, inf, huge values), so a
// malformed tensor can never trigger undefined behaviour in a quantizer.
#pragma once

#include <cmath>

namespace edgelm::tensor::detail {

// Truncation toward zero (C's cast), clamped to [lo, hi]; NaN gives lo.
inline int truncate_clamped(float value, int lo, int hi) {
  if (!(value > static_cast<float>(lo))) return lo;
  if (value >= static_cast<float>(hi)) return hi;
  return static_cast<int>(value);
}

// Nearest integer, halves away from zero (C's roundf), clamped to [lo, hi]; NaN gives 0.
inline int round_away_clamped(float value, int lo, int hi) {
  if (std::isnan(value)) return 0;
  const float rounded = std::round(value);
  if (rounded <= static_cast<float>(lo)) return lo;
  if (rounded >= static_cast<float>(hi)) return hi;
  return static_cast<int>(rounded);
}

// Nearest integer, halves to even (the default FP rounding mode, as ggml's nearest_int), clamped
// to [lo, hi]; NaN gives 0.
inline int round_even_clamped(float value, int lo, int hi) {
  if (std::isnan(value)) return 0;
  const float rounded = std::nearbyint(value);
  if (rounded <= static_cast<float>(lo)) return lo;
  if (rounded >= static_cast<float>(hi)) return hi;
  return static_cast<int>(rounded);
}

}  // namespace edgelm::tensor::detail
