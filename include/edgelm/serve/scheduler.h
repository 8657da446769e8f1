// Continuous batching: a fixed set of slots (one KV cache each) whose sequences are decoded
// together, one batched forward pass per step, with a bounded FIFO queue in front. Requests join
// free slots and leave them between steps; a cancelled request (its client went away) leaves at
// the next step. One scheduler thread owns the model computation; HTTP threads submit work and
// wait on their job.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "edgelm/engine.h"
#include "edgelm/error.h"
#include "edgelm/grammar.h"
#include "edgelm/sampler.h"
#include "edgelm/session.h"

namespace edgelm::serve {

class Metrics;

struct SchedulerOptions {
  int32_t n_slots = 1;
  int32_t n_ctx = 0;  // per slot; 0: the model's training context, at most 4096
  int32_t max_queue = 32;
  int32_t max_batch_tokens = 512;  // rows per step: one per generating slot, the rest for prompts
  int n_threads = 1;
  Metrics* metrics = nullptr;  // optional; must outlive the scheduler
};

struct GenerationSpec {
  std::vector<int32_t> prompt;  // non-empty
  int32_t max_tokens = -1;      // < 0: until a stop or a full context
  std::vector<std::string> stop;
  runtime::SamplerParams sampling;
  std::shared_ptr<const runtime::Grammar> grammar;  // null: unconstrained
  int top_logprobs = -1;  // < 0: no log-probabilities; else per token with this many alternatives
  // Sees the model's raw logits (before any sampler filter) and the token drawn from them, for
  // every sampled token including the end-of-generation one; runs on the scheduler thread, so it
  // must be quick. The job's done() orders its effects before the waiter's reads.
  std::function<void(std::span<const float> logits, int32_t token)> observe_token;
};

// What a job produced since the last GenerationJob::wait.
struct GenerationDelta {
  std::string text;
  std::vector<int32_t> tokens;              // generated tokens (the text may lag behind them)
  std::vector<runtime::Logprobs> logprobs;  // one per token when asked for
};

struct GenerationOutcome {
  runtime::FinishReason finish = runtime::FinishReason::kStop;
  std::optional<Error> error;  // the job failed (kCancelled: shutdown or cancel())
  int32_t n_prompt = 0;
  int32_t n_prompt_cached = 0;
  int32_t n_generated = 0;
  double queue_ms = 0;  // submit to slot
  double ttft_ms = 0;   // submit to first token
};

// Shared between the submitting thread and the scheduler.
class GenerationJob {
 public:
  // Waits up to `timeout` for output or the end. Moves everything produced so far into `delta`
  // (appending) and returns true when there was something new or the job is done.
  bool wait(GenerationDelta& delta, std::chrono::milliseconds timeout);
  bool done() const;
  GenerationOutcome outcome() const;  // final once done()
  // Asks the scheduler to stop this job; it frees its slot at the next step.
  void cancel();
  bool cancelled() const;

 private:
  friend class Scheduler;
  GenerationSpec spec_;
  std::chrono::steady_clock::time_point submitted_;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  GenerationDelta pending_;
  GenerationOutcome outcome_;
  bool done_ = false;
  bool cancelled_ = false;
};

struct SchedulerStats {
  int32_t n_slots = 0;
  int32_t active_slots = 0;
  int32_t queued = 0;
};

class Scheduler {
 public:
  static Result<std::unique_ptr<Scheduler>> create(const runtime::Engine& engine,
                                                   const SchedulerOptions& options);
  ~Scheduler();  // cancels all work and joins the scheduler thread
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Queues a generation. Errors: kOutOfRange when the queue is full, kCancelled after
  // begin_shutdown(), kContextFull when the prompt does not fit a slot, kInvalidArgument for an
  // empty prompt, a token id outside the vocabulary or invalid sampling parameters.
  Result<std::shared_ptr<GenerationJob>> submit(GenerationSpec spec);

  // Mean-pooled, L2-normalized final hidden states of `tokens` (evaluated alone, from position
  // 0), computed on the scheduler thread between steps. kCancelled after begin_shutdown().
  Result<std::vector<float>> embed(std::span<const int32_t> tokens);

  // Rejects new work from now on; running and queued jobs go on.
  void begin_shutdown();
  // Waits until no job is running or queued, or the deadline passes; true when idle.
  bool wait_idle(std::chrono::steady_clock::time_point deadline);
  // Ends every running and queued job with kCancelled.
  void cancel_all();

  SchedulerStats stats() const;
  int32_t n_ctx() const { return n_ctx_; }

 private:
  struct Slot;
  struct EmbedTask;
  Scheduler(const runtime::Engine& engine, const SchedulerOptions& options, int32_t n_ctx);
  void loop();
  void admit_locked();
  void step();
  void finish_slot(Slot& slot, runtime::FinishReason reason, std::optional<Error> error);
  void publish_gauges_locked();

  const runtime::Engine& engine_;
  const SchedulerOptions options_;
  const int32_t n_ctx_;
  std::shared_ptr<const runtime::GrammarVocab> grammar_vocab_;
  std::unique_ptr<model::BatchDecoder> decoder_;
  std::vector<std::unique_ptr<Slot>> slots_;  // touched only by the scheduler thread
  uint64_t admissions_ = 0;                   // orders slots by last use

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable idle_;
  std::deque<std::shared_ptr<GenerationJob>> queue_;
  std::deque<std::shared_ptr<EmbedTask>> embed_queue_;
  int32_t active_ = 0;
  bool shutting_down_ = false;
  bool cancel_requested_ = false;
  bool stop_thread_ = false;
  std::thread thread_;
};

}  // namespace edgelm::serve
