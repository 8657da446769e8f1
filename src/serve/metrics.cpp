#include "edgelm/serve/metrics.h"

#include <cstdio>

namespace edgelm::serve {
namespace {

std::string number(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

void header(std::string& out, const std::string& name, const char* type, const char* help) {
  out += "# HELP " + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
}

}  // namespace

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}

void Histogram::observe(double value) {
  size_t b = 0;
  while (b < bounds_.size() && value > bounds_[b]) ++b;
  std::lock_guard<std::mutex> lock(mutex_);
  ++counts_[b];
  sum_ += value;
  ++count_;
}

void Histogram::render(const std::string& name, std::string& out) const {
  std::lock_guard<std::mutex> lock(mutex_);
  uint64_t cumulative = 0;
  for (size_t b = 0; b < bounds_.size(); ++b) {
    cumulative += counts_[b];
    out += name + "_bucket{le=\"" + number(bounds_[b]) + "\"} " + std::to_string(cumulative) + "\n";
  }
  cumulative += counts_.back();
  out += name + "_bucket{le=\"+Inf\"} " + std::to_string(cumulative) + "\n";
  out += name + "_sum " + number(sum_) + "\n";
  out += name + "_count " + std::to_string(count_) + "\n";
}

Metrics::Metrics()
    : ttft_({0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}),
      tpot_({0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1}),
      batch_size_({1, 2, 4, 8, 16, 32, 64}) {}

void Metrics::count_request(const std::string& endpoint, int status) {
  std::lock_guard<std::mutex> lock(mutex_);
  ++requests_[{endpoint, status}];
}

std::string Metrics::render() const {
  std::string out;
  header(out, "edgelm_requests_total", "counter", "HTTP requests by endpoint and status code.");
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& [key, count] : requests_) {
      out += "edgelm_requests_total{endpoint=\"" + key.first + "\",status=\"" +
             std::to_string(key.second) + "\"} " + std::to_string(count) + "\n";
    }
  }
  header(out, "edgelm_prompt_tokens_total", "counter", "Prompt tokens of generation requests.");
  out += "edgelm_prompt_tokens_total " + std::to_string(prompt_tokens_.load()) + "\n";
  header(out, "edgelm_completion_tokens_total", "counter", "Generated tokens.");
  out += "edgelm_completion_tokens_total " + std::to_string(completion_tokens_.load()) + "\n";
  header(out, "edgelm_time_to_first_token_seconds", "histogram",
         "Time from request arrival to its first generated token.");
  ttft_.render("edgelm_time_to_first_token_seconds", out);
  header(out, "edgelm_time_per_output_token_seconds", "histogram",
         "Time between consecutive generated tokens of a request.");
  tpot_.render("edgelm_time_per_output_token_seconds", out);
  header(out, "edgelm_batch_sequences", "histogram",
         "Sequences evaluated per batched forward pass.");
  batch_size_.render("edgelm_batch_sequences", out);
  header(out, "edgelm_queue_depth", "gauge", "Generation requests waiting for a slot.");
  out += "edgelm_queue_depth " + std::to_string(queue_depth_.load()) + "\n";
  header(out, "edgelm_active_slots", "gauge", "Slots generating or evaluating a prompt.");
  out += "edgelm_active_slots " + std::to_string(active_slots_.load()) + "\n";
  header(out, "edgelm_slots", "gauge", "Slots (sequences decoded together).");
  out += "edgelm_slots " + std::to_string(total_slots_.load()) + "\n";
  return out;
}

}  // namespace edgelm::serve
