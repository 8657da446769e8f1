// A persistent pool of worker threads: kernels split work across it, never creating threads per op.
#pragma once

#include <functional>
#include <memory>

namespace edgelm {

class ThreadPool {
 public:
  // n_threads counts the calling thread: ThreadPool(1) runs everything inline.
  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const;
  // Calls fn(thread_index, size()) once on every thread (the caller is index 0); returns when all
  // calls have returned.
  void run(const std::function<void(int thread_index, int n_threads)>& fn);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace edgelm
