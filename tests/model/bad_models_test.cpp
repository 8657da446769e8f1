// Broken variants of the real stories260K file: each must fail to load with an error that names
// the tensor or key at fault.
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "model/model_test_util.h"

namespace edgelm::model::test {
namespace {

using format::GgufFile;
using format::GgufValue;
using format::GgufWriter;

class BadModelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const fs::path path = edgelm::test::shared_models_dir() / "stories260K" / "stories260K.gguf";
    if (!fs::exists(path)) GTEST_SKIP() << "missing " << path;
    auto file = GgufFile::open(path);
    ASSERT_TRUE(file.has_value()) << file.error().to_string();
    source_ = std::make_unique<GgufFile>(std::move(*file));
  }

  // Copies the model, letting `edit_key` change metadata and `edit_tensor` drop (return false)
  // or replace a tensor, then loads the result and returns the error.
  Error load_edited(const std::function<void(GgufWriter&)>& edit_keys,
                    const std::function<bool(GgufWriter&, const format::GgufTensorInfo&)>&
                        replace_tensor = nullptr) {
    GgufWriter writer;
    for (const auto& [key, value] : source_->metadata()) writer.set(key, value);
    edit_keys(writer);
    for (const auto& info : source_->tensors()) {
      if (replace_tensor && replace_tensor(writer, info)) continue;
      Status added = writer.add_tensor(info.name, info.type, info.ne, source_->tensor_data(info));
      EXPECT_TRUE(added.has_value());
    }
    auto bytes = writer.to_bytes();
    EXPECT_TRUE(bytes.has_value());
    bytes_ = std::move(*bytes);
    auto file = GgufFile::parse(bytes_);
    if (!file) return file.error();
    auto model = Model::from_gguf(std::move(*file));
    EXPECT_FALSE(model.has_value()) << "the edited model loaded";
    return model ? Error{} : model.error();
  }

  Error with_key(const std::string& key, GgufValue value) {
    return load_edited([&](GgufWriter& w) { w.set(key, value); });
  }

  std::unique_ptr<GgufFile> source_;
  std::vector<uint8_t> bytes_;
};

void expect_error(const Error& error, ErrorCode code, const std::string& named) {
  EXPECT_EQ(error.code, code) << error.to_string();
  EXPECT_NE(error.message.find(named), std::string::npos) << error.to_string();
}

TEST_F(BadModelTest, UnmodifiedCopyLoads) {
  GgufWriter writer = GgufWriter::from_file(*source_);
  auto bytes = writer.to_bytes();
  ASSERT_TRUE(bytes.has_value());
  auto file = GgufFile::parse(*bytes);
  ASSERT_TRUE(file.has_value());
  auto model = Model::from_gguf(std::move(*file));
  EXPECT_TRUE(model.has_value()) << model.error().to_string();
}

TEST_F(BadModelTest, MissingTensor) {
  const Error error = load_edited([](GgufWriter&) {},
                                  [](GgufWriter&, const format::GgufTensorInfo& info) {
                                    return info.name == "blk.3.ffn_down.weight";
                                  });
  expect_error(error, ErrorCode::kNotFound, "blk.3.ffn_down.weight");
}

TEST_F(BadModelTest, WrongShape) {
  const Error error = load_edited(
      [](GgufWriter&) {},
      [](GgufWriter& w, const format::GgufTensorInfo& info) {
        if (info.name != "blk.1.attn_k.weight") return false;
        const std::vector<float> zeros(64 * 48);
        EXPECT_TRUE(w.add_tensor(info.name, TensorType::kF32, {64, 48},
                                 {reinterpret_cast<const uint8_t*>(zeros.data()), zeros.size() * 4})
                        .has_value());
        return true;
      });
  expect_error(error, ErrorCode::kInvalidFormat, "blk.1.attn_k.weight");
  EXPECT_NE(error.message.find("[64, 48]"), std::string::npos) << error.message;
}

TEST_F(BadModelTest, TypeTheKernelsDoNotMultiply) {
  // A well-formed GGUF type (32-element blocks, so 64-wide rows are whole blocks) that this build
  // has no matmul for.
  TensorType unsupported = TensorType::kF32;
  for (TensorType type : {TensorType::kIQ4_NL, TensorType::kQ8_1, TensorType::kIQ4_XS}) {
    if (!kernels::supports_type(type) && tensor_type_traits(type).block_size == 32) {
      unsupported = type;
      break;
    }
  }
  if (unsupported == TensorType::kF32) GTEST_SKIP() << "every candidate type is supported";
  const Error error =
      load_edited([](GgufWriter&) {},
                  [&](GgufWriter& w, const format::GgufTensorInfo& info) {
                    if (info.name != "blk.0.attn_q.weight") return false;
                    const std::vector<uint8_t> blocks(*tensor_bytes(unsupported, 64 * 64));
                    EXPECT_TRUE(w.add_tensor(info.name, unsupported, {64, 64}, blocks).has_value());
                    return true;
                  });
  expect_error(error, ErrorCode::kUnsupported, "blk.0.attn_q.weight");
}

TEST_F(BadModelTest, MissingKey) {
  const Error error = load_edited([](GgufWriter& w) { w.remove("llama.block_count"); });
  EXPECT_EQ(error.code, ErrorCode::kNotFound) << error.to_string();
  EXPECT_NE(error.message.find("llama.block_count"), std::string::npos) << error.message;
}

TEST_F(BadModelTest, HeadCountsThatDoNotDivide) {
  expect_error(with_key("llama.attention.head_count_kv", GgufValue::u32(3)),
               ErrorCode::kInvalidFormat, "llama.attention.head_count_kv");
}

TEST_F(BadModelTest, HeadCountInconsistentWithTensors) {
  // 16 heads of 4: the key is self-consistent but llama must rotate whole heads (8 dims here).
  expect_error(with_key("llama.attention.head_count", GgufValue::u32(16)),
               ErrorCode::kInvalidFormat, "llama.rope.dimension_count");
}

TEST_F(BadModelTest, EmbeddingLengthInconsistentWithTensors) {
  const Error error = load_edited([](GgufWriter& w) {
    w.set("llama.embedding_length", GgufValue::u32(128));
    w.set("llama.rope.dimension_count", GgufValue::u32(16));  // keep heads whole-rotated
  });
  expect_error(error, ErrorCode::kInvalidFormat, "token_embd.weight");
}

TEST_F(BadModelTest, FeedForwardLengthInconsistentWithTensors) {
  expect_error(with_key("llama.feed_forward_length", GgufValue::u32(176)),
               ErrorCode::kInvalidFormat, "blk.0.ffn_gate.weight");
}

TEST_F(BadModelTest, ZeroLayers) {
  expect_error(with_key("llama.block_count", GgufValue::u32(0)), ErrorCode::kInvalidFormat,
               "llama.block_count");
}

TEST_F(BadModelTest, KeyOfTheWrongType) {
  const Error error = with_key("llama.embedding_length", GgufValue::string("64"));
  EXPECT_NE(error.message.find("llama.embedding_length"), std::string::npos) << error.message;
}

TEST_F(BadModelTest, NonPositiveEpsilon) {
  expect_error(with_key("llama.attention.layer_norm_rms_epsilon", GgufValue::f32(-1.0f)),
               ErrorCode::kInvalidFormat, "llama.attention.layer_norm_rms_epsilon");
}

TEST_F(BadModelTest, UnsupportedArchitecture) {
  expect_error(with_key("general.architecture", GgufValue::string("gpt2")), ErrorCode::kUnsupported,
               "gpt2");
}

TEST_F(BadModelTest, UnsupportedRopeScaling) {
  expect_error(with_key("llama.rope.scaling.type", GgufValue::string("yarn")),
               ErrorCode::kUnsupported, "llama.rope.scaling.type");
  expect_error(with_key("llama.rope.scaling.type", GgufValue::string("sideways")),
               ErrorCode::kInvalidFormat, "llama.rope.scaling.type");
}

TEST_F(BadModelTest, PerLayerHeadCountsThatDiffer) {
  format::GgufArray counts;
  counts.elem_type = format::GgufType::kUint32;
  counts.ints = {4, 4, 2, 4, 4};
  expect_error(with_key("llama.attention.head_count_kv", GgufValue::array(counts)),
               ErrorCode::kUnsupported, "llama.attention.head_count_kv");
}

TEST_F(BadModelTest, VocabularySizeInconsistentWithTensors) {
  expect_error(with_key("llama.vocab_size", GgufValue::u32(500)), ErrorCode::kInvalidFormat,
               "token_embd.weight");
}

}  // namespace
}  // namespace edgelm::model::test
