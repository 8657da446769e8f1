// llama.cpp's tokenizer test vectors (models/ggml-vocab-*.gguf.{inp,out}): every case must give
// exactly llama.cpp's ids with add_special=false, parse_special=false.
#include <gtest/gtest.h>

#include "tokenizer/test_util.h"

namespace edgelm::tokenizer::test {
namespace {

class VocabVectors : public ::testing::TestWithParam<std::string> {};

TEST_P(VocabVectors, EncodeMatchesLlamaCpp) {
  const std::string name = GetParam();
  const auto gguf = vocab_path(name);
  if (!std::filesystem::exists(gguf)) {
    GTEST_SKIP() << "ggml-vocab-" << name << ".gguf is not in shared/models (the vocabulary is "
                 << ">= 4 MiB and was not collected); its pre-tokenizer regexes are checked "
                 << "against Python's regex module in PreTokenizerReference instead";
  }
  const auto cases = read_cases(vocab_dir() / ("ggml-vocab-" + name + ".gguf.inp"));
  const auto expected = read_expected(vocab_dir() / ("ggml-vocab-" + name + ".gguf.out"));
  ASSERT_EQ(cases.size(), 46u);
  ASSERT_EQ(expected.size(), cases.size());
  const LoadedTokenizer loaded = load_tokenizer(gguf);
  ASSERT_TRUE(loaded.tokenizer) << loaded.error;
  int failures = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    auto ids = loaded.tokenizer->encode(cases[i], false, false);
    ASSERT_TRUE(ids) << ids.error().to_string();
    if (*ids != expected[i]) ++failures;
    EXPECT_EQ(*ids, expected[i]) << "case " << i << " '" << cases[i] << "'\n  got     "
                                 << ids_to_string(*ids) << "\n  expected"
                                 << ids_to_string(expected[i]);
  }
  EXPECT_EQ(failures, 0);
}

INSTANTIATE_TEST_SUITE_P(AllVocabs, VocabVectors,
                         ::testing::Values("llama-spm", "phi-3", "gpt-2", "falcon", "mpt",
                                           "starcoder", "refact", "deepseek-llm", "deepseek-coder",
                                           "bert-bge", "llama-bpe", "qwen2"),
                         vocab_test_name);

}  // namespace
}  // namespace edgelm::tokenizer::test
