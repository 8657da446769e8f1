// edgelm synth: write a random-weight model with the exact shapes of a real one (for benchmarks).
#include <cstdio>

#include "cli.h"
#include "edgelm/synth.h"

namespace edgelm::cli {

void register_synth(CLI::App& app, int& exit_code) {
  auto o = std::make_shared<tools::SynthOptions>();
  auto out = std::make_shared<std::string>();
  auto threads = std::make_shared<int>(0);
  std::string shapes;
  for (const auto& s : tools::known_shapes()) shapes += (shapes.empty() ? "" : ", ") + s.name;
  CLI::App* cmd = app.add_subcommand("synth", "write a random-weight model of a real model's shape");
  cmd->add_option("--shape", o->shape, "one of: " + shapes)->required();
  cmd->add_option("--type", o->recipe, "weight type: q8_0, q4_0, q4_k_m, f16, ...")->capture_default_str();
  cmd->add_option("--vocab", o->vocab, "vocab-only GGUF whose tokenizer to embed (sets the vocabulary size)");
  cmd->add_option("--seed", o->seed, "random seed")->capture_default_str();
  cmd->add_option("-t,--threads", *threads, "threads (default: all cores)");
  cmd->add_option("-o,--output", *out, "output GGUF")->required();
  cmd->callback([=, &exit_code] {
    Config config;
    config.threads = *threads;
    o->n_threads = config.resolved_threads();
    auto size = tools::synthesize_model(*o, *out);
    if (!size) {
      exit_code = report(size.error());
      return;
    }
    std::fprintf(stderr, "edgelm: wrote %s (%s, %s, %.1f MiB)\n", out->c_str(), o->shape.c_str(), o->recipe.c_str(),
                 *size / 1048576.0);
  });
}

}  // namespace edgelm::cli
