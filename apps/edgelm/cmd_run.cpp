// edgelm run: complete a prompt, streaming the text as it is generated.
#include <cstdio>
#include <fstream>
#include <sstream>

#include "cli.h"
#include "edgelm/session.h"

namespace edgelm::cli {
namespace {

struct RunOptions {
  ModelOptions model;
  SamplingOptions sampling;
  std::string prompt;
  std::string prompt_file;
  int32_t n_predict = 128;
  std::vector<std::string> stop;
  bool ignore_eos = false;
  bool no_stats = false;
  std::string onnx_model;  // --onnx: run an ONNX causal LM instead of a GGUF model
  std::string vocab;       // --vocab: GGUF whose tokenizer the ONNX model uses
};

void print_stats(const runtime::GenerateResult& r) {
  std::fprintf(
      stderr,
      "\n\nedgelm: prompt %d tokens (%d cached) in %.1f ms (%.1f tokens/s), "
      "generated %zu tokens in %.1f ms (%.2f tokens/s), time to first token %.1f ms, finish: %s\n",
      r.n_prompt, r.n_prompt_cached, r.prompt_ms, r.prompt_tokens_per_second(), r.tokens.size(),
      r.generate_ms, r.generate_tokens_per_second(), r.ttft_ms,
      std::string(runtime::finish_reason_name(r.finish)).c_str());
}

int run(const RunOptions& o) {
  auto config = o.model.resolve_config();
  if (!config) return report(config.error());
  std::string prompt = o.prompt;
  if (!o.prompt_file.empty()) {
    std::ifstream in(o.prompt_file, std::ios::binary);
    if (!in)
      return report(make_error(ErrorCode::kIo, "cannot read prompt file '" + o.prompt_file + "'"));
    std::ostringstream text;
    text << in.rdbuf();
    prompt = text.str();
  }
  if (!o.onnx_model.empty()) {
    if (o.vocab.empty()) {
      return report(make_error(ErrorCode::kInvalidArgument,
                               "--onnx needs --vocab VOCAB.gguf for the tokenizer"));
    }
    return run_onnx_causal_lm(o.onnx_model, o.vocab, prompt, o.n_predict, o.sampling.params,
                              *config);
  }
  auto engine = o.model.load_engine(*config);
  if (!engine) return report(engine.error());
  auto tokens = (*engine)->tokenize(prompt);
  if (!tokens) return report(tokens.error());
  auto session = runtime::Session::create(**engine);
  if (!session) return report(session.error());

  runtime::GenerateOptions options;
  options.max_tokens = o.n_predict;
  options.stop = o.stop;
  options.sampling = o.sampling.params;
  options.ignore_eos = o.ignore_eos;
  std::fwrite(prompt.data(), 1, prompt.size(), stdout);
  std::fflush(stdout);
  auto result = (*session)->generate(*tokens, options, [](std::string_view text) {
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
    return true;
  });
  if (!result) return report(result.error());
  std::fputc('\n', stdout);
  std::fflush(stdout);
  if (!o.no_stats) print_stats(*result);
  if (result->finish == runtime::FinishReason::kContextFull) {
    std::fprintf(
        stderr,
        "edgelm: context full after %zu tokens (n_ctx %d): raise --ctx or use --context-shift\n",
        result->tokens.size(), (*session)->n_ctx());
    return kExitFailure;
  }
  return 0;
}

}  // namespace

void register_run(CLI::App& app, int& exit_code) {
  auto options = std::make_shared<RunOptions>();
  CLI::App* cmd = app.add_subcommand("run", "complete a prompt, streaming the text");
  options->model.add_to(*cmd);
  options->sampling.add_to(*cmd);
  auto* prompt = cmd->add_option("-p,--prompt", options->prompt, "prompt text");
  cmd->add_option("-f,--file", options->prompt_file, "read the prompt from a file")
      ->excludes(prompt);
  cmd->add_option("-n,--n-predict", options->n_predict,
                  "tokens to generate (-1: until end or full context)")
      ->capture_default_str();
  cmd->add_option("--stop", options->stop, "stop string (repeatable); not printed");
  cmd->add_flag("--ignore-eos", options->ignore_eos,
                "keep generating past end-of-generation tokens");
  cmd->add_flag("--no-stats", options->no_stats, "do not print timing statistics");
  cmd->add_option("--onnx", options->onnx_model,
                  "run an ONNX causal language model (input_ids -> logits)");
  cmd->add_option("--vocab", options->vocab, "GGUF vocabulary or tokenizer.json of the ONNX model");
  cmd->callback([options, &exit_code] { exit_code = run(*options); });
}

}  // namespace edgelm::cli
