#include "edgelm/config.h"

#include <gtest/gtest.h>

namespace edgelm {
namespace {

TEST(Config, ParsesTheDocumentedExample) {
  auto c = parse_config(R"({"quant_bits": 8, "use_mmap": true, "provider": "CPUExecutionProvider", "threads": 2})");
  ASSERT_TRUE(c) << c.error().to_string();
  EXPECT_EQ(c->quant_bits, 8);
  EXPECT_TRUE(c->use_mmap);
  EXPECT_EQ(c->provider, "cpu");
  EXPECT_EQ(c->threads, 2);
  EXPECT_EQ(c->resolved_threads(), 2);
}

TEST(Config, DefaultsWhenEmpty) {
  auto c = parse_config("{}");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->quant_bits, 0);
  EXPECT_TRUE(c->use_mmap);
  EXPECT_EQ(c->provider, "cpu");
  EXPECT_GE(c->resolved_threads(), 1);
  EXPECT_FALSE(c->context_shift);
}

TEST(Config, KvType) {
  auto f32 = parse_config(R"({"kv_type": "f32"})");
  ASSERT_TRUE(f32) << f32.error().to_string();
  EXPECT_EQ(f32->kv_type, TensorType::kF32);
  auto f16 = parse_config(R"({"kv_type": "f16"})");
  ASSERT_TRUE(f16) << f16.error().to_string();
  EXPECT_EQ(f16->kv_type, TensorType::kF16);
  auto q8 = parse_config(R"({"kv_type": "q8_0"})");
  ASSERT_TRUE(q8) << q8.error().to_string();
  EXPECT_EQ(q8->kv_type, TensorType::kQ8_0);
  EXPECT_EQ(parse_config("{}")->kv_type, TensorType::kF16);  // llama.cpp's default
  for (const char* text : {R"({"kv_type": "q4_0"})", R"({"kv_type": "F16"})",
                           R"({"kv_type": "Q8_0"})", R"({"kv_type": 16})"}) {
    auto bad = parse_config(text, "edgelm.json");
    ASSERT_FALSE(bad) << text;
    EXPECT_EQ(bad.error().code, ErrorCode::kInvalidArgument);
    EXPECT_NE(bad.error().message.find("'kv_type'"), std::string::npos) << bad.error().message;
  }
  EXPECT_NE(parse_config(R"({"kv_type": "bf16"})").error().message.find("valid: f16, f32, q8_0"),
            std::string::npos);
}

TEST(Config, UnknownKeyListsValidKeys) {
  auto c = parse_config(R"({"quant_bitz": 8})", "edgelm.json");
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(c.error().message.find("edgelm.json"), std::string::npos);
  EXPECT_NE(c.error().message.find("unknown key 'quant_bitz'"), std::string::npos);
  EXPECT_NE(c.error().message.find("quant_bits"), std::string::npos);
  EXPECT_NE(c.error().message.find("use_mmap"), std::string::npos);
}

TEST(Config, WrongTypesNameTheKey) {
  for (const char* text : {R"({"use_mmap": "yes"})", R"({"threads": 1.5})", R"({"quant_bits": "8"})",
                           R"({"provider": 3})", R"({"ctx": -1})", R"({"batch": 0})"}) {
    auto c = parse_config(text);
    ASSERT_FALSE(c) << text;
    EXPECT_NE(c.error().message.find("key '"), std::string::npos) << c.error().message;
  }
}

TEST(Config, UnknownProviderListsChoices) {
  auto c = parse_config(R"({"provider": "CUDAExecutionProvider"})");
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().message.find("CUDAExecutionProvider"), std::string::npos);
  EXPECT_NE(c.error().message.find("valid: CPUExecutionProvider, cpu"), std::string::npos);
}

TEST(Config, QuantBitsOnlySupportedWidths) {
  EXPECT_TRUE(parse_config(R"({"quant_bits": 4})"));
  EXPECT_TRUE(parse_config(R"({"quant_bits": 0})"));
  auto c = parse_config(R"({"quant_bits": 3})");
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().message.find("valid: 0, 4, 8"), std::string::npos);
}

TEST(Config, SyntaxErrorsAndNonObjects) {
  auto bad = parse_config("{\"threads\": 2,");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("not valid JSON"), std::string::npos);
  auto arr = parse_config("[1, 2]");
  ASSERT_FALSE(arr);
  EXPECT_NE(arr.error().message.find("expected a JSON object"), std::string::npos);
}

TEST(Config, MissingFileIsAnIoError) {
  auto c = load_config("/nonexistent/edgelm.json");
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code, ErrorCode::kIo);
}

}  // namespace
}  // namespace edgelm
