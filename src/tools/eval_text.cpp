// Perplexity and base-vs-candidate distribution comparison over sliding windows (see eval.h).
#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "edgelm/eval.h"

namespace edgelm::tools {
namespace {

constexpr int32_t kDefaultWindow = 512;
// Logits are requested in slices of this many tokens so a large vocabulary never needs a
// [window][n_vocab] buffer.
constexpr int64_t kLogitSlice = 64;

// Positions [begin, end) of the token stream; predictions of tokens [first_scored, end) count.
struct Window {
  int64_t begin = 0;
  int64_t end = 0;
  int64_t first_scored = 0;
};

Result<WindowOptions> resolve(const model::Model& model, const WindowOptions& options,
                              size_t n_tokens) {
  WindowOptions o = options;
  if (o.n_ctx == 0) o.n_ctx = std::min(model.hparams().n_ctx_train, kDefaultWindow);
  if (o.n_ctx < 2) {
    return make_error(ErrorCode::kInvalidArgument,
                      "eval: window length " + std::to_string(o.n_ctx) + " must be at least 2");
  }
  if (o.stride == 0) o.stride = o.n_ctx / 2;
  if (o.stride < 1 || o.stride >= o.n_ctx) {
    return make_error(ErrorCode::kInvalidArgument,
                      "eval: stride " + std::to_string(o.stride) + " must be in [1, " +
                          std::to_string(o.n_ctx) + ") for window length " +
                          std::to_string(o.n_ctx));
  }
  if (n_tokens < 2) {
    return make_error(ErrorCode::kInvalidArgument,
                      "eval: the text has " + std::to_string(n_tokens) +
                          " tokens; at least 2 are needed to score a prediction");
  }
  return o;
}

std::vector<Window> plan_windows(int64_t n_tokens, int64_t n_ctx, int64_t stride) {
  std::vector<Window> windows;
  int64_t scored_until = 1;
  for (int64_t begin = 0;; begin += stride) {
    const int64_t end = std::min(begin + n_ctx, n_tokens);
    windows.push_back({begin, end, scored_until});
    scored_until = end;
    if (end == n_tokens) break;
  }
  return windows;
}

// log-softmax of one row, in double: out[i] = logits[i] - logsumexp(logits).
void log_softmax(const float* logits, int64_t n, std::vector<double>& out) {
  out.resize(static_cast<size_t>(n));
  double max = logits[0];
  for (int64_t i = 1; i < n; ++i) max = std::max(max, static_cast<double>(logits[i]));
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += std::exp(logits[i] - max);
  const double lse = max + std::log(sum);
  for (int64_t i = 0; i < n; ++i) out[static_cast<size_t>(i)] = logits[i] - lse;
}

int64_t argmax(const float* x, int64_t n) {
  return std::max_element(x, x + n) - x;
}

// Walks the windows of one model (or two, in lockstep) and calls score(row logits..., target)
// for every scored position.
class WindowRunner {
 public:
  static Result<WindowRunner> create(std::vector<const model::Model*> models,
                                     const WindowOptions& o) {
    WindowRunner runner;
    model::ContextOptions copts;
    copts.n_ctx = o.n_ctx;
    copts.n_threads = std::max(1, o.n_threads);
    copts.n_batch = o.n_batch;
    copts.kv_type = o.kv_type;
    for (const model::Model* m : models) {
      EDGELM_TRY(auto ctx, model::Context::create(*m, copts));
      runner.contexts_.push_back(std::move(ctx));
    }
    return runner;
  }

  // score(std::vector<const float*> rows, int32_t target) for each scored position.
  template <class Score>
  Status run(std::span<const int32_t> tokens, const std::vector<Window>& windows, Score&& score) {
    std::vector<std::span<const float>> logits(contexts_.size());
    std::vector<const float*> rows(contexts_.size());
    const int64_t n_vocab = contexts_[0]->model().hparams().n_vocab;
    for (const Window& w : windows) {
      for (auto& ctx : contexts_) ctx->truncate(0);
      for (int64_t start = w.begin; start < w.end; start += kLogitSlice) {
        const int64_t stop = std::min(start + kLogitSlice, w.end);
        // Row r of a slice predicts token start + r + 1; only slices holding a scored
        // prediction need every row's logits.
        const bool needed = stop >= w.first_scored;
        const auto slice =
            tokens.subspan(static_cast<size_t>(start), static_cast<size_t>(stop - start));
        for (size_t m = 0; m < contexts_.size(); ++m) {
          EDGELM_TRY(logits[m], contexts_[m]->decode(slice, needed));
        }
        if (!needed) continue;
        for (int64_t target = std::max(start + 1, w.first_scored); target <= stop && target < w.end;
             ++target) {
          const int64_t row = target - 1 - start;
          for (size_t m = 0; m < contexts_.size(); ++m) {
            rows[m] = logits[m].data() + row * n_vocab;
          }
          score(rows, tokens[static_cast<size_t>(target)]);
        }
      }
    }
    return {};
  }

 private:
  std::vector<std::unique_ptr<model::Context>> contexts_;
};

PerplexityResult finish(double nll_sum, int64_t n_scored, int32_t n_windows) {
  PerplexityResult r;
  r.n_scored = n_scored;
  r.n_windows = n_windows;
  r.mean_nll = n_scored > 0 ? nll_sum / static_cast<double>(n_scored) : 0.0;
  r.perplexity = std::exp(r.mean_nll);
  return r;
}

double percentile(std::vector<double> xs, double p) {
  if (xs.empty()) return 0;
  std::sort(xs.begin(), xs.end());
  const double rank = p * static_cast<double>(xs.size() - 1);
  const auto lo = static_cast<size_t>(rank);
  const size_t hi = std::min(lo + 1, xs.size() - 1);
  return xs[lo] + (xs[hi] - xs[lo]) * (rank - static_cast<double>(lo));
}

}  // namespace

Result<PerplexityResult> perplexity(const model::Model& model, std::span<const int32_t> tokens,
                                    const WindowOptions& options) {
  EDGELM_TRY(WindowOptions o, resolve(model, options, tokens.size()));
  const auto windows = plan_windows(static_cast<int64_t>(tokens.size()), o.n_ctx, o.stride);
  EDGELM_TRY(WindowRunner runner, WindowRunner::create({&model}, o));
  const int64_t n_vocab = model.hparams().n_vocab;
  std::vector<double> logp;
  double nll = 0;
  int64_t n_scored = 0;
  EDGELM_CHECK(runner.run(tokens, windows, [&](const std::vector<const float*>& rows, int32_t t) {
    log_softmax(rows[0], n_vocab, logp);
    nll -= logp[static_cast<size_t>(t)];
    ++n_scored;
  }));
  return finish(nll, n_scored, static_cast<int32_t>(windows.size()));
}

Result<DistributionComparison> compare_distributions(const model::Model& base,
                                                     const model::Model& candidate,
                                                     std::span<const int32_t> tokens,
                                                     const WindowOptions& options) {
  const int64_t n_vocab = base.hparams().n_vocab;
  if (candidate.hparams().n_vocab != n_vocab) {
    return make_error(ErrorCode::kInvalidArgument,
                      "eval: the candidate's vocabulary has " +
                          std::to_string(candidate.hparams().n_vocab) + " tokens, the base's " +
                          std::to_string(n_vocab) + "; KL needs the same vocabulary");
  }
  EDGELM_TRY(WindowOptions o, resolve(base, options, tokens.size()));
  const auto windows = plan_windows(static_cast<int64_t>(tokens.size()), o.n_ctx, o.stride);
  EDGELM_TRY(WindowRunner runner, WindowRunner::create({&base, &candidate}, o));
  std::vector<double> logp_base, logp_cand, kls;
  double nll_base = 0, nll_cand = 0;
  int64_t agree = 0;
  EDGELM_CHECK(runner.run(tokens, windows, [&](const std::vector<const float*>& rows, int32_t t) {
    log_softmax(rows[0], n_vocab, logp_base);
    log_softmax(rows[1], n_vocab, logp_cand);
    double kl = 0;
    for (size_t i = 0; i < logp_base.size(); ++i) {
      kl += std::exp(logp_base[i]) * (logp_base[i] - logp_cand[i]);
    }
    kls.push_back(std::max(kl, 0.0));  // rounding can leave -1e-17 for identical rows
    nll_base -= logp_base[static_cast<size_t>(t)];
    nll_cand -= logp_cand[static_cast<size_t>(t)];
    agree += argmax(rows[0], n_vocab) == argmax(rows[1], n_vocab) ? 1 : 0;
  }));
  DistributionComparison c;
  const auto n = static_cast<int64_t>(kls.size());
  double sum = 0;
  for (double kl : kls) sum += kl;
  c.mean_kl = sum / static_cast<double>(n);
  c.max_kl = *std::max_element(kls.begin(), kls.end());
  c.p99_kl = percentile(std::move(kls), 0.99);
  c.top1_agreement = static_cast<double>(agree) / static_cast<double>(n);
  c.base = finish(nll_base, n, static_cast<int32_t>(windows.size()));
  c.candidate = finish(nll_cand, n, static_cast<int32_t>(windows.size()));
  return c;
}

Result<std::vector<int32_t>> tokenize_text(const tokenizer::Tokenizer& tokenizer,
                                           std::string_view text) {
  EDGELM_TRY(std::vector<int32_t> ids, tokenizer.encode(text, false, false));
  if (tokenizer.add_bos() && tokenizer.bos() != tokenizer::kNoToken) {
    ids.insert(ids.begin(), tokenizer.bos());
  }
  return ids;
}

}  // namespace edgelm::tools
