#include "template/interpreter.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>

#include "template/lexer.h"
#include "template/template_error.h"
#include "template/utf8.h"

namespace edgelm::jinja {

// Bounds the C++ recursion of eval/exec (tree height is bounded by the parser, but macros can
// recurse into each other at run time).
constexpr int kMaxEvalDepth = 600;

struct DepthScope {
  explicit DepthScope(Interpreter& in) : interpreter(in) {
    if (++interpreter.depth_ > kMaxEvalDepth) fail_limit("template recursion too deep");
  }
  ~DepthScope() { --interpreter.depth_; }
  Interpreter& interpreter;
};

Interpreter::Interpreter(const Budget& budget, Value context, std::string_view source)
    : budget_(budget),
      frame_(std::make_shared<Frame>()),
      globals_(make_globals()),
      source_(source) {
  if (context.is_dict()) {
    for (auto& [key, value] : context.dict->entries) frame_->vars[key] = value;
  }
}

Interpreter::~Interpreter() {
  for (Value& v : mutated_) {
    if (v.is_list()) v.list->items.clear();
    if (v.is_dict()) {
      v.dict->entries.clear();
      v.dict->index.clear();
    }
  }
}

void Interpreter::note_mutated(const Value& container) {
  tick();
  mutated_.push_back(container);
}

void Interpreter::error(size_t offset, const std::string& what) const {
  if (offset == kNested) fail(what);
  throw TemplateError{ErrorCode::kInvalidFormat,
                      "template error at " + describe_position(source_, offset) + ": " + what,
                      true};
}

void Interpreter::tick(uint64_t steps) {
  steps_ += steps;
  if (steps_ > budget_.max_steps)
    fail_limit("template exceeded its step budget of " + std::to_string(budget_.max_steps) +
               " (endless or huge loop?)");
}

void Interpreter::check_size(size_t bytes) const {
  if (bytes > budget_.max_output_bytes)
    fail_limit("template output or string exceeds " + std::to_string(budget_.max_output_bytes) +
               " bytes");
}

void Interpreter::emit(const std::string& text) {
  tick(1 + text.size() / 64);
  check_size(out_->size() + text.size());
  out_->append(text);
}

std::string Interpreter::render(const Body& body) {
  std::string out;
  out_ = &out;
  exec_body(body);
  out_ = nullptr;
  return out;
}

std::string Interpreter::capture(const Body& body) {
  std::string buffer;
  std::string* saved = out_;
  out_ = &buffer;
  try {
    exec_body(body);
  } catch (...) {
    out_ = saved;
    throw;
  }
  out_ = saved;
  return buffer;
}

Value Interpreter::lookup(const std::string& name) const {
  for (const Frame* f = frame_.get(); f; f = f->parent.get()) {
    const auto it = f->vars.find(name);
    if (it != f->vars.end()) return it->second;
  }
  const auto it = globals_.find(name);
  if (it != globals_.end()) return it->second;
  return Value::undefined("'" + name + "' is undefined");
}

void Interpreter::assign(const std::string& name, Value value) {
  frame_->vars[name] = std::move(value);
}

// ---- statements ----

Interpreter::Flow Interpreter::exec_body(const Body& body) {
  for (const auto& s : body) {
    const Flow flow = exec(*s);
    if (flow != Flow::kNormal) return flow;
  }
  return Flow::kNormal;
}

namespace {

void unpack_into(std::vector<std::pair<std::string, Value>>& out,
                 const std::vector<std::string>& targets, const Value& value) {
  if (targets.size() == 1) {
    out.emplace_back(targets[0], value);
    return;
  }
  std::vector<Value> items;
  if (value.is_list())
    items = value.list->items;
  else if (value.is_string() || value.is_dict())
    items = iterate(value);
  else
    fail("cannot unpack non-iterable " + type_name(value) + " object");
  if (items.size() != targets.size())
    fail("cannot unpack " + std::to_string(items.size()) + " values into " +
         std::to_string(targets.size()) + " names");
  for (size_t i = 0; i < targets.size(); ++i) out.emplace_back(targets[i], items[i]);
}

}  // namespace

Interpreter::Flow Interpreter::exec(const Stmt& s) {
  DepthScope depth(*this);
  tick();
  switch (s.kind) {
    case StmtKind::kText:
      emit(s.text);
      return Flow::kNormal;
    case StmtKind::kOutput:
      emit(to_str(eval(*s.expr)));
      return Flow::kNormal;
    case StmtKind::kIf:
      for (const auto& [condition, body] : s.branches) {
        if (!condition || truthy(eval(*condition))) return exec_body(body);
      }
      return Flow::kNormal;
    case StmtKind::kFor:
      return exec_for(s);
    case StmtKind::kSet:
      exec_set(s);
      return Flow::kNormal;
    case StmtKind::kSetBlock: {
      Value text = Value::from_string(capture(s.body));
      if (s.expr) {
        Value saved = std::move(block_input_);
        block_input_ = std::move(text);
        text = eval(*s.expr);
        block_input_ = std::move(saved);
      }
      assign(s.targets[0], std::move(text));
      return Flow::kNormal;
    }
    case StmtKind::kFilterBlock: {
      Value saved = std::move(block_input_);
      block_input_ = Value::from_string(capture(s.body));
      const Value result = eval(*s.expr);
      block_input_ = std::move(saved);
      emit(to_str(result));
      return Flow::kNormal;
    }
    case StmtKind::kMacro:
      assign(s.name, make_macro(s));
      return Flow::kNormal;
    case StmtKind::kCallBlock: {
      const Stmt* block = &s;
      std::weak_ptr<Frame> closure = frame_;
      pinned_frames_.push_back(frame_);
      Value caller;
      caller.kind = Kind::kCallable;
      caller.callable = std::make_shared<Callable>();
      caller.callable->name = "caller";
      caller.callable->call = [block, closure](Interpreter& in, CallArgs& args) {
        return in.call_macro(*block, closure.lock(), args);
      };
      const Expr& call_expr = *s.expr;
      const Value callee = eval(*call_expr.args[0]);
      CallArgs args = eval_args(call_expr);
      args.keyword.emplace_back("caller", std::move(caller));
      emit(to_str(call(callee, args, call_expr.offset)));
      return Flow::kNormal;
    }
    case StmtKind::kBreak:
      return Flow::kBreak;
    case StmtKind::kContinue:
      return Flow::kContinue;
    case StmtKind::kScope:
      return exec_body(s.body);
  }
  return Flow::kNormal;
}

void Interpreter::exec_set(const Stmt& s) {
  Value value = eval(*s.expr);
  if (!s.attribute.empty()) {
    const Value target = lookup(s.targets[0]);
    if (!target.is_namespace())
      error(s.offset, "cannot assign attribute on non-namespace object '" + s.targets[0] + "'");
    target.dict->set(s.attribute, std::move(value));
    note_mutated(target);
    return;
  }
  std::vector<std::pair<std::string, Value>> bindings;
  try {
    unpack_into(bindings, s.targets, value);
  } catch (const TemplateError& e) {
    if (passes_through(e)) throw;
    error(s.offset, e.message);
  }
  for (auto& [name, v] : bindings) assign(name, std::move(v));
}

Interpreter::Flow Interpreter::exec_for(const Stmt& s) {
  const Value iterable = eval(*s.expr);
  if (iterable.is_none() || iterable.is_number() || iterable.kind == Kind::kCallable)
    error(s.expr->offset, "'" + type_name(iterable) + "' object is not iterable");
  std::vector<Value> items = iterate(iterable);
  const std::shared_ptr<Frame> outer = frame_;
  const auto bind = [&](const Value& item) {
    std::vector<std::pair<std::string, Value>> bindings;
    try {
      unpack_into(bindings, s.targets, item);
    } catch (const TemplateError& e) {
      if (passes_through(e)) throw;
      error(s.offset, e.message);
    }
    for (auto& [name, v] : bindings) frame_->vars[name] = std::move(v);
  };
  if (s.condition) {  // jinja2 filters first, so loop.length/last count only the kept items
    std::vector<Value> kept;
    for (const Value& item : items) {
      tick();
      frame_ = std::make_shared<Frame>();
      frame_->parent = outer;
      bind(item);
      const bool keep = truthy(eval(*s.condition));
      frame_ = outer;
      if (keep) kept.push_back(item);
    }
    items = std::move(kept);
  }
  if (items.empty()) return exec_body(s.else_body);
  const int64_t n = static_cast<int64_t>(items.size());
  // One `loop` object per loop, updated in place, and the iteration frame is recycled unless a
  // macro closed over it: per-iteration allocations dominate the cost of long loops.
  Value loop = Value::new_dict();
  Dict& d = *loop.dict;
  for (const char* key : {"index", "index0", "revindex", "revindex0", "first", "last", "length",
                          "depth", "depth0", "previtem", "nextitem"})
    d.set(key, Value::undefined());
  enum {
    kIndex,
    kIndex0,
    kRevindex,
    kRevindex0,
    kFirst,
    kLast,
    kLength,
    kDepth,
    kDepth0,
    kPrevitem,
    kNextitem
  };
  d.entries[kLength].second = Value::from_int(n);
  d.entries[kDepth].second = Value::from_int(1);
  d.entries[kDepth0].second = Value::from_int(0);
  std::shared_ptr<Frame> iteration;
  for (int64_t i = 0; i < n; ++i) {
    tick(8);
    if (!iteration || iteration.use_count() > 1) {
      iteration = std::make_shared<Frame>();
      iteration->parent = outer;
    } else {
      iteration->vars.clear();
    }
    frame_ = iteration;
    d.entries[kIndex].second = Value::from_int(i + 1);
    d.entries[kIndex0].second = Value::from_int(i);
    d.entries[kRevindex].second = Value::from_int(n - i);
    d.entries[kRevindex0].second = Value::from_int(n - i - 1);
    d.entries[kFirst].second = Value::from_bool(i == 0);
    d.entries[kLast].second = Value::from_bool(i == n - 1);
    d.entries[kPrevitem].second =
        i > 0 ? items[static_cast<size_t>(i - 1)] : Value::undefined("no previous item");
    d.entries[kNextitem].second =
        i + 1 < n ? items[static_cast<size_t>(i + 1)] : Value::undefined("no next item");
    frame_->vars["loop"] = loop;
    bind(items[static_cast<size_t>(i)]);
    Flow flow;
    try {
      flow = exec_body(s.body);
    } catch (...) {
      frame_ = outer;
      throw;
    }
    frame_ = outer;
    if (flow == Flow::kBreak) break;
  }
  return Flow::kNormal;
}

Value Interpreter::make_macro(const Stmt& s) {
  const Stmt* macro = &s;
  std::weak_ptr<Frame> closure = frame_;
  pinned_frames_.push_back(frame_);
  Value v;
  v.kind = Kind::kCallable;
  v.callable = std::make_shared<Callable>();
  v.callable->name = s.name;
  v.callable->call = [macro, closure](Interpreter& in, CallArgs& args) {
    return in.call_macro(*macro, closure.lock(), args);
  };
  return v;
}

Value Interpreter::call_macro(const Stmt& macro, const std::shared_ptr<Frame>& closure,
                              CallArgs& args) {
  if (++call_depth_ > budget_.max_call_depth) {
    --call_depth_;
    fail_limit("macro calls nested deeper than " + std::to_string(budget_.max_call_depth));
  }
  const std::shared_ptr<Frame> saved = frame_;
  frame_ = std::make_shared<Frame>();
  frame_->parent = closure;
  std::string result;
  try {
    if (args.positional.size() > macro.params.size())
      error(macro.offset, "macro '" + macro.name + "' takes not more than " +
                              std::to_string(macro.params.size()) + " argument(s)");
    std::vector<bool> bound(macro.params.size(), false);
    for (size_t i = 0; i < args.positional.size(); ++i) {
      frame_->vars[macro.params[i].name] = args.positional[i];
      bound[i] = true;
    }
    for (auto& [key, value] : args.keyword) {
      bool found = key == "caller";
      for (size_t i = 0; i < macro.params.size(); ++i) {
        if (macro.params[i].name == key) {
          if (bound[i])
            error(macro.offset,
                  "macro '" + macro.name + "' got multiple values for argument '" + key + "'");
          bound[i] = true;
          found = true;
        }
      }
      if (!found)
        error(macro.offset,
              "macro '" + macro.name + "' got an unexpected keyword argument '" + key + "'");
      frame_->vars[key] = value;
    }
    for (size_t i = 0; i < macro.params.size(); ++i) {
      if (bound[i]) continue;
      const MacroParam& p = macro.params[i];
      frame_->vars[p.name] = p.default_value
                                 ? eval(*p.default_value)
                                 : Value::undefined("parameter '" + p.name + "' was not provided");
    }
    result = capture(macro.body);
  } catch (...) {
    frame_ = saved;
    --call_depth_;
    throw;
  }
  frame_ = saved;
  --call_depth_;
  return Value::from_string(std::move(result));
}

// ---- expressions ----

CallArgs Interpreter::eval_args(const Expr& e) {
  CallArgs args;
  for (size_t i = 1; i < e.args.size(); ++i) args.positional.push_back(eval(*e.args[i]));
  for (const auto& [key, value] : e.keywords) args.keyword.emplace_back(key, eval(*value));
  return args;
}

Value Interpreter::call(const Value& callee, CallArgs& args, size_t offset) {
  if (callee.kind == Kind::kCallable) {
    try {
      return callee.callable->call(*this, args);
    } catch (TemplateError& e) {
      if (passes_through(e)) throw;
      error(offset, e.message);
    }
  }
  if (callee.is_undefined())
    error(offset, callee.text.empty() ? "call of an undefined value" : callee.text);
  error(offset, "'" + type_name(callee) + "' object is not callable");
}

Value Interpreter::eval_call(const Expr& e) {
  const Value callee = eval(*e.args[0]);
  CallArgs args = eval_args(e);
  return call(callee, args, e.offset);
}

Value Interpreter::apply_filter(const std::string& name, const Value& operand, CallArgs& args,
                                size_t offset) {
  Value result;
  bool known = false;
  try {
    known = call_filter(*this, name, operand, args, result);
  } catch (TemplateError& e) {
    if (passes_through(e)) throw;
    error(offset, "filter '" + name + "': " + e.message);
  }
  if (!known) error(offset, "no filter named '" + name + "'");
  return result;
}

bool Interpreter::apply_test(const std::string& name, const Value& operand, CallArgs& args,
                             size_t offset) {
  bool result = false;
  bool known = false;
  try {
    known = call_test(*this, name, operand, args, result);
  } catch (TemplateError& e) {
    if (passes_through(e)) throw;
    error(offset, "test '" + name + "': " + e.message);
  }
  if (!known) error(offset, "no test named '" + name + "'");
  return result;
}

namespace {

std::vector<size_t> slice_indices(int64_t n, const Value& start_v, const Value& stop_v,
                                  const Value& step_v) {
  const auto as_index = [](const Value& v, const char* what) -> std::optional<int64_t> {
    if (v.is_undefined() || v.is_none()) return std::nullopt;
    if (!v.is_integral()) fail(std::string("slice ") + what + " must be an integer or None");
    return v.as_int();
  };
  const int64_t step = as_index(step_v, "step").value_or(1);
  if (step == 0) fail("slice step cannot be zero");
  std::optional<int64_t> start = as_index(start_v, "start"), stop = as_index(stop_v, "stop");
  int64_t lo, hi;
  if (step > 0) {
    lo = start.value_or(0);
    hi = stop.value_or(n);
    if (lo < 0) lo = std::max<int64_t>(0, lo + n);
    if (hi < 0) hi = std::max<int64_t>(0, hi + n);
    lo = std::min(lo, n);
    hi = std::min(hi, n);
  } else {
    lo = start.value_or(n - 1);
    hi = stop.has_value() ? *stop : -1 - n;  // "before the first element"
    if (lo < 0) lo = std::max<int64_t>(-1, lo + n);
    if (stop.has_value() && hi < 0) hi = std::max<int64_t>(-1, hi + n);
    if (!stop.has_value()) hi = -1;
    lo = std::min(lo, n - 1);
    hi = std::min(hi, n - 1);
  }
  std::vector<size_t> indices;
  if (step > 0) {
    for (int64_t i = lo; i < hi; i += step) indices.push_back(static_cast<size_t>(i));
  } else {
    for (int64_t i = lo; i > hi; i += step) indices.push_back(static_cast<size_t>(i));
  }
  return indices;
}

}  // namespace

Value Interpreter::eval(const Expr& e) {
  DepthScope depth(*this);
  tick();
  switch (e.kind) {
    case ExprKind::kLiteral:
      return e.literal;
    case ExprKind::kName:
      return lookup(e.name);
    case ExprKind::kList:
    case ExprKind::kTuple: {
      std::vector<Value> items;
      items.reserve(e.args.size());
      for (const auto& a : e.args) items.push_back(eval(*a));
      return Value::new_list(std::move(items), e.kind == ExprKind::kTuple);
    }
    case ExprKind::kDict: {
      Value dict = Value::new_dict();
      for (size_t i = 0; i + 1 < e.args.size(); i += 2) {
        const Value key = eval(*e.args[i]);
        if (!key.is_string()) error(e.args[i]->offset, "dict keys must be strings here");
        dict.dict->set(key.text, eval(*e.args[i + 1]));
      }
      return dict;
    }
    case ExprKind::kGetAttr: {
      const Value object = eval(*e.args[0]);
      if (object.is_undefined())
        error(e.offset, object.text.empty() ? "attribute of an undefined value" : object.text);
      return get_attribute(object, e.name);
    }
    case ExprKind::kGetItem: {
      const Value object = eval(*e.args[0]);
      if (object.is_undefined())
        error(e.offset, object.text.empty() ? "item of an undefined value" : object.text);
      return get_item(object, eval(*e.args[1]));
    }
    case ExprKind::kSlice: {
      const Value object = eval(*e.args[0]);
      if (object.is_undefined())
        error(e.offset, object.text.empty() ? "slice of an undefined value" : object.text);
      const auto part = [&](size_t i) { return e.args[i] ? eval(*e.args[i]) : Value::none(); };
      const Value start = part(1), stop = part(2), step = part(3);
      try {
        if (object.is_list()) {
          const auto& items = object.list->items;
          std::vector<Value> out;
          for (size_t i : slice_indices(static_cast<int64_t>(items.size()), start, stop, step))
            out.push_back(items[i]);
          tick(out.size());
          return Value::new_list(std::move(out), object.list->is_tuple);
        }
        if (object.is_string()) {
          const std::vector<char32_t> cps = utf8::to_code_points(object.text);
          std::string out;
          for (size_t i : slice_indices(static_cast<int64_t>(cps.size()), start, stop, step))
            utf8::append(out, cps[i]);
          tick(cps.size() / 64);
          return Value::from_string(std::move(out));
        }
      } catch (const TemplateError& err) {
        if (passes_through(err)) throw;
        error(e.offset, err.message);
      }
      error(e.offset, "'" + type_name(object) + "' object is not subscriptable");
    }
    case ExprKind::kCall:
      return eval_call(e);
    case ExprKind::kFilter: {
      const Value operand = e.args[0] ? eval(*e.args[0]) : block_input_;
      CallArgs args = eval_args(e);
      return apply_filter(e.name, operand, args, e.offset);
    }
    case ExprKind::kTest: {
      const Value operand = eval(*e.args[0]);
      CallArgs args = eval_args(e);
      const bool result = apply_test(e.name, operand, args, e.offset);
      return Value::from_bool(e.negated ? !result : result);
    }
    case ExprKind::kUnary: {
      const Value operand = eval(*e.args[0]);
      if (e.name == "not") return Value::from_bool(!truthy(operand));
      if (operand.is_undefined())
        error(e.offset, operand.text.empty() ? "undefined operand" : operand.text);
      if (!operand.is_number())
        error(e.offset, "bad operand type for unary " + e.name + ": '" + type_name(operand) + "'");
      if (e.name == "+")
        return operand.kind == Kind::kBool ? Value::from_int(operand.as_int()) : operand;
      if (operand.kind == Kind::kFloat) return Value::from_float(-operand.number);
      if (operand.as_int() == std::numeric_limits<int64_t>::min())
        error(e.offset, "integer overflow");
      return Value::from_int(-operand.as_int());
    }
    case ExprKind::kBinary:
      return eval_binary(e);
    case ExprKind::kCompare:
      return eval_compare(e);
    case ExprKind::kCondition: {
      if (truthy(eval(*e.args[0]))) return eval(*e.args[1]);
      if (e.args[2]) return eval(*e.args[2]);
      return Value::undefined(
          "the inline if expression evaluated to false and no else section was defined");
    }
  }
  return Value::undefined();
}

Value Interpreter::eval_binary(const Expr& e) {
  const std::string& op = e.name;
  if (op == "and") {
    Value left = eval(*e.args[0]);
    return truthy(left) ? eval(*e.args[1]) : left;
  }
  if (op == "or") {
    Value left = eval(*e.args[0]);
    return truthy(left) ? left : eval(*e.args[1]);
  }
  const Value a = eval(*e.args[0]);
  const Value b = eval(*e.args[1]);
  if (op == "~") {
    std::string s = to_str(a);
    const std::string t = to_str(b);
    check_size(s.size() + t.size());
    tick((s.size() + t.size()) / 64);
    return Value::from_string(s + t);
  }
  if (a.is_undefined()) error(e.offset, a.text.empty() ? "undefined operand" : a.text);
  if (b.is_undefined()) error(e.offset, b.text.empty() ? "undefined operand" : b.text);
  const auto unsupported = [&]() {
    error(e.offset, "unsupported operand type(s) for " + op + ": '" + type_name(a) + "' and '" +
                        type_name(b) + "'");
  };
  const bool ints = a.is_integral() && b.is_integral();
  const bool numbers = a.is_number() && b.is_number();
  if (op == "+") {
    if (ints) {
      int64_t r;
      const bool overflow = __builtin_add_overflow(a.as_int(), b.as_int(), &r);
      if (overflow) error(e.offset, "integer overflow");
      return Value::from_int(r);
    }
    if (numbers) return Value::from_float(a.as_double() + b.as_double());
    if (a.is_string() && b.is_string()) {
      check_size(a.text.size() + b.text.size());
      tick((a.text.size() + b.text.size()) / 64);
      return Value::from_string(a.text + b.text);
    }
    if (a.is_list() && b.is_list()) {
      std::vector<Value> items = a.list->items;
      items.insert(items.end(), b.list->items.begin(), b.list->items.end());
      check_size(items.size());
      tick(items.size());
      return Value::new_list(std::move(items), a.list->is_tuple);
    }
    unsupported();
  }
  if (op == "-") {
    if (ints) {
      int64_t r;
      if (__builtin_sub_overflow(a.as_int(), b.as_int(), &r)) error(e.offset, "integer overflow");
      return Value::from_int(r);
    }
    if (numbers) return Value::from_float(a.as_double() - b.as_double());
    unsupported();
  }
  if (op == "*") {
    if (ints) {
      int64_t r;
      if (__builtin_mul_overflow(a.as_int(), b.as_int(), &r)) error(e.offset, "integer overflow");
      return Value::from_int(r);
    }
    if (numbers) return Value::from_float(a.as_double() * b.as_double());
    const Value* seq = (a.is_string() || a.is_list()) && b.is_integral() ? &a : nullptr;
    const Value* count = seq ? &b : nullptr;
    if (!seq && (b.is_string() || b.is_list()) && a.is_integral()) {
      seq = &b;
      count = &a;
    }
    if (!seq) unsupported();
    const int64_t times = std::max<int64_t>(0, count->as_int());
    if (seq->is_string()) {
      if (times > 0 && seq->text.size() > 0)
        check_size(seq->text.size() * static_cast<size_t>(std::min<int64_t>(times, 1LL << 40)));
      std::string out;
      for (int64_t i = 0; i < times && !seq->text.empty(); ++i) out += seq->text;
      tick(out.size() / 64);
      return Value::from_string(std::move(out));
    }
    if (times > 0 && !seq->list->items.empty())
      check_size(seq->list->items.size() *
                 static_cast<size_t>(std::min<int64_t>(times, 1LL << 40)));
    std::vector<Value> items;
    for (int64_t i = 0; i < times && !seq->list->items.empty(); ++i)
      items.insert(items.end(), seq->list->items.begin(), seq->list->items.end());
    tick(items.size());
    return Value::new_list(std::move(items), seq->list->is_tuple);
  }
  if (op == "/") {
    if (!numbers) unsupported();
    if (b.as_double() == 0.0) error(e.offset, "division by zero");
    return Value::from_float(a.as_double() / b.as_double());
  }
  if (op == "//") {
    if (!numbers) unsupported();
    if (b.as_double() == 0.0) error(e.offset, "integer division or modulo by zero");
    if (ints) {
      const int64_t x = a.as_int(), y = b.as_int();
      if (x == std::numeric_limits<int64_t>::min() && y == -1) error(e.offset, "integer overflow");
      int64_t q = x / y;
      if ((x % y != 0) && ((x < 0) != (y < 0))) --q;
      return Value::from_int(q);
    }
    return Value::from_float(std::floor(a.as_double() / b.as_double()));
  }
  if (op == "%") {
    if (!numbers) unsupported();
    if (b.as_double() == 0.0) error(e.offset, "integer division or modulo by zero");
    if (ints) {
      const int64_t x = a.as_int(), y = b.as_int();
      if (y == -1) return Value::from_int(0);
      int64_t r = x % y;
      if (r != 0 && ((r < 0) != (y < 0))) r += y;
      return Value::from_int(r);
    }
    const double x = a.as_double(), y = b.as_double();
    double r = std::fmod(x, y);
    if (r != 0 && ((r < 0) != (y < 0))) r += y;
    return Value::from_float(r);
  }
  if (op == "**") {
    if (!numbers) unsupported();
    if (ints && b.as_int() >= 0) {
      int64_t base = a.as_int(), exponent = b.as_int(), result = 1;
      while (exponent > 0) {
        if ((exponent & 1) && __builtin_mul_overflow(result, base, &result))
          error(e.offset, "integer overflow");
        exponent >>= 1;
        if (exponent > 0 && __builtin_mul_overflow(base, base, &base))
          error(e.offset, "integer overflow");
      }
      return Value::from_int(result);
    }
    if (a.as_double() == 0.0 && b.as_double() < 0)
      error(e.offset, "0.0 cannot be raised to a negative power");
    return Value::from_float(std::pow(a.as_double(), b.as_double()));
  }
  error(e.offset, "unknown operator " + op);
}

Value Interpreter::eval_compare(const Expr& e) {
  Value left = eval(*e.args[0]);
  for (size_t i = 0; i < e.ops.size(); ++i) {
    Value right = eval(*e.args[i + 1]);
    const std::string& op = e.ops[i];
    bool result = false;
    try {
      if (op == "==")
        result = equals(left, right);
      else if (op == "!=")
        result = !equals(left, right);
      else if (op == "in")
        result = contains(right, left);
      else if (op == "not in")
        result = !contains(right, left);
      else {
        if (left.is_undefined())
          error(e.offset, left.text.empty() ? "undefined operand" : left.text);
        if (right.is_undefined())
          error(e.offset, right.text.empty() ? "undefined operand" : right.text);
        const int c = compare(left, right);
        result = op == "<" ? c < 0 : op == ">" ? c > 0 : op == "<=" ? c <= 0 : c >= 0;
      }
    } catch (const TemplateError& err) {
      if (passes_through(err)) throw;
      error(e.offset, err.message);
    }
    if (!result) return Value::from_bool(false);
    left = std::move(right);
  }
  return Value::from_bool(true);
}

}  // namespace edgelm::jinja
