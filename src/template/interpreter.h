// Walks the syntax tree with jinja2's semantics (scoping, Undefined, loop variables) under hard
// budgets: a render can never run forever, recurse without bound or allocate without bound.
#pragma once

#include <cstdint>
#include <ctime>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "template/ast.h"
#include "template/value.h"

namespace edgelm::jinja {

struct Budget {
  size_t max_output_bytes = 0;  // also bounds every string and list the template builds
  uint64_t max_steps = 0;
  int max_call_depth = 0;
  std::time_t now = 0;  // what strftime_now() formats
};

class Interpreter {
 public:
  Interpreter(const Budget& budget, Value context, std::string_view source);
  ~Interpreter();
  Interpreter(const Interpreter&) = delete;
  Interpreter& operator=(const Interpreter&) = delete;

  std::string render(const Body& body);

  // Used by the builtin filters, tests, methods and globals.
  void tick(uint64_t steps = 1);
  void check_size(size_t bytes) const;
  Value call(const Value& callee, CallArgs& args, size_t offset);
  // Builtins that apply filters/tests by name (map, select, ...) pass kNested: their errors are
  // then located at the calling expression by its own handler.
  static constexpr size_t kNested = static_cast<size_t>(-1);
  Value apply_filter(const std::string& name, const Value& operand, CallArgs& args, size_t offset);
  bool apply_test(const std::string& name, const Value& operand, CallArgs& args, size_t offset);
  std::time_t now() const { return budget_.now; }
  // Containers changed in place (list.append, namespace attributes) may now hold themselves;
  // they are emptied when the render ends so reference cycles never leak.
  void note_mutated(const Value& container);
  // Error text with the position of the expression being evaluated.
  [[noreturn]] void error(size_t offset, const std::string& what) const;

 private:
  struct Frame {
    std::unordered_map<std::string, Value> vars;
    std::shared_ptr<Frame> parent;
  };
  enum class Flow { kNormal, kBreak, kContinue };

  Flow exec_body(const Body& body);
  Flow exec(const Stmt& s);
  Flow exec_for(const Stmt& s);
  void exec_set(const Stmt& s);
  std::string capture(const Body& body);
  Value make_macro(const Stmt& s);
  Value call_macro(const Stmt& macro, const std::shared_ptr<Frame>& closure, CallArgs& args);

  Value eval(const Expr& e);
  Value eval_binary(const Expr& e);
  Value eval_compare(const Expr& e);
  Value eval_call(const Expr& e);
  CallArgs eval_args(const Expr& e);

  Value lookup(const std::string& name) const;
  void assign(const std::string& name, Value value);
  void emit(const std::string& text);

  Budget budget_;
  uint64_t steps_ = 0;
  int depth_ = 0;
  int call_depth_ = 0;
  std::shared_ptr<Frame> frame_;
  std::unordered_map<std::string, Value> globals_;
  std::string* out_ = nullptr;
  std::string_view source_;
  Value block_input_;  // the captured body a {% filter %} / {% set x | f %} applies its filters to
  std::vector<std::shared_ptr<Frame>> pinned_frames_;  // frames macros close over (held weakly)
  std::vector<Value> mutated_;

  friend struct DepthScope;
};

// Builtins live in their own files; each returns false when the name is unknown.
bool call_filter(Interpreter& in, const std::string& name, const Value& operand, CallArgs& args,
                 Value& result);
bool call_test(Interpreter& in, const std::string& name, const Value& operand, CallArgs& args,
               bool& result);
bool call_method(Interpreter& in, const Value& object, const std::string& name, CallArgs& args,
                 Value& result);
std::unordered_map<std::string, Value> make_globals();

// Shared helpers for builtins.
Value get_attribute(const Value& object, const std::string& name);  // obj.name (jinja2 getattr)
Value get_item(const Value& object, const Value& key);              // obj[key] (jinja2 getitem)
std::vector<Value> iterate(const Value& v);                         // for x in v
int64_t length_of(const Value& v);                                  // |length
bool contains(const Value& container, const Value& item);           // item in container

}  // namespace edgelm::jinja
