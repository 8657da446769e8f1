// GBNF parsing, matching and vocabulary masking.
#include "edgelm/grammar.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "edgelm/sampler.h"

namespace edgelm::runtime {
namespace {

std::shared_ptr<const Grammar> must_parse(std::string_view text) {
  auto grammar = Grammar::parse(text);
  EXPECT_TRUE(grammar.has_value()) << (grammar ? "" : grammar.error().to_string());
  return grammar ? *grammar : nullptr;
}

std::string parse_error(std::string_view text) {
  auto grammar = Grammar::parse(text);
  return grammar ? std::string("(parsed)") : grammar.error().message;
}

// Matcher over a one-token vocabulary (only raw-text checks are used).
struct TextMatcher {
  explicit TextMatcher(std::string_view grammar_text)
      : matcher(must_parse(grammar_text), *GrammarVocab::build({"x"}, {})) {}
  bool full(std::string_view text) {
    matcher.reset();
    return matcher.accept_text(text).has_value() && matcher.is_complete();
  }
  bool prefix(std::string_view text) {
    matcher.reset();
    return matcher.text_allowed(text);
  }
  GrammarMatcher matcher;
};

TEST(GrammarParse, ErrorsNameLineAndColumn) {
  EXPECT_EQ(parse_error("root ::= \"a\"\nfoo = \"b\""), "grammar:2:5: unexpected character '='");
  EXPECT_EQ(parse_error("root ::= \"abc"), "grammar:1:10: unterminated string literal");
  EXPECT_EQ(parse_error("root ::= [a-"), "grammar:1:10: unterminated character class");
  EXPECT_EQ(parse_error("root ::= x\n"), "grammar:1:10: rule 'x' is used but never defined");
  EXPECT_EQ(parse_error("a ::= \"x\""), "grammar: no 'root' rule defined");
  EXPECT_EQ(parse_error("root ::= \"a\"\nroot ::= \"b\""),
            "grammar:2:1: rule 'root' is defined twice");
  EXPECT_EQ(parse_error("root ::= (\"a\" | \"b\""), "grammar:1:20: expected ')'");
  EXPECT_EQ(parse_error("root ::= \"\\q\""), "grammar:1:11: unknown escape '\\q'");
  EXPECT_EQ(parse_error("root ::= [z-a]"), "grammar:1:11: character range is reversed");
  EXPECT_EQ(parse_error("root ::= \"a\"{3,2}"), "grammar:1:13: repetition {m,n} with n < m");
  EXPECT_EQ(parse_error("root ::= \"a\"{99999}"), "grammar:1:14: repetition count exceeds 10000");
  EXPECT_EQ(parse_error("::= \"a\""), "grammar:1:1: expected a rule name");
  EXPECT_EQ(parse_error("root \"a\""), "grammar:1:6: expected '::=' after rule name");
  EXPECT_EQ(parse_error("root ::= root \"a\" | \"b\""), "grammar: rule 'root' is left-recursive");
  EXPECT_EQ(parse_error("root ::= x \"a\"\nx ::= \"b\"? root"),
            "grammar: rule 'root' is left-recursive");
  EXPECT_EQ(parse_error("root ::= (\"a\"?)*"), "grammar: rule 'root' is left-recursive");
  EXPECT_EQ(parse_error("root ::= \"\\xZZ\""), "grammar:1:13: invalid hex digit in escape");
  EXPECT_EQ(parse_error(std::string("root ::= \"\xC3\"")),
            "grammar:1:11: truncated UTF-8 sequence");
}

TEST(GrammarParse, LimitsAgainstHugeGrammars) {
  std::string nested = "root ::= ";
  for (int i = 0; i < 300; ++i) nested += "(";
  EXPECT_NE(parse_error(nested).find("nested too deeply"), std::string::npos);
  // Nested counts share helper rules, so they stay small...
  EXPECT_EQ(parse_error("root ::= ((\"a\"{10000}){10000}){10000}"), "(parsed)");
  // ...but bounded optional repetition needs one rule per count, which the rule limit caps.
  std::string wide = "root ::= ";
  for (int i = 0; i < 8; ++i) wide += "\"a\"{0,10000} ";
  EXPECT_NE(parse_error(wide).find("more than 65536 rules"), std::string::npos);
}

// Untrusted grammar text: random byte edits of valid grammars must give an error or a working
// grammar, never a crash, hang or sanitizer report.
TEST(GrammarParse, MutatedGrammarsFailCleanly) {
  const std::vector<std::string> seeds = {
      std::string(json_object_gbnf()),
      R"(root ::= ("ab" | [^x-z\n]{2,5})+ name? # c
name ::= "\u00e9" . [a-c]*)",
  };
  Rng rng(99);
  auto vocab = *GrammarVocab::build({"a", "b", "{", "}", "\"", " ", "\xC3\xA9"}, {});
  const std::string alphabet = "()[]{}|*+?.^-\\\"#:= \nabr0129,\xC3";
  int parsed = 0;
  for (int i = 0; i < 4000; ++i) {
    std::string text = seeds[static_cast<size_t>(i) % seeds.size()];
    const int edits = 1 + static_cast<int>(rng.next_u64() % 4);
    for (int e = 0; e < edits; ++e) {
      const size_t at = rng.next_u64() % text.size();
      const char c = alphabet[rng.next_u64() % alphabet.size()];
      switch (rng.next_u64() % 3) {
        case 0:
          text[at] = c;
          break;
        case 1:
          text.insert(at, 1, c);
          break;
        default:
          text.erase(at, 1);
          break;
      }
    }
    auto grammar = Grammar::parse(text);
    if (!grammar) {
      EXPECT_FALSE(grammar.error().message.empty());
      continue;
    }
    ++parsed;
    GrammarMatcher matcher(*grammar, vocab);
    std::vector<uint8_t> allowed;
    for (int step = 0; step < 8; ++step) {
      if (!matcher.allowed_tokens(allowed).has_value()) break;
      int32_t pick = -1;
      for (size_t t = 0; t < allowed.size(); ++t) {
        if (allowed[t] && (pick < 0 || rng.next_u64() % 2)) pick = static_cast<int32_t>(t);
      }
      if (pick < 0) break;
      ASSERT_TRUE(matcher.accept_token(pick).has_value());
    }
  }
  EXPECT_GT(parsed, 300);  // the edits must leave enough valid grammars to exercise the matcher
}

TEST(GrammarMatch, LiteralsClassesAndRepetition) {
  TextMatcher m(R"(
    # a comment line
    root ::= greeting " " name ("!" | "?")?   # trailing comment
    greeting ::= "hi" | "hello"
    name ::= [A-Z] [a-z]{1,3}
  )");
  EXPECT_TRUE(m.full("hi Bob"));
  EXPECT_TRUE(m.full("hello Anna!"));
  EXPECT_TRUE(m.full("hi Jo?"));
  EXPECT_FALSE(m.full("hi J"));      // {1,3} needs one
  EXPECT_FALSE(m.full("hi Jonas"));  // at most three
  EXPECT_FALSE(m.full("hey Bob"));
  EXPECT_FALSE(m.full("hi bob"));
  EXPECT_TRUE(m.prefix("hel"));
  EXPECT_FALSE(m.prefix("helo"));
  EXPECT_FALSE(m.full("hi Bob!!"));

  TextMatcher counts(R"(root ::= "a"{2} "b"{2,} "c"{,2} [0-9]+ "x"* "yz"?)");
  EXPECT_TRUE(counts.full("aabb1"));
  EXPECT_TRUE(counts.full("aabbbbcc12xxxyz"));
  EXPECT_FALSE(counts.full("abb1"));
  EXPECT_FALSE(counts.full("aab1"));
  EXPECT_FALSE(counts.full("aabbccc1"));
  EXPECT_FALSE(counts.full("aabb"));
  EXPECT_FALSE(counts.full("aabb1y"));

  TextMatcher empty_repeats(R"(root ::= ""* "a" ""? ""{3} "b"? "")");
  EXPECT_TRUE(empty_repeats.full("a"));
  EXPECT_TRUE(empty_repeats.full("ab"));

  TextMatcher negated(R"(root ::= "\"" [^"\\\n]* "\"" .)");
  EXPECT_TRUE(negated.full("\"abc\"!"));
  EXPECT_TRUE(negated.full("\"\"\xE2\x82\xAC"));  // '.' matches a multi-byte code point
  EXPECT_FALSE(negated.full("\"a\nb\"!"));
  EXPECT_FALSE(negated.full("\"a\\b\"!"));
}

TEST(GrammarMatch, Utf8CodePointsAndPartialSequences) {
  TextMatcher m(R"(root ::= [α-ω]+ "€" [\u4e00-\u9fff] "\U0001F600")");
  const std::string good = "αβγ€中😀";
  EXPECT_TRUE(m.full(good));
  EXPECT_FALSE(m.full("αβγ€a😀"));
  // Every byte prefix of the good text is allowed, including cuts inside a code point.
  for (size_t cut = 1; cut < good.size(); ++cut) EXPECT_TRUE(m.prefix(good.substr(0, cut))) << cut;
  EXPECT_FALSE(
      m.prefix("\xCE"
               "\x80"));               // U+0380 is below alpha
  EXPECT_FALSE(m.prefix("\xC0\x80"));  // overlong encoding
  TextMatcher ascii(R"(root ::= [a-z]+)");
  EXPECT_FALSE(ascii.prefix("\xE0\x80"));  // could only complete as an overlong 'a'..'z'
  TextMatcher any(R"(root ::= .+)");
  EXPECT_TRUE(any.prefix("\xED\x9F"));
  EXPECT_FALSE(any.prefix("\xED\xA0"));  // only surrogates can follow
  EXPECT_FALSE(m.prefix("\xFF"));        // never valid UTF-8
  EXPECT_FALSE(m.prefix("\x80"));        // stray continuation byte
  // A partially accepted code point leaves the grammar incomplete until it is finished.
  m.matcher.reset();
  ASSERT_TRUE(m.matcher.accept_text("α€中\xF0\x9F").has_value());
  EXPECT_FALSE(m.matcher.is_complete());
  ASSERT_TRUE(m.matcher.accept_text("\x98\x80").has_value());
  EXPECT_TRUE(m.matcher.is_complete());
}

TEST(GrammarMatch, RightRecursionDoesNotGrowAndAmbiguityIsBounded) {
  TextMatcher m(R"(root ::= item*
item ::= "a" | "ab" | "b")");
  EXPECT_TRUE(m.full(std::string(20000, 'a') + "ab"));
  TextMatcher ambiguous(R"(root ::= x x x x x x
x ::= "a"*)");
  EXPECT_TRUE(ambiguous.full(std::string(300, 'a')));
  // 2^40 paths through duplicated alternatives reach the same few stacks: expanded once each.
  std::string doubled = "root ::= r0\n";
  for (int i = 0; i < 40; ++i) {
    const std::string next = std::to_string(i + 1);
    doubled.append("r").append(std::to_string(i)).append(" ::= r").append(next);
    doubled.append(" | r").append(next).append("\n");
  }
  doubled += "r40 ::= \"z\"+\n";
  TextMatcher fan_out(doubled);
  EXPECT_TRUE(fan_out.full("zzz"));
  EXPECT_FALSE(fan_out.full("zzy"));
}

// The trie walk gives exactly what checking each token text alone gives.
TEST(GrammarMask, TrieWalkEqualsPerTokenCheck) {
  std::vector<std::string> texts = {"",    "a",    "ab",       "abc",          "b", "\"",
                                    "\"a", "a\"",  "{",        "{\"",          "}", " ",
                                    "  ",  "\xCE", "\xCE\xB1", "\xB1",         "1", "12",
                                    "-",   "ab",   "\xE2\x82", "\xE2\x82\xAC", "x"};
  const int32_t eos = static_cast<int32_t>(texts.size());
  texts.push_back("</s>");
  auto vocab = *GrammarVocab::build(texts, {eos});
  auto grammar = must_parse(R"(root ::= "{" ws (str ws ":" ws str)? "}"
str ::= "\"" [^"]* "\""
ws ::= " "?)");
  GrammarMatcher matcher(grammar, vocab);
  std::vector<uint8_t> allowed;
  const std::vector<std::string> steps = {"{", " ",  "\"", "a\xCE", "\xB1\xE2\x82", "\xAC\"", " ",
                                          ":", "\"", "\"", "}"};
  for (const std::string& step : steps) {
    ASSERT_TRUE(matcher.allowed_tokens(allowed).has_value());
    for (int32_t t = 0; t < static_cast<int32_t>(texts.size()); ++t) {
      EXPECT_EQ(allowed[static_cast<size_t>(t)] != 0, matcher.token_allowed(t))
          << "token " << t << " after step '" << step << "'";
    }
    EXPECT_EQ(allowed[static_cast<size_t>(eos)], 0);
    EXPECT_EQ(allowed[0], 0);  // empty text never allowed
    ASSERT_TRUE(matcher.accept_text(step).has_value()) << step;
  }
  ASSERT_TRUE(matcher.allowed_tokens(allowed).has_value());
  for (size_t t = 0; t < texts.size(); ++t)
    EXPECT_EQ(allowed[t], t == static_cast<size_t>(eos)) << t;
  EXPECT_FALSE(matcher.accept_token(1).has_value());
  ASSERT_TRUE(matcher.accept_token(eos).has_value());
  EXPECT_TRUE(matcher.is_finished());
}

TEST(GrammarMask, SamplerNeverLeavesTheGrammar) {
  std::vector<std::string> texts;
  for (char c = ' '; c <= '~'; ++c) texts.push_back(std::string(1, c));
  texts.push_back("ab");
  texts.push_back("cd");
  texts.push_back("<eos>");
  const auto eos = static_cast<int32_t>(texts.size() - 1);
  auto vocab = *GrammarVocab::build(texts, {eos});
  auto grammar = must_parse(R"(root ::= ("ab" | "cd"){2,4} [0-9] "!")");
  SamplerParams p;
  p.temperature = 1.0f;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  for (uint64_t seed = 0; seed < 30; ++seed) {
    p.seed = seed;
    Sampler sampler(p);
    sampler.set_grammar(std::make_unique<GrammarMatcher>(grammar, vocab));
    // Prompt tokens go to the penalty history only.
    ASSERT_TRUE(sampler.accept(static_cast<int32_t>(texts.size() - 2), false).has_value());
    Rng noise(seed + 1000);
    std::string text;
    for (int step = 0; step < 50; ++step) {
      std::vector<float> logits(texts.size());
      for (float& l : logits) l = static_cast<float>(4.0 * noise.next_unit());
      auto token = sampler.sample(logits);
      ASSERT_TRUE(token.has_value()) << token.error().to_string();
      ASSERT_TRUE(sampler.accept(*token).has_value());
      if (*token == eos) break;
      text += texts[static_cast<size_t>(*token)];
    }
    EXPECT_TRUE(sampler.grammar()->is_finished()) << text;
    TextMatcher check(R"(root ::= ("ab" | "cd"){2,4} [0-9] "!")");
    EXPECT_TRUE(check.full(text)) << text;
  }
}

}  // namespace
}  // namespace edgelm::runtime
