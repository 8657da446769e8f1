// edgelm calibrate: picks the hybrid router's confidence threshold from a labeled validation set.
//
// Each line of the set is {"prompt": "..."} (raw text, completed as is) or {"messages": [...]}
// (chat), with {"reference": "..."} (the local answer is correct when it starts with it, see
// hybrid::answer_matches) or {"correct": true|false} (a judgment made elsewhere). The local model
// answers greedily; the escalation-rate vs threshold curve goes to --curve (CSV) and the chosen
// threshold to -o as a policy fragment {"confidence": {"metric", "threshold"}}.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli.h"
#include "edgelm/hybrid/calibration.h"
#include "edgelm/hybrid/confidence.h"
#include "edgelm/serve/scheduler.h"

namespace edgelm::cli {
namespace {

using nlohmann::json;

struct CalibrateOptions {
  ModelOptions model;
  std::string set_path;
  std::string output;
  std::string curve_path;
  std::string metric = "mean_logprob";
  int32_t max_tokens = 16;
};

struct Sample {
  std::vector<int32_t> prompt;
  std::string reference;
  std::optional<bool> correct;
};

Result<std::vector<Sample>> load_set(const runtime::Engine& engine, const std::string& path) {
  std::ifstream in(path);
  if (!in) return make_error(ErrorCode::kIo, "cannot read validation set '" + path + "'");
  std::vector<Sample> samples;
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = path + ":" + std::to_string(number);
    const json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object()) return make_error(ErrorCode::kInvalidFormat, where + ": not a JSON object");
    Sample s;
    std::string text;
    if (j.contains("prompt") && j["prompt"].is_string()) {
      text = j["prompt"].get<std::string>();
    } else if (j.contains("messages") && j["messages"].is_array()) {
      EDGELM_TRY(text,
                 engine.render_chat(nlohmann::ordered_json::parse(j["messages"].dump()), true));
    } else {
      return make_error(ErrorCode::kInvalidFormat,
                        where + ": needs a 'prompt' string or 'messages'");
    }
    if (j.contains("correct") && j["correct"].is_boolean()) {
      s.correct = j["correct"].get<bool>();
    } else if (j.contains("reference") && j["reference"].is_string()) {
      s.reference = j["reference"].get<std::string>();
    } else {
      return make_error(ErrorCode::kInvalidFormat,
                        where + ": needs a 'reference' string or a 'correct' boolean");
    }
    EDGELM_TRY(s.prompt, engine.tokenize(text, /*add_special=*/true));
    if (s.prompt.empty()) return make_error(ErrorCode::kInvalidFormat, where + ": empty prompt");
    samples.push_back(std::move(s));
  }
  if (samples.empty()) return make_error(ErrorCode::kInvalidFormat, path + ": no samples");
  return samples;
}

int calibrate_main(const CalibrateOptions& o) {
  auto metric = hybrid::parse_confidence_metric(o.metric);
  if (!metric) return report(metric.error());
  auto config = o.model.resolve_config();
  if (!config) return report(config.error());
  auto engine = o.model.load_engine(*config);
  if (!engine) return report(engine.error());
  auto samples = load_set(**engine, o.set_path);
  if (!samples) return report(samples.error());
  serve::SchedulerOptions so;
  so.n_slots = 1;
  so.n_ctx = config->ctx;
  so.n_threads = config->resolved_threads();
  auto scheduler = serve::Scheduler::create(**engine, so);
  if (!scheduler) return report(scheduler.error());

  std::vector<hybrid::CalibrationSample> points;
  size_t n_correct = 0;
  for (const Sample& s : *samples) {
    serve::GenerationSpec spec;
    spec.prompt = s.prompt;
    spec.max_tokens = o.max_tokens;
    spec.sampling.temperature = 0.0f;
    auto acc = std::make_shared<hybrid::ConfidenceAccumulator>();
    spec.observe_token = [acc](std::span<const float> logits, int32_t token) {
      acc->add(logits, token);
    };
    auto job = (*scheduler)->submit(std::move(spec));
    if (!job) return report(job.error());
    serve::GenerationDelta delta;
    while (!(*job)->done()) (*job)->wait(delta, std::chrono::milliseconds(200));
    (*job)->wait(delta, std::chrono::milliseconds(0));
    if (auto outcome = (*job)->outcome(); outcome.error) return report(*outcome.error);
    const bool correct = s.correct.value_or(hybrid::answer_matches(delta.text, s.reference));
    n_correct += correct ? 1 : 0;
    points.push_back({hybrid::confidence_value(acc->result(), *metric), correct});
  }
  const hybrid::Calibration c = hybrid::calibrate_threshold(points);
  const std::string csv = hybrid::calibration_curve_csv(c);
  if (o.curve_path.empty()) {
    std::fputs(csv.c_str(), stdout);
  } else {
    std::ofstream(o.curve_path) << csv;
  }
  const json fragment = {{"confidence", {{"metric", o.metric}, {"threshold", c.threshold}}}};
  if (o.output.empty()) {
    std::fprintf(stdout, "%s\n", fragment.dump(2).c_str());
  } else {
    std::ofstream out(o.output);
    out << fragment.dump(2) << "\n";
    if (!out) return report(make_error(ErrorCode::kIo, "cannot write '" + o.output + "'"));
  }
  std::fprintf(stderr,
               "edgelm calibrate: %zu samples, local accuracy %.3f; threshold %.6g on %s: "
               "escalation rate %.3f, routing accuracy %.3f (objective), accuracy of answers "
               "kept local %.3f\n",
               points.size(), static_cast<double>(n_correct) / static_cast<double>(points.size()),
               c.threshold, o.metric.c_str(), c.best.escalation_rate, c.best.routing_accuracy,
               c.best.local_accuracy);
  return 0;
}

}  // namespace

void register_calibrate(CLI::App& app, int& exit_code) {
  auto o = std::make_shared<CalibrateOptions>();
  CLI::App* cmd = app.add_subcommand(
      "calibrate", "choose the hybrid router's confidence threshold from a labeled set");
  o->model.add_to(*cmd);
  cmd->add_option("--set", o->set_path,
                  "validation set (JSONL: prompt|messages + reference|correct)")
      ->required();
  cmd->add_option("-o,--output", o->output, "policy fragment to write (default: stdout)");
  cmd->add_option("--curve", o->curve_path, "escalation rate vs threshold CSV (default: stdout)");
  cmd->add_option("--metric", o->metric,
                  "mean_logprob, min_logprob, neg_mean_entropy or mean_margin")
      ->capture_default_str();
  cmd->add_option("--max-tokens", o->max_tokens, "tokens of each local answer")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  cmd->callback([o, &exit_code] { exit_code = calibrate_main(*o); });
}

}  // namespace edgelm::cli
