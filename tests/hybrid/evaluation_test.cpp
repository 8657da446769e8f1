// The redactor against the labeled set: the generated examples (make_labeled_set.py, values
// built from the identifiers' published rules) and the hand-written hard cases.
#include "edgelm/hybrid/evaluation.h"

#include <gtest/gtest.h>

#include <cstdio>

#include "common/test_paths.h"

namespace edgelm::hybrid {
namespace {

std::filesystem::path data_dir() {
  return test::source_dir() / "tests" / "hybrid" / "data";
}

std::unique_ptr<Redactor> default_redactor() {
  auto redactor = Redactor::create(RedactionPolicy{});
  EXPECT_TRUE(redactor.has_value());
  return std::move(*redactor);
}

void print_misses(const EvaluationReport& report, const std::vector<LabeledExample>& examples,
                  size_t limit) {
  size_t shown = 0;
  for (const auto& miss : report.misses) {
    if (shown++ == limit) break;
    const auto& text = examples[miss.example].text;
    std::printf("%s %-12s [%s] in: %s\n", miss.false_positive ? "FP" : "FN",
                std::string(entity_type_name(miss.span.type)).c_str(),
                text.substr(miss.span.begin, miss.span.size()).c_str(), text.c_str());
  }
}

EvaluationReport run(const char* file, std::vector<LabeledExample>& examples) {
  auto loaded = load_labeled_jsonl(data_dir() / file);
  EXPECT_TRUE(loaded.has_value()) << (loaded ? "" : loaded.error().to_string());
  if (!loaded) return {};
  examples = std::move(*loaded);
  auto report = evaluate(*default_redactor(), examples);
  std::printf("%s (%zu examples)\n%s", file, report.examples, format_report(report).c_str());
  if (std::getenv("EDGELM_SHOW_MISSES") != nullptr) print_misses(report, examples, 400);
  return report;
}

TEST(RedactorEvaluation, GeneratedSetMeetsStructuredRecallTarget) {
  std::vector<LabeledExample> examples;
  auto report = run("pii_generated.jsonl", examples);
  ASSERT_GT(report.examples, 500u);
  for (EntityType type : all_entity_types()) {
    const auto& score = report.by_type[static_cast<size_t>(type)];
    if (!is_structured(type) || score.true_positives + score.false_negatives == 0) continue;
    EXPECT_GE(score.recall(), 0.99) << entity_type_name(type);
    EXPECT_GE(score.precision(), 0.95) << entity_type_name(type);
  }
  // Names and addresses are heuristic: these floors pin the measured figures against regressions.
  EXPECT_GE(report.by_type[static_cast<size_t>(EntityType::kAddress)].recall(), 0.95);
  EXPECT_GE(report.by_type[static_cast<size_t>(EntityType::kPerson)].recall(), 0.85);
  EXPECT_GE(report.names.f1(), 0.85);
}

TEST(RedactorEvaluation, HardCases) {
  std::vector<LabeledExample> examples;
  auto report = run("pii_hard_cases.jsonl", examples);
  ASSERT_GT(report.examples, 30u);
  EXPECT_GE(report.structured.recall(), 0.95);
  EXPECT_GE(report.structured.precision(), 0.90);
}

}  // namespace
}  // namespace edgelm::hybrid
