// Shared pieces of the server tests: the real stories260K model, an in-process server on a free
// loopback port, the numpy reference decode, and the npm packages the client tests use.
#pragma once

#include <gtest/gtest.h>
#include <httplib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/node_package.h"
#include "common/run_command.h"
#include "common/test_paths.h"
#include "edgelm/engine.h"
#include "edgelm/serve/server.h"

namespace edgelm::serve::test {

using nlohmann::json;
namespace fs = std::filesystem;

inline fs::path stories_path() {
  return edgelm::test::shared_models_dir() / "stories260K" / "stories260K.gguf";
}

// The engine every test shares (loading is cheap, but once is enough). ctx 512 per slot.
inline const runtime::Engine& stories_engine() {
  static std::unique_ptr<runtime::Engine> engine = [] {
    Config config;
    config.threads = 1;
    config.ctx = 512;
    auto e = runtime::Engine::load(stories_path(), config);
    if (!e) {
      ADD_FAILURE() << e.error().to_string();
      return std::unique_ptr<runtime::Engine>();
    }
    return std::move(*e);
  }();
  return *engine;
}

// tests/reference's numpy decode of stories260K from BOS (MANIFEST: stories260K.greedy-from-bos).
struct ReferenceDecode {
  std::vector<int32_t> tokens;     // BOS, then 256 greedy tokens
  std::vector<std::string> bytes;  // each token's output bytes (U+2581 -> space, <0xHH> -> byte)

  // The text greedy decoding appends after tokens[0, begin): bytes of tokens [begin, begin + n).
  std::string text(size_t begin, size_t n) const {
    std::string out;
    for (size_t i = begin; i < begin + n && i < bytes.size(); ++i) out += bytes[i];
    return out;
  }
};

inline const ReferenceDecode& reference_decode() {
  static const ReferenceDecode ref = [] {
    ReferenceDecode r;
    std::ifstream in(edgelm::test::shared_models_dir() / "stories260K" /
                     "stories260K.greedy-from-bos.json");
    const json doc = json::parse(in);
    r.tokens = doc["tokens"].get<std::vector<int32_t>>();
    for (const std::string& piece : doc["pieces"].get<std::vector<std::string>>()) {
      std::string b;
      if (piece.size() == 6 && piece.rfind("<0x", 0) == 0) {
        b = std::string(1, static_cast<char>(std::stoi(piece.substr(3, 2), nullptr, 16)));
      } else {
        for (size_t i = 0; i < piece.size(); ++i) {
          if (piece.compare(i, 3, "\xE2\x96\x81") == 0) {
            b += ' ';
            i += 2;
          } else {
            b += piece[i];
          }
        }
      }
      r.bytes.push_back(b);
    }
    return r;
  }();
  return ref;
}

// A server on 127.0.0.1 and a free port, serving from a thread until the object dies.
class TestServer {
 public:
  explicit TestServer(ServerOptions options) {
    options.host = "127.0.0.1";
    options.port = 0;
    options.log = [this](std::string_view line) {
      std::lock_guard<std::mutex> lock(log_mutex_);
      log_.emplace_back(line);
    };
    auto server = Server::create(stories_engine(), std::move(options));
    if (!server) {
      ADD_FAILURE() << server.error().to_string();
      return;
    }
    server_ = std::move(*server);
    thread_ = std::thread([this] { status_ = server_->run(); });
    // run() may not be listening yet: wait for /health.
    for (int i = 0; i < 200; ++i) {
      httplib::Client c("127.0.0.1", port());
      if (auto r = c.Get("/health")) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ADD_FAILURE() << "the server did not answer /health";
  }
  ~TestServer() { stop(std::chrono::steady_clock::now()); }

  void stop(std::chrono::steady_clock::time_point deadline) {
    if (!server_) return;
    if (thread_.joinable()) {
      server_->shutdown(deadline);
      thread_.join();
    }
  }
  int port() const { return server_ ? server_->port() : -1; }
  std::string base_url() const { return "http://127.0.0.1:" + std::to_string(port()) + "/v1"; }
  httplib::Client client() const {
    httplib::Client c("127.0.0.1", port());
    c.set_read_timeout(60, 0);
    return c;
  }
  std::vector<std::string> log() {
    std::lock_guard<std::mutex> lock(log_mutex_);
    return log_;
  }
  const Status& status() const { return status_; }

 private:
  std::unique_ptr<Server> server_;
  std::thread thread_;
  Status status_;
  std::mutex log_mutex_;
  std::vector<std::string> log_;
};

inline ServerOptions small_options(int32_t slots = 4, int32_t queue = 16) {
  ServerOptions o;
  o.model_id = "stories260K";
  o.scheduler.n_slots = slots;
  o.scheduler.max_queue = queue;
  o.scheduler.n_ctx = 512;
  o.scheduler.n_threads = 1;
  o.read_timeout = std::chrono::seconds(2);
  o.write_timeout = std::chrono::seconds(2);
  return o;
}

// The npm packages the client tests use (one install, so one marker stands for all three).
inline std::string node_deps() {
  std::string why;
  std::string modules = edgelm::test::npm_install_once("node_deps", "openai ajv autocannon",
                                                       "autocannon/package.json", why);
  if (modules.empty()) ADD_FAILURE() << why;
  return modules;
}

// Runs tests/serve/openai_client.mjs with `config`; the parsed JSON it prints.
inline json run_node_client(const json& config) {
  const std::string modules = node_deps();
  if (modules.empty()) return nullptr;
  static int counter = 0;
  const fs::path config_path =
      fs::temp_directory_path() / ("edgelm-serve-client-" + std::to_string(::getpid()) + "-" +
                                   std::to_string(counter++) + ".json");
  std::ofstream(config_path) << config.dump();
  const auto r = edgelm::test::run_command(
      "EDGELM_NODE_DEPS=" + edgelm::test::shell_quote(modules) + " node " +
      edgelm::test::shell_quote(
          (edgelm::test::source_dir() / "tests" / "serve" / "openai_client.mjs").string()) +
      " " + edgelm::test::shell_quote(config_path.string()));
  fs::remove(config_path);
  if (r.exit_code != 0) {
    ADD_FAILURE() << "openai_client.mjs failed (" << r.exit_code << "): " << r.err;
    return nullptr;
  }
  json out = json::parse(r.out, nullptr, false);
  if (out.is_discarded()) ADD_FAILURE() << "openai_client.mjs printed no JSON: " << r.out << r.err;
  return out;
}

// A raw TCP connection to the server, for what HTTP clients will not send.
class RawConnection {
 public:
  explicit RawConnection(int port);
  ~RawConnection() { close(); }
  bool send(std::string_view bytes);
  // Reads until the peer closes or `timeout` passes; the bytes read.
  std::string read_all(std::chrono::milliseconds timeout);
  // Reads what is available within `timeout`.
  std::string read_some(std::chrono::milliseconds timeout);
  bool closed_by_peer(std::chrono::milliseconds timeout);
  void close();

 private:
  int fd_ = -1;
};

}  // namespace edgelm::serve::test
