// The C API on the real stories260K model: load, tokenize, generate with streaming, errors.
#include "edgelm/edgelm.h"

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "common/test_paths.h"

namespace edgelm::test {
namespace {

std::string stories() { return (shared_models_dir() / "stories260K" / "stories260K.gguf").string(); }

TEST(CApi, GreedyGenerationMatchesReferenceAndStreams) {
  std::ifstream in(shared_models_dir() / "stories260K" / "stories260K.greedy-from-bos.json");
  const auto ref = nlohmann::json::parse(in);
  char* error = nullptr;
  edgelm_engine* engine = edgelm_engine_load(stories().c_str(), R"({"threads": 1})", &error);
  ASSERT_NE(engine, nullptr) << error;

  int32_t ids[8];
  ASSERT_EQ(edgelm_tokenize(engine, "", ids, 8, &error), 1);
  EXPECT_EQ(ids[0], 1);  // BOS

  edgelm_session* session = edgelm_session_new(engine, &error);
  ASSERT_NE(session, nullptr) << error;
  edgelm_generate_params params = edgelm_generate_params_default();
  params.max_tokens = 64;
  params.temperature = 0;
  std::string streamed;
  auto on_text = [](const char* text, size_t n, void* user) {
    static_cast<std::string*>(user)->append(text, n);
    return 1;
  };
  char* text = edgelm_generate(session, "", &params, on_text, &streamed, &error);
  ASSERT_NE(text, nullptr) << error;
  EXPECT_EQ(streamed, text);
  EXPECT_EQ(ref["text"].get<std::string>().rfind(text, 0), 0u) << text;
  EXPECT_GT(streamed.size(), 100u);
  edgelm_string_free(text);

  // A callback returning 0 stops generation early.
  int calls = 0;
  auto stop_now = [](const char*, size_t, void* user) {
    ++*static_cast<int*>(user);
    return 0;
  };
  text = edgelm_generate(session, "Once", &params, stop_now, &calls, &error);
  ASSERT_NE(text, nullptr) << error;
  EXPECT_EQ(calls, 1);
  edgelm_string_free(text);

  edgelm_session_free(session);
  edgelm_engine_free(engine);
}

TEST(CApi, ErrorsAreReturnedNotThrown) {
  char* error = nullptr;
  EXPECT_EQ(edgelm_engine_load("/nonexistent.gguf", nullptr, &error), nullptr);
  ASSERT_NE(error, nullptr);
  EXPECT_NE(std::string(error).find("/nonexistent.gguf"), std::string::npos) << error;
  edgelm_string_free(error);

  error = nullptr;
  EXPECT_EQ(edgelm_engine_load(stories().c_str(), R"({"bogus": 1})", &error), nullptr);
  ASSERT_NE(error, nullptr);
  EXPECT_NE(std::string(error).find("unknown key 'bogus'"), std::string::npos) << error;
  edgelm_string_free(error);

  EXPECT_EQ(edgelm_session_new(nullptr, nullptr), nullptr);  // error pointer may be NULL
  EXPECT_EQ(edgelm_generate(nullptr, "x", nullptr, nullptr, nullptr, nullptr), nullptr);
}

}  // namespace
}  // namespace edgelm::test
