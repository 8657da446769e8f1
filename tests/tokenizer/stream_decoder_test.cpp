// StreamDecoder and the incremental space clean-up against batch references.
#include <gtest/gtest.h>

#include <random>

#include "tokenizer/detokenize.h"
#include "tokenizer/test_util.h"
#include "tokenizer/unicode.h"

namespace edgelm::tokenizer::test {
namespace {

TEST(SpaceCleaner, StreamingEqualsBatchPasses) {
  std::mt19937 rng(1234);
  const std::string alphabet = " '.,?!smrvetdlax";
  for (int iteration = 0; iteration < 3000; ++iteration) {
    std::string text(rng() % 24, ' ');
    for (char& c : text) c = alphabet[rng() % alphabet.size()];
    const std::string expected = clean_spaces_reference(text);
    SpaceCleaner whole;
    std::string batch = whole.feed(text);
    batch += whole.finish();
    EXPECT_EQ(batch, expected) << "'" << text << "'";
    SpaceCleaner pieces;
    std::string streamed;
    for (size_t pos = 0; pos < text.size();) {
      const size_t n = std::min<size_t>(1 + rng() % 3, text.size() - pos);
      streamed += pieces.feed(std::string_view(text).substr(pos, n));
      pos += n;
    }
    streamed += pieces.finish();
    EXPECT_EQ(streamed, expected) << "'" << text << "'";
  }
}

bool is_valid_utf8(std::string_view s) {
  for (size_t pos = 0; pos < s.size();) {
    uint32_t cp = 0;
    const int n = unicode::decode_one(s, pos, cp);
    if (n <= 0) return false;
    pos += n;
  }
  return true;
}

class StreamVsDecode : public ::testing::TestWithParam<std::string> {};

TEST_P(StreamVsDecode, ConcatenationEqualsDecodeAndIsAlwaysValidUtf8) {
  const LoadedTokenizer loaded = load_tokenizer(vocab_path(GetParam()));
  ASSERT_TRUE(loaded.tokenizer) << loaded.error;
  const Tokenizer& tok = *loaded.tokenizer;
  for (const std::string& text : read_cases(vocab_dir() / "ggml-vocab-gpt-2.gguf.inp")) {
    auto ids = tok.encode(text, true, false);
    ASSERT_TRUE(ids);
    StreamDecoder stream(tok);
    std::string streamed;
    for (int32_t id : *ids) {
      const std::string part = stream.push(id);
      EXPECT_TRUE(is_valid_utf8(part));
      streamed += part;
    }
    streamed += stream.flush();
    EXPECT_EQ(streamed, tok.decode(*ids, false)) << "'" << text << "'";
  }
}

INSTANTIATE_TEST_SUITE_P(Vocabs, StreamVsDecode,
                         ::testing::Values("llama-spm", "gpt-2", "falcon", "deepseek-llm",
                                           "bert-bge"),
                         vocab_test_name);

TEST(StreamDecoder, HoldsBackSplitCharactersAndReplacesBrokenOnes) {
  const LoadedTokenizer loaded = load_tokenizer(vocab_path("gpt-2"));
  ASSERT_TRUE(loaded.tokenizer) << loaded.error;
  const Tokenizer& tok = *loaded.tokenizer;
  // GPT-2 spells 🦙 (F0 9F A6 99) with byte-level tokens; find one token per byte.
  const auto& bytes = unicode::byte_to_utf8();
  const auto byte_id = [&](uint8_t b) { return tok.find_token(bytes[b]); };
  StreamDecoder stream(tok);
  EXPECT_EQ(stream.push(byte_id(0xF0)), "");
  EXPECT_EQ(stream.push(byte_id(0x9F)), "");
  EXPECT_EQ(stream.push(byte_id(0xA6)), "");
  EXPECT_EQ(stream.push(byte_id(0x99)), "\xF0\x9F\xA6\x99");
  // A lead byte followed by a non-continuation byte can never complete: U+FFFD, then the byte.
  EXPECT_EQ(stream.push(byte_id(0xE2)), "");
  EXPECT_EQ(stream.push(byte_id('A')),
            "\xEF\xBF\xBD"
            "A");
  // A truncated character at the end of the stream becomes one U+FFFD.
  EXPECT_EQ(stream.push(byte_id(0xE2)), "");
  EXPECT_EQ(stream.push(byte_id(0x82)), "");
  EXPECT_EQ(stream.flush(), "\xEF\xBF\xBD");
}

TEST(StreamDecoder, CleanUpWaitsForTheNextToken) {
  const LoadedTokenizer loaded = load_tokenizer(vocab_path("gpt-2"));
  ASSERT_TRUE(loaded.tokenizer) << loaded.error;
  const Tokenizer& tok = *loaded.tokenizer;
  StreamDecoder stream(tok);
  std::string out = stream.push(tok.find_token("Hello"));
  out += stream.push(tok.find_token("\xC4\xA0"));  // " "
  EXPECT_EQ(out.find(' '), std::string::npos);     // the space may still be dropped
  out += stream.push(tok.find_token(","));
  out += stream.flush();
  EXPECT_EQ(out, "Hello,");
}

}  // namespace
}  // namespace edgelm::tokenizer::test
