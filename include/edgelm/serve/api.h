// The OpenAI-compatible HTTP API: request parsing and validation (untrusted input), and the error
// shape every endpoint answers with. Responses are built in src/serve/responses.h.
#pragma once

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "edgelm/sampler.h"

namespace edgelm::serve {

// An error in OpenAI's shape, {"error": {"message", "type", "param", "code"}}, with its HTTP
// status.
struct ApiError {
  int status = 400;
  std::string message;
  std::string type = "invalid_request_error";
  std::string param;  // "" -> null
  std::string code;   // "" -> null
};
nlohmann::json error_body(const ApiError& error);

ApiError invalid_request(std::string message, std::string param = {}, std::string code = {});

// Bounds on what one request may ask for.
struct RequestLimits {
  size_t max_body_bytes = 1 << 20;  // larger bodies: 413
  int32_t max_tokens = 4096;        // max_tokens / max_completion_tokens above this: 400
  size_t max_messages = 512;
  size_t max_stop = 4;          // stop strings, as OpenAI
  size_t max_stop_bytes = 256;  // per stop string
  int max_top_logprobs = 20;    // chat top_logprobs (completions logprobs: at most 5)
  size_t max_logit_bias = 1024;
  size_t max_embedding_inputs = 64;
  int max_json_depth = 64;  // nesting of the request body
};

enum class ResponseFormat { kText, kJsonObject, kJsonSchema };

// Fields shared by chat and text completions. Sampling follows OpenAI's defaults (temperature 1,
// top_p 1, no top-k or min-p) unless the request sets the extensions top_k / min_p.
struct GenerationRequest {
  std::string model;
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  std::optional<int32_t> max_tokens;
  std::vector<std::string> stop;
  runtime::SamplerParams sampling;
  bool logprobs = false;
  int top_logprobs = 0;
  ResponseFormat response_format = ResponseFormat::kText;
  std::string json_schema;  // response_format json_schema.schema, serialized
  std::string user;         // OpenAI's end-user id ("" when absent)
};

struct ChatRequest : GenerationRequest {
  // [{"role", "content"}] with content flattened to a string (text parts joined).
  nlohmann::json messages;
};

// A prompt as text, or as token ids (used as given: no BOS added).
using Prompt = std::variant<std::string, std::vector<int32_t>>;

struct CompletionRequest : GenerationRequest {
  Prompt prompt;
  bool echo = false;
};

struct EmbeddingRequest {
  std::string model;
  std::vector<Prompt> inputs;
  bool base64 = false;  // encoding_format "base64": little-endian float32 bytes in base64
};

// Each parser checks the body's size, UTF-8, JSON syntax and nesting, every field's type and range,
// and rejects unknown fields, as OpenAI does. Token ids are checked against the vocabulary later.
std::variant<ChatRequest, ApiError> parse_chat_request(std::string_view body,
                                                       const RequestLimits& limits);
std::variant<CompletionRequest, ApiError> parse_completion_request(std::string_view body,
                                                                   const RequestLimits& limits);
std::variant<EmbeddingRequest, ApiError> parse_embedding_request(std::string_view body,
                                                                 const RequestLimits& limits);

// Whether `text` is well-formed UTF-8 (no overlongs, surrogates or code points above U+10FFFF).
bool is_valid_utf8(std::string_view text);

}  // namespace edgelm::serve
