// Precision / recall / F1 of the redactor per entity type on a labeled JSONL set.
//
// One example per line: {"text": "...", "entities": [{"type": "EMAIL", "value": "a@b.example"},
// {"type": "PERSON", "start": 10, "end": 20}]}. A "value" labels every occurrence of that exact
// text; "start"/"end" are byte offsets. A prediction is a true positive when it has the gold
// type and, for structured types, covers the whole gold span (a partial cover leaks the rest);
// for addresses and names, when it overlaps the gold span. Each gold span matches at most once.
#pragma once

#include <array>
#include <filesystem>
#include <string>
#include <vector>

#include "edgelm/error.h"
#include "edgelm/hybrid/entity.h"
#include "edgelm/hybrid/redactor.h"

namespace edgelm::hybrid {

struct LabeledExample {
  std::string text;
  std::vector<EntitySpan> gold;
};

// Errors name the file and line.
Result<std::vector<LabeledExample>> load_labeled_jsonl(const std::filesystem::path& path);
Result<LabeledExample> parse_labeled_example(std::string_view json_line, std::string_view where);

struct TypeScore {
  int true_positives = 0;
  int false_positives = 0;
  int false_negatives = 0;
  double precision() const;  // 1 when nothing was predicted
  double recall() const;     // 1 when nothing was labeled
  double f1() const;
};

struct Miss {
  size_t example = 0;
  EntitySpan span;
  bool false_positive = false;  // else a false negative
};

struct EvaluationReport {
  std::array<TypeScore, kEntityTypeCount> by_type;
  TypeScore structured;  // micro-average over the structured types
  TypeScore names;       // micro-average over addresses, person, organization, location
  std::vector<Miss> misses;
  size_t examples = 0;
};

EvaluationReport evaluate(const Redactor& redactor, const std::vector<LabeledExample>& examples);
// A table: type, support, precision, recall, F1.
std::string format_report(const EvaluationReport& report);

}  // namespace edgelm::hybrid
