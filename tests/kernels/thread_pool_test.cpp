#include "edgelm/thread_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <vector>

namespace edgelm {
namespace {

TEST(ThreadPool, EveryIndexRunsOncePerCall) {
  for (int n : {1, 2, 3, 5}) {
    ThreadPool pool(n);
    ASSERT_EQ(pool.size(), n);
    std::vector<std::atomic<int>> calls(static_cast<size_t>(n));
    // Many back-to-back runs exercise the spin and sleep hand-offs and generation reuse.
    for (int run = 0; run < 1000; ++run) {
      pool.run([&](int index, int count) {
        EXPECT_EQ(count, n);
        calls[static_cast<size_t>(index)].fetch_add(1);
      });
    }
    for (int i = 0; i < n; ++i) EXPECT_EQ(calls[static_cast<size_t>(i)].load(), 1000) << i;
  }
}

TEST(ThreadPool, CallerIsThreadZeroAndRunWaitsForAll) {
  ThreadPool pool(3);
  std::vector<int> results(3, 0);
  pool.run([&](int index, int) { results[static_cast<size_t>(index)] = index + 10; });
  // run() returned, so every worker's write is visible.
  EXPECT_EQ(results, (std::vector<int>{10, 11, 12}));
}

TEST(ThreadPool, ZeroOrNegativeMeansInline) {
  ThreadPool pool(0);
  EXPECT_EQ(pool.size(), 1);
  int calls = 0;
  pool.run([&](int index, int count) {
    EXPECT_EQ(index, 0);
    EXPECT_EQ(count, 1);
    ++calls;
  });
  EXPECT_EQ(calls, 1);
}

TEST(ThreadPool, DestroyWithoutRunning) {
  for (int i = 0; i < 20; ++i) ThreadPool pool(4);
}

}  // namespace
}  // namespace edgelm
