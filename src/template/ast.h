// The syntax tree produced by the parser and walked by the interpreter.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "template/value.h"

namespace edgelm::jinja {

enum class ExprKind : uint8_t {
  kLiteral,    // literal
  kName,       // name
  kList,       // [args...]
  kTuple,      // (args...)
  kDict,       // {args[0]: args[1], ...}
  kGetAttr,    // args[0] . name
  kGetItem,    // args[0] [ args[1] ]
  kSlice,      // args[0] [ args[1] : args[2] : args[3] ] (absent parts are null)
  kCall,       // args[0] ( args[1..], keywords )
  kFilter,     // args[0] | name ( args[1..], keywords ); args[0] is null in {% filter %}
  kTest,       // args[0] is [not] name ( args[1..] )
  kUnary,      // op args[0]: "not", "-", "+"
  kBinary,     // args[0] op args[1]: + - * / // % ** ~ and or in "not in"
  kCompare,    // args[0] ops[0] args[1] ops[1] args[2] ... (chained like Python)
  kCondition,  // args[1] if args[0] else args[2] (args[2] may be null)
};

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
  ExprKind kind = ExprKind::kLiteral;
  size_t offset = 0;
  int depth = 1;  // height of this subtree, bounded by the parser
  Value literal;
  std::string name;  // name, attribute, filter/test name, or operator
  bool negated = false;
  std::vector<ExprPtr> args;
  std::vector<std::pair<std::string, ExprPtr>> keywords;
  std::vector<std::string> ops;
};

enum class StmtKind : uint8_t {
  kText,
  kOutput,     // {{ expr }}
  kIf,         // branches: (condition or null for else, body)
  kFor,        // for targets in iter [if filter]: body [else else_body]
  kSet,        // set targets = expr; or set ns.attr = expr (attribute non-empty)
  kSetBlock,   // set target %}body{% endset (optional filter)
  kMacro,      // macro name(params): body
  kCallBlock,  // call(params) expr: body
  kFilterBlock,
  kBreak,
  kContinue,
  kScope,  // a body rendered in place ({% generation %})
};

struct Stmt;
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

struct MacroParam {
  std::string name;
  ExprPtr default_value;  // may be null
};

struct Stmt {
  StmtKind kind = StmtKind::kText;
  size_t offset = 0;
  std::string text;
  ExprPtr expr;                                    // output / iterable / value / call / filter
  ExprPtr condition;                               // for-loop filter
  std::vector<std::pair<ExprPtr, Body>> branches;  // if/elif/else
  std::vector<std::string> targets;                // loop or set names (several = unpacking)
  std::string attribute;                           // set ns.attribute
  std::string name;                                // macro name
  std::vector<MacroParam> params;
  Body body;
  Body else_body;
};

}  // namespace edgelm::jinja
