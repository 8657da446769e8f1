// Chat templates: turning a conversation into the prompt text a model was trained on, with the
// model's own Jinja template (tokenizer.chat_template) or a built-in fallback.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "edgelm/error.h"
#include "edgelm/jinja.h"

namespace edgelm::chat {

struct ChatMessage {
  std::string role;
  std::string content;
  nlohmann::ordered_json extra =
      nlohmann::ordered_json::object();  // e.g. tool_calls, name, tool_call_id
};

// [{"role": ..., "content": ..., <extra fields>}, ...]
nlohmann::ordered_json to_json(const std::vector<ChatMessage>& messages);

// Built-in templates for models without tokenizer.chat_template.
// ChatML: "<|im_start|>{role}\n{content}<|im_end|>\n" per message, "<|im_start|>assistant\n" to
// prompt.
inline constexpr std::string_view kChatMlTemplate =
    "{%- for message in messages %}{{- '<|im_start|>' + message['role'] + '\\n' + "
    "message['content'] + "
    "'<|im_end|>\\n' }}{%- endfor %}{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' "
    "}}{%- endif %}";
// Plain, for base models: "{role}: {content}\n\n" per message, "assistant:" to prompt.
inline constexpr std::string_view kPlainTemplate =
    "{%- for message in messages %}{{- message['role'] + ': ' + message['content'] + '\\n\\n' "
    "}}{%- endfor %}"
    "{%- if add_generation_prompt %}{{- 'assistant:' }}{%- endif %}";

// The template source to use for a model:
//  - its own tokenizer.chat_template when non-empty (after trimming whitespace);
//  - otherwise ChatML when the vocabulary has ChatML's control tokens (<|im_start|>, <|im_end|>),
//    since a model with those tokens was tuned on that format;
//  - otherwise the plain "role: content" template (base models such as stories260K).
std::string_view select_template_source(std::string_view model_template,
                                        bool vocab_has_chatml_tokens);

class ChatTemplate {
 public:
  static Result<ChatTemplate> parse(std::string_view source);
  // parse(select_template_source(model_template, vocab_has_chatml_tokens)).
  static Result<ChatTemplate> for_model(std::string_view model_template,
                                        bool vocab_has_chatml_tokens);

  // Renders like transformers' apply_chat_template(tokenize=False): the template sees `messages`,
  // `add_generation_prompt`, every key of extra_context (bos_token, eos_token, tools, documents,
  // enable_thinking, ...), and `tools`/`documents` as none when extra_context lacks them (as
  // transformers passes them). messages must be an array of objects.
  Result<std::string> apply(
      const nlohmann::ordered_json& messages, bool add_generation_prompt,
      const nlohmann::ordered_json& extra_context = nlohmann::ordered_json::object(),
      const jinja::RenderOptions& options = {}) const;
  Result<std::string> apply(const nlohmann::json& messages, bool add_generation_prompt,
                            const nlohmann::json& extra_context = nlohmann::json::object(),
                            const jinja::RenderOptions& options = {}) const;
  Result<std::string> apply(
      const std::vector<ChatMessage>& messages, bool add_generation_prompt,
      const nlohmann::ordered_json& extra_context = nlohmann::ordered_json::object(),
      const jinja::RenderOptions& options = {}) const;

  const std::string& source() const { return template_.source(); }

 private:
  explicit ChatTemplate(jinja::Template t) : template_(std::move(t)) {}
  jinja::Template template_;
};

}  // namespace edgelm::chat
