#include "template/value.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "template/template_error.h"
#include "template/utf8.h"

namespace edgelm::jinja {

namespace {
// Self-containing lists (a.append(a)) and absurdly deep JSON must not exhaust the stack.
constexpr int kMaxValueDepth = 200;

void check_depth(int depth) {
  if (depth > kMaxValueDepth)
    fail_limit("value nesting deeper than 200 levels (recursive container?)");
}
}  // namespace

Value Value::undefined(std::string reason) {
  Value v;
  v.text = std::move(reason);
  return v;
}
Value Value::none() {
  Value v;
  v.kind = Kind::kNone;
  return v;
}
Value Value::from_bool(bool b) {
  Value v;
  v.kind = Kind::kBool;
  v.boolean = b;
  return v;
}
Value Value::from_int(int64_t i) {
  Value v;
  v.kind = Kind::kInt;
  v.integer = i;
  return v;
}
Value Value::from_float(double d) {
  Value v;
  v.kind = Kind::kFloat;
  v.number = d;
  return v;
}
Value Value::from_string(std::string s) {
  Value v;
  v.kind = Kind::kString;
  v.text = std::move(s);
  return v;
}
Value Value::new_list(std::vector<Value> items, bool is_tuple) {
  Value v;
  v.kind = Kind::kList;
  v.list = std::make_shared<List>();
  v.list->items = std::move(items);
  v.list->is_tuple = is_tuple;
  return v;
}
Value Value::new_dict() {
  Value v;
  v.kind = Kind::kDict;
  v.dict = std::make_shared<Dict>();
  return v;
}
Value Value::new_namespace() {
  Value v = new_dict();
  v.dict->is_namespace = true;
  return v;
}

bool Value::is_namespace() const {
  return kind == Kind::kDict && dict->is_namespace;
}

double Value::as_double() const {
  switch (kind) {
    case Kind::kBool:
      return boolean ? 1.0 : 0.0;
    case Kind::kInt:
      return static_cast<double>(integer);
    case Kind::kFloat:
      return number;
    default:
      return 0.0;
  }
}

const Value* Dict::find(const std::string& key) const {
  const auto it = index.find(key);
  return it == index.end() ? nullptr : &entries[it->second].second;
}

void Dict::set(const std::string& key, Value value) {
  const auto it = index.find(key);
  if (it != index.end()) {
    entries[it->second].second = std::move(value);
    return;
  }
  index.emplace(key, entries.size());
  entries.emplace_back(key, std::move(value));
}

bool truthy(const Value& v) {
  switch (v.kind) {
    case Kind::kUndefined:
    case Kind::kNone:
      return false;
    case Kind::kBool:
      return v.boolean;
    case Kind::kInt:
      return v.integer != 0;
    case Kind::kFloat:
      return v.number != 0.0;
    case Kind::kString:
      return !v.text.empty();
    case Kind::kList:
      return !v.list->items.empty();
    case Kind::kDict:
      return v.dict->is_namespace || !v.dict->entries.empty();
    case Kind::kCallable:
      return true;
  }
  return false;
}

std::string format_float(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  // Shortest round-trip digits in scientific form, then laid out the way Python's repr does:
  // fixed notation for exponents in [-4, 16), otherwise d.ddde+XX.
  char buf[64];
  const auto res = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
  std::string sci(buf, res.ptr);
  const size_t e_pos = sci.find('e');
  std::string mantissa = sci.substr(0, e_pos);
  const int exponent = std::stoi(sci.substr(e_pos + 1));
  const bool negative = mantissa[0] == '-';
  if (negative) mantissa.erase(0, 1);
  std::string digits;
  for (char c : mantissa)
    if (c != '.') digits += c;
  std::string out = negative ? "-" : "";
  if (exponent >= -4 && exponent < 16) {
    if (exponent < 0) {
      out += "0." + std::string(static_cast<size_t>(-exponent - 1), '0') + digits;
    } else if (static_cast<size_t>(exponent) + 1 >= digits.size()) {
      out += digits + std::string(static_cast<size_t>(exponent) + 1 - digits.size(), '0') + ".0";
    } else {
      out += digits.substr(0, static_cast<size_t>(exponent) + 1) + "." +
             digits.substr(static_cast<size_t>(exponent) + 1);
    }
    return out;
  }
  out += digits.substr(0, 1);
  if (digits.size() > 1) out += "." + digits.substr(1);
  char exp_buf[16];
  std::snprintf(exp_buf, sizeof exp_buf, "e%c%02d", exponent < 0 ? '-' : '+', std::abs(exponent));
  return out + exp_buf;
}

std::string repr_string(const std::string& s) {
  const bool has_single = s.find('\'') != std::string::npos;
  const bool has_double = s.find('"') != std::string::npos;
  const char quote = (has_single && !has_double) ? '"' : '\'';
  std::string out(1, quote);
  for (size_t pos = 0; pos < s.size();) {
    const char32_t cp = utf8::decode(s, pos);
    if (cp == static_cast<char32_t>(quote) || cp == '\\') {
      out += '\\';
      out += static_cast<char>(cp);
    } else if (cp == '\n') {
      out += "\\n";
    } else if (cp == '\r') {
      out += "\\r";
    } else if (cp == '\t') {
      out += "\\t";
    } else if (!utf8::is_printable(cp)) {
      char buf[16];
      if (cp < 0x100)
        std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned>(cp));
      else if (cp < 0x10000)
        std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(cp));
      else
        std::snprintf(buf, sizeof buf, "\\U%08x", static_cast<unsigned>(cp));
      out += buf;
    } else {
      utf8::append(out, cp);
    }
  }
  out += quote;
  return out;
}

namespace {

std::string repr_impl(const Value& v, int depth) {
  check_depth(depth);
  switch (v.kind) {
    case Kind::kString:
      return repr_string(v.text);
    case Kind::kList: {
      const bool tuple = v.list->is_tuple;
      std::string out = tuple ? "(" : "[";
      for (size_t i = 0; i < v.list->items.size(); ++i) {
        if (i) out += ", ";
        out += repr_impl(v.list->items[i], depth + 1);
      }
      if (tuple && v.list->items.size() == 1) out += ",";
      return out + (tuple ? ")" : "]");
    }
    case Kind::kDict: {
      if (v.dict->is_namespace) return "<Namespace>";
      std::string out = "{";
      bool first = true;
      for (const auto& [key, value] : v.dict->entries) {
        if (!first) out += ", ";
        first = false;
        out += repr_string(key) + ": " + repr_impl(value, depth + 1);
      }
      return out + "}";
    }
    default:
      return to_str(v);
  }
}

}  // namespace

std::string to_repr(const Value& v) {
  return repr_impl(v, 0);
}

std::string to_str(const Value& v) {
  switch (v.kind) {
    case Kind::kUndefined:
      return "";
    case Kind::kNone:
      return "None";
    case Kind::kBool:
      return v.boolean ? "True" : "False";
    case Kind::kInt:
      return std::to_string(v.integer);
    case Kind::kFloat:
      return format_float(v.number);
    case Kind::kString:
      return v.text;
    case Kind::kList:
    case Kind::kDict:
      return to_repr(v);
    case Kind::kCallable:
      return "<function " + v.callable->name + ">";
  }
  return "";
}

namespace {

void json_string(std::string& out, const std::string& s) {
  out += '"';
  for (const char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
          out += buf;
        } else {
          out += c;
        }
    }
  }
  out += '"';
}

void json_impl(std::string& out, const Value& v, int indent, bool sort_keys, int depth) {
  check_depth(depth);
  const auto newline = [&](int level) {
    out += '\n';
    out.append(static_cast<size_t>(indent) * static_cast<size_t>(level), ' ');
  };
  switch (v.kind) {
    case Kind::kNone:
      out += "null";
      return;
    case Kind::kBool:
      out += v.boolean ? "true" : "false";
      return;
    case Kind::kInt:
      out += std::to_string(v.integer);
      return;
    case Kind::kFloat:
      if (std::isnan(v.number))
        out += "NaN";
      else if (std::isinf(v.number))
        out += v.number > 0 ? "Infinity" : "-Infinity";
      else
        out += format_float(v.number);
      return;
    case Kind::kString:
      json_string(out, v.text);
      return;
    case Kind::kList: {
      const auto& items = v.list->items;
      if (items.empty()) {
        out += "[]";
        return;
      }
      out += '[';
      for (size_t i = 0; i < items.size(); ++i) {
        if (i) out += indent >= 0 ? "," : ", ";
        if (indent >= 0) newline(depth + 1);
        json_impl(out, items[i], indent, sort_keys, depth + 1);
      }
      if (indent >= 0) newline(depth);
      out += ']';
      return;
    }
    case Kind::kDict: {
      if (v.dict->is_namespace) fail("tojson: Object of type Namespace is not JSON serializable");
      std::vector<const std::pair<std::string, Value>*> entries;
      for (const auto& entry : v.dict->entries) entries.push_back(&entry);
      if (sort_keys)
        std::sort(entries.begin(), entries.end(),
                  [](const auto* a, const auto* b) { return a->first < b->first; });
      if (entries.empty()) {
        out += "{}";
        return;
      }
      out += '{';
      for (size_t i = 0; i < entries.size(); ++i) {
        if (i) out += indent >= 0 ? "," : ", ";
        if (indent >= 0) newline(depth + 1);
        json_string(out, entries[i]->first);
        out += ": ";
        json_impl(out, entries[i]->second, indent, sort_keys, depth + 1);
      }
      if (indent >= 0) newline(depth);
      out += '}';
      return;
    }
    case Kind::kUndefined:
      fail("tojson: Object of type Undefined is not JSON serializable");
    case Kind::kCallable:
      fail("tojson: Object of type function is not JSON serializable");
  }
}

}  // namespace

std::string to_json(const Value& v, int indent, bool sort_keys) {
  std::string out;
  json_impl(out, v, indent, sort_keys, 0);
  return out;
}

namespace {

bool equals_impl(const Value& a, const Value& b, int depth) {
  check_depth(depth);
  if (a.is_number() && b.is_number()) {
    if (a.is_integral() && b.is_integral()) return a.as_int() == b.as_int();
    return a.as_double() == b.as_double();
  }
  if (a.kind != b.kind) return false;
  switch (a.kind) {
    case Kind::kUndefined:
    case Kind::kNone:
      return true;
    case Kind::kString:
      return a.text == b.text;
    case Kind::kList: {
      if (a.list == b.list) return true;
      if (a.list->is_tuple != b.list->is_tuple || a.list->items.size() != b.list->items.size())
        return false;
      for (size_t i = 0; i < a.list->items.size(); ++i)
        if (!equals_impl(a.list->items[i], b.list->items[i], depth + 1)) return false;
      return true;
    }
    case Kind::kDict: {
      if (a.dict == b.dict) return true;
      if (a.dict->is_namespace || b.dict->is_namespace) return false;
      if (a.dict->entries.size() != b.dict->entries.size()) return false;
      for (const auto& [key, value] : a.dict->entries) {
        const Value* other = b.dict->find(key);
        if (!other || !equals_impl(value, *other, depth + 1)) return false;
      }
      return true;
    }
    case Kind::kCallable:
      return a.callable == b.callable;
    default:
      return false;
  }
}

int compare_impl(const Value& a, const Value& b, int depth) {
  check_depth(depth);
  if (a.is_number() && b.is_number()) {
    if (a.is_integral() && b.is_integral()) {
      const int64_t x = a.as_int(), y = b.as_int();
      return x < y ? -1 : (x > y ? 1 : 0);
    }
    const double x = a.as_double(), y = b.as_double();
    return x < y ? -1 : (x > y ? 1 : 0);
  }
  if (a.is_string() && b.is_string()) {
    const int c = a.text.compare(b.text);  // UTF-8 byte order equals code point order
    return c < 0 ? -1 : (c > 0 ? 1 : 0);
  }
  if (a.is_list() && b.is_list() && a.list->is_tuple == b.list->is_tuple) {
    const auto& x = a.list->items;
    const auto& y = b.list->items;
    for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
      if (equals_impl(x[i], y[i], depth + 1)) continue;
      return compare_impl(x[i], y[i], depth + 1);
    }
    return x.size() < y.size() ? -1 : (x.size() > y.size() ? 1 : 0);
  }
  fail("'<' not supported between instances of '" + type_name(a) + "' and '" + type_name(b) + "'");
}

}  // namespace

bool equals(const Value& a, const Value& b) {
  return equals_impl(a, b, 0);
}
int compare(const Value& a, const Value& b) {
  return compare_impl(a, b, 0);
}

std::string type_name(const Value& v) {
  switch (v.kind) {
    case Kind::kUndefined:
      return "Undefined";
    case Kind::kNone:
      return "NoneType";
    case Kind::kBool:
      return "bool";
    case Kind::kInt:
      return "int";
    case Kind::kFloat:
      return "float";
    case Kind::kString:
      return "str";
    case Kind::kList:
      return v.list->is_tuple ? "tuple" : "list";
    case Kind::kDict:
      return v.dict->is_namespace ? "Namespace" : "dict";
    case Kind::kCallable:
      return "function";
  }
  return "object";
}

namespace {

template <class Json>
Value from_json_impl(const Json& j, int depth) {
  check_depth(depth);
  switch (j.type()) {
    case nlohmann::json::value_t::null:
      return Value::none();
    case nlohmann::json::value_t::boolean:
      return Value::from_bool(j.template get<bool>());
    case nlohmann::json::value_t::number_integer:
      return Value::from_int(j.template get<int64_t>());
    case nlohmann::json::value_t::number_unsigned: {
      const uint64_t u = j.template get<uint64_t>();
      if (u > static_cast<uint64_t>(INT64_MAX)) return Value::from_float(static_cast<double>(u));
      return Value::from_int(static_cast<int64_t>(u));
    }
    case nlohmann::json::value_t::number_float:
      return Value::from_float(j.template get<double>());
    case nlohmann::json::value_t::string:
      return Value::from_string(j.template get<std::string>());
    case nlohmann::json::value_t::array: {
      std::vector<Value> items;
      items.reserve(j.size());
      for (const auto& item : j) items.push_back(from_json_impl(item, depth + 1));
      return Value::new_list(std::move(items));
    }
    case nlohmann::json::value_t::object: {
      Value dict = Value::new_dict();
      for (auto it = j.begin(); it != j.end(); ++it)
        dict.dict->set(it.key(), from_json_impl(it.value(), depth + 1));
      return dict;
    }
    default:
      return Value::none();  // binary/discarded values have no template meaning
  }
}

}  // namespace

Value from_json(const nlohmann::json& j) {
  return from_json_impl(j, 0);
}
Value from_json(const nlohmann::ordered_json& j) {
  return from_json_impl(j, 0);
}

}  // namespace edgelm::jinja
