// edgelm update: fetch a new model from a TUF update repository, validate it against the current
// one, and switch atomically; --rollback returns to the previous model.
//
// The config file's "update" object configures it (paths relative to the config file):
//   {"update": {"state_dir": "/var/lib/edgelm", "model": "stories", "trusted_root": "root.json",
//               "validation": {"set": "validation.json", "min_agreement": 0.8,
//                              "max_perplexity_ratio": 1.1, "min_accuracy": 0.0, "greedy_tokens": 16}}}
// The validation set: {"texts": [...], "prompts": [...], "labeled": [{"prompt": .., "answer": ..}]}.
#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli.h"
#include "edgelm/model.h"
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
  std::vector<std::string> texts;    // perplexity
  std::vector<std::string> prompts;  // greedy agreement
  std::vector<std::pair<std::string, std::string>> labeled;  // accuracy: greedy output starts with answer
  double min_agreement = 0.8;
  double max_perplexity_ratio = 1.1;
  double min_accuracy = 0.0;
  int greedy_tokens = 16;
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
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(ErrorCode::kIo, "cannot read '" + path.string() + "'");
  std::ostringstream text;
  text << in.rdbuf();
  json doc = json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return make_error(ErrorCode::kInvalidFormat, "'" + path.string() + "' is not valid JSON");
  return doc;
}

Result<std::vector<std::string>> strings_of(const json& obj, const char* key, const std::string& where) {
  std::vector<std::string> out;
  if (!obj.contains(key)) return out;
  if (!obj[key].is_array()) return config_error(where, std::string("'") + key + "' must be an array of strings");
  for (const auto& v : obj[key]) {
    if (!v.is_string()) return config_error(where, std::string("'") + key + "' must be an array of strings");
    out.push_back(v.get<std::string>());
  }
  return out;
}

Result<double> number_of(const json& obj, const char* key, double fallback, const std::string& where) {
  if (!obj.contains(key)) return fallback;
  if (!obj[key].is_number()) return config_error(where, std::string("'") + key + "' must be a number");
  return obj[key].get<double>();
}

Result<ValidationPolicy> load_validation(const json& v, const fs::path& base, const std::string& where) {
  ValidationPolicy p;
  if (!v.is_object()) return config_error(where, "'validation' must be an object");
  EDGELM_TRY(p.min_agreement, number_of(v, "min_agreement", p.min_agreement, where));
  EDGELM_TRY(p.max_perplexity_ratio, number_of(v, "max_perplexity_ratio", p.max_perplexity_ratio, where));
  EDGELM_TRY(p.min_accuracy, number_of(v, "min_accuracy", p.min_accuracy, where));
  EDGELM_TRY(double tokens, number_of(v, "greedy_tokens", p.greedy_tokens, where));
  if (tokens < 1 || tokens > 512) return config_error(where, "'greedy_tokens' must be in [1, 512]");
  p.greedy_tokens = static_cast<int>(tokens);
  if (!v.contains("set") || !v["set"].is_string()) return config_error(where, "'set' must name the validation set file");
  const fs::path set_path = base / v["set"].get<std::string>();
  EDGELM_TRY(json set, read_json(set_path));
  const std::string set_where = "validation set '" + set_path.string() + "'";
  if (!set.is_object()) return config_error(set_where, "expected an object");
  EDGELM_TRY(p.texts, strings_of(set, "texts", set_where));
  EDGELM_TRY(p.prompts, strings_of(set, "prompts", set_where));
  if (set.contains("labeled")) {
    if (!set["labeled"].is_array()) return config_error(set_where, "'labeled' must be an array");
    for (const auto& e : set["labeled"]) {
      if (!e.is_object() || !e.contains("prompt") || !e["prompt"].is_string() || !e.contains("answer") ||
          !e["answer"].is_string()) {
        return config_error(set_where, "each labeled example needs string 'prompt' and 'answer'");
      }
      p.labeled.emplace_back(e["prompt"].get<std::string>(), e["answer"].get<std::string>());
    }
  }
  if (p.texts.empty() && p.prompts.empty() && p.labeled.empty()) {
    return config_error(set_where, "has no texts, prompts or labeled examples");
  }
  return p;
}

Result<UpdateConfig> load_update_config(const std::string& path) {
  if (path.empty()) return config_error("edgelm update", "--config is required (it holds the \"update\" settings)");
  EDGELM_TRY(json doc, read_json(path));
  const std::string where = "config '" + path + "'";
  if (!doc.is_object() || !doc.contains("update") || !doc["update"].is_object()) {
    return config_error(where, "needs an \"update\" object: {\"state_dir\", \"model\", \"trusted_root\", \"validation\"}");
  }
  const json u = doc["update"];
  doc.erase("update");  // the remaining keys are the ordinary engine config
  UpdateConfig out;
  EDGELM_TRY(out.engine, parse_config(doc.dump(), path));
  const fs::path base = fs::path(path).parent_path();
  const std::string uwhere = where + ": update";
  for (const char* key : {"state_dir", "model"}) {
    if (!u.contains(key) || !u[key].is_string()) return config_error(uwhere, std::string("'") + key + "' must be a string");
  }
  out.settings.state_dir = base / u["state_dir"].get<std::string>();
  out.settings.model_name = u["model"].get<std::string>();
  if (u.contains("trusted_root")) {
    if (!u["trusted_root"].is_string()) return config_error(uwhere, "'trusted_root' must be a path");
    out.settings.bootstrap_root = base / u["trusted_root"].get<std::string>();
  }
  if (!u.contains("validation")) return config_error(uwhere, "'validation' is required: updates are gated");
  EDGELM_TRY(out.validation, load_validation(u["validation"], base, uwhere + ".validation"));
  return out;
}

// --- the default validation gate, on the public runtime API ---

struct Scores {
  double perplexity = 0;  // over `texts`; 0 when there are none
  double accuracy = 0;    // over `labeled`
  std::vector<std::vector<int32_t>> greedy;  // per prompt
};

Result<std::unique_ptr<model::Context>> new_context(const runtime::Engine& engine, size_t n_tokens) {
  model::ContextOptions options;
  options.n_ctx = static_cast<int32_t>(std::min<size_t>(n_tokens + 1, engine.model().hparams().n_ctx_train));
  options.n_threads = engine.config().resolved_threads();
  return model::Context::create(engine.model(), options);
}

Result<std::vector<int32_t>> greedy(const runtime::Engine& engine, const std::string& prompt, int n) {
  EDGELM_TRY(auto tokens, engine.tokenize(prompt));
  if (tokens.empty()) return make_error(ErrorCode::kInvalidArgument, "validation prompt tokenizes to nothing");
  EDGELM_TRY(auto context, new_context(engine, tokens.size() + n));
  std::vector<int32_t> out;
  std::vector<int32_t> next = tokens;
  for (int i = 0; i < n && context->n_past() + static_cast<int32_t>(next.size()) <= context->n_ctx(); ++i) {
    EDGELM_TRY(auto logits, context->decode(next));
    next = {static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin())};
    out.push_back(next[0]);
  }
  return out;
}

Result<double> perplexity(const runtime::Engine& engine, const std::vector<std::string>& texts) {
  double nll = 0;
  size_t count = 0;
  const auto n_vocab = static_cast<size_t>(engine.model().hparams().n_vocab);
  for (const auto& text : texts) {
    EDGELM_TRY(auto tokens, engine.tokenize(text));
    if (tokens.size() < 2) continue;
    EDGELM_TRY(auto context, new_context(engine, tokens.size()));
    if (static_cast<size_t>(context->n_ctx()) < tokens.size()) tokens.resize(context->n_ctx());
    EDGELM_TRY(auto logits, context->decode(tokens, /*all_logits=*/true));
    for (size_t i = 0; i + 1 < tokens.size(); ++i) {
      const float* row = logits.data() + i * n_vocab;
      const float max = *std::max_element(row, row + n_vocab);
      double sum = 0;
      for (size_t j = 0; j < n_vocab; ++j) sum += std::exp(static_cast<double>(row[j] - max));
      nll -= static_cast<double>(row[tokens[i + 1]] - max) - std::log(sum);
      ++count;
    }
  }
  return count == 0 ? 0.0 : std::exp(nll / static_cast<double>(count));
}

Result<Scores> score(const fs::path& model, const Config& config, const ValidationPolicy& p) {
  EDGELM_TRY(auto engine, runtime::Engine::load(model, config));
  Scores s;
  EDGELM_TRY(s.perplexity, perplexity(*engine, p.texts));
  for (const auto& prompt : p.prompts) {
    EDGELM_TRY(auto tokens, greedy(*engine, prompt, p.greedy_tokens));
    s.greedy.push_back(std::move(tokens));
  }
  size_t correct = 0;
  for (const auto& [prompt, answer] : p.labeled) {
    EDGELM_TRY(auto tokens, greedy(*engine, prompt, p.greedy_tokens));
    std::string text = engine->tokenizer().decode(tokens, /*render_special=*/false);
    text.erase(0, text.find_first_not_of(" \t\n"));
    correct += text.rfind(answer, 0) == 0;
  }
  s.accuracy = p.labeled.empty() ? 1.0 : static_cast<double>(correct) / static_cast<double>(p.labeled.size());
  return s;
}

security::ValidationGate default_gate(const Config& config, const ValidationPolicy& p) {
  return [config, p](const fs::path& candidate, const fs::path* current) -> Result<security::GateVerdict> {
    EDGELM_TRY(Scores cand, score(candidate, config, p));
    char buf[256];
    std::snprintf(buf, sizeof buf, "candidate perplexity %.4f, accuracy %.3f (min %.3f)", cand.perplexity,
                  cand.accuracy, p.min_accuracy);
    std::string summary = buf;
    bool pass = std::isfinite(cand.perplexity) && cand.accuracy >= p.min_accuracy;
    if (current != nullptr) {
      EDGELM_TRY(Scores cur, score(*current, config, p));
      size_t same = 0, total = 0;
      for (size_t i = 0; i < cand.greedy.size(); ++i) {
        const auto& a = cand.greedy[i];
        const auto& b = cur.greedy[i];
        total += std::max(a.size(), b.size());
        for (size_t j = 0; j < std::min(a.size(), b.size()); ++j) same += a[j] == b[j];
      }
      const double agreement = total == 0 ? 1.0 : static_cast<double>(same) / static_cast<double>(total);
      const double ratio = cur.perplexity > 0 ? cand.perplexity / cur.perplexity : 1.0;
      std::snprintf(buf, sizeof buf, "; current perplexity %.4f, ratio %.4f (max %.4f); greedy agreement %.3f (min %.3f)",
                    cur.perplexity, ratio, p.max_perplexity_ratio, agreement, p.min_agreement);
      summary += buf;
      pass = pass && ratio <= p.max_perplexity_ratio && agreement >= p.min_agreement;
    }
    return security::GateVerdict{pass, summary};
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
    std::printf("up to date: model version %llu (%s)\n", static_cast<unsigned long long>(outcome->model_version),
                outcome->target.c_str());
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
  CLI::App* cmd = app.add_subcommand("update", "securely update the model from a TUF update repository");
  cmd->add_option("--repo", options->repo, "update repository URL, e.g. https://updates.example.com/edgelm");
  cmd->add_option("--config", options->config_path, "config with an \"update\" object (state_dir, model, ...)");
  auto* rollback = cmd->add_flag("--rollback", options->rollback, "make the previous model active again");
  cmd->add_flag("--status", options->status, "show the active and previous models")->excludes(rollback);
  cmd->callback([options, &exit_code] { exit_code = update(*options); });
}

}  // namespace edgelm::cli
