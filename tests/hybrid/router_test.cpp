// The hybrid router end to end with real parts: the stories260K model on a real scheduler, the
// real redactor, and a real upstream HTTP server that records every byte it receives.
#include <gtest/gtest.h>

#include "edgelm/hybrid/audit_log.h"
#include "edgelm/hybrid/evaluation.h"
#include "edgelm/security/encryption.h"
#include "router_test_util.h"

namespace edgelm::hybrid::test {
namespace {

constexpr double kEscalateAll = 1e9;
constexpr double kEscalateNone = -1e9;

const std::string kMessage = "Email jane.doe@example.com or call +44 20 7946 0958 about it.";
const std::string kRestored = "You wrote jane.doe@example.com and +44 20 7946 0958.";

std::unique_ptr<HybridRouter> make_router(HybridPolicy policy, ResponseCache::Clock clock = {}) {
  auto router = HybridRouter::create(std::move(policy), std::move(clock));
  EXPECT_TRUE(router.has_value()) << router.error().to_string();
  return router ? std::move(*router) : nullptr;
}

TEST(HybridRouter, ConfidentLocalAnswerStaysLocal) {
  RecordingUpstream upstream;
  auto router = make_router(policy_for(upstream.url(), kEscalateNone));
  const RouterReply r = ask(*router, kMessage);
  ASSERT_EQ(r.status, 200) << r.body.dump();
  EXPECT_EQ(r.edgelm["route"], "local");
  EXPECT_EQ(r.edgelm["degraded"], false);
  EXPECT_EQ(r.edgelm["entities"]["EMAIL"], 1);
  EXPECT_EQ(r.edgelm["entities"]["PHONE"], 1);
  EXPECT_GT(r.edgelm["confidence"]["tokens"].get<int>(), 0);
  EXPECT_TRUE(upstream.received().empty());
}

TEST(HybridRouter, EscalatesOnlyRedactedTextAndRestoresTheAnswer) {
  RecordingUpstream upstream;
  auto router = make_router(policy_for(upstream.url(), kEscalateAll));
  const RouterReply r = ask(*router, kMessage);
  ASSERT_EQ(r.status, 200) << r.body.dump();
  EXPECT_EQ(r.edgelm["route"], "upstream");
  EXPECT_EQ(r.edgelm["degraded"], false);
  EXPECT_EQ(r.content, kRestored);
  const auto received = upstream.received();
  ASSERT_EQ(received.size(), 1u);
  EXPECT_NE(received[0].find("<EMAIL_1>"), std::string::npos);
  EXPECT_NE(received[0].find("<PHONE_1>"), std::string::npos);
  EXPECT_EQ(received[0].find("jane.doe"), std::string::npos);
  EXPECT_EQ(received[0].find("7946"), std::string::npos);
  EXPECT_NE(received[0].find("\"model\":\"big\""), std::string::npos);
}

TEST(HybridRouter, StreamingRestoresPlaceholdersSplitAcrossChunks) {
  RecordingUpstream upstream;  // streams in 3-byte pieces: "<EMAIL_1>" spans 3+ events
  auto router = make_router(policy_for(upstream.url(), kEscalateAll));
  const RouterReply r = ask(*router, kMessage, /*stream=*/true);
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.edgelm["route"], "upstream") << r.edgelm.dump();
  EXPECT_EQ(r.content, kRestored);
  ASSERT_GT(r.deltas.size(), 3u);
  for (const std::string& d : r.deltas) {
    EXPECT_EQ(d.find('<'), std::string::npos) << "half a placeholder went out: " << d;
    EXPECT_EQ(d.find('>'), std::string::npos) << "half a placeholder went out: " << d;
  }
  EXPECT_EQ(r.events.front()["choices"][0]["delta"]["role"], "assistant");
  EXPECT_EQ(r.events.back()["choices"][0]["finish_reason"], "stop");
}

TEST(HybridRouter, EgressOverTheWholeLabeledSetCarriesNoStructuredValue) {
  RecordingUpstream upstream;
  HybridPolicy policy = policy_for(upstream.url(), kEscalateAll);
  policy.local_max_tokens = 1;
  auto router = make_router(policy);
  std::vector<LabeledExample> examples;
  for (const char* file : {"pii_generated.jsonl", "pii_hard_cases.jsonl"}) {
    auto loaded = load_labeled_jsonl(edgelm::test::source_dir() / "tests/hybrid/data" / file);
    ASSERT_TRUE(loaded.has_value()) << loaded.error().to_string();
    examples.insert(examples.end(), loaded->begin(), loaded->end());
  }
  size_t escalated = 0;
  for (const LabeledExample& ex : examples) {
    const RouterReply r = ask(*router, ex.text);
    ASSERT_EQ(r.status, 200) << ex.text;
    if (r.edgelm["route"] == "upstream") ++escalated;
  }
  EXPECT_EQ(escalated, examples.size());
  const auto received = upstream.received();
  ASSERT_EQ(received.size(), examples.size());
  std::string all;
  for (const std::string& r : received) all += r;
  // The recorded bytes hold JSON: compare against values as JSON would spell them too.
  size_t checked = 0;
  for (const LabeledExample& ex : examples) {
    for (const EntitySpan& span : ex.gold) {
      if (!is_structured(span.type)) continue;
      const std::string value = ex.text.substr(span.begin, span.size());
      const std::string escaped = json(value).dump();
      EXPECT_EQ(all.find(escaped.substr(1, escaped.size() - 2)), std::string::npos)
          << entity_type_name(span.type) << " value reached the upstream: " << value;
      ++checked;
    }
  }
  EXPECT_GT(checked, 500u);
}

TEST(HybridRouter, NoConsentMeansNotOneByteUpstream) {
  RecordingUpstream upstream;
  auto router = make_router(policy_for(upstream.url(), kEscalateAll, /*consent=*/true));
  for (const std::string& text : {kMessage, std::string("What is 2 + 2?")}) {
    for (bool stream : {false, true}) {
      const RouterReply r = ask(*router, text, stream, {{kConsentHeader, "no"}});
      ASSERT_EQ(r.status, 200);
      EXPECT_EQ(r.edgelm["route"], "local");
      EXPECT_EQ(r.edgelm["degraded"], true);
      EXPECT_EQ(r.edgelm["consent"]["source"], "request");
      EXPECT_EQ(r.edgelm["reason"].get<std::string>().rfind("no_consent", 0), 0u);
    }
  }
  // The policy default and the per-user table decide without a header.
  HybridPolicy policy = policy_for(upstream.url(), kEscalateAll, /*consent=*/false);
  policy.consent.users["alice"] = true;
  policy.consent.users["bob"] = false;
  auto strict = make_router(policy);
  EXPECT_EQ(ask(*strict, kMessage).edgelm["consent"]["source"], "policy");
  const RouterReply bob = ask(*strict, kMessage, false, {}, "bob");
  EXPECT_EQ(bob.edgelm["consent"]["source"], "user");
  EXPECT_EQ(bob.edgelm["route"], "local");
  EXPECT_EQ(upstream.bytes_received(), 0u);
  EXPECT_EQ(upstream.requests_seen(), 0);
  const RouterReply alice = ask(*strict, kMessage, false, {}, "alice");
  EXPECT_EQ(alice.edgelm["route"], "upstream");
  EXPECT_EQ(upstream.received().size(), 1u);
  // The user id itself stays on the device.
  EXPECT_EQ(upstream.received()[0].find("alice"), std::string::npos);
}

TEST(HybridRouter, BadConsentHeaderIsAnActionable400) {
  RecordingUpstream upstream;
  auto router = make_router(policy_for(upstream.url(), kEscalateAll));
  const RouterReply r = ask(*router, kMessage, false, {{kConsentHeader, "maybe"}});
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body["error"]["message"].get<std::string>().find(kConsentHeader), std::string::npos);
  EXPECT_TRUE(upstream.received().empty());
}

struct Failure {
  const char* name;
  UpstreamMode mode;
  bool refused;
};

class Degradation : public ::testing::TestWithParam<Failure> {};

TEST_P(Degradation, FallsBackToTheLocalAnswerWithinTheDeadline) {
  const Failure f = GetParam();
  RecordingUpstream upstream(f.mode);
  const std::string url =
      f.refused ? "http://127.0.0.1:" + std::to_string(closed_port()) : upstream.url();
  HybridPolicy policy = policy_for(url, kEscalateAll);
  policy.deadline_ms = 1500;
  auto router = make_router(policy);
  for (bool stream : {false, true}) {
    const RouterReply r = ask(*router, kMessage, stream);
    ASSERT_EQ(r.status, 200) << f.name;
    EXPECT_EQ(r.edgelm["route"], "local") << f.name;
    EXPECT_EQ(r.edgelm["degraded"], true) << f.name;
    EXPECT_EQ(r.edgelm["reason"].get<std::string>().rfind("upstream_failed", 0), 0u)
        << r.edgelm["reason"];
    EXPECT_GT(r.edgelm["confidence"]["tokens"].get<int>(), 0);
    EXPECT_LT(r.elapsed_ms, policy.deadline_ms + 700.0) << f.name;
  }
}

INSTANTIATE_TEST_SUITE_P(Upstream, Degradation,
                         ::testing::Values(Failure{"refused", UpstreamMode::kEcho, true},
                                           Failure{"timeout", UpstreamMode::kSlow, false},
                                           Failure{"status500", UpstreamMode::kServerError, false},
                                           Failure{"garbage", UpstreamMode::kGarbage, false}),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(HybridRouter, BudgetSpentDegradesWithoutContactingTheUpstream) {
  RecordingUpstream upstream;
  HybridPolicy policy = policy_for(upstream.url(), kEscalateAll);
  policy.upstream.max_requests_per_minute = 1;
  auto router = make_router(policy);
  EXPECT_EQ(ask(*router, kMessage).edgelm["route"], "upstream");
  const RouterReply second = ask(*router, "Another question for jane.doe@example.com?");
  EXPECT_EQ(second.edgelm["route"], "local");
  EXPECT_EQ(second.edgelm["reason"].get<std::string>().rfind("over_budget", 0), 0u);
  EXPECT_EQ(upstream.received().size(), 1u);
}

TEST(HybridRouter, CacheHitsOnTheRedactedPromptExpiresAndHoldsNoPlaintext) {
  RecordingUpstream upstream;
  TempDir dir("cache");
  HybridPolicy policy = policy_for(upstream.url(), kEscalateAll);
  policy.key_file = make_key(dir.path()).string();
  policy.cache.path = (dir.path() / "cache.enc").string();
  policy.cache.ttl_s = 60;
  policy.audit_path = (dir.path() / "audit").string();
  auto offset = std::make_shared<std::atomic<int>>(0);
  auto clock = [offset] {
    return std::chrono::system_clock::now() + std::chrono::seconds(offset->load());
  };
  auto router = make_router(policy, clock);

  EXPECT_EQ(ask(*router, kMessage).edgelm["route"], "upstream");
  const RouterReply hit = ask(*router, kMessage);
  EXPECT_EQ(hit.edgelm["route"], "cache");
  EXPECT_EQ(hit.content, kRestored);
  // Another person's data, same redacted prompt: the cached answer restored with their values.
  const RouterReply other =
      ask(*router, "Email max.power@example.org or call +44 20 7946 0123 about it.", true);
  EXPECT_EQ(other.edgelm["route"], "cache");
  EXPECT_EQ(other.content, "You wrote max.power@example.org and +44 20 7946 0123.");
  EXPECT_EQ(upstream.received().size(), 1u);

  const std::string file = read_bytes(policy.cache.path);
  EXPECT_TRUE(security::is_encrypted_file(policy.cache.path));
  for (const char* plain : {"jane.doe", "7946", "You wrote", "EMAIL_1", "Email"}) {
    EXPECT_EQ(file.find(plain), std::string::npos) << plain;
  }
  // A new router over the same file (a restart) still hits.
  router.reset();
  router = make_router(policy, clock);
  EXPECT_EQ(ask(*router, kMessage).edgelm["route"], "cache");

  *offset = 61;  // past the TTL
  EXPECT_EQ(ask(*router, kMessage).edgelm["route"], "upstream");
  EXPECT_EQ(upstream.received().size(), 2u);

  // Audit: one record per escalation, encrypted, with counts and sizes but no personal values.
  auto key = security::SecretKey::load(policy.key_file);
  ASSERT_TRUE(key.has_value());
  auto records = AuditLog::read_all(policy.audit_path, *key);
  ASSERT_TRUE(records.has_value()) << records.error().to_string();
  ASSERT_EQ(records->size(), 2u);
  for (const json& record : *records) {
    EXPECT_EQ(record["entities"]["EMAIL"], 1);
    EXPECT_EQ(record["entities"]["PHONE"], 1);
    EXPECT_EQ(record["consent_source"], "policy");
    EXPECT_EQ(record["upstream"], upstream.url());
    EXPECT_EQ(record["outcome"], "ok");
    EXPECT_GT(record["bytes_sent"].get<size_t>(), 100u);
    EXPECT_TRUE(record["confidence"].contains("mean_logprob"));
    EXPECT_EQ(record.dump().find("jane"), std::string::npos);
  }
  for (const auto& entry : fs::directory_iterator(policy.audit_path)) {
    const std::string bytes = read_bytes(entry.path());
    EXPECT_EQ(bytes.find("EMAIL"), std::string::npos);
    EXPECT_EQ(bytes.find("bytes_sent"), std::string::npos);
  }
}

TEST(HybridRouter, ProfileFactsReachOnlyTheLocalModel) {
  RecordingUpstream upstream;
  TempDir dir("profile");
  const fs::path profile = dir.path() / "profiles.json";
  std::ofstream(profile) << R"({"alice": ["Alice Marchetti lives in Lyon and prefers tea."]})";
  HybridPolicy policy = policy_for(upstream.url(), kEscalateAll);
  policy.profile_path = profile.string();
  auto router = make_router(policy);
  const RouterReply r = ask(*router, "Any plans for today?", false, {}, "alice");
  ASSERT_EQ(r.status, 200) << r.body.dump();
  EXPECT_EQ(r.edgelm["route"], "upstream");
  ASSERT_EQ(upstream.received().size(), 1u);
  for (const char* fact : {"Marchetti", "Lyon", "tea"}) {
    EXPECT_EQ(upstream.received()[0].find(fact), std::string::npos) << fact;
  }
}

TEST(HybridRouter, ServesThroughTheServerHook) {
  RecordingUpstream upstream;
  auto router = make_router(policy_for(upstream.url(), kEscalateAll));
  serve::ServerOptions options;
  options.port = 0;
  options.model_id = "stories260K";
  options.scheduler.n_ctx = 512;
  options.chat_handler = router->handler();
  auto server = serve::Server::create(stories_engine(), options);
  ASSERT_TRUE(server.has_value()) << server.error().to_string();
  std::thread thread([&] { (void)(*server)->run(); });
  httplib::Client client("127.0.0.1", (*server)->port());
  client.set_read_timeout(10, 0);
  const json request = {{"model", "stories260K"},
                        {"messages", json::array({{{"role", "user"}, {"content", kMessage}}})},
                        {"max_tokens", 4}};
  auto plain = client.Post("/v1/chat/completions", request.dump(), "application/json");
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->status, 200);
  const json body = json::parse(plain->body);
  EXPECT_EQ(body["choices"][0]["message"]["content"], kRestored);
  EXPECT_EQ(body["edgelm"]["route"], "upstream");

  json streaming = request;
  streaming["stream"] = true;
  auto sse = client.Post("/v1/chat/completions", streaming.dump(), "application/json");
  ASSERT_TRUE(sse);
  EXPECT_EQ(sse->get_header_value("Content-Type"), "text/event-stream");
  EXPECT_NE(sse->body.find("data: [DONE]"), std::string::npos);
  EXPECT_NE(sse->body.find("\"route\":\"upstream\""), std::string::npos);
  EXPECT_EQ(sse->body.find("<EMAIL"), std::string::npos);
  // Errors keep OpenAI's shape.
  auto bad = client.Post("/v1/chat/completions", R"({"model":"stories260K"})", "application/json");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400);
  EXPECT_TRUE(json::parse(bad->body).contains("error"));
  (*server)->shutdown(std::chrono::steady_clock::now());
  thread.join();
}

}  // namespace
}  // namespace edgelm::hybrid::test
