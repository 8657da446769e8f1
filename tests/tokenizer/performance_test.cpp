// Long prompts must tokenize in near-linear time (priority-queue merges, no quadratic passes).
// The bounds are generous (they hold under ASan on a loaded 2-core machine); a quadratic
// algorithm would take minutes on these inputs.
#include <gtest/gtest.h>

#include <chrono>
#include <random>

#include "tokenizer/test_util.h"

namespace edgelm::tokenizer::test {
namespace {

// ~200 KB of mixed text: words in several scripts, numbers, punctuation, code-like runs.
std::string random_text(size_t bytes) {
  static const char* const kWords[] = {
      "the",  "tokenizer", "Hello", "world",   "naïve",    "нещо",  "Български", "我想在",
      "工作", "🦙",      "😁",     "3.14159", "12345",    "don't", "I'll",      "----",
      "====", "\t",        "\n",    "  ",      "apple",    "(x)",   "{y};",      "ПРИВЕТ",
      "ΑΒΓ",  "αβγ",       "كلمة",  "नमस्ते",    "カタカナ", "<|x|>"};
  std::mt19937 rng(42);
  std::string text;
  while (text.size() < bytes) {
    text += kWords[rng() % std::size(kWords)];
    if (rng() % 4 != 0) text += ' ';
  }
  return text;
}

class LongInput : public ::testing::TestWithParam<std::string> {};

TEST_P(LongInput, TokenizesInLinearishTime) {
  const LoadedTokenizer loaded = load_tokenizer(vocab_path(GetParam()));
  ASSERT_TRUE(loaded.tokenizer) << loaded.error;
  const Tokenizer& tok = *loaded.tokenizer;
  const std::vector<std::string> inputs = {random_text(200 * 1024), std::string(200 * 1024, 'a'),
                                           std::string(100 * 1024, ' ')};
  for (const std::string& text : inputs) {
    const auto start = std::chrono::steady_clock::now();
    auto ids = tok.encode(text, true, true);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    ASSERT_TRUE(ids) << ids.error().to_string();
    EXPECT_FALSE(ids->empty());
    EXPECT_LT(seconds, 20.0) << GetParam() << ": " << text.size() << " bytes took " << seconds
                             << " s";
  }
}

INSTANTIATE_TEST_SUITE_P(Vocabs, LongInput,
                         ::testing::Values("llama-spm", "gpt-2", "deepseek-llm", "bert-bge"),
                         vocab_test_name);

TEST(LongInput, RefusesAbsurdlyLargeInputs) {
  const LoadedTokenizer loaded = load_tokenizer(vocab_path("gpt-2"));
  ASSERT_TRUE(loaded.tokenizer) << loaded.error;
  const std::string huge((16u << 20) + 1, 'a');
  auto ids = loaded.tokenizer->encode(huge, false, false);
  ASSERT_FALSE(ids);
  EXPECT_EQ(ids.error().code, ErrorCode::kOutOfRange);
}

}  // namespace
}  // namespace edgelm::tokenizer::test
