// tokenizer.json support. llama.cpp's byte-level BPE vocabularies are written out as Hugging Face
// tokenizer.json files (the inverse of llama.cpp's converter); Hugging Face's own JS tokenizer
// (@huggingface/tokenizers) must reproduce llama.cpp's vectors from them, which shows the files
// are faithful, and Tokenizer::from_hf_json must give the same ids. Llama 3 and Qwen2
// pre-tokenizers (no GGUF vocabulary here) are compared with the JS tokenizer alone.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/node_package.h"
#include "edgelm/hf_tokenizer.h"
#include "tokenizer/test_util.h"

namespace edgelm::tokenizer::test {
namespace {

using nlohmann::ordered_json;
namespace fs = std::filesystem;

// The tokenizer.json pre_tokenizer of each family, as Hugging Face publishes it.
ordered_json byte_level(bool use_regex) {
  return {{"type", "ByteLevel"},
          {"add_prefix_space", false},
          {"trim_offsets", true},
          {"use_regex", use_regex}};
}
ordered_json pre_tokenizer_for(const std::string& family) {
  if (family == "gpt-2" || family == "mpt") return byte_level(true);
  if (family == "starcoder" || family == "refact") {
    return {
        {"type", "Sequence"},
        {"pretokenizers", {{{"type", "Digits"}, {"individual_digits", true}}, byte_level(true)}}};
  }
  const std::string digits = family == "llama3" ? R"(\p{N}{1,3})" : R"(\p{N})";
  const std::string regex = R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|)" + digits +
                            R"(| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
  return {{"type", "Sequence"},
          {"pretokenizers",
           {{{"type", "Split"},
             {"pattern", {{"Regex", regex}}},
             {"behavior", "Isolated"},
             {"invert", false}},
            byte_level(false)}}};
}

// A GGUF vocabulary as tokenizer.json: normal tokens in model.vocab, control and user-defined ones
// as added_tokens, merges as ["a", "b"] pairs.
ordered_json tokenizer_json(const format::GgufFile& gguf, const std::string& family) {
  const auto& tokens = (*gguf.get_array("tokenizer.ggml.tokens"))->strings;
  const auto& types = (*gguf.get_array("tokenizer.ggml.token_type"))->ints;
  ordered_json vocab = ordered_json::object();
  ordered_json added = ordered_json::array();
  for (size_t id = 0; id < tokens.size(); ++id) {
    if (types[id] == 3 || types[id] == 4) {
      added.push_back({{"id", id},
                       {"content", tokens[id]},
                       {"single_word", false},
                       {"lstrip", false},
                       {"rstrip", false},
                       {"normalized", false},
                       {"special", types[id] == 3}});
    } else {
      vocab[tokens[id]] = id;
    }
  }
  ordered_json merges = ordered_json::array();
  for (const std::string& m : (*gguf.get_array("tokenizer.ggml.merges"))->strings) {
    const size_t space = m.find(' ', 1);
    merges.push_back({m.substr(0, space), m.substr(space + 1)});
  }
  return {{"version", "1.0"},
          {"added_tokens", added},
          {"normalizer", nullptr},
          {"pre_tokenizer", pre_tokenizer_for(family)},
          {"post_processor", nullptr},
          {"decoder", {{"type", "ByteLevel"}}},
          {"model",
           {{"type", "BPE"},
            {"dropout", nullptr},
            {"unk_token", nullptr},
            {"continuing_subword_prefix", nullptr},
            {"end_of_word_suffix", nullptr},
            {"fuse_unk", false},
            {"byte_fallback", false},
            {"ignore_merges", false},
            {"vocab", vocab},
            {"merges", merges}}}};
}

class HfTokenizerJson : public ::testing::Test {
 protected:
  void SetUp() override {
    modules_ =
        edgelm::test::npm_install_once("node_deps_tokenizers", "@huggingface/tokenizers@0.2.0",
                                       "@huggingface/tokenizers/package.json", why_);
    ASSERT_FALSE(modules_.empty()) << why_;
    dir_ = edgelm::test::binary_dir() / ("hf_tokenizer_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Hugging Face's ids for each case.
  std::vector<std::vector<int32_t>> oracle(const std::string& json, const std::string& config,
                                           const std::vector<std::string>& cases) {
    std::ofstream(dir_ / "tokenizer.json") << json;
    std::ofstream(dir_ / "tokenizer_config.json") << config;
    std::ofstream(dir_ / "cases.json") << nlohmann::json(cases).dump();
    using edgelm::test::shell_quote;
    auto r = edgelm::test::run_command(
        "node " +
        shell_quote(
            (edgelm::test::source_dir() / "tests/reference/hf_tokenizers_oracle.mjs").string()) +
        " " + shell_quote(modules_) + " " + shell_quote((dir_ / "tokenizer.json").string()) + " " +
        shell_quote((dir_ / "tokenizer_config.json").string()) + " " +
        shell_quote((dir_ / "cases.json").string()));
    EXPECT_EQ(r.exit_code, 0) << r.err;
    if (r.exit_code != 0) return {};
    return nlohmann::json::parse(r.out).get<std::vector<std::vector<int32_t>>>();
  }

  std::string modules_, why_;
  fs::path dir_;
};

const std::string kConfig =
    R"({"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>", "add_bos_token": false})";

TEST_F(HfTokenizerJson, ByteLevelFamiliesMatchLlamaCppAndHuggingFace) {
  // mpt and refact have the same tokenizer.json structure as gpt-2 and starcoder.
  for (const std::string family : {"gpt-2", "starcoder"}) {
    SCOPED_TRACE(family);
    auto gguf = format::GgufFile::open(vocab_path(family));
    ASSERT_TRUE(gguf) << gguf.error().to_string();
    const std::string json = tokenizer_json(*gguf, family).dump();
    const auto cases = read_cases(vocab_dir() / ("ggml-vocab-" + family + ".gguf.inp"));
    const auto expected = read_expected(vocab_dir() / ("ggml-vocab-" + family + ".gguf.out"));
    ASSERT_EQ(cases.size(), expected.size());

    const auto hf = oracle(json, kConfig, cases);
    ASSERT_EQ(hf.size(), cases.size());
    auto ours = Tokenizer::from_hf_json(json, kConfig);
    ASSERT_TRUE(ours) << ours.error().to_string();
    int hf_agrees = 0;
    for (size_t i = 0; i < cases.size(); ++i) {
      auto ids = (*ours)->encode(cases[i], /*add_special=*/false, /*parse_special=*/false);
      ASSERT_TRUE(ids) << ids.error().to_string();
      EXPECT_EQ(*ids, expected[i]) << "case " << i << " '" << cases[i] << "'";
      hf_agrees += hf[i] == expected[i];
    }
    // Hugging Face and llama.cpp differ on a few exotic inputs (llama.cpp's hand-written regex
    // matchers treat unassigned code points specially); on the rest the file must be faithful.
    EXPECT_GE(hf_agrees, static_cast<int>(cases.size()) - 3)
        << "tokenizer.json does not say what the GGUF says";
  }
}

// Llama 3 and Qwen2 pre-tokenizers on GPT-2's vocabulary: the regex split is the difference.
TEST_F(HfTokenizerJson, Llama3AndQwen2SplitsMatchHuggingFace) {
  auto gguf = format::GgufFile::open(vocab_path("gpt-2"));
  ASSERT_TRUE(gguf);
  auto cases = read_cases(vocab_dir() / "ggml-vocab-gpt-2.gguf.inp");
  for (const char* extra :
       {"It's 12345 o'clock, WE'LL see\r\n\r\n  tabs\t\there", "3.14159 and 1000000 apples",
        "I'M HERE, you're there; they've gone. ÀÉÎ 你好 😀!!"}) {
    cases.push_back(extra);
  }
  for (const std::string family : {"llama3", "qwen2"}) {
    SCOPED_TRACE(family);
    const std::string json = tokenizer_json(*gguf, family).dump();
    auto ours = Tokenizer::from_hf_json(json, kConfig);
    ASSERT_TRUE(ours) << ours.error().to_string();
    EXPECT_EQ((*ours)->pre_type(), family == "llama3" ? "llama-bpe" : "qwen2");
    const auto hf = oracle(json, kConfig, cases);
    ASSERT_EQ(hf.size(), cases.size());
    int agree = 0;
    for (size_t i = 0; i < cases.size(); ++i) {
      auto ids = (*ours)->encode(cases[i], false, false);
      ASSERT_TRUE(ids);
      agree += *ids == hf[i];
      if (*ids != hf[i]) ADD_FAILURE() << "case " << i << " '" << cases[i] << "'";
    }
    EXPECT_EQ(agree, static_cast<int>(cases.size()));
  }
}

TEST(HfTokenizerJsonErrors, UnsupportedAndMalformedFilesAreNamed) {
  const auto error_of = [](const std::string& json) {
    auto r = Tokenizer::from_hf_json(json);
    return r ? std::string("ok") : r.error().message;
  };
  EXPECT_NE(error_of("not json").find("tokenizer.json: not a JSON object"), std::string::npos);
  EXPECT_NE(error_of(R"({"model": {"type": "Unigram", "vocab": []}})").find("model type 'Unigram'"),
            std::string::npos);
  const std::string weird_pre =
      R"({"pre_tokenizer": {"type": "Whitespace"}, "model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}})";
  EXPECT_NE(error_of(weird_pre).find("pre_tokenizer [Whitespace] is not a supported"),
            std::string::npos);
  const std::string gpt2 = R"({"pre_tokenizer": {"type": "ByteLevel"}, "model": {"type": "BPE", )";
  EXPECT_NE(error_of(gpt2 + R"("vocab": {"a": 0, "b": 0}, "merges": []}})").find("id 0 names both"),
            std::string::npos);
  EXPECT_NE(error_of(gpt2 + R"("vocab": {"a": -1}, "merges": []}})").find("token 'a' has an id"),
            std::string::npos);
  EXPECT_NE(error_of(gpt2 + R"("vocab": {"a": 0}, "merges": [3]}})").find("model.merges[0]"),
            std::string::npos);
  EXPECT_NE(error_of(gpt2 + R"("vocab": {}, "merges": []}})").find("vocabulary is empty"),
            std::string::npos);
  EXPECT_EQ(error_of(gpt2 + R"("vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b"]}})"), "ok");
}

}  // namespace
}  // namespace edgelm::tokenizer::test
