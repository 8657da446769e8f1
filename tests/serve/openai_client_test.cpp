// The server through the official `openai` npm client (installed by the test into
// <build>/node_deps): every endpoint, streaming, structured output validated by ajv, the
// authentication error class; 16 concurrent streams checked against the numpy reference decode;
// and a bounded autocannon load run.
#include <sys/resource.h>

#include <future>

#include "edgelm/engine.h"
#include "serve/serve_test_util.h"

namespace edgelm::serve::test {
namespace {

using namespace std::chrono_literals;

const std::string kKey = "sk-edgelm-client-test-0123456789";

ServerOptions keyed_options(int32_t slots, int32_t queue) {
  ServerOptions o = small_options(slots, queue);
  auto store = ApiKeyStore::parse("client " + *hash_api_key(kKey) + "\n");
  EXPECT_TRUE(store);
  o.keys = std::move(*store);
  return o;
}

std::vector<int32_t> ref_prefix(size_t n) {
  const auto& t = reference_decode().tokens;
  return std::vector<int32_t>(t.begin(), t.begin() + static_cast<std::ptrdiff_t>(n));
}

json schemas() {
  return json::parse(R"([
    {"type":"object","properties":{"name":{"type":"string","maxLength":12},"age":{"type":"integer","minimum":0,"maximum":120},
     "happy":{"type":"boolean"}},"required":["name","age","happy"],"additionalProperties":false},
    {"type":"object","properties":{"colors":{"type":"array","items":{"type":"string","enum":["red","green","blue"]},
     "minItems":1,"maxItems":3},"size":{"enum":["small","big"]}},"required":["colors","size"],"additionalProperties":false},
    {"type":"object","properties":{"pet":{"anyOf":[{"type":"null"},{"type":"object","properties":{"kind":{"const":"cat"},
     "legs":{"type":"integer","minimum":0,"maximum":4}},"required":["kind","legs"],"additionalProperties":false}]}},
     "required":["pet"],"additionalProperties":false}
  ])");
}

TEST(OpenAiClient, EveryEndpoint) {
  TestServer server(keyed_options(4, 16));
  const auto& ref = reference_decode();
  const json config = {{"mode", "suite"},
                       {"baseURL", server.base_url()},
                       {"apiKey", kKey},
                       {"model", "stories260K"},
                       {"completionPrompt", ref_prefix(6)},
                       {"stopString", " little"},
                       {"embeddingInput", "Once upon a time"},
                       {"schemas", schemas()},
                       {"seeds", {1, 2, 3, 4}}};
  const json out = run_node_client(config);
  ASSERT_TRUE(out.is_object());

  EXPECT_EQ(out["models"], json::array({"stories260K"}));
  EXPECT_EQ(out["model"], "stories260K");

  // Chat: the stream carries exactly the non-streamed answer; usage counts the rendered prompt.
  const runtime::Engine& engine = stories_engine();
  auto prompt =
      engine.render_chat(json::parse(R"([{"role":"user","content":"Tell me a story."}])"), true);
  ASSERT_TRUE(prompt);
  auto prompt_tokens = engine.tokenize(*prompt);
  ASSERT_TRUE(prompt_tokens);
  EXPECT_EQ(out["chat"]["object"], "chat.completion");
  EXPECT_EQ(out["chat"]["role"], "assistant");
  EXPECT_EQ(out["chat"]["usage"]["prompt_tokens"], prompt_tokens->size());
  EXPECT_EQ(out["chat"]["usage"]["completion_tokens"], 24);
  EXPECT_EQ(out["chat"]["finish"], "length");
  EXPECT_FALSE(out["chat"]["text"].get<std::string>().empty());
  EXPECT_EQ(out["chat_stream"]["text"], out["chat"]["text"]);
  EXPECT_EQ(out["chat_stream"]["finish"], "length");
  EXPECT_EQ(out["chat_stream"]["role"], "assistant");
  EXPECT_EQ(out["chat_stream"]["usage"]["total_tokens"], out["chat"]["usage"]["total_tokens"]);
  ASSERT_EQ(out["chat_logprobs"].size(), 4u);
  for (const json& lp : out["chat_logprobs"]) EXPECT_EQ(lp["top"], 3);

  // Completions from a prefix of the reference decode continue it.
  EXPECT_EQ(out["completion"]["object"], "text_completion");
  EXPECT_EQ(out["completion"]["text"], ref.text(6, 20));
  EXPECT_EQ(out["completion"]["usage"]["prompt_tokens"], 6);
  EXPECT_EQ(out["completion_stream"]["text"], ref.text(6, 20));
  const std::string full = ref.text(6, 40);
  EXPECT_EQ(out["completion_stop"]["text"], full.substr(0, full.find(" little")));
  EXPECT_EQ(out["completion_stop"]["finish"], "stop");

  // Embeddings: base64 (the client's default) and float agree; unit length.
  const auto b64 = out["embedding_base64"].get<std::vector<double>>();
  const auto f = out["embedding_float"][0].get<std::vector<double>>();
  ASSERT_EQ(b64.size(), static_cast<size_t>(engine.model().hparams().n_embd));
  ASSERT_EQ(f.size(), b64.size());
  double norm = 0;
  for (size_t i = 0; i < f.size(); ++i) {
    EXPECT_FLOAT_EQ(static_cast<float>(b64[i]), static_cast<float>(f[i]));
    norm += f[i] * f[i];
  }
  EXPECT_NEAR(norm, 1.0, 1e-5);
  EXPECT_EQ(out["embedding_float"].size(), 2u);
  EXPECT_NE(out["embedding_float"][0], out["embedding_float"][1]);

  // Structured output: every answer that finished parses and validates against its schema.
  int finished = 0;
  for (const json& r : out["json_schema"]) {
    if (r["finish"] != "stop") continue;
    ++finished;
    EXPECT_TRUE(r["valid"].get<bool>()) << r.dump();
  }
  EXPECT_GE(finished, static_cast<int>(out["json_schema"].size()) - 1) << out["json_schema"].dump();
  if (out["json_object"]["finish"] == "stop") {
    const json parsed = json::parse(out["json_object"]["text"].get<std::string>(), nullptr, false);
    EXPECT_TRUE(parsed.is_object()) << out["json_object"].dump();
  }

  EXPECT_EQ(out["wrong_key"]["auth_error"], true) << out["wrong_key"].dump();
  EXPECT_EQ(out["wrong_key"]["status"], 401);
  EXPECT_EQ(out["wrong_key"]["code"], "invalid_api_key");
  EXPECT_EQ(out["unknown_model"]["not_found"], true) << out["unknown_model"].dump();
  EXPECT_EQ(out["unknown_model"]["code"], "model_not_found");
}

// 16 streaming clients at once over 8 slots (the rest queue): every completion continues the
// reference decode exactly, and every chat answer equals the same request run alone.
TEST(OpenAiClient, SixteenConcurrentStreams) {
  TestServer server(keyed_options(8, 16));
  const int n = 48;
  json prompts = json::array();
  for (size_t i = 0; i < 12; ++i) prompts.push_back(ref_prefix(1 + 3 * i));
  const std::vector<std::string> chats = {"A dog.", "The sun is hot.", "Lily and Ben",
                                          "Tell me about the sea."};

  // Each chat alone first (nothing else running).
  const json sequential = run_node_client({{"mode", "concurrent"},
                                           {"baseURL", server.base_url()},
                                           {"apiKey", kKey},
                                           {"model", "stories260K"},
                                           {"prompts", json::array()},
                                           {"chatPrompts", chats},
                                           {"maxTokens", n},
                                           {"sequential", true}});
  ASSERT_TRUE(sequential.is_object());
  std::vector<std::string> alone;
  for (const json& r : sequential["chats"]) alone.push_back(r["text"]);
  ASSERT_EQ(alone.size(), chats.size());
  const json out = run_node_client({{"mode", "concurrent"},
                                    {"baseURL", server.base_url()},
                                    {"apiKey", kKey},
                                    {"model", "stories260K"},
                                    {"prompts", prompts},
                                    {"chatPrompts", chats},
                                    {"maxTokens", n}});
  ASSERT_TRUE(out.is_object());
  ASSERT_EQ(out["completions"].size(), 12u);
  for (size_t i = 0; i < 12; ++i) {
    const json& r = out["completions"][i];
    EXPECT_FALSE(r.contains("error")) << r.dump();
    EXPECT_EQ(r["text"], reference_decode().text(1 + 3 * i, n)) << "stream " << i;
    EXPECT_EQ(r["finish"], "length") << "stream " << i;
  }
  ASSERT_EQ(out["chats"].size(), chats.size());
  for (size_t i = 0; i < chats.size(); ++i) {
    EXPECT_EQ(out["chats"][i]["text"], alone[i]) << "chat " << i << " differs when batched";
    EXPECT_EQ(out["chats"][i]["usage"]["completion_tokens"], n);
  }
}

// ASan's quarantine holds freed memory by design: RSS says nothing about leaks there (LeakSanitizer
// does, at exit).
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kUnderAsan = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kUnderAsan = true;
#else
constexpr bool kUnderAsan = false;
#endif
#else
constexpr bool kUnderAsan = false;
#endif

long rss_kib() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

json autocannon(const TestServer& server, const std::string& modules, int seconds,
                const std::string& body, const std::string& key) {
  const fs::path body_path =
      fs::temp_directory_path() / ("edgelm-load-" + std::to_string(::getpid()) + ".json");
  std::ofstream(body_path) << body;
  const auto r = edgelm::test::run_command(
      "node " + edgelm::test::shell_quote(modules + "/autocannon/autocannon.js") +
      " --json -c 32 -d " + std::to_string(seconds) +
      " -m POST -H 'Content-Type: application/json' -H " +
      edgelm::test::shell_quote("Authorization: Bearer " + key) + " -i " +
      edgelm::test::shell_quote(body_path.string()) + " " +
      edgelm::test::shell_quote("http://127.0.0.1:" + std::to_string(server.port()) +
                                "/v1/completions"));
  fs::remove(body_path);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  json out = json::parse(r.out, nullptr, false);
  EXPECT_FALSE(out.is_discarded()) << r.out << r.err;
  return out;
}

// 32 connections for a few seconds (bench/serve runs the full minute): no errors or timeouts,
// every non-2xx answer is an intended 429, and memory stays flat between two runs.
TEST(OpenAiClient, BoundedLoadRun) {
  const std::string modules = node_deps();
  ASSERT_FALSE(modules.empty());
  ServerOptions o = small_options(4, 32);
  const std::string limited = "sk-edgelm-load-limited-0123456789";
  auto store = ApiKeyStore::parse("load " + *hash_api_key(kKey) + "\nlimited " +
                                  *hash_api_key(limited) + " 120\n");
  ASSERT_TRUE(store);
  o.keys = std::move(*store);
  TestServer server(o);
  json body = {
      {"model", "stories260K"}, {"prompt", ref_prefix(5)}, {"max_tokens", 8}, {"temperature", 0}};

  const json warm = autocannon(server, modules, 1, body.dump(), kKey);
  const long rss_after_warmup = rss_kib();
  const json run = autocannon(server, modules, 3, body.dump(), kKey);
  const long rss_after_run = rss_kib();
  for (const json* r : {&warm, &run}) {
    EXPECT_EQ((*r)["errors"], 0) << r->dump();
    EXPECT_EQ((*r)["timeouts"], 0) << r->dump();
    EXPECT_EQ((*r)["non2xx"], 0) << r->dump();
    EXPECT_GT((*r)["requests"]["total"].get<double>(), 10) << r->dump();
  }
  // A rate-limited key: 429s (with Retry-After) and nothing else goes wrong.
  const json limited_run = autocannon(server, modules, 2, body.dump(), limited);
  EXPECT_EQ(limited_run["errors"], 0) << limited_run.dump();
  EXPECT_EQ(limited_run["timeouts"], 0) << limited_run.dump();
  double ok = 0, too_many = 0, other = 0;
  for (const auto& [code, stats] : limited_run["statusCodeStats"].items()) {
    const double count = stats["count"].get<double>();
    (code == "200" ? ok : code == "429" ? too_many : other) += count;
  }
  EXPECT_EQ(other, 0) << limited_run.dump();
  EXPECT_GE(ok, 100);  // the bucket holds 120
  EXPECT_LE(ok, 125);
  EXPECT_GT(too_many, 0);

  if (!kUnderAsan) {
    EXPECT_LT(rss_after_run - rss_after_warmup, 32 * 1024)
        << "RSS grew from " << rss_after_warmup << " KiB to " << rss_after_run << " KiB";
  }
}

}  // namespace
}  // namespace edgelm::serve::test
