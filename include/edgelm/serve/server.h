// The edge gateway: an OpenAI-compatible HTTP server over one model.
//
//   POST /v1/chat/completions  POST /v1/completions  POST /v1/embeddings
//   GET  /v1/models  GET /v1/models/{id}  GET /health  GET /metrics (Prometheus text)
//
// Generation runs on a Scheduler (continuous batching over --parallel slots); HTTP requests are
// served by a pool of threads that wait on their jobs. Nothing a client sends can crash the
// server or make it allocate without bound: bodies, token counts, queue length and request rates
// are limited, and errors come back in OpenAI's shape.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "edgelm/engine.h"
#include "edgelm/error.h"
#include "edgelm/serve/api.h"
#include "edgelm/serve/auth.h"
#include "edgelm/serve/scheduler.h"

namespace edgelm::serve {

// What a replacement chat handler (ServerOptions::chat_handler) is given for one request.
struct ChatCall {
  std::string_view body;                                  // the raw request body
  std::function<std::string(const std::string&)> header;  // a request header's value, "" if absent
  std::string key_name;                                   // the API key's name ("" without keys)
  Scheduler& scheduler;                                   // the local model's scheduler
  const runtime::Engine& engine;
  const std::string& model_id;
  const RequestLimits& limits;
};

struct ChatReply {
  int status = 200;
  std::string body;  // JSON, when `stream` is empty
  // A Server-Sent Events response: called once, on the HTTP thread, writes whole events through
  // `write` (false: the client went away) and returns when the stream is complete.
  std::function<void(const std::function<bool(std::string_view)>& write)> stream;
};

// Takes over POST /v1/chat/completions after authentication and rate limiting (the hybrid
// router); must not throw.
using ChatHandler = std::function<ChatReply(const ChatCall&)>;

struct ServerOptions {
  std::string host = "127.0.0.1";  // loopback unless asked otherwise
  int port = 8080;                 // 0: any free port (see Server::port())
  std::string model_id;            // the id clients name; empty: the model file's stem
  SchedulerOptions scheduler;
  RequestLimits limits;
  ApiKeyStore keys;                       // empty: no authentication
  int32_t requests_per_minute = 0;        // per key (or per client address without keys); 0: off
  int http_threads = 0;                   // 0: enough for every slot and queue entry, plus spare
  std::chrono::seconds read_timeout{10};  // per read of a request (slow clients are cut off)
  std::chrono::seconds write_timeout{10};
  std::chrono::seconds retry_after{1};             // Retry-After when the queue is full
  // A non-streaming request still generating after this long gets a chunked body that carries
  // whitespace heartbeats until the JSON is ready, so a client that went away is noticed.
  std::chrono::milliseconds plain_wait{1000};
  bool log_text = false;                           // prompts and completions in the log
  std::function<void(std::string_view line)> log;  // one line per request; empty: silent
  ChatHandler chat_handler;                        // empty: the built-in chat completions
};

class Server {
 public:
  // Loads nothing: `engine` must outlive the server. Binds the socket (so port() is known).
  // Sets SIGPIPE to ignored for the process: cpp-httplib writes without MSG_NOSIGNAL, and a
  // client that hangs up must fail one write, not kill the server.
  static Result<std::unique_ptr<Server>> create(const runtime::Engine& engine,
                                                ServerOptions options);
  ~Server();

  // Serves until shutdown(); returns when the listener is closed.
  Status run();
  // Graceful shutdown, from any thread (e.g. after SIGTERM): stops accepting generation work
  // (503), lets running and queued jobs finish until `deadline`, cancels the rest, then closes
  // the listener and the connections.
  void shutdown(std::chrono::steady_clock::time_point deadline);

  int port() const;
  const std::string& model_id() const;

 private:
  struct Impl;
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace edgelm::serve
