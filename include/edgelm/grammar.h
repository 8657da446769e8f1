// Constrained decoding: GBNF grammars (llama.cpp syntax), a matcher over UTF-8 text that masks the
// vocabulary, and JSON-schema -> GBNF conversion for structured outputs.
//
// GBNF as accepted here:
//   name ::= alternatives        rule definition; names use [A-Za-z0-9_-]; `root` is the start rule
//   a b | c                      sequence and alternation;  ( ... ) grouping
//   "lit\n"  [a-z0-9_]  [^"\\]   literals and character classes (ranges, negation); `.` is any char
//   \n \r \t \\ \" \' \[ \] \- \/ \xHH \uHHHH \UHHHHHHHH   escapes inside literals and classes
//   x*  x+  x?  x{m}  x{m,}  x{m,n}  x{,n}                 repetition
//   # comment to end of line     newlines are ordinary whitespace; a rule ends where `name ::=`
//   starts
// Left-recursive rules (also through nullable prefixes) are rejected with an error.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "edgelm/error.h"
#include "edgelm/tokenizer.h"

namespace edgelm::runtime {

// One element of a compiled alternative. Alternatives are runs of elements ending with kEnd.
struct GrammarElement {
  enum class Kind : uint8_t { kEnd, kRuleRef, kChars };
  Kind kind = Kind::kEnd;
  uint32_t index = 0;  // rule id for kRuleRef, character class id for kChars
};

// A set of Unicode code points: ranges (inclusive), possibly negated.
struct CharClass {
  bool negated = false;
  std::vector<std::pair<uint32_t, uint32_t>> ranges;
  uint64_t ascii[2] = {0, 0};  // membership bitmap for code points < 128 (negation applied)

  bool matches(uint32_t code_point) const;
  // Whether some code point in [lo, hi] matches (used for incomplete UTF-8 sequences).
  bool may_match(uint32_t lo, uint32_t hi) const;
};

// A parsed, compiled, immutable grammar; share it between matchers.
class Grammar {
 public:
  // Errors (kInvalidFormat) carry "line:col" and what is wrong: syntax, undefined rule, duplicate
  // rule, missing root, left recursion, or size limits (untrusted grammars cannot blow up memory).
  static Result<std::shared_ptr<const Grammar>> parse(std::string_view text,
                                                      std::string_view root_rule = "root");

  uint32_t root() const { return root_; }
  const std::vector<GrammarElement>& elements() const { return elements_; }
  // Per rule, the element offsets where each alternative starts.
  const std::vector<std::vector<uint32_t>>& rule_alternatives() const { return alternatives_; }
  const std::vector<std::string>& rule_names() const { return rule_names_; }
  const std::vector<CharClass>& char_classes() const { return classes_; }

 private:
  friend class GrammarCompiler;
  uint32_t root_ = 0;
  std::vector<GrammarElement> elements_;
  std::vector<std::vector<uint32_t>> alternatives_;
  std::vector<std::string> rule_names_;
  std::vector<CharClass> classes_;
};

// The vocabulary prepared for masking: token texts (raw UTF-8 bytes, as they appear in the output;
// possibly incomplete UTF-8 for byte-level BPE) in a prefix trie, plus the end-of-generation ids.
// Tokens with empty text (control tokens) are never allowed; EOG tokens only at a complete parse.
class GrammarVocab {
 public:
  static Result<std::shared_ptr<const GrammarVocab>> build(std::vector<std::string> token_texts,
                                                           std::vector<int32_t> eog_tokens);
  // A model's vocabulary: each token's output bytes (Tokenizer::token_to_piece), control tokens
  // empty, the tokenizer's end-of-generation tokens as EOG.
  static Result<std::shared_ptr<const GrammarVocab>> from_tokenizer(
      const tokenizer::Tokenizer& tokenizer);
  size_t size() const { return texts_.size(); }
  const std::string& text(int32_t token) const { return texts_[static_cast<size_t>(token)]; }
  bool is_eog(int32_t token) const { return is_eog_[static_cast<size_t>(token)] != 0; }

  // Trie in preorder: node i's children follow it; a child's subtree ends at its subtree_end.
  struct TrieNode {
    uint32_t subtree_end = 0;
    uint32_t depth = 0;  // length of the byte path from the root
    uint32_t tokens_begin = 0,
             tokens_end = 0;  // tokens whose text ends here: sorted_tokens()[b, e)
    uint8_t byte = 0;
  };
  const std::vector<TrieNode>& trie() const { return trie_; }
  const std::vector<int32_t>& sorted_tokens() const { return sorted_tokens_; }

 private:
  std::vector<std::string> texts_;
  std::vector<uint8_t> is_eog_;
  std::vector<TrieNode> trie_;
  std::vector<int32_t> sorted_tokens_;
};

// Tracks where a generation is in the grammar: the set of parser stacks plus any incomplete UTF-8
// sequence. Not thread-safe; one per sequence.
class GrammarMatcher {
 public:
  GrammarMatcher(std::shared_ptr<const Grammar> grammar, std::shared_ptr<const GrammarVocab> vocab);
  ~GrammarMatcher();
  GrammarMatcher(const GrammarMatcher&) = delete;
  GrammarMatcher& operator=(const GrammarMatcher&) = delete;

  size_t vocab_size() const;
  // allowed[t] = 1 when token t may come next (resized to vocab_size()). Errors only when the
  // grammar is so ambiguous that the number of parser stacks exceeds the limit.
  Status allowed_tokens(std::vector<uint8_t>& allowed);
  bool token_allowed(int32_t token);
  Status accept_token(int32_t token);  // kInvalidArgument when the token is not allowed

  // Raw text, independent of the vocabulary (prefills, tests).
  bool text_allowed(std::string_view text);
  Status accept_text(std::string_view text);

  bool is_complete() const;  // the text so far is a full sentence of the grammar
  bool is_finished() const { return finished_; }  // an EOG token was accepted
  void reset();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  bool finished_ = false;
};

// GBNF for any JSON value whose top level is an object (OpenAI response_format json_object).
std::string_view json_object_gbnf();

// Converts a JSON schema (the OpenAI structured-output subset) to GBNF:
//   object: properties (emitted in the schema's order), required, additionalProperties
//           (false / true / a schema; ABSENT counts as false when properties are listed, as any
//           value for a bare {"type": "object"}); every key in `required` must be in properties
//   array:  items, minItems, maxItems (counts <= 1000)
//   string: minLength, maxLength, format date | time | date-time | uuid
//   integer: minimum, maximum, exclusiveMinimum, exclusiveMaximum (|bound| <= 1e15), exact
//   number, boolean, null, const, enum, anyOf, oneOf (treated as anyOf), single-element allOf,
//   type lists, $ref to #/$defs/..., #/definitions/... or # (recursive schemas work).
// Output whitespace is bounded (no endless indentation); numbers have at most 16 integral and
// 16 fractional digits and a 2-digit exponent. Unknown keywords such as description/title are
// ignored. kUnsupported names the schema path of a constraint that cannot be enforced (pattern,
// number bounds, multipleOf, prefixItems, ...); kInvalidArgument a malformed schema.
Result<std::string> json_schema_to_gbnf(std::string_view schema_json);

}  // namespace edgelm::runtime
