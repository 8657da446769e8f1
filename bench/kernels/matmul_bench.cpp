// Matmul throughput: weight GB/s for decode (one token, memory-bound) and GFLOP/s for prompt
// batches. Run with EDGELM_CPU=<path> to compare paths; e.g.
//   bench_kernels --benchmark_filter=Decode --benchmark_min_time=1
// Decode cycles through copies of the matrix totalling more than the last-level cache, so the
// weights really stream from DRAM, as they do in a model whose layers are read once per token.
#include <benchmark/benchmark.h>

#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "edgelm/kernels.h"
#include "edgelm/quant.h"

namespace edgelm::kernels {
namespace {

constexpr uint64_t kStreamBytes = uint64_t{1} << 30;  // above this VM's 480 MB L3

struct Weights {
  std::vector<uint8_t> bytes;
  RepackedWeights repacked;  // load-time copies in the active path's layout
  std::vector<MatrixView> copies;
};

Weights make_weights(TensorType type, int64_t rows, int64_t cols, uint64_t total_bytes,
                     bool repack) {
  const uint64_t row_bytes = tensor_bytes(type, static_cast<uint64_t>(cols)).value();
  const uint64_t matrix_bytes = row_bytes * rows;
  std::mt19937 rng(1);
  std::normal_distribution<float> dist;
  std::vector<float> row(static_cast<size_t>(cols));
  Weights w;
  const uint64_t n_copies = std::max<uint64_t>(1, total_bytes / matrix_bytes);
  w.bytes.resize(matrix_bytes * n_copies);
  for (int64_t r = 0; r < rows; ++r) {
    for (float& v : row) v = dist(rng);
    (void)tensor::quantize_row(type, row.data(), w.bytes.data() + r * row_bytes, cols);
  }
  for (uint64_t i = 0; i < n_copies; ++i) {
    if (i > 0) std::memcpy(w.bytes.data() + i * matrix_bytes, w.bytes.data(), matrix_bytes);
    w.copies.push_back(MatrixView{type, w.bytes.data() + i * matrix_bytes, rows, cols, row_bytes});
  }
  if (repack) {
    std::vector<MatrixView*> views;
    for (MatrixView& copy : w.copies) views.push_back(&copy);
    w.repacked = RepackedWeights::repack(views);
    // The file-layout bytes are no longer read.
    if (w.repacked.bytes() > 0) std::vector<uint8_t>().swap(w.bytes);
  }
  return w;
}

// Args: type id, rows, cols, threads, n_tokens, stream (1: cycle through kStreamBytes of copies;
// 0: one cache-resident copy, to see the compute ceiling), repack (1: RepackedMatrix copies, as
// models load by default; 0: the file layout).
void BM_Matmul(benchmark::State& state) {
  const auto type = static_cast<TensorType>(state.range(0));
  const int64_t rows = state.range(1), cols = state.range(2);
  const int threads = static_cast<int>(state.range(3));
  const int64_t n_tokens = state.range(4);
  const Weights w = make_weights(type, rows, cols, state.range(5) ? kStreamBytes : 0,
                                 state.range(6) != 0);
  std::vector<float> x(static_cast<size_t>(cols * n_tokens), 0.5f);
  std::vector<float> y(static_cast<size_t>(rows * n_tokens));
  ThreadPool pool(threads);
  size_t next = 0;
  for (auto _ : state) {
    matmul(w.copies[next], x.data(), n_tokens, y.data(), &pool);
    next = (next + 1) % w.copies.size();
    benchmark::DoNotOptimize(y.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * w.copies[0].row_bytes * rows));
  state.counters["GFLOP/s"] = benchmark::Counter(
      2.0 * static_cast<double>(rows * cols * n_tokens) * static_cast<double>(state.iterations()),
      benchmark::Counter::kIsRate, benchmark::Counter::kIs1000);
  const bool repacked = w.copies[0].layout != WeightLayout::kRowMajor;
  state.SetLabel(std::string(tensor_type_name(type)) + " " + std::string(active_cpu_path()) +
                 (repacked ? " repacked" : ""));
}

// q8_0 and q4_0 also run repacked (the other types have no second layout).
std::vector<int> repack_choices(TensorType type) {
  if (type == TensorType::kQ8_0 || type == TensorType::kQ4_0) return {0, 1};
  return {0};
}

void DecodeArgs(benchmark::internal::Benchmark* b) {
  for (TensorType type : {TensorType::kQ8_0, TensorType::kQ4_0, TensorType::kQ4_K,
                          TensorType::kQ6_K, TensorType::kF16}) {
    for (int repack : repack_choices(type)) {
      for (int64_t rows : {2048, 8192}) {
        for (int threads : {1, 2}) {
          for (int stream : {1, 0})
            b->Args({static_cast<int64_t>(type), rows, 2048, threads, 1, stream, repack});
        }
      }
      // 256 rows fit in L2: the compute ceiling of the kernel itself.
      b->Args({static_cast<int64_t>(type), 256, 2048, 1, 1, 0, repack});
    }
  }
}

void PromptArgs(benchmark::internal::Benchmark* b) {
  for (TensorType type :
       {TensorType::kQ8_0, TensorType::kQ4_0, TensorType::kQ4_K, TensorType::kF16}) {
    for (int repack : repack_choices(type)) {
      for (int threads : {1, 2}) {
        b->Args({static_cast<int64_t>(type), 2048, 2048, threads, 64, 0, repack});
      }
    }
  }
}

BENCHMARK(BM_Matmul)
    ->Name("Decode")
    ->Apply(DecodeArgs)
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_Matmul)
    ->Name("Prompt")
    ->Apply(PromptArgs)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace edgelm::kernels

BENCHMARK_MAIN();
