#include "edgelm/chat_template.h"

namespace edgelm::chat {

nlohmann::ordered_json to_json(const std::vector<ChatMessage>& messages) {
  nlohmann::ordered_json array = nlohmann::ordered_json::array();
  for (const ChatMessage& m : messages) {
    nlohmann::ordered_json object = nlohmann::ordered_json::object();
    object["role"] = m.role;
    object["content"] = m.content;
    if (m.extra.is_object())
      for (auto it = m.extra.begin(); it != m.extra.end(); ++it) object[it.key()] = it.value();
    array.push_back(std::move(object));
  }
  return array;
}

std::string_view select_template_source(std::string_view model_template,
                                        bool vocab_has_chatml_tokens) {
  const size_t first = model_template.find_first_not_of(" \t\r\n");
  if (first != std::string_view::npos) return model_template;
  return vocab_has_chatml_tokens ? kChatMlTemplate : kPlainTemplate;
}

Result<ChatTemplate> ChatTemplate::parse(std::string_view source) {
  EDGELM_TRY(jinja::Template t, jinja::Template::parse(source));
  return ChatTemplate(std::move(t));
}

Result<ChatTemplate> ChatTemplate::for_model(std::string_view model_template,
                                             bool vocab_has_chatml_tokens) {
  return parse(select_template_source(model_template, vocab_has_chatml_tokens));
}

Result<std::string> ChatTemplate::apply(const nlohmann::ordered_json& messages,
                                        bool add_generation_prompt,
                                        const nlohmann::ordered_json& extra_context,
                                        const jinja::RenderOptions& options) const {
  if (!messages.is_array())
    return make_error(ErrorCode::kInvalidArgument, "chat template: messages must be an array");
  for (const auto& m : messages)
    if (!m.is_object())
      return make_error(ErrorCode::kInvalidArgument,
                        "chat template: every message must be an object");
  if (!extra_context.is_null() && !extra_context.is_object())
    return make_error(ErrorCode::kInvalidArgument,
                      "chat template: extra_context must be an object");
  nlohmann::ordered_json context = nlohmann::ordered_json::object();
  context["messages"] = messages;
  context["tools"] = nullptr;
  context["documents"] = nullptr;
  context["add_generation_prompt"] = add_generation_prompt;
  if (extra_context.is_object())
    for (auto it = extra_context.begin(); it != extra_context.end(); ++it)
      context[it.key()] = it.value();
  return template_.render(context, options);
}

Result<std::string> ChatTemplate::apply(const nlohmann::json& messages, bool add_generation_prompt,
                                        const nlohmann::json& extra_context,
                                        const jinja::RenderOptions& options) const {
  return apply(nlohmann::ordered_json::parse(messages.dump()), add_generation_prompt,
               nlohmann::ordered_json::parse(extra_context.dump()), options);
}

Result<std::string> ChatTemplate::apply(const std::vector<ChatMessage>& messages,
                                        bool add_generation_prompt,
                                        const nlohmann::ordered_json& extra_context,
                                        const jinja::RenderOptions& options) const {
  return apply(to_json(messages), add_generation_prompt, extra_context, options);
}

}  // namespace edgelm::chat
