// The chat API's own contract: fallback choice, input validation and context assembly. Rendering
// of real and fallback templates against the oracles is in template_oracle_test.cpp.
#include "edgelm/chat_template.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace edgelm::chat {
namespace {

using Json = nlohmann::ordered_json;

TEST(ChatTemplate, FallbackSelection) {
  EXPECT_EQ(select_template_source("", false), kPlainTemplate);
  EXPECT_EQ(select_template_source(" \n\t", false), kPlainTemplate);
  EXPECT_EQ(select_template_source("", true), kChatMlTemplate);
  EXPECT_EQ(select_template_source("{{ x }}", false), "{{ x }}");
  EXPECT_EQ(select_template_source("{{ x }}", true), "{{ x }}");
  auto t = ChatTemplate::for_model("", true);
  ASSERT_TRUE(t);
  EXPECT_EQ(t->source(), kChatMlTemplate);
}

TEST(ChatTemplate, RejectsMalformedInput) {
  auto t = ChatTemplate::parse("{% for m in messages %}{{ m.content }}{% endfor %}");
  ASSERT_TRUE(t);
  EXPECT_FALSE(t->apply(Json::object(), true));
  EXPECT_FALSE(t->apply(Json::array({"just a string"}), true));
  EXPECT_FALSE(t->apply(Json::array(), true, Json::array()));
  EXPECT_FALSE(ChatTemplate::parse("{% if %}"));
}

TEST(ChatTemplate, ContextLikeTransformers) {
  // transformers passes tools=None and documents=None when the caller gives none.
  auto t = ChatTemplate::parse(
      "{{ tools is none }}{{ documents is none }}{{ add_generation_prompt }}{{ bos_token }}{{ "
      "messages|length }}");
  ASSERT_TRUE(t);
  auto defaults = t->apply(Json::array({{{"role", "user"}, {"content", "hi"}}}), true,
                           Json{{"bos_token", "<s>"}});
  ASSERT_TRUE(defaults) << defaults.error().message;
  EXPECT_EQ(*defaults, "TrueTrueTrue<s>1");
  auto with_tools =
      t->apply(Json::array(), false, Json{{"tools", Json::array({1})}, {"bos_token", ""}});
  ASSERT_TRUE(with_tools) << with_tools.error().message;
  EXPECT_EQ(*with_tools, "FalseTrueFalse0");
}

TEST(ChatTemplate, MessageStructsJsonAndOrderedJsonAgree) {
  auto t = ChatTemplate::parse(std::string(kChatMlTemplate));
  ASSERT_TRUE(t);
  std::vector<ChatMessage> messages = {{"system", "Be brief.", Json::object()},
                                       {"user", "Hi \"there\"", Json::object()}};
  messages[1].extra["name"] = "bob";
  auto from_structs = t->apply(messages, true);
  auto from_ordered = t->apply(to_json(messages), true);
  auto from_plain = t->apply(nlohmann::json::parse(to_json(messages).dump()), true);
  ASSERT_TRUE(from_structs && from_ordered && from_plain);
  EXPECT_EQ(*from_structs, *from_ordered);
  EXPECT_EQ(*from_structs, *from_plain);
  EXPECT_EQ(to_json(messages)[1]["name"], "bob");
}

}  // namespace
}  // namespace edgelm::chat
