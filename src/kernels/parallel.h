// Splitting kernel work across a ThreadPool in contiguous chunks.
#pragma once

#include <algorithm>
#include <cstdint>

#include "edgelm/thread_pool.h"

namespace edgelm::kernels {

// Calls fn(begin, end) on each thread for its contiguous share of [0, n). Chunks are multiples of
// `granule` items (except the last), so threads never write to the same cache line of the output
// when granule * sizeof(output item) >= 64.
template <class Fn>
void parallel_for(ThreadPool* pool, int64_t n, int64_t granule, const Fn& fn) {
  const int n_threads = pool == nullptr ? 1 : pool->size();
  if (n_threads == 1 || n <= granule) {
    fn(int64_t{0}, n);
    return;
  }
  const int64_t granules = (n + granule - 1) / granule;
  pool->run([&](int thread_index, int thread_count) {
    const int64_t begin = std::min(n, granules * thread_index / thread_count * granule);
    const int64_t end = std::min(n, granules * (thread_index + 1) / thread_count * granule);
    if (begin < end) fn(begin, end);
  });
}

}  // namespace edgelm::kernels
