// The HTTP server end to end with the real model: response and error shapes, SSE framing, bad
// input of every kind, authentication, rate limits, full queues, disconnects, slow clients,
// metrics and graceful shutdown. The greedy texts are checked against the numpy reference decode.
#include <future>
#include <map>
#include <regex>

#include "serve/serve_test_util.h"

namespace edgelm::serve::test {
namespace {

using namespace std::chrono_literals;

json completion_body(size_t prefix, int max_tokens, bool stream = false) {
  const auto& t = reference_decode().tokens;
  return {
      {"model", "stories260K"},
      {"prompt", std::vector<int32_t>(t.begin(), t.begin() + static_cast<std::ptrdiff_t>(prefix))},
      {"max_tokens", max_tokens},
      {"temperature", 0},
      {"stream", stream}};
}

// Parses an SSE body into its data payloads, checking the framing.
std::vector<std::string> sse_events(const std::string& body) {
  std::vector<std::string> events;
  size_t pos = 0;
  while (pos < body.size()) {
    const size_t end = body.find("\n\n", pos);
    EXPECT_NE(end, std::string::npos) << "unterminated event: " << body.substr(pos);
    if (end == std::string::npos) break;
    const std::string event = body.substr(pos, end - pos);
    pos = end + 2;
    if (event.rfind(":", 0) == 0) continue;  // comment (keep-alive)
    EXPECT_EQ(event.rfind("data: ", 0), 0u) << event;
    events.push_back(event.substr(6));
  }
  return events;
}

void expect_error(const httplib::Result& r, int status, const std::string& type = {}) {
  ASSERT_TRUE(r) << "no response";
  EXPECT_EQ(r->status, status) << r->body;
  const json body = json::parse(r->body, nullptr, false);
  ASSERT_TRUE(body.is_object()) << r->body;
  ASSERT_TRUE(body.contains("error")) << r->body;
  const json& e = body["error"];
  EXPECT_TRUE(e["message"].is_string() && !e["message"].get<std::string>().empty()) << r->body;
  EXPECT_TRUE(e["type"].is_string()) << r->body;
  EXPECT_TRUE(e.contains("param") && e.contains("code")) << r->body;
  if (!type.empty()) {
    EXPECT_EQ(e["type"], type) << r->body;
  }
}

void expect_healthy(TestServer& server) {
  auto c = server.client();
  auto h = c.Get("/health");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, 200);
}

TEST(Server, CompletionMatchesReferenceAndOpenAiShape) {
  TestServer server(small_options());
  auto c = server.client();
  auto r = c.Post("/v1/completions", completion_body(7, 30).dump(), "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_NE(r->get_header_value("Content-Type").find("application/json"), std::string::npos);
  const json body = json::parse(r->body);
  EXPECT_EQ(body["object"], "text_completion");
  EXPECT_EQ(body["model"], "stories260K");
  EXPECT_EQ(body["id"].get<std::string>().rfind("cmpl-", 0), 0u);
  EXPECT_TRUE(body["created"].is_number_integer());
  ASSERT_EQ(body["choices"].size(), 1u);
  EXPECT_EQ(body["choices"][0]["index"], 0);
  EXPECT_EQ(body["choices"][0]["text"], reference_decode().text(7, 30));
  EXPECT_EQ(body["choices"][0]["finish_reason"], "length");
  EXPECT_TRUE(body["choices"][0]["logprobs"].is_null());
  EXPECT_EQ(body["usage"]["prompt_tokens"], 7);
  EXPECT_EQ(body["usage"]["completion_tokens"], 30);
  EXPECT_EQ(body["usage"]["total_tokens"], 37);
}

TEST(Server, ChatStreamFramingAndUsage) {
  TestServer server(small_options());
  auto c = server.client();
  const json request = {{"model", "stories260K"},
                        {"messages", {{{"role", "user"}, {"content", "Tell me about a cat."}}}},
                        {"max_tokens", 20},
                        {"temperature", 0},
                        {"logprobs", true},
                        {"top_logprobs", 2}};
  auto plain = c.Post("/v1/chat/completions", request.dump(), "application/json");
  ASSERT_TRUE(plain);
  ASSERT_EQ(plain->status, 200) << plain->body;
  const json whole = json::parse(plain->body);
  EXPECT_EQ(whole["object"], "chat.completion");
  EXPECT_EQ(whole["choices"][0]["message"]["role"], "assistant");
  const std::string text = whole["choices"][0]["message"]["content"];
  const json& content_lp = whole["choices"][0]["logprobs"]["content"];
  ASSERT_EQ(content_lp.size(), whole["usage"]["completion_tokens"].get<size_t>());
  for (const json& entry : content_lp) {
    EXPECT_LE(entry["logprob"].get<double>(), 0.0);
    EXPECT_EQ(entry["top_logprobs"].size(), 2u);
    // Greedy: the chosen token is the most likely one.
    EXPECT_EQ(entry["token"], entry["top_logprobs"][0]["token"]);
  }

  json streamed = request;
  streamed["stream"] = true;
  streamed["stream_options"] = {{"include_usage", true}};
  auto s = c.Post("/v1/chat/completions", streamed.dump(), "application/json");
  ASSERT_TRUE(s);
  ASSERT_EQ(s->status, 200);
  EXPECT_NE(s->get_header_value("Content-Type").find("text/event-stream"), std::string::npos);
  const auto events = sse_events(s->body);
  ASSERT_GE(events.size(), 4u);
  EXPECT_EQ(events.back(), "[DONE]");
  std::string joined;
  std::string finish;
  json usage;
  std::string id;
  for (size_t i = 0; i + 1 < events.size(); ++i) {
    const json chunk = json::parse(events[i]);
    EXPECT_EQ(chunk["object"], "chat.completion.chunk");
    if (id.empty()) id = chunk["id"];
    EXPECT_EQ(chunk["id"], id);  // one id for the whole stream
    if (chunk["choices"].empty()) {
      usage = chunk["usage"];
      continue;
    }
    EXPECT_TRUE(chunk["usage"].is_null());
    const json& choice = chunk["choices"][0];
    if (i == 0) {
      EXPECT_EQ(choice["delta"]["role"], "assistant");
    }
    if (choice["delta"].contains("content"))
      joined += choice["delta"]["content"].get<std::string>();
    if (!choice["finish_reason"].is_null()) finish = choice["finish_reason"];
  }
  EXPECT_EQ(joined, text);
  EXPECT_EQ(finish, whole["choices"][0]["finish_reason"]);
  EXPECT_EQ(usage["completion_tokens"], whole["usage"]["completion_tokens"]);
  EXPECT_EQ(usage["prompt_tokens"], whole["usage"]["prompt_tokens"]);
}

TEST(Server, ModelsHealthAndUnknownRoutes) {
  TestServer server(small_options());
  auto c = server.client();
  auto models = c.Get("/v1/models");
  ASSERT_TRUE(models);
  EXPECT_EQ(json::parse(models->body)["data"][0]["id"], "stories260K");
  auto one = c.Get("/v1/models/stories260K");
  ASSERT_TRUE(one);
  EXPECT_EQ(json::parse(one->body)["object"], "model");
  expect_error(c.Get("/v1/models/gpt-4"), 404, "invalid_request_error");
  expect_error(c.Get("/v1/nothing-here"), 404, "invalid_request_error");
  expect_error(c.Post("/v1/nothing", "{}", "application/json"), 404);
  auto health = c.Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(json::parse(health->body)["status"], "ok");
}

TEST(Server, BadInputGets4xxAndServerKeepsServing) {
  ServerOptions o = small_options();
  o.limits.max_body_bytes = 64 * 1024;
  TestServer server(o);
  auto c = server.client();
  const std::string ok_messages = R"("messages":[{"role":"user","content":"hi"}])";
  const std::vector<std::pair<std::string, int>> cases = {
      {"{not json", 400},
      {"[1,2,3]", 400},
      {R"({"model":"stories260K",)" + ok_messages + R"(,"max_tokens":-5})", 400},
      {R"({"model":"stories260K",)" + ok_messages + R"(,"max_tokens":1000000000})", 400},
      {R"({"model":"stories260K",)" + ok_messages + R"(,"temperature":"warm"})", 400},
      {R"({"model":"stories260K",)" + ok_messages + R"(,"frobnicate":true})", 400},
      {R"({"model":"stories260K","messages":[{"role":"user","content":"bad \xc3\x28 bytes"}]})",
       400},
      {R"({"model":"gpt-4o",)" + ok_messages + "}", 404},
      {R"({"model":"stories260K",)" + ok_messages + R"(,"logit_bias":{"100000":5}})", 400},
      {R"({"model":"stories260K",)" + ok_messages +
           R"(,"response_format":{"type":"json_schema","json_schema":{"name":"x","schema":{"type":"frobject"}}}})",
       400},
      {"{\"model\":\"stories260K\",\"messages\":" + std::string(5000, '[') +
           std::string(5000, ']') + "}",
       400},
  };
  for (const auto& [body, status] : cases) {
    expect_error(c.Post("/v1/chat/completions", body, "application/json"), status);
    expect_healthy(server);
  }
  // A prompt longer than a slot's context.
  json long_prompt = completion_body(1, 4);
  long_prompt["prompt"] = std::vector<int32_t>(600, 300);
  auto lp = c.Post("/v1/completions", long_prompt.dump(), "application/json");
  expect_error(lp, 400);
  EXPECT_EQ(json::parse(lp->body)["error"]["code"], "context_length_exceeded");
  // Token ids outside the vocabulary.
  json bad_ids = completion_body(1, 4);
  bad_ids["prompt"] = {1, 99999};
  expect_error(c.Post("/v1/completions", bad_ids.dump(), "application/json"), 400);
  // Bodies over the limit are refused before they are read.
  const std::string huge =
      "{\"model\":\"stories260K\",\"prompt\":\"" + std::string(200 * 1024, 'a') + "\"}";
  expect_error(c.Post("/v1/completions", huge, "application/json"), 413);
  // Malformed HTTP.
  RawConnection raw(server.port());
  raw.send("GARBAGE\r\n\r\n");
  const std::string reply = raw.read_all(3s);
  EXPECT_EQ(reply.rfind("HTTP/1.1 4", 0), 0u) << reply;
  expect_healthy(server);
  auto after = c.Post("/v1/completions", completion_body(3, 5).dump(), "application/json");
  ASSERT_TRUE(after);
  EXPECT_EQ(after->status, 200);
}

// Slow-loris: connections that trickle their headers are cut off after the read timeout, and
// everyone else is served meanwhile.
TEST(Server, SlowClientsTimeOutWithoutBlockingOthers) {
  ServerOptions o = small_options();
  o.read_timeout = 1s;
  TestServer server(o);
  std::vector<std::unique_ptr<RawConnection>> slow;
  for (int i = 0; i < 8; ++i) {
    slow.push_back(std::make_unique<RawConnection>(server.port()));
    slow.back()->send("POST /v1/completions HTTP/1.1\r\nHost: x\r\n");
  }
  auto c = server.client();
  const auto t0 = std::chrono::steady_clock::now();
  auto r = c.Post("/v1/completions", completion_body(5, 8).dump(), "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
  for (auto& conn : slow) {
    conn->send("X-Slow: 1\r\n");  // one more header line, then silence
  }
  for (auto& conn : slow) EXPECT_TRUE(conn->closed_by_peer(5s));
  expect_healthy(server);
}

TEST(Server, ApiKeysAndRateLimits) {
  const std::string key = "sk-edgelm-test-0123456789";
  const std::string limited = "sk-edgelm-limited-0123456789";
  ServerOptions o = small_options();
  auto store = ApiKeyStore::parse("main " + *hash_api_key(key) + "\nsmall " +
                                  *hash_api_key(limited) + " 3\n");
  ASSERT_TRUE(store);
  o.keys = std::move(*store);
  TestServer server(o);
  auto c = server.client();
  const std::string body = completion_body(3, 2).dump();

  auto none = c.Post("/v1/completions", body, "application/json");
  expect_error(none, 401, "invalid_request_error");
  c.set_bearer_token_auth("sk-not-a-valid-key-000000");
  auto wrong = c.Post("/v1/completions", body, "application/json");
  expect_error(wrong, 401, "invalid_request_error");
  EXPECT_EQ(json::parse(wrong->body)["error"]["code"], "invalid_api_key");
  EXPECT_EQ(wrong->body.find("sk-not-a-valid"), std::string::npos);  // the key is not echoed
  expect_error(c.Get("/v1/models"), 401);
  expect_error(c.Get("/metrics"), 401);
  expect_healthy(server);  // /health needs no key

  c.set_bearer_token_auth(key);
  for (int i = 0; i < 5; ++i) {
    auto r = c.Post("/v1/completions", body, "application/json");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200) << r->body;
  }
  c.set_bearer_token_auth(limited);
  for (int i = 0; i < 3; ++i) {
    auto r = c.Post("/v1/completions", body, "application/json");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200) << r->body;
  }
  auto over = c.Post("/v1/completions", body, "application/json");
  expect_error(over, 429, "requests");
  EXPECT_EQ(json::parse(over->body)["error"]["code"], "rate_limit_exceeded");
  EXPECT_EQ(over->get_header_value("Retry-After"), "20");  // 3 per minute: one every 20 s
  // The limit is per key.
  c.set_bearer_token_auth(key);
  auto other = c.Post("/v1/completions", body, "application/json");
  ASSERT_TRUE(other);
  EXPECT_EQ(other->status, 200);
}

// A non-streamed completion still running after ServerOptions::plain_wait goes out as a chunked
// body (whitespace heartbeats, then the JSON); it is counted as a 200 like any other.
TEST(Server, SlowPlainCompletionIsChunkedAndCountedAs200) {
  ServerOptions options = small_options(1, 0);
  options.plain_wait = std::chrono::milliseconds(0);
  TestServer server(options);
  json slow = completion_body(1, 64);
  slow["logit_bias"] = {{"2", -100}};  // no end-of-sequence: all 64 tokens
  auto c = server.client();
  auto r = c.Post("/v1/completions", slow.dump(), "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(r->get_header_value("Transfer-Encoding"), "chunked");
  EXPECT_EQ(json::parse(r->body)["usage"]["completion_tokens"], 64);
  const std::string metrics = c.Get("/metrics")->body;
  EXPECT_NE(metrics.find("edgelm_requests_total{endpoint=\"/v1/completions\",status=\"200\"} 1"),
            std::string::npos)
      << metrics;
}

// With every slot busy and no queue, a request gets 503 with Retry-After; a client that hangs up
// frees its slot for the next one.
TEST(Server, FullQueueGets503AndDisconnectFreesTheSlot) {
  // The stream must outlast the checks below: a long context and no end-of-sequence token
  // (id 2 in stories260K's vocabulary) keep it generating for seconds.
  ServerOptions options = small_options(1, 0);
  options.scheduler.n_ctx = 4096;
  TestServer server(options);
  RawConnection streaming(server.port());
  json endless = completion_body(1, 4000, true);
  endless["logit_bias"] = {{"2", -100}};
  const std::string payload = endless.dump();
  streaming.send(
      "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: "
      "application/json\r\nContent-Length: " +
      std::to_string(payload.size()) + "\r\n\r\n" + payload);
  const std::string first = streaming.read_some(10s);
  ASSERT_NE(first.find("200"), std::string::npos) << first;

  auto c = server.client();
  auto busy = c.Post("/v1/completions", completion_body(2, 4).dump(), "application/json");
  expect_error(busy, 503);
  EXPECT_FALSE(busy->get_header_value("Retry-After").empty());
  auto health = json::parse(c.Get("/health")->body);
  EXPECT_EQ(health["slots_busy"], 1);

  streaming.close();
  bool freed = false;
  for (int i = 0; i < 100 && !freed; ++i) {
    std::this_thread::sleep_for(50ms);
    freed = json::parse(c.Get("/health")->body)["slots_busy"] == 0;
  }
  EXPECT_TRUE(freed) << "the slot of a disconnected client was not freed";
  auto next = c.Post("/v1/completions", completion_body(2, 4).dump(), "application/json");
  ASSERT_TRUE(next);
  EXPECT_EQ(next->status, 200) << next->body;
}

TEST(Server, MetricsArePrometheusText) {
  TestServer server(small_options());
  auto c = server.client();
  for (int i = 0; i < 3; ++i)
    c.Post("/v1/completions", completion_body(2 + i, 6).dump(), "application/json");
  c.Post("/v1/completions", "{", "application/json");
  auto r = c.Get("/metrics");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_NE(r->get_header_value("Content-Type").find("text/plain"), std::string::npos);
  // Text exposition format 0.0.4: comments, or `name{labels} value`.
  const std::regex sample(
      R"(^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_][a-zA-Z0-9_]*="[^"]*"(,[a-zA-Z_][a-zA-Z0-9_]*="[^"]*")*\})? [-+0-9.eE]+(Inf)?$)");
  std::istringstream lines(r->body);
  std::string line;
  std::map<std::string, double> values;
  while (std::getline(lines, line)) {
    if (line.rfind("# HELP ", 0) == 0 || line.rfind("# TYPE ", 0) == 0) continue;
    EXPECT_TRUE(std::regex_match(line, sample)) << line;
    const size_t space = line.rfind(' ');
    values[line.substr(0, space)] = std::stod(line.substr(space + 1));
  }
  EXPECT_EQ((values["edgelm_requests_total{endpoint=\"/v1/completions\",status=\"200\"}"]), 3);
  EXPECT_EQ((values["edgelm_requests_total{endpoint=\"/v1/completions\",status=\"400\"}"]), 1);
  EXPECT_EQ(values["edgelm_completion_tokens_total"], 18);
  EXPECT_EQ(values["edgelm_prompt_tokens_total"], 2 + 3 + 4);
  EXPECT_EQ(values["edgelm_time_to_first_token_seconds_count"], 3);
  EXPECT_EQ(values["edgelm_time_per_output_token_seconds_count"], 15);
  EXPECT_EQ(values["edgelm_time_to_first_token_seconds_bucket{le=\"+Inf\"}"], 3);
  EXPECT_EQ(values["edgelm_active_slots"], 0);
  EXPECT_EQ(values["edgelm_queue_depth"], 0);
  EXPECT_EQ(values["edgelm_slots"], 4);
}

TEST(Server, LogsCarryNoTextUnlessEnabled) {
  const std::string secret = "zebra-crossing-secret";
  for (bool log_text : {false, true}) {
    ServerOptions o = small_options();
    o.log_text = log_text;
    TestServer server(o);
    auto c = server.client();
    json body = {{"model", "stories260K"},
                 {"messages", {{{"role", "user"}, {"content", secret}}}},
                 {"max_tokens", 4}};
    auto r = c.Post("/v1/chat/completions", body.dump(), "application/json");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    server.stop(std::chrono::steady_clock::now());
    std::string all;
    for (const auto& line : server.log()) all += line + "\n";
    EXPECT_NE(all.find("/v1/chat/completions 200"), std::string::npos) << all;
    EXPECT_EQ(all.find(secret) != std::string::npos, log_text) << all;
  }
}

// SIGTERM-style shutdown: running requests finish within the deadline, new ones get 503, every
// stream ends with [DONE] (after an error event if the deadline cut it; the scheduler tests check
// that cancellation deterministically), and the server stops soon after the deadline.
TEST(Server, GracefulShutdownFinishesRunningRequests) {
  ServerOptions o = small_options(2, 4);
  o.scheduler.n_ctx = 2048;
  TestServer server(o);
  auto finishing = std::async(std::launch::async, [&] {
    auto c = server.client();
    return c.Post("/v1/completions", completion_body(4, 60, true).dump(), "application/json");
  });
  auto long_one = std::async(std::launch::async, [&] {
    auto c = server.client();
    return c.Post("/v1/completions", completion_body(1, 2000, true).dump(), "application/json");
  });
  std::this_thread::sleep_for(50ms);
  const auto t0 = std::chrono::steady_clock::now();
  auto stopping = std::async(std::launch::async, [&] { server.stop(t0 + 300ms); });
  std::this_thread::sleep_for(20ms);
  auto c = server.client();
  auto refused = c.Post("/v1/completions", completion_body(2, 4).dump(), "application/json");
  if (refused) {  // (or the listener is already closed)
    EXPECT_EQ(refused->status, 503);
  }
  stopping.get();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);

  auto done = finishing.get();
  ASSERT_TRUE(done);
  auto events = sse_events(done->body);
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back(), "[DONE]");
  std::string text;
  for (size_t i = 0; i + 1 < events.size(); ++i)
    text += json::parse(events[i])["choices"][0]["text"].get<std::string>();
  EXPECT_EQ(text, reference_decode().text(4, 60));
  auto cut = long_one.get();
  ASSERT_TRUE(cut);
  ASSERT_EQ(cut->status, 200);
  events = sse_events(cut->body);
  ASSERT_GE(events.size(), 2u);
  EXPECT_EQ(events.back(), "[DONE]");
  const json last = json::parse(events[events.size() - 2]);
  EXPECT_TRUE(last.contains("error") || last["choices"][0]["finish_reason"] == "length")
      << last.dump();
  EXPECT_TRUE(server.status()) << server.status().error().to_string();
}

}  // namespace
}  // namespace edgelm::serve::test
