#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include "cli.h"

namespace edgelm::cli {

Result<std::string> read_file(const std::string& path, const char* what) {
  std::ostringstream text;
  if (path == "-") {
    text << std::cin.rdbuf();
    return text.str();
  }
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return make_error(ErrorCode::kIo, std::string("cannot read ") + what + " '" + path + "'");
  text << in.rdbuf();
  return text.str();
}

int report(const Error& error) {
  std::fprintf(stderr, "edgelm: %s\n", error.to_string().c_str());
  switch (error.code) {
    case ErrorCode::kInvalidArgument:
    case ErrorCode::kInvalidFormat:
    case ErrorCode::kUnsupported:
    case ErrorCode::kNotFound:
    case ErrorCode::kOutOfRange:
    case ErrorCode::kSecurity:
      return kExitBadInput;
    default:
      return kExitFailure;
  }
}

void add_config_option(CLI::App& app, std::string& path) {
  app.add_option(
      "--config", path,
      "JSON config, e.g. {\"use_mmap\": true, \"threads\": 2}; keys: " + config_keys_help());
}

void add_kv_type_option(CLI::App& app, std::optional<std::string>& kv_type) {
  app.add_option(
         "--kv-type", kv_type,
         "KV cache element type: f16 (default; half the memory of f32), f32, or q8_0 (34 bytes "
         "per 32 values; needs head_dim % 32 == 0) (config key kv_type)")
      ->check(CLI::IsMember({"f16", "f32", "q8_0"}));
}

void ModelOptions::add_to(CLI::App& app) {
  app.add_option("-m,--model", model,
                 "GGUF model file (default: $EDGELM_MODEL, ./models/, ../shared/models/)");
  add_config_option(app, config_path);
  app.add_option("-t,--threads", threads, "threads (default: all cores)")
      ->check(CLI::Range(1, 1024));
  app.add_option("-c,--ctx", ctx, "context length in tokens (default: model's, at most 4096)")
      ->check(CLI::Range(1, 1 << 24));
  app.add_option("-b,--batch", batch, "prompt tokens per forward pass")
      ->check(CLI::Range(1, 1 << 16));
  add_kv_type_option(app, kv_type);
  app.add_flag("--no-mmap", no_mmap, "read the model into memory instead of mapping it");
  app.add_flag("--no-repack", no_repack,
               "multiply the weights in their file layout (no load-time copy; config key repack)");
  app.add_flag("--context-shift", context_shift,
               "when the context is full, drop old tokens and go on");
}

Result<Config> config_from_file(const std::string& path) {
  if (path.empty()) return Config{};
  return load_config(path);
}

Result<Config> ModelOptions::resolve_config() const {
  EDGELM_TRY(Config config, config_from_file(config_path));
  if (threads) config.threads = *threads;
  if (ctx) config.ctx = *ctx;
  if (batch) config.batch = *batch;
  if (kv_type) {
    EDGELM_TRY(config.kv_type, parse_kv_type(*kv_type, "--kv-type"));
  }
  if (no_mmap) config.use_mmap = false;
  if (no_repack) config.repack = false;
  if (context_shift) config.context_shift = true;
  return config;
}

Result<std::unique_ptr<runtime::Engine>> ModelOptions::load_engine(const Config& config) const {
  std::filesystem::path path = model;
  if (path.empty()) {
    EDGELM_TRY(path, runtime::find_default_model());
  }
  return runtime::Engine::load(path, config);
}

void SamplingOptions::add_to(CLI::App& app) {
  app.add_option("--temp", params.temperature, "temperature (0: greedy)")->capture_default_str();
  app.add_option("--top-k", params.top_k, "top-k (0: off)")->capture_default_str();
  app.add_option("--top-p", params.top_p, "nucleus sampling threshold (1: off)")
      ->capture_default_str();
  app.add_option("--min-p", params.min_p, "min-p threshold (0: off)")->capture_default_str();
  app.add_option("--typical", params.typical_p, "locally typical sampling (1: off)")
      ->capture_default_str();
  app.add_option("--repeat-penalty", params.repeat_penalty, "repetition penalty (1: off)")
      ->capture_default_str();
  app.add_option("--repeat-last-n", params.repeat_last_n, "tokens the penalties look back over")
      ->capture_default_str();
  app.add_option("--frequency-penalty", params.frequency_penalty)->capture_default_str();
  app.add_option("--presence-penalty", params.presence_penalty)->capture_default_str();
  app.add_option("-s,--seed", params.seed, "random seed")->capture_default_str();
}

}  // namespace edgelm::cli
