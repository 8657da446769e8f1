// The pre-tokenizer regex splits for every supported tokenizer.ggml.pre family against Python's
// `regex` module running the upstream tokenizer.json patterns
// (tests/reference/tokenizer_pretok.py), on llama.cpp's vector inputs plus extra Unicode cases.
// This is how the llama-bpe (Llama 3) and qwen2 pre-tokenizers are checked, since their
// vocabularies are not available here.
#include <gtest/gtest.h>

#include <cstdio>
#include <nlohmann/json.hpp>

#include "tokenizer/pretokenizer.h"
#include "tokenizer/test_util.h"

namespace edgelm::tokenizer::test {
namespace {

const char* const kPreNames[] = {
    "default",      "llama-bpe",      "dbrx",   "smaug-bpe",  "chatglm-bpe", "deepseek-llm",
    "deepseek-v3",  "deepseek-coder", "falcon", "starcoder",  "refact",      "command-r",
    "smollm",       "codeshell",      "exaone", "minerva-7b", "gpt-2",       "mpt",
    "olmo",         "jais",           "qwen2",  "stablelm2",  "poro-chat",   "bloom",
    "gpt3-finnish", "viking",         "tekken", "chameleon",
};

std::vector<std::string> extra_cases() {
  return {
      "Ünïcödé façade naïve café",
      "e\xCC\x81 combining a\xCC\x8A\xCC\x81",  // decomposed accents (marks)
      "नमस्ते दुनिया",
      "مرحبا بالعالم ١٢٣ ٤٥٦٧",
      "こんにちは世界、カタカナ。漢字テスト",
      "안녕하세요 세계",
      "Ελληνικά ΑΒΓ αβγ ώ ΐ",
      "∑x² ≤ ½ · ∞ → ⅫⅣ",
      "👩‍👩‍👧 👍🏽 🇺🇸",
      "ＡＢＣ１２３！？　ｆｕｌｌ",
      "a\xC2\xA0"
      "b\xE3\x80\x80"
      "c\xE2\x80\xA8"
      "d\xC2\x85"
      "e\xE2\x80\x89"
      "f",  // NBSP, U+3000, U+2028, NEL, U+2009
      "line1\r\nline2\r\n\r\n  \r\n\tx",
      "I'M YOU'RE WE'VE THEY'LL HE'D IT'S DON'T i'm you're",
      "1234567890 12 123 1234 3.14159 1,000,000",
      "...!!!???,,,;;; $+<=>^~|` «quote» — dash – ‘single’ “double”",
      "def f(x):\n    return x**2  # comment\n\n\n    ",
      "abc123def ABCdefGHI camelCaseWord XMLHttpRequest",
      "'s's'S 'll'LL 'd",
      "  \t  x",
      "x   ",
      "  ",
      "<sentinel:12> IMGIMGABCZ tail",
      "Tiếng Việt có dấu: Cửa Việt, người, được",
      "ŉ ǅ ǈ Ǌ ᾈ ᾯ",  // titlecase letters
  };
}

TEST(PreTokenizerReference, SplitsMatchPythonRegex) {
  std::vector<std::string> texts = read_cases(vocab_dir() / "ggml-vocab-gpt-2.gguf.inp");
  ASSERT_EQ(texts.size(), 46u);
  for (std::string& extra : extra_cases()) texts.push_back(std::move(extra));

  nlohmann::json request;
  request["pre"] = std::vector<std::string>(std::begin(kPreNames), std::end(kPreNames));
  request["texts"] = texts;
  const auto dir = edgelm::test::binary_dir() / "tokenizer_pretok";
  std::filesystem::create_directories(dir);
  const auto request_path = dir / "request.json";
  const auto reply_path = dir / "reply.json";
  std::ofstream(request_path) << request.dump();
  const std::string command =
      edgelm::test::python3() + " " +
      (edgelm::test::source_dir() / "tests/reference/tokenizer_pretok.py").string() + " < " +
      request_path.string() + " > " + reply_path.string();
  ASSERT_EQ(std::system(command.c_str()), 0)
      << command << "\n(needs Debian's python3-regex: apt-get install python3-regex)";
  const auto reply = nlohmann::json::parse(read_file(reply_path));

  for (const char* name : kPreNames) {
    SCOPED_TRACE(name);
    const auto type = pre_type_for_name(name);
    ASSERT_TRUE(type.has_value());
    auto pre = PreTokenizer::create(*type);
    ASSERT_TRUE(pre) << pre.error().to_string();
    const auto& expected_all = reply.at(name);
    ASSERT_EQ(expected_all.size(), texts.size());
    for (size_t i = 0; i < texts.size(); ++i) {
      auto words = pre->split(texts[i]);
      ASSERT_TRUE(words);
      EXPECT_EQ(*words, expected_all[i].get<std::vector<std::string>>())
          << "text " << i << ": '" << texts[i] << "'";
    }
  }
}

// llama.cpp's hand-written GPT-2 / Llama-3 matchers give unassigned code points (no Unicode
// category) no class: each becomes a piece of its own instead of joining punctuation, unlike a
// plain regex engine. (U+0378 is unassigned.)
TEST(PreTokenizerQuirks, UnassignedCodePointsStandAlone) {
  auto gpt2 = PreTokenizer::create(PreType::kGpt2);
  ASSERT_TRUE(gpt2);
  auto words = gpt2->split("!\xCD\xB8\xCD\xB8! a");
  ASSERT_TRUE(words);
  EXPECT_EQ(*words, (std::vector<std::string>{"!", "\xCD\xB8", "\xCD\xB8", "!", " a"}));
  auto qwen2 = PreTokenizer::create(PreType::kQwen2);  // std::regex path in llama.cpp: one class
  ASSERT_TRUE(qwen2);
  words = qwen2->split("!\xCD\xB8\xCD\xB8! a");
  ASSERT_TRUE(words);
  EXPECT_EQ(*words, (std::vector<std::string>{"!\xCD\xB8\xCD\xB8!", " a"}));
}

TEST(PreTokenizerQuirks, InvalidUtf8BecomesReplacementCharacters) {
  auto gpt2 = PreTokenizer::create(PreType::kGpt2);
  ASSERT_TRUE(gpt2);
  auto words = gpt2->split("ab\xFF\xC3(");
  ASSERT_TRUE(words);
  EXPECT_EQ(*words, (std::vector<std::string>{"ab", "\xEF\xBF\xBD\xEF\xBF\xBD("}));
}

}  // namespace
}  // namespace edgelm::tokenizer::test
