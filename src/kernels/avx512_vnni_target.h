// What every hand-written AVX-512 VNNI kernel file needs (x86-64 only): the intrinsics, and the
// target attribute its kernels are compiled with while the rest of the program keeps the baseline
// instruction set, so callers must have checked cpu_has_avx512_vnni().
#pragma once

#if defined(__x86_64__)
// GCC 12's AVX-512 intrinsics build "undefined" vectors by self-assignment, which its own
// -Wuninitialized then reports where they are inlined.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#define EDGELM_AVX512_VNNI \
  __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx2,fma,f16c")))
#endif
