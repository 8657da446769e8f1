// Sampler chain vs the independent numpy reference (tests/reference/sampler_reference.py).
#include "edgelm/sampler.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/test_paths.h"

namespace edgelm::runtime {
namespace {

using nlohmann::json;

constexpr float kInf = std::numeric_limits<float>::infinity();

// Runs the numpy reference on `cases` and returns its results, one per case.
json run_reference(const json& cases) {
  const auto dir = std::filesystem::temp_directory_path();
  const std::string stem = "edgelm_sampler_" + std::to_string(::getpid()) + "_" +
                           std::to_string(reinterpret_cast<uintptr_t>(&cases));
  const auto in = dir / (stem + ".in.json");
  const auto out = dir / (stem + ".out.json");
  std::ofstream(in) << json{{"cases", cases}}.dump();
  const std::string command =
      test::python3() + " " +
      (test::source_dir() / "tests/reference/sampler_reference.py").string() + " " + in.string() +
      " " + out.string();
  const int rc = std::system(command.c_str());
  std::filesystem::remove(in);
  EXPECT_EQ(rc, 0) << command;
  std::ifstream result_file(out);
  json results = json::parse(result_file, nullptr, false);
  std::filesystem::remove(out);
  EXPECT_FALSE(results.is_discarded());
  return results.is_discarded() ? json() : results["results"];
}

// Standard-normal logits (scaled) from our own PRNG via Box-Muller.
std::vector<float> random_logits(uint64_t seed, size_t n, double scale) {
  Rng rng(seed);
  std::vector<float> logits(n);
  for (size_t i = 0; i < n; ++i) {
    const double u1 = 1.0 - rng.next_unit(), u2 = rng.next_unit();
    logits[i] = static_cast<float>(scale * std::sqrt(-2.0 * std::log(u1)) *
                                   std::cos(6.283185307179586 * u2));
  }
  return logits;
}

json params_json(const SamplerParams& p) {
  json bias = json::array();
  for (const auto& [token, value] : p.logit_bias) bias.push_back({token, value});
  return {{"temperature", p.temperature},
          {"top_k", p.top_k},
          {"top_p", p.top_p},
          {"min_p", p.min_p},
          {"typical_p", p.typical_p},
          {"repeat_penalty", p.repeat_penalty},
          {"repeat_last_n", p.repeat_last_n},
          {"frequency_penalty", p.frequency_penalty},
          {"presence_penalty", p.presence_penalty},
          {"logit_bias", bias}};
}

// Everything off; tests switch on one filter at a time.
SamplerParams neutral() {
  SamplerParams p;
  p.temperature = 1.0f;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  p.typical_p = 1.0f;
  return p;
}

struct ChainCase {
  std::string name;
  SamplerParams params;
  std::vector<int32_t> history;
};

std::vector<ChainCase> chain_cases() {
  std::vector<ChainCase> cases;
  auto add = [&](std::string name, auto&& tweak, std::vector<int32_t> history = {}) {
    SamplerParams p = neutral();
    tweak(p);
    cases.push_back({std::move(name), p, std::move(history)});
  };
  add("temperature 1", [](SamplerParams&) {});
  add("temperature 0.5", [](SamplerParams& p) { p.temperature = 0.5f; });
  add("temperature 1.7", [](SamplerParams& p) { p.temperature = 1.7f; });
  add("greedy", [](SamplerParams& p) { p.temperature = 0.0f; });
  add("top_k 1", [](SamplerParams& p) { p.top_k = 1; });
  add("top_k 7", [](SamplerParams& p) { p.top_k = 7; });
  add("top_k > vocab", [](SamplerParams& p) { p.top_k = 100000; });
  add("top_p 0.5", [](SamplerParams& p) { p.top_p = 0.5f; });
  add("top_p 0.9", [](SamplerParams& p) { p.top_p = 0.9f; });
  add("min_p 0.05", [](SamplerParams& p) { p.min_p = 0.05f; });
  add("min_p 0.3", [](SamplerParams& p) { p.min_p = 0.3f; });
  add("typical 0.5", [](SamplerParams& p) { p.typical_p = 0.5f; });
  add("typical 0.9", [](SamplerParams& p) { p.typical_p = 0.9f; });
  add("logit bias", [](SamplerParams& p) { p.logit_bias = {{3, 2.5f}, {10, -kInf}, {0, -1.25f}}; });
  const std::vector<int32_t> history = {5, 7, 5, 9, 11, 5, 7, 2, 40, 41, 3, 3, 3};
  add(
      "repeat penalty", [](SamplerParams& p) { p.repeat_penalty = 1.3f; }, history);
  add(
      "repeat window",
      [](SamplerParams& p) {
        p.repeat_penalty = 1.5f;
        p.repeat_last_n = 4;
      },
      history);
  add(
      "frequency+presence",
      [](SamplerParams& p) {
        p.frequency_penalty = 0.4f;
        p.presence_penalty = 0.7f;
      },
      history);
  add(
      "llama.cpp defaults", [](SamplerParams& p) { p = SamplerParams{}; }, history);
  add(
      "everything",
      [](SamplerParams& p) {
        p.temperature = 0.7f, p.top_k = 30, p.typical_p = 0.95f, p.top_p = 0.9f, p.min_p = 0.02f;
        p.repeat_penalty = 1.1f, p.frequency_penalty = 0.1f, p.presence_penalty = 0.2f;
        p.logit_bias = {{1, 1.0f}, {2, -3.0f}};
      },
      history);
  return cases;
}

TEST(SamplerChain, EachFilterMatchesNumpyReference) {
  const auto cases = chain_cases();
  struct Run {
    const ChainCase* c;
    std::vector<float> logits;
  };
  std::vector<Run> runs;
  json requests = json::array();
  for (uint64_t seed = 1; seed <= 5; ++seed) {
    // Varied vocab sizes and sharpness; a few -inf logits (already-masked tokens) included.
    std::vector<float> logits =
        random_logits(seed, 40 + 37 * seed, 1.0 + 0.7 * static_cast<double>(seed));
    logits[seed * 3] = -kInf;
    for (const ChainCase& c : cases) {
      runs.push_back({&c, logits});
      requests.push_back({{"op", "chain"},
                          {"logits", logits},
                          {"params", params_json(c.params)},
                          {"history", c.history}});
    }
  }
  const json expected = run_reference(requests);
  ASSERT_EQ(expected.size(), runs.size());
  for (size_t i = 0; i < runs.size(); ++i) {
    Sampler sampler(runs[i].c->params);
    for (int32_t t : runs[i].c->history) ASSERT_TRUE(sampler.accept(t).has_value());
    auto filtered = sampler.filter(runs[i].logits);
    ASSERT_TRUE(filtered.has_value()) << filtered.error().to_string();
    // Compare as sets ordered by token id (the chain's internal order is unspecified).
    std::vector<Sampler::Candidate> got(filtered->begin(), filtered->end());
    std::sort(got.begin(), got.end(),
              [](const auto& a, const auto& b) { return a.token < b.token; });
    std::vector<json> want(expected[i]["candidates"].begin(), expected[i]["candidates"].end());
    std::sort(want.begin(), want.end(), [](const json& a, const json& b) { return a[0] < b[0]; });
    ASSERT_EQ(got.size(), want.size()) << runs[i].c->name << " (run " << i << ")";
    for (size_t k = 0; k < want.size(); ++k) {
      EXPECT_EQ(got[k].token, want[k][0].get<int32_t>()) << runs[i].c->name << " entry " << k;
      EXPECT_NEAR(got[k].prob, want[k][1].get<double>(), 2e-6) << runs[i].c->name << " entry " << k;
    }
  }
}

// Sampling frequencies follow the filtered distribution: Pearson chi-square against the numpy
// reference probabilities. With df = k-1 <= 29 the 0.999 quantile is below 60; a wrong draw
// (off-by-one in the CDF, ignoring temperature, uniform picks) lands in the thousands.
TEST(SamplerChain, DrawFrequenciesPassChiSquare) {
  struct Setup {
    SamplerParams params;
    double critical;  // chi-square 0.999 quantile for the resulting df (checked below)
  };
  std::vector<SamplerParams> configs;
  SamplerParams a = neutral();
  a.top_k = 10;
  configs.push_back(a);
  SamplerParams b = neutral();
  b.temperature = 0.6f;
  b.top_p = 0.9f;
  configs.push_back(b);
  SamplerParams c = neutral();
  c.temperature = 1.5f;
  c.min_p = 0.1f;
  configs.push_back(c);

  const std::vector<float> logits = random_logits(77, 30, 1.0);
  json requests = json::array();
  for (const SamplerParams& p : configs) {
    requests.push_back({{"op", "chain"},
                        {"logits", logits},
                        {"params", params_json(p)},
                        {"history", json::array()}});
  }
  const json expected = run_reference(requests);
  ASSERT_EQ(expected.size(), configs.size());
  // 0.999 quantiles of chi-square with df = 1..29 (scipy.stats.chi2.ppf(0.999, df)).
  static constexpr double kChi2_999[] = {0,     10.83, 13.82, 16.27, 18.47, 20.52, 22.46, 24.32,
                                         26.12, 27.88, 29.59, 31.26, 32.91, 34.53, 36.12, 37.70,
                                         39.25, 40.79, 42.31, 43.82, 45.31, 46.80, 48.27, 49.73,
                                         51.18, 52.62, 54.05, 55.48, 56.89, 58.30};
  constexpr int kDraws = 100000;
  for (size_t i = 0; i < configs.size(); ++i) {
    Sampler sampler(configs[i]);
    std::map<int32_t, int> counts;
    for (int d = 0; d < kDraws; ++d) {
      auto token = sampler.sample(logits);
      ASSERT_TRUE(token.has_value());
      ++counts[*token];
    }
    const json& want = expected[i]["candidates"];
    ASSERT_GE(want.size(), 2u);
    ASSERT_LT(want.size(), std::size(kChi2_999));
    double chi2 = 0.0;
    size_t seen = 0;
    for (const json& entry : want) {
      const double e = kDraws * entry[1].get<double>();
      const int o = counts.count(entry[0].get<int32_t>()) ? counts[entry[0].get<int32_t>()] : 0;
      seen += counts.count(entry[0].get<int32_t>());
      chi2 += (o - e) * (o - e) / e;
    }
    EXPECT_EQ(seen, counts.size()) << "a token outside the candidate set was drawn";
    EXPECT_LT(chi2, kChi2_999[want.size() - 1]) << "config " << i << ", k=" << want.size();
  }
}

TEST(SamplerLogprobs, MatchNumpyLogSoftmax) {
  json requests = json::array();
  std::vector<std::vector<float>> all_logits;
  for (uint64_t seed = 10; seed < 14; ++seed) {
    all_logits.push_back(random_logits(seed, 200, 3.0));
    all_logits.back()[7] = all_logits.back()[8];  // a tie: lower id ranks first
    requests.push_back(
        {{"op", "logprobs"}, {"logits", all_logits.back()}, {"token", 17}, {"top_n", 20}});
  }
  const json expected = run_reference(requests);
  ASSERT_EQ(expected.size(), all_logits.size());
  Logprobs out;
  for (size_t i = 0; i < all_logits.size(); ++i) {
    ASSERT_TRUE(compute_logprobs(all_logits[i], 17, 20, out).has_value());
    EXPECT_EQ(out.chosen.token, 17);
    EXPECT_NEAR(out.chosen.logprob, expected[i]["chosen"].get<double>(), 1e-5);
    ASSERT_EQ(out.top.size(), 20u);
    for (size_t k = 0; k < 20; ++k) {
      EXPECT_EQ(out.top[k].token, expected[i]["top"][k][0].get<int32_t>());
      EXPECT_NEAR(out.top[k].logprob, expected[i]["top"][k][1].get<double>(), 1e-5);
    }
  }
  EXPECT_FALSE(compute_logprobs(all_logits[0], 200, 1, out).has_value());
  EXPECT_FALSE(compute_logprobs(all_logits[0], 0, -1, out).has_value());
  ASSERT_TRUE(compute_logprobs(all_logits[0], 0, 1000, out).has_value());
  EXPECT_EQ(out.top.size(), 200u);
}

// The PRNG is the published xoshiro256** with splitmix64 seeding, bit for bit (reference in
// Python).
TEST(SamplerRng, MatchesReferenceBitForBit) {
  json requests = json::array();
  const std::vector<uint64_t> seeds = {0, 1, 42, 0xFFFFFFFFFFFFFFFFull};
  for (uint64_t seed : seeds) requests.push_back({{"op", "rng"}, {"seed", seed}, {"count", 16}});
  const json expected = run_reference(requests);
  ASSERT_EQ(expected.size(), seeds.size());
  for (size_t i = 0; i < seeds.size(); ++i) {
    Rng a(seeds[i]), b(seeds[i]);
    for (size_t k = 0; k < 16; ++k) {
      EXPECT_EQ(std::to_string(a.next_u64()), expected[i]["u64"][k].get<std::string>());
      EXPECT_EQ(b.next_unit(), expected[i]["unit"][k].get<double>());
    }
  }
}

TEST(Sampler, SameSeedSameSequenceDifferentSeedDiffers) {
  const std::vector<float> logits = random_logits(5, 500, 1.0);
  auto run = [&](uint64_t seed) {
    SamplerParams p;
    p.seed = seed;
    p.top_k = 0;
    p.min_p = 0.0f;
    Sampler sampler(p);
    std::vector<int32_t> tokens;
    for (int i = 0; i < 200; ++i) {
      tokens.push_back(*sampler.sample(logits));
      EXPECT_TRUE(sampler.accept(tokens.back()).has_value());
    }
    // reset() restarts the same sequence.
    sampler.reset();
    EXPECT_EQ(*sampler.sample(logits), tokens[0]);
    return tokens;
  };
  EXPECT_EQ(run(123), run(123));
  EXPECT_NE(run(123), run(124));
}

TEST(Sampler, GreedyIsExactArgmaxLowestIdOnTies) {
  SamplerParams p;
  p.temperature = 0.0f;
  Sampler sampler(p);
  std::vector<float> logits = {0.5f, 2.0f, -1.0f, 2.0f, 1.9999999f};
  EXPECT_EQ(*sampler.sample(logits), 1);
  logits[3] = 2.0000002f;
  EXPECT_EQ(*sampler.sample(logits), 3);
  const std::vector<float> big = random_logits(9, 50000, 4.0);
  const auto best = std::max_element(big.begin(), big.end()) - big.begin();
  EXPECT_EQ(*sampler.sample(big), best);
}

TEST(Sampler, EdgeCases) {
  SamplerParams p;  // llama.cpp-like defaults, stochastic
  p.seed = 3;
  Sampler sampler(p);
  // All -inf but one: always that one.
  std::vector<float> one_left(100, -kInf);
  one_left[42] = -3.0f;
  for (int i = 0; i < 20; ++i) EXPECT_EQ(*sampler.sample(one_left), 42);
  // Vocabulary of one.
  EXPECT_EQ(*sampler.sample(std::vector<float>{0.0f}), 0);
  // Rejected inputs.
  EXPECT_FALSE(sampler.sample(std::vector<float>{}).has_value());
  EXPECT_FALSE(sampler.sample(std::vector<float>(10, -kInf)).has_value());
  std::vector<float> with_nan(10, 0.0f);
  with_nan[4] = std::nanf("");
  auto nan_result = sampler.sample(with_nan);
  ASSERT_FALSE(nan_result.has_value());
  EXPECT_NE(nan_result.error().message.find("token 4"), std::string::npos);
  std::vector<float> with_inf(10, 0.0f);
  with_inf[2] = kInf;
  EXPECT_FALSE(sampler.sample(with_inf).has_value());
  // top_k larger than the vocabulary keeps everything the other filters keep.
  SamplerParams wide = neutral();
  wide.top_k = 1000;
  Sampler wide_sampler(wide);
  EXPECT_EQ(wide_sampler.filter(random_logits(1, 20, 1.0))->size(), 20u);
  // A logit_bias id outside the vocabulary is an error at sample time.
  SamplerParams biased = neutral();
  biased.logit_bias = {{50, 1.0f}};
  Sampler biased_sampler(biased);
  EXPECT_FALSE(biased_sampler.sample(std::vector<float>(10, 0.0f)).has_value());
}

TEST(SamplerParams, ValidateNamesTheField) {
  auto error_of = [](auto&& tweak) {
    SamplerParams p;
    tweak(p);
    Status s = p.validate();
    return s.has_value() ? std::string() : s.error().message;
  };
  EXPECT_EQ(error_of([](SamplerParams&) {}), "");
  EXPECT_NE(error_of([](SamplerParams& p) { p.temperature = -0.1f; }).find("temperature"),
            std::string::npos);
  EXPECT_NE(error_of([](SamplerParams& p) { p.temperature = std::nanf(""); }).find("temperature"),
            std::string::npos);
  EXPECT_NE(error_of([](SamplerParams& p) { p.top_p = 0.0f; }).find("top_p"), std::string::npos);
  EXPECT_NE(error_of([](SamplerParams& p) { p.top_p = 1.5f; }).find("top_p"), std::string::npos);
  EXPECT_NE(error_of([](SamplerParams& p) { p.min_p = -0.5f; }).find("min_p"), std::string::npos);
  EXPECT_NE(error_of([](SamplerParams& p) { p.typical_p = 0.0f; }).find("typical_p"),
            std::string::npos);
  EXPECT_NE(error_of([](SamplerParams& p) { p.repeat_penalty = 0.0f; }).find("repeat_penalty"),
            std::string::npos);
  EXPECT_NE(error_of([](SamplerParams& p) { p.repeat_last_n = -1; }).find("repeat_last_n"),
            std::string::npos);
  EXPECT_NE(error_of([](SamplerParams& p) {
              p.logit_bias = {{-1, 0.0f}};
            }).find("logit_bias"),
            std::string::npos);
  // An invalid configuration is reported by sample() too.
  SamplerParams bad;
  bad.top_p = 2.0f;
  Sampler sampler(bad);
  EXPECT_FALSE(sampler.sample(std::vector<float>{1.0f, 2.0f}).has_value());
}

}  // namespace
}  // namespace edgelm::runtime
