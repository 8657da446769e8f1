// edgelm imatrix: collect per-column activation statistics of every weight matrix over a text,
// for importance-weighted quantization (quantize --imatrix) and activation-aware pruning.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "cli.h"
#include "edgelm/eval.h"
#include "edgelm/imatrix.h"

namespace edgelm::cli {
namespace {

struct ImatrixCliOptions {
  ModelOptions model;
  std::string text_file;
  std::string output = "imatrix.gguf";
  int32_t window = 512;
};

int imatrix(const ImatrixCliOptions& o) {
  auto config = o.model.resolve_config();
  if (!config) return report(config.error());
  std::ifstream in(o.text_file, std::ios::binary);
  if (!in) return report(make_error(ErrorCode::kIo, "cannot read text file '" + o.text_file + "'"));
  std::ostringstream text;
  text << in.rdbuf();
  auto engine = o.model.load_engine(*config);
  if (!engine) return report(engine.error());
  auto tokens = tools::tokenize_text((*engine)->tokenizer(), text.str());
  if (!tokens) return report(tokens.error());
  tools::ImatrixOptions options;
  options.n_ctx = o.window;
  options.n_threads = config->resolved_threads();
  options.n_batch = config->batch;
  options.kv_type = config->kv_type;
  auto collected = tools::collect_imatrix((*engine)->model(), *tokens, options);
  if (!collected) return report(collected.error());
  collected->model_name = (*engine)->path().filename().string();
  collected->dataset = std::filesystem::path(o.text_file).filename().string();
  if (auto saved = tools::save_imatrix(*collected, o.output); !saved) return report(saved.error());
  std::fprintf(stderr, "edgelm: %zu weight matrices, %lld tokens -> %s\n",
               collected->entries.size(), static_cast<long long>(collected->n_tokens),
               o.output.c_str());
  return 0;
}

}  // namespace

void register_imatrix(CLI::App& app, int& exit_code) {
  auto o = std::make_shared<ImatrixCliOptions>();
  CLI::App* cmd = app.add_subcommand(
      "imatrix", "collect an importance matrix (activation statistics) over a text");
  o->model.add_to(*cmd);
  cmd->add_option("-f,--file", o->text_file, "calibration text file")->required();
  cmd->add_option("-o,--output", o->output, "output imatrix GGUF")->capture_default_str();
  cmd->add_option("--window", o->window, "tokens per window (each from an empty cache)")
      ->capture_default_str()
      ->check(CLI::Range(1, 1 << 20));
  cmd->callback([o, &exit_code] { exit_code = imatrix(*o); });
}

}  // namespace edgelm::cli
