// IEEE binary16 and bfloat16 conversions done on the bits, so results never depend on the
// compiler or the floating-point environment. NaNs follow x86 F16C (vcvtph2ps / vcvtps2ph): the
// sign and the top payload bits are kept and the NaN is made quiet, so SIMD paths agree with these.
#include <bit>
#include <cstdint>

#include "edgelm/quant.h"

namespace edgelm::tensor {

float fp16_to_fp32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exponent = (h >> 10) & 0x1Fu;
  uint32_t mantissa = h & 0x3FFu;
  if (exponent == 0x1F) {
    if (mantissa == 0) return std::bit_cast<float>(sign | 0x7F800000u);  // inf
    return std::bit_cast<float>(sign | 0x7FC00000u | (mantissa << 13));  // quiet NaN
  }
  if (exponent != 0) {  // normal: rebias 15 -> 127
    return std::bit_cast<float>(sign | ((exponent + 112) << 23) | (mantissa << 13));
  }
  if (mantissa == 0) return std::bit_cast<float>(sign);
  // Subnormal half (mantissa * 2^-24) is a normal float: shift the leading one into place.
  uint32_t shift = 0;
  while ((mantissa & 0x400u) == 0) {
    mantissa <<= 1;
    ++shift;
  }
  return std::bit_cast<float>(sign | ((113 - shift) << 23) | ((mantissa & 0x3FFu) << 13));
}

namespace {

// Drops the low `shift` bits of `value`, rounding to nearest with ties to even.
uint32_t shift_right_round_even(uint32_t value, uint32_t shift) {
  const uint32_t kept = value >> shift;
  const uint32_t rest = value & ((1u << shift) - 1);
  const uint32_t half = 1u << (shift - 1);
  return (rest > half || (rest == half && (kept & 1u))) ? kept + 1 : kept;
}

}  // namespace

uint16_t fp32_to_fp16(float f) {
  const uint32_t bits = std::bit_cast<uint32_t>(f);
  const uint32_t sign = (bits >> 16) & 0x8000u;
  const uint32_t magnitude = bits & 0x7FFFFFFFu;
  if (magnitude > 0x7F800000u) {  // NaN
    return static_cast<uint16_t>(sign | 0x7E00u | ((magnitude >> 13) & 0x3FFu));
  }
  if (magnitude >= 0x47800000u) return static_cast<uint16_t>(sign | 0x7C00u);  // >= 2^16: inf
  if (magnitude < 0x38800000u) {  // below 2^-14: a half subnormal (or zero)
    const uint32_t exponent = magnitude >> 23;
    if (exponent < 102) return static_cast<uint16_t>(sign);  // below 2^-25 rounds to zero
    const uint32_t mantissa = (magnitude & 0x7FFFFFu) | 0x800000u;
    // value = mantissa * 2^(exponent-150); in units of 2^-24 that is mantissa >> (126-exponent).
    return static_cast<uint16_t>(sign | shift_right_round_even(mantissa, 126 - exponent));
  }
  // Normal: rebias the exponent and round the mantissa; a carry correctly bumps the exponent
  // (and turns values >= 65520 into inf).
  const uint32_t rebiased = magnitude - (112u << 23);
  return static_cast<uint16_t>(sign | shift_right_round_even(rebiased, 13));
}

float bf16_to_fp32(uint16_t h) {
  return std::bit_cast<float>(static_cast<uint32_t>(h) << 16);
}

uint16_t fp32_to_bf16(float f) {
  const uint32_t bits = std::bit_cast<uint32_t>(f);
  if ((bits & 0x7FFFFFFFu) > 0x7F800000u) {  // NaN: truncate and force quiet so it stays NaN
    return static_cast<uint16_t>((bits >> 16) | 0x40u);
  }
  return static_cast<uint16_t>((bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16);
}

}  // namespace edgelm::tensor
