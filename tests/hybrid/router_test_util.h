// Shared pieces of the router tests: the real stories260K model behind a real scheduler, and a
// real upstream HTTP server (cpp-httplib, in process) that records every request it receives and
// answers in OpenAI's shape — or fails in the ways a real upstream does.
#pragma once

#include <gtest/gtest.h>
#include <httplib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/test_paths.h"
#include "edgelm/engine.h"
#include "edgelm/hybrid/router.h"
#include "edgelm/security/keys.h"
#include "edgelm/serve/scheduler.h"
#include "edgelm/serve/server.h"

namespace edgelm::hybrid::test {

using nlohmann::json;
namespace fs = std::filesystem;

inline const runtime::Engine& stories_engine() {
  static std::unique_ptr<runtime::Engine> engine = [] {
    Config config;
    config.threads = 1;
    config.ctx = 512;
    auto e = runtime::Engine::load(
        edgelm::test::shared_models_dir() / "stories260K" / "stories260K.gguf", config);
    if (!e) {
      ADD_FAILURE() << e.error().to_string();
      return std::unique_ptr<runtime::Engine>();
    }
    return std::move(*e);
  }();
  return *engine;
}

inline serve::Scheduler& stories_scheduler() {
  static std::unique_ptr<serve::Scheduler> scheduler = [] {
    serve::SchedulerOptions options;
    options.n_slots = 2;
    options.n_ctx = 512;
    auto s = serve::Scheduler::create(stories_engine(), options);
    if (!s) ADD_FAILURE() << s.error().to_string();
    return s ? std::move(*s) : nullptr;
  }();
  return *scheduler;
}

// How the recording upstream answers.
enum class UpstreamMode { kEcho, kServerError, kGarbage, kSlow };

// Placeholders of the last user message, in order of first appearance.
inline std::vector<std::string> placeholders_in(const std::string& text) {
  static const std::regex pattern("<[A-Z_]+_[0-9]+>");
  std::vector<std::string> out;
  for (auto it = std::sregex_iterator(text.begin(), text.end(), pattern);
       it != std::sregex_iterator(); ++it) {
    if (std::find(out.begin(), out.end(), it->str()) == out.end()) out.push_back(it->str());
  }
  return out;
}

// kEcho answers "You wrote P1 and P2." with the placeholders of the last message; streamed in
// 3-byte pieces, so placeholders are split across SSE events.
class RecordingUpstream {
 public:
  explicit RecordingUpstream(UpstreamMode mode = UpstreamMode::kEcho) : mode_(mode) {
    // Every request on any path is counted before its body is read; chat requests are recorded
    // whole (request line, headers, body).
    server_.set_pre_routing_handler([this](const httplib::Request&, httplib::Response&) {
      ++requests_seen_;
      return httplib::Server::HandlerResponse::Unhandled;
    });
    server_.Post("/v1/chat/completions",
                 [this](const httplib::Request& req, httplib::Response& res) {
                   {
                     std::lock_guard<std::mutex> lock(mutex_);
                     std::string raw = req.method + " " + req.path + "\n";
                     for (const auto& [name, value] : req.headers)
                       raw += name + ": " + value + "\n";
                     raw += "\n" + req.body;
                     received_.push_back(std::move(raw));
                   }
                   answer(req, res);
                 });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    // stop() before the listen loop has started would be lost, and join() would hang.
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~RecordingUpstream() {
    stopping_ = true;
    server_.stop();
    thread_.join();
  }

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::vector<std::string> received() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return received_;
  }
  int requests_seen() const { return requests_seen_; }
  size_t bytes_received() const {
    size_t n = 0;
    for (const std::string& r : received()) n += r.size();
    return n;
  }
  // The content the echo mode answers to `last_message`.
  static std::string echo_content(const std::string& last_message) {
    std::string content = "You wrote";
    const auto found = placeholders_in(last_message);
    for (size_t i = 0; i < found.size(); ++i) content += (i == 0 ? " " : " and ") + found[i];
    return content + ".";
  }

 private:
  void answer(const httplib::Request& req, httplib::Response& res) {
    if (mode_ == UpstreamMode::kServerError) {
      res.status = 500;
      res.set_content(R"({"error":{"message":"boom","type":"server_error"}})", "application/json");
      return;
    }
    if (mode_ == UpstreamMode::kGarbage) {
      res.set_content("<html>not json at all", "application/json");
      return;
    }
    if (mode_ == UpstreamMode::kSlow) {
      for (int i = 0; i < 100 && !stopping_; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    }
    const json body = json::parse(req.body);
    const std::string content = echo_content(body["messages"].back()["content"]);
    if (!body.value("stream", false)) {
      res.set_content(
          json{{"id", "up-1"},
               {"object", "chat.completion"},
               {"model", body["model"]},
               {"choices", json::array({{{"index", 0},
                                         {"message", {{"role", "assistant"}, {"content", content}}},
                                         {"finish_reason", "stop"}}})}}
              .dump(),
          "application/json");
      return;
    }
    std::string sse;
    auto event = [&](const json& delta, const json& finish) {
      sse += "data: " +
             json{{"object", "chat.completion.chunk"},
                  {"choices",
                   json::array({{{"index", 0}, {"delta", delta}, {"finish_reason", finish}}})}}
                 .dump() +
             "\n\n";
    };
    event({{"role", "assistant"}}, nullptr);
    for (size_t i = 0; i < content.size(); i += 3)
      event({{"content", content.substr(i, 3)}}, nullptr);
    event(json::object(), "stop");
    sse += "data: [DONE]\n\n";
    res.set_content(sse, "text/event-stream");
  }

  UpstreamMode mode_;
  httplib::Server server_;
  int port_ = -1;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  std::atomic<int> requests_seen_{0};
  mutable std::mutex mutex_;
  std::vector<std::string> received_;
};

// A loopback port nothing listens on (bound, then closed).
inline int closed_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

// A fresh directory under the build tree, removed at the end of the test.
class TempDir {
 public:
  explicit TempDir(const std::string& name)
      : path_(edgelm::test::binary_dir() / "hybrid_test_tmp" /
              (name + "-" + std::to_string(::getpid()))) {
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

inline std::string read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// A key file (0600) in `dir`.
inline fs::path make_key(const fs::path& dir) {
  auto key = security::SecretKey::generate();
  EXPECT_TRUE(key.has_value());
  const fs::path path = dir / "hybrid.key";
  EXPECT_TRUE(key->save(path).has_value());
  return path;
}

// A policy with an upstream at `url`; threshold +1e9 escalates every answer, -1e9 none.
inline HybridPolicy policy_for(const std::string& url, double threshold, bool consent = true) {
  HybridPolicy p;
  p.threshold = threshold;
  p.upstream.url = url;
  p.upstream.model = "big";
  p.upstream.timeout_ms = 1000;
  p.deadline_ms = 3000;
  p.local_max_tokens = 4;
  p.consent.default_consent = consent;
  return p;
}

struct RouterReply {
  int status = 0;
  json body;                        // non-streaming answers
  std::vector<json> events;         // streaming answers, [DONE] excluded
  std::vector<std::string> deltas;  // streamed content pieces
  std::string content;              // the answer's text either way
  json edgelm;                      // the extension field
  double elapsed_ms = 0;
};

// Calls the router as the server would for a request with one user message.
inline RouterReply ask(HybridRouter& router, const std::string& message, bool stream = false,
                       std::map<std::string, std::string> headers = {}, std::string user = {}) {
  json request = {{"model", "stories260K"},
                  {"messages", json::array({{{"role", "user"}, {"content", message}}})},
                  {"temperature", 0},
                  {"max_tokens", 4},
                  {"stream", stream}};
  if (!user.empty()) request["user"] = user;
  const std::string body = request.dump();
  const std::string model_id = "stories260K";
  const serve::RequestLimits limits;
  const serve::ChatCall call{body,
                             [&headers](const std::string& name) {
                               auto it = headers.find(name);
                               return it == headers.end() ? std::string() : it->second;
                             },
                             "",
                             stories_scheduler(),
                             stories_engine(),
                             model_id,
                             limits};
  const auto start = std::chrono::steady_clock::now();
  serve::ChatReply reply = router.handle(call);
  RouterReply out;
  out.status = reply.status;
  if (!reply.stream) {
    out.body = json::parse(reply.body);
    if (out.status == 200) {
      out.content = out.body["choices"][0]["message"]["content"];
      out.edgelm = out.body["edgelm"];
    }
  } else {
    std::string wire;
    reply.stream([&](std::string_view event) {
      wire.append(event);
      return true;
    });
    size_t pos = 0;
    while ((pos = wire.find("data: ", pos)) != std::string::npos) {
      const size_t end = wire.find("\n\n", pos);
      const std::string data = wire.substr(pos + 6, end - pos - 6);
      pos = end;
      if (data == "[DONE]") break;
      json event = json::parse(data);
      const json& delta = event["choices"][0]["delta"];
      if (delta.contains("content") && !delta["content"].get<std::string>().empty()) {
        out.deltas.push_back(delta["content"]);
        out.content += out.deltas.back();
      }
      if (event.contains("edgelm")) out.edgelm = event["edgelm"];
      out.events.push_back(std::move(event));
    }
  }
  out.elapsed_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  return out;
}

}  // namespace edgelm::hybrid::test
