// The real GGUF files in ../shared/models: every one parses (or gets the v1 error), facts from
// MANIFEST.md hold, and mmap and read give identical results.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <map>

#include "format/gguf_test_util.h"

namespace edgelm::format {
namespace {

using test::real_gguf_files;
using test::stories_path;
using ::testing::HasSubstr;

// Each real file is parsed once per test run (the vocabularies are large for ASan builds).
const Result<GgufFile>& cached_open(const std::filesystem::path& path) {
  static std::map<std::filesystem::path, Result<GgufFile>> cache;
  auto it = cache.find(path);
  if (it == cache.end()) it = cache.emplace(path, GgufFile::open(path)).first;
  return it->second;
}

TEST(GgufRealFiles, EveryFileParsesOrIsRejectedAsV1) {
  const auto files = real_gguf_files();
  ASSERT_GE(files.size(), 14u) << "expected the 12 vocab-only files and 2 stories260K files";
  for (const auto& path : files) {
    SCOPED_TRACE(path.string());
    const auto& file = cached_open(path);
    if (path.filename().string().find(".v1.") != std::string::npos) {
      ASSERT_FALSE(file.has_value());
      EXPECT_EQ(file.error().code, ErrorCode::kUnsupported);
      EXPECT_THAT(file.error().message, HasSubstr("unsupported GGUF v1"));
      EXPECT_THAT(file.error().message, HasSubstr(path.filename().string()));
      continue;
    }
    ASSERT_TRUE(file.has_value()) << file.error().to_string();
    EXPECT_EQ(file->version(), 3u);
    EXPECT_EQ(file->alignment(), 32u);
    EXPECT_TRUE(file->is_mapped());
    EXPECT_EQ(file->path(), path);
    ASSERT_TRUE(file->get_string("general.architecture").has_value());
    ASSERT_TRUE(file->get_string("tokenizer.ggml.model").has_value());
    auto tokens = file->get_array("tokenizer.ggml.tokens");
    ASSERT_TRUE(tokens.has_value()) << tokens.error().to_string();
    EXPECT_EQ((*tokens)->elem_type, GgufType::kString);
    if (path.filename() == "stories260K.gguf") {
      EXPECT_EQ(file->tensors().size(), 48u);
    } else {  // the llama.cpp vocab-only files have no tensors
      EXPECT_EQ(file->tensors().size(), 0u);
    }
  }
}

// Vocab sizes from MANIFEST.md for each vocab-only file.
TEST(GgufRealFiles, VocabSizesMatchManifest) {
  const std::vector<std::pair<std::string, uint64_t>> expected = {
      {"baichuan", 64000}, {"bert-bge", 30522}, {"deepseek-coder", 32256}, {"deepseek-llm", 102400},
      {"falcon", 65024},   {"gpt-2", 50257},    {"gpt-neox", 50432},       {"llama-spm", 32000},
      {"mpt", 50432},      {"phi-3", 32064},    {"refact", 49216},         {"starcoder", 49152}};
  for (const auto& [name, n_vocab] : expected) {
    SCOPED_TRACE(name);
    const auto& file = cached_open(edgelm::test::shared_models_dir() / "llama.cpp-vocab" /
                                   ("ggml-vocab-" + name + ".gguf"));
    ASSERT_TRUE(file.has_value()) << file.error().to_string();
    auto tokens = file->get_array("tokenizer.ggml.tokens");
    ASSERT_TRUE(tokens.has_value());
    EXPECT_EQ((*tokens)->size(), n_vocab);
  }
  const auto& gpt2 =
      cached_open(edgelm::test::shared_models_dir() / "llama.cpp-vocab" / "ggml-vocab-gpt-2.gguf");
  ASSERT_TRUE(gpt2.has_value());
  EXPECT_EQ(*gpt2->get_string("tokenizer.ggml.pre"), "gpt-2");
  auto merges = gpt2->get_array("tokenizer.ggml.merges");
  ASSERT_TRUE(merges.has_value());
  EXPECT_EQ((*merges)->size(), 50000u);  // MANIFEST: merges=50000
}

TEST(GgufRealFiles, Stories260KFactsFromManifest) {
  auto file = GgufFile::open(stories_path());
  ASSERT_TRUE(file.has_value()) << file.error().to_string();
  const GgufFile& f = *file;
  EXPECT_EQ(f.bytes().size(), 1185376u);
  EXPECT_EQ(*f.get_string("general.architecture"), "llama");
  EXPECT_EQ(*f.get_string("tokenizer.ggml.model"), "llama");
  EXPECT_EQ(*f.get_uint("llama.embedding_length"), 64u);
  EXPECT_EQ(*f.get_uint("llama.feed_forward_length"), 172u);
  EXPECT_EQ(*f.get_uint("llama.block_count"), 5u);
  EXPECT_EQ(*f.get_uint("llama.attention.head_count"), 8u);
  EXPECT_EQ(*f.get_uint("llama.attention.head_count_kv"), 4u);
  EXPECT_EQ(*f.get_uint("llama.rope.dimension_count"), 8u);
  EXPECT_EQ(*f.get_uint("llama.context_length"), 2048u);
  EXPECT_EQ(*f.get_int("llama.context_length"), 2048);
  EXPECT_FLOAT_EQ(static_cast<float>(*f.get_float("llama.attention.layer_norm_rms_epsilon")),
                  1e-5f);
  EXPECT_EQ(*f.get_uint("tokenizer.ggml.bos_token_id"), 1u);
  EXPECT_EQ(*f.get_uint("tokenizer.ggml.eos_token_id"), 2u);
  EXPECT_EQ(*f.get_uint("tokenizer.ggml.unknown_token_id"), 0u);
  EXPECT_EQ(*f.get_uint("tokenizer.ggml.seperator_token_id"), 4294967295u);
  EXPECT_EQ(*f.get_uint("tokenizer.ggml.padding_token_id"), 4294967295u);
  // Absent keys: not found, and the fallback getters use the fallback.
  EXPECT_EQ(f.find("llama.rope.freq_base"), nullptr);
  EXPECT_EQ(f.get_float("llama.rope.freq_base").error().code, ErrorCode::kNotFound);
  EXPECT_DOUBLE_EQ(*f.get_float_or("llama.rope.freq_base", 10000.0), 10000.0);
  EXPECT_EQ(f.find("general.file_type"), nullptr);
  EXPECT_EQ(f.find("tokenizer.ggml.pre"), nullptr);
  EXPECT_EQ(*f.get_string_or("tokenizer.ggml.pre", "default"), "default");
  EXPECT_TRUE(*f.get_bool_or("tokenizer.ggml.add_bos_token", true));

  auto tokens = f.get_array("tokenizer.ggml.tokens");
  ASSERT_TRUE(tokens.has_value());
  ASSERT_EQ((*tokens)->strings.size(), 512u);
  // MANIFEST: greedy decode starts 403 (▁Once), 407 (▁upon), 261 (▁a), 378 (▁time), 432 (,).
  EXPECT_EQ((*tokens)->strings[403], "\xe2\x96\x81Once");
  EXPECT_EQ((*tokens)->strings[407], "\xe2\x96\x81upon");
  EXPECT_EQ((*tokens)->strings[261],
            "\xe2\x96\x81"
            "a");
  EXPECT_EQ((*tokens)->strings[378], "\xe2\x96\x81time");
  EXPECT_EQ((*tokens)->strings[432], ",");
  auto scores = f.get_array("tokenizer.ggml.scores");
  ASSERT_TRUE(scores.has_value());
  EXPECT_EQ((*scores)->elem_type, GgufType::kFloat32);
  EXPECT_EQ((*scores)->floats.size(), 512u);
  auto token_type = f.get_array("tokenizer.ggml.token_type");
  ASSERT_TRUE(token_type.has_value());
  EXPECT_EQ((*token_type)->elem_type, GgufType::kInt32);
  EXPECT_EQ((*token_type)->ints.size(), 512u);

  ASSERT_EQ(f.tensors().size(), 48u);
  uint64_t total_elements = 0;
  for (const auto& t : f.tensors()) {
    EXPECT_EQ(t.type, TensorType::kF32) << t.name;
    EXPECT_EQ(t.n_bytes, t.n_elements * 4) << t.name;
    EXPECT_EQ(f.tensor_data(t).size(), t.n_bytes);
    total_elements += t.n_elements;
  }
  EXPECT_EQ(total_elements, 292800u);  // MANIFEST: 292,800 stored floats
  const std::vector<std::pair<std::string, std::vector<uint64_t>>> shapes = {
      {"token_embd.weight", {64, 512}},       {"output_norm.weight", {64}},
      {"output.weight", {64, 512}},           {"blk.0.attn_q.weight", {64, 64}},
      {"blk.4.attn_k.weight", {64, 32}},      {"blk.2.attn_v.weight", {64, 32}},
      {"blk.3.attn_output.weight", {64, 64}}, {"blk.1.attn_norm.weight", {64}},
      {"blk.0.ffn_gate.weight", {64, 172}},   {"blk.4.ffn_down.weight", {172, 64}},
      {"blk.4.ffn_up.weight", {64, 172}},     {"blk.4.ffn_norm.weight", {64}}};
  for (const auto& [name, ne] : shapes) {
    const GgufTensorInfo* t = f.find_tensor(name);
    ASSERT_NE(t, nullptr) << name;
    EXPECT_EQ(t->ne, ne) << name;
  }
  EXPECT_EQ(f.find_tensor("blk.5.attn_q.weight"), nullptr);
  // MANIFEST: output.weight is a stored copy of token_embd.weight.
  const auto embd = f.tensor_data(*f.find_tensor("token_embd.weight"));
  const auto output = f.tensor_data(*f.find_tensor("output.weight"));
  ASSERT_EQ(embd.size(), output.size());
  EXPECT_EQ(std::memcmp(embd.data(), output.data(), embd.size()), 0);
  // Tensor data of mapped files is aligned in memory as in the file.
  EXPECT_EQ(reinterpret_cast<uintptr_t>(embd.data()) % 32, 0u);
}

TEST(GgufRealFiles, GetterTypeErrorsNameTheKey) {
  auto file = GgufFile::open(stories_path());
  ASSERT_TRUE(file.has_value());
  auto s = file->get_string("llama.block_count");
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error().code, ErrorCode::kInvalidFormat);
  EXPECT_THAT(s.error().message, HasSubstr("'llama.block_count'"));
  EXPECT_THAT(s.error().message, HasSubstr("u32"));
  EXPECT_FALSE(file->get_uint("general.architecture").has_value());
  EXPECT_FALSE(file->get_float("llama.block_count").has_value());  // ints are not floats
  EXPECT_FALSE(file->get_bool("llama.block_count").has_value());
  EXPECT_FALSE(file->get_array("llama.block_count").has_value());
  EXPECT_FALSE(file->get_uint_or("general.architecture", 7).has_value());  // present, wrong type
  EXPECT_EQ(file->get_string("no.such.key").error().code, ErrorCode::kNotFound);
  EXPECT_THAT(file->get_string("no.such.key").error().message, HasSubstr("'no.such.key'"));
}

TEST(GgufRealFiles, MmapAndReadGiveIdenticalResults) {
  for (const auto& path : real_gguf_files()) {
    SCOPED_TRACE(path.string());
    auto mapped = GgufFile::open(path, {.use_mmap = true});
    auto read = GgufFile::open(path, {.use_mmap = false});
    ASSERT_EQ(mapped.has_value(), read.has_value());
    if (!mapped.has_value()) {
      EXPECT_EQ(mapped.error().message, read.error().message);
      continue;
    }
    EXPECT_TRUE(mapped->is_mapped());
    EXPECT_FALSE(read->is_mapped());
    ASSERT_EQ(mapped->bytes().size(), read->bytes().size());
    EXPECT_EQ(std::memcmp(mapped->bytes().data(), read->bytes().data(), read->bytes().size()), 0);
    EXPECT_TRUE(test::same_contents(*mapped, *read));
    for (size_t i = 0; i < read->tensors().size(); ++i) {
      const auto a = mapped->tensor_data(mapped->tensors()[i]);
      const auto b = read->tensor_data(read->tensors()[i]);
      ASSERT_EQ(a.size(), b.size());
      EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size()), 0);
      EXPECT_EQ(reinterpret_cast<uintptr_t>(b.data()) % 32, 0u);
    }
  }
}

TEST(GgufRealFiles, ParseOfCallerMemoryMatchesOpen) {
  const std::vector<uint8_t> bytes = test::read_bytes(stories_path());
  auto parsed = GgufFile::parse(bytes);
  auto opened = GgufFile::open(stories_path());
  ASSERT_TRUE(parsed.has_value()) << parsed.error().to_string();
  ASSERT_TRUE(opened.has_value());
  EXPECT_TRUE(parsed->path().empty());
  EXPECT_FALSE(parsed->is_mapped());
  EXPECT_EQ(parsed->bytes().data(), bytes.data());
  EXPECT_TRUE(test::same_contents(*parsed, *opened));
  auto other = GgufFile::open(edgelm::test::shared_models_dir() / "llama.cpp-vocab" /
                              "ggml-vocab-phi-3.gguf");
  ASSERT_TRUE(other.has_value());
  EXPECT_FALSE(test::same_contents(*parsed, *other));
}

TEST(GgufRealFiles, OpenErrorsNameThePath) {
  auto missing = GgufFile::open(edgelm::test::shared_models_dir() / "no-such-file.gguf");
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);
  EXPECT_THAT(missing.error().message, HasSubstr("no-such-file.gguf"));
  auto directory = GgufFile::open(edgelm::test::shared_models_dir(), {.use_mmap = false});
  ASSERT_FALSE(directory.has_value());
  EXPECT_EQ(directory.error().code, ErrorCode::kIo);
}

TEST(GgufRealFiles, MovedFileKeepsItsData) {
  auto file = GgufFile::open(stories_path());
  ASSERT_TRUE(file.has_value());
  GgufFile moved = std::move(*file);
  EXPECT_EQ(moved.tensors().size(), 48u);
  EXPECT_EQ(moved.tensor_data(*moved.find_tensor("output_norm.weight")).size(), 256u);
}

}  // namespace
}  // namespace edgelm::format
