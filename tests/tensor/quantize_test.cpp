// quantize_row: byte equality with the numpy reference for the types with deterministic rules,
// error bounds for every type, importance weighting, and robustness on non-finite input.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "edgelm/quant.h"
#include "tensor/numpy_oracle.h"
#include "tensor/quant_test_data.h"

namespace edgelm::tensor {
namespace {

std::vector<uint8_t> quantize(TensorType type, const std::vector<float>& x,
                              const float* importance = nullptr) {
  const int64_t n = static_cast<int64_t>(x.size());
  std::vector<uint8_t> bytes(
      static_cast<size_t>(tensor_bytes(type, static_cast<uint64_t>(n)).value()));
  const Status status = quantize_row(type, x.data(), bytes.data(), n, importance);
  EXPECT_TRUE(status) << (status ? "" : status.error().to_string());
  return bytes;
}

std::vector<float> dequantize(TensorType type, const std::vector<uint8_t>& bytes, int64_t n) {
  std::vector<float> y(static_cast<size_t>(n));
  const Status status = dequantize_row(type, bytes.data(), y.data(), n);
  EXPECT_TRUE(status) << (status ? "" : status.error().to_string());
  return y;
}

std::vector<float> round_trip(TensorType type, const std::vector<float>& x,
                              const float* importance = nullptr) {
  return dequantize(type, quantize(type, x, importance), static_cast<int64_t>(x.size()));
}

double rmse(const std::vector<float>& a, const std::vector<float>& b) {
  double sum = 0;
  for (size_t i = 0; i < a.size(); ++i) sum += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
  return std::sqrt(sum / static_cast<double>(a.size()));
}

// ---- byte equality with numpy for the deterministic quantizers

TEST(Quantize, DeterministicTypesMatchNumpyByteForByte) {
  const TensorType types[] = {TensorType::kF32,  TensorType::kF16,   TensorType::kBF16,
                              TensorType::kQ4_0, TensorType::kQ4_1,  TensorType::kQ5_0,
                              TensorType::kQ5_1, TensorType::kQ8_0,  TensorType::kQ8_1,
                              TensorType::kQ8_K, TensorType::kTQ1_0, TensorType::kTQ2_0};
  std::mt19937 rng(2024);
  std::vector<test::OracleJob> jobs;
  std::vector<std::vector<float>> inputs;
  for (TensorType type : types) {
    const int block = static_cast<int>(tensor_type_traits(type).block_size);
    std::vector<float> x = test::edge_case_blocks(block == 1 ? 32 : block, rng);
    const std::vector<float> more = test::gaussian(block == 1 ? 4096 : block * 64, rng, 3.0f);
    x.insert(x.end(), more.begin(), more.end());
    std::vector<uint8_t> raw(x.size() * sizeof(float));
    std::memcpy(raw.data(), x.data(), raw.size());
    jobs.push_back(
        {"quantize", std::string(tensor_type_name(type)), static_cast<int64_t>(x.size()), raw, {}});
    inputs.push_back(std::move(x));
  }
  std::string error;
  ASSERT_TRUE(test::run_numpy_oracle(jobs, &error)) << error;
  for (size_t k = 0; k < jobs.size(); ++k) {
    const TensorTypeTraits& traits = tensor_type_traits(types[k]);
    SCOPED_TRACE(std::string(traits.name));
    const std::vector<uint8_t> ours = quantize(types[k], inputs[k]);
    ASSERT_EQ(ours.size(), jobs[k].output.size());
    int reported = 0;
    for (size_t i = 0; i < ours.size() && reported < 5; ++i) {
      if (ours[i] != jobs[k].output[i]) {
        ++reported;
        ADD_FAILURE() << "byte " << i << " (block " << i / traits.block_bytes << ", offset "
                      << i % traits.block_bytes << "): ours " << int(ours[i]) << ", numpy "
                      << int(jobs[k].output[i]);
      }
    }
  }
}

// The numpy module's own K-quant encoders (used by other tests to build models) must produce
// blocks that our decoder reads back close to the input.
TEST(Quantize, NumpyKQuantEncodersDecodeWithOurDequantizer) {
  struct Case {
    TensorType type;
    double max_rmse;  // a plain min/max encoder on N(0,1): ~1.1x the step/sqrt(12) estimate
  };
  const Case cases[] = {{TensorType::kQ2_K, 0.40},
                        {TensorType::kQ3_K, 0.20},
                        {TensorType::kQ4_K, 0.10},
                        {TensorType::kQ5_K, 0.05},
                        {TensorType::kQ6_K, 0.025}};
  std::mt19937 rng(5);
  const std::vector<float> x = test::gaussian(256 * 32, rng);
  std::vector<uint8_t> raw(x.size() * 4);
  std::memcpy(raw.data(), x.data(), raw.size());
  std::vector<test::OracleJob> jobs;
  for (const Case& c : cases) {
    jobs.push_back({"quantize",
                    std::string(tensor_type_name(c.type)),
                    static_cast<int64_t>(x.size()),
                    raw,
                    {}});
  }
  std::string error;
  ASSERT_TRUE(test::run_numpy_oracle(jobs, &error)) << error;
  for (size_t k = 0; k < jobs.size(); ++k) {
    SCOPED_TRACE(std::string(tensor_type_name(cases[k].type)));
    ASSERT_EQ(jobs[k].output.size(), tensor_bytes(cases[k].type, x.size()).value());
    EXPECT_LT(rmse(x, dequantize(cases[k].type, jobs[k].output, static_cast<int64_t>(x.size()))),
              cases[k].max_rmse);
  }
}

// ---- error bounds

struct Bound {
  TensorType type;
  // Largest |x - y| allowed, as a fraction of the block's largest |x|: the grid step (or half
  // of it where rounding is to nearest and nothing clamps) plus fp16 rounding of the scales.
  double max_error_fraction;
  // RMSE on N(0, 1) data: a regression guard about 5% above what this implementation measured
  // when written (legacy types: ggml's rules, so about step/sqrt(12) with E[amax] of the block).
  double max_gaussian_rmse;
};

const Bound kBounds[] = {
    // q8_0: step amax/127, round to nearest; fp16 d adds <= 127 * 2^-11 relative steps.
    {TensorType::kQ8_0, 0.5 / 127 * 1.15, 0.0056},
    {TensorType::kQ8_1, 0.5 / 127 * 1.15, 0.0056},
    // q4_0/q5_0: step amax/8 (/16); the extreme maps to -8 (-16) so +amax may clamp one step.
    {TensorType::kQ4_0, 1.0 / 8 * 1.02, 0.090},
    {TensorType::kQ5_0, 1.0 / 16 * 1.02, 0.045},
    // q4_1/q5_1: step range/15 (/31) <= 2*amax/15; round half up; fp16 min adds 2^-11.
    {TensorType::kQ4_1, 1.0 / 15 * 1.05, 0.081},
    {TensorType::kQ5_1, 1.0 / 31 * 1.10, 0.040},
    // K-quants: the grid of each group is searched, so a single value may sit up to a full
    // (group) step away, and group steps are at most the super-block step.
    {TensorType::kQ2_K, 2.0 / 3 * 1.05, 0.29},
    {TensorType::kQ3_K, 2.0 / 7 * 1.05, 0.16},
    {TensorType::kQ4_K, 2.0 / 15 * 1.05, 0.074},
    {TensorType::kQ5_K, 2.0 / 31 * 1.05, 0.037},
    {TensorType::kQ6_K, 2.0 / 63 * 1.05, 0.0185},
    {TensorType::kQ8_K, 0.5 / 127 * 1.01, 0.0071},
    // Ternary: values are -d, 0, d with d = amax, so the error is at most amax/2.
    {TensorType::kTQ1_0, 0.5 * 1.001, 0.80},
    {TensorType::kTQ2_0, 0.5 * 1.001, 0.80},
};

TEST(Quantize, ErrorBoundsAndGaussianRmse) {
  std::mt19937 rng(77);
  const std::vector<float> x = test::gaussian(256 * 64, rng);
  std::printf("%-6s %10s %12s\n", "type", "rmse", "max_err/amax");
  for (const Bound& bound : kBounds) {
    const TensorTypeTraits& traits = tensor_type_traits(bound.type);
    SCOPED_TRACE(std::string(traits.name));
    const std::vector<float> y = round_trip(bound.type, x);
    double worst_fraction = 0;
    for (size_t start = 0; start < x.size(); start += traits.block_size) {
      double amax = 0, max_error = 0;
      for (size_t i = start; i < start + traits.block_size; ++i) {
        amax = std::fmax(amax, std::fabs(x[i]));
        max_error = std::fmax(max_error, std::fabs(double(x[i]) - y[i]));
      }
      worst_fraction = std::fmax(worst_fraction, max_error / amax);
    }
    const double error = rmse(x, y);
    std::printf("%-6s %10.6f %12.6f\n", std::string(traits.name).c_str(), error, worst_fraction);
    EXPECT_LE(worst_fraction, bound.max_error_fraction);
    EXPECT_LE(error, bound.max_gaussian_rmse);
  }
}

// llama.cpp's tests/test-quantize-fns.cpp: x[i] = 0.1 + 2*cos(i + offset) over 4096 values,
// error = sqrt(sum of squared differences) / n, with its published per-type limits.
TEST(Quantize, MeetsLlamaCppQuantizeFnsLimits) {
  constexpr int kN = 32 * 128;
  constexpr double kGeneral = 0.002, kTernary = 0.01, kTwoBits = 0.0075, kThreeBits = 0.0040;
  const std::pair<TensorType, double> limits[] = {
      {TensorType::kQ4_0, kGeneral},  {TensorType::kQ4_1, kGeneral},
      {TensorType::kQ5_0, kGeneral},  {TensorType::kQ5_1, kGeneral},
      {TensorType::kQ8_0, kGeneral},  {TensorType::kQ8_1, kGeneral},
      {TensorType::kQ2_K, kTwoBits},  {TensorType::kQ3_K, kThreeBits},
      {TensorType::kQ4_K, kGeneral},  {TensorType::kQ5_K, kGeneral},
      {TensorType::kQ6_K, kGeneral},  {TensorType::kQ8_K, kGeneral},
      {TensorType::kTQ1_0, kTernary}, {TensorType::kTQ2_0, kTernary},
  };
  std::vector<float> x(kN);
  for (int i = 0; i < kN; ++i) x[i] = 0.1f + 2.0f * std::cos(static_cast<float>(i));
  for (const auto& [type, limit] : limits) {
    const std::vector<float> y = round_trip(type, x);
    const double total_error = rmse(x, y) * std::sqrt(double(kN)) / kN;
    std::printf("%-6s %.6f (limit %.4f)\n", std::string(tensor_type_name(type)).c_str(),
                total_error, limit);
    EXPECT_LT(total_error, limit) << tensor_type_name(type);
  }
}

// With an importance vector the search must trade error on unimportant values for error on
// important ones: the importance-weighted error has to drop.
TEST(Quantize, ImportanceReducesWeightedError) {
  std::mt19937 rng(31);
  constexpr int64_t kN = 256 * 32;
  const std::vector<float> x = test::gaussian(kN, rng);
  std::vector<float> importance(kN);
  std::uniform_real_distribution<float> uniform(0.0f, 1.0f);
  // Heavy-tailed, like real activation statistics: a few inputs matter far more than others.
  for (auto& w : importance) w = std::pow(uniform(rng), 6.0f) * 100.0f + 0.01f;
  for (TensorType type : {TensorType::kQ4_0, TensorType::kQ4_1, TensorType::kQ5_0,
                          TensorType::kQ5_1, TensorType::kQ2_K, TensorType::kQ3_K,
                          TensorType::kQ4_K, TensorType::kQ5_K, TensorType::kQ6_K}) {
    const std::vector<float> plain = round_trip(type, x);
    const std::vector<float> weighted = round_trip(type, x, importance.data());
    double plain_error = 0, weighted_error = 0;
    for (int64_t i = 0; i < kN; ++i) {
      plain_error += importance[i] * (x[i] - plain[i]) * (x[i] - plain[i]);
      weighted_error += importance[i] * (x[i] - weighted[i]) * (x[i] - weighted[i]);
    }
    std::printf("%-6s weighted error without importance %.4f, with %.4f\n",
                std::string(tensor_type_name(type)).c_str(), plain_error / kN, weighted_error / kN);
    EXPECT_LT(weighted_error, 0.9 * plain_error) << tensor_type_name(type);
  }
}

TEST(Quantize, Q8KStoresGroupSums) {
  std::mt19937 rng(8);
  const std::vector<float> x = test::gaussian(256 * 4, rng, 10.0f);
  const std::vector<uint8_t> bytes = quantize(TensorType::kQ8_K, x);
  for (int block = 0; block < 4; ++block) {
    const uint8_t* base = bytes.data() + block * 292;
    for (int group = 0; group < 16; ++group) {
      int sum = 0;
      for (int i = 0; i < 16; ++i) sum += static_cast<int8_t>(base[4 + group * 16 + i]);
      int16_t stored;
      std::memcpy(&stored, base + 4 + 256 + 2 * group, 2);
      EXPECT_EQ(stored, sum) << "block " << block << " group " << group;
    }
  }
}

// NaN and inf in one block must not crash or leak into the neighbouring blocks.
TEST(Quantize, NonFiniteInputStaysInsideItsBlock) {
  const float specials[] = {std::numeric_limits<float>::quiet_NaN(),
                            std::numeric_limits<float>::infinity(),
                            -std::numeric_limits<float>::infinity()};
  std::mt19937 rng(13);
  for (TensorType type :
       {TensorType::kF16, TensorType::kBF16, TensorType::kQ4_0, TensorType::kQ4_1,
        TensorType::kQ5_0, TensorType::kQ5_1, TensorType::kQ8_0, TensorType::kQ8_1,
        TensorType::kQ2_K, TensorType::kQ3_K, TensorType::kQ4_K, TensorType::kQ5_K,
        TensorType::kQ6_K, TensorType::kQ8_K, TensorType::kTQ1_0, TensorType::kTQ2_0}) {
    const TensorTypeTraits& traits = tensor_type_traits(type);
    const int64_t block = traits.block_size == 1 ? 32 : traits.block_size;
    for (float special : specials) {
      std::vector<float> x = test::gaussian(2 * block, rng);
      x[3] = special;
      const std::vector<float> tail(x.begin() + block, x.end());
      const std::vector<uint8_t> row = quantize(type, x);
      const std::vector<uint8_t> alone = quantize(type, tail);
      const size_t offset = row.size() - alone.size();
      EXPECT_EQ(std::memcmp(row.data() + offset, alone.data(), alone.size()), 0)
          << traits.name << " with " << special;
      dequantize(type, row, 2 * block);  // decoding whatever was produced must be safe too
    }
  }
}

}  // namespace
}  // namespace edgelm::tensor
