// Attribute/item access, iteration and the Python methods templates call on str, list and dict,
// plus the global functions (range, namespace, dict, raise_exception, strftime_now).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <ctime>

#include "template/interpreter.h"
#include "template/template_error.h"
#include "template/utf8.h"

namespace edgelm::jinja {

namespace {

const char* const kStringMethods[] = {
    "strip",      "lstrip",  "rstrip",     "startswith", "endswith", "split",   "rsplit", "upper",
    "lower",      "title",   "capitalize", "replace",    "format",   "join",    "find",   "count",
    "splitlines", "isdigit", "isalpha",    "isalnum",    "isspace",  "isupper", "islower"};
const char* const kListMethods[] = {"append", "index", "count"};
const char* const kDictMethods[] = {"get", "items", "keys", "values"};

template <size_t N>
bool in_table(const char* const (&table)[N], const std::string& name) {
  for (const char* m : table)
    if (name == m) return true;
  return false;
}

bool has_method(const Value& object, const std::string& name) {
  if (object.is_string()) return in_table(kStringMethods, name);
  if (object.is_list()) return in_table(kListMethods, name);
  if (object.is_dict() && !object.is_namespace()) return in_table(kDictMethods, name);
  return false;
}

Value bound_method(const Value& object, const std::string& name) {
  Value v;
  v.kind = Kind::kCallable;
  v.callable = std::make_shared<Callable>();
  v.callable->name = name;
  v.callable->call = [object, name](Interpreter& in, CallArgs& args) {
    Value result;
    call_method(in, object, name, args, result);
    return result;
  };
  return v;
}

const Value* positional_or_keyword(const CallArgs& args, size_t index, const char* keyword) {
  if (index < args.positional.size()) return &args.positional[index];
  for (const auto& [k, v] : args.keyword)
    if (k == keyword) return &v;
  return nullptr;
}

const std::string& string_arg(const Value* v, const char* what) {
  if (!v || !v->is_string()) fail(std::string(what) + " must be a string");
  return v->text;
}

std::vector<std::string> split(const std::string& s, const Value* sep_v, int64_t max_split) {
  std::vector<std::string> parts;
  if (!sep_v || sep_v->is_none()) {
    // Whitespace split: runs of whitespace separate, empty parts dropped.
    const std::vector<char32_t> cps = utf8::to_code_points(s);
    size_t i = 0;
    while (i < cps.size()) {
      while (i < cps.size() && utf8::is_space(cps[i])) ++i;
      if (i >= cps.size()) break;
      if (max_split >= 0 && static_cast<int64_t>(parts.size()) == max_split) {
        size_t end = cps.size();
        while (end > i && utf8::is_space(cps[end - 1])) --end;
        parts.push_back(utf8::from_code_points(cps, i, end));
        return parts;
      }
      const size_t start = i;
      while (i < cps.size() && !utf8::is_space(cps[i])) ++i;
      parts.push_back(utf8::from_code_points(cps, start, i));
    }
    return parts;
  }
  const std::string& sep = string_arg(sep_v, "split separator");
  if (sep.empty()) fail("empty separator");
  size_t start = 0;
  while (true) {
    if (max_split >= 0 && static_cast<int64_t>(parts.size()) == max_split) break;
    const size_t found = s.find(sep, start);
    if (found == std::string::npos) break;
    parts.push_back(s.substr(start, found - start));
    start = found + sep.size();
  }
  parts.push_back(s.substr(start));
  return parts;
}

Value string_list(const std::vector<std::string>& parts) {
  std::vector<Value> items;
  items.reserve(parts.size());
  for (const auto& p : parts) items.push_back(Value::from_string(p));
  return Value::new_list(std::move(items));
}

bool affix_match(const std::string& s, const Value& affix, bool prefix) {
  const auto one = [&](const std::string& a) {
    if (a.size() > s.size()) return false;
    return prefix ? s.compare(0, a.size(), a) == 0
                  : s.compare(s.size() - a.size(), a.size(), a) == 0;
  };
  if (affix.is_string()) return one(affix.text);
  if (affix.is_list() && affix.list->is_tuple) {
    for (const Value& a : affix.list->items) {
      if (!a.is_string()) fail("tuple for startswith/endswith must only contain str");
      if (one(a.text)) return true;
    }
    return false;
  }
  fail("startswith/endswith argument must be str or a tuple of str");
}

// str.format with {} / {0} / {name} fields (no format specs: templates do not use them).
std::string format_string(const std::string& fmt, const CallArgs& args) {
  std::string out;
  size_t auto_index = 0;
  for (size_t i = 0; i < fmt.size(); ++i) {
    const char c = fmt[i];
    if (c == '{' && i + 1 < fmt.size() && fmt[i + 1] == '{') {
      out += '{';
      ++i;
    } else if (c == '}' && i + 1 < fmt.size() && fmt[i + 1] == '}') {
      out += '}';
      ++i;
    } else if (c == '{') {
      const size_t close = fmt.find('}', i);
      if (close == std::string::npos) fail("format: single '{' encountered in format string");
      const std::string field = fmt.substr(i + 1, close - i - 1);
      if (field.find_first_of(":!.[") != std::string::npos)
        fail("format: format specs are not supported");
      const Value* v = nullptr;
      if (field.empty()) {
        if (auto_index >= args.positional.size()) fail("format: replacement index out of range");
        v = &args.positional[auto_index++];
      } else if (std::all_of(field.begin(), field.end(),
                             [](char d) { return d >= '0' && d <= '9'; })) {
        const size_t index = std::strtoul(field.c_str(), nullptr, 10);
        if (field.size() > 6 || index >= args.positional.size())
          fail("format: replacement index out of range");
        v = &args.positional[index];
      } else {
        for (const auto& [k, value] : args.keyword)
          if (k == field) v = &value;
        if (!v) fail("format: missing keyword '" + field + "'");
      }
      out += to_str(*v);
      i = close;
    } else if (c == '}') {
      fail("format: single '}' encountered in format string");
    } else {
      out += c;
    }
  }
  return out;
}

std::string replace_all(const std::string& s, const std::string& old, const std::string& repl,
                        int64_t count, Interpreter& in) {
  std::string out;
  if (old.empty()) {  // Python inserts repl around every character
    const std::vector<char32_t> cps = utf8::to_code_points(s);
    int64_t done = 0;
    for (size_t i = 0; i <= cps.size(); ++i) {
      if (count < 0 || done < count) {
        out += repl;
        ++done;
      }
      if (i < cps.size()) utf8::append(out, cps[i]);
      in.check_size(out.size());
    }
    return out;
  }
  size_t start = 0;
  int64_t done = 0;
  while (count < 0 || done < count) {
    const size_t found = s.find(old, start);
    if (found == std::string::npos) break;
    out.append(s, start, found - start);
    out += repl;
    in.check_size(out.size());
    start = found + old.size();
    ++done;
  }
  out.append(s, start, std::string::npos);
  in.check_size(out.size());
  in.tick(out.size() / 64);
  return out;
}

}  // namespace

std::string replace_string(const std::string& s, const std::string& old, const std::string& repl,
                           int64_t count, Interpreter& in) {
  return replace_all(s, old, repl, count, in);
}

bool call_method(Interpreter& in, const Value& object, const std::string& name, CallArgs& args,
                 Value& result) {
  in.tick();
  const auto arg = [&](size_t i, const char* kw) { return positional_or_keyword(args, i, kw); };
  if (object.is_string()) {
    const std::string& s = object.text;
    in.tick(s.size() / 64);
    if (name == "strip" || name == "lstrip" || name == "rstrip") {
      const Value* chars = arg(0, "chars");
      const std::string* set = (chars && chars->is_string()) ? &chars->text : nullptr;
      result = Value::from_string(utf8::strip(s, set, name != "rstrip", name != "lstrip"));
    } else if (name == "startswith" || name == "endswith") {
      const Value* affix = arg(0, "prefix");
      if (!affix) fail(name + "() takes at least 1 argument");
      result = Value::from_bool(affix_match(s, *affix, name == "startswith"));
    } else if (name == "split" || name == "rsplit") {
      const Value* max_v = arg(1, "maxsplit");
      const int64_t max_split = max_v && max_v->is_integral() ? max_v->as_int() : -1;
      if (name == "rsplit" && max_split >= 0) fail("rsplit with maxsplit is not supported");
      result = string_list(split(s, arg(0, "sep"), max_split));
    } else if (name == "upper") {
      result = Value::from_string(utf8::upper(s));
    } else if (name == "lower") {
      result = Value::from_string(utf8::lower(s));
    } else if (name == "title") {
      result = Value::from_string(utf8::title_words(s));
    } else if (name == "capitalize") {
      result = Value::from_string(utf8::capitalize(s));
    } else if (name == "replace") {
      const Value* count = arg(2, "count");
      result = Value::from_string(replace_all(
          s, string_arg(arg(0, "old"), "replace old"), string_arg(arg(1, "new"), "replace new"),
          count && count->is_integral() ? count->as_int() : -1, in));
    } else if (name == "format") {
      result = Value::from_string(format_string(s, args));
    } else if (name == "join") {
      const Value* items = arg(0, "iterable");
      if (!items) fail("join() takes exactly one argument");
      std::string out;
      bool first = true;
      for (const Value& item : iterate(*items)) {
        if (!item.is_string())
          fail("sequence item: expected str instance, " + type_name(item) + " found");
        if (!first) out += s;
        first = false;
        out += item.text;
        in.check_size(out.size());
      }
      result = Value::from_string(std::move(out));
    } else if (name == "find" || name == "count") {
      const std::string& needle = string_arg(arg(0, "sub"), name.c_str());
      if (name == "find") {
        const size_t at = s.find(needle);
        result = Value::from_int(
            at == std::string::npos ? -1 : static_cast<int64_t>(utf8::length(s.substr(0, at))));
      } else if (needle.empty()) {
        result = Value::from_int(static_cast<int64_t>(utf8::length(s)) + 1);
      } else {
        int64_t n = 0;
        for (size_t at = s.find(needle); at != std::string::npos;
             at = s.find(needle, at + needle.size()))
          ++n;
        result = Value::from_int(n);
      }
    } else if (name == "splitlines") {
      result = string_list(utf8::splitlines(s));
    } else if (name.rfind("is", 0) == 0) {
      const std::vector<char32_t> cps = utf8::to_code_points(s);
      bool ok = !cps.empty();
      if (name == "isupper" || name == "islower") {
        bool any_cased = false;
        for (char32_t cp : cps) {
          if (name == "isupper" ? utf8::is_lower(cp) : utf8::is_upper(cp)) ok = false;
          if (utf8::is_cased(cp)) any_cased = true;
        }
        ok = ok && any_cased;
      } else {
        for (char32_t cp : cps) {
          if (name == "isdigit" && !utf8::is_digit(cp)) ok = false;
          if (name == "isalpha" && !utf8::is_alpha(cp)) ok = false;
          if (name == "isalnum" && !utf8::is_alpha(cp) && !utf8::is_digit(cp)) ok = false;
          if (name == "isspace" && !utf8::is_space(cp)) ok = false;
        }
      }
      result = Value::from_bool(ok);
    } else {
      return false;
    }
    in.check_size(result.text.size());
    return true;
  }
  if (object.is_list()) {
    if (name == "append") {
      if (args.positional.size() != 1) fail("append() takes exactly one argument");
      in.check_size(object.list->items.size() + 1);
      object.list->items.push_back(args.positional[0]);
      in.note_mutated(object);
      result = Value::none();
    } else if (name == "index" || name == "count") {
      const Value* needle = arg(0, "value");
      if (!needle) fail(name + "() takes exactly one argument");
      int64_t n = 0, first = -1;
      for (size_t i = 0; i < object.list->items.size(); ++i) {
        if (equals(object.list->items[i], *needle)) {
          if (first < 0) first = static_cast<int64_t>(i);
          ++n;
        }
      }
      if (name == "index" && first < 0) fail("value is not in list");
      result = Value::from_int(name == "index" ? first : n);
    } else {
      return false;
    }
    return true;
  }
  if (object.is_dict() && !object.is_namespace()) {
    const Dict& d = *object.dict;
    if (name == "get") {
      const Value* key = arg(0, "key");
      if (!key) fail("get() takes at least 1 argument");
      const Value* found = key->is_string() ? d.find(key->text) : nullptr;
      const Value* fallback = arg(1, "default");
      result = found ? *found : (fallback ? *fallback : Value::none());
    } else if (name == "items" || name == "keys" || name == "values") {
      std::vector<Value> items;
      items.reserve(d.entries.size());
      for (const auto& [k, v] : d.entries) {
        if (name == "items")
          items.push_back(Value::new_list({Value::from_string(k), v}, true));
        else if (name == "keys")
          items.push_back(Value::from_string(k));
        else
          items.push_back(v);
      }
      in.tick(items.size());
      result = Value::new_list(std::move(items));
    } else {
      return false;
    }
    return true;
  }
  return false;
}

Value get_attribute(const Value& object, const std::string& name) {
  if (has_method(object, name)) return bound_method(object, name);
  if (object.is_dict())
    if (const Value* v = object.dict->find(name)) return *v;
  const std::string type =
      object.is_namespace() ? "Namespace" : (object.is_dict() ? "dict" : type_name(object));
  return Value::undefined(concat({"'", type, " object' has no attribute '", name, "'"}));
}

Value get_item(const Value& object, const Value& key) {
  if ((object.is_list() || object.is_string()) && key.is_integral()) {
    int64_t i = key.as_int();
    if (object.is_list()) {
      const int64_t n = static_cast<int64_t>(object.list->items.size());
      if (i < 0) i += n;
      if (i < 0 || i >= n)
        return Value::undefined(type_name(object) + " object has no element " +
                                std::to_string(key.as_int()));
      return object.list->items[static_cast<size_t>(i)];
    }
    const std::vector<char32_t> cps = utf8::to_code_points(object.text);
    const int64_t n = static_cast<int64_t>(cps.size());
    if (i < 0) i += n;
    if (i < 0 || i >= n)
      return Value::undefined("str object has no element " + std::to_string(key.as_int()));
    std::string out;
    utf8::append(out, cps[static_cast<size_t>(i)]);
    return Value::from_string(std::move(out));
  }
  if (object.is_dict() && key.is_string()) {
    if (const Value* v = object.dict->find(key.text)) return *v;
  }
  if (key.is_string()) return get_attribute(object, key.text);
  return Value::undefined(
      concat({"'", type_name(object), " object' has no element ", to_repr(key)}));
}

std::vector<Value> iterate(const Value& v) {
  switch (v.kind) {
    case Kind::kUndefined:
      return {};
    case Kind::kList:
      return v.list->items;
    case Kind::kDict: {
      if (v.is_namespace()) fail("'Namespace' object is not iterable");
      std::vector<Value> keys;
      keys.reserve(v.dict->entries.size());
      for (const auto& [k, value] : v.dict->entries) keys.push_back(Value::from_string(k));
      return keys;
    }
    case Kind::kString: {
      std::vector<Value> chars;
      for (size_t pos = 0; pos < v.text.size();) {
        std::string c;
        utf8::append(c, utf8::decode(v.text, pos));
        chars.push_back(Value::from_string(std::move(c)));
      }
      return chars;
    }
    default:
      fail("'" + type_name(v) + "' object is not iterable");
  }
}

int64_t length_of(const Value& v) {
  switch (v.kind) {
    case Kind::kUndefined:
      return 0;
    case Kind::kString:
      return static_cast<int64_t>(utf8::length(v.text));
    case Kind::kList:
      return static_cast<int64_t>(v.list->items.size());
    case Kind::kDict:
      if (v.is_namespace()) break;
      return static_cast<int64_t>(v.dict->entries.size());
    default:
      break;
  }
  fail("object of type '" + type_name(v) + "' has no len()");
}

bool contains(const Value& container, const Value& item) {
  switch (container.kind) {
    case Kind::kUndefined:
      return false;
    case Kind::kString:
      if (!item.is_string())
        fail("'in <string>' requires string as left operand, not " + type_name(item));
      return container.text.find(item.text) != std::string::npos;
    case Kind::kList:
      for (const Value& v : container.list->items)
        if (equals(v, item)) return true;
      return false;
    case Kind::kDict:
      if (container.is_namespace()) break;
      return item.is_string() && container.dict->find(item.text) != nullptr;
    default:
      break;
  }
  fail("argument of type '" + type_name(container) + "' is not iterable");
}

namespace {

Value make_function(const std::string& name, std::function<Value(Interpreter&, CallArgs&)> fn) {
  Value v;
  v.kind = Kind::kCallable;
  v.callable = std::make_shared<Callable>();
  v.callable->name = name;
  v.callable->call = std::move(fn);
  return v;
}

Value range(Interpreter& in, CallArgs& args) {
  if (!args.keyword.empty()) fail("range() takes no keyword arguments");
  std::vector<int64_t> ints;
  for (const Value& v : args.positional) {
    if (!v.is_integral()) fail("range() arguments must be integers, not " + type_name(v));
    ints.push_back(v.as_int());
  }
  int64_t start = 0, stop = 0, step = 1;
  if (ints.size() == 1)
    stop = ints[0];
  else if (ints.size() == 2 || ints.size() == 3) {
    start = ints[0];
    stop = ints[1];
    if (ints.size() == 3) step = ints[2];
  } else {
    fail("range expected 1 to 3 arguments");
  }
  if (step == 0) fail("range() arg 3 must not be zero");
  const long double count_ld = step > 0 ? (static_cast<long double>(stop) - start) / step
                                        : (static_cast<long double>(start) - stop) / -step;
  const uint64_t count = count_ld <= 0 ? 0 : static_cast<uint64_t>(std::ceil(count_ld));
  in.tick(count);  // throws before allocating when the range exceeds the step budget
  in.check_size(count);
  std::vector<Value> items;
  items.reserve(count);
  int64_t value = start;
  for (uint64_t i = 0; i < count; ++i, value += (i < count ? step : 0))
    items.push_back(Value::from_int(value));
  return Value::new_list(std::move(items));
}

}  // namespace

std::unordered_map<std::string, Value> make_globals() {
  std::unordered_map<std::string, Value> globals;
  globals["range"] = make_function("range", range);
  globals["namespace"] = make_function("namespace", [](Interpreter&, CallArgs& args) {
    Value ns = Value::new_namespace();
    for (const Value& init : args.positional) {
      if (!init.is_dict()) fail("namespace() positional argument must be a mapping");
      for (const auto& [k, v] : init.dict->entries) ns.dict->set(k, v);
    }
    for (auto& [k, v] : args.keyword) ns.dict->set(k, v);
    return ns;
  });
  globals["dict"] = make_function("dict", [](Interpreter&, CallArgs& args) {
    Value d = Value::new_dict();
    for (const Value& init : args.positional) {
      if (!init.is_dict()) fail("dict() positional argument must be a mapping");
      for (const auto& [k, v] : init.dict->entries) d.dict->set(k, v);
    }
    for (auto& [k, v] : args.keyword) d.dict->set(k, v);
    return d;
  });
  globals["raise_exception"] =
      make_function("raise_exception", [](Interpreter&, CallArgs& args) -> Value {
        const std::string message =
            args.positional.empty() ? std::string() : to_str(args.positional[0]);
        throw TemplateError{ErrorCode::kInvalidArgument, "raise_exception: " + message, true};
      });
  globals["strftime_now"] = make_function("strftime_now", [](Interpreter& in, CallArgs& args) {
    if (args.positional.size() != 1 || !args.positional[0].is_string())
      fail("strftime_now(format) needs a format string");
    const std::time_t now = in.now();
    std::tm local{};
    localtime_r(&now, &local);
    const std::string& format = args.positional[0].text;
    if (format.size() > 256) fail("strftime_now format too long");
    std::string buffer(4096, '\0');
    const size_t n =
        format.empty() ? 0 : std::strftime(buffer.data(), buffer.size(), format.c_str(), &local);
    buffer.resize(n);
    return Value::from_string(std::move(buffer));
  });
  return globals;
}

}  // namespace edgelm::jinja
