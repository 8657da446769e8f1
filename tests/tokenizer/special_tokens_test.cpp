// Special-token handling on the real llama.cpp vocabularies. Expected ids come from the vocab
// files themselves (token_text / find_token), and the behaviours are llama.cpp's documented
// rules: control tokens match only with parse_special, SPM adds a space after a special token,
// Phi-3 special tokens swallow white space on their right (except <s>, <unk>, <|endoftext|>).
#include <gtest/gtest.h>

#include "tokenizer/test_util.h"

namespace edgelm::tokenizer::test {
namespace {

std::vector<int32_t> encode(const Tokenizer& tok, std::string_view text, bool add_special,
                            bool parse_special) {
  auto ids = tok.encode(text, add_special, parse_special);
  EXPECT_TRUE(ids) << ids.error().to_string();
  return ids ? *ids : std::vector<int32_t>{};
}

TEST(SpecialTokens, Gpt2EndOfTextOnlyWhenParsingSpecials) {
  const LoadedTokenizer loaded = load_tokenizer(vocab_path("gpt-2"));
  ASSERT_TRUE(loaded.tokenizer) << loaded.error;
  const Tokenizer& tok = *loaded.tokenizer;
  const int32_t eot = tok.find_token("<|endoftext|>");
  ASSERT_EQ(eot, 50256);
  EXPECT_EQ(tok.kind(), ModelKind::kBpe);
  EXPECT_EQ(tok.pre_type(), "gpt-2");
  EXPECT_TRUE(tok.is_eog(eot));
  EXPECT_TRUE(tok.is_control(eot));
  const auto parsed = encode(tok, "a<|endoftext|>b", false, true);
  EXPECT_EQ(parsed, (std::vector<int32_t>{tok.find_token("a"), eot, tok.find_token("b")}));
  const auto literal = encode(tok, "a<|endoftext|>b", false, false);
  EXPECT_EQ(std::count(literal.begin(), literal.end(), eot), 0);
  EXPECT_EQ(tok.decode(literal, false), "a<|endoftext|>b");
  EXPECT_EQ(tok.decode(parsed, false), "ab");
  EXPECT_EQ(tok.decode(parsed, true), "a<|endoftext|>b");
  // gpt-2 has no add_bos_token key and llama.cpp's BPE default is not to add BOS.
  EXPECT_EQ(encode(tok, "a", true, false), (std::vector<int32_t>{tok.find_token("a")}));
  // Byte-level pieces: "Ġ" is a space, "Ċ" a newline.
  EXPECT_EQ(tok.token_to_piece(tok.find_token("\xC4\xA0"
                                              "the"),
                               false),
            " the");
  EXPECT_EQ(tok.token_to_piece(tok.find_token("\xC4\x8A"), false), "\n");
}

TEST(SpecialTokens, LlamaSpmBosAndSpacePrefix) {
  const LoadedTokenizer loaded = load_tokenizer(vocab_path("llama-spm"));
  ASSERT_TRUE(loaded.tokenizer) << loaded.error;
  const Tokenizer& tok = *loaded.tokenizer;
  const int32_t hello = tok.find_token("\xE2\x96\x81Hello");
  ASSERT_NE(hello, kNoToken);
  EXPECT_EQ(encode(tok, "Hello", true, false), (std::vector<int32_t>{1, hello}));
  EXPECT_EQ(encode(tok, "", true, false), (std::vector<int32_t>{1}));
  EXPECT_TRUE(encode(tok, "", false, false).empty());
  // Text after a special token gets the SentencePiece space prefix again.
  EXPECT_EQ(encode(tok, "<s>Hello</s>", false, true), (std::vector<int32_t>{1, hello, 2}));
  // Without parse_special the markup is plain text.
  const auto literal = encode(tok, "<s>", false, false);
  EXPECT_EQ(std::count(literal.begin(), literal.end(), 1), 0);
  EXPECT_EQ(tok.decode(literal, false), "<s>");
  // decode keeps the space after BOS (llama.cpp), strips it when the text starts the sequence.
  EXPECT_EQ(tok.decode(std::vector<int32_t>{1, hello}, false), " Hello");
  EXPECT_EQ(tok.decode(std::vector<int32_t>{hello}, false), "Hello");
  EXPECT_EQ(tok.decode(std::vector<int32_t>{1, hello}, true), "<s> Hello");
}

TEST(SpecialTokens, Phi3SpecialsStripFollowingWhiteSpace) {
  const LoadedTokenizer loaded = load_tokenizer(vocab_path("phi-3"));
  ASSERT_TRUE(loaded.tokenizer) << loaded.error;
  const Tokenizer& tok = *loaded.tokenizer;
  const int32_t user = tok.find_token("<|user|>");
  const int32_t end = tok.find_token("<|end|>");
  const int32_t endoftext = tok.find_token("<|endoftext|>");
  ASSERT_NE(user, kNoToken);
  EXPECT_TRUE(tok.is_eog(end));
  EXPECT_TRUE(tok.is_eog(endoftext));
  EXPECT_EQ(tok.eot(), end);
  const int32_t hi = tok.find_token("\xE2\x96\x81hi");
  ASSERT_NE(hi, kNoToken);
  EXPECT_EQ(encode(tok, "<|user|>\n  hi<|end|>", false, true),
            (std::vector<int32_t>{user, hi, end}));
  // <|endoftext|> keeps the white space after it: "▁" + "▁hi" (prefix space, then the text's).
  const auto kept = encode(tok, "<|endoftext|> hi", false, true);
  ASSERT_EQ(kept.size(), 3u);
  EXPECT_EQ(kept[0], endoftext);
  EXPECT_EQ(kept[2], hi);
}

TEST(SpecialTokens, BertFramesWithClsAndSep) {
  const LoadedTokenizer loaded = load_tokenizer(vocab_path("bert-bge"));
  ASSERT_TRUE(loaded.tokenizer) << loaded.error;
  const Tokenizer& tok = *loaded.tokenizer;
  EXPECT_EQ(tok.kind(), ModelKind::kWpm);
  const auto ids = encode(tok, "Hello WÖRLD!", true, false);
  EXPECT_EQ(ids, (std::vector<int32_t>{101, tok.find_token("\xE2\x96\x81hello"),
                                       tok.find_token("\xE2\x96\x81world"),
                                       tok.find_token("\xE2\x96\x81!"), 102}));
  // Unknown words become [UNK] (id 100); [SEP] in the text is a control token.
  EXPECT_EQ(encode(tok, "\xF0\x9F\xA6\x99", false, false), (std::vector<int32_t>{100}));
  EXPECT_EQ(encode(tok, "a [SEP] b", false, true),
            (std::vector<int32_t>{tok.find_token("\xE2\x96\x81"
                                                 "a"),
                                  102,
                                  tok.find_token("\xE2\x96\x81"
                                                 "b")}));
  EXPECT_EQ(tok.decode(ids, false), " hello world!");
}

}  // namespace
}  // namespace edgelm::tokenizer::test
