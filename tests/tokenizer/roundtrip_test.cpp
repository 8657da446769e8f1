// decode(encode(x)) == x over llama.cpp's vector inputs, where llama.cpp's own pipeline is
// lossless. Known lossy cases (asserted as such, so a change in behaviour shows up):
//  - WPM (BERT) lower-cases, strips accents, drops white space layout: never round-trips.
//  - BPE vocabs with clean_spaces (gpt-2, falcon, mpt, starcoder, refact) drop the space in
//    " ?", " !", " .", " ," and " ' ", and before 's 'm 're 've: for them decode(encode(x)) must
//    equal the clean-up applied to x (checked against a direct restatement of llama.cpp's passes).
//  - SPM: llama.cpp's detokenizer removes exactly the one leading space the tokenizer added, so
//    SPM round-trips fully, as do deepseek-llm/-coder (clean_spaces off).
#include <gtest/gtest.h>

#include "tokenizer/test_util.h"

namespace edgelm::tokenizer::test {
namespace {

class RoundTrip : public ::testing::TestWithParam<std::string> {};

TEST_P(RoundTrip, DecodeOfEncodeGivesInputBack) {
  const std::string name = GetParam();
  const LoadedTokenizer loaded = load_tokenizer(vocab_path(name));
  ASSERT_TRUE(loaded.tokenizer) << loaded.error;
  const Tokenizer& tok = *loaded.tokenizer;
  const auto cases = read_cases(vocab_dir() / ("ggml-vocab-" + name + ".gguf.inp"));
  ASSERT_FALSE(cases.empty());
  int exact = 0;
  for (const std::string& text : cases) {
    auto ids = tok.encode(text, false, false);
    ASSERT_TRUE(ids);
    const std::string back = tok.decode(*ids, false);
    // clean_spaces vocabs come back with llama.cpp's space clean-up applied to the input.
    const bool cleans = tok.decode(tok.encode(" ,", false, false).value(), false) == ",";
    const std::string expected = cleans ? clean_spaces_reference(text) : text;
    EXPECT_EQ(back, expected) << name;
    exact += expected == text;
  }
  EXPECT_GT(exact, 30);
}

INSTANTIATE_TEST_SUITE_P(LosslessVocabs, RoundTrip,
                         ::testing::Values("llama-spm", "phi-3", "gpt-2", "falcon", "mpt",
                                           "starcoder", "refact", "deepseek-llm", "deepseek-coder"),
                         vocab_test_name);

}  // namespace
}  // namespace edgelm::tokenizer::test
