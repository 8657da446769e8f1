// Accuracy measurement for compressed models: perplexity over text, the divergence of a
// candidate's next-token distributions from a base model's, accuracy on a labelled validation set,
// and a gate that turns those numbers into pass/fail (the OTA update gate reuses it).
//
// Every function takes already-loaded models and token ids, never prints, and returns an Error
// naming what is wrong. Typical use:
//
//   auto tokens = tools::tokenize_text(tokenizer, text);            // BOS + text
//   auto cmp = tools::compare_distributions(base, candidate, *tokens, {});
//   EvalMetrics m{...};  m.mean_kl = cmp->mean_kl;  ...
//   auto gate = tools::check_gate(*tools::parse_gate_policy(json), m);
//   if (!gate.passed) for (auto& f : gate.failures) ...
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "edgelm/error.h"
#include "edgelm/model.h"
#include "edgelm/tokenizer.h"

namespace edgelm::tools {

// ---- Text scoring over sliding windows ------------------------------------------------------
//
// The token stream t[0..N) is covered by windows of n_ctx tokens that start every `stride`
// tokens: [0, n_ctx), [stride, stride + n_ctx), ... (the last one is cut at N). Each window is
// evaluated from an empty KV cache. The first window scores every prediction it makes
// (t[1] from t[0], t[2] from t[0..1], ...); each later window scores only the tokens no earlier
// window scored, i.e. its last `stride` positions. So every token but t[0] is scored exactly
// once, and (past the first window) always with at least n_ctx - stride tokens of context. With
// the default stride n_ctx / 2 that is "score only the second half of each window except the
// first", like llama-perplexity, but with overlapping windows so no token is scored from a cold
// start except in the first window.
struct WindowOptions {
  int32_t n_ctx = 0;   // window length in tokens; 0: min(the model's training context, 512)
  int32_t stride = 0;  // 0: n_ctx / 2; must be in [1, n_ctx)
  int n_threads = 1;
  int32_t n_batch = 512;
  TensorType kv_type = TensorType::kF16;  // KV cache of the evaluating contexts (as at run time)
};

struct PerplexityResult {
  double perplexity = 0;  // exp(mean negative log-likelihood)
  double mean_nll = 0;    // nats per scored token
  int64_t n_scored = 0;   // tokens scored (N - 1)
  int32_t n_windows = 0;
};

// Perplexity of `model` over `tokens` (at least 2). Errors: too few tokens, bad window options,
// token ids outside the vocabulary.
Result<PerplexityResult> perplexity(const model::Model& model, std::span<const int32_t> tokens,
                                    const WindowOptions& options = {});

// How far a candidate's next-token distributions are from the base model's, over the same
// windows and scored positions as perplexity(). KL is KL(P_base || P_candidate) in nats per
// position; top-1 agreement is the share of positions where both argmaxes are the same token.
struct DistributionComparison {
  double mean_kl = 0;
  double p99_kl = 0;  // 99th percentile (linear interpolation between order statistics)
  double max_kl = 0;
  double top1_agreement = 0;  // in [0, 1]
  PerplexityResult base;      // both perplexities come for free from the same logits
  PerplexityResult candidate;
};

// Both models must have the same vocabulary size (kInvalidArgument otherwise).
Result<DistributionComparison> compare_distributions(const model::Model& base,
                                                     const model::Model& candidate,
                                                     std::span<const int32_t> tokens,
                                                     const WindowOptions& options = {});

// The text as the model reads it: the tokenizer's BOS (if it adds one) followed by the text.
Result<std::vector<int32_t>> tokenize_text(const tokenizer::Tokenizer& tokenizer,
                                           std::string_view text);

// ---- Labelled validation sets ---------------------------------------------------------------

// One line of a VALSET.jsonl file, in one of two forms:
//   {"prompt": "...", "answer": "..."}                    generation: greedy decode, then match
//   {"prompt": "...", "choices": ["...", ...], "label": i} choice: highest total log-likelihood
// Optional "match": "prefix" (default: the generated text, leading whitespace trimmed, starts
// with the trimmed answer) or "exact" (the generated text up to the first newline or end of
// generation, trimmed, equals the trimmed answer).
struct TaskItem {
  std::string prompt;
  std::string answer;                // generation items
  std::vector<std::string> choices;  // choice items
  int32_t label = -1;
  bool exact_match = false;
  bool is_choice() const { return !choices.empty(); }
};

// Parses JSONL (blank lines skipped); errors name the line and field.
Result<std::vector<TaskItem>> parse_task_jsonl(std::string_view text);

struct TaskOptions {
  int32_t max_new_tokens = 32;  // generation items: greedy tokens at most
  int n_threads = 1;
  TensorType kv_type = TensorType::kF16;  // KV cache of the evaluating context (as at run time)
};

struct TaskItemResult {
  bool correct = false;
  std::string generated;                // generation items: the decoded greedy continuation
  int32_t chosen = -1;                  // choice items: index of the most likely choice
  std::vector<double> choice_logprobs;  // choice items: total log p(choice | prompt), nats
};

struct TaskResult {
  double accuracy = 0;  // n_correct / items
  int32_t n_correct = 0;
  std::vector<TaskItemResult> items;
};

// Choice items: each choice's tokens are those of tokenize(prompt + choice) after the longest
// prefix shared with tokenize(prompt); their log-probabilities are summed. Errors: a prompt or
// choice that does not fit the model's context, an item whose choice adds no tokens.
Result<TaskResult> task_accuracy(const model::Model& model, const tokenizer::Tokenizer& tokenizer,
                                 const std::vector<TaskItem>& items,
                                 const TaskOptions& options = {});

// ---- Regression gate ------------------------------------------------------------------------

// Thresholds a candidate must meet; absent ones are not checked. A threshold whose metric was
// not measured fails (a gate must not pass by omission).
struct GatePolicy {
  std::optional<double> max_ppl_increase_pct;  // 100 * (ppl_candidate - ppl_base) / ppl_base
  std::optional<double> max_mean_kl;           // nats
  std::optional<double> max_p99_kl;            // nats
  std::optional<double> min_top1_agreement;    // [0, 1]
  std::optional<double> max_accuracy_drop;     // accuracy_base - accuracy_candidate, in [0, 1]
  std::optional<double> min_accuracy;          // candidate accuracy, in [0, 1]
};

// JSON object with the keys above (numbers); unknown keys and non-numbers are errors.
Result<GatePolicy> parse_gate_policy(std::string_view json_text);

// What was measured for one candidate (and its base, when given).
struct EvalMetrics {
  std::optional<double> ppl_base, ppl_candidate;
  std::optional<double> mean_kl, p99_kl, top1_agreement;
  std::optional<double> accuracy_base, accuracy_candidate;
};

struct GateFailure {
  std::string threshold;  // "max_mean_kl"
  std::string message;    // "max_mean_kl: mean KL 0.0412 > 0.02" / "...: not measured (needs --kl)"
};

struct GateResult {
  bool passed = true;
  std::vector<GateFailure> failures;
};

GateResult check_gate(const GatePolicy& policy, const EvalMetrics& metrics);

// ---- Report and plot ------------------------------------------------------------------------

// One evaluated model, for tables, JSON and the size-vs-quality plot.
struct EvalEntry {
  std::string name;  // file name
  uint64_t file_bytes = 0;
  bool is_base = false;
  EvalMetrics metrics;  // candidate fields; base fields for the comparison's base
  std::optional<GateResult> gate;
};

nlohmann::json eval_to_json(const std::vector<EvalEntry>& entries);
std::string eval_to_table(const std::vector<EvalEntry>& entries);

// An SVG scatter plot of file size (MiB, x) against the first quality metric all entries have:
// perplexity, else mean KL, else task accuracy. Points are labelled with the entry names.
// kInvalidArgument when no metric is common to all entries.
Result<std::string> size_quality_svg(const std::vector<EvalEntry>& entries);

}  // namespace edgelm::tools
