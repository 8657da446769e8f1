// Per-Highway-target entry points of the float GEMM (sgemm_simd.cpp), picked by sgemm.cpp.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "edgelm/sgemm.h"

namespace edgelm::kernels {

struct SgemmTarget {
  std::string name;  // as kernels::active_cpu_path() names the path
  // Computes the columns of panels [panel_begin, panel_end) of C for m rows of A.
  void (*panels)(const float* a, int64_t m, int64_t lda, const PackedMatrix& b, int64_t panel_begin,
                 int64_t panel_end, const float* bias, float* c, int64_t ldc,
                 Activation activation) = nullptr;
  void (*activation)(Activation activation, float* x, int64_t n) = nullptr;
  // Rows of the micro-tile: splitting A across threads in multiples of it keeps tiles full.
  int64_t (*row_granule)() = nullptr;
};

// One entry per Highway target compiled in and supported by this CPU, best first.
std::vector<SgemmTarget> sgemm_targets();

}  // namespace edgelm::kernels
