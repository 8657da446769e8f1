// edgelm quantize: rewrite a GGUF model with its weight matrices in a smaller type.
#include <unistd.h>

#include <cstdio>

#include "cli.h"
#include "edgelm/imatrix.h"
#include "edgelm/quantize.h"

namespace edgelm::cli {
namespace {

struct QuantizeCliOptions {
  std::string input;
  std::string output;
  std::string type = "q8_0";
  std::vector<std::string> keep_f16;
  std::string imatrix_file;
  int threads = 0;
  std::string config_path;
};

int quantize(const QuantizeCliOptions& o) {
  auto loaded = config_from_file(o.config_path);
  if (!loaded) return report(loaded.error());
  Config config = *loaded;
  if (o.threads > 0) config.threads = o.threads;
  auto recipe = tools::parse_quant_recipe(o.type);
  if (!recipe) return report(recipe.error());
  auto in = format::GgufFile::open(o.input);
  if (!in) return report(in.error());

  std::optional<tools::ImportanceMatrix> imatrix;
  if (!o.imatrix_file.empty()) {
    auto loaded = tools::load_imatrix(o.imatrix_file);
    if (!loaded) return report(loaded.error());
    imatrix = std::move(*loaded);
  }

  tools::QuantizeOptions options;
  options.recipe = *recipe;
  options.imatrix = imatrix ? &*imatrix : nullptr;
  options.keep_f16 = o.keep_f16;
  options.n_threads = config.resolved_threads();
  const bool tty = isatty(STDERR_FILENO);
  if (tty) {
    options.progress = [](size_t done, size_t total) {
      const int width = 40;
      const int filled = static_cast<int>(width * done / std::max<size_t>(total, 1));
      std::fprintf(stderr, "\r[%.*s%*s] %zu/%zu tensors", filled, "########################################",
                   width - filled, "", done, total);
      if (done == total) std::fputc('\n', stderr);
    };
  }
  auto result = tools::quantize_model(*in, o.output, options);
  if (!result) return report(result.error());
  std::fprintf(stderr, "edgelm: %s -> %s (%s): %.2f MiB -> %.2f MiB\n", o.input.c_str(), o.output.c_str(),
               recipe->name.c_str(), result->bytes_before / 1048576.0,
               result->bytes_after / 1048576.0);
  return 0;
}

}  // namespace

void register_quantize(CLI::App& app, int& exit_code) {
  auto o = std::make_shared<QuantizeCliOptions>();
  CLI::App* cmd = app.add_subcommand("quantize", "quantize a GGUF model's weight matrices");
  cmd->add_option("input", o->input, "input GGUF")->required();
  cmd->add_option("output", o->output, "output GGUF")->required();
  cmd->add_option("--type", o->type, "target: q8_0, q4_0, q4_1, q5_0, q5_1, q2_k..q6_k, q4_k_m, q5_k_m, tq1_0, tq2_0, f16, bf16")
      ->capture_default_str();
  cmd->add_option("--keep-f16", o->keep_f16, "tensors (name substrings) kept in F16, e.g. output,token_embd")
      ->delimiter(',');
  cmd->add_option("--imatrix", o->imatrix_file,
                  "importance matrix from `edgelm imatrix`: weights the K-quants' rounding error");
  cmd->add_option("-t,--threads", o->threads, "threads (default: all cores)");
  add_config_option(*cmd, o->config_path);
  cmd->callback([o, &exit_code] { exit_code = quantize(*o); });
}

}  // namespace edgelm::cli
