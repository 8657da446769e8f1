// edgelm serve: the OpenAI-compatible gateway (see include/edgelm/serve/server.h).
#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <iostream>
#include <thread>

#include "cli.h"
#include "edgelm/hybrid/router.h"
#include "edgelm/serve/server.h"

namespace edgelm::cli {
namespace {

struct ServeOptions {
  ModelOptions model;
  std::string host = "127.0.0.1";
  int port = 8080;
  int32_t parallel = 4;
  int32_t queue = 32;
  std::string api_key_file;
  int32_t rate_limit = 0;
  int32_t max_tokens_limit = 4096;
  size_t max_body = 1 << 20;
  std::string alias;
  int shutdown_timeout = 10;
  bool log_text = false;
  bool quiet = false;
  bool hash_key = false;
  std::string hybrid_policy;
};

int print_key_hash() {
  std::string key;
  std::getline(std::cin, key);
  while (!key.empty() && (key.back() == '\r' || key.back() == ' ')) key.pop_back();
  auto hash = serve::hash_api_key(key);
  if (!hash) return report(hash.error());
  std::printf("%s\n", hash->c_str());
  return 0;
}

int serve_main(const ServeOptions& o) {
  if (o.hash_key) return print_key_hash();
  auto config = o.model.resolve_config();
  if (!config) return report(config.error());
  serve::ServerOptions options;
  options.host = o.host;
  options.port = o.port;
  options.model_id = o.alias;
  options.scheduler.n_slots = o.parallel;
  options.scheduler.max_queue = o.queue;
  options.scheduler.n_ctx = config->ctx;
  options.scheduler.max_batch_tokens = config->batch;
  options.scheduler.n_threads = config->resolved_threads();
  options.limits.max_tokens = o.max_tokens_limit;
  options.limits.max_body_bytes = o.max_body;
  options.requests_per_minute = o.rate_limit;
  options.log_text = o.log_text;
  if (!o.quiet) {
    options.log = [](std::string_view line) {
      std::fprintf(stderr, "edgelm serve: %.*s\n", static_cast<int>(line.size()), line.data());
    };
  }
  if (!o.api_key_file.empty()) {
    auto keys = serve::ApiKeyStore::load(o.api_key_file);
    if (!keys) return report(keys.error());
    options.keys = std::move(*keys);
  }
  // The hybrid router answers chat completions instead of the plain handler; it must outlive
  // the server.
  std::unique_ptr<hybrid::HybridRouter> router;
  if (!o.hybrid_policy.empty()) {
    auto policy = hybrid::HybridPolicy::load(o.hybrid_policy);
    if (!policy) return report(policy.error());
    auto created = hybrid::HybridRouter::create(std::move(*policy));
    if (!created) return report(created.error());
    router = std::move(*created);
    options.chat_handler = router->handler();
  }
  auto engine = o.model.load_engine(*config);
  if (!engine) return report(engine.error());

  // SIGTERM / SIGINT are taken by one thread (sigwait), so the server's threads never see them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto server = serve::Server::create(**engine, std::move(options));
  if (!server) return report(server.error());
  std::fprintf(stderr,
               "edgelm serve: listening on http://%s:%d (model '%s', %d slots, queue %d)%s\n",
               o.host.c_str(), (*server)->port(), (*server)->model_id().c_str(), o.parallel,
               o.queue, o.api_key_file.empty() ? ", no API keys" : "");
  if (router) {
    const hybrid::HybridPolicy& p = router->policy();
    std::fprintf(stderr, "edgelm serve: hybrid routing (%s < %g escalates to %s)\n",
                 std::string(hybrid::confidence_metric_name(p.metric)).c_str(), p.threshold,
                 p.upstream.url.empty() ? "nothing: local only" : p.upstream.url.c_str());
  }
  std::fflush(stderr);

  std::atomic<bool> stopped{false};
  std::thread signal_thread([&] {
    const timespec poll{0, 200 * 1000 * 1000};
    while (!stopped) {
      const int sig = sigtimedwait(&signals, nullptr, &poll);
      if (sig == SIGTERM || sig == SIGINT) {
        std::fprintf(stderr, "edgelm serve: %s, finishing requests (at most %d s)\n",
                     sig == SIGTERM ? "SIGTERM" : "SIGINT", o.shutdown_timeout);
        (*server)->shutdown(std::chrono::steady_clock::now() +
                            std::chrono::seconds(o.shutdown_timeout));
        return;
      }
    }
  });
  auto status = (*server)->run();
  stopped = true;
  signal_thread.join();
  if (!status) return report(status.error());
  std::fprintf(stderr, "edgelm serve: stopped\n");
  return 0;
}

}  // namespace

void register_serve(CLI::App& app, int& exit_code) {
  auto o = std::make_shared<ServeOptions>();
  CLI::App* cmd =
      app.add_subcommand("serve", "OpenAI-compatible HTTP server (continuous batching)");
  o->model.add_to(*cmd);
  cmd->add_option("--host", o->host, "address to listen on (loopback by default)")
      ->capture_default_str();
  cmd->add_option("--port", o->port, "port (0: any free port)")
      ->check(CLI::Range(0, 65535))
      ->capture_default_str();
  cmd->add_option("--parallel", o->parallel, "sequences decoded together (slots)")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  cmd->add_option("--queue", o->queue, "requests waiting for a slot before 503")
      ->check(CLI::Range(0, 4096))
      ->capture_default_str();
  cmd->add_option("--api-key-file", o->api_key_file,
                  "hashed API keys, one per line: <name> blake2b256:<hex> [requests_per_minute]");
  cmd->add_option("--rate-limit", o->rate_limit, "requests per minute per key or client (0: off)")
      ->check(CLI::Range(0, 1000000))
      ->capture_default_str();
  cmd->add_option("--max-tokens-limit", o->max_tokens_limit,
                  "largest max_tokens a request may ask for")
      ->check(CLI::Range(1, 1 << 24))
      ->capture_default_str();
  cmd->add_option("--max-body", o->max_body, "largest request body in bytes")
      ->check(CLI::Range(size_t{1024}, size_t{1} << 30))
      ->capture_default_str();
  cmd->add_option("--alias", o->alias,
                  "model id clients use (default: the file name without .gguf)");
  cmd->add_option("--shutdown-timeout", o->shutdown_timeout,
                  "seconds to finish requests after SIGTERM")
      ->check(CLI::Range(0, 3600))
      ->capture_default_str();
  cmd->add_flag("--log-text", o->log_text,
                "log prompts and completions (off: only sizes and timings)");
  cmd->add_flag("--quiet", o->quiet, "no per-request log lines");
  cmd->add_option("--hybrid", o->hybrid_policy,
                  "hybrid privacy router policy (JSON): redact, answer locally, escalate when "
                  "unsure and allowed (docs/HYBRID.md)");
  cmd->add_flag("--hash-key", o->hash_key,
                "print the key-file hash of an API key read from stdin, and exit");
  cmd->callback([o, &exit_code] { exit_code = serve_main(*o); });
}

}  // namespace edgelm::cli
