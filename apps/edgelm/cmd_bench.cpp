// edgelm bench: llama-bench-style speed, latency, load-time and memory figures for a model.
#include <cstdio>

#include "cli.h"
#include "edgelm/bench.h"

namespace edgelm::cli {

void register_bench(CLI::App& app, int& exit_code) {
  auto o = std::make_shared<tools::BenchOptions>();
  auto model = std::make_shared<std::string>();
  auto as_json = std::make_shared<bool>(false);
  auto as_csv = std::make_shared<bool>(false);
  auto no_mmap = std::make_shared<bool>(false);
  auto no_repack = std::make_shared<bool>(false);
  auto no_bandwidth = std::make_shared<bool>(false);
  auto config_path = std::make_shared<std::string>();
  auto kv_type = std::make_shared<std::optional<std::string>>();
  CLI::App* cmd = app.add_subcommand("bench", "measure prompt/decode speed, latency, load time and memory");
  cmd->add_option("-m,--model", *model, "GGUF model (default: the default model)");
  cmd->add_option("-t,--threads", o->threads, "thread counts, e.g. 1,2")->delimiter(',')->capture_default_str();
  cmd->add_option("-p,--n-prompt", o->n_prompt, "prompt tokens (0: skip)")->capture_default_str();
  cmd->add_option("-n,--n-gen", o->n_gen, "generated tokens (0: skip)")->capture_default_str();
  cmd->add_option("-r,--repetitions", o->repetitions, "repetitions of each test")->capture_default_str();
  cmd->add_flag("--no-mmap", *no_mmap, "read the model into memory");
  cmd->add_flag("--no-repack", *no_repack, "multiply the weights in their file layout");
  cmd->add_flag("--no-bandwidth", *no_bandwidth, "skip the memory-bandwidth measurement");
  auto* json_flag = cmd->add_flag("--json", *as_json, "JSON output");
  cmd->add_flag("--csv", *as_csv, "CSV output")->excludes(json_flag);
  add_config_option(*cmd, *config_path);
  add_kv_type_option(*cmd, *kv_type);
  cmd->callback([=, &exit_code] {
    if (!config_path->empty()) {
      auto config = load_config(*config_path);
      if (!config) {
        exit_code = report(config.error());
        return;
      }
      o->use_mmap = config->use_mmap;
      o->repack = config->repack;
      o->kv_type = config->kv_type;
    }
    if (*kv_type) {
      auto type = parse_kv_type(**kv_type, "--kv-type");
      if (!type) {
        exit_code = report(type.error());
        return;
      }
      o->kv_type = *type;
    }
    if (*no_mmap) o->use_mmap = false;
    if (*no_repack) o->repack = false;
    o->measure_bandwidth = !*no_bandwidth;
    if (model->empty()) {
      auto found = runtime::find_default_model();
      if (!found) {
        exit_code = report(found.error());
        return;
      }
      o->model = *found;
    } else {
      o->model = *model;
    }
    auto result = tools::run_bench(*o);
    if (!result) {
      exit_code = report(result.error());
      return;
    }
    if (*as_json) std::printf("%s\n", result->to_json().dump(2).c_str());
    else if (*as_csv) std::printf("%s", result->to_csv().c_str());
    else std::printf("%s", result->to_table().c_str());
  });
}

}  // namespace edgelm::cli
