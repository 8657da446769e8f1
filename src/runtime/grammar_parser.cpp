// GBNF text -> compiled Grammar (rules as flat element runs, interned character classes).
#include <algorithm>
#include <map>
#include <string>
#include <unordered_map>

#include "edgelm/grammar.h"

namespace edgelm::runtime {
namespace {

// Limits so an untrusted grammar (API request, CLI file) cannot exhaust memory.
constexpr size_t kMaxGrammarBytes = 1 << 20;
constexpr size_t kMaxElements = 1 << 20;
constexpr size_t kMaxRules = 1 << 16;
constexpr uint32_t kMaxRepetition = 10000;
constexpr int kMaxNesting = 256;
constexpr uint32_t kMaxCodePoint = 0x10FFFF;

bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-';
}

using Sequence = std::vector<GrammarElement>;
using Alternatives = std::vector<Sequence>;

}  // namespace

bool CharClass::matches(uint32_t code_point) const {
  if (code_point < 128) return (ascii[code_point >> 6] >> (code_point & 63)) & 1;
  bool in_ranges = false;
  for (const auto& [lo, hi] : ranges) {
    if (code_point >= lo && code_point <= hi) {
      in_ranges = true;
      break;
    }
  }
  return in_ranges != negated;
}

bool CharClass::may_match(uint32_t lo, uint32_t hi) const {
  if (!negated) {
    for (const auto& [a, b] : ranges) {
      if (a <= hi && b >= lo) return true;
    }
    return false;
  }
  // Negated: some code point of [lo, hi] escapes every range unless the ranges cover it all.
  uint32_t next = lo;  // smallest code point not yet known to be covered
  bool progress = true;
  while (progress && next <= hi) {
    progress = false;
    for (const auto& [a, b] : ranges) {
      if (a <= next && b >= next) {
        if (b >= hi) return false;
        next = b + 1;
        progress = true;
      }
    }
  }
  return next <= hi;
}

// Builds a Grammar while parsing; errors point at line:col of the offending text.
class GrammarCompiler {
 public:
  explicit GrammarCompiler(std::string_view text) : text_(text) {}

  Result<std::shared_ptr<const Grammar>> run(std::string_view root_rule) {
    if (text_.size() > kMaxGrammarBytes) {
      return make_error(ErrorCode::kOutOfRange, "grammar: text of " + std::to_string(text_.size()) +
                                                    " bytes exceeds the limit of " +
                                                    std::to_string(kMaxGrammarBytes));
    }
    skip_space();
    while (pos_ < text_.size()) {
      EDGELM_CHECK(parse_rule());
      skip_space();
    }
    for (size_t r = 0; r < rules_.size(); ++r) {
      if (!defined_[r]) {
        return error_at(first_use_[r], "rule '" + names_[r] + "' is used but never defined");
      }
    }
    auto root = ids_.find(std::string(root_rule));
    if (root == ids_.end()) {
      return make_error(ErrorCode::kInvalidFormat,
                        "grammar: no '" + std::string(root_rule) + "' rule defined");
    }
    grammar_->root_ = root->second;
    EDGELM_CHECK(check_left_recursion());
    flatten();
    return std::shared_ptr<const Grammar>(std::move(grammar_));
  }

 private:
  Error error_at(size_t offset, const std::string& what) const {
    size_t line = 1, col = 1;
    for (size_t i = 0; i < offset && i < text_.size(); ++i) {
      if (text_[i] == '\n') {
        ++line;
        col = 1;
      } else {
        ++col;
      }
    }
    return make_error(ErrorCode::kInvalidFormat,
                      "grammar:" + std::to_string(line) + ":" + std::to_string(col) + ": " + what);
  }

  void skip_space() {
    while (pos_ < text_.size()) {
      const char c = text_[pos_];
      if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
        ++pos_;
      } else if (c == '#') {
        while (pos_ < text_.size() && text_[pos_] != '\n') ++pos_;
      } else {
        break;
      }
    }
  }

  std::string_view read_name() {
    const size_t start = pos_;
    while (pos_ < text_.size() && is_name_char(text_[pos_])) ++pos_;
    return text_.substr(start, pos_ - start);
  }

  // True when the text at pos_ is `name ::=` (the start of the next rule).
  bool at_rule_start() {
    const size_t saved = pos_;
    const bool is_rule = !read_name().empty() && (skip_space(), text_.substr(pos_, 3) == "::=");
    pos_ = saved;
    return is_rule;
  }

  Result<uint32_t> rule_id(std::string_view name, size_t offset) {
    auto it = ids_.find(std::string(name));
    if (it != ids_.end()) return it->second;
    if (rules_.size() >= kMaxRules) {
      return error_at(offset, "more than " + std::to_string(kMaxRules) + " rules");
    }
    const auto id = static_cast<uint32_t>(rules_.size());
    ids_.emplace(std::string(name), id);
    names_.emplace_back(name);
    rules_.emplace_back();
    defined_.push_back(false);
    first_use_.push_back(offset);
    return id;
  }

  // Groups and repetitions become rules named "parent#N" ('#' cannot appear in a user's name).
  Result<uint32_t> new_helper_rule(uint32_t parent, Alternatives alternatives) {
    if (rules_.size() >= kMaxRules) {
      return error_at(pos_, "grammar expands to more than " + std::to_string(kMaxRules) + " rules");
    }
    const auto id = static_cast<uint32_t>(rules_.size());
    names_.push_back(display_name(parent) + "#" + std::to_string(++helper_count_));
    rules_.push_back(std::move(alternatives));
    defined_.push_back(true);
    first_use_.push_back(pos_);
    return id;
  }

  Status count_elements(size_t n) {
    element_count_ += n;
    if (element_count_ > kMaxElements) {
      return error_at(pos_,
                      "grammar expands to more than " + std::to_string(kMaxElements) + " elements");
    }
    return {};
  }

  Status parse_rule() {
    const size_t start = pos_;
    const std::string_view name = read_name();
    if (name.empty()) return error_at(start, "expected a rule name");
    skip_space();
    if (text_.substr(pos_, 3) != "::=") return error_at(pos_, "expected '::=' after rule name");
    pos_ += 3;
    EDGELM_TRY(const uint32_t id, rule_id(name, start));
    if (defined_[id]) return error_at(start, "rule '" + std::string(name) + "' is defined twice");
    defined_[id] = true;
    EDGELM_TRY(Alternatives alternatives, parse_alternatives(id, 0));
    rules_[id] = std::move(alternatives);
    return {};
  }

  Result<Alternatives> parse_alternatives(uint32_t rule, int depth) {
    Alternatives alternatives;
    while (true) {
      EDGELM_TRY(Sequence sequence, parse_sequence(rule, depth));
      alternatives.push_back(std::move(sequence));
      skip_space();
      if (pos_ < text_.size() && text_[pos_] == '|') {
        ++pos_;
        continue;
      }
      return alternatives;
    }
  }

  Result<Sequence> parse_sequence(uint32_t rule, int depth) {
    Sequence sequence;
    while (true) {
      skip_space();
      if (pos_ >= text_.size()) break;
      const char c = text_[pos_];
      if (c == '|' || c == ')') break;
      if (is_name_char(c) && at_rule_start()) break;
      const size_t item_start = pos_;
      Sequence item;
      if (c == '"') {
        EDGELM_CHECK(parse_literal(item));
      } else if (c == '[') {
        EDGELM_TRY(const uint32_t cls, parse_class());
        item.push_back({GrammarElement::Kind::kChars, cls});
      } else if (c == '.') {
        ++pos_;
        CharClass any;
        any.negated = true;
        item.push_back({GrammarElement::Kind::kChars, intern_class(std::move(any))});
      } else if (c == '(') {
        if (depth >= kMaxNesting) return error_at(pos_, "parentheses nested too deeply");
        ++pos_;
        EDGELM_TRY(Alternatives group, parse_alternatives(rule, depth + 1));
        skip_space();
        if (pos_ >= text_.size() || text_[pos_] != ')') return error_at(pos_, "expected ')'");
        ++pos_;
        EDGELM_TRY(const uint32_t id, new_helper_rule(rule, std::move(group)));
        item.push_back({GrammarElement::Kind::kRuleRef, id});
      } else if (is_name_char(c)) {
        const std::string_view name = read_name();
        EDGELM_TRY(const uint32_t id, rule_id(name, item_start));
        item.push_back({GrammarElement::Kind::kRuleRef, id});
      } else {
        return error_at(pos_, std::string("unexpected character '") + c + "'");
      }
      EDGELM_CHECK(parse_repetition(rule, item));
      EDGELM_CHECK(count_elements(item.size()));
      sequence.insert(sequence.end(), item.begin(), item.end());
    }
    return sequence;
  }

  Result<uint32_t> parse_count() {
    const size_t start = pos_;
    uint64_t value = 0;
    while (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9') {
      value = value * 10 + static_cast<uint64_t>(text_[pos_] - '0');
      if (value > kMaxRepetition) {
        return error_at(start, "repetition count exceeds " + std::to_string(kMaxRepetition));
      }
      ++pos_;
    }
    return static_cast<uint32_t>(value);
  }

  // Rewrites `item` (a literal's characters or one element) into its repeated form.
  Status parse_repetition(uint32_t rule, Sequence& item) {
    if (pos_ >= text_.size()) return {};
    const char c = text_[pos_];
    uint32_t min = 0, max = 0;
    bool unbounded = false;
    if (c == '*') {
      unbounded = true;
    } else if (c == '+') {
      min = 1;
      unbounded = true;
    } else if (c == '?') {
      max = 1;
    } else if (c == '{') {
      const size_t brace = pos_;
      ++pos_;
      skip_space();
      const bool has_min = pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9';
      EDGELM_TRY(min, parse_count());
      skip_space();
      if (pos_ < text_.size() && text_[pos_] == ',') {
        ++pos_;
        skip_space();
        if (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9') {
          EDGELM_TRY(max, parse_count());
        } else {
          unbounded = true;
        }
      } else {
        if (!has_min) return error_at(brace, "expected a count in '{...}'");
        max = min;
      }
      skip_space();
      if (pos_ >= text_.size() || text_[pos_] != '}') return error_at(pos_, "expected '}'");
      if (!unbounded && max < min) return error_at(brace, "repetition {m,n} with n < m");
    } else {
      return {};
    }
    ++pos_;
    if (item.empty()) return {};  // "" repeated is still nothing

    Sequence unit = item;
    if (unit.size() > 1) {  // a multi-character literal repeats as a whole
      EDGELM_TRY(const uint32_t id, new_helper_rule(rule, Alternatives{unit}));
      unit = {{GrammarElement::Kind::kRuleRef, id}};
    }
    Sequence result;
    for (uint32_t i = 0; i < min; ++i) result.push_back(unit[0]);
    if (unbounded) {
      // tail ::= unit tail | ε  (right recursion: the matcher does not grow its stack on it)
      EDGELM_TRY(const uint32_t tail, new_helper_rule(rule, {}));
      rules_[tail] = {{unit[0], {GrammarElement::Kind::kRuleRef, tail}}, {}};
      result.push_back({GrammarElement::Kind::kRuleRef, tail});
    } else if (max > min) {
      // opt_k ::= unit opt_(k-1) | ε, for k = 1..max-min
      uint32_t inner = 0;
      for (uint32_t k = 1; k <= max - min; ++k) {
        Sequence first = {unit[0]};
        if (k > 1) first.push_back({GrammarElement::Kind::kRuleRef, inner});
        EDGELM_TRY(inner, new_helper_rule(rule, Alternatives{first, {}}));
      }
      result.push_back({GrammarElement::Kind::kRuleRef, inner});
    }
    EDGELM_CHECK(count_elements(result.size() + 2 * (max > min ? max - min : 1)));
    item = std::move(result);
    return {};
  }

  // Decodes one UTF-8 code point from the grammar text.
  Result<uint32_t> read_utf8() {
    const auto lead = static_cast<uint8_t>(text_[pos_]);
    int extra = lead < 0x80         ? 0
                : (lead >> 5) == 6  ? 1
                : (lead >> 4) == 14 ? 2
                : (lead >> 3) == 30 ? 3
                                    : -1;
    if (extra < 0) return error_at(pos_, "invalid UTF-8 byte");
    uint32_t cp = extra == 0 ? lead : lead & (0x3F >> extra);
    const size_t start = pos_++;
    for (int i = 0; i < extra; ++i, ++pos_) {
      if (pos_ >= text_.size() || (static_cast<uint8_t>(text_[pos_]) & 0xC0) != 0x80) {
        return error_at(start, "truncated UTF-8 sequence");
      }
      cp = (cp << 6) | (static_cast<uint8_t>(text_[pos_]) & 0x3F);
    }
    static constexpr uint32_t kMinForLength[] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMinForLength[extra] || cp > kMaxCodePoint || (cp >= 0xD800 && cp <= 0xDFFF)) {
      return error_at(start, "invalid UTF-8 sequence");
    }
    return cp;
  }

  Result<uint32_t> read_hex(int digits) {
    uint32_t value = 0;
    const size_t start = pos_;
    for (int i = 0; i < digits; ++i, ++pos_) {
      if (pos_ >= text_.size()) return error_at(start, "truncated hex escape");
      const char h = text_[pos_];
      const int d = h >= '0' && h <= '9'   ? h - '0'
                    : h >= 'a' && h <= 'f' ? h - 'a' + 10
                    : h >= 'A' && h <= 'F' ? h - 'A' + 10
                                           : -1;
      if (d < 0) return error_at(pos_, "invalid hex digit in escape");
      value = value * 16 + static_cast<uint32_t>(d);
    }
    if (value > kMaxCodePoint) return error_at(start, "escaped code point beyond U+10FFFF");
    return value;
  }

  // One character of a literal or class: an escape or a UTF-8 code point.
  Result<uint32_t> read_char() {
    if (pos_ >= text_.size()) return error_at(pos_, "unexpected end of grammar");
    if (text_[pos_] != '\\') return read_utf8();
    const size_t start = pos_;
    if (++pos_ >= text_.size()) return error_at(start, "unfinished escape");
    const char e = text_[pos_++];
    switch (e) {
      case 'n':
        return uint32_t{'\n'};
      case 'r':
        return uint32_t{'\r'};
      case 't':
        return uint32_t{'\t'};
      case '\\':
      case '"':
      case '\'':
      case '[':
      case ']':
      case '-':
      case '/':
      case '^':
        return static_cast<uint32_t>(e);
      case 'x':
        return read_hex(2);
      case 'u':
        return read_hex(4);
      case 'U':
        return read_hex(8);
      default:
        return error_at(start, std::string("unknown escape '\\") + e + "'");
    }
  }

  Status parse_literal(Sequence& out) {
    const size_t start = pos_++;
    while (true) {
      if (pos_ >= text_.size()) return error_at(start, "unterminated string literal");
      if (text_[pos_] == '"') {
        ++pos_;
        return {};
      }
      EDGELM_TRY(const uint32_t cp, read_char());
      CharClass single;
      single.ranges.push_back({cp, cp});
      out.push_back({GrammarElement::Kind::kChars, intern_class(std::move(single))});
    }
  }

  Result<uint32_t> parse_class() {
    const size_t start = pos_++;
    CharClass cls;
    if (pos_ < text_.size() && text_[pos_] == '^') {
      cls.negated = true;
      ++pos_;
    }
    while (true) {
      if (pos_ >= text_.size()) return error_at(start, "unterminated character class");
      if (text_[pos_] == ']') {
        ++pos_;
        break;
      }
      const size_t item = pos_;
      EDGELM_TRY(const uint32_t lo, read_char());
      uint32_t hi = lo;
      if (pos_ + 1 < text_.size() && text_[pos_] == '-' && text_[pos_ + 1] != ']') {
        ++pos_;
        EDGELM_TRY(hi, read_char());
        if (hi < lo) return error_at(item, "character range is reversed");
      }
      cls.ranges.push_back({lo, hi});
    }
    return intern_class(std::move(cls));
  }

  uint32_t intern_class(CharClass cls) {
    std::sort(cls.ranges.begin(), cls.ranges.end());
    for (uint32_t cp = 0; cp < 128; ++cp) {
      bool in = false;
      for (const auto& [lo, hi] : cls.ranges) in = in || (cp >= lo && cp <= hi);
      if (in != cls.negated) cls.ascii[cp >> 6] |= uint64_t{1} << (cp & 63);
    }
    std::string key(1, cls.negated ? '^' : '+');
    for (const auto& [lo, hi] : cls.ranges)
      key += std::to_string(lo) + "-" + std::to_string(hi) + ",";
    auto [it, inserted] = class_ids_.emplace(key, static_cast<uint32_t>(grammar_->classes_.size()));
    if (inserted) grammar_->classes_.push_back(std::move(cls));
    return it->second;
  }

  // A rule is left-recursive when it can reach itself without consuming a character.
  Status check_left_recursion() {
    const size_t n = rules_.size();
    std::vector<bool> nullable(n, false);
    for (bool changed = true; changed;) {
      changed = false;
      for (size_t r = 0; r < n; ++r) {
        if (nullable[r]) continue;
        for (const Sequence& alt : rules_[r]) {
          const bool all_nullable =
              std::all_of(alt.begin(), alt.end(), [&](const GrammarElement& e) {
                return e.kind == GrammarElement::Kind::kRuleRef && nullable[e.index];
              });
          if (all_nullable) {
            nullable[r] = true;
            changed = true;
            break;
          }
        }
      }
    }
    // left_edges[r]: rules that can start r's expansion.
    std::vector<std::vector<uint32_t>> left_edges(n);
    for (size_t r = 0; r < n; ++r) {
      for (const Sequence& alt : rules_[r]) {
        for (const GrammarElement& e : alt) {
          if (e.kind != GrammarElement::Kind::kRuleRef) break;
          left_edges[r].push_back(e.index);
          if (!nullable[e.index]) break;
        }
      }
    }
    // Iterative DFS with colours; a back edge is a cycle.
    std::vector<uint8_t> colour(n, 0);  // 0 new, 1 on the path, 2 done
    std::vector<std::pair<uint32_t, size_t>> path;
    for (uint32_t start = 0; start < n; ++start) {
      if (colour[start]) continue;
      path.push_back({start, 0});
      colour[start] = 1;
      while (!path.empty()) {
        auto& [rule, next] = path.back();
        if (next == left_edges[rule].size()) {
          colour[rule] = 2;
          path.pop_back();
          continue;
        }
        const uint32_t to = left_edges[rule][next++];
        if (colour[to] == 1) {
          return make_error(ErrorCode::kInvalidFormat,
                            "grammar: rule '" + display_name(to) + "' is left-recursive");
        }
        if (colour[to] == 0) {
          colour[to] = 1;
          path.push_back({to, 0});
        }
      }
    }
    return {};
  }

  // Helper rules are named after their parent; report the user's rule.
  std::string display_name(uint32_t rule) const {
    const std::string& name = names_[rule];
    return name.substr(0, name.find('#'));
  }

  void flatten() {
    grammar_->rule_names_ = names_;
    grammar_->alternatives_.resize(rules_.size());
    for (size_t r = 0; r < rules_.size(); ++r) {
      for (const Sequence& alt : rules_[r]) {
        grammar_->alternatives_[r].push_back(static_cast<uint32_t>(grammar_->elements_.size()));
        grammar_->elements_.insert(grammar_->elements_.end(), alt.begin(), alt.end());
        grammar_->elements_.push_back({GrammarElement::Kind::kEnd, 0});
      }
    }
  }

  std::string_view text_;
  size_t pos_ = 0;
  std::unique_ptr<Grammar> grammar_ = std::make_unique<Grammar>();
  std::unordered_map<std::string, uint32_t> ids_;
  std::vector<std::string> names_;
  std::vector<Alternatives> rules_;
  std::vector<bool> defined_;
  std::vector<size_t> first_use_;
  std::map<std::string, uint32_t> class_ids_;
  size_t element_count_ = 0;
  uint32_t helper_count_ = 0;
};

Result<std::shared_ptr<const Grammar>> Grammar::parse(std::string_view text,
                                                      std::string_view root_rule) {
  return GrammarCompiler(text).run(root_rule);
}

}  // namespace edgelm::runtime
