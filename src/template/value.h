// The dynamic values of the Jinja interpreter, with Python semantics (jinja2 runs on Python
// objects, and chat templates are written against that behaviour).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace edgelm::jinja {

struct Value;
struct List;
struct Dict;
struct Callable;

enum class Kind : uint8_t {
  kUndefined,
  kNone,
  kBool,
  kInt,
  kFloat,
  kString,
  kList,
  kDict,
  kCallable
};

// Lists, dicts and callables have reference semantics (as in Python): `ns.x = ...` and
// `list.append(...)` must be visible through every name bound to the same object.
struct Value {
  Kind kind = Kind::kUndefined;
  bool boolean = false;
  int64_t integer = 0;
  double number = 0.0;
  std::string text;  // the string, or for undefined the reason used in error messages
  std::shared_ptr<List> list;
  std::shared_ptr<Dict> dict;
  std::shared_ptr<Callable> callable;

  static Value undefined(std::string reason = {});
  static Value none();
  static Value from_bool(bool b);
  static Value from_int(int64_t i);
  static Value from_float(double d);
  static Value from_string(std::string s);
  static Value new_list(std::vector<Value> items = {}, bool is_tuple = false);
  static Value new_dict();
  static Value new_namespace();

  bool is_undefined() const { return kind == Kind::kUndefined; }
  bool is_none() const { return kind == Kind::kNone; }
  bool is_string() const { return kind == Kind::kString; }
  bool is_list() const { return kind == Kind::kList; }
  bool is_dict() const { return kind == Kind::kDict; }
  bool is_number() const {
    return kind == Kind::kBool || kind == Kind::kInt || kind == Kind::kFloat;
  }
  bool is_integral() const { return kind == Kind::kBool || kind == Kind::kInt; }
  bool is_namespace() const;
  double as_double() const;
  int64_t as_int() const { return kind == Kind::kBool ? (boolean ? 1 : 0) : integer; }
};

struct List {
  std::vector<Value> items;
  bool is_tuple = false;
};

// Insertion-ordered string-keyed mapping (Python dicts keep insertion order; JSON objects from the
// context arrive in document order).
struct Dict {
  std::vector<std::pair<std::string, Value>> entries;
  std::unordered_map<std::string, size_t> index;
  bool is_namespace = false;

  const Value* find(const std::string& key) const;
  void set(const std::string& key, Value value);
};

class Interpreter;
struct CallArgs {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keyword;
};

struct Callable {
  std::string name;
  std::function<Value(Interpreter&, CallArgs&)> call;
};

// Python truthiness (undefined is falsy, like jinja2's Undefined).
bool truthy(const Value& v);

// Python str(): what `{{ value }}` prints. Undefined prints as "".
std::string to_str(const Value& v);
// Python repr(), used inside containers: ['a', 1, None, True].
std::string to_repr(const Value& v);
std::string repr_string(const std::string& s);
// Python repr(float): shortest round-trip digits, "1.0", "1e+16", "inf".
std::string format_float(double d);

// transformers' tojson: json.dumps(ensure_ascii=False, indent=indent, sort_keys=sort_keys).
std::string to_json(const Value& v, int indent, bool sort_keys);

// Python ==, and ordering for < > (throws TemplateError on incomparable types).
bool equals(const Value& a, const Value& b);
int compare(const Value& a, const Value& b);

std::string type_name(const Value& v);  // Python-ish type names for error messages

// Context conversion: JSON integers become int, other numbers float, objects insertion-ordered.
// Both JSON flavours are accepted; only ordered_json keeps the caller's key order (std::map-based
// nlohmann::json has already sorted the keys), which matters for `tools | tojson`.
Value from_json(const nlohmann::json& j);
Value from_json(const nlohmann::ordered_json& j);

}  // namespace edgelm::jinja
