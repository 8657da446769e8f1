// jinja2's builtin filters (plus transformers' tojson), with jinja2's argument names and defaults.
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <optional>

#include "template/interpreter.h"
#include "template/template_error.h"
#include "template/utf8.h"

namespace edgelm::jinja {

std::string replace_string(const std::string& s, const std::string& old, const std::string& repl,
                           int64_t count, Interpreter& in);

namespace {

// Arguments by position or keyword, as Python binds them.
class Args {
 public:
  explicit Args(const CallArgs& args) : args_(args) {}
  const Value* get(size_t index, const char* keyword) const {
    if (index < args_.positional.size()) return &args_.positional[index];
    for (const auto& [k, v] : args_.keyword)
      if (k == keyword) return &v;
    return nullptr;
  }
  bool flag(size_t index, const char* keyword, bool fallback) const {
    const Value* v = get(index, keyword);
    return v ? truthy(*v) : fallback;
  }
  bool keyword_flag(const char* keyword, bool fallback) const {
    for (const auto& [k, v] : args_.keyword)
      if (k == keyword) return truthy(v);
    return fallback;
  }
  int64_t integer(size_t index, const char* keyword, int64_t fallback) const {
    const Value* v = get(index, keyword);
    if (!v || v->is_none()) return fallback;
    if (!v->is_integral()) fail(std::string("argument '") + keyword + "' must be an integer");
    return v->as_int();
  }
  std::string text(size_t index, const char* keyword, const std::string& fallback) const {
    const Value* v = get(index, keyword);
    return v ? to_str(*v) : fallback;
  }

 private:
  const CallArgs& args_;
};

// jinja2 resolves "a.b.0" attribute paths item-first, with integer parts as indexes.
Value resolve_attribute(const Value& item, const std::string& path) {
  Value current = item;
  size_t start = 0;
  while (true) {
    const size_t dot = path.find('.', start);
    const std::string part =
        path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    const bool numeric = !part.empty() && std::all_of(part.begin(), part.end(),
                                                      [](char c) { return c >= '0' && c <= '9'; });
    if (current.is_undefined()) return current;
    current = numeric && part.size() < 10
                  ? get_item(current, Value::from_int(std::atoll(part.c_str())))
                  : get_item(current, Value::from_string(part));
    if (dot == std::string::npos) return current;
    start = dot + 1;
  }
}

Value sort_key(const Value& v, bool case_sensitive) {
  if (!case_sensitive && v.is_string()) return Value::from_string(utf8::lower(v.text));
  return v;
}

void sort_values(std::vector<Value>& items, const std::function<Value(const Value&)>& key,
                 bool reverse) {
  std::vector<std::pair<Value, size_t>> keyed;
  keyed.reserve(items.size());
  for (size_t i = 0; i < items.size(); ++i) keyed.emplace_back(key(items[i]), i);
  std::stable_sort(keyed.begin(), keyed.end(), [&](const auto& a, const auto& b) {
    return reverse ? compare(b.first, a.first) < 0 : compare(a.first, b.first) < 0;
  });
  std::vector<Value> sorted;
  sorted.reserve(items.size());
  for (const auto& [k, i] : keyed) sorted.push_back(items[i]);
  items = std::move(sorted);
}

std::string html_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&#34;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::optional<int64_t> parse_int(std::string s, int base) {
  s = utf8::strip(s, nullptr, true, true);
  std::string digits;
  for (char c : s)
    if (c != '_') digits += c;
  if (digits.empty()) return std::nullopt;
  errno = 0;
  char* end = nullptr;
  const long long v = std::strtoll(digits.c_str(), &end, base);
  if (errno != 0 || *end != '\0') return std::nullopt;
  return static_cast<int64_t>(v);
}

std::optional<double> parse_float(const std::string& text) {
  const std::string s = utf8::strip(text, nullptr, true, true);
  if (s.empty()) return std::nullopt;
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (*end != '\0') return std::nullopt;
  return v;
}

// select/reject/selectattr/rejectattr/map share the "apply a test or filter by name" machinery.
std::vector<Value> select_items(Interpreter& in, const Value& operand, const CallArgs& args,
                                bool by_attribute, bool keep_matches) {
  std::vector<Value> kept;
  size_t next_arg = 0;
  std::string attribute;
  if (by_attribute) {
    if (args.positional.empty()) fail("missing attribute argument");
    attribute = to_str(args.positional[next_arg++]);
  }
  std::string test;
  if (next_arg < args.positional.size()) test = to_str(args.positional[next_arg++]);
  CallArgs test_args;
  test_args.positional.assign(args.positional.begin() + static_cast<std::ptrdiff_t>(next_arg),
                              args.positional.end());
  test_args.keyword = args.keyword;
  for (const Value& item : iterate(operand)) {
    in.tick();
    const Value subject = by_attribute ? resolve_attribute(item, attribute) : item;
    bool match;
    if (test.empty()) {
      match = truthy(subject);
    } else {
      CallArgs copy = test_args;
      match = in.apply_test(test, subject, copy, Interpreter::kNested);
    }
    if (match == keep_matches) kept.push_back(item);
  }
  return kept;
}

}  // namespace

bool call_filter(Interpreter& in, const std::string& name, const Value& operand,
                 CallArgs& call_args, Value& result) {
  const Args args(call_args);
  in.tick();
  const auto text_of = [&]() { return to_str(operand); };
  const auto sized_string = [&](std::string s) {
    in.check_size(s.size());
    in.tick(s.size() / 64);
    return Value::from_string(std::move(s));
  };

  if (name == "safe" || name == "string" || name == "forceescape" || name == "e" ||
      name == "escape") {
    if (name == "safe")
      result = operand.is_undefined() ? Value::from_string("") : operand;
    else if (name == "string")
      result = sized_string(text_of());
    else
      result = sized_string(html_escape(text_of()));
    return true;
  }
  if (name == "trim") {
    const Value* chars = args.get(0, "chars");
    const std::string* set = chars && chars->is_string() ? &chars->text : nullptr;
    result = Value::from_string(utf8::strip(text_of(), set, true, true));
    return true;
  }
  if (name == "upper") return result = Value::from_string(utf8::upper(text_of())), true;
  if (name == "lower") return result = Value::from_string(utf8::lower(text_of())), true;
  if (name == "capitalize") return result = Value::from_string(utf8::capitalize(text_of())), true;
  if (name == "title") {
    // jinja2 capitalises each chunk after "-", whitespace or an opening bracket.
    const std::string s = text_of();
    std::string out;
    bool word_start = true;
    for (size_t pos = 0; pos < s.size();) {
      const char32_t cp = utf8::decode(s, pos);
      const bool separator =
          cp == '-' || utf8::is_space(cp) || cp == '(' || cp == '{' || cp == '[' || cp == '<';
      if (separator) {
        utf8::append(out, cp);
        word_start = true;
      } else {
        utf8::append(out, word_start ? utf8::to_upper(cp) : utf8::to_lower(cp));
        word_start = false;
      }
    }
    result = Value::from_string(std::move(out));
    return true;
  }
  if (name == "length" || name == "count")
    return result = Value::from_int(length_of(operand)), true;
  if (name == "wordcount") {
    int64_t words = 0;
    bool in_word = false;
    const std::string s = text_of();
    for (size_t pos = 0; pos < s.size();) {
      const char32_t cp = utf8::decode(s, pos);
      const bool word_char = utf8::is_alpha(cp) || utf8::is_digit(cp) || cp == '_';
      if (word_char && !in_word) ++words;
      in_word = word_char;
    }
    result = Value::from_int(words);
    return true;
  }
  if (name == "tojson") {
    const int64_t indent = args.integer(0, "indent", -1);
    if (indent > 64) fail("indent too large");
    result = sized_string(
        to_json(operand, static_cast<int>(indent), args.keyword_flag("sort_keys", false)));
    return true;
  }
  if (name == "default" || name == "d") {
    const bool boolean = args.flag(1, "boolean", false);
    const bool use_default = operand.is_undefined() || (boolean && !truthy(operand));
    const Value* fallback = args.get(0, "default_value");
    result = use_default ? (fallback ? *fallback : Value::from_string("")) : operand;
    return true;
  }
  if (name == "replace") {
    const Value* old_v = args.get(0, "old");
    const Value* new_v = args.get(1, "new");
    if (!old_v || !new_v) fail("replace needs 'old' and 'new'");
    result = Value::from_string(replace_string(text_of(), to_str(*old_v), to_str(*new_v),
                                               args.integer(2, "count", -1), in));
    return true;
  }
  if (name == "join") {
    const std::string separator = args.text(0, "d", "");
    const Value* attribute = args.get(1, "attribute");
    std::string out;
    bool first = true;
    for (const Value& item : iterate(operand)) {
      if (!first) out += separator;
      first = false;
      out += to_str(attribute ? resolve_attribute(item, to_str(*attribute)) : item);
      in.check_size(out.size());
    }
    result = sized_string(std::move(out));
    return true;
  }
  if (name == "first" || name == "last") {
    const std::vector<Value> items = iterate(operand);
    if (items.empty())
      result = Value::undefined("No " + name + " item, sequence was empty.");
    else
      result = name == "first" ? items.front() : items.back();
    return true;
  }
  if (name == "list") return result = Value::new_list(iterate(operand)), true;
  if (name == "reverse") {
    if (operand.is_string()) {
      std::vector<char32_t> cps = utf8::to_code_points(operand.text);
      std::reverse(cps.begin(), cps.end());
      result = Value::from_string(utf8::from_code_points(cps, 0, cps.size()));
    } else {
      std::vector<Value> items = iterate(operand);
      std::reverse(items.begin(), items.end());
      result = Value::new_list(std::move(items));
    }
    return true;
  }
  if (name == "int") {
    const int64_t fallback = args.integer(0, "default", 0);
    const int64_t base = args.integer(1, "base", 10);
    if (operand.is_integral()) {
      result = Value::from_int(operand.as_int());
    } else if (operand.kind == Kind::kFloat) {
      const double truncated = std::trunc(operand.number);
      result = std::isfinite(truncated) && std::fabs(truncated) < 9.2e18
                   ? Value::from_int(static_cast<int64_t>(truncated))
                   : Value::from_int(fallback);
    } else if (operand.is_string()) {
      int64_t value = fallback;
      const std::optional<int64_t> parsed = (base >= 2 && base <= 36)
                                                ? parse_int(operand.text, static_cast<int>(base))
                                                : std::nullopt;
      if (parsed.has_value()) {
        value = *parsed;
      } else {
        const std::optional<double> f = parse_float(operand.text);
        if (f && std::isfinite(*f) && std::fabs(*f) < 9.2e18)
          value = static_cast<int64_t>(std::trunc(*f));
      }
      result = Value::from_int(value);
    } else {
      result = Value::from_int(fallback);
    }
    return true;
  }
  if (name == "float") {
    const Value* fallback_v = args.get(0, "default");
    const double fallback = fallback_v && fallback_v->is_number() ? fallback_v->as_double() : 0.0;
    if (operand.is_number())
      result = Value::from_float(operand.as_double());
    else if (operand.is_string())
      result = Value::from_float(parse_float(operand.text).value_or(fallback));
    else
      result = Value::from_float(fallback);
    return true;
  }
  if (name == "abs") {
    if (operand.kind == Kind::kFloat)
      result = Value::from_float(std::fabs(operand.number));
    else if (operand.is_integral()) {
      if (operand.as_int() == INT64_MIN) fail("integer overflow");
      result = Value::from_int(std::llabs(operand.as_int()));
    } else
      fail("bad operand type for abs(): '" + type_name(operand) + "'");
    return true;
  }
  if (name == "round") {
    const int64_t precision = args.integer(0, "precision", 0);
    const std::string method = args.text(1, "method", "common");
    if (!operand.is_number()) fail("round needs a number");
    if (precision < -300 || precision > 300) fail("round precision out of range");
    if (method == "common" && operand.is_integral()) {
      result = Value::from_int(operand.as_int());  // Python round(int, n) keeps the int
      return true;
    }
    const double scale = std::pow(10.0, static_cast<double>(precision));
    const double x = operand.as_double() * scale;
    double r;
    if (method == "common")
      r = std::nearbyint(x);  // round-half-even, like Python's round()
    else if (method == "floor")
      r = std::floor(x);
    else if (method == "ceil")
      r = std::ceil(x);
    else
      fail("method must be common, ceil or floor");
    result = Value::from_float(r / scale);
    return true;
  }
  if (name == "items") {
    if (operand.is_undefined()) return result = Value::new_list(), true;
    if (!operand.is_dict() || operand.is_namespace())
      fail("can only get item pairs from a mapping");
    std::vector<Value> pairs;
    for (const auto& [k, v] : operand.dict->entries)
      pairs.push_back(Value::new_list({Value::from_string(k), v}, true));
    result = Value::new_list(std::move(pairs));
    return true;
  }
  if (name == "dictsort") {
    if (!operand.is_dict() || operand.is_namespace()) fail("dictsort needs a mapping");
    const bool case_sensitive = args.flag(0, "case_sensitive", false);
    const std::string by = args.text(1, "by", "key");
    const bool reverse = args.flag(2, "reverse", false);
    if (by != "key" && by != "value") fail("You can only sort by either 'key' or 'value'");
    std::vector<Value> pairs;
    for (const auto& [k, v] : operand.dict->entries)
      pairs.push_back(Value::new_list({Value::from_string(k), v}, true));
    sort_values(
        pairs,
        [&](const Value& p) {
          return sort_key(p.list->items[by == "key" ? 0 : 1], case_sensitive);
        },
        reverse);
    result = Value::new_list(std::move(pairs));
    return true;
  }
  if (name == "sort") {
    const bool reverse = args.flag(0, "reverse", false);
    const bool case_sensitive = args.flag(1, "case_sensitive", false);
    const Value* attribute = args.get(2, "attribute");
    std::vector<Value> items = iterate(operand);
    in.tick(items.size() * 8);
    sort_values(
        items,
        [&](const Value& v) {
          return sort_key(attribute ? resolve_attribute(v, to_str(*attribute)) : v, case_sensitive);
        },
        reverse);
    result = Value::new_list(std::move(items));
    return true;
  }
  if (name == "unique") {
    const bool case_sensitive = args.flag(0, "case_sensitive", false);
    const Value* attribute = args.get(1, "attribute");
    std::vector<Value> seen, out;
    for (const Value& item : iterate(operand)) {
      in.tick(seen.size() + 1);
      const Value key =
          sort_key(attribute ? resolve_attribute(item, to_str(*attribute)) : item, case_sensitive);
      if (std::any_of(seen.begin(), seen.end(), [&](const Value& s) { return equals(s, key); }))
        continue;
      seen.push_back(key);
      out.push_back(item);
    }
    result = Value::new_list(std::move(out));
    return true;
  }
  if (name == "min" || name == "max") {
    const bool case_sensitive = args.flag(0, "case_sensitive", false);
    const Value* attribute = args.get(1, "attribute");
    const std::vector<Value> items = iterate(operand);
    if (items.empty())
      return result = Value::undefined("No aggregated item, sequence was empty."), true;
    size_t best = 0;
    for (size_t i = 1; i < items.size(); ++i) {
      const auto key = [&](const Value& v) {
        return sort_key(attribute ? resolve_attribute(v, to_str(*attribute)) : v, case_sensitive);
      };
      const int c = compare(key(items[i]), key(items[best]));
      if (name == "min" ? c < 0 : c > 0) best = i;
    }
    result = items[best];
    return true;
  }
  if (name == "sum") {
    const Value* attribute = args.get(0, "attribute");
    const Value* start = args.get(1, "start");
    Value total = start ? *start : Value::from_int(0);
    for (const Value& item : iterate(operand)) {
      const Value v = attribute ? resolve_attribute(item, to_str(*attribute)) : item;
      if (!total.is_number() || !v.is_number()) fail("unsupported operand type(s) for +");
      if (total.is_integral() && v.is_integral()) {
        int64_t r;
        if (__builtin_add_overflow(total.as_int(), v.as_int(), &r)) fail("integer overflow");
        total = Value::from_int(r);
      } else {
        total = Value::from_float(total.as_double() + v.as_double());
      }
    }
    result = total;
    return true;
  }
  if (name == "select" || name == "reject" || name == "selectattr" || name == "rejectattr") {
    const bool by_attribute = name.size() > 6;
    result = Value::new_list(select_items(in, operand, call_args, by_attribute, name[0] == 's'));
    return true;
  }
  if (name == "map") {
    std::vector<Value> out;
    const Value* attribute = nullptr;
    const Value* fallback = nullptr;
    for (const auto& [k, v] : call_args.keyword) {
      if (k == "attribute") attribute = &v;
      if (k == "default") fallback = &v;
    }
    for (const Value& item : iterate(operand)) {
      in.tick();
      if (attribute) {
        Value v = resolve_attribute(item, to_str(*attribute));
        if (v.is_undefined() && fallback) v = *fallback;
        out.push_back(std::move(v));
      } else {
        if (call_args.positional.empty()) fail("map requires a filter argument");
        CallArgs filter_args;
        filter_args.positional.assign(call_args.positional.begin() + 1, call_args.positional.end());
        filter_args.keyword = call_args.keyword;
        out.push_back(in.apply_filter(to_str(call_args.positional[0]), item, filter_args,
                                      Interpreter::kNested));
      }
    }
    result = Value::new_list(std::move(out));
    return true;
  }
  if (name == "attr") {
    const Value* attribute = args.get(0, "name");
    if (!attribute) fail("attr needs a name");
    result = get_attribute(operand, to_str(*attribute));
    return true;
  }
  if (name == "indent") {
    const Value* width_v = args.get(0, "width");
    std::string indentation;
    if (width_v && width_v->is_string())
      indentation = width_v->text;
    else {
      const int64_t width = width_v ? (width_v->is_integral() ? width_v->as_int() : 4) : 4;
      if (width > 1024) fail("indent width too large");
      indentation.assign(static_cast<size_t>(std::max<int64_t>(0, width)), ' ');
    }
    const bool first = args.flag(1, "first", false);
    const bool blank = args.flag(2, "blank", false);
    const std::vector<std::string> lines = utf8::splitlines(text_of() + "\n");
    std::string out;
    for (size_t i = 0; i < lines.size(); ++i) {
      if (i > 0) {
        out += "\n";
        if (blank || !lines[i].empty()) out += indentation;
      }
      out += lines[i];
      in.check_size(out.size());
    }
    if (first) out = indentation + out;
    result = sized_string(std::move(out));
    return true;
  }
  if (name == "center") {
    const int64_t width = args.integer(0, "width", 80);
    const std::string s = text_of();
    const int64_t len = static_cast<int64_t>(utf8::length(s));
    if (width > 1 << 20) fail("center width too large");
    if (width <= len) return result = Value::from_string(s), true;
    const int64_t total = width - len;
    const int64_t left = total / 2 + (total & width & 1);  // CPython's split of the padding
    result = Value::from_string(std::string(static_cast<size_t>(left), ' ') + s +
                                std::string(static_cast<size_t>(total - left), ' '));
    return true;
  }
  return false;
}

}  // namespace edgelm::jinja
