// An Engine is a loaded model with its tokenizer and chat template: what every app starts from.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "edgelm/chat_template.h"
#include "edgelm/config.h"
#include "edgelm/error.h"
#include "edgelm/model.h"
#include "edgelm/tokenizer.h"

namespace edgelm::runtime {

// The model to use when none is named: the first of $EDGELM_MODEL, ./models/, ../shared/models/
// that exists (relative to the working directory). A directory yields its first .gguf file, in
// path order, that holds tensors and loads; the error says how to point at a model otherwise.
Result<std::filesystem::path> find_default_model();
// Same search over explicit candidates (tests).
Result<std::filesystem::path> find_model_in(const std::vector<std::filesystem::path>& candidates);

class Engine {
 public:
  static Result<std::unique_ptr<Engine>> load(const std::filesystem::path& path, const Config& config);

  const model::Model& model() const { return *model_; }
  const tokenizer::Tokenizer& tokenizer() const { return *tokenizer_; }
  const chat::ChatTemplate& chat_template() const { return *chat_template_; }
  const Config& config() const { return config_; }
  const std::filesystem::path& path() const { return path_; }

  // Tokens for a raw prompt: BOS/EOS as the model's tokenizer asks, special-token text parsed.
  Result<std::vector<int32_t>> tokenize(std::string_view text, bool add_special = true) const;
  // Renders `messages` (OpenAI-style [{role, content}]) with the model's chat template.
  Result<std::string> render_chat(const nlohmann::ordered_json& messages, bool add_generation_prompt) const;

 private:
  Engine() = default;
  std::filesystem::path path_;
  Config config_;
  std::unique_ptr<model::Model> model_;
  std::unique_ptr<tokenizer::Tokenizer> tokenizer_;
  std::optional<chat::ChatTemplate> chat_template_;
};

}  // namespace edgelm::runtime
