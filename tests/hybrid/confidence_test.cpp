// Confidence metrics against a hand computation and against numpy over the real model's logits.
#include "edgelm/hybrid/confidence.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>

#include "edgelm/hybrid/calibration.h"
#include "router_test_util.h"

namespace edgelm::hybrid::test {
namespace {

TEST(Confidence, HandComputedDistribution) {
  // p = (1/2, 1/4, 1/4): entropy = 1.5 ln 2, margin = 1/4.
  const std::vector<float> logits = {std::log(2.0f), 0.0f, 0.0f};
  ConfidenceAccumulator acc;
  acc.add(logits, 1);
  acc.add(logits, 0);
  const Confidence c = acc.result();
  EXPECT_EQ(c.n_tokens, 2);
  EXPECT_NEAR(c.mean_logprob, (std::log(0.25) + std::log(0.5)) / 2, 1e-6);
  EXPECT_NEAR(c.min_logprob, std::log(0.25), 1e-6);
  EXPECT_NEAR(c.mean_entropy, 1.5 * std::log(2.0), 1e-6);
  EXPECT_NEAR(c.mean_margin, 0.25, 1e-6);
  EXPECT_NEAR(confidence_value(c, ConfidenceMetric::kNegMeanEntropy), -1.5 * std::log(2.0), 1e-6);
}

TEST(Confidence, MaskedLogitsAndEmptyAnswers) {
  const float inf = std::numeric_limits<float>::infinity();
  ConfidenceAccumulator acc;
  acc.add(std::vector<float>{0.0f, -inf, 0.0f}, 0);  // two equal tokens, one masked
  acc.add(std::vector<float>{-inf, -inf}, 0);        // no finite logit: ignored
  acc.add(std::vector<float>{1.0f}, 5);              // token outside the row: ignored
  const Confidence c = acc.result();
  EXPECT_EQ(c.n_tokens, 1);
  EXPECT_NEAR(c.mean_logprob, std::log(0.5), 1e-9);
  EXPECT_NEAR(c.mean_entropy, std::log(2.0), 1e-9);
  EXPECT_NEAR(c.mean_margin, 0.0, 1e-9);
  EXPECT_TRUE(std::isinf(
      confidence_value(ConfidenceAccumulator().result(), ConfidenceMetric::kMeanLogprob)));
  EXPECT_FALSE(parse_confidence_metric("certainty").has_value());
  EXPECT_EQ(*parse_confidence_metric("mean_margin"), ConfidenceMetric::kMeanMargin);
}

TEST(Confidence, MatchesNumpyOnTheRealModelsLogits) {
  // Sampled (temperature 1, fixed seed) so that chosen tokens are not always the argmax.
  serve::GenerationSpec spec;
  auto prompt = stories_engine().tokenize("Once upon a time, there was a", true);
  ASSERT_TRUE(prompt.has_value());
  spec.prompt = *prompt;
  spec.max_tokens = 24;
  spec.sampling.temperature = 1.0f;
  spec.sampling.seed = 7;
  auto rows = std::make_shared<std::vector<float>>();
  auto tokens = std::make_shared<std::vector<int32_t>>();
  auto acc = std::make_shared<ConfidenceAccumulator>();
  auto mutex = std::make_shared<std::mutex>();
  spec.observe_token = [=](std::span<const float> logits, int32_t token) {
    std::lock_guard<std::mutex> lock(*mutex);
    rows->insert(rows->end(), logits.begin(), logits.end());
    tokens->push_back(token);
    acc->add(logits, token);
  };
  auto job = stories_scheduler().submit(std::move(spec));
  ASSERT_TRUE(job.has_value()) << job.error().to_string();
  serve::GenerationDelta delta;
  while (!(*job)->done()) (*job)->wait(delta, std::chrono::milliseconds(100));
  std::lock_guard<std::mutex> lock(*mutex);
  ASSERT_GT(tokens->size(), 3u);

  TempDir dir("confidence");
  const fs::path logits_path = dir.path() / "logits.f32";
  const fs::path meta_path = dir.path() / "meta.json";
  {
    std::ofstream out(logits_path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(rows->data()),
              static_cast<std::streamsize>(rows->size() * sizeof(float)));
    std::ofstream(meta_path) << json{{"vocab", rows->size() / tokens->size()}, {"tokens", *tokens}};
  }
  const std::string command =
      edgelm::test::python3() + " " +
      (edgelm::test::source_dir() / "tests/hybrid/confidence_reference.py").string() + " " +
      logits_path.string() + " " + meta_path.string();
  FILE* pipe = ::popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string output;
  char buffer[512];
  while (std::fgets(buffer, sizeof buffer, pipe) != nullptr) output += buffer;
  ASSERT_EQ(::pclose(pipe), 0) << output;
  const json expected = json::parse(output);
  const json actual = to_json(acc->result());
  EXPECT_EQ(actual["tokens"], expected["tokens"]);
  for (const char* key : {"mean_logprob", "min_logprob", "mean_entropy", "mean_margin"}) {
    EXPECT_NEAR(actual[key].get<double>(), expected[key].get<double>(), 1e-9) << key;
  }
}

TEST(Calibration, PicksTheThresholdThatRoutesBest) {
  // Hand-worked: values with labels (correct = local answer right).
  //   -3 wrong, -2 wrong, -1.5 right, -1 wrong, -0.5 right, -0.2 right
  // t = -1.5 escalates {-3, -2}: routed right = 2 wrong escalated + 3 right kept = 5/6.
  // t = -0.5 escalates {-3,-2,-1.5,-1}: 3 wrong escalated + 2 right kept = 5/6, but escalates
  // more, so the tie goes to -1.5.
  const std::vector<CalibrationSample> samples = {{-3, false}, {-2, false},  {-1.5, true},
                                                  {-1, false}, {-0.5, true}, {-0.2, true}};
  const Calibration c = calibrate_threshold(samples);
  EXPECT_DOUBLE_EQ(c.threshold, -1.5);
  EXPECT_NEAR(c.best.routing_accuracy, 5.0 / 6, 1e-12);
  EXPECT_NEAR(c.best.escalation_rate, 2.0 / 6, 1e-12);
  EXPECT_NEAR(c.best.local_accuracy, 3.0 / 4, 1e-12);
  ASSERT_EQ(c.curve.size(), 8u);  // below all, 6 values, above all
  EXPECT_DOUBLE_EQ(c.curve.front().escalation_rate, 0.0);
  EXPECT_DOUBLE_EQ(c.curve.back().escalation_rate, 1.0);
  EXPECT_NEAR(c.curve.front().routing_accuracy, 0.5, 1e-12);
  const std::string csv = calibration_curve_csv(c);
  EXPECT_EQ(csv.rfind("threshold,escalation_rate,routing_accuracy,local_accuracy\n", 0), 0u);
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 9);
}

TEST(Calibration, AnswerMatching) {
  EXPECT_TRUE(answer_matches(" Lily. She loved", "lily"));
  EXPECT_TRUE(answer_matches("Paris!", "Paris"));
  EXPECT_FALSE(answer_matches("Lilypad", "Lily"));
  EXPECT_FALSE(answer_matches("Tom", "Lily"));
  EXPECT_TRUE(answer_matches("the big, red ball", "The big red ball"));
}

}  // namespace
}  // namespace edgelm::hybrid::test
