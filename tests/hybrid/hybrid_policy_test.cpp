// Policy parsing: every section, and errors that name the offending key.
#include "edgelm/hybrid/hybrid_policy.h"

#include <gtest/gtest.h>

namespace edgelm::hybrid {
namespace {

using nlohmann::json;

TEST(HybridPolicy, ParsesEverySection) {
  const json j = json::parse(R"({
    "redaction": {"entities": {"DATE": "keep"}},
    "confidence": {"metric": "min_logprob", "threshold": -2.5},
    "deadline_ms": 5000, "local": {"max_tokens": 64},
    "upstream": {"url": "http://gw:8080", "model": "big", "timeout_ms": 2000,
                 "max_requests_per_minute": 30},
    "consent": {"default": true, "users": {"alice": false}},
    "key_file": "k", "cache": {"path": "c.enc", "ttl_s": 10, "max_entries": 5},
    "audit": {"path": "audit"}, "profile": {"path": "p.json"}})");
  auto p = HybridPolicy::from_json(j, "policy.json");
  ASSERT_TRUE(p.has_value()) << p.error().to_string();
  EXPECT_EQ(p->metric, ConfidenceMetric::kMinLogprob);
  EXPECT_DOUBLE_EQ(p->threshold, -2.5);
  EXPECT_EQ(p->deadline_ms, 5000);
  EXPECT_EQ(p->local_max_tokens, 64);
  EXPECT_EQ(p->upstream.url, "http://gw:8080");
  EXPECT_EQ(p->upstream.max_requests_per_minute, 30);
  EXPECT_TRUE(p->consent.default_consent);
  EXPECT_FALSE(p->consent.users.at("alice"));
  EXPECT_EQ(p->cache.ttl_s, 10);
  EXPECT_EQ(p->cache.max_entries, 5u);
  EXPECT_EQ(p->audit_path, "audit");
  EXPECT_EQ(p->profile_path, "p.json");
  EXPECT_EQ(p->redaction.action(EntityType::kDate), RedactionAction::kKeep);
}

TEST(HybridPolicy, ErrorsNameTheKey) {
  const std::pair<const char*, const char*> cases[] = {
      {R"({"confidence": {"threshold": 1}, "upstreem": {}})", "'upstreem'"},
      {R"({"confidence": {"threshold": 1, "metric": "vibes"}})", "confidence.metric"},
      {R"({"confidence": {"threshold": 1}, "cache": {"ttl": 5}})", "'cache.ttl'"},
      {R"({"confidence": {"threshold": 1}, "upstream": {"url": "ftp://x"}})", "upstream.url"},
      {R"({"confidence": {"threshold": 1}, "consent": {"users": {"bob": "yes"}}})",
       "consent.users.bob"},
      {R"({"confidence": {"threshold": 1}, "deadline_ms": -4})", "deadline_ms"},
      {R"({"confidence": {}})", "confidence.threshold"},
      {R"({"confidence": {"threshold": 1}, "redaction": {"entities": {"EMAIL": "shred"}}})",
       "shred"},
  };
  for (const auto& [text, needle] : cases) {
    auto p = HybridPolicy::from_json(json::parse(text), "policy.json");
    ASSERT_FALSE(p.has_value()) << text;
    EXPECT_NE(p.error().message.find(needle), std::string::npos) << p.error().message;
    EXPECT_NE(p.error().message.find("policy.json"), std::string::npos) << p.error().message;
  }
}

}  // namespace
}  // namespace edgelm::hybrid
