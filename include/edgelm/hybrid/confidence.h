// How sure the local model was of its answer, from the distributions it sampled from: the mean
// and minimum log-probability of the chosen tokens, the mean entropy (nats) of the distributions,
// and the mean margin between the two most likely tokens' probabilities. All are computed from
// the model's raw logits (softmax at temperature 1, before sampler filters), so they describe the
// model, not the sampling settings.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <span>
#include <string_view>

#include "edgelm/error.h"

namespace edgelm::hybrid {

struct Confidence {
  int32_t n_tokens = 0;
  double mean_logprob = 0;  // <= 0
  double min_logprob = 0;   // <= 0
  double mean_entropy = 0;  // >= 0, nats
  double mean_margin = 0;   // p(top-1) - p(top-2), in [0, 1]
};
nlohmann::json to_json(const Confidence& confidence);

// Which number is compared with the policy's threshold; each is oriented so that larger means
// more confident (entropy is negated).
enum class ConfidenceMetric { kMeanLogprob, kMinLogprob, kNegMeanEntropy, kMeanMargin };
std::string_view confidence_metric_name(ConfidenceMetric metric);
Result<ConfidenceMetric> parse_confidence_metric(std::string_view name);
// The metric's value; an answer without tokens has the least confidence possible (-infinity).
double confidence_value(const Confidence& confidence, ConfidenceMetric metric);

class ConfidenceAccumulator {
 public:
  // One generated token and the logits it was drawn from. Non-finite logits count as -infinity
  // (masked tokens); a row with no finite logit or a token outside the row is ignored.
  void add(std::span<const float> logits, int32_t token);
  Confidence result() const;

 private:
  int32_t n_ = 0;
  double sum_logprob_ = 0;
  double min_logprob_ = 0;
  double sum_entropy_ = 0;
  double sum_margin_ = 0;
};

}  // namespace edgelm::hybrid
