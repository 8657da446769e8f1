#include "edgelm/hybrid/evaluation.h"

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

namespace edgelm::hybrid {
namespace {

bool matches(const EntitySpan& predicted, const EntitySpan& gold) {
  if (predicted.type != gold.type) return false;
  if (is_structured(gold.type)) return predicted.begin <= gold.begin && predicted.end >= gold.end;
  return predicted.overlaps(gold);
}

void add(TypeScore& total, const TypeScore& part) {
  total.true_positives += part.true_positives;
  total.false_positives += part.false_positives;
  total.false_negatives += part.false_negatives;
}

}  // namespace

double TypeScore::precision() const {
  int predicted = true_positives + false_positives;
  return predicted == 0 ? 1.0 : static_cast<double>(true_positives) / predicted;
}
double TypeScore::recall() const {
  int labeled = true_positives + false_negatives;
  return labeled == 0 ? 1.0 : static_cast<double>(true_positives) / labeled;
}
double TypeScore::f1() const {
  double p = precision(), r = recall();
  return p + r == 0 ? 0.0 : 2 * p * r / (p + r);
}

Result<LabeledExample> parse_labeled_example(std::string_view json_line, std::string_view where) {
  const std::string prefix = std::string(where) + ": ";
  nlohmann::json json = nlohmann::json::parse(json_line, nullptr, false);
  if (json.is_discarded() || !json.is_object() || !json.contains("text") ||
      !json["text"].is_string()) {
    return make_error(ErrorCode::kInvalidFormat,
                      prefix + "expected a JSON object with a string 'text'");
  }
  LabeledExample example;
  example.text = json["text"].get<std::string>();
  if (!json.contains("entities")) return example;
  if (!json["entities"].is_array())
    return make_error(ErrorCode::kInvalidFormat, prefix + "'entities' must be an array");
  for (const auto& e : json["entities"]) {
    if (!e.is_object() || !e.contains("type") || !e["type"].is_string()) {
      return make_error(ErrorCode::kInvalidFormat, prefix + "each entity needs a string 'type'");
    }
    auto type = parse_entity_type(e["type"].get<std::string>());
    if (!type)
      return make_error(ErrorCode::kInvalidFormat,
                        prefix + "unknown entity type " + e["type"].dump());
    if (e.contains("value")) {
      if (!e["value"].is_string() || e["value"].get_ref<const std::string&>().empty()) {
        return make_error(ErrorCode::kInvalidFormat, prefix + "'value' must be a non-empty string");
      }
      const std::string& value = e["value"].get_ref<const std::string&>();
      size_t found = example.text.find(value);
      if (found == std::string::npos) {
        return make_error(ErrorCode::kInvalidFormat,
                          prefix + "value " + e["value"].dump() + " is not in the text");
      }
      for (; found != std::string::npos; found = example.text.find(value, found + value.size())) {
        example.gold.push_back({found, found + value.size(), *type});
      }
    } else if (e.contains("start") && e.contains("end") && e["start"].is_number_unsigned() &&
               e["end"].is_number_unsigned()) {
      size_t begin = e["start"].get<size_t>(), end = e["end"].get<size_t>();
      if (begin >= end || end > example.text.size()) {
        return make_error(ErrorCode::kInvalidFormat, prefix + "entity offsets out of range");
      }
      example.gold.push_back({begin, end, *type});
    } else {
      return make_error(ErrorCode::kInvalidFormat,
                        prefix + "each entity needs 'value' or 'start' and 'end'");
    }
  }
  return example;
}

Result<std::vector<LabeledExample>> load_labeled_jsonl(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(ErrorCode::kIo, "cannot read labeled set '" + path.string() + "'");
  std::vector<LabeledExample> examples;
  std::string line;
  size_t number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    EDGELM_TRY(auto example,
               parse_labeled_example(line, path.string() + ":" + std::to_string(number)));
    examples.push_back(std::move(example));
  }
  return examples;
}

EvaluationReport evaluate(const Redactor& redactor, const std::vector<LabeledExample>& examples) {
  EvaluationReport report;
  report.examples = examples.size();
  for (size_t index = 0; index < examples.size(); ++index) {
    const auto& example = examples[index];
    auto predicted = redactor.detect(example.text);
    std::vector<bool> gold_matched(example.gold.size(), false);
    for (const auto& p : predicted) {
      bool hit = false;
      for (size_t g = 0; g < example.gold.size(); ++g) {
        if (!gold_matched[g] && matches(p, example.gold[g])) {
          gold_matched[g] = true;
          hit = true;
          break;
        }
      }
      auto& score = report.by_type[static_cast<size_t>(p.type)];
      if (hit) {
        ++score.true_positives;
      } else {
        ++score.false_positives;
        report.misses.push_back({index, p, true});
      }
    }
    for (size_t g = 0; g < example.gold.size(); ++g) {
      if (gold_matched[g]) continue;
      ++report.by_type[static_cast<size_t>(example.gold[g].type)].false_negatives;
      report.misses.push_back({index, example.gold[g], false});
    }
  }
  for (EntityType type : all_entity_types()) {
    add(is_structured(type) ? report.structured : report.names,
        report.by_type[static_cast<size_t>(type)]);
  }
  return report;
}

std::string format_report(const EvaluationReport& report) {
  std::string out;
  char line[160];
  std::snprintf(line, sizeof(line), "%-14s %7s %7s %7s %9s %7s %7s\n", "type", "support", "tp",
                "fp", "precision", "recall", "f1");
  out += line;
  auto row = [&](std::string_view name, const TypeScore& s) {
    std::snprintf(line, sizeof(line), "%-14.*s %7d %7d %7d %9.4f %7.4f %7.4f\n",
                  static_cast<int>(name.size()), name.data(), s.true_positives + s.false_negatives,
                  s.true_positives, s.false_positives, s.precision(), s.recall(), s.f1());
    out += line;
  };
  for (EntityType type : all_entity_types())
    row(entity_type_name(type), report.by_type[static_cast<size_t>(type)]);
  row("structured", report.structured);
  row("names+address", report.names);
  return out;
}

}  // namespace edgelm::hybrid
