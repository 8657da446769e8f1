// The accuracy-regression gate: policy parsing and threshold checks (see eval.h).
#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "edgelm/eval.h"

namespace edgelm::tools {
namespace {

struct Threshold {
  const char* key;
  std::optional<double> GatePolicy::*field;
};

constexpr Threshold kThresholds[] = {
    {"max_ppl_increase_pct", &GatePolicy::max_ppl_increase_pct},
    {"max_mean_kl", &GatePolicy::max_mean_kl},
    {"max_p99_kl", &GatePolicy::max_p99_kl},
    {"min_top1_agreement", &GatePolicy::min_top1_agreement},
    {"max_accuracy_drop", &GatePolicy::max_accuracy_drop},
    {"min_accuracy", &GatePolicy::min_accuracy},
};

std::string valid_keys() {
  std::string keys;
  for (const auto& t : kThresholds) keys += (keys.empty() ? "" : ", ") + std::string(t.key);
  return keys;
}

}  // namespace

Result<GatePolicy> parse_gate_policy(std::string_view json_text) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(json_text);
  } catch (const nlohmann::json::exception& e) {
    return make_error(ErrorCode::kInvalidFormat,
                      std::string("gate policy: invalid JSON: ") + e.what());
  }
  if (!j.is_object())
    return make_error(ErrorCode::kInvalidFormat, "gate policy: expected a JSON object");
  GatePolicy policy;
  for (const auto& [key, value] : j.items()) {
    const Threshold* threshold = nullptr;
    for (const auto& t : kThresholds) {
      if (key == t.key) threshold = &t;
    }
    if (threshold == nullptr) {
      return make_error(ErrorCode::kInvalidFormat,
                        "gate policy: unknown key '" + key + "' (valid: " + valid_keys() + ")");
    }
    if (!value.is_number()) {
      return make_error(ErrorCode::kInvalidFormat,
                        "gate policy: key '" + key + "' must be a number");
    }
    policy.*(threshold->field) = value.get<double>();
  }
  return policy;
}

GateResult check_gate(const GatePolicy& policy, const EvalMetrics& m) {
  GateResult result;
  const auto fail = [&](const char* threshold, std::string message) {
    result.passed = false;
    result.failures.push_back({threshold, std::string(threshold) + ": " + std::move(message)});
  };
  if (policy.max_ppl_increase_pct) {
    const double limit = *policy.max_ppl_increase_pct;
    if (!m.ppl_base || !m.ppl_candidate) {
      fail("max_ppl_increase_pct", "not measured (needs --ppl and --base)");
    } else {
      const double pct = 100.0 * (*m.ppl_candidate - *m.ppl_base) / *m.ppl_base;
      if (!(pct <= limit)) {
        fail("max_ppl_increase_pct",
             fmt::format("perplexity {:.4f} is {:+.3f}% of the base's {:.4f}, limit {:+.3f}%",
                         *m.ppl_candidate, pct, *m.ppl_base, limit));
      }
    }
  }
  const auto upper = [&](const char* name, const std::optional<double>& limit,
                         const std::optional<double>& value, const char* what, const char* needs) {
    if (!limit) return;
    if (!value) {
      fail(name, std::string("not measured (needs ") + needs + ")");
    } else if (!(*value <= *limit)) {
      fail(name, fmt::format("{} {:.6g} > {:.6g}", what, *value, *limit));
    }
  };
  const auto lower = [&](const char* name, const std::optional<double>& limit,
                         const std::optional<double>& value, const char* what, const char* needs) {
    if (!limit) return;
    if (!value) {
      fail(name, std::string("not measured (needs ") + needs + ")");
    } else if (!(*value >= *limit)) {
      fail(name, fmt::format("{} {:.6g} < {:.6g}", what, *value, *limit));
    }
  };
  upper("max_mean_kl", policy.max_mean_kl, m.mean_kl, "mean KL", "--kl and --base");
  upper("max_p99_kl", policy.max_p99_kl, m.p99_kl, "99th-percentile KL", "--kl and --base");
  lower("min_top1_agreement", policy.min_top1_agreement, m.top1_agreement, "top-1 agreement",
        "--kl and --base");
  std::optional<double> drop;
  if (m.accuracy_base && m.accuracy_candidate) drop = *m.accuracy_base - *m.accuracy_candidate;
  upper("max_accuracy_drop", policy.max_accuracy_drop, drop, "accuracy drop", "--task and --base");
  lower("min_accuracy", policy.min_accuracy, m.accuracy_candidate, "accuracy", "--task");
  return result;
}

}  // namespace edgelm::tools
