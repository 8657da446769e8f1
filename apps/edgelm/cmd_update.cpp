// edgelm update: fetch a new model from a TUF update repository, validate it against the current
// one, and switch atomically; --rollback returns to the previous model.
//
// The config file's "update" object configures it (paths relative to the config file):
//   {"update": {"state_dir": "/var/lib/edgelm", "model": "stories", "trusted_root": "root.json",
//               "validation": {"text": "validation.txt", "tasks": "validation.jsonl",
//                              "window": 128, "max_new_tokens": 16,
//                              "gate": {"max_ppl_increase_pct": 5, "min_top1_agreement": 0.9,
//                                       "min_accuracy": 0.8}}}}
// The gate is `edgelm eval --gate` (tools::check_gate): perplexity, KL and top-1 agreement of the
// candidate against the current model over `text`, and accuracy on the labeled `tasks` (JSONL, as
// for `edgelm eval --task`). On a first install there is no current model, so only the absolute
// thresholds (min_accuracy) apply.
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli.h"
#include "edgelm/eval.h"
#include "edgelm/security/update.h"

namespace edgelm::cli {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct UpdateCliOptions {
  std::string repo;
  std::string config_path;
  bool rollback = false;
  bool status = false;
};

struct ValidationPolicy {
  std::string text;                    // perplexity and KL
  std::vector<tools::TaskItem> tasks;  // accuracy
  tools::GatePolicy gate;
  int32_t window = 0;  // 0: the eval default
  int32_t max_new_tokens = 16;
};

struct UpdateConfig {
  Config engine;  // the rest of the config: threads, ctx, ...
  security::UpdateSettings settings;
  ValidationPolicy validation;
};

Error config_error(const std::string& where, const std::string& what) {
  return make_error(ErrorCode::kInvalidArgument, where + ": " + what);
}

Result<json> read_json(const fs::path& path) {
  EDGELM_TRY(std::string text, read_file(path.string(), "config"));
  json doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded())
    return make_error(ErrorCode::kInvalidFormat, "'" + path.string() + "' is not valid JSON");
  return doc;
}

Result<int32_t> int_of(const json& obj, const char* key, int32_t fallback, int32_t lo, int32_t hi,
                       const std::string& where) {
  if (!obj.contains(key)) return fallback;
  if (!obj[key].is_number_integer() || obj[key].get<int64_t>() < lo ||
      obj[key].get<int64_t>() > hi) {
    return config_error(where, "'" + std::string(key) + "' must be an integer in [" +
                                   std::to_string(lo) + ", " + std::to_string(hi) + "]");
  }
  return obj[key].get<int32_t>();
}

Result<ValidationPolicy> load_validation(const json& v, const fs::path& base,
                                         const std::string& where) {
  ValidationPolicy p;
  if (!v.is_object()) return config_error(where, "'validation' must be an object");
  for (const auto& [key, value] : v.items()) {
    if (key != "text" && key != "tasks" && key != "gate" && key != "window" &&
        key != "max_new_tokens") {
      return config_error(
          where, "unknown key '" + key + "' (valid: text, tasks, gate, window, max_new_tokens)");
    }
  }
  EDGELM_TRY(p.window, int_of(v, "window", 0, 0, 1 << 16, where));
  EDGELM_TRY(p.max_new_tokens, int_of(v, "max_new_tokens", p.max_new_tokens, 1, 512, where));
  for (const char* key : {"text", "tasks"}) {
    if (v.contains(key) && !v[key].is_string())
      return config_error(where, "'" + std::string(key) + "' must be a path");
  }
  if (v.contains("text")) {
    EDGELM_TRY(p.text,
               read_file((base / v["text"].get<std::string>()).string(), "validation text"));
  }
  if (v.contains("tasks")) {
    const fs::path path = base / v["tasks"].get<std::string>();
    EDGELM_TRY(std::string jsonl, read_file(path.string(), "validation set"));
    auto tasks = tools::parse_task_jsonl(jsonl);
    if (!tasks)
      return config_error("validation set '" + path.string() + "'", tasks.error().message);
    p.tasks = std::move(*tasks);
  }
  if (p.text.empty() && p.tasks.empty())
    return config_error(where, "needs a 'text' file and/or a 'tasks' set");
  if (!v.contains("gate"))
    return config_error(where, "'gate' (the thresholds a candidate must meet) is required");
  auto gate = tools::parse_gate_policy(v["gate"].dump());
  if (!gate) return config_error(where, gate.error().message);
  p.gate = *gate;
  return p;
}

Result<UpdateConfig> load_update_config(const std::string& path) {
  if (path.empty())
    return config_error("edgelm update", "--config is required (it holds the \"update\" settings)");
  EDGELM_TRY(json doc, read_json(path));
  const std::string where = "config '" + path + "'";
  if (!doc.is_object() || !doc.contains("update") || !doc["update"].is_object()) {
    return config_error(
        where,
        "needs an \"update\" object: {\"state_dir\", \"model\", \"trusted_root\", \"validation\"}");
  }
  const json u = doc["update"];
  doc.erase("update");  // the remaining keys are the ordinary engine config
  UpdateConfig out;
  EDGELM_TRY(out.engine, parse_config(doc.dump(), path));
  const fs::path base = fs::path(path).parent_path();
  const std::string uwhere = where + ": update";
  for (const char* key : {"state_dir", "model"}) {
    if (!u.contains(key) || !u[key].is_string())
      return config_error(uwhere, std::string("'") + key + "' must be a string");
  }
  out.settings.state_dir = base / u["state_dir"].get<std::string>();
  out.settings.model_name = u["model"].get<std::string>();
  if (u.contains("trusted_root")) {
    if (!u["trusted_root"].is_string())
      return config_error(uwhere, "'trusted_root' must be a path");
    out.settings.bootstrap_root = base / u["trusted_root"].get<std::string>();
  }
  if (!u.contains("validation"))
    return config_error(uwhere, "'validation' is required: updates are gated");
  EDGELM_TRY(out.validation, load_validation(u["validation"], base, uwhere + ".validation"));
  return out;
}

// --- the default validation gate: edgelm eval's measurements and thresholds ---

std::string format_metric(const char* name, const std::optional<double>& value) {
  if (!value) return "";
  char buf[96];
  std::snprintf(buf, sizeof buf, "%s%s %.4f", "; ", name, *value);
  return buf;
}

Result<tools::EvalMetrics> measure(const runtime::Engine& candidate, const runtime::Engine* current,
                                   const ValidationPolicy& p, int threads) {
  tools::EvalMetrics m;
  tools::WindowOptions window;
  window.n_ctx = p.window;
  window.n_threads = threads;
  if (!p.text.empty()) {
    EDGELM_TRY(auto tokens, tools::tokenize_text(candidate.tokenizer(), p.text));
    if (current != nullptr) {
      EDGELM_TRY(auto cmp,
                 tools::compare_distributions(current->model(), candidate.model(), tokens, window));
      m.ppl_base = cmp.base.perplexity;
      m.ppl_candidate = cmp.candidate.perplexity;
      m.mean_kl = cmp.mean_kl;
      m.p99_kl = cmp.p99_kl;
      m.top1_agreement = cmp.top1_agreement;
    } else {
      EDGELM_TRY(auto ppl, tools::perplexity(candidate.model(), tokens, window));
      m.ppl_candidate = ppl.perplexity;
    }
  }
  if (!p.tasks.empty()) {
    tools::TaskOptions task;
    task.max_new_tokens = p.max_new_tokens;
    task.n_threads = threads;
    EDGELM_TRY(auto acc,
               tools::task_accuracy(candidate.model(), candidate.tokenizer(), p.tasks, task));
    m.accuracy_candidate = acc.accuracy;
    if (current != nullptr) {
      EDGELM_TRY(auto base,
                 tools::task_accuracy(current->model(), current->tokenizer(), p.tasks, task));
      m.accuracy_base = base.accuracy;
    }
  }
  return m;
}

security::ValidationGate default_gate(const Config& config, const ValidationPolicy& p) {
  return [config, p](const fs::path& candidate,
                     const fs::path* current) -> Result<security::GateVerdict> {
    EDGELM_TRY(auto cand, runtime::Engine::load(candidate, config));
    std::unique_ptr<runtime::Engine> cur;
    if (current != nullptr) {
      EDGELM_TRY(cur, runtime::Engine::load(*current, config));
    }
    EDGELM_TRY(tools::EvalMetrics m, measure(*cand, cur.get(), p, config.resolved_threads()));
    tools::GatePolicy gate = p.gate;
    if (current == nullptr) {  // nothing to compare with: only absolute thresholds apply
      gate.max_ppl_increase_pct.reset();
      gate.max_mean_kl.reset();
      gate.max_p99_kl.reset();
      gate.min_top1_agreement.reset();
      gate.max_accuracy_drop.reset();
    }
    const tools::GateResult result = tools::check_gate(gate, m);
    std::string summary = current == nullptr ? "first install" : "against the current model";
    summary += format_metric("perplexity", m.ppl_candidate) +
               format_metric("current perplexity", m.ppl_base) +
               format_metric("mean KL", m.mean_kl) + format_metric("p99 KL", m.p99_kl) +
               format_metric("top-1 agreement", m.top1_agreement) +
               format_metric("accuracy", m.accuracy_candidate) +
               format_metric("current accuracy", m.accuracy_base);
    for (const auto& failure : result.failures) summary += "; FAILED " + failure.message;
    return security::GateVerdict{result.passed, summary};
  };
}

void print_slot(const char* label, const Result<security::SlotInfo>& slot) {
  if (slot) {
    std::printf("%s: %s (model version %llu, %s)\n", label, slot->model_path.c_str(),
                static_cast<unsigned long long>(slot->model_version), slot->target.c_str());
  } else {
    std::printf("%s: none (%s)\n", label, slot.error().message.c_str());
  }
}

int update(const UpdateCliOptions& o) {
  auto config = load_update_config(o.config_path);
  if (!config) return report(config.error());
  const fs::path& state = config->settings.state_dir;
  if (o.status) {
    print_slot("active", security::active_model(state));
    print_slot("previous", security::previous_model(state));
    return 0;
  }
  if (o.rollback) {
    auto slot = security::rollback(state);
    if (!slot) return report(slot.error());
    print_slot("rolled back; active", slot);
    return 0;
  }
  if (o.repo.empty()) return report(config_error("edgelm update", "--repo URL is required"));
  auto fetcher = security::make_http_fetcher(o.repo);
  if (!fetcher) return report(fetcher.error());
  security::UpdateOptions options;
  options.gate = default_gate(config->engine, config->validation);
  auto outcome = security::run_update(config->settings, **fetcher, options);
  if (!outcome) return report(outcome.error());
  if (!outcome->installed) {
    std::printf("up to date: model version %llu (%s)\n",
                static_cast<unsigned long long>(outcome->model_version), outcome->target.c_str());
    return 0;
  }
  std::printf("installed model version %llu (%s) at %s\nvalidation: %s\n",
              static_cast<unsigned long long>(outcome->model_version), outcome->target.c_str(),
              outcome->model_path.c_str(), outcome->gate_summary.c_str());
  return 0;
}

}  // namespace

void register_update(CLI::App& app, int& exit_code) {
  auto options = std::make_shared<UpdateCliOptions>();
  CLI::App* cmd =
      app.add_subcommand("update", "securely update the model from a TUF update repository");
  cmd->add_option("--repo", options->repo,
                  "update repository URL, e.g. https://updates.example.com/edgelm");
  cmd->add_option("--config", options->config_path,
                  "config with an \"update\" object (state_dir, model, ...)");
  auto* rollback =
      cmd->add_flag("--rollback", options->rollback, "make the previous model active again");
  cmd->add_flag("--status", options->status, "show the active and previous models")
      ->excludes(rollback);
  cmd->callback([options, &exit_code] { exit_code = update(*options); });
}

}  // namespace edgelm::cli
