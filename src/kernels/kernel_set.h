// One CPU path: the function pointers every public kernel forwards to. The reference set is
// plain scalar C++; the SIMD sets are generated per Highway target (simd_*.cpp).
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "edgelm/kernels.h"

namespace edgelm::kernels {

struct KernelSet {
  std::string_view name;
  // Returns false when this set has no fast path for w.type (the caller then uses the reference).
  bool (*matmul)(const MatrixView& w, const float* x, int64_t n_tokens, float* y, ThreadPool* pool);
  void (*rms_norm)(const float* x, const float* weight, int64_t n, float eps, float* out);
  void (*softmax)(float* x, int64_t n);
  void (*silu_mul)(float* gate, const float* up, int64_t n);
  void (*gelu_mul)(float* gate, const float* up, int64_t n);
  void (*attention)(const AttentionParams& p, const float* q, int64_t n_tokens, int32_t pos0,
                    const float* k, const float* v, float* out, ThreadPool* pool);
  void (*attention_f16)(const AttentionParams& p, const float* q, int64_t n_tokens, int32_t pos0,
                        const uint16_t* k, const uint16_t* v, float* out, ThreadPool* pool);
  void (*attention_q8_0)(const AttentionParams& p, const float* q, int64_t n_tokens, int32_t pos0,
                         const uint8_t* k, const uint8_t* v, float* out, ThreadPool* pool);
  void (*to_f16)(const float* src, uint16_t* dst, int64_t n);
  // The layout RepackedMatrix writes for this set (its matmul must then accept it).
  WeightLayout preferred_layout = WeightLayout::kRowMajor;
};

// The active set's preferred_layout.
WeightLayout preferred_layout();

// The EDGELM_CPU name of a Highway target ("avx512vnni", "avx2", "neon", "hwy_scalar", ...).
std::string_view highway_target_name(int64_t target);

const KernelSet& reference_kernel_set();
// One set per Highway target compiled in and supported by this CPU, best first.
std::vector<KernelSet> simd_kernel_sets();

// Set the pointers of one part of a KernelSet for Highway's currently chosen target.
void fill_matmul_kernels(KernelSet* set);       // simd_matmul.cpp
void fill_amx_matmul_kernels(KernelSet* set);   // simd_matmul.cpp: the AVX-512 VNNI set + AMX
void fill_elementwise_kernels(KernelSet* set);  // simd_elementwise.cpp

}  // namespace edgelm::kernels
