// edgelm chat: an interactive conversation that uses the model's chat template.
#include <unistd.h>

#include <cstdio>
#include <iostream>

#include "cli.h"
#include "edgelm/session.h"

namespace edgelm::cli {
namespace {

struct ChatOptions {
  ModelOptions model;
  SamplingOptions sampling;
  std::string system;
  std::string prompt;  // one message, answered, then exit (non-interactive use)
  int32_t n_predict = -1;
  bool show_template = false;
};

// Tokens of the rendered conversation; BOS is added only when the template did not write it.
Result<std::vector<int32_t>> chat_tokens(const runtime::Engine& engine, const std::string& rendered) {
  const auto& tok = engine.tokenizer();
  const std::string bos = tok.bos() >= 0 ? tok.token_to_piece(tok.bos(), true) : "";
  const bool template_wrote_bos = !bos.empty() && rendered.rfind(bos, 0) == 0;
  return engine.tokenize(rendered, /*add_special=*/!template_wrote_bos);
}

int chat(const ChatOptions& o) {
  auto config = o.model.resolve_config();
  if (!config) return report(config.error());
  auto engine = o.model.load_engine(*config);
  if (!engine) return report(engine.error());
  auto session = runtime::Session::create(**engine);
  if (!session) return report(session.error());

  nlohmann::ordered_json messages = nlohmann::ordered_json::array();
  if (!o.system.empty()) messages.push_back({{"role", "system"}, {"content", o.system}});
  const bool interactive = o.prompt.empty();
  const bool tty = isatty(STDIN_FILENO);
  if (interactive && tty) std::fprintf(stderr, "edgelm chat: type a message, /reset to start over, /exit to quit\n");

  runtime::GenerateOptions options;
  options.max_tokens = o.n_predict;
  options.sampling = o.sampling.params;
  for (;;) {
    std::string line;
    if (interactive) {
      if (tty) std::fputs("> ", stderr);
      if (!std::getline(std::cin, line) || line == "/exit") break;
      if (line == "/reset") {
        messages.erase(messages.begin() + (o.system.empty() ? 0 : 1), messages.end());
        (*session)->reset();
        continue;
      }
      if (line.empty()) continue;
    } else {
      line = o.prompt;
    }
    messages.push_back({{"role", "user"}, {"content", line}});
    auto rendered = (*engine)->render_chat(messages, /*add_generation_prompt=*/true);
    if (!rendered) return report(rendered.error());
    if (o.show_template) std::fprintf(stderr, "[template]\n%s[/template]\n", rendered->c_str());
    auto tokens = chat_tokens(**engine, *rendered);
    if (!tokens) return report(tokens.error());
    auto result = (*session)->generate(*tokens, options, [](std::string_view text) {
      std::fwrite(text.data(), 1, text.size(), stdout);
      std::fflush(stdout);
      return true;
    });
    if (!result) return report(result.error());
    std::fputc('\n', stdout);
    std::fflush(stdout);
    messages.push_back({{"role", "assistant"}, {"content", result->text}});
    if (result->finish == runtime::FinishReason::kContextFull) {
      std::fprintf(stderr, "edgelm: context full (n_ctx %d): /reset, raise --ctx or use --context-shift\n",
                   (*session)->n_ctx());
    }
    if (!interactive) break;
  }
  return 0;
}

}  // namespace

void register_chat(CLI::App& app, int& exit_code) {
  auto options = std::make_shared<ChatOptions>();
  CLI::App* cmd = app.add_subcommand("chat", "interactive chat using the model's chat template");
  options->model.add_to(*cmd);
  options->sampling.add_to(*cmd);
  cmd->add_option("--system", options->system, "system message");
  cmd->add_option("-p,--prompt", options->prompt, "answer this one message and exit");
  cmd->add_option("-n,--n-predict", options->n_predict, "max tokens per answer (-1: until end of turn)")
      ->capture_default_str();
  cmd->add_flag("--show-template", options->show_template, "print the rendered prompt to stderr");
  cmd->callback([options, &exit_code] { exit_code = chat(*options); });
}

}  // namespace edgelm::cli
