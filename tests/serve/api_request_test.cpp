// Request parsing: every field's type and range, unknown fields, limits, and malformed bytes.
// Expected statuses, params and codes follow OpenAI's API reference for these endpoints.
#include <random>

#include "edgelm/serve/api.h"
#include "serve/serve_test_util.h"

namespace edgelm::serve::test {
namespace {

const RequestLimits kLimits;

ApiError chat_error(const std::string& body) {
  auto r = parse_chat_request(body, kLimits);
  if (!std::holds_alternative<ApiError>(r)) {
    ADD_FAILURE() << "accepted: " << body;
    return {};
  }
  return std::get<ApiError>(r);
}

ChatRequest chat_ok(const std::string& body) {
  auto r = parse_chat_request(body, kLimits);
  if (auto* e = std::get_if<ApiError>(&r)) {
    ADD_FAILURE() << "rejected: " << body << ": " << e->message;
    return {};
  }
  return std::get<ChatRequest>(r);
}

const char* kMessages = R"("messages":[{"role":"user","content":"hi"}])";

std::string chat_with(const std::string& fields) {
  return std::string("{\"model\":\"m\",") + kMessages + (fields.empty() ? "" : "," + fields) + "}";
}

TEST(ApiRequest, ChatFieldsAreRead) {
  const ChatRequest r = chat_ok(R"({"model":"m","messages":[
      {"role":"system","content":"be brief"},
      {"role":"developer","content":"really"},
      {"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}],"name":"u"},
      {"role":"assistant","content":null}],
    "temperature":0.5,"top_p":0.9,"max_completion_tokens":12,"stop":["x","yz"],"seed":-3,
    "presence_penalty":1.5,"frequency_penalty":-0.5,"logit_bias":{"17":-100,"5":2.5},
    "logprobs":true,"top_logprobs":4,"n":1,"stream":true,"stream_options":{"include_usage":true},
    "response_format":{"type":"json_schema","json_schema":{"name":"s","schema":{"type":"object"},"strict":true}},
    "user":"someone"})");
  EXPECT_EQ(r.model, "m");
  ASSERT_EQ(r.messages.size(), 4u);
  EXPECT_EQ(r.messages[1]["role"], "system");  // developer is system to a template
  EXPECT_EQ(r.messages[2]["content"], "ab");
  EXPECT_EQ(r.messages[3]["content"], "");
  EXPECT_FLOAT_EQ(r.sampling.temperature, 0.5f);
  EXPECT_FLOAT_EQ(r.sampling.top_p, 0.9f);
  EXPECT_EQ(r.max_tokens, 12);
  EXPECT_EQ(r.stop, (std::vector<std::string>{"x", "yz"}));
  EXPECT_EQ(r.sampling.seed, static_cast<uint64_t>(-3));
  EXPECT_FLOAT_EQ(r.sampling.presence_penalty, 1.5f);
  EXPECT_FLOAT_EQ(r.sampling.frequency_penalty, -0.5f);
  EXPECT_EQ(r.sampling.logit_bias.size(), 2u);
  EXPECT_TRUE(r.logprobs);
  EXPECT_EQ(r.top_logprobs, 4);
  EXPECT_TRUE(r.stream);
  EXPECT_TRUE(r.include_usage);
  EXPECT_EQ(r.response_format, ResponseFormat::kJsonSchema);
  EXPECT_EQ(json::parse(r.json_schema), json({{"type", "object"}}));
}

TEST(ApiRequest, OpenAiSamplingDefaults) {
  const ChatRequest r = chat_ok(chat_with(""));
  EXPECT_FLOAT_EQ(r.sampling.temperature, 1.0f);
  EXPECT_FLOAT_EQ(r.sampling.top_p, 1.0f);
  EXPECT_EQ(r.sampling.top_k, 0);
  EXPECT_FLOAT_EQ(r.sampling.min_p, 0.0f);
  EXPECT_FALSE(r.max_tokens.has_value());
  EXPECT_FALSE(r.stream);
  // top_p 0 keeps the single most likely token.
  EXPECT_FLOAT_EQ(chat_ok(chat_with(R"("top_p":0)")).sampling.temperature, 0.0f);
}

TEST(ApiRequest, MalformedBodies) {
  for (const std::string body : {"", "{", "[]", "null", "\"text\"", "{\"model\":\"m\",}", "{'a':1}",
                                 "{\"model\":\"m\" \"messages\":[]}"}) {
    const ApiError e = chat_error(body);
    EXPECT_EQ(e.status, 400) << body;
    EXPECT_EQ(e.type, "invalid_request_error") << body;
  }
}

TEST(ApiRequest, WrongTypesNameTheParameter) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"("temperature":"hot")", "temperature"},
      {R"("temperature":3)", "temperature"},
      {R"("top_p":1.5)", "top_p"},
      {R"("max_tokens":"10")", "max_tokens"},
      {R"("max_tokens":2.5)", "max_tokens"},
      {R"("max_tokens":-1)", "max_tokens"},
      {R"("max_tokens":0)", "max_tokens"},
      {R"("max_tokens":1e300)", "max_tokens"},
      {R"("max_tokens":99999999999999999999)", "max_tokens"},
      {R"("max_completion_tokens":100000)", "max_completion_tokens"},
      {R"("stream":"yes")", "stream"},
      {R"("stop":5)", "stop"},
      {R"("stop":["a","b","c","d","e"])", "stop"},
      {R"("stop":[""])", "stop"},
      {R"("seed":"1")", "seed"},
      {R"("n":2)", "n"},
      {R"("presence_penalty":3)", "presence_penalty"},
      {R"("logit_bias":{"abc":1})", "logit_bias"},
      {R"("logit_bias":{"-1":1})", "logit_bias"},
      {R"("logit_bias":{"5":101})", "logit_bias"},
      {R"("logit_bias":[1])", "logit_bias"},
      {R"("top_logprobs":3)", "top_logprobs"},  // without logprobs
      {R"("logprobs":true,"top_logprobs":21)", "top_logprobs"},
      {R"("response_format":{"type":"xml"})", "response_format.type"},
      {R"("response_format":{"type":"json_schema"})", "response_format.json_schema"},
      {R"("stream_options":{"include_usage":1})", "stream_options.include_usage"},
      {R"("model":7)", "model"},
  };
  for (const auto& [fields, param] : cases) {
    const ApiError e = chat_error(chat_with(fields));
    EXPECT_EQ(e.status, 400) << fields;
    EXPECT_EQ(e.param, param) << fields;
    EXPECT_FALSE(e.message.empty());
  }
}

TEST(ApiRequest, UnknownFieldsAreRejected) {
  for (const std::string fields :
       {R"("temprature":1)", R"("tools":[])", R"("stream_options":{"x":1})",
        R"("response_format":{"type":"text","extra":1})"}) {
    const ApiError e = chat_error(chat_with(fields));
    EXPECT_EQ(e.status, 400) << fields;
    EXPECT_EQ(e.code, "unknown_parameter") << fields;
  }
  const ApiError in_message =
      chat_error(R"({"model":"m","messages":[{"role":"user","content":"x","mood":1}]})");
  EXPECT_EQ(in_message.code, "unknown_parameter");
}

TEST(ApiRequest, MessagesAreChecked) {
  for (
      const std::string body :
      {R"({"model":"m"})", R"({"model":"m","messages":[]})", R"({"model":"m","messages":{}})",
       R"({"model":"m","messages":["hi"]})", R"({"model":"m","messages":[{"content":"x"}]})",
       R"({"model":"m","messages":[{"role":"wizard","content":"x"}]})",
       R"({"model":"m","messages":[{"role":"user"}]})",
       R"({"model":"m","messages":[{"role":"user","content":5}]})",
       R"({"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{}}]}]})",
       R"({"messages":[{"role":"user","content":"x"}]})"}) {
    const ApiError e = chat_error(body);
    EXPECT_EQ(e.status, 400) << body;
  }
}

TEST(ApiRequest, LimitsGive413And400) {
  RequestLimits small;
  small.max_body_bytes = 1000;
  const std::string big = chat_with("\"user\":\"" + std::string(2000, 'x') + "\"");
  auto r = parse_chat_request(big, small);
  ASSERT_TRUE(std::holds_alternative<ApiError>(r));
  EXPECT_EQ(std::get<ApiError>(r).status, 413);

  std::string deep = chat_with("\"user\":" + std::string(100, '[') + std::string(100, ']'));
  EXPECT_EQ(chat_error(deep).status, 400);
  // Brackets inside strings do not count as nesting.
  chat_ok(chat_with("\"user\":\"" + std::string(100, '[') + "\""));
}

TEST(ApiRequest, InvalidUtf8IsRejected) {
  for (const std::string& bad :
       {std::string("\xff"), std::string("\xc0\xaf"), std::string("\xed\xa0\x80"),
        std::string("a\xe2\x82"), std::string("\xf4\x90\x80\x80")}) {
    const ApiError e =
        chat_error(R"({"model":"m","messages":[{"role":"user","content":")" + bad + "\"}]}");
    EXPECT_EQ(e.status, 400);
  }
}

// Python's UTF-8 decoder is the oracle for random byte strings.
TEST(ApiRequest, Utf8ValidationAgreesWithPython) {
  std::mt19937 rng(42);
  std::vector<std::string> samples;
  const std::vector<std::string> starts = {"\xc2", "\xe0", "\xed", "\xef", "\xf0",
                                           "\xf4", "\xf5", "\x80", "a"};
  for (int i = 0; i < 3000; ++i) {
    std::string s = starts[rng() % starts.size()];
    const int n = static_cast<int>(rng() % 5);
    for (int k = 0; k < n; ++k) {
      const uint32_t pick = rng() % 4;
      s += static_cast<char>(pick == 0   ? 0x41
                             : pick == 1 ? 0x80 + rng() % 0x40
                                         : 0x80 + rng() % 0x80);
    }
    samples.push_back(s);
  }
  const fs::path dir = fs::temp_directory_path();
  const fs::path in_path = dir / ("edgelm-utf8-" + std::to_string(::getpid()) + ".bin");
  {
    std::ofstream out(in_path, std::ios::binary);
    for (const std::string& s : samples) {
      const auto len = static_cast<char>(s.size());
      out.write(&len, 1);
      out.write(s.data(), static_cast<std::streamsize>(s.size()));
    }
  }
  const std::string script =
      "import sys\n"
      "d=open(sys.argv[1],'rb').read();i=0;o=[]\n"
      "while i<len(d):\n"
      "  n=d[i];s=d[i+1:i+1+n];i+=1+n\n"
      "  try:\n    s.decode('utf-8');o.append('1')\n"
      "  except UnicodeDecodeError:\n    o.append('0')\n"
      "print(''.join(o))\n";
  const fs::path py = dir / ("edgelm-utf8-" + std::to_string(::getpid()) + ".py");
  std::ofstream(py) << script;
  const auto r = edgelm::test::run_command(edgelm::test::python3() + " " + py.string() + " " +
                                           in_path.string());
  fs::remove(py);
  fs::remove(in_path);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_GE(r.out.size(), samples.size());
  int valid = 0;
  for (size_t i = 0; i < samples.size(); ++i) {
    EXPECT_EQ(is_valid_utf8(samples[i]), r.out[i] == '1') << "sample " << i;
    valid += r.out[i] == '1';
  }
  EXPECT_GT(valid, 100);  // both outcomes are exercised
  EXPECT_LT(valid, 2900);
}

TEST(ApiRequest, CompletionPrompts) {
  auto ok = [](const std::string& body) {
    auto r = parse_completion_request(body, kLimits);
    if (auto* e = std::get_if<ApiError>(&r)) {
      ADD_FAILURE() << body << ": " << e->message;
      return CompletionRequest();
    }
    return std::get<CompletionRequest>(r);
  };
  EXPECT_EQ(std::get<std::string>(ok(R"({"model":"m","prompt":"hi"})").prompt), "hi");
  EXPECT_EQ(std::get<std::string>(ok(R"({"model":"m","prompt":["hi"]})").prompt), "hi");
  EXPECT_EQ(std::get<std::vector<int32_t>>(ok(R"({"model":"m","prompt":[1,2,3]})").prompt),
            (std::vector<int32_t>{1, 2, 3}));
  EXPECT_EQ(std::get<std::vector<int32_t>>(ok(R"({"model":"m","prompt":[[4,5]]})").prompt),
            (std::vector<int32_t>{4, 5}));
  const CompletionRequest lp = ok(R"({"model":"m","prompt":"x","logprobs":3,"echo":true})");
  EXPECT_TRUE(lp.logprobs);
  EXPECT_EQ(lp.top_logprobs, 3);
  EXPECT_TRUE(lp.echo);
  for (const std::string body :
       {R"({"model":"m"})", R"({"model":"m","prompt":["a","b"]})",
        R"({"model":"m","prompt":[1,-2]})", R"({"model":"m","prompt":[]})",
        R"({"model":"m","prompt":5})", R"({"model":"m","prompt":"x","logprobs":6})",
        R"({"model":"m","prompt":"x","suffix":"y"})",
        R"({"model":"m","prompt":"x","messages":[]})"}) {
    auto r = parse_completion_request(body, kLimits);
    ASSERT_TRUE(std::holds_alternative<ApiError>(r)) << body;
    EXPECT_EQ(std::get<ApiError>(r).status, 400) << body;
  }
}

TEST(ApiRequest, EmbeddingInputs) {
  auto ok = [](const std::string& body) {
    auto r = parse_embedding_request(body, kLimits);
    if (auto* e = std::get_if<ApiError>(&r)) {
      ADD_FAILURE() << body << ": " << e->message;
      return EmbeddingRequest();
    }
    return std::get<EmbeddingRequest>(r);
  };
  EXPECT_EQ(ok(R"({"model":"m","input":"a"})").inputs.size(), 1u);
  EXPECT_EQ(ok(R"({"model":"m","input":["a","b","c"]})").inputs.size(), 3u);
  EXPECT_EQ(ok(R"({"model":"m","input":[1,2]})").inputs.size(), 1u);
  EXPECT_EQ(ok(R"({"model":"m","input":[[1],[2,3]]})").inputs.size(), 2u);
  EXPECT_TRUE(ok(R"({"model":"m","input":"a","encoding_format":"base64"})").base64);
  for (const std::string body :
       {R"({"model":"m"})", R"({"model":"m","input":""})", R"({"model":"m","input":[""]})",
        R"({"model":"m","input":"a","encoding_format":"int8"})",
        R"({"model":"m","input":"a","dimensions":8})", R"({"input":"a"})",
        R"({"model":"m","input":["a",1]})"}) {
    auto r = parse_embedding_request(body, kLimits);
    ASSERT_TRUE(std::holds_alternative<ApiError>(r)) << body;
    EXPECT_EQ(std::get<ApiError>(r).status, 400) << body;
  }
}

TEST(ApiRequest, ErrorBodyHasOpenAiShape) {
  const json body = error_body(invalid_request("bad", "messages", "invalid_value"));
  EXPECT_EQ(body, json::parse(R"({"error":{"message":"bad","type":"invalid_request_error",
                                            "param":"messages","code":"invalid_value"}})"));
  const json nulls = error_body(invalid_request("bad"));
  EXPECT_TRUE(nulls["error"]["param"].is_null());
  EXPECT_TRUE(nulls["error"]["code"].is_null());
}

}  // namespace
}  // namespace edgelm::serve::test
