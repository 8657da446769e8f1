// Activations quantized to int8 in blocks of 32, so quantized weights can be multiplied with
// integer dot products: x[32b + i] ~= d[b] * qs[32b + i]. Every weight type's blocks (32 elements,
// or 256-element super-blocks made of 32-element groups) line up with these blocks.
#pragma once

#include <cstdint>
#include <vector>

namespace edgelm::kernels {

inline constexpr int kActivationBlock = 32;

struct QuantizedActivations {
  int64_t blocks_per_token = 0;
  std::vector<int8_t> qs;  // n_tokens * cols
  std::vector<float> d;    // per block: scale = max|x| / 127
  // Per block: d * (sum of its 32 qs), and d * (sum of its first 16), which multiply the weight
  // offsets and mins (constant per block or per 16-element sub-block).
  std::vector<float> d_sum;
  std::vector<float> d_half_sum;
};

// Quantizes n_tokens rows of cols floats (cols a multiple of 32) with round-to-nearest, reusing
// the buffers of `out`. The absolute error per element is at most d[b] / 2 = max|x_block| / 254.
void quantize_activations(const float* x, int64_t n_tokens, int64_t cols,
                          QuantizedActivations& out);

}  // namespace edgelm::kernels
