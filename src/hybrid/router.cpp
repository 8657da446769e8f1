#include "edgelm/hybrid/router.h"

#include <sodium.h>

#include <atomic>
#include <chrono>
#include <ctime>
#include <exception>
#include <thread>

#include "edgelm/serve/api.h"
#include "edgelm/serve/scheduler.h"

namespace edgelm::hybrid {
namespace {

using nlohmann::json;
using SteadyClock = std::chrono::steady_clock;

// Request fields forwarded upstream; everything else (user ids, logit biases over our vocabulary,
// message names) stays on the device.
constexpr const char* kForwardedFields[] = {
    "temperature",       "top_p", "max_tokens",     "max_completion_tokens", "presence_penalty",
    "frequency_penalty", "seed",  "response_format"};

serve::ChatReply error_reply(const serve::ApiError& e) {
  serve::ChatReply reply;
  reply.status = e.status;
  reply.body = serve::error_body(e).dump();
  return reply;
}

serve::ApiError unavailable(const std::string& message, const std::string& code = {}) {
  serve::ApiError e;
  e.status = 503;
  e.type = "server_error";
  e.message = message;
  e.code = code;
  return e;
}

std::string random_id() {
  uint8_t bytes[12];
  randombytes_buf(bytes, sizeof bytes);
  static const char* digits = "0123456789abcdef";
  std::string id = "chatcmpl-";
  for (uint8_t b : bytes) {
    id += digits[b >> 4];
    id += digits[b & 15];
  }
  return id;
}

std::string utc_now() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

json entity_counts(const std::array<int, kEntityTypeCount>& counts) {
  json out = json::object();
  for (EntityType type : all_entity_types()) {
    const int n = counts[static_cast<size_t>(type)];
    if (n > 0) out[std::string(entity_type_name(type))] = n;
  }
  return out;
}

const char* finish_name(runtime::FinishReason finish) {
  return finish == runtime::FinishReason::kStop ? "stop" : "length";
}

double ms_since(SteadyClock::time_point start) {
  return std::chrono::duration<double, std::milli>(SteadyClock::now() - start).count();
}

struct LocalAnswer {
  std::string text;
  std::string finish = "stop";
  Confidence confidence;
  int32_t prompt_tokens = 0;
  int32_t completion_tokens = 0;
  bool timed_out = false;
};

// The scheduler thread adds to the accumulator while the HTTP thread may give up and read it.
struct SharedConfidence {
  std::mutex mutex;
  ConfidenceAccumulator accumulator;
};

}  // namespace

struct HybridRouter::Request {
  serve::ChatRequest chat;
  json raw;
  std::string user;
  bool consent = false;
  std::string consent_source;
  Vault vault;
  json redacted_messages = json::array();
  json upstream_body;
  std::array<int, kEntityTypeCount> counts{};
  SteadyClock::time_point start;
  SteadyClock::time_point deadline;
  std::string id;
  int64_t created = 0;
  std::string cache_key;
};

Result<std::unique_ptr<HybridRouter>> HybridRouter::create(HybridPolicy policy,
                                                           ResponseCache::Clock cache_clock) {
  if (sodium_init() < 0) return make_error(ErrorCode::kInternal, "libsodium failed to initialize");
  std::unique_ptr<HybridRouter> router(new HybridRouter());
  router->policy_ = std::move(policy);
  const HybridPolicy& p = router->policy_;
  EDGELM_TRY(router->redactor_, Redactor::create(p.redaction));
  if (!p.upstream.url.empty()) {
    EDGELM_TRY(router->upstream_, UpstreamClient::create(p.upstream));
  }
  if (!p.cache.path.empty() || !p.audit_path.empty() ||
      (!p.profile_path.empty() && security::is_encrypted_file(p.profile_path))) {
    auto key = security::resolve_secret_key(p.key_file);
    if (!key) {
      return make_error(key.error().code,
                        "hybrid policy: the cache, audit log and encrypted profiles need a key "
                        "('key_file' or $EDGELM_KEY_FILE): " +
                            key.error().message);
    }
    router->key_ = std::make_shared<const security::SecretKey>(std::move(*key));
  }
  if (!p.cache.path.empty()) {
    EDGELM_TRY(router->cache_, ResponseCache::open(p.cache, router->key_, std::move(cache_clock)));
  }
  if (!p.audit_path.empty()) {
    EDGELM_TRY(router->audit_, AuditLog::open(p.audit_path, *router->key_));
  }
  if (!p.profile_path.empty()) {
    EDGELM_TRY(auto profiles, ProfileStore::load(p.profile_path, router->key_.get()));
    router->profiles_ = std::make_unique<ProfileStore>(std::move(profiles));
  }
  return router;
}

HybridRouter::~HybridRouter() = default;

serve::ChatReply HybridRouter::handle(const serve::ChatCall& call) {
  try {
    auto parsed = serve::parse_chat_request(call.body, call.limits);
    if (auto* e = std::get_if<serve::ApiError>(&parsed)) return error_reply(*e);
    Request r;
    r.start = SteadyClock::now();
    r.deadline = r.start + std::chrono::milliseconds(policy_.deadline_ms);
    r.chat = std::move(std::get<serve::ChatRequest>(parsed));
    if (r.chat.model != call.model_id) {
      serve::ApiError e = serve::invalid_request(
          "The model `" + r.chat.model + "` does not exist or you do not have access to it.",
          "model", "model_not_found");
      e.status = 404;
      return error_reply(e);
    }
    r.raw = json::parse(call.body);  // parse_chat_request accepted it
    return handle_parsed(call, r);
  } catch (const std::exception& e) {
    serve::ApiError error = unavailable(std::string("internal error: ") + e.what());
    error.status = 500;
    return error_reply(error);
  }
}

serve::ChatReply HybridRouter::handle_parsed(const serve::ChatCall& call, Request& r) {
  // Who is asking, and may their request leave the device?
  r.user = !call.key_name.empty() ? call.key_name : r.chat.user;
  const std::string header = call.header(kConsentHeader);
  if (header == "yes" || header == "no") {
    r.consent = header == "yes";
    r.consent_source = "request";
  } else if (!header.empty()) {
    return error_reply(serve::invalid_request(
        std::string(kConsentHeader) + " must be 'yes' or 'no', got '" + header + "'",
        kConsentHeader));
  } else if (auto it = policy_.consent.users.find(r.user);
             !r.user.empty() && it != policy_.consent.users.end()) {
    r.consent = it->second;
    r.consent_source = "user";
  } else {
    r.consent = policy_.consent.default_consent;
    r.consent_source = "policy";
  }

  // 1. Redact, with one vault for the whole conversation.
  {
    std::lock_guard<std::mutex> lock(redactor_mutex_);
    for (const json& m : r.chat.messages) {
      const std::string content = m.value("content", json("")).is_string()
                                      ? m["content"].get<std::string>()
                                      : std::string();
      RedactionResult red = redactor_->redact(content, r.vault);
      for (size_t i = 0; i < kEntityTypeCount; ++i) r.counts[i] += red.counts[i];
      r.redacted_messages.push_back({{"role", m["role"]}, {"content", std::move(red.text)}});
    }
    json stops = json::array();
    for (const std::string& stop : r.chat.stop)
      stops.push_back(redactor_->redact(stop, r.vault).text);
    r.upstream_body = {{"messages", r.redacted_messages}};
    if (!stops.empty()) r.upstream_body["stop"] = std::move(stops);
  }
  for (const char* field : kForwardedFields) {
    if (r.raw.contains(field)) r.upstream_body[field] = r.raw[field];
  }
  r.id = random_id();
  r.created = static_cast<int64_t>(std::time(nullptr));

  // The stream callbacks outlive this function: what they use is captured by value.
  auto extension = [counts = r.counts, consent = r.consent, source = r.consent_source](
                       const char* route, bool degraded, const std::string& reason,
                       const json& confidence) {
    return json{{"route", route},
                {"degraded", degraded},
                {"reason", reason},
                {"confidence", confidence},
                {"entities", entity_counts(counts)},
                {"consent", {{"given", consent}, {"source", source}}}};
  };
  auto completion = [&](const std::string& content, const std::string& finish, int32_t n_prompt,
                        int32_t n_completion, json ext) {
    serve::ChatReply reply;
    reply.body = json{
        {"id", r.id},
        {"object", "chat.completion"},
        {"created", r.created},
        {"model", call.model_id},
        {"choices",
         json::array(
             {{{"index", 0},
               {"message", {{"role", "assistant"}, {"content", content}, {"refusal", nullptr}}},
               {"logprobs", nullptr},
               {"finish_reason", finish}}})},
        {"usage",
         {{"prompt_tokens", n_prompt},
          {"completion_tokens", n_completion},
          {"total_tokens", n_prompt + n_completion}}},
        {"edgelm",
         std::move(
             ext)}}.dump();
    return reply;
  };
  auto chunk = [id = r.id, created = r.created, model = call.model_id](
                   const json& delta, const json& finish, const json* ext) {
    json event = {{"id", id},
                  {"object", "chat.completion.chunk"},
                  {"created", created},
                  {"model", model},
                  {"choices", json::array({{{"index", 0},
                                            {"delta", delta},
                                            {"logprobs", nullptr},
                                            {"finish_reason", finish}}})}};
    if (ext != nullptr) event["edgelm"] = *ext;
    return "data: " + event.dump() + "\n\n";
  };
  // A whole answer as a stream: the role, the content, the end.
  auto stream_of = [chunk](std::string content, std::string finish, json ext) {
    return [chunk, content, finish, ext](const std::function<bool(std::string_view)>& write) {
      if (!write(chunk({{"role", "assistant"}, {"content", ""}}, nullptr, nullptr))) return;
      if (!content.empty() && !write(chunk({{"content", content}}, nullptr, nullptr))) return;
      if (!write(chunk(json::object(), finish, &ext))) return;
      write("data: [DONE]\n\n");
    };
  };

  // Cached upstream answers: keyed on what would be sent, restored with this request's vault.
  if (cache_) {
    r.cache_key =
        ResponseCache::key_for({{"model", policy_.upstream.model}, {"body", r.upstream_body}});
    if (auto hit = cache_->get(r.cache_key)) {
      const std::string content = r.vault.restore(*hit);
      json ext = extension("cache", false, "cached upstream answer", nullptr);
      if (!r.chat.stream) return completion(content, "stop", 0, 0, std::move(ext));
      serve::ChatReply reply;
      reply.stream = stream_of(content, "stop", std::move(ext));
      return reply;
    }
  }

  // 2. The local answer, to the original messages plus the user's local profile.
  nlohmann::ordered_json local_messages = nlohmann::ordered_json::array();
  const std::string profile = profiles_ ? profiles_->local_context(r.user) : std::string();
  for (const json& m : r.chat.messages) {
    local_messages.push_back(nlohmann::ordered_json::parse(m.dump()));
  }
  if (!profile.empty()) {
    if (!local_messages.empty() && local_messages[0].value("role", "") == "system" &&
        local_messages[0]["content"].is_string()) {
      local_messages[0]["content"] =
          profile + "\n\n" + local_messages[0]["content"].get<std::string>();
    } else {
      nlohmann::ordered_json system_message = {{"role", "system"}, {"content", profile}};
      local_messages.insert(local_messages.begin(), std::move(system_message));
    }
  }
  auto text = call.engine.render_chat(local_messages, /*add_generation_prompt=*/true);
  if (!text) return error_reply(serve::invalid_request(text.error().message, "messages"));
  auto tokens = call.engine.tokenize(*text, /*add_special=*/true);
  if (!tokens) return error_reply(serve::invalid_request(tokens.error().message, "messages"));
  const int32_t bos = call.engine.tokenizer().bos();
  if (tokens->size() >= 2 && bos >= 0 && (*tokens)[0] == bos && (*tokens)[1] == bos) {
    tokens->erase(tokens->begin());
  }
  serve::GenerationSpec spec;
  spec.prompt = std::move(*tokens);
  spec.max_tokens =
      std::min(r.chat.max_tokens.value_or(policy_.local_max_tokens), policy_.local_max_tokens);
  spec.stop = r.chat.stop;
  spec.sampling = r.chat.sampling;
  auto shared = std::make_shared<SharedConfidence>();
  spec.observe_token = [shared](std::span<const float> logits, int32_t token) {
    std::lock_guard<std::mutex> lock(shared->mutex);
    shared->accumulator.add(logits, token);
  };
  LocalAnswer local;
  local.prompt_tokens = static_cast<int32_t>(spec.prompt.size());
  auto submitted = call.scheduler.submit(std::move(spec));
  if (!submitted) {
    const Error& err = submitted.error();
    if (err.code == ErrorCode::kOutOfRange || err.code == ErrorCode::kCancelled) {
      return error_reply(unavailable(
          "The local model is busy or shutting down: " + err.message + ". Please retry later.",
          "server_overloaded"));
    }
    return error_reply(serve::invalid_request(
        err.message, "messages",
        err.code == ErrorCode::kContextFull ? "context_length_exceeded" : ""));
  }
  std::shared_ptr<serve::GenerationJob> job = std::move(*submitted);
  serve::GenerationDelta delta;
  while (!job->done() && SteadyClock::now() < r.deadline) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(r.deadline - SteadyClock::now());
    job->wait(delta,
              std::clamp(left, std::chrono::milliseconds(1), std::chrono::milliseconds(100)));
  }
  if (!job->done()) {
    // Out of time: the partial local answer is all there is.
    job->cancel();
    local.timed_out = true;
  }
  job->wait(delta, std::chrono::milliseconds(0));
  local.text = std::move(delta.text);
  {
    std::lock_guard<std::mutex> lock(shared->mutex);
    local.confidence = shared->accumulator.result();
  }
  if (job->done()) {
    const serve::GenerationOutcome outcome = job->outcome();
    if (outcome.error && outcome.error->code != ErrorCode::kCancelled) {
      serve::ApiError e = unavailable("The local model failed: " + outcome.error->message);
      e.status = 500;
      return error_reply(e);
    }
    local.finish = finish_name(outcome.finish);
  } else {
    local.finish = "length";
  }
  local.completion_tokens = static_cast<int32_t>(delta.tokens.size());
  const json confidence_json = to_json(local.confidence);

  // 3./4. Escalate, or say why not.
  const double value = confidence_value(local.confidence, policy_.metric);
  std::string reason;
  if (local.timed_out) {
    reason = "local_deadline: the local model was cut off at the deadline";
  } else if (value >= policy_.threshold) {
    reason = "confident";
  } else if (!upstream_) {
    reason = "no_upstream: confidence below the threshold and no upstream configured";
  } else if (!r.consent) {
    reason = "no_consent: confidence below the threshold, escalation not allowed";
  } else if (!upstream_->try_acquire()) {
    reason = "over_budget: the upstream's requests-per-minute budget is spent";
  }
  const bool escalate = reason.empty();
  const bool degraded = reason != "confident";
  auto local_reply = [&, confidence_json](const std::string& why, bool is_degraded) {
    json ext = extension("local", is_degraded, why, confidence_json);
    if (!r.chat.stream) {
      return completion(local.text, local.finish, local.prompt_tokens, local.completion_tokens,
                        std::move(ext));
    }
    serve::ChatReply reply;
    reply.stream = stream_of(local.text, local.finish, std::move(ext));
    return reply;
  };
  if (!escalate) return local_reply(reason, degraded);

  auto audit = [this, confidence_json, counts = r.counts, source = r.consent_source,
                stream = r.chat.stream, start = r.start](size_t bytes_sent, const Status& outcome) {
    if (!audit_) return;
    json record = {{"time", utc_now()},
                   {"confidence", confidence_json},
                   {"metric", confidence_metric_name(policy_.metric)},
                   {"threshold", policy_.threshold},
                   {"entities", entity_counts(counts)},
                   {"consent_source", source},
                   {"upstream", policy_.upstream.url},
                   {"upstream_model", policy_.upstream.model},
                   {"bytes_sent", bytes_sent},
                   {"stream", stream},
                   {"outcome", outcome ? "ok" : "error"},
                   {"latency_ms", ms_since(start)}};
    if (!outcome) record["error"] = std::string(error_code_name(outcome.error().code));
    // An audit failure must not lose the answer; it is visible as a missing record.
    (void)audit_->append(record);
  };
  const size_t body_bytes = r.upstream_body.dump().size();
  const auto upstream_deadline = std::min(
      r.deadline, SteadyClock::now() + std::chrono::milliseconds(policy_.upstream.timeout_ms));

  if (!r.chat.stream) {
    auto answer = upstream_->chat(r.upstream_body, upstream_deadline);
    audit(answer ? answer->bytes_sent : body_bytes, answer ? Status() : Status(answer.error()));
    if (!answer) return local_reply("upstream_failed: " + answer.error().message, true);
    if (cache_) (void)cache_->put(r.cache_key, answer->content);
    return completion(
        r.vault.restore(answer->content), answer->finish_reason, local.prompt_tokens,
        local.completion_tokens,
        extension("upstream", false, "confidence below the threshold", confidence_json));
  }

  // Streaming escalation: upstream pieces are restored as they come; a failure before the first
  // piece falls back to the local answer, a failure after it ends the stream marked degraded.
  serve::ChatReply reply;
  auto shared_request = std::make_shared<Request>(std::move(r));
  reply.stream = [this, shared_request, local, confidence_json, chunk, extension, audit, body_bytes,
                  upstream_deadline](const std::function<bool(std::string_view)>& write) {
    Request& req = *shared_request;
    if (!write(chunk({{"role", "assistant"}, {"content", ""}}, nullptr, nullptr))) return;
    StreamRestorer restorer(req.vault);
    bool client_open = true;
    bool any_content = false;
    auto emit = [&](const std::string& text) {
      if (text.empty() || !client_open) return client_open;
      any_content = true;
      client_open = write(chunk({{"content", text}}, nullptr, nullptr));
      return client_open;
    };
    auto answer =
        upstream_->chat(req.upstream_body, upstream_deadline,
                        [&](std::string_view piece) { return emit(restorer.feed(piece)); });
    audit(answer ? answer->bytes_sent : body_bytes, answer ? Status() : Status(answer.error()));
    if (!client_open) return;
    json ext;
    std::string finish = "stop";
    if (answer) {
      emit(restorer.finish());
      finish = answer->finish_reason;
      if (cache_) (void)cache_->put(req.cache_key, answer->content);
      ext = extension("upstream", false, "confidence below the threshold", confidence_json);
    } else if (!any_content) {
      emit(local.text);
      finish = local.finish;
      ext = extension("local", true, "upstream_failed: " + answer.error().message, confidence_json);
    } else {
      emit(restorer.finish());
      ext = extension("upstream", true, "upstream_failed mid-stream: " + answer.error().message,
                      confidence_json);
    }
    if (!client_open) return;
    if (!write(chunk(json::object(), finish, &ext))) return;
    write("data: [DONE]\n\n");
  };
  return reply;
}

}  // namespace edgelm::hybrid
