// A Session is one conversation with a model: it owns a KV cache, reuses the cached prefix of
// each new prompt, and streams generated text through stop strings and a UTF-8-safe decoder.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "edgelm/engine.h"
#include "edgelm/sampler.h"

namespace edgelm::runtime {

struct GenerateOptions {
  int32_t max_tokens = 128;        // < 0: until end of generation or a full context
  std::vector<std::string> stop;   // stop strings; never part of the output
  SamplerParams sampling;
  bool ignore_eos = false;         // keep going past end-of-generation tokens
};

enum class FinishReason {
  kStop,         // an end-of-generation token or a stop string
  kLength,       // max_tokens reached
  kContextFull,  // the context filled up and context shift is off
  kCancelled,    // the text callback asked to stop
};
std::string_view finish_reason_name(FinishReason reason);  // "stop", "length", ...

struct GenerateResult {
  std::string text;                 // everything streamed, stop string excluded
  std::vector<int32_t> tokens;      // generated token ids
  FinishReason finish = FinishReason::kStop;
  int32_t n_prompt = 0;             // prompt tokens
  int32_t n_prompt_cached = 0;      // of which reused from the KV cache
  double prompt_ms = 0;             // prompt evaluation
  double ttft_ms = 0;               // call start to first generated token
  double generate_ms = 0;           // first to last generated token
  std::vector<double> token_ms;     // time of each generated token after the first

  double prompt_tokens_per_second() const;
  double generate_tokens_per_second() const;
};

// Receives each piece of text as soon as it is final; returning false cancels generation.
using TextCallback = std::function<bool(std::string_view text)>;

class Session {
 public:
  static Result<std::unique_ptr<Session>> create(const Engine& engine);

  Result<GenerateResult> generate(std::span<const int32_t> prompt, const GenerateOptions& options,
                                  const TextCallback& on_text = {});
  // Tokens currently held in the KV cache (prompt and generated).
  const std::vector<int32_t>& cached_tokens() const { return cached_; }
  int32_t n_ctx() const;
  const Engine& engine() const { return engine_; }
  void reset();

 private:
  Session(const Engine& engine, std::unique_ptr<model::Context> context);
  Status evaluate(std::span<const int32_t> tokens, bool context_shift);
  Status make_room(int32_t n_needed, bool context_shift);

  const Engine& engine_;
  std::unique_ptr<model::Context> context_;
  std::vector<int32_t> cached_;
  std::span<const float> logits_;
};

}  // namespace edgelm::runtime
