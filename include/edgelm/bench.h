// llama-bench-style measurements: prompt processing and decode speed, per-token latency
// percentiles, time to first token, load time (cold and warm), peak RSS, and decode speed as a
// share of the machine's memory-bandwidth limit.
#pragma once

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "edgelm/error.h"
#include "edgelm/tensor_type.h"

namespace edgelm::tools {

struct BenchOptions {
  std::filesystem::path model;
  std::vector<int> threads = {1};
  int32_t n_prompt = 128;  // pp test length (0: skip)
  int32_t n_gen = 64;      // tg test length (0: skip)
  int repetitions = 5;
  bool use_mmap = true;
  bool repack = true;  // model::LoadOptions::repack
  bool measure_bandwidth = true;
  TensorType kv_type = TensorType::kF16;  // KV cache element type of the pp/tg contexts
};

struct Stat {
  double mean = 0;
  double stddev = 0;
};

struct BenchResult {
  int threads = 1;
  Stat pp_tokens_per_second;
  Stat tg_tokens_per_second;
  double ttft_ms = 0;  // prompt of n_prompt tokens evaluated to first sampled token (median)
  double decode_p50_ms = 0, decode_p95_ms = 0, decode_p99_ms = 0;  // per generated token
  double decode_share_of_bandwidth = 0;  // achieved bytes/s over measured triad bandwidth
  double bandwidth_gbs = 0;              // STREAM-style triad with this many threads
};

struct BenchReport {
  std::string model_name;
  std::string model_type;    // general.file_type / dominant tensor type
  uint64_t model_bytes = 0;  // tensor data in the file
  uint64_t params = 0;
  uint64_t bytes_per_token = 0;  // weight bytes a decode step reads
  std::string cpu_path;
  std::string kv_type;      // KV cache element type: f16, f32, q8_0
  double load_cold_ms = 0;  // Model::load + first decode with the file's pages dropped from cache
  double load_warm_ms = 0;  // the same with the file cached
  bool cold_cache_dropped = false;
  double peak_rss_mib = 0;
  std::vector<BenchResult> results;

  nlohmann::json to_json() const;
  std::string to_table() const;
  std::string to_csv() const;
};

// Memory bandwidth in GB/s from a STREAM-style triad (a = b + s*c) over arrays far larger than
// cache.
double measure_triad_bandwidth(int n_threads);

Result<BenchReport> run_bench(const BenchOptions& options);

}  // namespace edgelm::tools
