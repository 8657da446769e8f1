// describe_gguf / format_gguf_description: summaries of real files.
#include "edgelm/gguf_inspect.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "format/gguf_test_util.h"

namespace edgelm::format {
namespace {

using ::testing::HasSubstr;

TEST(GgufInspect, DescribesStories260K) {
  auto file = GgufFile::open(test::stories_path());
  ASSERT_TRUE(file.has_value());
  const nlohmann::json d = describe_gguf(*file, {.max_array_items = 3, .max_string_bytes = 200});
  EXPECT_EQ(d["version"], 3);
  EXPECT_EQ(d["file_size"], 1185376);
  EXPECT_EQ(d["metadata"].size(), 19u);
  EXPECT_EQ(d["tensors"].size(), 48u);
  EXPECT_EQ(d["totals"]["n_elements"], 292800);
  EXPECT_EQ(d["totals"]["n_bytes"], 292800 * 4);
  EXPECT_EQ(d["totals"]["by_type"]["f32"], 48);
  bool saw_tokens = false;
  for (const auto& m : d["metadata"]) {
    if (m["key"] == "tokenizer.ggml.tokens") {
      saw_tokens = true;
      EXPECT_EQ(m["type"], "array");
      EXPECT_EQ(m["elem_type"], "string");
      EXPECT_EQ(m["count"], 512);
      EXPECT_EQ(m["items"], nlohmann::json({"<unk>", "<s>", "</s>"}));
      EXPECT_TRUE(m["truncated"].get<bool>());
    }
    if (m["key"] == "llama.embedding_length") {
      EXPECT_EQ(m["value"], 64);
    }
  }
  EXPECT_TRUE(saw_tokens);
  EXPECT_EQ(d["tensors"][0]["name"], "token_embd.weight");
  EXPECT_EQ(d["tensors"][0]["ne"], nlohmann::json({64, 512}));
  EXPECT_EQ(d["tensors"][0]["type"], "f32");

  const std::string text = format_gguf_description(d);
  EXPECT_THAT(text, HasSubstr("GGUF v3, 1185376 bytes"));
  EXPECT_THAT(text, HasSubstr("array<string>[512]"));
  EXPECT_THAT(text, HasSubstr("\"<unk>\",\"<s>\",\"</s>\", ...]"));
  EXPECT_THAT(text, HasSubstr("token_embd.weight"));
  EXPECT_THAT(text, HasSubstr("tensors (48, 292800 elements"));
}

TEST(GgufInspect, LongAndInvalidStringsAreSafe) {
  GgufWriter w;
  w.set("long", GgufValue::string(std::string(1000, 'x')));
  w.set("bad", GgufValue::string("ok\xff\xfe"));
  auto bytes = w.to_bytes();
  ASSERT_TRUE(bytes.has_value());
  auto f = GgufFile::parse(*bytes);
  ASSERT_TRUE(f.has_value());
  const nlohmann::json d = describe_gguf(*f, {.max_array_items = 8, .max_string_bytes = 10});
  EXPECT_EQ(d["metadata"][0]["value"], "xxxxxxxxxx...(1000 bytes)");
  EXPECT_EQ(d["metadata"][1]["value"], "ok\xef\xbf\xbd\xef\xbf\xbd");
  EXPECT_NO_THROW((void)d.dump());
  EXPECT_THAT(format_gguf_description(d), HasSubstr("tensors (0, 0 elements"));
}

}  // namespace
}  // namespace edgelm::format
