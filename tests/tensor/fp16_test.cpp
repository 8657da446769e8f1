// Half and bfloat16 conversions: exhaustive round trips, ties to even, inf/NaN, and agreement
// with numpy's float16 conversion.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "edgelm/quant.h"
#include "tensor/numpy_oracle.h"

namespace edgelm::tensor {
namespace {

bool is_half_nan(uint16_t h) {
  return (h & 0x7C00) == 0x7C00 && (h & 0x03FF) != 0;
}

TEST(Fp16, EveryHalfRoundTrips) {
  for (uint32_t bits = 0; bits <= 0xFFFF; ++bits) {
    const auto h = static_cast<uint16_t>(bits);
    const float f = fp16_to_fp32(h);
    if (is_half_nan(h)) {
      ASSERT_TRUE(std::isnan(f)) << bits;
      ASSERT_EQ(std::signbit(f), (h & 0x8000) != 0) << bits;
      // NaNs come back quiet with their payload (the F16C behaviour).
      ASSERT_EQ(fp32_to_fp16(f), h | 0x0200) << bits;
    } else {
      ASSERT_EQ(fp32_to_fp16(f), h) << bits;
    }
  }
}

TEST(Fp16, DecodesLikeNumpyForEveryHalf) {
  std::vector<uint8_t> all(65536 * 2);
  for (uint32_t bits = 0; bits <= 0xFFFF; ++bits) {
    const auto h = static_cast<uint16_t>(bits);
    std::memcpy(all.data() + 2 * bits, &h, 2);
  }
  std::vector<test::OracleJob> jobs = {{"dequantize", "f16", 65536, all, {}}};
  std::string error;
  ASSERT_TRUE(test::run_numpy_oracle(jobs, &error)) << error;
  ASSERT_EQ(jobs[0].output.size(), 65536u * 4);
  for (uint32_t bits = 0; bits <= 0xFFFF; ++bits) {
    uint32_t expected;
    std::memcpy(&expected, jobs[0].output.data() + 4 * bits, 4);
    ASSERT_EQ(std::bit_cast<uint32_t>(fp16_to_fp32(static_cast<uint16_t>(bits))), expected)
        << "half 0x" << std::hex << bits;
  }
}

TEST(Fp16, MidpointsRoundToEven) {
  // Between two adjacent finite halves the exact midpoint is a float; it must pick the even one,
  // and one float ulp either side must pick the nearer one.
  for (uint32_t h = 0; h < 0x7BFF; ++h) {
    const float lo = fp16_to_fp32(static_cast<uint16_t>(h));
    const float hi = fp16_to_fp32(static_cast<uint16_t>(h + 1));
    const float mid = lo + (hi - lo) / 2;
    ASSERT_EQ(fp32_to_fp16(mid), (h % 2 == 0) ? h : h + 1) << h;
    ASSERT_EQ(fp32_to_fp16(std::nextafter(mid, 0.0f)), h) << h;
    ASSERT_EQ(fp32_to_fp16(std::nextafter(mid, 1e9f)), h + 1) << h;
    ASSERT_EQ(fp32_to_fp16(-mid), ((h % 2 == 0) ? h : h + 1) | 0x8000) << h;
  }
}

TEST(Fp16, SpecialValues) {
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(fp32_to_fp16(0.0f), 0x0000);
  EXPECT_EQ(fp32_to_fp16(-0.0f), 0x8000);
  EXPECT_EQ(fp32_to_fp16(inf), 0x7C00);
  EXPECT_EQ(fp32_to_fp16(-inf), 0xFC00);
  EXPECT_EQ(fp32_to_fp16(65504.0f), 0x7BFF);   // largest half
  EXPECT_EQ(fp32_to_fp16(65519.99f), 0x7BFF);  // below the midpoint to 2^16
  EXPECT_EQ(fp32_to_fp16(65520.0f), 0x7C00);   // the midpoint rounds (to even) to inf
  EXPECT_EQ(fp32_to_fp16(1e30f), 0x7C00);
  EXPECT_EQ(fp32_to_fp16(0x1p-24f), 0x0001);  // smallest subnormal
  EXPECT_EQ(fp32_to_fp16(0x1p-25f), 0x0000);  // half of it: tie to even (zero)
  EXPECT_EQ(fp32_to_fp16(0x1.000002p-25f), 0x0001);
  EXPECT_EQ(fp32_to_fp16(1e-10f), 0x0000);
  EXPECT_EQ(fp32_to_fp16(std::numeric_limits<float>::denorm_min()), 0x0000);
  EXPECT_EQ(fp32_to_fp16(0x1.ff8p-15f), 0x03FF);  // largest subnormal
  EXPECT_EQ(fp32_to_fp16(0x1.ffcp-15f), 0x0400);  // tie above it rounds (to even) into the normals
  EXPECT_EQ(fp32_to_fp16(1.0f), 0x3C00);
  EXPECT_EQ(fp32_to_fp16(-2.5f), 0xC100);
  const uint16_t nan = fp32_to_fp16(std::numeric_limits<float>::quiet_NaN());
  EXPECT_TRUE(is_half_nan(nan));
  EXPECT_TRUE(std::isnan(fp16_to_fp32(0x7C01)));
  EXPECT_EQ(fp16_to_fp32(0x7C00), inf);
  EXPECT_EQ(fp16_to_fp32(0x0001), 0x1p-24f);
  EXPECT_EQ(fp16_to_fp32(0x3555), 0x1.554p-2f);
}

TEST(Fp16, EncodesLikeNumpyOnRandomFloats) {
  std::mt19937 rng(99);
  std::vector<float> values;
  for (int i = 0; i < 20000; ++i) {
    // Random bits over the whole float range, and values concentrated near the half range.
    values.push_back(std::bit_cast<float>(static_cast<uint32_t>(rng())));
    values.push_back(std::ldexp(static_cast<float>(rng() % 0x1000000) / 0x1000000 + 1.0f,
                                static_cast<int>(rng() % 48) - 30) *
                     ((rng() & 1) ? 1.0f : -1.0f));
  }
  std::vector<uint8_t> input(values.size() * 4);
  std::memcpy(input.data(), values.data(), input.size());
  std::vector<test::OracleJob> jobs = {
      {"quantize", "f16", static_cast<int64_t>(values.size()), input, {}}};
  std::string error;
  ASSERT_TRUE(test::run_numpy_oracle(jobs, &error)) << error;
  ASSERT_EQ(jobs[0].output.size(), values.size() * 2);
  for (size_t i = 0; i < values.size(); ++i) {
    uint16_t expected;
    std::memcpy(&expected, jobs[0].output.data() + 2 * i, 2);
    ASSERT_EQ(fp32_to_fp16(values[i]), expected) << values[i];
  }
}

TEST(Bf16, EveryValueRoundTrips) {
  for (uint32_t bits = 0; bits <= 0xFFFF; ++bits) {
    const auto h = static_cast<uint16_t>(bits);
    const float f = bf16_to_fp32(h);
    ASSERT_EQ(std::bit_cast<uint32_t>(f), bits << 16);
    if ((h & 0x7F80) == 0x7F80 && (h & 0x7F) != 0) {
      ASSERT_TRUE(std::isnan(bf16_to_fp32(fp32_to_bf16(f)))) << bits;
      ASSERT_EQ(fp32_to_bf16(f), h | 0x40) << bits;
    } else {
      ASSERT_EQ(fp32_to_bf16(f), h) << bits;
    }
  }
}

TEST(Bf16, RoundsToNearestEven) {
  EXPECT_EQ(fp32_to_bf16(1.0f), 0x3F80);
  EXPECT_EQ(fp32_to_bf16(1.0f + 0x1p-8f), 0x3F80);      // tie, 0x3F80 is even
  EXPECT_EQ(fp32_to_bf16(1.0f + 3 * 0x1p-8f), 0x3F82);  // tie, rounds up to even
  EXPECT_EQ(fp32_to_bf16(1.0f + 0x1p-8f + 0x1p-20f), 0x3F81);
  EXPECT_EQ(fp32_to_bf16(-1.0f - 0x1p-7f + 0x1p-20f), 0xBF81);
  EXPECT_EQ(fp32_to_bf16(std::numeric_limits<float>::max()), 0x7F80);  // rounds up to inf
  EXPECT_EQ(fp32_to_bf16(std::numeric_limits<float>::infinity()), 0x7F80);
  EXPECT_EQ(fp32_to_bf16(-0.0f), 0x8000);
  // A NaN whose payload lives only in the dropped bits must stay NaN.
  EXPECT_TRUE(std::isnan(bf16_to_fp32(fp32_to_bf16(std::bit_cast<float>(0x7F800001u)))));
}

}  // namespace
}  // namespace edgelm::tensor
