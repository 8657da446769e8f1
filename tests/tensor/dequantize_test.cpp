// dequantize_row of every supported type against the numpy reference (bit-identical floats) on
// random blocks.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "edgelm/quant.h"
#include "tensor/numpy_oracle.h"

namespace edgelm::tensor {
namespace {

// Where each block keeps its floating-point scale fields (byte offsets, from ggml's structs):
// those get finite random values so products stay finite; every other byte is random.
struct RandomBlocksCase {
  TensorType type;
  std::vector<int> half_offsets;
  int float_offset = -1;
};

const std::vector<RandomBlocksCase>& cases() {
  static const std::vector<RandomBlocksCase> all = {
      {TensorType::kF32, {}},      {TensorType::kF16, {}},      {TensorType::kBF16, {}},
      {TensorType::kF64, {}},      {TensorType::kI8, {}},       {TensorType::kI16, {}},
      {TensorType::kI32, {}},      {TensorType::kI64, {}},      {TensorType::kQ4_0, {0}},
      {TensorType::kQ4_1, {0, 2}}, {TensorType::kQ5_0, {0}},    {TensorType::kQ5_1, {0, 2}},
      {TensorType::kQ8_0, {0}},    {TensorType::kQ8_1, {0, 2}}, {TensorType::kQ2_K, {80, 82}},
      {TensorType::kQ3_K, {108}},  {TensorType::kQ4_K, {0, 2}}, {TensorType::kQ5_K, {0, 2}},
      {TensorType::kQ6_K, {208}},  {TensorType::kQ8_K, {}, 0},  {TensorType::kTQ1_0, {52}},
      {TensorType::kTQ2_0, {64}},
  };
  return all;
}

// A finite half between about 2^-24 and 2^6, either sign, sometimes zero or subnormal.
uint16_t random_scale_half(std::mt19937& rng) {
  const uint32_t sign = (rng() & 1u) << 15;
  const uint32_t exponent = rng() % 22;  // 0 = zero/subnormal
  const uint32_t mantissa = rng() & 0x3FFu;
  return static_cast<uint16_t>(sign | (exponent << 10) | mantissa);
}

std::vector<uint8_t> random_blocks(const RandomBlocksCase& c, int64_t n, std::mt19937& rng) {
  const TensorTypeTraits& traits = tensor_type_traits(c.type);
  const int64_t n_blocks = n / traits.block_size;
  std::vector<uint8_t> bytes(static_cast<size_t>(n_blocks * traits.block_bytes));
  for (auto& b : bytes) b = static_cast<uint8_t>(rng());
  for (int64_t i = 0; i < n_blocks; ++i) {
    uint8_t* block = bytes.data() + i * traits.block_bytes;
    for (int offset : c.half_offsets) {
      const uint16_t h = random_scale_half(rng);
      std::memcpy(block + offset, &h, 2);
    }
    if (c.float_offset >= 0) {
      const float f = std::ldexp(static_cast<float>(rng() % 2000) - 1000.0f, -16);
      std::memcpy(block + c.float_offset, &f, 4);
    }
    if (c.type == TensorType::kF64) {  // NaN payload conversion is the CPU's business: avoid it
      double value;
      std::memcpy(&value, block, 8);
      if (std::isnan(value)) value = std::ldexp(1.0, static_cast<int>(rng() % 300)) * 1.5;
      std::memcpy(block, &value, 8);
    }
  }
  return bytes;
}

TEST(Dequantize, EveryTypeMatchesNumpyBitForBit) {
  std::mt19937 rng(1234);
  std::vector<test::OracleJob> jobs;
  for (const auto& c : cases()) {
    const TensorTypeTraits& traits = tensor_type_traits(c.type);
    const int64_t n = traits.block_size == 1 ? 4096 : traits.block_size * 48;
    jobs.push_back({"dequantize", std::string(traits.name), n, random_blocks(c, n, rng), {}});
  }
  std::string error;
  ASSERT_TRUE(test::run_numpy_oracle(jobs, &error)) << error;

  for (size_t k = 0; k < jobs.size(); ++k) {
    const auto& job = jobs[k];
    SCOPED_TRACE(job.type);
    std::vector<float> ours(static_cast<size_t>(job.n));
    ASSERT_TRUE(dequantize_row(cases()[k].type, job.input.data(), ours.data(), job.n));
    ASSERT_EQ(job.output.size(), ours.size() * sizeof(float));
    int mismatches = 0;
    for (size_t i = 0; i < ours.size(); ++i) {
      uint32_t expected;
      std::memcpy(&expected, job.output.data() + i * 4, 4);
      const uint32_t got = std::bit_cast<uint32_t>(ours[i]);
      if (got != expected && ++mismatches <= 5) {
        ADD_FAILURE() << "element " << i << ": ours " << ours[i] << " (0x" << std::hex << got
                      << "), numpy " << std::bit_cast<float>(expected) << " (0x" << expected << ")"
                      << std::dec;
      }
    }
    EXPECT_EQ(mismatches, 0);
  }
}

// A misaligned source must work (blocks inside files are only byte-aligned).
TEST(Dequantize, AcceptsUnalignedSource) {
  std::mt19937 rng(7);
  for (const auto& c : cases()) {
    const TensorTypeTraits& traits = tensor_type_traits(c.type);
    SCOPED_TRACE(std::string(traits.name));
    const int64_t n = traits.block_size * 2;
    const std::vector<uint8_t> blocks = random_blocks(c, n, rng);
    std::vector<uint8_t> shifted(blocks.size() + 1);
    std::memcpy(shifted.data() + 1, blocks.data(), blocks.size());
    std::vector<float> aligned(static_cast<size_t>(n)), unaligned(static_cast<size_t>(n));
    ASSERT_TRUE(dequantize_row(c.type, blocks.data(), aligned.data(), n));
    ASSERT_TRUE(dequantize_row(c.type, shifted.data() + 1, unaligned.data(), n));
    EXPECT_EQ(std::memcmp(aligned.data(), unaligned.data(), aligned.size() * 4), 0);
  }
}

}  // namespace
}  // namespace edgelm::tensor
