#include "edgelm/hybrid/upstream_client.h"

#include <httplib.h>

#include <cstdlib>

namespace edgelm::hybrid {

using nlohmann::json;
using SteadyClock = std::chrono::steady_clock;

namespace {

constexpr size_t kMaxAnswerBytes = 4 << 20;  // a larger upstream body is refused as garbage
constexpr size_t kMaxEventBytes = 1 << 20;

Error bad_answer(const std::string& what) {
  return make_error(ErrorCode::kInvalidFormat, "upstream answer: " + what);
}

}  // namespace

Status SseChatParser::event(std::string_view data) {
  if (data == "[DONE]") {
    done_ = true;
    return {};
  }
  const json j = json::parse(data, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return bad_answer("a stream event is not a JSON object");
  if (j.contains("error")) return bad_answer("the stream carried an error event");
  if (!j.contains("choices") || !j["choices"].is_array()) {
    return bad_answer("a stream event has no 'choices'");
  }
  for (const json& choice : j["choices"]) {
    if (!choice.is_object()) return bad_answer("a stream choice is not an object");
    if (choice.contains("finish_reason") && choice["finish_reason"].is_string()) {
      finish_reason_ = choice["finish_reason"].get<std::string>();
    }
    if (!choice.contains("delta") || !choice["delta"].is_object()) continue;
    const json& delta = choice["delta"];
    if (!delta.contains("content") || delta["content"].is_null()) continue;
    if (!delta["content"].is_string()) return bad_answer("delta.content is not a string");
    const std::string text = delta["content"].get<std::string>();
    if (!text.empty() && !on_delta_(text)) {
      return make_error(ErrorCode::kCancelled, "the stream's reader stopped");
    }
  }
  return {};
}

Status SseChatParser::feed(std::string_view bytes) {
  buffer_.append(bytes);
  // Events end with a blank line; lines may end with \n or \r\n.
  for (;;) {
    size_t end = buffer_.find("\n\n");
    size_t sep = 2;
    const size_t crlf = buffer_.find("\r\n\r\n");
    if (crlf != std::string::npos && (end == std::string::npos || crlf < end)) {
      end = crlf;
      sep = 4;
    }
    if (end == std::string::npos) break;
    const std::string block = buffer_.substr(0, end);
    buffer_.erase(0, end + sep);
    std::string data;
    size_t pos = 0;
    while (pos <= block.size()) {
      size_t eol = block.find('\n', pos);
      if (eol == std::string::npos) eol = block.size();
      std::string_view line(block.data() + pos, eol - pos);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      if (line.rfind("data:", 0) == 0) {
        line.remove_prefix(5);
        if (!line.empty() && line.front() == ' ') line.remove_prefix(1);
        if (!data.empty()) data += '\n';
        data.append(line);
      }
      pos = eol + 1;
    }
    if (!data.empty()) EDGELM_CHECK(event(data));
  }
  if (buffer_.size() > kMaxEventBytes) return bad_answer("a stream event is too long");
  return {};
}

Result<std::unique_ptr<UpstreamClient>> UpstreamClient::create(const UpstreamPolicy& policy) {
  std::unique_ptr<UpstreamClient> client(new UpstreamClient(policy));
  const std::string& url = policy.url;
  const size_t scheme_end = url.rfind("https://", 0) == 0  ? 8
                            : url.rfind("http://", 0) == 0 ? 7
                                                           : 0;
  if (scheme_end == 0) {
    return make_error(ErrorCode::kInvalidArgument,
                      "upstream url '" + url + "' must start with http:// or https://");
  }
  const size_t slash = url.find('/', scheme_end);
  client->host_ = url.substr(0, slash);
  client->base_path_ = slash == std::string::npos ? "" : url.substr(slash);
  while (!client->base_path_.empty() && client->base_path_.back() == '/') {
    client->base_path_.pop_back();
  }
  if (client->host_.size() <= scheme_end) {
    return make_error(ErrorCode::kInvalidArgument, "upstream url '" + url + "' has no host");
  }
  if (!policy.api_key_env.empty()) {
    const char* key = std::getenv(policy.api_key_env.c_str());
    if (key == nullptr || *key == '\0') {
      return make_error(ErrorCode::kNotFound, "upstream.api_key_env: environment variable '" +
                                                  policy.api_key_env + "' is not set");
    }
    client->api_key_ = key;
  }
  return client;
}

bool UpstreamClient::try_acquire() {
  if (policy_.max_requests_per_minute <= 0) return true;
  std::lock_guard<std::mutex> lock(budget_mutex_);
  const auto now = SteadyClock::now();
  while (!recent_.empty() && now - recent_.front() >= std::chrono::minutes(1)) recent_.pop_front();
  if (recent_.size() >= static_cast<size_t>(policy_.max_requests_per_minute)) return false;
  recent_.push_back(now);
  return true;
}

Result<UpstreamAnswer> UpstreamClient::chat(json body, SteadyClock::time_point deadline,
                                            const std::function<bool(std::string_view)>& on_delta) {
  const bool streaming = static_cast<bool>(on_delta);
  body["model"] = policy_.model;
  body["stream"] = streaming;
  if (!streaming) body.erase("stream_options");
  const auto remaining = [&] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now());
  };
  if (remaining().count() <= 0) return make_error(ErrorCode::kIo, "upstream: no time left");

  httplib::Client http(host_);
  const auto budget = remaining();
  const time_t sec = static_cast<time_t>(budget.count() / 1000);
  const time_t usec = static_cast<time_t>((budget.count() % 1000) * 1000);
  http.set_connection_timeout(sec, usec);
  http.set_read_timeout(sec, usec);
  http.set_write_timeout(sec, usec);

  httplib::Request req;
  req.method = "POST";
  req.path = base_path_ + "/v1/chat/completions";
  req.body = body.dump();
  req.set_header("Content-Type", "application/json");
  req.set_header("Accept", streaming ? "text/event-stream" : "application/json");
  if (!api_key_.empty()) req.set_header("Authorization", "Bearer " + api_key_);

  UpstreamAnswer answer;
  answer.bytes_sent = req.body.size() + req.path.size();
  for (const auto& [name, value] : req.headers) answer.bytes_sent += name.size() + value.size() + 4;

  int status = 0;
  std::string raw;  // the body when not streaming (or an error body)
  bool too_large = false;
  bool late = false;
  Status stream_status;
  SseChatParser parser([&](std::string_view delta) {
    answer.content.append(delta);
    return on_delta(delta);
  });
  req.response_handler = [&](const httplib::Response& res) {
    status = res.status;
    return true;
  };
  req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
    if (SteadyClock::now() > deadline) {
      late = true;
      return false;
    }
    if (streaming && status == 200) {
      stream_status = parser.feed(std::string_view(data, n));
      return static_cast<bool>(stream_status);
    }
    if (raw.size() + n > kMaxAnswerBytes) {
      too_large = true;
      return false;
    }
    raw.append(data, n);
    return true;
  };
  const httplib::Result result = http.send(req);
  if (late || SteadyClock::now() > deadline) {
    return make_error(ErrorCode::kIo, "upstream: deadline passed");
  }
  if (!stream_status) return stream_status.error();
  if (too_large) return bad_answer("larger than " + std::to_string(kMaxAnswerBytes) + " bytes");
  if (!result) {
    return make_error(ErrorCode::kIo,
                      "upstream " + host_ + ": " + httplib::to_string(result.error()));
  }
  if (status != 200) return bad_answer("HTTP status " + std::to_string(status));
  if (streaming) {
    if (!parser.done()) return bad_answer("the stream ended without [DONE]");
    if (!parser.finish_reason().empty()) answer.finish_reason = parser.finish_reason();
    return answer;
  }
  const json j = json::parse(raw, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("choices") || !j["choices"].is_array() ||
      j["choices"].empty() || !j["choices"][0].is_object()) {
    return bad_answer("not a chat completion");
  }
  const json& choice = j["choices"][0];
  if (!choice.contains("message") || !choice["message"].is_object() ||
      !choice["message"].contains("content") || !choice["message"]["content"].is_string()) {
    return bad_answer("no choices[0].message.content string");
  }
  answer.content = choice["message"]["content"].get<std::string>();
  if (choice.contains("finish_reason") && choice["finish_reason"].is_string()) {
    answer.finish_reason = choice["finish_reason"].get<std::string>();
  }
  return answer;
}

}  // namespace edgelm::hybrid
