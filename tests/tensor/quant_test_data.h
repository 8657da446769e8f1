// Test inputs for quantizers: Gaussian rows and blocks chosen to hit the edge cases of the
// reference rules (zeros, constants, ties, extreme magnitudes, sign of the extreme value).
#pragma once

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

namespace edgelm::test {

inline std::vector<float> gaussian(int64_t n, std::mt19937& rng, float sigma = 1.0f) {
  std::normal_distribution<float> normal(0.0f, sigma);
  std::vector<float> values(static_cast<size_t>(n));
  for (auto& v : values) v = normal(rng);
  return values;
}

// A whole number of blocks of `block_size`, one edge case per block, then Gaussian blocks at
// magnitudes from 1e-6 to 1e4.
inline std::vector<float> edge_case_blocks(int block_size, std::mt19937& rng) {
  std::vector<float> out;
  const auto add_block = [&](auto value_at) {
    for (int i = 0; i < block_size; ++i) out.push_back(value_at(i));
  };
  std::normal_distribution<float> normal(0.0f, 1.0f);
  add_block([](int) { return 0.0f; });
  add_block([](int) { return -0.0f; });
  add_block([](int) { return 1.5f; });
  add_block([](int) { return -3.25f; });
  add_block([](int i) { return i == 7 ? 5.0f : 0.0f; });  // one spike
  add_block([](int i) { return i == 3 ? -5.0f : 0.01f * static_cast<float>(i); });
  add_block([](int i) { return (i % 2 == 0) ? 2.0f : -2.0f; });  // +max and -max tie
  add_block([](int i) { return (i % 2 == 0) ? -2.0f : 2.0f; });
  add_block([&](int i) { return i == 0 ? -4.0f : std::fabs(normal(rng)); });  // negative extreme
  add_block([&](int) { return -std::fabs(normal(rng)) - 1.0f; });             // all negative
  add_block([&](int) { return std::fabs(normal(rng)) + 1.0f; });              // all positive
  // Exact half-way products: with the extreme at 127 (q8_0: d = 1) or -8 (q4_0: d = 1).
  add_block([](int i) { return i == 0 ? 127.0f : 0.5f * static_cast<float>(i % 21) - 5.0f; });
  add_block([](int i) { return i == 0 ? -8.0f : 0.5f * static_cast<float>(i % 15) - 3.5f; });
  add_block([](int i) { return i == 0 ? -16.0f : 0.5f * static_cast<float>(i % 31) - 7.5f; });
  add_block([](int i) { return 0.25f * static_cast<float>(i % 16); });  // on a q4_1 grid
  add_block([](int i) { return 65504.0f * ((i % 3) - 1.0f); });         // fp16 max
  add_block([&](int) { return 3.0e5f * normal(rng); });                 // scale overflows fp16
  add_block([&](int) { return 1.0e-7f * normal(rng); });                // scale underflows fp16
  add_block([](int i) { return static_cast<float>(i) / 1024.0f; });     // ramp
  for (float magnitude : {1e-6f, 1e-3f, 1.0f, 1e2f, 1e4f}) {
    for (int k = 0; k < 4; ++k) add_block([&](int) { return magnitude * normal(rng); });
  }
  return out;
}

}  // namespace edgelm::test
