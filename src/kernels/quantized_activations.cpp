#include "kernels/quantized_activations.h"

#include <algorithm>
#include <cmath>

namespace edgelm::kernels {

void quantize_activations(const float* x, int64_t n_tokens, int64_t cols,
                          QuantizedActivations& out) {
  const int64_t n_blocks = n_tokens * cols / kActivationBlock;
  out.blocks_per_token = cols / kActivationBlock;
  out.qs.resize(static_cast<size_t>(n_tokens * cols));
  out.d.resize(static_cast<size_t>(n_blocks));
  out.d_sum.resize(static_cast<size_t>(n_blocks));
  out.d_half_sum.resize(static_cast<size_t>(n_blocks));
  for (int64_t b = 0; b < n_blocks; ++b) {
    const float* xb = x + b * kActivationBlock;
    int8_t* qb = out.qs.data() + b * kActivationBlock;
    float amax = 0.0f;
    for (int i = 0; i < kActivationBlock; ++i) amax = std::max(amax, std::abs(xb[i]));
    const float d = amax / 127.0f;
    const float inv_d = amax > 0.0f ? 127.0f / amax : 0.0f;
    int32_t sum = 0, half_sum = 0;
    for (int i = 0; i < kActivationBlock; ++i) {
      const int q = static_cast<int>(std::lrintf(xb[i] * inv_d));
      qb[i] = static_cast<int8_t>(std::clamp(q, -127, 127));
      sum += qb[i];
      if (i < kActivationBlock / 2) half_sum += qb[i];
    }
    out.d[b] = d;
    out.d_sum[b] = d * static_cast<float>(sum);
    out.d_half_sum[b] = d * static_cast<float>(half_sum);
  }
}

}  // namespace edgelm::kernels
