// edgelm: run, inspect and chat with small language models on the CPU.
#include <CLI/CLI.hpp>

#include "cli.h"

int main(int argc, char** argv) {
  CLI::App app{"edgelm: a privacy-first runtime for small language models on edge CPUs"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "edgelm 0.1.0");
  int exit_code = 0;
  edgelm::cli::register_run(app, exit_code);
  edgelm::cli::register_chat(app, exit_code);
  edgelm::cli::register_inspect(app, exit_code);
  edgelm::cli::register_quantize(app, exit_code);
  edgelm::cli::register_synth(app, exit_code);
  edgelm::cli::register_bench(app, exit_code);
  edgelm::cli::register_keygen(app, exit_code);
  edgelm::cli::register_sign(app, exit_code);
  edgelm::cli::register_verify(app, exit_code);
  edgelm::cli::register_encrypt(app, exit_code);
  edgelm::cli::register_update(app, exit_code);
  edgelm::cli::register_publish(app, exit_code);
  edgelm::cli::register_eval(app, exit_code);
  edgelm::cli::register_prune(app, exit_code);
  edgelm::cli::register_imatrix(app, exit_code);
  edgelm::cli::register_onnx(app, exit_code);
  edgelm::cli::register_redact(app, exit_code);
  edgelm::cli::register_serve(app, exit_code);
  edgelm::cli::register_calibrate(app, exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return exit_code;
}
