// The scheduler thread: admits queued jobs into free slots, runs one batched forward pass per
// step over every busy slot, samples each slot's next token and streams it to its job.
#include "edgelm/serve/scheduler.h"

#include <algorithm>
#include <cmath>
#include <future>
#include <optional>

#include "edgelm/serve/metrics.h"
#include "edgelm/stop_matcher.h"
#include "edgelm/tokenizer.h"

namespace edgelm::serve {
namespace {

using Clock = std::chrono::steady_clock;

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

}  // namespace

// ---- GenerationJob --------------------------------------------------------------------------

bool GenerationJob::wait(GenerationDelta& delta, std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mutex_);
  auto ready = [&] { return done_ || !pending_.tokens.empty() || !pending_.text.empty(); };
  if (!changed_.wait_for(lock, timeout, ready)) return false;
  delta.text += pending_.text;
  delta.tokens.insert(delta.tokens.end(), pending_.tokens.begin(), pending_.tokens.end());
  for (auto& lp : pending_.logprobs) delta.logprobs.push_back(std::move(lp));
  pending_ = GenerationDelta();
  return true;
}

bool GenerationJob::done() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return done_;
}

GenerationOutcome GenerationJob::outcome() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return outcome_;
}

void GenerationJob::cancel() {
  std::lock_guard<std::mutex> lock(mutex_);
  cancelled_ = true;
}

bool GenerationJob::cancelled() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return cancelled_;
}

// ---- Scheduler state ----------------------------------------------------------------------

// One sequence slot: its KV cache (kept between jobs for prefix reuse) and the generation state
// of the job it runs.
struct Scheduler::Slot {
  std::unique_ptr<model::Context> context;  // cache_only: evaluated by the BatchDecoder
  std::vector<int32_t> cached;              // the tokens whose keys and values the cache holds
  uint64_t admitted = 0;                    // admission counter of its last job (LRU, order)

  std::shared_ptr<GenerationJob> job;  // null: free
  size_t prompt_pos = 0;               // prompt tokens in the cache so far
  bool generating = false;             // prompt done; the next input is last_token
  int32_t last_token = -1;
  int32_t n_generated = 0;
  std::vector<int32_t> input;  // this step's tokens
  std::optional<runtime::Sampler> sampler;
  std::optional<tokenizer::StreamDecoder> decoder;
  std::optional<runtime::StopMatcher> stops;
  Clock::time_point last_token_time;
  GenerationOutcome outcome;
};

struct Scheduler::EmbedTask {
  std::vector<int32_t> tokens;
  std::promise<Result<std::vector<float>>> result;
};

Scheduler::Scheduler(const runtime::Engine& engine, const SchedulerOptions& options, int32_t n_ctx)
    : engine_(engine), options_(options), n_ctx_(n_ctx) {}

Result<std::unique_ptr<Scheduler>> Scheduler::create(const runtime::Engine& engine,
                                                     const SchedulerOptions& options) {
  if (options.n_slots < 1 || options.n_slots > 256) {
    return make_error(
        ErrorCode::kInvalidArgument,
        "scheduler: parallel slots " + std::to_string(options.n_slots) + " must be in [1, 256]");
  }
  if (options.max_queue < 0) {
    return make_error(ErrorCode::kInvalidArgument, "scheduler: the queue length must be >= 0");
  }
  const model::HParams& hp = engine.model().hparams();
  const int32_t n_ctx = options.n_ctx > 0 ? options.n_ctx : std::min(hp.n_ctx_train, 4096);
  if (n_ctx < 2) {
    return make_error(ErrorCode::kInvalidArgument,
                      "scheduler: context " + std::to_string(n_ctx) + " is too small");
  }
  std::unique_ptr<Scheduler> s(new Scheduler(engine, options, n_ctx));
  const int32_t max_batch = std::max(options.max_batch_tokens, options.n_slots);
  EDGELM_TRY(s->decoder_, model::BatchDecoder::create(engine.model(), max_batch,
                                                      std::max(1, options.n_threads)));
  model::ContextOptions context_options;
  context_options.n_ctx = n_ctx;
  context_options.cache_only = true;
  context_options.kv_type = engine.config().kv_type;
  for (int32_t i = 0; i < options.n_slots; ++i) {
    auto slot = std::make_unique<Slot>();
    EDGELM_TRY(slot->context, model::Context::create(engine.model(), context_options));
    s->slots_.push_back(std::move(slot));
  }

  // The vocabulary as the grammar sees it: each token's output bytes; control tokens never match.
  EDGELM_TRY(s->grammar_vocab_, runtime::GrammarVocab::from_tokenizer(engine.tokenizer()));

  if (options.metrics != nullptr) options.metrics->set_total_slots(options.n_slots);
  s->thread_ = std::thread([raw = s.get()] { raw->loop(); });
  return s;
}

Scheduler::~Scheduler() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    shutting_down_ = true;
    cancel_requested_ = true;
    stop_thread_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

Result<std::shared_ptr<GenerationJob>> Scheduler::submit(GenerationSpec spec) {
  const int32_t n_vocab = engine_.model().hparams().n_vocab;
  if (spec.prompt.empty())
    return make_error(ErrorCode::kInvalidArgument, "the prompt has no tokens");
  for (int32_t t : spec.prompt) {
    if (t < 0 || t >= n_vocab) {
      return make_error(ErrorCode::kInvalidArgument, "prompt token id " + std::to_string(t) +
                                                         " is outside the vocabulary [0, " +
                                                         std::to_string(n_vocab) + ")");
    }
  }
  for (const auto& [t, bias] : spec.sampling.logit_bias) {
    if (t < 0 || t >= n_vocab) {
      return make_error(ErrorCode::kInvalidArgument, "logit_bias token id " + std::to_string(t) +
                                                         " is outside the vocabulary [0, " +
                                                         std::to_string(n_vocab) + ")");
    }
  }
  EDGELM_CHECK(spec.sampling.validate());
  if (static_cast<int64_t>(spec.prompt.size()) > n_ctx_) {
    return make_error(ErrorCode::kContextFull,
                      "the prompt has " + std::to_string(spec.prompt.size()) +
                          " tokens but a slot's context holds " + std::to_string(n_ctx_));
  }
  auto job = std::make_shared<GenerationJob>();
  job->spec_ = std::move(spec);
  job->submitted_ = Clock::now();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (shutting_down_) return make_error(ErrorCode::kCancelled, "the server is shutting down");
    const auto free_slots = static_cast<size_t>(options_.n_slots - active_);
    if (queue_.size() >= static_cast<size_t>(options_.max_queue) + free_slots) {
      return make_error(ErrorCode::kOutOfRange,
                        "all " + std::to_string(options_.n_slots) + " slots are busy and " +
                            std::to_string(queue_.size()) + " requests are waiting");
    }
    queue_.push_back(job);
    publish_gauges_locked();
  }
  wake_.notify_all();
  return job;
}

Result<std::vector<float>> Scheduler::embed(std::span<const int32_t> tokens) {
  auto task = std::make_shared<EmbedTask>();
  task->tokens.assign(tokens.begin(), tokens.end());
  auto future = task->result.get_future();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (shutting_down_) return make_error(ErrorCode::kCancelled, "the server is shutting down");
    if (embed_queue_.size() >= static_cast<size_t>(options_.max_queue) + 1) {
      return make_error(ErrorCode::kOutOfRange, "too many embedding requests are waiting");
    }
    embed_queue_.push_back(task);
  }
  wake_.notify_all();
  return future.get();
}

void Scheduler::begin_shutdown() {
  std::lock_guard<std::mutex> lock(mutex_);
  shutting_down_ = true;
}

bool Scheduler::wait_idle(Clock::time_point deadline) {
  std::unique_lock<std::mutex> lock(mutex_);
  return idle_.wait_until(lock, deadline,
                          [&] { return queue_.empty() && active_ == 0 && embed_queue_.empty(); });
}

void Scheduler::cancel_all() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    cancel_requested_ = true;
  }
  wake_.notify_all();
}

SchedulerStats Scheduler::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return {options_.n_slots, active_, static_cast<int32_t>(queue_.size())};
}

void Scheduler::publish_gauges_locked() {
  if (options_.metrics == nullptr) return;
  options_.metrics->set_queue_depth(static_cast<int64_t>(queue_.size()));
  options_.metrics->set_active_slots(active_);
}

// ---- The scheduler thread ------------------------------------------------------------------

void Scheduler::loop() {
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    if (cancel_requested_) {
      const Error shutdown = make_error(ErrorCode::kCancelled, "the server is shutting down");
      for (auto& job : queue_) {
        std::lock_guard<std::mutex> job_lock(job->mutex_);
        job->outcome_.error = shutdown;
        job->outcome_.finish = runtime::FinishReason::kCancelled;
        job->done_ = true;
        job->changed_.notify_all();
      }
      queue_.clear();
      for (auto& task : embed_queue_) task->result.set_value(shutdown);
      embed_queue_.clear();
      lock.unlock();
      for (auto& slot : slots_) {
        if (slot->job) finish_slot(*slot, runtime::FinishReason::kCancelled, shutdown);
      }
      lock.lock();
      cancel_requested_ = stop_thread_;
    }
    admit_locked();
    publish_gauges_locked();
    if (active_ == 0 && embed_queue_.empty()) {
      idle_.notify_all();
      if (stop_thread_) return;
      wake_.wait(lock);
      continue;
    }
    std::shared_ptr<EmbedTask> task;
    if (!embed_queue_.empty()) {
      task = embed_queue_.front();
      embed_queue_.pop_front();
    }
    lock.unlock();
    if (task) {
      auto pooled = model::embed(engine_.model(), task->tokens, model::Pooling::kMean,
                                 std::max(1, options_.n_threads));
      if (pooled) {
        double norm = 0;
        for (float v : *pooled) norm += static_cast<double>(v) * v;
        const float scale = norm > 0 ? static_cast<float>(1.0 / std::sqrt(norm)) : 1.0f;
        for (float& v : *pooled) v *= scale;
      }
      task->result.set_value(std::move(pooled));
    }
    step();
    lock.lock();
  }
}

// Moves queued jobs into free slots: the free slot whose cache shares the longest prefix with the
// prompt (ties: least recently used), so repeated system prompts are evaluated once.
void Scheduler::admit_locked() {
  // Jobs whose clients left while queued end here.
  for (auto it = queue_.begin(); it != queue_.end();) {
    if ((*it)->cancelled()) {
      std::lock_guard<std::mutex> job_lock((*it)->mutex_);
      (*it)->outcome_.finish = runtime::FinishReason::kCancelled;
      (*it)->done_ = true;
      (*it)->changed_.notify_all();
      it = queue_.erase(it);
    } else {
      ++it;
    }
  }
  while (!queue_.empty() && active_ < options_.n_slots) {
    std::shared_ptr<GenerationJob> job = queue_.front();
    queue_.pop_front();
    const std::vector<int32_t>& prompt = job->spec_.prompt;
    Slot* best = nullptr;
    size_t best_common = 0;
    for (auto& slot : slots_) {
      if (slot->job) continue;
      size_t common = 0;
      while (common < slot->cached.size() && common < prompt.size() &&
             slot->cached[common] == prompt[common]) {
        ++common;
      }
      if (best == nullptr || common > best_common ||
          (common == best_common && slot->admitted < best->admitted)) {
        best = slot.get();
        best_common = common;
      }
    }
    // At least the last prompt token is evaluated: its logits give the first token.
    if (best_common == prompt.size()) --best_common;
    Slot& s = *best;
    s.context->truncate(static_cast<int32_t>(best_common));
    s.cached.resize(best_common);
    s.admitted = ++admissions_;
    s.job = job;
    s.prompt_pos = best_common;
    s.generating = false;
    s.last_token = -1;
    s.n_generated = 0;
    s.outcome = GenerationOutcome();
    s.outcome.n_prompt = static_cast<int32_t>(prompt.size());
    s.outcome.n_prompt_cached = static_cast<int32_t>(best_common);
    s.outcome.queue_ms = ms_between(job->submitted_, Clock::now());
    s.sampler.emplace(job->spec_.sampling);
    const bool constrained = job->spec_.grammar != nullptr;
    if (constrained) {
      s.sampler->set_grammar(
          std::make_unique<runtime::GrammarMatcher>(job->spec_.grammar, grammar_vocab_));
    }
    // Prompt tokens join the penalty history, never the grammar (it covers the output only).
    for (int32_t t : prompt) (void)s.sampler->accept(t, /*advance_grammar=*/false);
    s.decoder.emplace(engine_.tokenizer(), /*render_special=*/false, /*continues_text=*/true);
    s.stops.emplace(job->spec_.stop);
    ++active_;
    if (options_.metrics != nullptr) options_.metrics->add_prompt_tokens(s.outcome.n_prompt);
  }
}

void Scheduler::finish_slot(Slot& slot, runtime::FinishReason reason, std::optional<Error> error) {
  std::shared_ptr<GenerationJob> job = std::move(slot.job);
  slot.job.reset();
  std::string tail;
  if (reason != runtime::FinishReason::kCancelled && !error) {
    tail = slot.stops->push(slot.decoder->flush());
    tail += slot.stops->flush();
  }
  slot.sampler.reset();
  slot.decoder.reset();
  slot.stops.reset();
  slot.outcome.finish = reason;
  slot.outcome.error = std::move(error);
  slot.outcome.n_generated = slot.n_generated;
  if (options_.metrics != nullptr) options_.metrics->add_completion_tokens(slot.n_generated);
  // The slot counts as free before the job reads as done, so a client that sees its job end
  // also sees the slot free (in stats and metrics).
  {
    std::lock_guard<std::mutex> lock(mutex_);
    --active_;
    publish_gauges_locked();
    if (active_ == 0 && queue_.empty()) idle_.notify_all();
  }
  {
    std::lock_guard<std::mutex> lock(job->mutex_);
    job->pending_.text += tail;
    job->outcome_ = slot.outcome;
    job->done_ = true;
  }
  job->changed_.notify_all();
}

// One step: every busy slot contributes its next input (one token when generating, a chunk of
// its prompt otherwise), one batched forward pass evaluates them all, and every slot whose
// prompt is complete samples its next token.
void Scheduler::step() {
  for (auto& slot : slots_) {
    if (slot->job && slot->job->cancelled())
      finish_slot(*slot, runtime::FinishReason::kCancelled, {});
  }

  std::vector<Slot*> order;
  for (auto& slot : slots_) {
    if (slot->job) order.push_back(slot.get());
  }
  if (order.empty()) return;
  // Generating slots first (one row each), then prompts in admission order.
  std::stable_sort(order.begin(), order.end(), [](const Slot* a, const Slot* b) {
    if (a->generating != b->generating) return a->generating;
    return a->admitted < b->admitted;
  });
  int32_t budget = decoder_->max_batch_tokens();
  std::vector<model::SequenceInput> inputs;
  std::vector<Slot*> stepping;
  for (Slot* s : order) {
    const std::vector<int32_t>& prompt = s->job->spec_.prompt;
    if (s->generating) {
      s->input.assign(1, s->last_token);
    } else {
      const size_t n = std::min(prompt.size() - s->prompt_pos, static_cast<size_t>(budget));
      if (n == 0) continue;
      s->input.assign(prompt.begin() + static_cast<std::ptrdiff_t>(s->prompt_pos),
                      prompt.begin() + static_cast<std::ptrdiff_t>(s->prompt_pos + n));
    }
    budget -= static_cast<int32_t>(s->input.size());
    inputs.push_back({s->context.get(), s->input, false});
    stepping.push_back(s);
  }
  if (options_.metrics != nullptr)
    options_.metrics->observe_batch_size(static_cast<double>(inputs.size()));

  auto logits = decoder_->decode(inputs);
  if (!logits) {
    for (Slot* s : stepping) finish_slot(*s, runtime::FinishReason::kStop, logits.error());
    return;
  }
  const tokenizer::Tokenizer& tok = engine_.tokenizer();
  for (size_t i = 0; i < stepping.size(); ++i) {
    Slot& s = *stepping[i];
    GenerationJob& job = *s.job;
    s.cached.insert(s.cached.end(), s.input.begin(), s.input.end());
    if (!s.generating) {
      s.prompt_pos += s.input.size();
      if (s.prompt_pos < job.spec_.prompt.size()) continue;
      s.generating = true;
    }
    const std::span<const float> row = (*logits)[i];
    auto token = s.sampler->sample(row);
    if (!token) {
      finish_slot(s, runtime::FinishReason::kStop, token.error());
      continue;
    }
    std::optional<runtime::Logprobs> logprobs;
    if (job.spec_.top_logprobs >= 0) {
      logprobs.emplace();
      if (auto st = runtime::compute_logprobs(row, *token, job.spec_.top_logprobs, *logprobs);
          !st) {
        finish_slot(s, runtime::FinishReason::kStop, st.error());
        continue;
      }
    }
    if (auto st = s.sampler->accept(*token); !st) {
      finish_slot(s, runtime::FinishReason::kStop, st.error());
      continue;
    }
    if (job.spec_.observe_token) job.spec_.observe_token(row, *token);
    const auto now = Clock::now();
    if (options_.metrics != nullptr) {
      if (s.n_generated == 0) {
        options_.metrics->observe_time_to_first_token(ms_between(job.submitted_, now) / 1000.0);
      } else {
        options_.metrics->observe_time_per_output_token(ms_between(s.last_token_time, now) /
                                                        1000.0);
      }
    }
    if (s.n_generated == 0) s.outcome.ttft_ms = ms_between(job.submitted_, now);
    s.last_token_time = now;
    if (tok.is_eog(*token)) {
      finish_slot(s, runtime::FinishReason::kStop, {});
      continue;
    }
    ++s.n_generated;
    s.last_token = *token;
    const std::string text = s.stops->push(s.decoder->push(*token));
    {
      std::lock_guard<std::mutex> lock(job.mutex_);
      job.pending_.text += text;
      job.pending_.tokens.push_back(*token);
      if (logprobs) job.pending_.logprobs.push_back(std::move(*logprobs));
    }
    job.changed_.notify_all();
    if (s.stops->stopped()) {
      finish_slot(s, runtime::FinishReason::kStop, {});
    } else if (job.spec_.max_tokens >= 0 && s.n_generated >= job.spec_.max_tokens) {
      finish_slot(s, runtime::FinishReason::kLength, {});
    } else if (s.context->n_past() >= s.context->n_ctx()) {
      finish_slot(s, runtime::FinishReason::kContextFull, {});
    }
  }
}

}  // namespace edgelm::serve
