// API keys (Python's hashlib.blake2b is the hash oracle) and the token-bucket rate limiter.
#include "edgelm/serve/auth.h"

#include "serve/serve_test_util.h"

namespace edgelm::serve::test {
namespace {

using namespace std::chrono_literals;

std::string python_blake2b(const std::string& key) {
  const auto r = edgelm::test::run_command(
      edgelm::test::python3() +
      " -c 'import hashlib,sys; print(hashlib.blake2b(sys.argv[1].encode(), "
      "digest_size=32).hexdigest())' " +
      edgelm::test::shell_quote(key));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return r.out.substr(0, 64);
}

TEST(ApiKeys, HashIsBlake2b256) {
  for (const std::string key :
       {"sk-0123456789abcdef", "sk-edgelm-test-key-with-more-characters-ABC"}) {
    auto h = hash_api_key(key);
    ASSERT_TRUE(h) << h.error().to_string();
    EXPECT_EQ(*h, "blake2b256:" + python_blake2b(key));
  }
  EXPECT_FALSE(hash_api_key("short"));
  EXPECT_FALSE(hash_api_key("sk-has a space in it!!"));
}

TEST(ApiKeys, StoreFindsOnlyMatchingKeys) {
  const std::string alice = "sk-alice-0123456789abcdef";
  const std::string bob = "sk-bob-0123456789abcdef00";
  const std::string text = "# keys\n\nalice " + *hash_api_key(alice) + " 30\n  bob " +
                           *hash_api_key(bob) + "   # no limit\n";
  auto store = ApiKeyStore::parse(text);
  ASSERT_TRUE(store) << store.error().to_string();
  EXPECT_EQ(store->size(), 2u);
  const ApiKey* a = store->find(alice);
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->name, "alice");
  EXPECT_EQ(a->requests_per_minute, 30);
  const ApiKey* b = store->find(bob);
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->name, "bob");
  EXPECT_EQ(b->requests_per_minute, 0);
  EXPECT_EQ(store->find(alice + "x"), nullptr);
  EXPECT_EQ(store->find(""), nullptr);
  EXPECT_EQ(store->find(std::string(10000, 'k')), nullptr);
}

TEST(ApiKeys, MalformedFilesNameTheLine) {
  const std::string h = *hash_api_key("sk-0123456789abcdef");
  for (const std::string& text : std::vector<std::string>{
           "alice sk-plain-text-key-0123\n", "alice\n", "alice blake2b256:abcd\n",
           "alice blake2b256:" + std::string(64, 'g') + "\n", "alice " + h + " many\n",
           "alice " + h + " 5 extra\n", "alice " + h + "\nalice " + h + "\n"}) {
    auto store = ApiKeyStore::parse(text, "keys.txt");
    ASSERT_FALSE(store) << text;
    EXPECT_NE(store.error().message.find("keys.txt:"), std::string::npos) << store.error().message;
  }
}

TEST(RateLimiter, BucketEmptiesAndRefills) {
  RateLimiter limiter;
  const auto t0 = RateLimiter::Clock::time_point() + 1000s;
  for (int i = 0; i < 6; ++i) EXPECT_FALSE(limiter.acquire("k", 6, t0).has_value()) << i;
  auto wait = limiter.acquire("k", 6, t0);
  ASSERT_TRUE(wait.has_value());
  EXPECT_EQ(*wait, 10);  // 6 per minute: one every 10 s
  EXPECT_TRUE(limiter.acquire("k", 6, t0 + 9s).has_value());
  EXPECT_FALSE(limiter.acquire("k", 6, t0 + 11s).has_value());
  // Buckets are per client; 0 means unlimited.
  EXPECT_FALSE(limiter.acquire("other", 6, t0).has_value());
  for (int i = 0; i < 100; ++i) EXPECT_FALSE(limiter.acquire("free", 0, t0).has_value());
}

}  // namespace
}  // namespace edgelm::serve::test
