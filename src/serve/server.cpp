// The HTTP side of the gateway: routes, authentication, rate limits, request -> job, and the
// responses (plain JSON or Server-Sent Events) written while the scheduler generates.
#include "edgelm/serve/server.h"

#include <httplib.h>
#include <sodium.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <mutex>

#include "edgelm/grammar.h"
#include "edgelm/serve/metrics.h"
#include "serve/responses.h"

namespace edgelm::serve {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr auto kHeartbeat = std::chrono::milliseconds(1000);
constexpr auto kStreamPoll = std::chrono::milliseconds(250);

std::string endpoint_label(const std::string& path) {
  static const char* known[] = {"/v1/chat/completions", "/v1/completions", "/v1/embeddings",
                                "/v1/models",           "/health",         "/metrics"};
  for (const char* k : known) {
    if (path == k) return k;
  }
  if (path.rfind("/v1/models/", 0) == 0) return "/v1/models/{id}";
  return "other";
}

std::string quoted(const std::string& text) {
  return detail::dump(json(text));
}

ApiError server_error(const std::string& message) {
  ApiError e;
  e.status = 500;
  e.type = "server_error";
  e.message = message;
  return e;
}

// Library errors about the request itself are 400s; anything else is the server's fault.
ApiError from_error(const Error& error, const std::string& param = {}) {
  switch (error.code) {
    case ErrorCode::kInvalidArgument:
    case ErrorCode::kInvalidFormat:
    case ErrorCode::kUnsupported:
    case ErrorCode::kOutOfRange:
    case ErrorCode::kNotFound:
      return invalid_request(error.message, param);
    case ErrorCode::kContextFull:
      return invalid_request(error.message, param.empty() ? "messages" : param,
                             "context_length_exceeded");
    default:
      return server_error(error.message);
  }
}

}  // namespace

struct Server::Impl {
  Impl(const runtime::Engine& e, ServerOptions o) : engine(e), options(std::move(o)) {}

  // One request's bookkeeping: counted in the metrics and logged when the response is finished
  // (for streams, when the last event has been written).
  struct Exchange {
    Impl* impl = nullptr;
    std::string endpoint;
    std::string method;
    std::string path;
    std::string remote;
    std::string key_name;
    int status = 0;
    Clock::time_point start = Clock::now();
    int32_t prompt_tokens = -1;
    int32_t completion_tokens = -1;
    std::string finish;
    std::string prompt_text;      // only with log_text
    std::string completion_text;  // only with log_text
    bool recorded = false;
    // Counts the request in the metrics and writes its log line, once. Streamed responses call it
    // before their last bytes go out, so that a client which has read the whole response sees it
    // counted; everything else when the exchange ends.
    void record();
    ~Exchange() { record(); }
  };

  const runtime::Engine& engine;
  ServerOptions options;
  std::string model_id;
  int64_t created = 0;
  Metrics metrics;
  RateLimiter limiter;
  std::unique_ptr<Scheduler> scheduler;
  std::shared_ptr<const runtime::Grammar> json_object_grammar;
  httplib::Server http;
  int port = -1;

  std::atomic<bool> draining{false};
  std::mutex run_mutex;
  std::condition_variable run_changed;
  bool running = false;
  std::atomic<int> open_streams{0};

  void setup_routes();
  using RouteHandler =
      std::function<void(const httplib::Request&, httplib::Response&, std::shared_ptr<Exchange>)>;
  httplib::Server::Handler wrap(bool authenticated, bool rate_limited, RouteHandler handler);
  bool authorize(const httplib::Request& req, httplib::Response& res, Exchange& ex,
                 bool rate_limited);
  void send_json(httplib::Response& res, int status, const json& body);
  void send_error(httplib::Response& res, const ApiError& error);
  bool check_model(httplib::Response& res, const std::string& requested);
  std::variant<std::shared_ptr<const runtime::Grammar>, ApiError> grammar_for(
      const GenerationRequest& r);
  void handle_generation(const httplib::Request& req, httplib::Response& res,
                         std::shared_ptr<Exchange> ex, bool chat);
  void handle_embeddings(const httplib::Request& req, httplib::Response& res, Exchange& ex);
  void handle_chat_hook(const httplib::Request& req, httplib::Response& res, Exchange& ex);
  void log(const Exchange& ex);
};

void Server::Impl::Exchange::record() {
  if (impl == nullptr || recorded) return;
  recorded = true;
  impl->metrics.count_request(endpoint, status);
  impl->log(*this);
}

void Server::Impl::log(const Exchange& ex) {
  if (!options.log) return;
  char timing[32];
  std::snprintf(timing, sizeof timing, "%.1fms",
                std::chrono::duration<double, std::milli>(Clock::now() - ex.start).count());
  std::string line =
      ex.remote + " " + ex.method + " " + ex.path + " " + std::to_string(ex.status) + " " + timing;
  if (!ex.key_name.empty()) line += " key=" + ex.key_name;
  if (ex.prompt_tokens >= 0) line += " prompt_tokens=" + std::to_string(ex.prompt_tokens);
  if (ex.completion_tokens >= 0)
    line += " completion_tokens=" + std::to_string(ex.completion_tokens);
  if (!ex.finish.empty()) line += " finish=" + ex.finish;
  if (options.log_text) {
    line += " prompt=" + quoted(ex.prompt_text) + " completion=" + quoted(ex.completion_text);
  }
  options.log(line);
}

void Server::Impl::send_json(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(detail::dump(body), "application/json");
}

void Server::Impl::send_error(httplib::Response& res, const ApiError& error) {
  if (error.status == 429 || error.status == 503) {
    res.set_header("Retry-After", std::to_string(options.retry_after.count()));
  }
  send_json(res, error.status, error_body(error));
}

bool Server::Impl::authorize(const httplib::Request& req, httplib::Response& res, Exchange& ex,
                             bool rate_limited) {
  std::string client = "addr:" + req.remote_addr;
  int32_t rpm = options.requests_per_minute;
  if (!options.keys.empty()) {
    const std::string header = req.get_header_value("Authorization");
    std::string key;
    if (header.size() > 7 &&
        (header.compare(0, 7, "Bearer ") == 0 || header.compare(0, 7, "bearer ") == 0)) {
      key = header.substr(7);
      while (!key.empty() && key.back() == ' ') key.pop_back();
      while (!key.empty() && key.front() == ' ') key.erase(key.begin());
    }
    ApiError e;
    e.status = 401;
    if (key.empty()) {
      e.message =
          "You didn't provide an API key. You need to provide your API key in an Authorization "
          "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).";
      send_error(res, e);
      return false;
    }
    const ApiKey* match = options.keys.find(key);
    if (match == nullptr) {
      e.message = "Incorrect API key provided.";
      e.code = "invalid_api_key";
      send_error(res, e);
      return false;
    }
    ex.key_name = match->name;
    client = "key:" + match->name;
    if (match->requests_per_minute > 0) rpm = match->requests_per_minute;
  }
  if (!rate_limited) return true;
  if (auto wait = limiter.acquire(client, rpm)) {
    ApiError e;
    e.status = 429;
    e.type = "requests";
    e.code = "rate_limit_exceeded";
    e.message = "Rate limit reached: " + std::to_string(rpm) +
                " requests per minute. Please try again in " + std::to_string(*wait) + "s.";
    res.set_header("Retry-After", std::to_string(*wait));
    send_json(res, 429, error_body(e));
    return false;
  }
  return true;
}

httplib::Server::Handler Server::Impl::wrap(bool authenticated, bool rate_limited,
                                            RouteHandler handler) {
  return [this, authenticated, rate_limited, handler](const httplib::Request& req,
                                                      httplib::Response& res) {
    auto ex = std::make_shared<Exchange>();
    ex->impl = this;
    ex->endpoint = endpoint_label(req.path);
    ex->method = req.method;
    ex->path = req.path;
    ex->remote = req.remote_addr;
    if (!authenticated || authorize(req, res, *ex, rate_limited)) {
      try {
        handler(req, res, ex);
      } catch (const std::exception& e) {
        // Only allocation failures and library bugs get here: answer, never unwind into httplib.
        send_error(res, server_error(std::string("internal error: ") + e.what()));
      }
    }
    ex->status = res.status;
  };
}

bool Server::Impl::check_model(httplib::Response& res, const std::string& requested) {
  if (requested == model_id) return true;
  ApiError e = invalid_request(
      "The model `" + requested + "` does not exist or you do not have access to it.", "model",
      "model_not_found");
  e.status = 404;
  send_error(res, e);
  return false;
}

std::variant<std::shared_ptr<const runtime::Grammar>, ApiError> Server::Impl::grammar_for(
    const GenerationRequest& r) {
  if (r.response_format == ResponseFormat::kText) return std::shared_ptr<const runtime::Grammar>();
  if (r.response_format == ResponseFormat::kJsonObject) return json_object_grammar;
  auto gbnf = runtime::json_schema_to_gbnf(r.json_schema);
  if (!gbnf)
    return invalid_request("Invalid schema for response_format: " + gbnf.error().message,
                           "response_format.json_schema.schema", "invalid_schema");
  // Tokenizers that mark word starts with a space (SentencePiece) open the answer with " {": a
  // leading space is allowed, and JSON parsers skip it.
  auto grammar =
      runtime::Grammar::parse(*gbnf + "\nedgelm-answer ::= \" \"? root\n", "edgelm-answer");
  if (!grammar)
    return invalid_request("Invalid schema for response_format: " + grammar.error().message,
                           "response_format.json_schema.schema", "invalid_schema");
  return *grammar;
}

void Server::Impl::handle_generation(const httplib::Request& req, httplib::Response& res,
                                     std::shared_ptr<Exchange> ex, bool chat) {
  if (draining)
    return send_error(res, [] {
      ApiError e = server_error("The server is shutting down.");
      e.status = 503;
      return e;
    }());
  GenerationRequest common;
  GenerationSpec spec;
  std::string echo_text;
  if (chat) {
    auto parsed = parse_chat_request(req.body, options.limits);
    if (auto* e = std::get_if<ApiError>(&parsed)) return send_error(res, *e);
    ChatRequest& r = std::get<ChatRequest>(parsed);
    if (!check_model(res, r.model)) return;
    auto text = engine.render_chat(r.messages, /*add_generation_prompt=*/true);
    if (!text) return send_error(res, from_error(text.error(), "messages"));
    auto tokens = engine.tokenize(*text, /*add_special=*/true);
    if (!tokens) return send_error(res, from_error(tokens.error(), "messages"));
    // A template that writes the BOS text itself would otherwise get a second BOS.
    const int32_t bos = engine.tokenizer().bos();
    if (tokens->size() >= 2 && bos >= 0 && (*tokens)[0] == bos && (*tokens)[1] == bos) {
      tokens->erase(tokens->begin());
    }
    spec.prompt = std::move(*tokens);
    if (options.log_text) ex->prompt_text = *text;
    common = std::move(r);
  } else {
    auto parsed = parse_completion_request(req.body, options.limits);
    if (auto* e = std::get_if<ApiError>(&parsed)) return send_error(res, *e);
    CompletionRequest& r = std::get<CompletionRequest>(parsed);
    if (!check_model(res, r.model)) return;
    if (auto* text = std::get_if<std::string>(&r.prompt)) {
      auto tokens = engine.tokenize(*text, /*add_special=*/true);
      if (!tokens) return send_error(res, from_error(tokens.error(), "prompt"));
      spec.prompt = std::move(*tokens);
      echo_text = *text;
    } else {
      spec.prompt = std::get<std::vector<int32_t>>(r.prompt);
      echo_text = engine.tokenizer().decode(spec.prompt, false);
    }
    if (options.log_text) ex->prompt_text = echo_text;
    if (!r.echo) echo_text.clear();
    common = std::move(r);
  }
  auto grammar = grammar_for(common);
  if (auto* e = std::get_if<ApiError>(&grammar)) return send_error(res, *e);
  spec.grammar = std::get<std::shared_ptr<const runtime::Grammar>>(grammar);
  spec.max_tokens = common.max_tokens.value_or(-1);
  spec.stop = common.stop;
  spec.sampling = common.sampling;
  spec.top_logprobs = common.logprobs ? common.top_logprobs : -1;
  ex->prompt_tokens = static_cast<int32_t>(spec.prompt.size());

  auto submitted = scheduler->submit(std::move(spec));
  if (!submitted) {
    const Error& err = submitted.error();
    ApiError e;
    if (err.code == ErrorCode::kOutOfRange || err.code == ErrorCode::kCancelled) {
      e = server_error(err.code == ErrorCode::kCancelled
                           ? "The server is shutting down."
                           : "The server is overloaded: " + err.message + ". Please retry later.");
      e.status = 503;
      e.code = err.code == ErrorCode::kCancelled ? "" : "server_overloaded";
    } else {
      e = from_error(err, chat ? "messages" : "prompt");
    }
    return send_error(res, e);
  }
  std::shared_ptr<GenerationJob> job = std::move(*submitted);

  detail::ResponseHeader header{detail::random_id(chat ? "chatcmpl-" : "cmpl-"), model_id,
                                static_cast<int64_t>(std::time(nullptr))};
  const tokenizer::Tokenizer& tok = engine.tokenizer();
  auto logprobs_json = [&tok, chat, want = common.logprobs](const GenerationDelta& d,
                                                            size_t offset) -> json {
    if (!want) return nullptr;
    return chat ? detail::chat_logprobs(tok, d.tokens, d.logprobs)
                : detail::completion_logprobs(tok, d.tokens, d.logprobs, offset);
  };

  if (!common.stream) {
    // Builds the whole response once the job is done.
    auto respond = [this, job, header, chat, logprobs_json, echo_text, ex](
                       const GenerationDelta& all, int& status) -> json {
      const GenerationOutcome outcome = job->outcome();
      ex->completion_tokens = outcome.n_generated;
      ex->finish = std::string(detail::finish_reason_json(outcome.finish));
      if (options.log_text) ex->completion_text = all.text;
      if (outcome.error) {
        const ApiError e = outcome.error->code == ErrorCode::kCancelled
                               ? [&] {
                                   ApiError s = server_error(outcome.error->message);
                                   s.status = 503;
                                   return s;
                                 }()
                               : server_error(outcome.error->message);
        status = e.status;
        return error_body(e);
      }
      status = 200;
      const json lp = logprobs_json(all, echo_text.size());
      return chat ? detail::chat_completion(header, all.text, lp, outcome)
                  : detail::text_completion(header, echo_text + all.text, lp, outcome);
    };
    auto all = std::make_shared<GenerationDelta>();
    const auto until = Clock::now() + options.plain_wait;
    while (!job->done() && Clock::now() < until) {
      job->wait(*all, std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now()) +
                          std::chrono::milliseconds(1));
    }
    if (job->done()) {
      job->wait(*all, std::chrono::milliseconds(0));
      int status = 200;
      const json body = respond(*all, status);
      if (status == 503) res.set_header("Retry-After", std::to_string(options.retry_after.count()));
      return send_json(res, status, body);
    }
    // Still generating: from here on the status is 200 and the body is chunked; whitespace
    // (valid before JSON) goes out every heartbeat, and a failed write cancels the job.
    ++open_streams;
    res.status = 200;  // set now: the exchange records the status when this handler returns
    res.set_chunked_content_provider(
        "application/json",
        [job, all, respond, ex](size_t, httplib::DataSink& sink) {
          job->wait(*all, kHeartbeat);
          if (job->done()) {
            job->wait(*all, std::chrono::milliseconds(0));
            int status = 200;
            const std::string body = detail::dump(respond(*all, status));
            ex->record();
            if (!sink.write(body.data(), body.size())) return false;
            sink.done();
            return true;
          }
          return sink.write(" ", 1);
        },
        [this, job, ex](bool success) {
          if (!success) job->cancel();
          --open_streams;
        });
    return;
  }

  // Server-Sent Events.
  struct StreamState {
    bool started = false;
    size_t text_bytes = 0;
    Clock::time_point last_write = Clock::now();
  };
  auto state = std::make_shared<StreamState>();
  const bool include_usage = common.include_usage;
  ++open_streams;
  res.set_header("Cache-Control", "no-cache");
  res.set_chunked_content_provider(
      "text/event-stream",
      [this, job, state, header, chat, include_usage, logprobs_json, echo_text, ex](
          size_t, httplib::DataSink& sink) {
        auto send = [&](const json& event) {
          const std::string line = "data: " + detail::dump(event) + "\n\n";
          state->last_write = Clock::now();
          return sink.write(line.data(), line.size());
        };
        if (!state->started) {
          state->started = true;
          const bool ok =
              chat ? send(detail::chat_chunk(header, {{"role", "assistant"}, {"content", ""}},
                                             nullptr, nullptr, include_usage))
                   : (echo_text.empty() ||
                      send(detail::text_chunk(header, echo_text, nullptr, nullptr, include_usage)));
          if (!ok) return false;
        }
        GenerationDelta delta;
        job->wait(delta, kStreamPoll);
        if (options.log_text) ex->completion_text += delta.text;
        const bool has_logprobs = !delta.tokens.empty() && !delta.logprobs.empty();
        if (!delta.text.empty() || has_logprobs) {
          const json lp = logprobs_json(delta, echo_text.size() + state->text_bytes);
          state->text_bytes += delta.text.size();
          const bool ok =
              chat ? send(detail::chat_chunk(header, {{"content", delta.text}}, lp, nullptr,
                                             include_usage))
                   : send(detail::text_chunk(header, delta.text, lp, nullptr, include_usage));
          if (!ok) return false;
        }
        if (job->done()) {
          GenerationDelta tail;
          job->wait(tail, std::chrono::milliseconds(0));
          if (!tail.text.empty()) {
            if (options.log_text) ex->completion_text += tail.text;
            const bool ok =
                chat ? send(detail::chat_chunk(header, {{"content", tail.text}}, nullptr, nullptr,
                                               include_usage))
                     : send(detail::text_chunk(header, tail.text, nullptr, nullptr, include_usage));
            if (!ok) return false;
          }
          const GenerationOutcome outcome = job->outcome();
          ex->completion_tokens = outcome.n_generated;
          ex->finish = std::string(detail::finish_reason_json(outcome.finish));
          if (outcome.error) {
            if (!send(error_body(server_error(outcome.error->message)))) return false;
          } else {
            const bool ok =
                chat
                    ? send(detail::chat_chunk(header, json::object(), nullptr, &outcome.finish,
                                              include_usage))
                    : send(detail::text_chunk(header, "", nullptr, &outcome.finish, include_usage));
            if (!ok) return false;
            if (include_usage &&
                !send(detail::usage_chunk(
                    header, chat ? "chat.completion.chunk" : "text_completion", outcome))) {
              return false;
            }
          }
          static constexpr std::string_view kDone = "data: [DONE]\n\n";
          ex->record();
          if (!sink.write(kDone.data(), kDone.size())) return false;
          sink.done();
          return true;
        }
        // A comment line now and then: SSE clients ignore it, and the write notices a client
        // that went away while the job waits in the queue.
        if (Clock::now() - state->last_write > kHeartbeat) {
          static constexpr std::string_view kKeepAlive = ": keep-alive\n\n";
          state->last_write = Clock::now();
          if (!sink.write(kKeepAlive.data(), kKeepAlive.size())) return false;
        }
        return true;
      },
      [this, job](bool success) {
        if (!success) job->cancel();
        --open_streams;
      });
}

void Server::Impl::handle_embeddings(const httplib::Request& req, httplib::Response& res,
                                     Exchange& ex) {
  if (draining) {
    ApiError e = server_error("The server is shutting down.");
    e.status = 503;
    return send_error(res, e);
  }
  auto parsed = parse_embedding_request(req.body, options.limits);
  if (auto* e = std::get_if<ApiError>(&parsed)) return send_error(res, *e);
  EmbeddingRequest& r = std::get<EmbeddingRequest>(parsed);
  if (!check_model(res, r.model)) return;
  const int32_t n_vocab = engine.model().hparams().n_vocab;
  std::vector<std::vector<int32_t>> inputs;
  for (const Prompt& p : r.inputs) {
    std::vector<int32_t> tokens;
    if (const auto* text = std::get_if<std::string>(&p)) {
      auto t = engine.tokenize(*text, /*add_special=*/true);
      if (!t) return send_error(res, from_error(t.error(), "input"));
      tokens = std::move(*t);
    } else {
      tokens = std::get<std::vector<int32_t>>(p);
      for (int32_t id : tokens) {
        if (id >= n_vocab) {
          return send_error(res, invalid_request("token id " + std::to_string(id) +
                                                     " in 'input' is outside the vocabulary",
                                                 "input"));
        }
      }
    }
    if (tokens.empty())
      return send_error(res, invalid_request("an 'input' has no tokens", "input"));
    if (static_cast<int64_t>(tokens.size()) > scheduler->n_ctx()) {
      return send_error(
          res, invalid_request("an 'input' has " + std::to_string(tokens.size()) +
                                   " tokens; the maximum is " + std::to_string(scheduler->n_ctx()),
                               "input", "context_length_exceeded"));
    }
    inputs.push_back(std::move(tokens));
  }
  json data = json::array();
  int64_t n_tokens = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    auto vec = scheduler->embed(inputs[i]);
    if (!vec) {
      ApiError e =
          vec.error().code == ErrorCode::kCancelled || vec.error().code == ErrorCode::kOutOfRange
              ? server_error(vec.error().message)
              : from_error(vec.error(), "input");
      if (vec.error().code == ErrorCode::kCancelled || vec.error().code == ErrorCode::kOutOfRange)
        e.status = 503;
      return send_error(res, e);
    }
    n_tokens += static_cast<int64_t>(inputs[i].size());
    json item = {{"object", "embedding"}, {"index", i}};
    if (r.base64) {
      item["embedding"] = detail::floats_base64(*vec);
    } else {
      item["embedding"] = *vec;
    }
    data.push_back(std::move(item));
  }
  ex.prompt_tokens = static_cast<int32_t>(n_tokens);
  metrics.add_prompt_tokens(n_tokens);
  send_json(res, 200,
            {{"object", "list"},
             {"data", std::move(data)},
             {"model", model_id},
             {"usage", {{"prompt_tokens", n_tokens}, {"total_tokens", n_tokens}}}});
}

void Server::Impl::handle_chat_hook(const httplib::Request& req, httplib::Response& res,
                                    Exchange& ex) {
  if (draining) {
    ApiError e = server_error("The server is shutting down.");
    e.status = 503;
    return send_error(res, e);
  }
  const ChatCall call{req.body,
                      [&req](const std::string& name) { return req.get_header_value(name); },
                      ex.key_name,
                      *scheduler,
                      engine,
                      model_id,
                      options.limits};
  ChatReply reply = options.chat_handler(call);
  if (!reply.stream) {
    res.status = reply.status;
    res.set_content(reply.body, "application/json");
    return;
  }
  ++open_streams;
  res.set_header("Cache-Control", "no-cache");
  auto stream = std::make_shared<decltype(reply.stream)>(std::move(reply.stream));
  res.set_chunked_content_provider(
      "text/event-stream",
      [stream](size_t, httplib::DataSink& sink) {
        bool open = true;
        (*stream)([&](std::string_view event) {
          open = open && sink.write(event.data(), event.size());
          return open;
        });
        if (!open) return false;
        sink.done();
        return true;
      },
      [this](bool) { --open_streams; });
}

void Server::Impl::setup_routes() {
  http.Post("/v1/chat/completions",
            wrap(true, true, [this](const auto& req, auto& res, std::shared_ptr<Exchange> ex) {
              if (options.chat_handler) return handle_chat_hook(req, res, *ex);
              handle_generation(req, res, std::move(ex), /*chat=*/true);
            }));
  http.Post("/v1/completions",
            wrap(true, true, [this](const auto& req, auto& res, std::shared_ptr<Exchange> ex) {
              handle_generation(req, res, std::move(ex), /*chat=*/false);
            }));
  http.Post("/v1/embeddings",
            wrap(true, true, [this](const auto& req, auto& res, std::shared_ptr<Exchange> ex) {
              handle_embeddings(req, res, *ex);
            }));
  http.Get(
      "/v1/models", wrap(true, true, [this](const auto&, auto& res, std::shared_ptr<Exchange>) {
        send_json(
            res, 200,
            {{"object", "list"}, {"data", json::array({detail::model_json(model_id, created)})}});
      }));
  http.Get(R"(/v1/models/(.+))",
           wrap(true, true, [this](const auto& req, auto& res, std::shared_ptr<Exchange>) {
             const std::string id = req.matches[1];
             if (check_model(res, id)) send_json(res, 200, detail::model_json(model_id, created));
           }));
  http.Get("/health", wrap(false, false, [this](const auto&, auto& res, std::shared_ptr<Exchange>) {
             const SchedulerStats s = scheduler->stats();
             send_json(res, draining ? 503 : 200,
                       {{"status", draining ? "shutting_down" : "ok"},
                        {"slots", s.n_slots},
                        {"slots_busy", s.active_slots},
                        {"queued", s.queued}});
           }));
  http.Get("/metrics", wrap(true, false, [this](const auto&, auto& res, std::shared_ptr<Exchange>) {
             res.status = 200;
             res.set_content(metrics.render(), "text/plain; version=0.0.4; charset=utf-8");
           }));
  // Whatever httplib answers by itself (unknown route, 413, malformed HTTP) gets OpenAI's shape.
  http.set_error_handler(httplib::Server::HandlerWithResponse(
      [this](const httplib::Request& req, httplib::Response& res) {
        if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
        ApiError e;
        e.status = res.status;
        if (res.status == 404) {
          e.message = "Unknown request URL: " + req.method + " " + req.path + ".";
          e.code = "unknown_url";
        } else if (res.status == 413) {
          e.message = "The request body is larger than " +
                      std::to_string(options.limits.max_body_bytes) + " bytes.";
        } else {
          e.message = "The HTTP request is malformed or not supported (status " +
                      std::to_string(res.status) + ").";
        }
        res.set_content(detail::dump(error_body(e)), "application/json");
        metrics.count_request(endpoint_label(req.path), res.status);
        return httplib::Server::HandlerResponse::Handled;
      }));
}

// ---- Server -------------------------------------------------------------------------------

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Server::~Server() {
  impl_->http.stop();
  std::unique_lock<std::mutex> lock(impl_->run_mutex);
  impl_->run_changed.wait(lock, [&] { return !impl_->running; });
}

Result<std::unique_ptr<Server>> Server::create(const runtime::Engine& engine,
                                               ServerOptions options) {
  if (sodium_init() < 0) return make_error(ErrorCode::kInternal, "libsodium failed to initialize");
  // httplib writes to sockets without MSG_NOSIGNAL: a client that hangs up must not kill the
  // process, only fail the write.
  std::signal(SIGPIPE, SIG_IGN);
  auto impl = std::make_unique<Impl>(engine, std::move(options));
  ServerOptions& o = impl->options;
  impl->model_id = o.model_id.empty() ? engine.path().stem().string() : o.model_id;
  impl->created = static_cast<int64_t>(std::time(nullptr));
  SchedulerOptions so = o.scheduler;
  so.metrics = &impl->metrics;
  EDGELM_TRY(impl->scheduler, Scheduler::create(engine, so));
  EDGELM_TRY(impl->json_object_grammar,
             runtime::Grammar::parse(
                 std::string(runtime::json_object_gbnf()) + "\nedgelm-answer ::= \" \"? root\n",
                 "edgelm-answer"));

  // A thread per connection: every slot and queue entry, plus spare for cheap requests.
  const int threads = o.http_threads > 0 ? o.http_threads : so.n_slots + so.max_queue + 32;
  impl->http.new_task_queue = [threads] {
    return new httplib::ThreadPool(static_cast<size_t>(threads));
  };
  impl->http.set_payload_max_length(o.limits.max_body_bytes);
  impl->http.set_read_timeout(o.read_timeout);
  impl->http.set_write_timeout(o.write_timeout);
  impl->http.set_keep_alive_max_count(1000);
  impl->http.set_keep_alive_timeout(2);
  impl->setup_routes();
  if (o.port == 0) {
    impl->port = impl->http.bind_to_any_port(o.host);
  } else if (impl->http.bind_to_port(o.host, o.port)) {
    impl->port = o.port;
  }
  if (impl->port <= 0) {
    return make_error(ErrorCode::kIo, "cannot listen on " + o.host + ":" + std::to_string(o.port) +
                                          " (address in use, or not an address of this machine)");
  }
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

Status Server::run() {
  {
    std::lock_guard<std::mutex> lock(impl_->run_mutex);
    impl_->running = true;
  }
  const bool ok = impl_->http.listen_after_bind();
  {
    std::lock_guard<std::mutex> lock(impl_->run_mutex);
    impl_->running = false;
  }
  impl_->run_changed.notify_all();
  if (!ok && !impl_->draining) {
    return make_error(ErrorCode::kIo,
                      "the HTTP listener on port " + std::to_string(impl_->port) + " failed");
  }
  return {};
}

void Server::shutdown(Clock::time_point deadline) {
  if (impl_->draining.exchange(true)) return;
  impl_->scheduler->begin_shutdown();
  impl_->scheduler->wait_idle(deadline);
  impl_->scheduler->cancel_all();
  // Streams write their last events once their jobs end; give them a moment before closing.
  const auto flush_until = std::max(deadline, Clock::now()) + std::chrono::seconds(1);
  while (impl_->open_streams > 0 && Clock::now() < flush_until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  impl_->http.stop();
}

int Server::port() const {
  return impl_->port;
}
const std::string& Server::model_id() const {
  return impl_->model_id;
}

}  // namespace edgelm::serve
