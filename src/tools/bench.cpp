#include "edgelm/bench.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <numeric>

#include <fmt/format.h>

#include "edgelm/kernels.h"
#include "edgelm/model.h"
#include "edgelm/thread_pool.h"

namespace edgelm::tools {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

Stat stat_of(const std::vector<double>& xs) {
  Stat s;
  if (xs.empty()) return s;
  s.mean = std::accumulate(xs.begin(), xs.end(), 0.0) / xs.size();
  double var = 0;
  for (double x : xs) var += (x - s.mean) * (x - s.mean);
  s.stddev = xs.size() > 1 ? std::sqrt(var / (xs.size() - 1)) : 0.0;
  return s;
}

double percentile(std::vector<double> xs, double p) {
  if (xs.empty()) return 0;
  std::sort(xs.begin(), xs.end());
  const double rank = p / 100.0 * (xs.size() - 1);
  const size_t lo = static_cast<size_t>(rank);
  const size_t hi = std::min(lo + 1, xs.size() - 1);
  return xs[lo] + (xs[hi] - xs[lo]) * (rank - lo);
}

// Asks the kernel to forget the file's cached pages (no root needed for clean pages).
bool drop_file_cache(const std::filesystem::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) return false;
  const bool ok = ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED) == 0;
  ::close(fd);
  return ok;
}

double peak_rss_mib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss / 1024.0;  // ru_maxrss is in KiB on Linux
}

// Tokens that exist in any vocabulary: the values do not change the speed.
std::vector<int32_t> bench_tokens(int32_t n, int32_t n_vocab) {
  std::vector<int32_t> tokens(n);
  for (int32_t i = 0; i < n; ++i) tokens[i] = (i * 7919 + 13) % n_vocab;
  return tokens;
}

// Load + first decode, as a user experiences start-up.
Result<double> time_load(const BenchOptions& o) {
  const auto start = Clock::now();
  model::LoadOptions load;
  load.use_mmap = o.use_mmap;
  load.repack = o.repack;
  EDGELM_TRY(auto model, model::Model::load(o.model, load));
  model::ContextOptions copts;
  copts.n_ctx = 16;
  EDGELM_TRY(auto context, model::Context::create(*model, copts));
  const int32_t token[1] = {0};
  EDGELM_TRY(auto logits, context->decode(token));
  (void)logits;
  return seconds_since(start) * 1000.0;
}

}  // namespace

double measure_triad_bandwidth(int n_threads) {
  const size_t n = size_t{1} << 25;  // 3 arrays x 128 MiB: far beyond any cache
  std::vector<float> a(n), b(n, 1.0f), c(n, 2.0f);
  ThreadPool pool(n_threads);
  double best = 1e30;
  for (int rep = 0; rep < 5; ++rep) {
    const auto start = Clock::now();
    pool.run([&](int t, int nt) {
      const size_t begin = n * t / nt, end = n * (t + 1) / nt;
      for (size_t i = begin; i < end; ++i) a[i] = b[i] + 3.0f * c[i];
    });
    best = std::min(best, seconds_since(start));
  }
  return 3.0 * n * sizeof(float) / best / 1e9;
}

Result<BenchReport> run_bench(const BenchOptions& o) {
  if (o.repetitions < 1) return make_error(ErrorCode::kInvalidArgument, "bench: repetitions must be >= 1");
  if (o.n_prompt < 0 || o.n_gen < 0) return make_error(ErrorCode::kInvalidArgument, "bench: negative test length");
  BenchReport report;
  report.cold_cache_dropped = o.use_mmap && drop_file_cache(o.model);
  EDGELM_TRY(report.load_cold_ms, time_load(o));
  EDGELM_TRY(report.load_warm_ms, time_load(o));

  model::LoadOptions load;
  load.use_mmap = o.use_mmap;
  load.repack = o.repack;
  EDGELM_TRY(auto model, model::Model::load(o.model, load));
  const auto& hp = model->hparams();
  const auto& file = model->gguf();
  report.model_name = file.get_string_or("general.name", o.model.filename().string()).value_or("");
  std::map<std::string, uint64_t> bytes_by_type;
  for (const auto& t : file.tensors()) {
    report.model_bytes += t.n_bytes;
    report.params += t.n_elements;
    if (t.ne.size() >= 2) bytes_by_type[std::string(tensor_type_name(t.type))] += t.n_bytes;
    // A decode step reads every weight once, except the embedding table (one row) unless it is
    // also the output matrix.
    if (t.name != "token_embd.weight" || hp.tied_embeddings) report.bytes_per_token += t.n_bytes;
  }
  report.model_type = std::max_element(bytes_by_type.begin(), bytes_by_type.end(), [](auto& a, auto& b) {
                        return a.second < b.second;
                      })->first;
  report.cpu_path = std::string(kernels::active_cpu_path());
  report.kv_type = std::string(tensor_type_name(o.kv_type));

  for (int threads : o.threads) {
    BenchResult r;
    r.threads = threads;
    model::ContextOptions copts;
    copts.n_ctx = std::max<int32_t>(o.n_prompt + o.n_gen + 8, 64);
    copts.n_threads = threads;
    copts.n_batch = std::max<int32_t>(o.n_prompt, 1);
    copts.kv_type = o.kv_type;
    EDGELM_TRY(auto context, model::Context::create(*model, copts));
    const auto prompt = bench_tokens(std::max<int32_t>(o.n_prompt, 1), hp.n_vocab);
    const auto gen = bench_tokens(std::max<int32_t>(o.n_gen, 1), hp.n_vocab);

    std::vector<double> pp, tg, ttft, per_token;
    // One untimed warm-up of each test, then the timed repetitions.
    for (int rep = -1; rep < o.repetitions; ++rep) {
      if (o.n_prompt > 0) {
        context->truncate(0);
        const auto start = Clock::now();
        EDGELM_TRY(auto logits, context->decode(prompt));
        (void)logits;
        const double s = seconds_since(start);
        if (rep >= 0) {
          pp.push_back(o.n_prompt / s);
          ttft.push_back(s * 1000.0);
        }
      }
      if (o.n_gen > 0) {
        context->truncate(0);
        const auto start = Clock::now();
        for (int32_t i = 0; i < o.n_gen; ++i) {
          const auto t0 = Clock::now();
          EDGELM_TRY(auto logits, context->decode(std::span<const int32_t>(&gen[i], 1)));
          (void)logits;
          if (rep >= 0) per_token.push_back(seconds_since(t0) * 1000.0);
        }
        if (rep >= 0) tg.push_back(o.n_gen / seconds_since(start));
      }
    }
    r.pp_tokens_per_second = stat_of(pp);
    r.tg_tokens_per_second = stat_of(tg);
    r.ttft_ms = percentile(ttft, 50);
    r.decode_p50_ms = percentile(per_token, 50);
    r.decode_p95_ms = percentile(per_token, 95);
    r.decode_p99_ms = percentile(per_token, 99);
    report.results.push_back(r);
  }
  // Read the peak before the bandwidth test, whose arrays would dominate it.
  report.peak_rss_mib = peak_rss_mib();
  for (auto& r : report.results) {
    if (!o.measure_bandwidth) break;
    r.bandwidth_gbs = measure_triad_bandwidth(r.threads);
    r.decode_share_of_bandwidth = r.tg_tokens_per_second.mean * report.bytes_per_token / (r.bandwidth_gbs * 1e9);
  }
  return report;
}

nlohmann::json BenchReport::to_json() const {
  nlohmann::json rows = nlohmann::json::array();
  for (const auto& r : results) {
    rows.push_back({{"threads", r.threads},
                    {"pp_tokens_per_second", {{"mean", r.pp_tokens_per_second.mean}, {"sd", r.pp_tokens_per_second.stddev}}},
                    {"tg_tokens_per_second", {{"mean", r.tg_tokens_per_second.mean}, {"sd", r.tg_tokens_per_second.stddev}}},
                    {"ttft_ms", r.ttft_ms},
                    {"decode_ms", {{"p50", r.decode_p50_ms}, {"p95", r.decode_p95_ms}, {"p99", r.decode_p99_ms}}},
                    {"bandwidth_gbs", r.bandwidth_gbs},
                    {"decode_share_of_bandwidth", r.decode_share_of_bandwidth}});
  }
  return {{"model", model_name}, {"type", model_type}, {"model_bytes", model_bytes}, {"params", params},
          {"bytes_per_token", bytes_per_token}, {"cpu_path", cpu_path}, {"kv_type", kv_type}, {"load_cold_ms", load_cold_ms},
          {"load_warm_ms", load_warm_ms}, {"cold_cache_dropped", cold_cache_dropped},
          {"peak_rss_mib", peak_rss_mib}, {"results", rows}};
}

std::string BenchReport::to_table() const {
  std::string out = fmt::format("model: {} ({}, {:.1f} MiB, {:.1f} M params), cpu path: {}, KV cache: {}\n",
                                model_name, model_type, model_bytes / 1048576.0, params / 1e6, cpu_path, kv_type);
  out += fmt::format("load: cold {:.1f} ms{}, warm {:.1f} ms; peak RSS {:.1f} MiB\n\n", load_cold_ms,
                     cold_cache_dropped ? "" : " (page cache not dropped)", load_warm_ms, peak_rss_mib);
  out += "| threads |            pp t/s |            tg t/s | TTFT ms | decode p50/p95/p99 ms | % of BW limit |\n";
  out += "|--------:|------------------:|------------------:|--------:|----------------------:|--------------:|\n";
  for (const auto& r : results) {
    out += fmt::format("| {:7} | {:8.2f} ± {:6.2f} | {:8.2f} ± {:6.2f} | {:7.1f} | {:6.2f} / {:6.2f} / {:6.2f} | {:5.1f} % of {:4.1f} GB/s |\n",
                       r.threads, r.pp_tokens_per_second.mean, r.pp_tokens_per_second.stddev,
                       r.tg_tokens_per_second.mean, r.tg_tokens_per_second.stddev, r.ttft_ms, r.decode_p50_ms,
                       r.decode_p95_ms, r.decode_p99_ms, 100.0 * r.decode_share_of_bandwidth, r.bandwidth_gbs);
  }
  return out;
}

std::string BenchReport::to_csv() const {
  std::string out =
      "model,type,threads,pp_tps,pp_sd,tg_tps,tg_sd,ttft_ms,decode_p50_ms,decode_p95_ms,decode_p99_ms,"
      "bandwidth_gbs,bw_share,load_cold_ms,load_warm_ms,peak_rss_mib\n";
  for (const auto& r : results) {
    out += fmt::format("{},{},{},{:.3f},{:.3f},{:.3f},{:.3f},{:.3f},{:.3f},{:.3f},{:.3f},{:.2f},{:.4f},{:.2f},{:.2f},{:.1f}\n",
                       model_name, model_type, r.threads, r.pp_tokens_per_second.mean, r.pp_tokens_per_second.stddev,
                       r.tg_tokens_per_second.mean, r.tg_tokens_per_second.stddev, r.ttft_ms, r.decode_p50_ms,
                       r.decode_p95_ms, r.decode_p99_ms, r.bandwidth_gbs, r.decode_share_of_bandwidth, load_cold_ms,
                       load_warm_ms, peak_rss_mib);
  }
  return out;
}

}  // namespace edgelm::tools
