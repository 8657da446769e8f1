// Token sampling: a llama.cpp-like chain of logit transforms and truncation filters, a portable
// seeded PRNG, and OpenAI-style log-probabilities.
//
// The chain, in order (each step sees only the candidates the previous steps kept):
//   1. grammar mask    tokens the attached GrammarMatcher forbids are removed (grammar.h)
//   2. logit bias      logit[t] += bias (a bias of -inf bans t)
//   3. penalties       over the last repeat_last_n accepted tokens, for each token seen c > 0
//   times:
//                      logit /= repeat_penalty if logit > 0 else logit *= repeat_penalty;
//                      logit -= c * frequency_penalty + presence_penalty
//   -- temperature == 0 stops here: greedy argmax (lowest id on ties) --
//   4. top-k           keep the k highest logits (ties broken by lower id)
//   5. typical         locally typical sampling: keep the tokens whose surprisal is closest to the
//                      entropy until their mass reaches typical_p
//   6. top-p           keep the smallest prefix (by descending probability) whose mass >= top_p
//   7. min-p           keep tokens with p >= min_p * p_max
//   8. temperature     logit /= temperature, softmax, draw
// Steps 5-7 use softmax(logit) over the surviving candidates at temperature 1, like llama.cpp's
// default order, so temperature reshapes only the final draw. Every filter keeps at least one
// token.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <utility>
#include <vector>

#include "edgelm/error.h"

namespace edgelm::runtime {

class GrammarMatcher;

struct SamplerParams {
  float temperature = 0.8f;     // 0 => greedy
  int top_k = 40;               // <= 0 => off
  float top_p = 0.95f;          // (0, 1]; 1 => off
  float min_p = 0.05f;          // [0, 1]; 0 => off
  float typical_p = 1.0f;       // (0, 1]; 1 => off
  float repeat_penalty = 1.0f;  // > 0; 1 => off
  int repeat_last_n = 64;       // >= 0; 0 => penalties off
  float frequency_penalty = 0.0f;
  float presence_penalty = 0.0f;
  std::vector<std::pair<int32_t, float>> logit_bias;  // (token id, added to its logit)
  uint64_t seed = 0;

  // kInvalidArgument naming the field and the accepted range.
  Status validate() const;
};

// Deterministic on every platform: xoshiro256** seeded through splitmix64, and our own
// integer -> double conversion (std::uniform_real_distribution's output is implementation-defined).
class Rng {
 public:
  explicit Rng(uint64_t seed);
  uint64_t next_u64();
  double next_unit();  // uniform in [0, 1) with 53 random bits

 private:
  uint64_t state_[4];
};

struct TokenLogprob {
  int32_t token = -1;
  float logprob = 0.0f;
};

// log-softmax of the raw model logits (before bias, penalties, temperature or grammar), which
// is what OpenAI's logprobs / top_logprobs report.
struct Logprobs {
  TokenLogprob chosen;
  std::vector<TokenLogprob>
      top;  // the top_n most likely tokens, most likely first (ties: lower id)
};

// Fills `out` (reusing its storage). kInvalidArgument for an out-of-range token, a negative top_n,
// or logits containing NaN/+inf.
Status compute_logprobs(std::span<const float> logits, int32_t token, int top_n, Logprobs& out);

class Sampler {
 public:
  // Call params.validate() first; an invalid configuration is reported by every sample() call.
  explicit Sampler(SamplerParams params);
  ~Sampler();
  Sampler(Sampler&&) noexcept;
  Sampler& operator=(Sampler&&) noexcept;

  // Picks the next token from a logit vector (one float per vocabulary entry).
  // Errors: empty logits, NaN or +inf logits, a logit_bias id outside the vocabulary, no token
  // left (every logit -inf or everything masked by the grammar), grammar vocabulary size mismatch.
  Result<int32_t> sample(std::span<const float> logits);

  // Records a token that is now part of the sequence (penalty history, grammar state).
  // Fails only when a grammar is attached, advance_grammar is set, and it does not allow `token`.
  // Prompt tokens belong in the penalty history but not in the grammar: pass false for them.
  Status accept(int32_t token, bool advance_grammar = true);

  // Clears the history, restarts the grammar and reseeds the PRNG with params().seed.
  void reset();

  // Constrains sampling to a grammar from now on (nullptr detaches).
  void set_grammar(std::unique_ptr<GrammarMatcher> grammar);
  GrammarMatcher* grammar() { return grammar_.get(); }

  const SamplerParams& params() const { return params_; }

  // The candidates and probabilities the last sample() drew from (after every filter, with
  // temperature applied), in the chain's internal order. For tests and diagnostics.
  struct Candidate {
    int32_t token;
    float logit;
    float prob;
  };
  std::span<const Candidate> last_candidates() const { return candidates_; }

  // Runs steps 1-7 of the chain without drawing and returns the surviving candidates with their
  // temperature-scaled probabilities. Used by sample() and by tests of each filter.
  Result<std::span<const Candidate>> filter(std::span<const float> logits);

 private:
  Status build_candidates(std::span<const float> logits);
  void apply_penalties();
  void apply_top_k();
  void apply_typical();
  void apply_top_p();
  void apply_min_p();
  void apply_temperature();
  void softmax();
  void sort_by_logit();

  SamplerParams params_;
  Status params_status_;
  Rng rng_;
  std::vector<Candidate> candidates_;  // reused across calls
  std::vector<int32_t> history_;       // ring buffer of the last repeat_last_n tokens
  size_t history_next_ = 0;
  std::vector<std::pair<int32_t, int>> token_counts_;  // reused scratch for penalties
  std::vector<uint8_t> allowed_;                       // reused grammar mask
  std::unique_ptr<GrammarMatcher> grammar_;
  bool sorted_ = false;
};

}  // namespace edgelm::runtime
