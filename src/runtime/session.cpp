#include "edgelm/session.h"

#include <algorithm>
#include <chrono>

#include "edgelm/stop_matcher.h"

namespace edgelm::runtime {
namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

}  // namespace

std::string_view finish_reason_name(FinishReason reason) {
  switch (reason) {
    case FinishReason::kStop: return "stop";
    case FinishReason::kLength: return "length";
    case FinishReason::kContextFull: return "context_full";
    case FinishReason::kCancelled: return "cancelled";
  }
  return "unknown";
}

double GenerateResult::prompt_tokens_per_second() const {
  const int32_t evaluated = n_prompt - n_prompt_cached;
  return prompt_ms > 0 ? evaluated * 1000.0 / prompt_ms : 0.0;
}

double GenerateResult::generate_tokens_per_second() const {
  // The first token's time belongs to the prompt (time to first token); rate the rest.
  return generate_ms > 0 && tokens.size() > 1 ? (tokens.size() - 1) * 1000.0 / generate_ms : 0.0;
}

Session::Session(const Engine& engine, std::unique_ptr<model::Context> context)
    : engine_(engine), context_(std::move(context)) {}

Result<std::unique_ptr<Session>> Session::create(const Engine& engine) {
  model::ContextOptions options;
  options.n_ctx = engine.config().ctx;
  options.n_batch = engine.config().batch;
  options.kv_type = engine.config().kv_type;
  options.n_threads = engine.config().resolved_threads();
  EDGELM_TRY(auto context, model::Context::create(engine.model(), options));
  return std::unique_ptr<Session>(new Session(engine, std::move(context)));
}

int32_t Session::n_ctx() const { return context_->n_ctx(); }

void Session::reset() {
  context_->truncate(0);
  cached_.clear();
  logits_ = {};
}

// Frees room for n_needed more tokens by dropping the older half of the cache after its first
// token (kept: it is usually BOS, which many models attend to heavily), like llama.cpp.
Status Session::make_room(int32_t n_needed, bool context_shift) {
  const int32_t n_ctx = context_->n_ctx();
  if (context_->n_past() + n_needed <= n_ctx) return {};
  if (!context_shift) {
    return make_error(ErrorCode::kContextFull,
                      "context full: " + std::to_string(context_->n_past()) + " + " + std::to_string(n_needed) +
                          " tokens exceed n_ctx " + std::to_string(n_ctx) +
                          " (raise the context length, or enable context shift)");
  }
  const int32_t n_keep = std::min<int32_t>(1, context_->n_past());
  int32_t n_discard = (context_->n_past() - n_keep) / 2;
  n_discard = std::max(n_discard, context_->n_past() + n_needed - n_ctx);
  if (n_discard > context_->n_past() - n_keep) {
    return make_error(ErrorCode::kContextFull, std::to_string(n_needed) + " tokens do not fit n_ctx " +
                                                   std::to_string(n_ctx) + " even after a context shift");
  }
  EDGELM_CHECK(context_->shift(n_keep, n_discard));
  cached_.erase(cached_.begin() + n_keep, cached_.begin() + n_keep + n_discard);
  return {};
}

Status Session::evaluate(std::span<const int32_t> tokens, bool context_shift) {
  EDGELM_CHECK(make_room(static_cast<int32_t>(tokens.size()), context_shift));
  EDGELM_TRY(logits_, context_->decode(tokens));
  cached_.insert(cached_.end(), tokens.begin(), tokens.end());
  return {};
}

Result<GenerateResult> Session::generate(std::span<const int32_t> prompt, const GenerateOptions& options,
                                         const TextCallback& on_text) {
  if (prompt.empty()) return make_error(ErrorCode::kInvalidArgument, "the prompt has no tokens");
  EDGELM_CHECK(options.sampling.validate());
  const bool context_shift = engine_.config().context_shift;
  const auto start = Clock::now();
  GenerateResult result;
  result.n_prompt = static_cast<int32_t>(prompt.size());

  // Reuse the longest cached prefix; at least the last prompt token is evaluated for its logits.
  size_t common = 0;
  while (common < cached_.size() && common < prompt.size() && cached_[common] == prompt[common]) ++common;
  if (common == prompt.size()) --common;
  context_->truncate(static_cast<int32_t>(common));
  cached_.resize(common);
  result.n_prompt_cached = static_cast<int32_t>(common);
  if (!context_shift && static_cast<int32_t>(prompt.size()) > context_->n_ctx()) {
    return make_error(ErrorCode::kContextFull, "the prompt has " + std::to_string(prompt.size()) +
                                                   " tokens but the context holds " +
                                                   std::to_string(context_->n_ctx()));
  }
  EDGELM_CHECK(evaluate(prompt.subspan(common), context_shift));
  result.prompt_ms = ms_since(start);

  Sampler sampler(options.sampling);
  for (int32_t t : prompt) EDGELM_CHECK(sampler.accept(t, /*advance_grammar=*/false));
  tokenizer::StreamDecoder decoder(engine_.tokenizer(), /*render_special=*/false, /*continues_text=*/true);
  StopMatcher stops(options.stop);
  auto emit = [&](const std::string& text) {
    if (text.empty()) return true;
    result.text += text;
    return !on_text || on_text(text);
  };

  Clock::time_point first_token_time;
  Clock::time_point last_token_time;
  result.finish = FinishReason::kLength;
  while (options.max_tokens < 0 || static_cast<int32_t>(result.tokens.size()) < options.max_tokens) {
    EDGELM_TRY(const int32_t token, sampler.sample(logits_));
    EDGELM_CHECK(sampler.accept(token));
    const auto now = Clock::now();
    if (result.tokens.empty()) {
      first_token_time = now;
      result.ttft_ms = std::chrono::duration<double, std::milli>(now - start).count();
    } else {
      result.token_ms.push_back(std::chrono::duration<double, std::milli>(now - last_token_time).count());
    }
    last_token_time = now;

    if (!options.ignore_eos && engine_.tokenizer().is_eog(token)) {
      result.finish = FinishReason::kStop;
      break;
    }
    result.tokens.push_back(token);
    if (!emit(stops.push(decoder.push(token)))) {
      result.finish = FinishReason::kCancelled;
      break;
    }
    if (stops.stopped()) {
      result.finish = FinishReason::kStop;
      break;
    }
    if (options.max_tokens >= 0 && static_cast<int32_t>(result.tokens.size()) >= options.max_tokens) break;
    if (!context_shift && context_->n_past() >= context_->n_ctx()) {
      result.finish = FinishReason::kContextFull;
      break;
    }
    const int32_t next[1] = {token};
    EDGELM_CHECK(evaluate(next, context_shift));
  }
  if (result.finish != FinishReason::kCancelled) {
    emit(stops.push(decoder.flush()));
    emit(stops.flush());
  }
  if (!result.tokens.empty()) {
    result.generate_ms = std::chrono::duration<double, std::milli>(last_token_time - first_token_time).count();
  }
  return result;
}

}  // namespace edgelm::runtime
