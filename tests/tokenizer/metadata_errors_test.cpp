// Malformed tokenizer metadata is refused with an error that names the key at fault, and
// well-formed synthetic vocabularies load. GGUFs are built in memory with GgufWriter.
#include <gtest/gtest.h>

#include "edgelm/gguf.h"
#include "edgelm/tokenizer.h"

namespace edgelm::tokenizer {
namespace {

using format::GgufArray;
using format::GgufType;
using format::GgufValue;
using format::GgufWriter;

GgufValue strings(std::vector<std::string> values) {
  GgufArray array;
  array.elem_type = GgufType::kString;
  array.strings = std::move(values);
  return GgufValue::array(std::move(array));
}
GgufValue floats(std::vector<double> values) {
  GgufArray array;
  array.elem_type = GgufType::kFloat32;
  array.floats = std::move(values);
  return GgufValue::array(std::move(array));
}
GgufValue ints(std::vector<int64_t> values) {
  GgufArray array;
  array.elem_type = GgufType::kInt32;
  array.ints = std::move(values);
  return GgufValue::array(std::move(array));
}

// A tiny SentencePiece vocabulary: <unk> <s> </s> ▁ a b ▁a ab ▁ab.
GgufWriter spm_writer() {
  GgufWriter writer;
  writer.set("tokenizer.ggml.model", GgufValue::string("llama"));
  writer.set("tokenizer.ggml.tokens", strings({"<unk>", "<s>", "</s>", "\xE2\x96\x81", "a", "b",
                                               "\xE2\x96\x81"
                                               "a",
                                               "ab",
                                               "\xE2\x96\x81"
                                               "ab"}));
  writer.set("tokenizer.ggml.scores", floats({0, 0, 0, -1, -2, -2, -1.5, -3, -0.5}));
  writer.set("tokenizer.ggml.token_type", ints({2, 3, 3, 1, 1, 1, 1, 1, 1}));
  return writer;
}

GgufWriter bpe_writer() {
  GgufWriter writer;
  writer.set("tokenizer.ggml.model", GgufValue::string("gpt2"));
  writer.set("tokenizer.ggml.pre", GgufValue::string("gpt-2"));
  writer.set("tokenizer.ggml.tokens", strings({"a", "b", "ab", "\xC4\xA0",
                                               "\xC4\xA0"
                                               "ab"}));
  writer.set("tokenizer.ggml.merges", strings({"a b", "\xC4\xA0 ab"}));
  return writer;
}

Result<std::unique_ptr<Tokenizer>> load(const GgufWriter& writer, std::vector<uint8_t>& bytes) {
  auto serialized = writer.to_bytes();
  if (!serialized) return serialized.error();
  bytes = std::move(serialized).value();
  auto file = format::GgufFile::parse(bytes);
  if (!file) return file.error();
  return Tokenizer::from_gguf(*file);
}

void expect_error(const GgufWriter& writer, std::string_view key) {
  std::vector<uint8_t> bytes;
  auto tokenizer = load(writer, bytes);
  ASSERT_FALSE(tokenizer) << "loaded although '" << key << "' is malformed";
  EXPECT_NE(tokenizer.error().message.find(key), std::string::npos)
      << tokenizer.error().to_string();
}

TEST(TokenizerMetadata, SyntheticVocabulariesLoadAndEncode) {
  std::vector<uint8_t> bytes;
  auto spm = load(spm_writer(), bytes);
  ASSERT_TRUE(spm) << spm.error().to_string();
  auto ids = (*spm)->encode("ab a", true, false);
  ASSERT_TRUE(ids);
  EXPECT_EQ(*ids, (std::vector<int32_t>{1, 8, 6}));  // <s> ▁ab ▁a (highest scores merge first)
  EXPECT_EQ((*spm)->decode(*ids, false), " ab a");

  std::vector<uint8_t> bpe_bytes;
  auto bpe = load(bpe_writer(), bpe_bytes);
  ASSERT_TRUE(bpe) << bpe.error().to_string();
  ids = (*bpe)->encode("ab ab", false, false);
  ASSERT_TRUE(ids);
  EXPECT_EQ(*ids, (std::vector<int32_t>{2, 4}));
  // No token and no byte token for "c": llama.cpp drops such characters in BPE.
  ids = (*bpe)->encode("c", false, false);
  ASSERT_TRUE(ids);
  EXPECT_TRUE(ids->empty());
}

TEST(TokenizerMetadata, MissingOrUnknownModel) {
  GgufWriter writer = spm_writer();
  writer.remove("tokenizer.ggml.model");
  expect_error(writer, "tokenizer.ggml.model");
  writer.set("tokenizer.ggml.model", GgufValue::string("t5-unigram"));
  expect_error(writer, "tokenizer.ggml.model");
  writer.set("tokenizer.ggml.model", GgufValue::u32(3));
  expect_error(writer, "tokenizer.ggml.model");
}

TEST(TokenizerMetadata, TokenArrays) {
  GgufWriter writer = spm_writer();
  writer.remove("tokenizer.ggml.tokens");
  expect_error(writer, "tokenizer.ggml.tokens");
  writer.set("tokenizer.ggml.tokens", ints({1, 2, 3}));
  expect_error(writer, "tokenizer.ggml.tokens");
  writer.set("tokenizer.ggml.tokens", strings({}));
  expect_error(writer, "tokenizer.ggml.tokens");
  writer = spm_writer();
  writer.set("tokenizer.ggml.tokens",
             strings({"<unk>", "<s>", "</s>", "a", "a", "b", "c", "d", "e"}));
  expect_error(writer, "tokenizer.ggml.tokens");  // duplicate text
}

TEST(TokenizerMetadata, LengthMismatches) {
  GgufWriter writer = spm_writer();
  writer.set("tokenizer.ggml.scores", floats({0, 0, 0}));
  expect_error(writer, "tokenizer.ggml.scores");
  writer = spm_writer();
  writer.set("tokenizer.ggml.token_type", ints({1, 1}));
  expect_error(writer, "tokenizer.ggml.token_type");
  writer = spm_writer();
  writer.set("tokenizer.ggml.scores", strings({"x"}));
  expect_error(writer, "tokenizer.ggml.scores");
}

TEST(TokenizerMetadata, SpecialTokenIds) {
  GgufWriter writer = spm_writer();
  writer.set("tokenizer.ggml.eos_token_id", GgufValue::u32(9));
  expect_error(writer, "tokenizer.ggml.eos_token_id");
  writer = spm_writer();
  writer.set("tokenizer.ggml.bos_token_id", GgufValue::i32(-5));
  expect_error(writer, "tokenizer.ggml.bos_token_id");
  writer = spm_writer();
  writer.set("tokenizer.ggml.unknown_token_id", GgufValue::string("0"));
  expect_error(writer, "tokenizer.ggml.unknown_token_id");
  writer = spm_writer();
  writer.set("tokenizer.ggml.add_bos_token", GgufValue::string("yes"));
  expect_error(writer, "tokenizer.ggml.add_bos_token");

  // 0xFFFFFFFF and -1 mean "no such token" (converters write them), as for stories260K.
  writer = spm_writer();
  writer.set("tokenizer.ggml.padding_token_id", GgufValue::u32(0xFFFFFFFFu));
  writer.set("tokenizer.ggml.bos_token_id", GgufValue::i32(-1));
  writer.set("tokenizer.ggml.add_bos_token", GgufValue::boolean(false));
  std::vector<uint8_t> bytes;
  auto tokenizer = load(writer, bytes);
  ASSERT_TRUE(tokenizer) << tokenizer.error().to_string();
  EXPECT_EQ((*tokenizer)->pad(), kNoToken);
  EXPECT_EQ((*tokenizer)->bos(), kNoToken);
  // BOS required but absent is an error.
  writer.set("tokenizer.ggml.add_bos_token", GgufValue::boolean(true));
  expect_error(writer, "tokenizer.ggml.add_bos_token");
}

TEST(TokenizerMetadata, BpeMergesAndPreTokenizer) {
  GgufWriter writer = bpe_writer();
  writer.remove("tokenizer.ggml.merges");
  expect_error(writer, "tokenizer.ggml.merges");
  writer = bpe_writer();
  writer.set("tokenizer.ggml.merges", strings({"a b", "nospace"}));
  expect_error(writer, "tokenizer.ggml.merges");
  writer = bpe_writer();
  writer.set("tokenizer.ggml.merges", ints({1}));
  expect_error(writer, "tokenizer.ggml.merges");
  writer = bpe_writer();
  writer.set("tokenizer.ggml.pre", GgufValue::string("no-such-pre"));
  expect_error(writer, "tokenizer.ggml.pre");
}

}  // namespace
}  // namespace edgelm::tokenizer
