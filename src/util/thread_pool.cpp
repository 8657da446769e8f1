#include "edgelm/thread_pool.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

namespace edgelm {
namespace {

// Kernels are launched back to back (tens of microseconds apart during decode), so a worker
// spins this many pause iterations before sleeping on the condition variable: long enough to
// catch the next kernel without a futex wake-up, short enough not to steal a shared core for long.
constexpr int kSpinIterations = 2048;

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#else
  std::this_thread::yield();
#endif
}

}  // namespace

struct ThreadPool::Impl {
  using Job = std::function<void(int, int)>;

  int n_threads = 1;
  std::vector<std::thread> workers;

  // A new job is published by bumping `generation` (under `mutex`, so sleepers cannot miss it);
  // `job` is written before that release-increment and read after the matching acquire-load.
  const Job* job = nullptr;
  std::atomic<uint64_t> generation{0};
  std::atomic<int> pending{0};        // workers still running the current job
  std::atomic<bool> stopping{false};  // published, like `job`, by a generation bump
  std::mutex mutex;
  std::condition_variable wake;

  void worker_loop(int index) {
    uint64_t seen = 0;
    for (;;) {
      uint64_t current = generation.load(std::memory_order_acquire);
      for (int i = 0; i < kSpinIterations && current == seen; ++i) {
        cpu_relax();
        current = generation.load(std::memory_order_acquire);
      }
      if (current == seen) {
        std::unique_lock<std::mutex> lock(mutex);
        wake.wait(lock, [&] { return generation.load(std::memory_order_acquire) != seen; });
        current = generation.load(std::memory_order_acquire);
      }
      seen = current;
      if (stopping.load(std::memory_order_relaxed)) return;
      (*job)(index, n_threads);
      pending.fetch_sub(1, std::memory_order_acq_rel);
    }
  }
};

ThreadPool::ThreadPool(int n_threads) : impl_(std::make_unique<Impl>()) {
  impl_->n_threads = std::max(1, n_threads);
  impl_->workers.reserve(static_cast<size_t>(impl_->n_threads - 1));
  for (int i = 1; i < impl_->n_threads; ++i) {
    impl_->workers.emplace_back([this, i] { impl_->worker_loop(i); });
  }
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    impl_->stopping.store(true, std::memory_order_relaxed);
    impl_->generation.fetch_add(1, std::memory_order_release);
  }
  impl_->wake.notify_all();
  for (std::thread& t : impl_->workers) t.join();
}

int ThreadPool::size() const {
  return impl_->n_threads;
}

void ThreadPool::run(const std::function<void(int thread_index, int n_threads)>& fn) {
  Impl& s = *impl_;
  if (s.n_threads == 1) {
    fn(0, 1);
    return;
  }
  s.pending.store(s.n_threads - 1, std::memory_order_relaxed);
  {
    std::lock_guard<std::mutex> lock(s.mutex);
    s.job = &fn;
    s.generation.fetch_add(1, std::memory_order_release);
  }
  s.wake.notify_all();
  fn(0, s.n_threads);
  for (int i = 0; s.pending.load(std::memory_order_acquire) != 0; ++i) {
    if (i < kSpinIterations) {
      cpu_relax();
    } else {
      std::this_thread::yield();
    }
  }
}

}  // namespace edgelm
