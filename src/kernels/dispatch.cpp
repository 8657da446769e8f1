// The public kernel entry points: each forwards to the active CPU path (EDGELM_CPU or the best
// path this CPU supports), falling back to the reference where a path has no fast version.
#include <atomic>
#include <cstdlib>
#include <string>

#include "edgelm/kernels.h"
#include "edgelm/quant.h"
#include "kernels/kernel_set.h"
#include "kernels/reference.h"

namespace edgelm::kernels {
namespace {

struct Registry {
  std::vector<KernelSet> sets;  // best first, reference last
  std::atomic<const KernelSet*> active{nullptr};

  Registry() : sets(simd_kernel_sets()) {
    sets.push_back(reference_kernel_set());
    active.store(&sets.front());
    if (const char* forced = std::getenv("EDGELM_CPU")) {
      // An unknown or unsupported name keeps the best path; active_cpu_path() shows which runs.
      select(forced);
    }
  }

  bool select(std::string_view name) {
    for (const KernelSet& set : sets) {
      if (set.name == name) {
        active.store(&set);
        return true;
      }
    }
    return false;
  }
};

Registry& registry() {
  static Registry instance;
  return instance;
}

const KernelSet& active() {
  return *registry().active.load(std::memory_order_relaxed);
}

}  // namespace

bool supports_type(TensorType type) {
  return tensor::can_dequantize(type);
}

void matmul(const MatrixView& w, const float* x, int64_t n_tokens, float* y, ThreadPool* pool) {
  if (!active().matmul(w, x, n_tokens, y, pool)) reference::matmul(w, x, n_tokens, y, pool);
}

void get_row(const MatrixView& w, int64_t row, float* dst) {
  reference::get_row(w, row, dst);
}

void rms_norm(const float* x, const float* weight, int64_t n, float eps, float* out) {
  active().rms_norm(x, weight, n, eps, out);
}

void softmax(float* x, int64_t n) {
  active().softmax(x, n);
}

void rope(float* x, int n_heads, int head_dim, int n_rot, int32_t pos, float freq_base,
          float freq_scale, const float* freq_factors, RopeStyle style) {
  reference::rope(x, n_heads, head_dim, n_rot, pos, freq_base, freq_scale, freq_factors, style);
}

void rope_angles(int n_rot, int32_t pos, float freq_base, float freq_scale,
                 const float* freq_factors, float* cos_sin) {
  reference::rope_angles(n_rot, pos, freq_base, freq_scale, freq_factors, cos_sin);
}

void rope_rotate(float* x, int n_heads, int head_dim, int n_rot, const float* cos_sin,
                 RopeStyle style) {
  reference::rope_rotate(x, n_heads, head_dim, n_rot, cos_sin, style);
}

void silu_mul(float* gate, const float* up, int64_t n) {
  active().silu_mul(gate, up, n);
}

void gelu_mul(float* gate, const float* up, int64_t n) {
  active().gelu_mul(gate, up, n);
}

void attention(const AttentionParams& p, const float* q, int64_t n_tokens, int32_t pos0,
               const float* k, const float* v, float* out, ThreadPool* pool) {
  active().attention(p, q, n_tokens, pos0, k, v, out, pool);
}

void attention_f16(const AttentionParams& p, const float* q, int64_t n_tokens, int32_t pos0,
                   const uint16_t* k, const uint16_t* v, float* out, ThreadPool* pool) {
  active().attention_f16(p, q, n_tokens, pos0, k, v, out, pool);
}

void attention_q8_0(const AttentionParams& p, const float* q, int64_t n_tokens, int32_t pos0,
                    const uint8_t* k, const uint8_t* v, float* out, ThreadPool* pool) {
  active().attention_q8_0(p, q, n_tokens, pos0, k, v, out, pool);
}

void to_f16(const float* src, uint16_t* dst, int64_t n) {
  active().to_f16(src, dst, n);
}

WeightLayout preferred_layout() {
  return active().preferred_layout;
}

std::string_view active_cpu_path() {
  return active().name;
}

std::vector<std::string_view> available_cpu_paths() {
  std::vector<std::string_view> names;
  for (const KernelSet& set : registry().sets) names.push_back(set.name);
  return names;
}

bool set_cpu_path(std::string_view name) {
  return registry().select(name);
}

}  // namespace edgelm::kernels
