#include "edgelm/engine.h"

#include <algorithm>
#include <cstdlib>

#include "edgelm/gguf.h"

namespace edgelm::runtime {
namespace fs = std::filesystem;
namespace {

// A GGUF that holds tensors and opens cleanly (vocab-only and unsupported files are skipped).
bool is_runnable_model(const fs::path& path) {
  auto file = format::GgufFile::open(path);
  return file && !file->tensors().empty();
}

Result<fs::path> model_in_directory(const fs::path& dir) {
  std::vector<fs::path> files;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, fs::directory_options::skip_permission_denied, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_regular_file(ec) && it->path().extension() == ".gguf") files.push_back(it->path());
  }
  std::sort(files.begin(), files.end());
  for (const auto& f : files) {
    if (is_runnable_model(f)) return f;
  }
  return make_error(ErrorCode::kNotFound, "no loadable .gguf model with tensors in '" + dir.string() + "'");
}

}  // namespace

Result<fs::path> find_model_in(const std::vector<fs::path>& candidates) {
  std::string tried;
  for (const auto& c : candidates) {
    std::error_code ec;
    tried += "\n  " + c.string();
    if (fs::is_regular_file(c, ec)) return c;
    if (fs::is_directory(c, ec)) {
      auto found = model_in_directory(c);
      if (found) return found;
      tried += " (" + found.error().message + ")";
    } else {
      tried += " (does not exist)";
    }
  }
  return make_error(ErrorCode::kNotFound,
                    "no model found; tried:" + tried +
                        "\nname one with -m MODEL.gguf, or set EDGELM_MODEL to a .gguf file or a folder of them");
}

Result<fs::path> find_default_model() {
  std::vector<fs::path> candidates;
  if (const char* env = std::getenv("EDGELM_MODEL"); env != nullptr && *env != '\0') {
    candidates.emplace_back(env);
  }
  candidates.emplace_back("models");
  candidates.emplace_back(fs::path("..") / "shared" / "models");
  return find_model_in(candidates);
}

Result<std::unique_ptr<Engine>> Engine::load(const fs::path& path, const Config& config) {
  std::unique_ptr<Engine> engine(new Engine());
  engine->path_ = path;
  engine->config_ = config;
  model::LoadOptions load_options;
  load_options.use_mmap = config.use_mmap;
  EDGELM_TRY(engine->model_, model::Model::load(path, load_options));
  EDGELM_TRY(engine->tokenizer_, tokenizer::Tokenizer::from_gguf(engine->model_->gguf()));
  EDGELM_TRY(std::string source, engine->model_->gguf().get_string_or("tokenizer.chat_template", ""));
  const auto& tok = *engine->tokenizer_;
  const bool has_chatml = tok.find_token("<|im_start|>") >= 0 && tok.find_token("<|im_end|>") >= 0;
  EDGELM_TRY(engine->chat_template_, chat::ChatTemplate::for_model(source, has_chatml));
  return engine;
}

Result<std::vector<int32_t>> Engine::tokenize(std::string_view text, bool add_special) const {
  return tokenizer_->encode(text, add_special, /*parse_special=*/true);
}

Result<std::string> Engine::render_chat(const nlohmann::json& messages, bool add_generation_prompt) const {
  const auto& tok = *tokenizer_;
  nlohmann::json extra = {
      {"bos_token", tok.bos() >= 0 ? tok.token_to_piece(tok.bos(), true) : ""},
      {"eos_token", tok.eos() >= 0 ? tok.token_to_piece(tok.eos(), true) : ""},
  };
  return chat_template_->apply(messages, add_generation_prompt, extra);
}

}  // namespace edgelm::runtime
