// Shared pieces of the edgelm command-line tool: each command registers its options on CLI11 and
// returns a process exit code.
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <optional>
#include <string>

#include "edgelm/config.h"
#include "edgelm/engine.h"
#include "edgelm/error.h"
#include "edgelm/sampler.h"

namespace edgelm::cli {

// Exit codes: 0 success, 1 runtime failure, 2 bad usage or input (CLI11 uses 105+ for parse
// errors).
constexpr int kExitFailure = 1;
constexpr int kExitBadInput = 2;

// Prints "edgelm: <error>" to stderr and returns the exit code that fits its kind.
int report(const Error& error);
// A whole file ("-": standard input); the error names `what` and the path.
Result<std::string> read_file(const std::string& path, const char* what);

// Options every model-running command takes: model path, config file and per-flag overrides.
struct ModelOptions {
  std::string model;        // empty: the default model
  std::string config_path;  // --config edgelm.json
  std::optional<int> threads;
  std::optional<int32_t> ctx;
  std::optional<int32_t> batch;
  std::optional<std::string> kv_type;  // --kv-type f16|f32|q8_0
  bool no_mmap = false;
  bool no_repack = false;
  bool context_shift = false;

  void add_to(CLI::App& app);
  // The config file (if any) with command-line overrides applied.
  Result<Config> resolve_config() const;
  Result<std::unique_ptr<runtime::Engine>> load_engine(const Config& config) const;
};

// Sampling flags shared by run and chat.
struct SamplingOptions {
  runtime::SamplerParams params;
  void add_to(CLI::App& app);
};

void add_config_option(CLI::App& app, std::string& path);
// --kv-type f16|f32|q8_0 (the KV cache element type) into `kv_type`.
void add_kv_type_option(CLI::App& app, std::optional<std::string>& kv_type);
// The config in `path`, or the defaults when path is empty (no --config given).
Result<Config> config_from_file(const std::string& path);

void register_run(CLI::App& app, int& exit_code);
void register_chat(CLI::App& app, int& exit_code);
void register_inspect(CLI::App& app, int& exit_code);
void register_quantize(CLI::App& app, int& exit_code);
void register_synth(CLI::App& app, int& exit_code);
void register_bench(CLI::App& app, int& exit_code);
void register_keygen(CLI::App& app, int& exit_code);
void register_sign(CLI::App& app, int& exit_code);
void register_verify(CLI::App& app, int& exit_code);
void register_encrypt(CLI::App& app, int& exit_code);
void register_update(CLI::App& app, int& exit_code);
void register_publish(CLI::App& app, int& exit_code);
void register_eval(CLI::App& app, int& exit_code);
void register_prune(CLI::App& app, int& exit_code);
void register_imatrix(CLI::App& app, int& exit_code);
void register_onnx(CLI::App& app, int& exit_code);
void register_redact(CLI::App& app, int& exit_code);
void register_serve(CLI::App& app, int& exit_code);
void register_calibrate(CLI::App& app, int& exit_code);

// edgelm run --onnx: greedy/sampled generation with an ONNX causal LM (cmd_onnx.cpp).
int run_onnx_causal_lm(const std::string& model_path, const std::string& vocab_path,
                       const std::string& prompt, int n_predict,
                       const runtime::SamplerParams& sampling, const Config& config);

}  // namespace edgelm::cli
