// Server metrics in the Prometheus text exposition format (version 0.0.4). Thread-safe.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace edgelm::serve {

// A cumulative histogram with fixed upper bounds (seconds).
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void observe(double value);
  // `name`_bucket{le=...}, `name`_sum and `name`_count lines.
  void render(const std::string& name, std::string& out) const;

 private:
  mutable std::mutex mutex_;
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;  // per bucket, not cumulative; last one is +Inf
  double sum_ = 0;
  uint64_t count_ = 0;
};

class Metrics {
 public:
  Metrics();

  void count_request(const std::string& endpoint, int status);
  void add_prompt_tokens(int64_t n) { prompt_tokens_ += n; }
  void add_completion_tokens(int64_t n) { completion_tokens_ += n; }
  void observe_time_to_first_token(double seconds) { ttft_.observe(seconds); }
  void observe_time_per_output_token(double seconds) { tpot_.observe(seconds); }
  void observe_batch_size(double sequences) { batch_size_.observe(sequences); }
  void set_queue_depth(int64_t n) { queue_depth_ = n; }
  void set_active_slots(int64_t n) { active_slots_ = n; }
  void set_total_slots(int64_t n) { total_slots_ = n; }

  std::string render() const;

 private:
  mutable std::mutex mutex_;
  std::map<std::pair<std::string, int>, uint64_t> requests_;
  std::atomic<int64_t> prompt_tokens_{0};
  std::atomic<int64_t> completion_tokens_{0};
  std::atomic<int64_t> queue_depth_{0};
  std::atomic<int64_t> active_slots_{0};
  std::atomic<int64_t> total_slots_{0};
  Histogram ttft_;
  Histogram tpot_;
  Histogram batch_size_;
};

}  // namespace edgelm::serve
