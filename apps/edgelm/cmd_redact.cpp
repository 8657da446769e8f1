// edgelm redact: replace personal data in text with placeholders (or mask/hash/drop it), restore
// placeholders from a vault, or score the redactor on a labeled set.
#include <sys/stat.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <optional>

#include "cli.h"
#include "edgelm/hybrid/evaluation.h"
#include "edgelm/hybrid/redactor.h"

namespace edgelm::cli {
namespace {

struct RedactOptions {
  std::string input;        // empty or "-": stdin
  std::string policy_path;  // redaction policy JSON, or a hybrid policy with a "redaction" key
  std::string vault_path;   // read if it exists, written after redaction
  bool json = false;        // print {"text", "vault", "entities"} instead of the text
  bool restore = false;
  std::string eval_path;
  int show_misses = 0;
  std::string name_signals;  // overrides the policy's name_signals when set
  std::string name_model;    // overrides the policy's name_model when set
  std::optional<double> name_model_threshold;
};

Result<nlohmann::json> read_json(const std::string& path) {
  EDGELM_TRY(auto text, read_file(path, "JSON file"));
  auto json = nlohmann::json::parse(text, nullptr, false);
  if (json.is_discarded())
    return make_error(ErrorCode::kInvalidFormat, "'" + path + "' is not valid JSON");
  return json;
}

Result<hybrid::RedactionPolicy> load_policy(const std::string& path) {
  if (path.empty()) return hybrid::RedactionPolicy{};
  EDGELM_TRY(auto json, read_json(path));
  if (json.is_object() && json.contains("redaction"))
    return hybrid::RedactionPolicy::from_json(json["redaction"], path);
  return hybrid::RedactionPolicy::from_json(json, path);
}

// The vault holds the raw values: owner-only permissions.
Status write_private(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return make_error(ErrorCode::kIo, "cannot write vault '" + path + "'");
  ::chmod(path.c_str(), S_IRUSR | S_IWUSR);
  out << text;
  if (!out) return make_error(ErrorCode::kIo, "cannot write vault '" + path + "'");
  return {};
}

int evaluate(const RedactOptions& o, const hybrid::Redactor& redactor) {
  auto examples = hybrid::load_labeled_jsonl(o.eval_path);
  if (!examples) return report(examples.error());
  const auto start = std::chrono::steady_clock::now();
  auto result = hybrid::evaluate(redactor, *examples);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  size_t bytes = 0;
  for (const auto& example : *examples) bytes += example.text.size();
  std::printf("%s (%zu examples, name signals: %s)\n%s", o.eval_path.c_str(), result.examples,
              std::string(hybrid::name_signals_name(redactor.policy().name_signals)).c_str(),
              hybrid::format_report(result).c_str());
  std::printf("detection: %.1f ms, %.0f examples/s, %.1f KB/s\n", seconds * 1e3,
              seconds > 0 ? result.examples / seconds : 0.0,
              seconds > 0 ? bytes / 1024.0 / seconds : 0.0);
  int shown = 0;
  for (const auto& miss : result.misses) {
    if (shown++ >= o.show_misses) break;
    const auto& text = (*examples)[miss.example].text;
    std::printf("%s %s line %zu: [%s]\n", miss.false_positive ? "false positive" : "missed",
                std::string(hybrid::entity_type_name(miss.span.type)).c_str(), miss.example + 1,
                text.substr(miss.span.begin, miss.span.size()).c_str());
  }
  return 0;
}

Result<std::unique_ptr<hybrid::Redactor>> make_redactor(const RedactOptions& o) {
  EDGELM_TRY(auto policy, load_policy(o.policy_path));
  if (!o.name_signals.empty()) {
    EDGELM_TRY(policy.name_signals, hybrid::parse_name_signals(o.name_signals, "--name-signals"));
  }
  if (!o.name_model.empty()) policy.name_model = o.name_model;
  if (o.name_model_threshold) policy.name_model_threshold = *o.name_model_threshold;
  if (hybrid::uses_model(policy.name_signals) && policy.name_model.empty()) {
    return make_error(ErrorCode::kInvalidArgument,
                      "--name-signals " +
                          std::string(hybrid::name_signals_name(policy.name_signals)) +
                          " uses the model: give --name-model FILE.gguf (or name_model in the "
                          "policy)");
  }
  return hybrid::Redactor::create(policy);
}

int run(const RedactOptions& o) {
  if (!o.eval_path.empty()) {
    auto redactor = make_redactor(o);
    if (!redactor) return report(redactor.error());
    return evaluate(o, **redactor);
  }
  hybrid::Vault vault;
  bool have_vault = !o.vault_path.empty() && std::ifstream(o.vault_path).good();
  if (have_vault) {
    auto json = read_json(o.vault_path);
    if (!json) return report(json.error());
    auto loaded = hybrid::Vault::from_json(*json, o.vault_path);
    if (!loaded) return report(loaded.error());
    vault = std::move(*loaded);
  }
  auto text = read_file(o.input.empty() ? "-" : o.input, "input");
  if (!text) return report(text.error());
  if (o.restore) {
    if (!have_vault)
      return report(
          make_error(ErrorCode::kInvalidArgument, "--restore needs an existing --vault file"));
    std::string restored = vault.restore(*text);
    std::fwrite(restored.data(), 1, restored.size(), stdout);
    return 0;
  }
  auto redactor = make_redactor(o);
  if (!redactor) return report(redactor.error());

  auto result = (*redactor)->redact(*text, vault);
  if (!o.vault_path.empty()) {
    if (auto written = write_private(o.vault_path, vault.to_json().dump(2) + "\n"); !written) {
      return report(written.error());
    }
  }
  if (o.json) {
    nlohmann::json entities = nlohmann::json::array();
    for (const auto& e : result.entities) {
      entities.push_back({{"type", hybrid::entity_type_name(e.span.type)},
                          {"start", e.span.begin},
                          {"end", e.span.end},
                          {"action", hybrid::redaction_action_name(e.action)},
                          {"replacement", e.replacement}});
    }
    nlohmann::json out = {
        {"text", result.text}, {"entities", entities}, {"vault", vault.to_json()}};
    std::string dumped = out.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    std::fwrite(dumped.data(), 1, dumped.size(), stdout);
  } else {
    std::fwrite(result.text.data(), 1, result.text.size(), stdout);
  }
  return 0;
}

}  // namespace

void register_redact(CLI::App& app, int& exit_code) {
  auto options = std::make_shared<RedactOptions>();
  CLI::App* cmd = app.add_subcommand("redact", "replace personal data in text with placeholders");
  cmd->add_option("-i,--input", options->input, "text file (default: stdin)");
  cmd->add_option(
      "--policy", options->policy_path,
      "redaction policy JSON: {\"default\": \"placeholder\", \"entities\": {\"DATE\": \"keep\"}, "
      "\"phone_regions\": [\"US\", \"DE\"]}; actions: placeholder, mask, hash, drop, keep");
  cmd->add_option(
      "--vault", options->vault_path,
      "placeholder vault JSON: continued if it exists, written after redaction (mode 0600)");
  cmd->add_flag("--json", options->json, "print text, entities and vault as JSON");
  cmd->add_flag("--restore", options->restore,
                "replace the vault's placeholders in the input by their values");
  cmd->add_option("--eval", options->eval_path,
                  "print precision/recall/F1 per type on a labeled JSONL set");
  cmd->add_option("--show-misses", options->show_misses, "with --eval: list this many misses");
  cmd->add_option("--name-signals", options->name_signals,
                  "evidence for person/organization/location names: context, gazetteer, both "
                  "(default), model, all (model ones need --name-model)");
  cmd->add_option("--name-model", options->name_model,
                  "GGUF model that scores capitalized words as names (name signals model, all)");
  cmd->add_option("--name-model-threshold", options->name_model_threshold,
                  "minimum name affinity in nats for the model to tag a word PERSON");
  cmd->callback([options, &exit_code] { exit_code = run(*options); });
}

}  // namespace edgelm::cli
