// The client for the upstream OpenAI-compatible endpoint (POST {url}/v1/chat/completions), with a
// hard deadline on the whole exchange (not just per read), a requests-per-minute budget, and
// answers validated before use: anything but a well-formed chat completion is an error.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "edgelm/error.h"
#include "edgelm/hybrid/hybrid_policy.h"

namespace edgelm::hybrid {

struct UpstreamAnswer {
  std::string content;  // the assistant message (still with placeholders)
  std::string finish_reason = "stop";
  size_t bytes_sent = 0;  // request line, headers and body
};

class UpstreamClient {
 public:
  // kInvalidArgument for a URL that is not http(s)://host[:port][/base].
  static Result<std::unique_ptr<UpstreamClient>> create(const UpstreamPolicy& policy);

  // Takes one request from the per-minute budget; false when it is spent.
  bool try_acquire();

  // Sends `body` (its "model" replaced by the policy's, "stream" as given) and waits at most
  // until `deadline`. With `on_delta`, asks for a stream and calls it with each content piece as
  // it arrives (returning false aborts); the answer's content is then the concatenation.
  // Errors: kIo (refused, reset, timeout), kInvalidFormat (status != 200, malformed body).
  Result<UpstreamAnswer> chat(nlohmann::json body, std::chrono::steady_clock::time_point deadline,
                              const std::function<bool(std::string_view)>& on_delta = {});

  const UpstreamPolicy& policy() const { return policy_; }

 private:
  explicit UpstreamClient(UpstreamPolicy policy) : policy_(std::move(policy)) {}
  UpstreamPolicy policy_;
  std::string host_;  // scheme://host:port
  std::string base_path_;
  std::string api_key_;
  std::mutex budget_mutex_;
  std::deque<std::chrono::steady_clock::time_point> recent_;
};

// The content of an SSE stream of chat.completion.chunk events: feed it the raw bytes in any
// pieces; it calls `on_delta` for every non-empty delta.content and remembers the finish reason.
class SseChatParser {
 public:
  explicit SseChatParser(std::function<bool(std::string_view)> on_delta)
      : on_delta_(std::move(on_delta)) {}
  // kInvalidFormat for an event that is not a chat chunk; kCancelled when on_delta said stop.
  Status feed(std::string_view bytes);
  bool done() const { return done_; }  // [DONE] seen
  const std::string& finish_reason() const { return finish_reason_; }

 private:
  Status event(std::string_view data);
  std::function<bool(std::string_view)> on_delta_;
  std::string buffer_;
  std::string finish_reason_;
  bool done_ = false;
};

}  // namespace edgelm::hybrid
