// JSON-schema constrained generation on real vocabularies: random logits under the grammar must
// always yield JSON that parses (nlohmann::json) and validates against the schema.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <vector>

#include "common/test_paths.h"
#include "edgelm/gguf.h"
#include "edgelm/grammar.h"
#include "edgelm/sampler.h"

namespace edgelm::runtime {
namespace {

using nlohmann::json;

struct TestVocab {
  std::string name;
  std::shared_ptr<const GrammarVocab> vocab;
  int32_t eos = -1;
};

// The vocabulary as the server builds it for constrained generation.
TestVocab load_vocab(const std::string& file) {
  TestVocab result;
  result.name = file;
  auto gguf = format::GgufFile::open(test::shared_models_dir() / "llama.cpp-vocab" / file);
  if (!gguf) {
    ADD_FAILURE() << gguf.error().to_string();
    return result;
  }
  auto tokenizer = tokenizer::Tokenizer::from_gguf(*gguf);
  if (!tokenizer) {
    ADD_FAILURE() << tokenizer.error().to_string();
    return result;
  }
  result.eos = (*tokenizer)->eos();
  auto vocab = GrammarVocab::from_tokenizer(**tokenizer);
  if (!vocab) {
    ADD_FAILURE() << vocab.error().to_string();
    return result;
  }
  result.vocab = *vocab;
  return result;
}

const std::vector<TestVocab>& vocabs() {
  static const auto* all = new std::vector<TestVocab>{load_vocab("ggml-vocab-gpt-2.gguf"),
                                                      load_vocab("ggml-vocab-llama-spm.gguf")};
  return *all;
}

// A small validator for the schema subset the converter supports (standard JSON Schema meaning).
bool validate(const json& v, const json& schema, const json& root, std::string& why) {
  if (schema.is_boolean()) return schema.get<bool>();
  auto fail = [&](const std::string& what) {
    why = what + " at value " + v.dump() + " for schema " + schema.dump();
    return false;
  };
  if (schema.contains("$ref")) {
    const std::string ref = schema["$ref"];
    if (ref == "#") return validate(v, root, root, why);
    const size_t slash = ref.rfind('/');
    const std::string section = ref.substr(2, slash - 2);
    return validate(v, root[section][ref.substr(slash + 1)], root, why);
  }
  if (schema.contains("const") && v != schema["const"]) return fail("const mismatch");
  if (schema.contains("enum")) {
    bool found = false;
    for (const json& e : schema["enum"]) found = found || e == v;
    if (!found) return fail("not in enum");
  }
  if (schema.contains("anyOf") || schema.contains("oneOf")) {
    const bool one = schema.contains("oneOf");
    int matches = 0;
    std::string ignored;
    for (const json& alt : schema[one ? "oneOf" : "anyOf"])
      matches += validate(v, alt, root, ignored);
    if (matches == 0 || (one && matches != 1))
      return fail("anyOf/oneOf matched " + std::to_string(matches));
  }
  if (!schema.contains("type")) return true;
  if (schema["type"].is_array()) {
    for (const json& t : schema["type"]) {
      json single = schema;
      single["type"] = t;
      std::string ignored;
      if (validate(v, single, root, ignored)) return true;
    }
    return fail("no type of the list matches");
  }
  const std::string type = schema["type"];
  if (type == "null") return v.is_null() || fail("not null");
  if (type == "boolean") return v.is_boolean() || fail("not boolean");
  if (type == "number") return v.is_number() || fail("not a number");
  if (type == "integer") {
    if (!v.is_number_integer()) return fail("not an integer");
    const double x = v.get<double>();
    if (schema.contains("minimum") && x < schema["minimum"].get<double>()) return fail("< minimum");
    if (schema.contains("maximum") && x > schema["maximum"].get<double>()) return fail("> maximum");
    if (schema.contains("exclusiveMinimum") && x <= schema["exclusiveMinimum"].get<double>()) {
      return fail("<= exclusiveMinimum");
    }
    if (schema.contains("exclusiveMaximum") && x >= schema["exclusiveMaximum"].get<double>()) {
      return fail(">= exclusiveMaximum");
    }
    return true;
  }
  if (type == "string") {
    if (!v.is_string()) return fail("not a string");
    const std::string text = v.get<std::string>();  // length in code points: non-continuation bytes
    const auto length = static_cast<size_t>(std::count_if(
        text.begin(), text.end(), [](char c) { return (static_cast<uint8_t>(c) & 0xC0) != 0x80; }));
    if (schema.contains("minLength") && length < schema["minLength"].get<size_t>())
      return fail("too short");
    if (schema.contains("maxLength") && length > schema["maxLength"].get<size_t>())
      return fail("too long");
    if (schema.value("format", "") == "uuid" &&
        !std::regex_match(v.get<std::string>(),
                          std::regex("[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}"))) {
      return fail("not a uuid");
    }
    if (schema.value("format", "") == "date" &&
        !std::regex_match(v.get<std::string>(),
                          std::regex("[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"))) {
      return fail("not a date");
    }
    return true;
  }
  if (type == "array") {
    if (!v.is_array()) return fail("not an array");
    if (schema.contains("minItems") && v.size() < schema["minItems"].get<size_t>())
      return fail("too few items");
    if (schema.contains("maxItems") && v.size() > schema["maxItems"].get<size_t>())
      return fail("too many items");
    if (schema.contains("items")) {
      for (const json& item : v) {
        if (!validate(item, schema["items"], root, why)) return false;
      }
    }
    return true;
  }
  if (type == "object") {
    if (!v.is_object()) return fail("not an object");
    const json props = schema.value("properties", json::object());
    for (const json& r : schema.value("required", json::array())) {
      if (!v.contains(r.get<std::string>())) return fail("missing required " + r.dump());
    }
    for (const auto& [key, value] : v.items()) {
      if (props.contains(key)) {
        if (!validate(value, props[key], root, why)) return false;
      } else if (schema.contains("additionalProperties")) {
        if (!validate(value, schema["additionalProperties"], root, why))
          return fail("extra key " + key);
      }
    }
    return true;
  }
  return fail("unknown type");
}

const std::vector<std::string>& test_schemas() {
  static const auto* schemas = new std::vector<std::string>{
      R"({"type": "object", "properties": {"name": {"type": "string", "maxLength": 12},
          "age": {"type": "integer", "minimum": 0, "maximum": 150}, "ok": {"type": "boolean"}},
          "required": ["name", "age", "ok"], "additionalProperties": false})",
      R"({"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "null"},
          "c": {"type": "string", "enum": ["red", "green", "blue \"quoted\""]}},
          "required": ["c"], "additionalProperties": false})",
      R"({"type": "array", "items": {"type": "integer", "minimum": -50, "exclusiveMaximum": 1000}, "minItems": 2, "maxItems": 4})",
      R"({"type": "object", "properties": {"tags": {"type": "array", "items": {"type": "string", "maxLength": 5}, "maxItems": 3},
          "point": {"type": "object", "properties": {"x": {"type": "number"}, "y": {"type": "number"}},
                    "required": ["x", "y"], "additionalProperties": false}},
          "required": ["tags", "point"], "additionalProperties": false})",
      R"({"anyOf": [{"type": "string", "minLength": 2, "maxLength": 4}, {"type": "integer"}, {"type": "null"}]})",
      R"({"type": "object", "properties": {"kind": {"const": "leaf"}, "id": {"type": "string", "format": "uuid"},
          "when": {"type": "string", "format": "date"}, "maybe": {"type": ["string", "null"], "maxLength": 3}},
          "required": ["kind", "id", "when", "maybe"], "additionalProperties": false})",
      R"({"$defs": {"node": {"type": "object", "properties": {"v": {"type": "integer"},
          "next": {"anyOf": [{"$ref": "#/$defs/node"}, {"type": "null"}]}}, "required": ["v", "next"],
          "additionalProperties": false}}, "$ref": "#/$defs/node"})",
      R"({"type": "object", "properties": {"o1": {"type": "boolean"}, "o2": {"type": "boolean"},
          "r": {"type": "boolean"}, "o3": {"type": "boolean"}}, "required": ["r"], "additionalProperties": false})",
      R"({"type": "object", "properties": {"id": {"type": "integer", "minimum": 1}},
          "required": ["id"], "additionalProperties": {"type": "boolean"}})",
      R"({"oneOf": [{"type": "array", "items": {"enum": [1, 2, "three", null, true]}, "maxItems": 6},
          {"type": "boolean"}]})",
  };
  return *schemas;
}

// Samples random-logit text under a grammar until EOG or max_tokens; returns false on a cap hit.
bool generate(const TestVocab& v, const std::shared_ptr<const Grammar>& grammar, uint64_t seed,
              int max_tokens, std::string& text, float closing_bias = 2.0f) {
  SamplerParams p;
  p.temperature = 1.0f;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  p.seed = seed;
  // Random logits plus a push towards closing quotes/brackets and EOG, so that deeply nested
  // random JSON finishes within the token cap; validity is what is tested, not naturalness.
  for (int32_t t = 0; t < static_cast<int32_t>(v.vocab->size()); ++t) {
    const std::string& text = v.vocab->text(t);
    if (t == v.eos) {
      p.logit_bias.push_back({t, 6.0f});
    } else if (text.find_first_of("\"}]") != std::string::npos) {
      p.logit_bias.push_back({t, closing_bias});
    }
  }
  Sampler sampler(p);
  sampler.set_grammar(std::make_unique<GrammarMatcher>(grammar, v.vocab));
  Rng noise(seed ^ 0x5eed);
  std::vector<float> logits(v.vocab->size());
  text.clear();
  for (int step = 0; step < max_tokens; ++step) {
    for (float& l : logits) l = static_cast<float>(3.0 * noise.next_unit());
    auto token = sampler.sample(logits);
    if (!token) {
      std::string hex;
      for (char c : text) hex += std::to_string(static_cast<uint8_t>(c)) + " ";
      ADD_FAILURE() << token.error().to_string() << " after '" << text << "' (bytes " << hex << ")";
      return false;
    }
    if (Status accepted = sampler.accept(*token); !accepted) {
      ADD_FAILURE() << accepted.error().to_string() << " after '" << text << "'";
      return false;
    }
    if (*token == v.eos) return true;
    text += v.vocab->text(*token);
  }
  return false;
}

TEST(GrammarJson, RandomGenerationsAlwaysValidate) {
  int complete = 0, total = 0;
  for (const TestVocab& v : vocabs()) {
    ASSERT_TRUE(v.vocab) << v.name;
    for (size_t s = 0; s < test_schemas().size(); ++s) {
      const json schema = json::parse(test_schemas()[s]);
      auto gbnf = json_schema_to_gbnf(test_schemas()[s]);
      ASSERT_TRUE(gbnf.has_value()) << gbnf.error().to_string();
      auto grammar = Grammar::parse(*gbnf);
      ASSERT_TRUE(grammar.has_value()) << grammar.error().to_string() << "\n" << *gbnf;
      for (uint64_t seed = 0; seed < 3; ++seed) {
        std::string text;
        ++total;
        if (!generate(v, *grammar, seed * 7919 + s, 400, text)) continue;
        ++complete;
        const json value = json::parse(text, nullptr, false);
        ASSERT_FALSE(value.is_discarded()) << v.name << " schema " << s << ": not JSON: " << text;
        std::string why;
        EXPECT_TRUE(validate(value, schema, schema, why))
            << v.name << " schema " << s << ": " << why;
        const auto additional = schema.find("additionalProperties");
        if (additional != schema.end() && *additional == false && schema.contains("properties")) {
          for (const auto& [key, unused] : value.items())
            EXPECT_TRUE(schema["properties"].contains(key)) << key;
        }
      }
    }
  }
  // Random logits close the structure quickly in practice; a cap hit is not a failure by itself,
  // but nearly every run must finish or the test proves little.
  std::printf("[ json ] %d of %d random generations finished within the cap\n", complete, total);
  EXPECT_GE(complete * 10, total * 9) << complete << " of " << total << " generations finished";
}

TEST(GrammarJson, JsonObjectGrammarGivesObjects) {
  auto grammar = Grammar::parse(json_object_gbnf());
  ASSERT_TRUE(grammar.has_value()) << grammar.error().to_string();
  const TestVocab& v = vocabs()[0];
  ASSERT_TRUE(v.vocab);
  int complete = 0;
  for (uint64_t seed = 0; seed < 6; ++seed) {
    std::string text;
    if (!generate(v, *grammar, seed, 400, text, 4.0f)) continue;
    ++complete;
    const json value = json::parse(text, nullptr, false);
    ASSERT_FALSE(value.is_discarded()) << text;
    EXPECT_TRUE(value.is_object()) << text;
  }
  // Unconstrained random JSON nests deeply, hence the stronger push towards closing here.
  EXPECT_GE(complete, 5);
}

TEST(GrammarJson, UnsupportedOrMalformedSchemasAreErrors) {
  auto error = [](std::string_view schema) {
    auto r = json_schema_to_gbnf(schema);
    return r ? std::string("(converted)") : r.error().message;
  };
  EXPECT_EQ(error("{"), "json schema: not valid JSON");
  EXPECT_EQ(error(R"({"type": "string", "pattern": "^a+$"})"), "json schema at '#': 'pattern'");
  EXPECT_EQ(error(R"({"type": "object", "properties": {"x": {"type": "wat"}}})"),
            "json schema at '#/properties/x/type': unknown type 'wat'");
  EXPECT_EQ(error(R"({"$ref": "#/$defs/missing"})"),
            "json schema at '#/$ref': cannot resolve '#/$defs/missing'");
  EXPECT_EQ(error(R"({"type": "array", "minItems": 3, "maxItems": 1})"),
            "json schema at '#': maxItems < minItems");
  EXPECT_EQ(error(R"({"type": "integer", "multipleOf": 3})"),
            "json schema at '#': 'multipleOf' on an integer");
  EXPECT_EQ(error(R"({"type": "integer", "minimum": 5, "maximum": 4})"),
            "json schema at '#': no integer satisfies the bounds");
  EXPECT_EQ(error(R"({"type": "number", "minimum": 0})"),
            "json schema at '#': 'minimum' on a number");
  EXPECT_EQ(
      error(R"({"type": "object", "properties": {"a": {"type": "string"}}, "required": ["b"]})"),
      "json schema at '#/required': 'b' has no entry in properties");
}

// Integer bounds are enforced exactly: compare with arithmetic on every integer in a window.
TEST(GrammarJson, IntegerBoundsAcceptExactlyTheRange) {
  struct Bounds {
    std::string schema;
    int64_t lo, hi;  // inclusive; +-1e9 stands for "no bound"
  };
  const std::vector<Bounds> cases = {
      {R"({"type": "integer", "minimum": 0})", 0, 1000000000},
      {R"({"type": "integer", "minimum": 17, "maximum": 305})", 17, 305},
      {R"({"type": "integer", "minimum": -42, "maximum": 7})", -42, 7},
      {R"({"type": "integer", "minimum": -999, "maximum": -100})", -999, -100},
      {R"({"type": "integer", "maximum": 150})", -1000000000, 150},
      {R"({"type": "integer", "maximum": -3})", -1000000000, -3},
      {R"({"type": "integer", "minimum": -5})", -5, 1000000000},
      {R"({"type": "integer", "exclusiveMinimum": 9, "exclusiveMaximum": 1000})", 10, 999},
      {R"({"type": "integer", "minimum": 1.5, "maximum": 99.5})", 2, 99},
      {R"({"type": "integer", "minimum": 123})", 123, 1000000000},
  };
  auto vocab = *GrammarVocab::build({"x"}, {});
  for (const Bounds& b : cases) {
    auto gbnf = json_schema_to_gbnf(b.schema);
    ASSERT_TRUE(gbnf.has_value()) << gbnf.error().to_string();
    auto grammar = Grammar::parse(*gbnf);
    ASSERT_TRUE(grammar.has_value()) << grammar.error().to_string() << "\n" << *gbnf;
    GrammarMatcher matcher(*grammar, vocab);
    auto accepts = [&](const std::string& text) {
      matcher.reset();
      return matcher.accept_text(text).has_value() && matcher.is_complete();
    };
    for (int64_t v = -1300; v <= 1300; ++v) {
      EXPECT_EQ(accepts(std::to_string(v)), v >= b.lo && v <= b.hi) << b.schema << " value " << v;
    }
    for (int64_t v : {int64_t{123456789}, int64_t{-123456789}}) {
      EXPECT_EQ(accepts(std::to_string(v)), v >= b.lo && v <= b.hi) << b.schema << " value " << v;
    }
    EXPECT_FALSE(accepts("007")) << b.schema;
    EXPECT_FALSE(accepts("-0")) << b.schema;
  }
}

// Per-token masking cost on real vocabularies, at a structural position and inside a string.
TEST(GrammarJson, MaskTimePerToken) {
  auto gbnf = json_schema_to_gbnf(test_schemas()[0]);
  ASSERT_TRUE(gbnf.has_value());
  auto schema_grammar = *Grammar::parse(*gbnf);
  auto object_grammar = *Grammar::parse(json_object_gbnf());
  for (const TestVocab& v : vocabs()) {
    ASSERT_TRUE(v.vocab);
    for (const char* prefix : {"{", "{\"name\": \"ab", "{\"a\": [{\"b\": [1, \"x"}) {
      const bool generic = std::string_view(prefix).find("\"a\"") != std::string_view::npos;
      const auto& grammar = generic ? object_grammar : schema_grammar;
      GrammarMatcher matcher(grammar, v.vocab);
      ASSERT_TRUE(matcher.accept_text(prefix).has_value());
      std::vector<uint8_t> allowed;
      constexpr int kRepeats = 20;
      const auto start = std::chrono::steady_clock::now();
      for (int i = 0; i < kRepeats; ++i) ASSERT_TRUE(matcher.allowed_tokens(allowed).has_value());
      const double ms =
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
              .count() /
          kRepeats;
      size_t n_allowed = 0;
      for (uint8_t a : allowed) n_allowed += a;
      std::printf("[ mask ] %s after '%s': %.3f ms per token (%zu of %zu allowed)\n",
                  v.name.c_str(), prefix, ms, n_allowed, allowed.size());
      EXPECT_GT(n_allowed, 0u);
    }
  }
}

}  // namespace
}  // namespace edgelm::runtime
