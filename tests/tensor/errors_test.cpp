// Argument errors and unsupported types come back as Errors naming the type and the problem.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "edgelm/quant.h"

namespace edgelm::tensor {
namespace {

using ::testing::HasSubstr;

TEST(QuantErrors, CountNotAWholeNumberOfBlocks) {
  std::vector<uint8_t> bytes(1024);
  std::vector<float> values(1024);
  Status status = dequantize_row(TensorType::kQ4_0, bytes.data(), values.data(), 33);
  ASSERT_FALSE(status);
  EXPECT_EQ(status.error().code, ErrorCode::kInvalidArgument);
  EXPECT_THAT(status.error().message, HasSubstr("33 elements"));
  EXPECT_THAT(status.error().message, HasSubstr("q4_0 blocks of 32"));

  status = quantize_row(TensorType::kQ6_K, values.data(), bytes.data(), 128);
  ASSERT_FALSE(status);
  EXPECT_THAT(status.error().message, HasSubstr("quantize: 128 elements"));
  EXPECT_THAT(status.error().message, HasSubstr("q6_k blocks of 256"));

  EXPECT_FALSE(dequantize_row(TensorType::kF32, bytes.data(), values.data(), -1));
}

TEST(QuantErrors, UnsupportedTypesAreNamed) {
  std::vector<uint8_t> bytes(1024);
  std::vector<float> values(256);
  Status status = dequantize_row(TensorType::kIQ2_XXS, bytes.data(), values.data(), 256);
  ASSERT_FALSE(status);
  EXPECT_EQ(status.error().code, ErrorCode::kUnsupported);
  EXPECT_EQ(status.error().message, "dequantize: tensor type iq2_xxs is not supported");

  status = quantize_row(TensorType::kI32, values.data(), bytes.data(), 256);
  ASSERT_FALSE(status);
  EXPECT_EQ(status.error().message, "quantize: tensor type i32 is not supported");

  status = dequantize_row(static_cast<TensorType>(99), bytes.data(), values.data(), 1);
  ASSERT_FALSE(status);
  EXPECT_EQ(status.error().code, ErrorCode::kUnsupported);
  EXPECT_THAT(status.error().message, HasSubstr("id 99"));
}

TEST(QuantErrors, NullBuffersAndEmptyRows) {
  std::vector<float> values(32);
  EXPECT_FALSE(dequantize_row(TensorType::kQ8_0, nullptr, values.data(), 32));
  EXPECT_FALSE(quantize_row(TensorType::kQ8_0, values.data(), nullptr, 32));
  EXPECT_TRUE(dequantize_row(TensorType::kQ8_0, nullptr, nullptr, 0));
}

TEST(QuantErrors, CapabilityQueries) {
  for (TensorType type :
       {TensorType::kF32, TensorType::kF16, TensorType::kBF16, TensorType::kQ4_0, TensorType::kQ4_1,
        TensorType::kQ5_0, TensorType::kQ5_1, TensorType::kQ8_0, TensorType::kQ8_1,
        TensorType::kQ2_K, TensorType::kQ3_K, TensorType::kQ4_K, TensorType::kQ5_K,
        TensorType::kQ6_K, TensorType::kQ8_K, TensorType::kTQ1_0, TensorType::kTQ2_0}) {
    EXPECT_TRUE(can_dequantize(type)) << tensor_type_name(type);
    EXPECT_TRUE(can_quantize(type)) << tensor_type_name(type);
  }
  for (TensorType type :
       {TensorType::kI8, TensorType::kI16, TensorType::kI32, TensorType::kI64, TensorType::kF64}) {
    EXPECT_TRUE(can_dequantize(type)) << tensor_type_name(type);
    EXPECT_FALSE(can_quantize(type)) << tensor_type_name(type);
  }
  EXPECT_FALSE(can_dequantize(TensorType::kIQ4_NL));
  EXPECT_FALSE(can_quantize(TensorType::kIQ1_M));
}

}  // namespace
}  // namespace edgelm::tensor
