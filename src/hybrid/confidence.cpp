#include "edgelm/hybrid/confidence.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

namespace edgelm::hybrid {

nlohmann::json to_json(const Confidence& c) {
  return {{"tokens", c.n_tokens},
          {"mean_logprob", c.mean_logprob},
          {"min_logprob", c.min_logprob},
          {"mean_entropy", c.mean_entropy},
          {"mean_margin", c.mean_margin}};
}

std::string_view confidence_metric_name(ConfidenceMetric metric) {
  switch (metric) {
    case ConfidenceMetric::kMeanLogprob:
      return "mean_logprob";
    case ConfidenceMetric::kMinLogprob:
      return "min_logprob";
    case ConfidenceMetric::kNegMeanEntropy:
      return "neg_mean_entropy";
    case ConfidenceMetric::kMeanMargin:
      return "mean_margin";
  }
  return "?";
}

Result<ConfidenceMetric> parse_confidence_metric(std::string_view name) {
  for (auto m : {ConfidenceMetric::kMeanLogprob, ConfidenceMetric::kMinLogprob,
                 ConfidenceMetric::kNegMeanEntropy, ConfidenceMetric::kMeanMargin}) {
    if (confidence_metric_name(m) == name) return m;
  }
  return make_error(ErrorCode::kInvalidArgument,
                    "unknown confidence metric '" + std::string(name) +
                        "' (mean_logprob, min_logprob, neg_mean_entropy or mean_margin)");
}

double confidence_value(const Confidence& c, ConfidenceMetric metric) {
  if (c.n_tokens == 0) return -std::numeric_limits<double>::infinity();
  switch (metric) {
    case ConfidenceMetric::kMeanLogprob:
      return c.mean_logprob;
    case ConfidenceMetric::kMinLogprob:
      return c.min_logprob;
    case ConfidenceMetric::kNegMeanEntropy:
      return -c.mean_entropy;
    case ConfidenceMetric::kMeanMargin:
      return c.mean_margin;
  }
  return -std::numeric_limits<double>::infinity();
}

void ConfidenceAccumulator::add(std::span<const float> logits, int32_t token) {
  if (token < 0 || static_cast<size_t>(token) >= logits.size()) return;
  double max_logit = -std::numeric_limits<double>::infinity();
  for (float l : logits) {
    if (std::isfinite(l)) max_logit = std::max(max_logit, static_cast<double>(l));
  }
  if (!std::isfinite(max_logit)) return;
  // Two passes in double: the normalizer, then entropy and the two largest probabilities.
  double sum = 0;
  for (float l : logits) {
    if (std::isfinite(l)) sum += std::exp(static_cast<double>(l) - max_logit);
  }
  const double log_norm = max_logit + std::log(sum);
  double entropy = 0, p1 = 0, p2 = 0;
  for (float l : logits) {
    if (!std::isfinite(l)) continue;
    const double logp = static_cast<double>(l) - log_norm;
    const double p = std::exp(logp);
    entropy -= p * logp;
    if (p > p1) {
      p2 = p1;
      p1 = p;
    } else if (p > p2) {
      p2 = p;
    }
  }
  const float chosen = logits[static_cast<size_t>(token)];
  const double logprob = std::isfinite(chosen) ? static_cast<double>(chosen) - log_norm
                                               : -std::numeric_limits<double>::infinity();
  min_logprob_ = n_ == 0 ? logprob : std::min(min_logprob_, logprob);
  sum_logprob_ += logprob;
  sum_entropy_ += entropy;
  sum_margin_ += p1 - p2;
  ++n_;
}

Confidence ConfidenceAccumulator::result() const {
  Confidence c;
  c.n_tokens = n_;
  if (n_ == 0) return c;
  c.mean_logprob = sum_logprob_ / n_;
  c.min_logprob = min_logprob_;
  c.mean_entropy = sum_entropy_ / n_;
  c.mean_margin = sum_margin_ / n_;
  return c;
}

}  // namespace edgelm::hybrid
