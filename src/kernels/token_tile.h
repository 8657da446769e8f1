// Token tiles: kernels are templates on the number of activation rows (tokens) they handle at once,
// so their accumulators stay in registers; this turns a runtime count into that constant.
#pragma once

#include <cstdint>
#include <type_traits>

namespace edgelm::kernels {

constexpr int kMaxTokenTile = 8;

// Calls fn(std::integral_constant<int, T>()) with T = n for n in 1..7, else kMaxTokenTile.
template <class Fn>
void with_token_tile(int64_t n, const Fn& fn) {
  switch (n) {
    case 1:
      return fn(std::integral_constant<int, 1>());
    case 2:
      return fn(std::integral_constant<int, 2>());
    case 3:
      return fn(std::integral_constant<int, 3>());
    case 4:
      return fn(std::integral_constant<int, 4>());
    case 5:
      return fn(std::integral_constant<int, 5>());
    case 6:
      return fn(std::integral_constant<int, 6>());
    case 7:
      return fn(std::integral_constant<int, 7>());
    default:
      return fn(std::integral_constant<int, kMaxTokenTile>());
  }
}

}  // namespace edgelm::kernels
