// libFuzzer target: arbitrary bytes as the body of each OpenAI endpoint and as an API key file.
// Any crash, sanitizer report, leak or timeout is a bug; errors are fine. An accepted request must
// respect the limits it was parsed under.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "edgelm/serve/api.h"
#include "edgelm/serve/auth.h"

namespace {

void check(bool condition) {
  if (!condition) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace edgelm::serve;
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  RequestLimits limits;
  limits.max_body_bytes = 64 * 1024;
  limits.max_tokens = 256;
  limits.max_messages = 16;

  auto chat = parse_chat_request(body, limits);
  if (const auto* r = std::get_if<ChatRequest>(&chat)) {
    check(is_valid_utf8(body));
    check(r->messages.is_array() && !r->messages.empty() &&
          r->messages.size() <= limits.max_messages);
    check(!r->max_tokens || (*r->max_tokens >= 1 && *r->max_tokens <= limits.max_tokens));
    check(r->stop.size() <= limits.max_stop);
    check(r->top_logprobs >= 0 && r->top_logprobs <= limits.max_top_logprobs);
    check(r->sampling.validate().has_value());
  } else {
    const ApiError& e = std::get<ApiError>(chat);
    check(e.status == 400 || e.status == 413);
    check(!e.message.empty());
  }
  auto completion = parse_completion_request(body, limits);
  if (const auto* r = std::get_if<CompletionRequest>(&completion)) {
    check(!r->max_tokens || (*r->max_tokens >= 1 && *r->max_tokens <= limits.max_tokens));
    if (const auto* ids = std::get_if<std::vector<int32_t>>(&r->prompt)) {
      for (int32_t id : *ids) check(id >= 0);
    }
  }
  auto embedding = parse_embedding_request(body, limits);
  if (const auto* r = std::get_if<EmbeddingRequest>(&embedding)) {
    check(!r->inputs.empty() && r->inputs.size() <= limits.max_embedding_inputs);
  }
  (void)ApiKeyStore::parse(body);
  return 0;
}
