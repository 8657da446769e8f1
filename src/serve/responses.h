// OpenAI response bodies: chat completions and their stream chunks, text completions, usage,
// log-probabilities, embeddings and the model list.
#pragma once

#include <cstdint>
#include <ctime>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "edgelm/sampler.h"
#include "edgelm/serve/scheduler.h"
#include "edgelm/session.h"
#include "edgelm/tokenizer.h"

namespace edgelm::serve::detail {

// What every response object of one request repeats.
struct ResponseHeader {
  std::string id;  // "chatcmpl-..." or "cmpl-..."
  std::string model;
  int64_t created = 0;
};

// "stop" or "length" (a full context is a length limit too).
std::string_view finish_reason_json(runtime::FinishReason reason);

// A random id: prefix + 24 hex digits.
std::string random_id(std::string_view prefix);

nlohmann::json usage_json(const GenerationOutcome& outcome);

// Chat logprobs.content entries for `tokens` (token text, logprob, bytes, top_logprobs).
nlohmann::json chat_logprobs(const tokenizer::Tokenizer& tok, std::span<const int32_t> tokens,
                             std::span<const runtime::Logprobs> logprobs);
// Completions logprobs: {tokens, token_logprobs, top_logprobs, text_offset}; text_offset counts
// bytes from `offset0` on.
nlohmann::json completion_logprobs(const tokenizer::Tokenizer& tok, std::span<const int32_t> tokens,
                                   std::span<const runtime::Logprobs> logprobs, size_t offset0);

nlohmann::json chat_completion(const ResponseHeader& h, const std::string& content,
                               const nlohmann::json& logprobs, const GenerationOutcome& outcome);
// One stream chunk: `delta` ({} for the final one), finish_reason null unless `finish`.
nlohmann::json chat_chunk(const ResponseHeader& h, nlohmann::json delta,
                          const nlohmann::json& logprobs, const runtime::FinishReason* finish,
                          bool include_usage);

nlohmann::json text_completion(const ResponseHeader& h, const std::string& text,
                               const nlohmann::json& logprobs, const GenerationOutcome& outcome);
nlohmann::json text_chunk(const ResponseHeader& h, const std::string& text,
                          const nlohmann::json& logprobs, const runtime::FinishReason* finish,
                          bool include_usage);
// The last chunk of a stream with include_usage: no choices, the usage.
nlohmann::json usage_chunk(const ResponseHeader& h, std::string_view object,
                           const GenerationOutcome& outcome);

nlohmann::json model_json(const std::string& id, int64_t created);

// Little-endian float32 bytes in standard base64 (encoding_format "base64").
std::string floats_base64(std::span<const float> values);

// JSON text of `value`, with invalid UTF-8 (token pieces may split characters) replaced.
std::string dump(const nlohmann::json& value);

}  // namespace edgelm::serve::detail
