// jinja2's builtin tests (`x is defined`, `x is divisibleby 3`, ...).
#include <cmath>

#include "template/interpreter.h"
#include "template/template_error.h"
#include "template/utf8.h"

namespace edgelm::jinja {

bool call_test(Interpreter& in, const std::string& name, const Value& v, CallArgs& args,
               bool& result) {
  in.tick();
  const auto argument = [&]() -> const Value& {
    if (args.positional.empty()) fail("test '" + name + "' needs an argument");
    return args.positional[0];
  };
  if (name == "defined")
    result = !v.is_undefined();
  else if (name == "undefined")
    result = v.is_undefined();
  else if (name == "none")
    result = v.is_none();
  else if (name == "boolean")
    result = v.kind == Kind::kBool;
  else if (name == "true")
    result = v.kind == Kind::kBool && v.boolean;
  else if (name == "false")
    result = v.kind == Kind::kBool && !v.boolean;
  else if (name == "integer")
    result = v.kind == Kind::kInt;
  else if (name == "float")
    result = v.kind == Kind::kFloat;
  else if (name == "number")
    result = v.is_number();  // Python's bool is a Number too
  else if (name == "string")
    result = v.is_string();
  else if (name == "mapping")
    result = v.is_dict() && !v.is_namespace();
  else if (name == "iterable")
    result = v.is_string() || v.is_list() || (v.is_dict() && !v.is_namespace()) || v.is_undefined();
  else if (name == "sequence")
    result = v.is_string() || v.is_list() || (v.is_dict() && !v.is_namespace());
  else if (name == "callable")
    result = v.kind == Kind::kCallable;
  else if (name == "escaped")
    result = false;
  else if (name == "lower" || name == "upper") {
    const std::string s = to_str(v);
    bool any_cased = false, ok = true;
    for (size_t pos = 0; pos < s.size();) {
      const char32_t cp = utf8::decode(s, pos);
      if (name == "lower" ? utf8::is_upper(cp) : utf8::is_lower(cp)) ok = false;
      if (utf8::is_cased(cp)) any_cased = true;
    }
    result = ok && any_cased;
  } else if (name == "odd" || name == "even") {
    if (!v.is_integral()) fail("test '" + name + "' needs an integer");
    result = (v.as_int() % 2 != 0) == (name == "odd");
  } else if (name == "divisibleby") {
    const Value& d = argument();
    if (!v.is_number() || !d.is_number()) fail("divisibleby needs numbers");
    if (d.as_double() == 0.0) fail("integer division or modulo by zero");
    if (v.is_integral() && d.is_integral())
      result = d.as_int() == -1 || v.as_int() % d.as_int() == 0;
    else
      result = std::fmod(v.as_double(), d.as_double()) == 0.0;
  } else if (name == "eq" || name == "equalto" || name == "==")
    result = equals(v, argument());
  else if (name == "ne" || name == "!=")
    result = !equals(v, argument());
  else if (name == "lt" || name == "lessthan" || name == "<")
    result = compare(v, argument()) < 0;
  else if (name == "le" || name == "<=")
    result = compare(v, argument()) <= 0;
  else if (name == "gt" || name == "greaterthan" || name == ">")
    result = compare(v, argument()) > 0;
  else if (name == "ge" || name == ">=")
    result = compare(v, argument()) >= 0;
  else if (name == "in")
    result = contains(argument(), v);
  else if (name == "sameas") {
    const Value& other = argument();
    if (v.kind != other.kind)
      result = false;
    else if (v.is_list())
      result = v.list == other.list;
    else if (v.is_dict())
      result = v.dict == other.dict;
    else if (v.kind == Kind::kCallable)
      result = v.callable == other.callable;
    else
      result = equals(v, other) && (v.is_none() || v.kind == Kind::kBool);  // singletons
  } else {
    return false;
  }
  return true;
}

}  // namespace edgelm::jinja
