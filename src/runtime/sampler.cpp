#include "edgelm/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "edgelm/grammar.h"

namespace edgelm::runtime {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

Error invalid(std::string message) {
  return make_error(ErrorCode::kInvalidArgument, std::move(message));
}

uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

uint64_t rotl(uint64_t x, int k) {
  return (x << k) | (x >> (64 - k));
}

// Checks every logit once so later steps can rely on "finite or -inf".
Status check_logits(std::span<const float> logits) {
  if (logits.empty()) return invalid("sampler: empty logit vector");
  if (logits.size() > static_cast<size_t>(std::numeric_limits<int32_t>::max())) {
    return invalid("sampler: logit vector larger than the int32 token id range");
  }
  for (size_t i = 0; i < logits.size(); ++i) {
    if (std::isnan(logits[i]) || logits[i] == std::numeric_limits<float>::infinity()) {
      return invalid("sampler: logit of token " + std::to_string(i) + " is " +
                     (std::isnan(logits[i]) ? "NaN" : "+inf"));
    }
  }
  return {};
}

}  // namespace

Status SamplerParams::validate() const {
  if (!(temperature >= 0.0f) || std::isinf(temperature)) {
    return invalid("sampler: temperature must be a finite number >= 0 (0 = greedy), got " +
                   std::to_string(temperature));
  }
  if (!(top_p > 0.0f && top_p <= 1.0f)) {
    return invalid("sampler: top_p must be in (0, 1], got " + std::to_string(top_p));
  }
  if (!(min_p >= 0.0f && min_p <= 1.0f)) {
    return invalid("sampler: min_p must be in [0, 1], got " + std::to_string(min_p));
  }
  if (!(typical_p > 0.0f && typical_p <= 1.0f)) {
    return invalid("sampler: typical_p must be in (0, 1], got " + std::to_string(typical_p));
  }
  if (!(repeat_penalty > 0.0f) || std::isinf(repeat_penalty)) {
    return invalid("sampler: repeat_penalty must be a finite number > 0 (1 = off), got " +
                   std::to_string(repeat_penalty));
  }
  if (repeat_last_n < 0) {
    return invalid("sampler: repeat_last_n must be >= 0, got " + std::to_string(repeat_last_n));
  }
  if (!std::isfinite(frequency_penalty) || !std::isfinite(presence_penalty)) {
    return invalid("sampler: frequency_penalty and presence_penalty must be finite");
  }
  for (const auto& [token, bias] : logit_bias) {
    if (token < 0) return invalid("sampler: logit_bias token id " + std::to_string(token) + " < 0");
    if (std::isnan(bias) || bias == std::numeric_limits<float>::infinity()) {
      return invalid("sampler: logit_bias for token " + std::to_string(token) +
                     " must be a number or -inf");
    }
  }
  return {};
}

Rng::Rng(uint64_t seed) {
  uint64_t s = seed;
  for (uint64_t& word : state_) word = splitmix64(s);
}

uint64_t Rng::next_u64() {
  const uint64_t result = rotl(state_[1] * 5, 7) * 9;
  const uint64_t t = state_[1] << 17;
  state_[2] ^= state_[0];
  state_[3] ^= state_[1];
  state_[1] ^= state_[2];
  state_[0] ^= state_[3];
  state_[2] ^= t;
  state_[3] = rotl(state_[3], 45);
  return result;
}

double Rng::next_unit() {
  return static_cast<double>(next_u64() >> 11) * 0x1.0p-53;
}

Status compute_logprobs(std::span<const float> logits, int32_t token, int top_n, Logprobs& out) {
  EDGELM_CHECK(check_logits(logits));
  if (token < 0 || static_cast<size_t>(token) >= logits.size()) {
    return invalid("logprobs: token id " + std::to_string(token) + " outside the vocabulary of " +
                   std::to_string(logits.size()));
  }
  if (top_n < 0) return invalid("logprobs: top_n must be >= 0, got " + std::to_string(top_n));
  const float max_logit = *std::max_element(logits.begin(), logits.end());
  if (max_logit == kNegInf) return invalid("logprobs: every logit is -inf");
  double sum = 0.0;
  for (float logit : logits) sum += std::exp(static_cast<double>(logit) - max_logit);
  const double log_norm = max_logit + std::log(sum);
  auto logprob = [&](int32_t id) {
    return static_cast<float>(static_cast<double>(logits[static_cast<size_t>(id)]) - log_norm);
  };
  out.chosen = {token, logprob(token)};

  // A min-heap (by rank) of the best top_n ids; "better" = higher logit, then lower id.
  auto better = [&](int32_t a, int32_t b) {
    const float la = logits[static_cast<size_t>(a)], lb = logits[static_cast<size_t>(b)];
    return la != lb ? la > lb : a < b;
  };
  auto heap_cmp = [&](const TokenLogprob& a, const TokenLogprob& b) {
    return better(a.token, b.token);
  };
  out.top.clear();
  const size_t n = std::min(static_cast<size_t>(top_n), logits.size());
  for (size_t i = 0; i < logits.size() && n > 0; ++i) {
    const auto id = static_cast<int32_t>(i);
    if (out.top.size() < n) {
      out.top.push_back({id, 0.0f});
      std::push_heap(out.top.begin(), out.top.end(), heap_cmp);
    } else if (better(id, out.top.front().token)) {
      std::pop_heap(out.top.begin(), out.top.end(), heap_cmp);
      out.top.back() = {id, 0.0f};
      std::push_heap(out.top.begin(), out.top.end(), heap_cmp);
    }
  }
  std::sort_heap(out.top.begin(), out.top.end(), heap_cmp);
  for (TokenLogprob& entry : out.top) entry.logprob = logprob(entry.token);
  return {};
}

Sampler::Sampler(SamplerParams params)
    : params_(std::move(params)), params_status_(params_.validate()), rng_(params_.seed) {
  history_.reserve(static_cast<size_t>(std::max(params_.repeat_last_n, 0)));
}

Sampler::~Sampler() = default;
Sampler::Sampler(Sampler&&) noexcept = default;
Sampler& Sampler::operator=(Sampler&&) noexcept = default;

void Sampler::set_grammar(std::unique_ptr<GrammarMatcher> grammar) {
  grammar_ = std::move(grammar);
}

void Sampler::reset() {
  history_.clear();
  history_next_ = 0;
  rng_ = Rng(params_.seed);
  if (grammar_) grammar_->reset();
}

Status Sampler::accept(int32_t token, bool advance_grammar) {
  if (grammar_ && advance_grammar) EDGELM_CHECK(grammar_->accept_token(token));
  const auto capacity = static_cast<size_t>(params_.repeat_last_n);
  if (capacity == 0) return {};
  if (history_.size() < capacity) {
    history_.push_back(token);
  } else {
    history_[history_next_] = token;
    history_next_ = (history_next_ + 1) % capacity;
  }
  return {};
}

Status Sampler::build_candidates(std::span<const float> logits) {
  EDGELM_CHECK(params_status_);
  EDGELM_CHECK(check_logits(logits));
  const size_t n_vocab = logits.size();
  candidates_.resize(n_vocab);
  for (size_t i = 0; i < n_vocab; ++i) candidates_[i] = {static_cast<int32_t>(i), logits[i], 0.0f};

  // Index-addressed steps run while candidates_[id].token == id.
  if (grammar_) {
    if (grammar_->vocab_size() != n_vocab) {
      return invalid("sampler: grammar vocabulary has " + std::to_string(grammar_->vocab_size()) +
                     " tokens but the logit vector has " + std::to_string(n_vocab));
    }
    EDGELM_CHECK(grammar_->allowed_tokens(allowed_));
    for (size_t i = 0; i < n_vocab; ++i) {
      if (!allowed_[i]) candidates_[i].logit = kNegInf;
    }
  }
  for (const auto& [token, bias] : params_.logit_bias) {
    if (static_cast<size_t>(token) >= n_vocab) {
      return invalid("sampler: logit_bias token id " + std::to_string(token) +
                     " outside the vocabulary of " + std::to_string(n_vocab));
    }
    candidates_[static_cast<size_t>(token)].logit += bias;
  }
  apply_penalties();

  candidates_.erase(std::remove_if(candidates_.begin(), candidates_.end(),
                                   [](const Candidate& c) { return !(c.logit > kNegInf); }),
                    candidates_.end());
  if (candidates_.empty()) {
    return make_error(ErrorCode::kInvalidArgument,
                      grammar_ ? "sampler: the grammar and logits leave no token to sample"
                               : "sampler: every logit is -inf, no token to sample");
  }
  sorted_ = false;
  return {};
}

void Sampler::apply_penalties() {
  if (history_.empty()) return;
  const bool active = params_.repeat_penalty != 1.0f || params_.frequency_penalty != 0.0f ||
                      params_.presence_penalty != 0.0f;
  if (!active) return;
  token_counts_.clear();
  for (int32_t token : history_) token_counts_.push_back({token, 1});
  std::sort(token_counts_.begin(), token_counts_.end());
  size_t out = 0;
  for (size_t i = 0; i < token_counts_.size(); ++i) {
    if (out > 0 && token_counts_[out - 1].first == token_counts_[i].first) {
      ++token_counts_[out - 1].second;
    } else {
      token_counts_[out++] = token_counts_[i];
    }
  }
  token_counts_.resize(out);
  for (const auto& [token, count] : token_counts_) {
    if (token < 0 || static_cast<size_t>(token) >= candidates_.size()) continue;
    float& logit = candidates_[static_cast<size_t>(token)].logit;
    if (logit == kNegInf) continue;
    logit = logit > 0.0f ? logit / params_.repeat_penalty : logit * params_.repeat_penalty;
    logit -= static_cast<float>(count) * params_.frequency_penalty + params_.presence_penalty;
  }
}

void Sampler::sort_by_logit() {
  if (sorted_) return;
  std::sort(candidates_.begin(), candidates_.end(), [](const Candidate& a, const Candidate& b) {
    return a.logit != b.logit ? a.logit > b.logit : a.token < b.token;
  });
  sorted_ = true;
}

// prob = softmax(logit) over the current candidates, computed with double accumulation.
void Sampler::softmax() {
  float max_logit = kNegInf;
  for (const Candidate& c : candidates_) max_logit = std::max(max_logit, c.logit);
  double sum = 0.0;
  for (Candidate& c : candidates_) {
    c.prob = std::exp(c.logit - max_logit);
    sum += c.prob;
  }
  for (Candidate& c : candidates_) c.prob = static_cast<float>(c.prob / sum);
}

void Sampler::apply_top_k() {
  const size_t k = static_cast<size_t>(params_.top_k);
  if (params_.top_k <= 0 || k >= candidates_.size()) return;
  auto by_logit = [](const Candidate& a, const Candidate& b) {
    return a.logit != b.logit ? a.logit > b.logit : a.token < b.token;
  };
  if (!sorted_)
    std::partial_sort(candidates_.begin(), candidates_.begin() + k, candidates_.end(), by_logit);
  candidates_.resize(k);
  sorted_ = true;
}

void Sampler::apply_typical() {
  if (params_.typical_p >= 1.0f || candidates_.size() <= 1) return;
  softmax();
  double entropy = 0.0;
  for (const Candidate& c : candidates_) {
    if (c.prob > 0.0f) entropy -= c.prob * std::log(static_cast<double>(c.prob));
  }
  // Order by |surprisal - entropy|; the `logit` field is restored from the kept copy afterwards.
  auto distance = [&](const Candidate& c) {
    return std::fabs(-std::log(static_cast<double>(c.prob)) - entropy);
  };
  std::sort(candidates_.begin(), candidates_.end(), [&](const Candidate& a, const Candidate& b) {
    const double da = distance(a), db = distance(b);
    return da != db ? da < db : a.token < b.token;
  });
  double cumulative = 0.0;
  size_t keep = candidates_.size();
  for (size_t i = 0; i < candidates_.size(); ++i) {
    cumulative += candidates_[i].prob;
    if (cumulative >= params_.typical_p) {
      keep = i + 1;
      break;
    }
  }
  candidates_.resize(keep);
  sorted_ = false;
}

void Sampler::apply_top_p() {
  if (params_.top_p >= 1.0f || candidates_.size() <= 1) return;
  sort_by_logit();
  softmax();
  double cumulative = 0.0;
  for (size_t i = 0; i < candidates_.size(); ++i) {
    cumulative += candidates_[i].prob;
    if (cumulative >= params_.top_p) {
      candidates_.resize(i + 1);
      return;
    }
  }
}

void Sampler::apply_min_p() {
  if (params_.min_p <= 0.0f || candidates_.size() <= 1) return;
  float max_logit = kNegInf;
  for (const Candidate& c : candidates_) max_logit = std::max(max_logit, c.logit);
  // p >= min_p * p_max  <=>  logit - max_logit >= log(min_p); the max itself always survives.
  const double threshold = std::log(static_cast<double>(params_.min_p));
  candidates_.erase(std::remove_if(candidates_.begin(), candidates_.end(),
                                   [&](const Candidate& c) {
                                     return static_cast<double>(c.logit) - max_logit < threshold;
                                   }),
                    candidates_.end());
}

// No sort here: the draw walks the CDF in whatever (deterministic) order the filters left, which
// spares a full sort of the vocabulary when top-k and top-p are off.
void Sampler::apply_temperature() {
  for (Candidate& c : candidates_) c.logit /= params_.temperature;
  softmax();
}

Result<std::span<const Sampler::Candidate>> Sampler::filter(std::span<const float> logits) {
  EDGELM_CHECK(build_candidates(logits));
  if (params_.temperature == 0.0f) {
    // Greedy: the single best candidate (lowest id on ties, since candidates are in id order).
    size_t best = 0;
    for (size_t i = 1; i < candidates_.size(); ++i) {
      if (candidates_[i].logit > candidates_[best].logit) best = i;
    }
    candidates_[0] = candidates_[best];
    candidates_[0].prob = 1.0f;
    candidates_.resize(1);
    return std::span<const Candidate>(candidates_);
  }
  apply_top_k();
  apply_typical();
  apply_top_p();
  apply_min_p();
  apply_temperature();
  return std::span<const Candidate>(candidates_);
}

Result<int32_t> Sampler::sample(std::span<const float> logits) {
  EDGELM_TRY(auto kept, filter(logits));
  if (kept.size() == 1) return kept[0].token;
  // Inverse-CDF draw over the candidates in the order the chain left them.
  const double target = rng_.next_unit();
  double cumulative = 0.0;
  for (const Candidate& c : kept) {
    cumulative += c.prob;
    if (target < cumulative) return c.token;
  }
  return kept.back().token;  // rounding left target just above the final cumulative sum
}

}  // namespace edgelm::runtime
