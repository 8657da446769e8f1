// Hostile or broken templates (they come from model files) must end in a clear Error: no crash,
// no hang, no unbounded memory. These are edgelm's own guarantees, so no oracle is involved;
// the expected error codes are the ones documented in include/edgelm/jinja.h.
#include <gtest/gtest.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>

#include "edgelm/jinja.h"

namespace edgelm::jinja {
namespace {

using Json = nlohmann::ordered_json;

Result<std::string> render(const std::string& source, const Json& context = Json::object(),
                           const RenderOptions& options = {}) {
  auto t = Template::parse(source);
  if (!t) return t.error();
  return t->render(context, options);
}

std::string repeat(const std::string& s, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) out += s;
  return out;
}

TEST(JinjaLimits, DeeplyNestedParenthesesAreRejected) {
  auto r = render("{{ " + repeat("(", 20000) + "1" + repeat(")", 20000) + " }}");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("nested too deeply"), std::string::npos) << r.error().message;
}

TEST(JinjaLimits, DeeplyNestedBlocksAreRejected) {
  auto r = render(repeat("{% if true %}", 5000) + "x" + repeat("{% endif %}", 5000));
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("nested too deeply"), std::string::npos) << r.error().message;
}

TEST(JinjaLimits, LongOperatorChainsAreBoundedButShortOnesWork) {
  auto huge = render("{{ " + repeat("1 + ", 50000) + "1 }}");
  ASSERT_FALSE(huge);
  auto fine = render("{{ " + repeat("1 + ", 150) + "1 }}");
  ASSERT_TRUE(fine) << fine.error().message;
  EXPECT_EQ(*fine, std::to_string(151));
  auto unary = render("{{ " + repeat("not ", 50000) + "x }}");
  EXPECT_FALSE(unary);
}

TEST(JinjaLimits, NestingJustInsideTheLimitsRenders) {
  // Deep but legal templates must render without exhausting the stack (checked under ASan too).
  auto blocks = render(repeat("{% if true %}", 150) + "x" + repeat("{% endif %}", 150));
  ASSERT_TRUE(blocks) << blocks.error().message;
  EXPECT_EQ(*blocks, "x");
  auto negations = render("{{ " + repeat("not ", 150) + "false }}");
  ASSERT_TRUE(negations) << negations.error().message;
  EXPECT_EQ(*negations, "False");  // 150 negations of false
  auto recursion = render(
      "{% macro f(n) %}{% if n > 0 %}{{ f(n - 1) }}{% else %}done{% endif %}{% endmacro %}{{ f(60) "
      "}}");
  ASSERT_TRUE(recursion) << recursion.error().message;
  EXPECT_EQ(*recursion, "done");
}

TEST(JinjaLimits, HugeLoopsStopAtTheStepBudget) {
  const auto start = std::chrono::steady_clock::now();
  auto single = render("{% for i in range(1000000000) %}x{% endfor %}");
  ASSERT_FALSE(single);
  EXPECT_EQ(single.error().code, ErrorCode::kOutOfRange);
  RenderOptions budget;  // the default budget behaves the same, only slower to exhaust under ASan
  budget.max_steps = 2'000'000;
  auto nested =
      render("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
             Json::object(), budget);
  ASSERT_FALSE(nested);
  EXPECT_EQ(nested.error().code, ErrorCode::kOutOfRange);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_LT(seconds, 30.0);  // generous for ASan on a busy 2-core machine; typically well under 2 s
}

TEST(JinjaLimits, OutputAndStringSizesAreCapped) {
  RenderOptions small;
  small.max_output_bytes = 1 << 20;
  auto output = render("{% set s = 'a' * 1000 %}{% for i in range(100000) %}{{ s }}{% endfor %}",
                       Json::object(), small);
  ASSERT_FALSE(output);
  EXPECT_EQ(output.error().code, ErrorCode::kOutOfRange);
  auto doubling = render(
      "{% set ns = namespace(s='ab') %}{% for i in range(100) %}{% set ns.s = ns.s ~ ns.s %}{% "
      "endfor %}");
  ASSERT_FALSE(doubling);
  EXPECT_EQ(doubling.error().code, ErrorCode::kOutOfRange);
  auto repeat_op = render("{{ 'abc' * 1000000000000 }}");
  ASSERT_FALSE(repeat_op);
  EXPECT_EQ(repeat_op.error().code, ErrorCode::kOutOfRange);
}

TEST(JinjaLimits, RunawayMacroRecursionIsStopped) {
  auto r = render("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kOutOfRange);
}

TEST(JinjaLimits, SelfContainingContainersDoNotCrashOrLeak) {
  auto list = render("{% set l = [] %}{% set _ = l.append(l) %}{{ l }}");
  ASSERT_FALSE(list);  // printing would recurse forever; the value-depth limit stops it
  auto json = render("{% set l = [] %}{% set _ = l.append(l) %}{{ l|tojson }}");
  ASSERT_FALSE(json);
  auto ns = render("{% set ns = namespace() %}{% set ns.me = ns %}{{ ns.me.me.me is defined }}");
  ASSERT_TRUE(ns) << ns.error().message;
  EXPECT_EQ(*ns, "True");
}

TEST(JinjaErrors, SyntaxErrorsNameLineAndColumn) {
  auto r = Template::parse("line one\n  {{ 1 + }}");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidFormat);
  EXPECT_NE(r.error().message.find("line 2, column 10"), std::string::npos) << r.error().message;
  auto unclosed = Template::parse("a\nb\n{% for x in xs %}");
  ASSERT_FALSE(unclosed);
  EXPECT_NE(unclosed.error().message.find("endfor"), std::string::npos) << unclosed.error().message;
}

TEST(JinjaErrors, RuntimeErrorsNameTheirPosition) {
  auto r = render("ok\n{{ missing.attribute }}");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidFormat);
  EXPECT_NE(r.error().message.find("line 2"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("'missing' is undefined"), std::string::npos)
      << r.error().message;
}

TEST(JinjaErrors, RaiseExceptionMessageReachesTheCaller) {
  auto r =
      render("{% if messages|length == 0 %}{{ raise_exception('No messages given!') }}{% endif %}",
             Json{{"messages", Json::array()}});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(r.error().message.find("No messages given!"), std::string::npos) << r.error().message;
}

TEST(JinjaErrors, OversizedSourceAndBadContextAreRejected) {
  ParseOptions options;
  options.max_source_bytes = 100;
  auto big = Template::parse(std::string(101, 'x'), options);
  ASSERT_FALSE(big);
  EXPECT_EQ(big.error().code, ErrorCode::kOutOfRange);
  auto t = Template::parse("{{ x }}");
  ASSERT_TRUE(t);
  auto not_object = t->render(Json::array());
  ASSERT_FALSE(not_object);
  EXPECT_EQ(not_object.error().code, ErrorCode::kInvalidArgument);
}

TEST(JinjaErrors, InvalidUtf8NeverBreaksRendering) {
  const std::string bad = "\xff\xfe{{ s|upper }}\xc3{{ s[1:] }}{{ s|length }}";
  auto r = render(bad, Json{{"s", std::string("a\xe2\x82")}});
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->substr(0, 2), "\xff\xfe");
}

}  // namespace
}  // namespace edgelm::jinja
