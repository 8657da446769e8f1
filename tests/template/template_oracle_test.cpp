// Byte-for-byte comparison of our Jinja engine with two independent engines: Python jinja2 as
// transformers configures it (the behaviour models are trained against) and @huggingface/jinja.
// Python is authoritative: our result must equal it exactly (or both must fail). Where the npm
// package disagrees with Python, the case is reported and not held against us.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "edgelm/chat_template.h"
#include "edgelm/jinja.h"
#include "template/oracle.h"

namespace edgelm {
namespace {

using test::OracleResult;
using test::OrderedJson;

struct Outcome {
  bool ok = false;
  std::string text;  // output, or the error message
};

std::string describe(const Outcome& o) {
  return (o.ok ? "output: " : "ERROR: ") + OrderedJson(o.text).dump();
}
std::string describe(const OracleResult& r) {
  return (r.ok ? "output: " : "ERROR: ") + OrderedJson(r.ok ? r.output : r.error).dump();
}

jinja::RenderOptions fixed_clock() {
  jinja::RenderOptions options;
  options.now = test::kOracleNow;
  return options;
}

Outcome render_ours(const std::string& source, const OrderedJson& context) {
  auto parsed = jinja::Template::parse(source);
  if (!parsed) return {false, parsed.error().to_string()};
  auto rendered = parsed->render(context, fixed_clock());
  if (!rendered) return {false, rendered.error().to_string()};
  return {true, *rendered};
}

// Checks ours against both oracles; returns the number of npm-vs-Python disagreements seen.
int compare_all(const std::vector<std::string>& names, const OrderedJson& cases,
                const std::vector<Outcome>& ours) {
  const std::vector<OracleResult> python = test::run_oracle(true, cases);
  const std::vector<OracleResult> node = test::run_oracle(false, cases);
  if (python.size() != cases.size() || node.size() != cases.size()) return 0;
  int disagreements = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    const OracleResult& py = python[i];
    const OracleResult& js = node[i];
    const bool oracles_agree = py.ok == js.ok && (!py.ok || py.output == js.output);
    {
      EXPECT_EQ(ours[i].ok, py.ok)
          << names[i] << "\n  ours:   " << describe(ours[i]) << "\n  python: " << describe(py);
      if (ours[i].ok && py.ok) {
        EXPECT_EQ(ours[i].text, py.output)
            << names[i] << "\n  ours:   " << describe(ours[i]) << "\n  python: " << describe(py);
      }
      if (!py.ok && !py.raised.empty()) {  // raise_exception's message must reach the caller
        EXPECT_NE(ours[i].text.find(py.raised), std::string::npos)
            << names[i] << ": " << ours[i].text;
      }
    }
    if (oracles_agree) {
      EXPECT_EQ(ours[i].ok, js.ok)
          << names[i] << "\n  ours: " << describe(ours[i]) << "\n  npm:  " << describe(js);
      if (ours[i].ok && js.ok) {
        EXPECT_EQ(ours[i].text, js.output) << names[i];
      }
    } else {
      ++disagreements;
      std::printf("[oracles disagree] %s\n  python: %s\n  npm:    %s\n", names[i].c_str(),
                  describe(py).c_str(), describe(js).c_str());
    }
  }
  return disagreements;
}

OrderedJson load_json(const std::string& relative) {
  return OrderedJson::parse(test::read_file(test::source_dir() / relative));
}

TEST(JinjaOracle, LanguageFeatures) {
  const OrderedJson data = load_json("tests/template/cases/language.json");
  OrderedJson cases = OrderedJson::array();
  std::vector<std::string> names;
  std::vector<Outcome> ours;
  std::vector<bool> python_applies;
  for (const auto& c : data["cases"]) {
    const OrderedJson context = c.contains("context") ? c["context"] : data["default_context"];
    OrderedJson oracle_case = {{"template", c["template"]}, {"context", context}};
    if (c.contains("sandbox")) oracle_case["sandbox"] = c["sandbox"];
    cases.push_back(std::move(oracle_case));
    names.push_back(c["name"].get<std::string>());
    ours.push_back(render_ours(c["template"].get<std::string>(), context));
  }
  ASSERT_GT(cases.size(), 50u);
  compare_all(names, cases, ours);
}

// transformers' apply_chat_template context: messages, tools/documents (None when absent),
// add_generation_prompt, the special tokens, then any extra keyword arguments.
struct Conversation {
  std::string name;
  OrderedJson messages;
  OrderedJson extra;
};

std::vector<Conversation> load_conversations(OrderedJson& extra_base) {
  const OrderedJson data = load_json("tests/template/cases/conversations.json");
  extra_base = {{"bos_token", data["bos_token"]}, {"eos_token", data["eos_token"]}};
  std::vector<Conversation> out;
  for (const auto& c : data["conversations"]) {
    Conversation conv{c["name"].get<std::string>(), c["messages"], extra_base};
    if (c.contains("extra"))
      for (auto it = c["extra"].begin(); it != c["extra"].end(); ++it)
        conv.extra[it.key()] = it.value();
    out.push_back(std::move(conv));
  }
  return out;
}

void check_chat_templates(const std::map<std::string, std::string>& templates) {
  OrderedJson extra_base;
  const std::vector<Conversation> conversations = load_conversations(extra_base);
  OrderedJson cases = OrderedJson::array();
  std::vector<std::string> names;
  std::vector<Outcome> ours;
  for (const auto& [template_name, source] : templates) {
    auto chat = chat::ChatTemplate::parse(source);
    ASSERT_TRUE(chat) << template_name << ": " << chat.error().to_string();
    for (const Conversation& conv : conversations) {
      for (const bool add_generation_prompt : {false, true}) {
        OrderedJson context = {{"messages", conv.messages},
                               {"tools", nullptr},
                               {"documents", nullptr},
                               {"add_generation_prompt", add_generation_prompt}};
        for (auto it = conv.extra.begin(); it != conv.extra.end(); ++it)
          context[it.key()] = it.value();
        cases.push_back({{"template", source}, {"context", context}});
        names.push_back(template_name + " / " + conv.name +
                        (add_generation_prompt ? " / gen" : " / no-gen"));
        auto result = chat->apply(conv.messages, add_generation_prompt, conv.extra, fixed_clock());
        ours.push_back(result ? Outcome{true, *result}
                              : Outcome{false, result.error().to_string()});
      }
    }
  }
  compare_all(names, cases, ours);
  // The comparison must mostly be about real renders, not shared failures.
  size_t rendered = 0;
  for (const Outcome& o : ours) rendered += o.ok ? 1 : 0;
  EXPECT_GT(rendered, ours.size() / 2);
}

TEST(JinjaOracle, RealChatTemplatesOfPopularModels) {
  std::map<std::string, std::string> templates;
  for (const auto& entry :
       std::filesystem::directory_iterator(test::source_dir() / "tests/template/templates")) {
    if (entry.path().extension() == ".jinja")
      templates[entry.path().filename().string()] = test::read_file(entry.path());
  }
  ASSERT_GE(templates.size(), 10u);
  check_chat_templates(templates);
}

TEST(JinjaOracle, ChatTemplatesFromSharedGgufModels) {
  const std::string out_path = (test::binary_dir() / "template_collect.json").string();
  const std::string command =
      test::python3() + " " +
      test::shell_quote((test::source_dir() / "tests/reference/template_collect.py").string()) +
      " " + test::shell_quote(test::shared_models_dir().string()) + " > " +
      test::shell_quote(out_path);
  ASSERT_EQ(std::system(command.c_str()), 0);
  const OrderedJson found = OrderedJson::parse(test::read_file(out_path));
  std::map<std::string, std::string> templates;
  for (auto it = found.begin(); it != found.end(); ++it)
    templates[it.key()] = it.value().get<std::string>();
  // The shared folder holds vocab-only GGUFs; of those only phi-3 carries a chat template.
  ASSERT_FALSE(templates.empty()) << "no GGUF in " << test::shared_models_dir()
                                  << " has tokenizer.chat_template";
  check_chat_templates(templates);
}

TEST(JinjaOracle, BuiltInFallbackTemplates) {
  check_chat_templates({{"fallback-chatml", std::string(chat::kChatMlTemplate)},
                        {"fallback-plain", std::string(chat::kPlainTemplate)}});
}

}  // namespace
}  // namespace edgelm
