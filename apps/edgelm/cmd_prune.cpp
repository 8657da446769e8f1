// edgelm prune: remove FFN channels and attention heads (or zero small weights), reporting the
// size and, with --bench, the decode speed before and after.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "cli.h"
#include "edgelm/bench.h"
#include "edgelm/eval.h"
#include "edgelm/imatrix.h"
#include "edgelm/prune.h"

namespace edgelm::cli {
namespace {

struct PruneCliOptions {
  std::string input;
  std::string output;
  double ffn_ratio = 0.0;
  double head_ratio = 0.0;
  double sparsity = 0.0;
  std::string calib_file;
  std::string imatrix_file;
  int32_t calib_window = 512;
  bool bench = false;
  std::optional<int> threads;
  std::string config_path;
};

Result<tools::ImportanceMatrix> calibrate(const PruneCliOptions& o, const Config& config) {
  std::ifstream in(o.calib_file, std::ios::binary);
  if (!in) return make_error(ErrorCode::kIo, "cannot read calibration text '" + o.calib_file + "'");
  std::ostringstream text;
  text << in.rdbuf();
  EDGELM_TRY(auto engine, runtime::Engine::load(o.input, config));
  EDGELM_TRY(auto tokens, tools::tokenize_text(engine->tokenizer(), text.str()));
  tools::ImatrixOptions options;
  options.n_ctx = o.calib_window;
  options.n_threads = config.resolved_threads();
  return tools::collect_imatrix(engine->model(), tokens, options);
}

// Decode tokens/s of a model file (one thread, short runs: a before/after comparison).
Result<double> decode_speed(const std::string& path) {
  tools::BenchOptions options;
  options.model = path;
  options.n_prompt = 0;
  options.n_gen = 64;
  options.repetitions = 3;
  options.measure_bandwidth = false;
  EDGELM_TRY(tools::BenchReport report, tools::run_bench(options));
  return report.results.at(0).tg_tokens_per_second.mean;
}

int prune(const PruneCliOptions& o) {
  if (!o.calib_file.empty() && !o.imatrix_file.empty()) {
    return report(make_error(ErrorCode::kInvalidArgument, "give --calib or --imatrix, not both"));
  }
  auto loaded = config_from_file(o.config_path);
  if (!loaded) return report(loaded.error());
  Config config = *loaded;
  if (o.threads) config.threads = *o.threads;
  config.quant_bits = 0;  // prune the weights as stored
  std::optional<tools::ImportanceMatrix> imatrix;
  if (!o.calib_file.empty()) {
    auto collected = calibrate(o, config);
    if (!collected) return report(collected.error());
    imatrix = std::move(*collected);
  } else if (!o.imatrix_file.empty()) {
    auto loaded = tools::load_imatrix(o.imatrix_file);
    if (!loaded) return report(loaded.error());
    imatrix = std::move(*loaded);
  }
  auto in = format::GgufFile::open(o.input);
  if (!in) return report(in.error());
  tools::PruneOptions options;
  options.ffn_ratio = o.ffn_ratio;
  options.head_ratio = o.head_ratio;
  options.sparsity = o.sparsity;
  options.imatrix = imatrix ? &*imatrix : nullptr;
  auto result = tools::prune_model(*in, o.output, options);
  if (!result) return report(result.error());
  const tools::PruneReport& r = *result;
  std::fprintf(stderr,
               "edgelm: %s -> %s (%s scores)\n"
               "  n_ff %d -> %d, heads %d -> %d, kv heads %d -> %d, weights zeroed %llu\n"
               "  parameters %.3f M -> %.3f M, tensor data %.3f MiB -> %.3f MiB\n",
               o.input.c_str(), o.output.c_str(),
               r.activation_aware ? "activation-aware" : "magnitude", r.n_ff_before, r.n_ff_after,
               r.n_head_before, r.n_head_after, r.n_head_kv_before, r.n_head_kv_after,
               static_cast<unsigned long long>(r.weights_zeroed), r.params_before / 1e6,
               r.params_after / 1e6, r.bytes_before / 1048576.0, r.bytes_after / 1048576.0);
  if (o.bench) {
    auto before = decode_speed(o.input);
    if (!before) return report(before.error());
    auto after = decode_speed(o.output);
    if (!after) return report(after.error());
    std::fprintf(stderr, "  decode (1 thread) %.1f -> %.1f tokens/s (%.2fx)\n", *before, *after,
                 *after / *before);
  }
  return 0;
}

}  // namespace

void register_prune(CLI::App& app, int& exit_code) {
  auto o = std::make_shared<PruneCliOptions>();
  CLI::App* cmd =
      app.add_subcommand("prune", "remove FFN channels and attention heads (structured pruning)");
  cmd->add_option("input", o->input, "input GGUF")->required();
  cmd->add_option("output", o->output, "output GGUF")->required();
  cmd->add_option("--ffn-ratio", o->ffn_ratio, "share of FFN channels removed per layer")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 0.99));
  cmd->add_option("--head-ratio", o->head_ratio,
                  "share of KV head groups (each with its query heads) removed per layer")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 0.99));
  cmd->add_option("--sparsity", o->sparsity,
                  "unstructured: share of each weight row zeroed (dense storage)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 0.99));
  cmd->add_option("--calib", o->calib_file,
                  "calibration text: rank by activations instead of weight magnitude");
  cmd->add_option("--calib-window", o->calib_window, "calibration window in tokens")
      ->capture_default_str();
  cmd->add_option("--imatrix", o->imatrix_file, "importance matrix (edgelm imatrix) to rank by");
  cmd->add_flag("--bench", o->bench, "measure decode speed before and after");
  cmd->add_option("-t,--threads", o->threads, "threads (default: all cores)")
      ->check(CLI::Range(1, 1024));
  add_config_option(*cmd, o->config_path);
  cmd->callback([o, &exit_code] { exit_code = prune(*o); });
}

}  // namespace edgelm::cli
