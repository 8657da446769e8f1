// stories260K's SentencePiece vocabulary (Karpathy's tok512, converted by llama.cpp) against the
// greedy decode recorded in stories260K.greedy-from-bos.json (ids, token pieces, detokenized text
// produced by the numpy reference) and the first tokens listed in shared/models/MANIFEST.md.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tokenizer/test_util.h"

namespace edgelm::tokenizer::test {
namespace {

std::filesystem::path stories_dir() {
  return edgelm::test::shared_models_dir() / "stories260K";
}

class Stories260K : public ::testing::Test {
 protected:
  void SetUp() override {
    loaded_ = load_tokenizer(stories_dir() / "stories260K.gguf");
    ASSERT_TRUE(loaded_.tokenizer) << loaded_.error;
    const auto json =
        nlohmann::json::parse(read_file(stories_dir() / "stories260K.greedy-from-bos.json"));
    ids_ = json.at("tokens").get<std::vector<int32_t>>();
    pieces_ = json.at("pieces").get<std::vector<std::string>>();
    text_ = json.at("text").get<std::string>();
  }
  const Tokenizer& tok() const { return *loaded_.tokenizer; }

  LoadedTokenizer loaded_;
  std::vector<int32_t> ids_;
  std::vector<std::string> pieces_;
  std::string text_;
};

TEST_F(Stories260K, VocabularySettings) {
  EXPECT_EQ(tok().kind(), ModelKind::kSpm);
  EXPECT_EQ(tok().n_vocab(), 512);
  EXPECT_EQ(tok().bos(), 1);
  EXPECT_EQ(tok().eos(), 2);
  EXPECT_EQ(tok().unk(), 0);
  EXPECT_EQ(tok().pad(), kNoToken);  // stored as 0xFFFFFFFF
  EXPECT_EQ(tok().sep(), kNoToken);
  EXPECT_TRUE(tok().add_bos());
  EXPECT_FALSE(tok().add_eos());
  EXPECT_TRUE(tok().add_space_prefix());
  EXPECT_TRUE(tok().is_eog(2));
  EXPECT_FALSE(tok().is_eog(1));
  EXPECT_TRUE(tok().is_control(1));
  EXPECT_EQ(tok().token_type(13), TokenType::kByte);  // <0x0A>
}

TEST_F(Stories260K, PiecesAndTextMatchTheRecordedDecode) {
  ASSERT_EQ(ids_.size(), pieces_.size());
  for (size_t i = 0; i < ids_.size(); ++i) EXPECT_EQ(tok().token_text(ids_[i]), pieces_[i]) << i;
  EXPECT_EQ(tok().decode(ids_, false), text_);
  // Without BOS the first token's SentencePiece space is dropped.
  const std::vector<int32_t> without_bos(ids_.begin() + 1, ids_.end());
  EXPECT_EQ(tok().decode(without_bos, false), text_.substr(1));
  EXPECT_EQ(tok().decode(ids_, true), "<s>" + text_);
}

TEST_F(Stories260K, EncodesTheOpeningLikeTheModelWroteIt) {
  // MANIFEST.md: 1, 403 (▁Once), 407 (▁upon), 261 (▁a), 378 (▁time), 432 (,), 383 (▁there),
  // 286 (▁was), 261 (▁a).
  auto ids = tok().encode("Once upon a time, there was a", true, false);
  ASSERT_TRUE(ids);
  EXPECT_EQ(*ids, (std::vector<int32_t>{1, 403, 407, 261, 378, 432, 383, 286, 261}));
  EXPECT_EQ(tok().token_to_piece(403, false), " Once");
  EXPECT_EQ(tok().token_to_piece(13, false), "\n");
  EXPECT_EQ(tok().token_to_piece(1, false), "");
  EXPECT_EQ(tok().token_to_piece(1, true), "<s>");
  EXPECT_EQ(tok().token_to_piece(-1, true), "");
  EXPECT_EQ(tok().token_to_piece(512, true), "");
}

TEST_F(Stories260K, RecordedTextRoundTrips) {
  // The recorded text starts with the space BOS leaves; without it, encode(text) reproduces a
  // tokenization that decodes back to the same text.
  const std::string body = text_.substr(1);
  auto ids = tok().encode(body, true, false);
  ASSERT_TRUE(ids);
  EXPECT_EQ(ids->front(), 1);
  EXPECT_EQ(tok().decode(*ids, false), text_);
  const std::vector<int32_t> without_bos(ids->begin() + 1, ids->end());
  EXPECT_EQ(tok().decode(without_bos, false), body);
}

TEST_F(Stories260K, StreamingEqualsDecode) {
  StreamDecoder from_bos(tok());
  std::string streamed;
  for (int32_t id : ids_) streamed += from_bos.push(id);
  streamed += from_bos.flush();
  EXPECT_EQ(streamed, text_);

  StreamDecoder after_bos(tok());  // BOS not pushed: the text starts at the first word
  streamed.clear();
  for (size_t i = 1; i < ids_.size(); ++i) streamed += after_bos.push(ids_[i]);
  streamed += after_bos.flush();
  EXPECT_EQ(streamed, text_.substr(1));

  StreamDecoder continuation(tok(), false, true);  // continuing a prompt keeps every space
  EXPECT_EQ(continuation.push(407), " upon");
}

TEST_F(Stories260K, UnknownCharactersUseByteFallback) {
  // tok512 has no token for "中"; it is spelled with its three UTF-8 byte tokens after "▁".
  auto ids = tok().encode("中", false, false);
  ASSERT_TRUE(ids);
  EXPECT_EQ(*ids,
            (std::vector<int32_t>{tok().find_token("\xE2\x96\x81"), tok().find_token("<0xE4>"),
                                  tok().find_token("<0xB8>"), tok().find_token("<0xAD>")}));
  EXPECT_EQ(tok().decode(*ids, false), "中");
  // A stream cut inside the character releases it only once complete.
  StreamDecoder stream(tok());
  EXPECT_EQ(stream.push((*ids)[0]), "");
  EXPECT_EQ(stream.push((*ids)[1]), "");
  EXPECT_EQ(stream.push((*ids)[2]), "");
  EXPECT_EQ(stream.push((*ids)[3]), "中");
  EXPECT_EQ(stream.flush(), "");
}

TEST_F(Stories260K, InvalidUtf8IsKeptAsBytes) {
  // SPM keeps undecodable bytes as byte tokens (llama.cpp behaviour), so they round-trip.
  const std::string text = "a\xFF\xE2(b\xC3";
  auto ids = tok().encode(text, false, false);
  ASSERT_TRUE(ids);
  EXPECT_EQ(tok().decode(*ids, false), text);
  // The stream decoder never emits invalid UTF-8: bad bytes become U+FFFD.
  StreamDecoder stream(tok());
  std::string streamed;
  for (int32_t id : *ids) streamed += stream.push(id);
  streamed += stream.flush();
  EXPECT_EQ(streamed, "a\xEF\xBF\xBD\xEF\xBF\xBD(b\xEF\xBF\xBD");
}

}  // namespace
}  // namespace edgelm::tokenizer::test
