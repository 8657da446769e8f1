// edgelm eval: perplexity, KL from a base model, validation-set accuracy and a regression gate for
// one or more candidate models; a table, JSON and a size-versus-quality SVG.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "cli.h"
#include "edgelm/eval.h"

namespace edgelm::cli {
namespace {

// Exit code when every command step worked but a candidate failed the gate.
constexpr int kExitGateFailed = 3;

struct EvalCliOptions {
  std::vector<std::string> candidates;
  std::string base;
  std::string ppl_file;
  bool kl = false;
  std::string task_file;
  std::string gate_file;
  bool json = false;
  std::string plot;
  int32_t window = 0;
  int32_t stride = 0;
  int32_t max_new_tokens = 32;
  std::optional<int> threads;
  std::optional<std::string> kv_type;
  std::string config_path;
};

struct Measured {
  std::optional<double> ppl;
  std::optional<double> accuracy;
};

// Perplexity (when no KL run gives it) and accuracy of one model.
Result<Measured> measure_alone(const runtime::Engine& engine, const EvalCliOptions& o,
                               const std::string& text, const std::vector<tools::TaskItem>& items,
                               const tools::WindowOptions& window, int threads, bool want_ppl) {
  Measured m;
  if (want_ppl) {
    EDGELM_TRY(auto tokens, tools::tokenize_text(engine.tokenizer(), text));
    EDGELM_TRY(auto ppl, tools::perplexity(engine.model(), tokens, window));
    m.ppl = ppl.perplexity;
  }
  if (!items.empty()) {
    tools::TaskOptions task;
    task.max_new_tokens = o.max_new_tokens;
    task.n_threads = threads;
    task.kv_type = window.kv_type;
    EDGELM_TRY(auto acc, tools::task_accuracy(engine.model(), engine.tokenizer(), items, task));
    m.accuracy = acc.accuracy;
  }
  return m;
}

std::string file_name(const std::string& path) {
  return std::filesystem::path(path).filename().string();
}

int eval(const EvalCliOptions& o) {
  if (o.kl && (o.base.empty() || o.ppl_file.empty())) {
    return report(make_error(ErrorCode::kInvalidArgument,
                             "--kl needs --base BASE and --ppl FILE (the text compared over)"));
  }
  if (o.ppl_file.empty() && o.task_file.empty()) {
    return report(make_error(ErrorCode::kInvalidArgument,
                             "nothing to measure: give --ppl FILE and/or --task VALSET.jsonl"));
  }
  auto loaded = config_from_file(o.config_path);
  if (!loaded) return report(loaded.error());
  Config config = *loaded;
  if (o.threads) config.threads = *o.threads;
  if (o.kv_type) {
    auto kv_type = parse_kv_type(*o.kv_type, "--kv-type");
    if (!kv_type) return report(kv_type.error());
    config.kv_type = *kv_type;
  }
  const int threads = config.resolved_threads();

  std::string text;
  if (!o.ppl_file.empty()) {
    auto loaded = read_file(o.ppl_file, "text file");
    if (!loaded) return report(loaded.error());
    text = std::move(*loaded);
  }
  std::vector<tools::TaskItem> items;
  if (!o.task_file.empty()) {
    auto loaded = read_file(o.task_file, "validation set");
    if (!loaded) return report(loaded.error());
    auto parsed = tools::parse_task_jsonl(*loaded);
    if (!parsed) return report(parsed.error());
    items = std::move(*parsed);
  }
  std::optional<tools::GatePolicy> policy;
  if (!o.gate_file.empty()) {
    auto loaded = read_file(o.gate_file, "gate policy");
    if (!loaded) return report(loaded.error());
    auto parsed = tools::parse_gate_policy(*loaded);
    if (!parsed) return report(parsed.error());
    policy = *parsed;
  }
  tools::WindowOptions window;
  window.n_ctx = o.window;
  window.stride = o.stride;
  window.n_threads = threads;
  window.n_batch = config.batch;
  window.kv_type = config.kv_type;

  std::vector<tools::EvalEntry> entries;
  std::unique_ptr<runtime::Engine> base;
  std::vector<int32_t> base_tokens;
  Measured base_measured;
  if (!o.base.empty()) {
    auto loaded = runtime::Engine::load(o.base, config);
    if (!loaded) return report(loaded.error());
    base = std::move(*loaded);
    auto measured = measure_alone(*base, o, text, items, window, threads, !o.ppl_file.empty());
    if (!measured) return report(measured.error());
    base_measured = *measured;
    if (o.kl) {
      auto tokens = tools::tokenize_text(base->tokenizer(), text);
      if (!tokens) return report(tokens.error());
      base_tokens = std::move(*tokens);
    }
    tools::EvalEntry e;
    e.name = file_name(o.base);
    e.file_bytes = std::filesystem::file_size(o.base);
    e.is_base = true;
    e.metrics.ppl_candidate = base_measured.ppl;
    e.metrics.accuracy_candidate = base_measured.accuracy;
    entries.push_back(std::move(e));
  }

  bool all_passed = true;
  for (const std::string& path : o.candidates) {
    auto engine = runtime::Engine::load(path, config);
    if (!engine) return report(engine.error());
    tools::EvalEntry e;
    e.name = file_name(path);
    e.file_bytes = std::filesystem::file_size(path);
    tools::EvalMetrics& m = e.metrics;
    m.ppl_base = base_measured.ppl;
    m.accuracy_base = base_measured.accuracy;
    auto measured =
        measure_alone(**engine, o, text, items, window, threads, !o.ppl_file.empty() && !o.kl);
    if (!measured) return report(measured.error());
    m.ppl_candidate = measured->ppl;
    m.accuracy_candidate = measured->accuracy;
    if (o.kl) {
      auto cmp =
          tools::compare_distributions(base->model(), (*engine)->model(), base_tokens, window);
      if (!cmp) return report(cmp.error());
      m.ppl_candidate = cmp->candidate.perplexity;
      m.mean_kl = cmp->mean_kl;
      m.p99_kl = cmp->p99_kl;
      m.top1_agreement = cmp->top1_agreement;
    }
    if (policy) {
      e.gate = tools::check_gate(*policy, m);
      if (!e.gate->passed) {
        all_passed = false;
        for (const auto& f : e.gate->failures) {
          std::fprintf(stderr, "edgelm: gate failed for %s: %s\n", e.name.c_str(),
                       f.message.c_str());
        }
      }
    }
    entries.push_back(std::move(e));
  }

  if (o.json) {
    std::printf("%s\n", tools::eval_to_json(entries).dump(2).c_str());
  } else {
    std::printf("%s", tools::eval_to_table(entries).c_str());
  }
  if (!o.plot.empty()) {
    auto svg = tools::size_quality_svg(entries);
    if (!svg) return report(svg.error());
    std::ofstream out(o.plot, std::ios::binary);
    out << *svg;
    if (!out) return report(make_error(ErrorCode::kIo, "cannot write plot '" + o.plot + "'"));
  }
  return all_passed ? 0 : kExitGateFailed;
}

}  // namespace

void register_eval(CLI::App& app, int& exit_code) {
  auto o = std::make_shared<EvalCliOptions>();
  CLI::App* cmd = app.add_subcommand(
      "eval", "measure candidates against a base: perplexity, KL, task accuracy, regression gate");
  cmd->add_option("-m,--model", o->candidates, "candidate GGUF model (repeat for several)")
      ->required();
  cmd->add_option("--base", o->base, "base GGUF model the candidates are compared with");
  cmd->add_option("--ppl", o->ppl_file, "text file: perplexity over sliding windows");
  cmd->add_flag("--kl", o->kl,
                "KL divergence from --base over the --ppl text, 99th percentile, top-1 agreement");
  cmd->add_option("--task", o->task_file,
                  "validation set JSONL: {\"prompt\",\"answer\"} or "
                  "{\"prompt\",\"choices\",\"label\"} per line");
  cmd->add_option("--gate", o->gate_file,
                  "policy JSON (max_ppl_increase_pct, max_mean_kl, max_p99_kl, min_top1_agreement, "
                  "max_accuracy_drop, min_accuracy); exit code 3 when a candidate fails it");
  cmd->add_flag("--json", o->json, "print JSON instead of a table");
  cmd->add_option("--plot", o->plot, "write an SVG plot of file size versus quality");
  cmd->add_option("-c,--ctx", o->window,
                  "perplexity window in tokens (default: min(model context, 512))")
      ->check(CLI::Range(2, 1 << 20));
  cmd->add_option("--stride", o->stride, "window stride (default: half the window)")
      ->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--max-new-tokens", o->max_new_tokens, "answer items: greedy tokens at most")
      ->capture_default_str()
      ->check(CLI::Range(1, 4096));
  cmd->add_option("-t,--threads", o->threads, "threads (default: all cores)")
      ->check(CLI::Range(1, 1024));
  add_config_option(*cmd, o->config_path);
  add_kv_type_option(*cmd, o->kv_type);
  cmd->callback([o, &exit_code] { exit_code = eval(*o); });
}

}  // namespace edgelm::cli
