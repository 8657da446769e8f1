// JSON schema -> GBNF, for OpenAI-style structured outputs.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "edgelm/grammar.h"

namespace edgelm::runtime {
namespace {

// ordered_json keeps the properties in the order the schema lists them (the output order).
using json = nlohmann::ordered_json;

constexpr size_t kMaxSchemaBytes = 1 << 20;
constexpr int kMaxDepth = 64;
constexpr uint64_t kMaxCount = 1000;
constexpr double kMaxBound = 1e15;  // integer bounds we enforce digit by digit  //
                                    // minItems/maxItems/minLength/maxLength bound

// Shared building blocks. `space` allows a little formatting but bounded, so a sampler cannot
// wander off into endless whitespace.
constexpr std::string_view kPrimitives[][2] = {
    {"space", R"(| " " | "\n" [ \t]{0,20})"},
    {"boolean", R"(("true" | "false") space)"},
    {"null", R"("null" space)"},
    {"char", R"([^"\\\x7F\x00-\x1F] | [\\] (["\\/bfnrt] | "u" [0-9a-fA-F]{4}))"},
    {"string", R"("\"" char* "\"" space)"},
    {"integral-part", R"([0] | [1-9] [0-9]{0,15})"},
    {"decimal-part", R"([0-9]{1,16})"},
    // Exponents of at most two digits keep every number a finite double.
    {"number", R"("-"? integral-part ("." decimal-part)? ([eE] [-+]? [0-9]{1,2})? space)"},
    {"integer", R"("-"? integral-part space)"},
    {"value", R"(object | array | string | number | boolean | null)"},
    {"object",
     R"("{" space (string ":" space value ("," space string ":" space value)*)? "}" space)"},
    {"array", R"("[" space (value ("," space value)*)? "]" space)"},
    {"uuid",
     R"("\"" [0-9a-fA-F]{8} "-" [0-9a-fA-F]{4} "-" [0-9a-fA-F]{4} "-" [0-9a-fA-F]{4} "-" [0-9a-fA-F]{12} "\"" space)"},
    {"date-part",
     R"([0-9]{4} "-" ("0" [1-9] | "1" [0-2]) "-" ("0" [1-9] | [1-2] [0-9] | "3" [0-1]))"},
    {"time-part",
     R"(([01] [0-9] | "2" [0-3]) ":" [0-5] [0-9] ":" [0-5] [0-9] ("." [0-9]{1,6})? ("Z" | [+-] ([01] [0-9] | "2" [0-3]) ":" [0-5] [0-9]))"},
    {"date", R"("\"" date-part "\"" space)"},
    {"time", R"("\"" time-part "\"" space)"},
    {"date-time", R"("\"" date-part "T" time-part "\"" space)"},
};

// Which primitives each primitive needs.
const std::map<std::string, std::vector<std::string>>& primitive_deps() {
  static const auto* deps = new std::map<std::string, std::vector<std::string>>{
      {"boolean", {"space"}},
      {"null", {"space"}},
      {"string", {"char", "space"}},
      {"number", {"integral-part", "decimal-part", "space"}},
      {"integer", {"integral-part", "space"}},
      {"value", {"object", "array", "string", "number", "boolean", "null"}},
      {"object", {"space", "string", "value"}},
      {"array", {"space", "value"}},
      {"uuid", {"space"}},
      {"date", {"date-part", "space"}},
      {"time", {"time-part", "space"}},
      {"date-time", {"date-part", "time-part", "space"}},
  };
  return *deps;
}

// A GBNF string literal for arbitrary UTF-8 text.
std::string gbnf_literal(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (u < 0x20 || u == 0x7F) {
      static constexpr char kHex[] = "0123456789ABCDEF";
      out += "\\x";
      out += kHex[u >> 4];
      out += kHex[u & 15];
    } else {
      out += c;
    }
  }
  return out + "\"";
}

// Decimal digits of a non-negative number as a string.
std::string digits(uint64_t v) {
  return std::to_string(v);
}

class SchemaConverter {
 public:
  explicit SchemaConverter(const json& root) : root_(root) {}

  Result<std::string> run() {
    EDGELM_TRY(std::string body, visit(root_, "#", 0));
    rules_.insert(rules_.begin(), {"root", body});
    std::string out;
    for (const auto& [name, rhs] : rules_) out += name + " ::= " + rhs + "\n";
    for (const auto& [name, rhs] : kPrimitives) {
      if (used_.count(std::string(name)))
        out += std::string(name) + " ::= " + std::string(rhs) + "\n";
    }
    return out;
  }

 private:
  static Error unsupported(const std::string& path, const std::string& what) {
    return make_error(ErrorCode::kUnsupported, "json schema at '" + path + "': " + what);
  }
  static Error invalid(const std::string& path, const std::string& what) {
    return make_error(ErrorCode::kInvalidArgument, "json schema at '" + path + "': " + what);
  }

  std::string use(const std::string& primitive) {
    if (used_.insert(primitive).second) {
      auto it = primitive_deps().find(primitive);
      if (it != primitive_deps().end()) {
        for (const std::string& dep : it->second) use(dep);
      }
    }
    return primitive;
  }

  // Adds a named rule and returns its name (unique, GBNF-safe).
  std::string add_rule(const std::string& hint, const std::string& rhs) {
    std::string name;
    for (char c : hint) {
      const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
      name += ok ? c : '-';
    }
    if (name.empty() || name.size() > 40) name = "r";
    name = "s-" + name + "-" + std::to_string(rules_.size());
    rules_.push_back({name, rhs});
    return name;
  }

  Result<uint64_t> read_count(const json& schema, const char* key, uint64_t fallback,
                              const std::string& path) {
    auto it = schema.find(key);
    if (it == schema.end()) return fallback;
    if (!it->is_number_unsigned() && !(it->is_number_integer() && it->get<int64_t>() >= 0)) {
      return invalid(path, std::string(key) + " must be a non-negative integer");
    }
    const auto value = it->get<uint64_t>();
    if (value > kMaxCount) {
      return unsupported(path, std::string(key) + " above " + std::to_string(kMaxCount));
    }
    return value;
  }

  // `item{min,max}` separated by `sep`, as a GBNF expression.
  static std::string separated_list(const std::string& item, const std::string& sep, uint64_t min,
                                    uint64_t max, bool unbounded) {
    if (!unbounded && max == 0) return "";
    std::string rest = "(" + sep + " " + item + ")";
    const uint64_t rest_min = min > 0 ? min - 1 : 0;
    std::string list = item + " " + rest;
    if (unbounded) {
      list += "{" + digits(rest_min) + ",}";
    } else {
      list += "{" + digits(rest_min) + "," + digits(max - 1) + "}";
    }
    return min == 0 ? "(" + list + ")?" : list;
  }

  Result<std::string> visit(const json& schema, const std::string& path, int depth) {
    if (depth > kMaxDepth)
      return unsupported(path, "nested deeper than " + std::to_string(kMaxDepth));
    if (schema.is_boolean()) {
      if (!schema.get<bool>()) return unsupported(path, "schema 'false' matches nothing");
      return use("value");
    }
    if (!schema.is_object()) return invalid(path, "a schema must be an object or a boolean");

    if (auto ref = schema.find("$ref"); ref != schema.end()) return visit_ref(*ref, path, depth);
    if (auto c = schema.find("const"); c != schema.end()) {
      return gbnf_literal(c->dump()) + " " + use("space");
    }
    if (auto e = schema.find("enum"); e != schema.end()) {
      if (!e->is_array() || e->empty()) return invalid(path + "/enum", "must be a non-empty array");
      std::string alternatives;
      for (const json& option : *e) {
        alternatives += (alternatives.empty() ? "" : " | ") + gbnf_literal(option.dump());
      }
      return "(" + alternatives + ") " + use("space");
    }
    for (const char* key : {"anyOf", "oneOf"}) {
      if (auto any = schema.find(key); any != schema.end()) {
        if (!any->is_array() || any->empty()) {
          return invalid(path + "/" + key, "must be a non-empty array");
        }
        std::string alternatives;
        for (size_t i = 0; i < any->size(); ++i) {
          EDGELM_TRY(std::string alt,
                     visit((*any)[i], path + "/" + key + "/" + std::to_string(i), depth + 1));
          alternatives += (alternatives.empty() ? "" : " | ") + add_rule(key, alt);
        }
        return "(" + alternatives + ")";
      }
    }
    if (auto all = schema.find("allOf"); all != schema.end()) {
      if (!all->is_array() || all->size() != 1) {
        return unsupported(path + "/allOf", "only a single-element allOf is supported");
      }
      return visit((*all)[0], path + "/allOf/0", depth + 1);
    }

    auto type = schema.find("type");
    if (type == schema.end()) {
      if (schema.contains("properties")) return visit_object(schema, path, depth);
      if (schema.contains("items")) return visit_array(schema, path, depth);
      return use("value");
    }
    if (type->is_array()) {
      if (type->empty()) return invalid(path + "/type", "empty type list");
      std::string alternatives;
      for (const json& t : *type) {
        json single = schema;
        single["type"] = t;
        EDGELM_TRY(std::string alt, visit(single, path, depth + 1));
        alternatives += (alternatives.empty() ? "" : " | ") + add_rule("type", alt);
      }
      return "(" + alternatives + ")";
    }
    if (!type->is_string()) return invalid(path + "/type", "must be a string or a list of strings");
    const std::string name = type->get<std::string>();
    if (name == "object") return visit_object(schema, path, depth);
    if (name == "array") return visit_array(schema, path, depth);
    if (name == "string") return visit_string(schema, path);
    if (name == "integer") return visit_integer(schema, path);
    if (name == "number") {
      for (const char* key :
           {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"}) {
        if (schema.contains(key))
          return unsupported(path, std::string("'") + key + "' on a number");
      }
      return use("number");
    }
    if (name == "boolean") return use("boolean");
    if (name == "null") return use("null");
    return invalid(path + "/type", "unknown type '" + name + "'");
  }

  Result<std::string> visit_ref(const json& ref, const std::string& path, int depth) {
    if (!ref.is_string()) return invalid(path + "/$ref", "must be a string");
    const std::string target = ref.get<std::string>();
    if (auto done = ref_rules_.find(target); done != ref_rules_.end()) return done->second;
    const json* node = nullptr;
    for (const char* prefix : {"#/$defs/", "#/definitions/"}) {
      const std::string p = prefix;
      if (target.rfind(p, 0) != 0) continue;
      const std::string section = p.substr(2, p.size() - 3);
      const std::string key = target.substr(p.size());
      auto defs = root_.find(section);
      if (defs != root_.end() && defs->is_object()) {
        auto it = defs->find(key);
        if (it != defs->end()) node = &*it;
      }
    }
    if (target == "#") node = &root_;
    if (node == nullptr) return unsupported(path + "/$ref", "cannot resolve '" + target + "'");
    // Name the rule before visiting, so recursive schemas refer to it.
    const std::string name = add_rule("ref-" + target.substr(target.rfind('/') + 1), "");
    const size_t index = rules_.size() - 1;
    ref_rules_[target] = name;
    EDGELM_TRY(std::string body, visit(*node, target, depth + 1));
    rules_[index].second = body;
    return name;
  }

  Result<std::string> visit_object(const json& schema, const std::string& path, int depth) {
    struct Property {
      std::string key;
      std::string rule;
      bool required;
    };
    std::vector<Property> properties;
    std::set<std::string> required;
    if (auto req = schema.find("required"); req != schema.end()) {
      if (!req->is_array()) return invalid(path + "/required", "must be an array of names");
      for (const json& r : *req) {
        if (!r.is_string()) return invalid(path + "/required", "must be an array of names");
        required.insert(r.get<std::string>());
      }
    }
    auto props = schema.find("properties");
    if (props != schema.end()) {
      if (!props->is_object()) return invalid(path + "/properties", "must be an object");
      for (const auto& [key, sub] : props->items()) {
        EDGELM_TRY(std::string value, visit(sub, path + "/properties/" + key, depth + 1));
        const std::string kv = gbnf_literal(json(key).dump()) + " " + use("space") + " \":\" " +
                               use("space") + " " + value;
        properties.push_back({key, add_rule(key + "-kv", kv), required.count(key) > 0});
      }
    }
    for (const std::string& r : required) {
      if (props == schema.end() || !props->contains(r)) {
        return unsupported(path + "/required", "'" + r + "' has no entry in properties");
      }
    }
    // additionalProperties: absent counts as false once properties are listed (the shape the
    // caller described), and as any value for a bare {"type": "object"}.
    std::string extra_value;
    auto additional = schema.find("additionalProperties");
    if (additional == schema.end()) {
      if (props == schema.end()) extra_value = use("value");
    } else if (additional->is_boolean()) {
      if (additional->get<bool>()) extra_value = use("value");
    } else {
      EDGELM_TRY(extra_value, visit(*additional, path + "/additionalProperties", depth + 1));
    }

    // after_i: the rest from property i once something was written (each entry starts with ",");
    // first_i: the rest from property i when nothing was written yet.
    std::string after_tail, first_tail;
    if (!extra_value.empty()) {
      const std::string extra_kv =
          add_rule("extra-kv", use("string") + " \":\" " + use("space") + " " + extra_value);
      after_tail = add_rule("extra-rest", "(\",\" " + use("space") + " " + extra_kv + ")*");
      first_tail = add_rule("extra-first", "(" + extra_kv + " " + after_tail + ")?");
    }
    for (size_t i = properties.size(); i-- > 0;) {
      const Property& p = properties[i];
      const std::string comma_kv = "\",\" " + use("space") + " " + p.rule;
      const std::string written = p.rule + " " + after_tail;
      const std::string after =
          p.required ? comma_kv + " " + after_tail : "(" + comma_kv + ")? " + after_tail;
      const std::string first =
          p.required ? written
                     : "(" + written + ") | " + (first_tail.empty() ? "\"\"" : first_tail);
      after_tail = add_rule(p.key + "-after", after);
      first_tail = add_rule(p.key + "-first", first);
    }
    return "\"{\" " + use("space") + " " + (first_tail.empty() ? "" : first_tail + " ") + "\"}\" " +
           use("space");
  }

  Result<std::string> visit_array(const json& schema, const std::string& path, int depth) {
    std::string item;
    if (auto items = schema.find("items"); items != schema.end()) {
      EDGELM_TRY(item, visit(*items, path + "/items", depth + 1));
      item = add_rule("item", item);
    } else {
      item = use("value");
    }
    if (schema.contains("prefixItems")) return unsupported(path, "'prefixItems'");
    EDGELM_TRY(const uint64_t min, read_count(schema, "minItems", 0, path));
    EDGELM_TRY(const uint64_t max, read_count(schema, "maxItems", 0, path));
    const bool unbounded = !schema.contains("maxItems");
    if (!unbounded && max < min) return invalid(path, "maxItems < minItems");
    const std::string list = separated_list(item, "\",\" " + use("space"), min, max, unbounded);
    return "\"[\" " + use("space") + " " + list + " \"]\" " + use("space");
  }

  Result<std::string> visit_string(const json& schema, const std::string& path) {
    if (schema.contains("pattern")) return unsupported(path, "'pattern'");
    if (auto format = schema.find("format"); format != schema.end()) {
      const std::string f = format->is_string() ? format->get<std::string>() : "";
      if (f == "uuid" || f == "date" || f == "time" || f == "date-time") return use(f);
      return unsupported(path + "/format", "format '" + format->dump() + "'");
    }
    EDGELM_TRY(const uint64_t min, read_count(schema, "minLength", 0, path));
    EDGELM_TRY(const uint64_t max, read_count(schema, "maxLength", 0, path));
    if (!schema.contains("minLength") && !schema.contains("maxLength")) return use("string");
    const bool unbounded = !schema.contains("maxLength");
    if (!unbounded && max < min) return invalid(path, "maxLength < minLength");
    use("char");
    const std::string count =
        unbounded ? "{" + digits(min) + ",}" : "{" + digits(min) + "," + digits(max) + "}";
    return "\"\\\"\" char" + count + " \"\\\"\" " + use("space");
  }

  // Integers with optional bounds (minimum / maximum / exclusiveMinimum / exclusiveMaximum),
  // enforced digit by digit.
  Result<std::string> visit_integer(const json& schema, const std::string& path) {
    if (schema.contains("multipleOf")) return unsupported(path, "'multipleOf' on an integer");
    std::optional<int64_t> lo, hi;
    for (const char* key : {"minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"}) {
      auto it = schema.find(key);
      if (it == schema.end()) continue;
      if (!it->is_number()) return invalid(path + "/" + key, "must be a number");
      const double v = it->get<double>();
      if (!(std::fabs(v) <= kMaxBound)) {
        return unsupported(path + "/" + key, "bounds beyond +-10^15 on an integer");
      }
      const std::string k = key;
      if (k == "minimum") lo = std::max(lo.value_or(INT64_MIN), static_cast<int64_t>(std::ceil(v)));
      if (k == "exclusiveMinimum") {
        lo = std::max(lo.value_or(INT64_MIN), static_cast<int64_t>(std::floor(v)) + 1);
      }
      if (k == "maximum")
        hi = std::min(hi.value_or(INT64_MAX), static_cast<int64_t>(std::floor(v)));
      if (k == "exclusiveMaximum") {
        hi = std::min(hi.value_or(INT64_MAX), static_cast<int64_t>(std::ceil(v)) - 1);
      }
    }
    if (!lo && !hi) return use("integer");
    if (lo && hi && *lo > *hi) return invalid(path, "no integer satisfies the bounds");
    const std::string space = use("space");
    std::string body;
    if (lo && *lo >= 0) {
      body = nonnegative_range(static_cast<uint64_t>(*lo), to_unsigned(hi));
    } else if (hi && *hi < 0) {
      body = "\"-\" " +
             nonnegative_range(static_cast<uint64_t>(-*hi), lo ? to_unsigned(-*lo) : std::nullopt);
    } else {  // the range straddles zero
      const std::string negative = lo ? nonnegative_range(1, static_cast<uint64_t>(-*lo))
                                      : nonnegative_range(1, std::nullopt);
      body = "\"-\" " + negative + " | " + nonnegative_range(0, to_unsigned(hi));
    }
    return "(" + body + ") " + space;
  }

  static std::optional<uint64_t> to_unsigned(std::optional<int64_t> v) {
    if (!v) return std::nullopt;
    return static_cast<uint64_t>(*v);
  }

  // Equal-length digit strings a <= b: every digit string of that length in [a, b].
  static std::string same_length_range(const std::string& a, const std::string& b) {
    auto cls = [](char x, char y) {
      return x == y ? std::string("[") + x + "]" : std::string("[") + x + "-" + y + "]";
    };
    if (a.size() == 1) return cls(a[0], b[0]);
    if (a[0] == b[0]) return cls(a[0], a[0]) + " " + same_length_range(a.substr(1), b.substr(1));
    const size_t rest = a.size() - 1;
    const std::string zeros(rest, '0'), nines(rest, '9');
    std::vector<std::string> alternatives;
    char first_full = a[0], last_full = b[0];
    if (a.substr(1) != zeros) {
      alternatives.push_back(cls(a[0], a[0]) + " (" + same_length_range(a.substr(1), nines) + ")");
      ++first_full;
    }
    const bool partial_top = b.substr(1) != nines;
    if (partial_top) --last_full;
    if (first_full <= last_full) {
      alternatives.push_back(cls(first_full, last_full) + " [0-9]{" + std::to_string(rest) + "}");
    }
    if (partial_top) {
      alternatives.push_back(cls(b[0], b[0]) + " (" + same_length_range(zeros, b.substr(1)) + ")");
    }
    std::string out;
    for (const std::string& alt : alternatives) out += (out.empty() ? "" : " | ") + alt;
    return "(" + out + ")";
  }

  // Decimal integers in [lo, hi] (hi absent: no upper bound, up to 16 digits), no leading zeros.
  static std::string nonnegative_range(uint64_t lo, std::optional<uint64_t> hi) {
    const size_t lo_digits = std::to_string(lo).size();
    const size_t hi_digits = hi ? std::to_string(*hi).size() : lo_digits;
    std::string out;
    uint64_t power = 1;  // 10^(length-1)
    for (size_t i = 1; i < lo_digits; ++i) power *= 10;
    for (size_t length = lo_digits; length <= hi_digits; ++length, power *= 10) {
      const uint64_t first = std::max(lo, length == 1 ? 0 : power);
      const uint64_t last = hi ? std::min(*hi, power * 10 - 1) : power * 10 - 1;
      if (first > last) continue;
      out += (out.empty() ? "" : " | ") +
             same_length_range(std::to_string(first), std::to_string(last));
    }
    if (!hi && lo_digits < 16) {
      out += " | [1-9] [0-9]{" + std::to_string(lo_digits) + ",15}";
    }
    return "(" + out + ")";
  }

  const json& root_;
  std::vector<std::pair<std::string, std::string>> rules_;
  std::set<std::string> used_;
  std::map<std::string, std::string> ref_rules_;
};

}  // namespace

std::string_view json_object_gbnf() {
  static const std::string* grammar = [] {
    std::string text = R"(root ::= object
)";
    for (const auto& [name, rhs] : kPrimitives) {
      const std::string n(name);
      if (n == "uuid" || n == "date" || n == "time" || n == "date-time" || n == "date-part" ||
          n == "time-part" || n == "integer") {
        continue;
      }
      text += n + " ::= " + std::string(rhs) + "\n";
    }
    return new std::string(text);
  }();
  return *grammar;
}

Result<std::string> json_schema_to_gbnf(std::string_view schema_json) {
  if (schema_json.size() > kMaxSchemaBytes) {
    return make_error(
        ErrorCode::kOutOfRange,
        "json schema: text of " + std::to_string(schema_json.size()) + " bytes exceeds the limit");
  }
  json schema = json::parse(schema_json, nullptr, /*allow_exceptions=*/false);
  if (schema.is_discarded())
    return make_error(ErrorCode::kInvalidArgument, "json schema: not valid JSON");
  try {
    return SchemaConverter(schema).run();
  } catch (const json::exception& e) {
    return make_error(ErrorCode::kInvalidArgument, std::string("json schema: ") + e.what());
  }
}

}  // namespace edgelm::runtime
