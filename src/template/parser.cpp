#include "template/parser.h"

#include <algorithm>
#include <initializer_list>

#include "template/template_error.h"

namespace edgelm::jinja {

namespace {

class Parser {
 public:
  Parser(std::string_view source, const std::vector<Token>& tokens)
      : source_(source), tokens_(tokens) {}

  Body parse_all() {
    std::string end_tag;
    Body body = parse_body({}, end_tag);
    if (peek().type != TokenType::kEnd) error_here("unexpected tag");
    return body;
  }

 private:
  // ---- token helpers ----
  const Token& peek(size_t ahead = 0) const {
    const size_t i = std::min(pos_ + ahead, tokens_.size() - 1);
    return tokens_[i];
  }
  const Token& next() {
    const Token& t = tokens_[pos_];
    if (pos_ + 1 < tokens_.size()) ++pos_;
    return t;
  }
  bool is_op(const char* op, size_t ahead = 0) const {
    const Token& t = peek(ahead);
    return t.type == TokenType::kOperator && t.value == op;
  }
  bool is_name(const char* name, size_t ahead = 0) const {
    const Token& t = peek(ahead);
    return t.type == TokenType::kName && t.value == name;
  }
  bool accept_op(const char* op) {
    if (!is_op(op)) return false;
    next();
    return true;
  }
  bool accept_name(const char* name) {
    if (!is_name(name)) return false;
    next();
    return true;
  }
  [[noreturn]] void error_at(size_t offset, const std::string& what) const {
    fail("template syntax error at " + describe_position(source_, offset) + ": " + what);
  }
  [[noreturn]] void error_here(const std::string& what) const {
    const Token& t = peek();
    std::string found;
    switch (t.type) {
      case TokenType::kEnd:
        found = "end of template";
        break;
      case TokenType::kBlockEnd:
        found = "'%}'";
        break;
      case TokenType::kVariableEnd:
        found = "'}}'";
        break;
      case TokenType::kText:
        found = "template text";
        break;
      case TokenType::kBlockBegin:
        found = "'{%'";
        break;
      case TokenType::kVariableBegin:
        found = "'{{'";
        break;
      default:
        found = "'" + t.value + "'";
    }
    error_at(t.offset, what + " (found " + found + ")");
  }
  void expect_op(const char* op) {
    if (!accept_op(op)) error_here(std::string("expected '") + op + "'");
  }
  std::string expect_name() {
    if (peek().type != TokenType::kName) error_here("expected a name");
    return next().value;
  }
  void expect_block_end() {
    if (peek().type != TokenType::kBlockEnd) error_here("expected '%}'");
    next();
  }

  struct DepthGuard {
    explicit DepthGuard(Parser& p) : parser(p) {
      if (++parser.depth_ > kMaxSyntaxDepth) parser.error_here("template nested too deeply");
    }
    ~DepthGuard() { --parser.depth_; }
    Parser& parser;
  };

  ExprPtr make(ExprKind kind, size_t offset) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->offset = offset;
    return e;
  }
  // Records the subtree height; left-associative chains (a+b+c+...) grow height without parser
  // recursion, so the height is checked here as well.
  ExprPtr finish(ExprPtr e) {
    int depth = 0;
    for (const auto& a : e->args)
      if (a) depth = std::max(depth, a->depth);
    for (const auto& [k, a] : e->keywords) depth = std::max(depth, a->depth);
    e->depth = depth + 1;
    if (e->depth > kMaxSyntaxDepth) error_at(e->offset, "expression nested too deeply");
    return e;
  }

  // ---- statements ----
  // Parses statements until one of end_tags (returned in end_tag, its name consumed) or the end.
  Body parse_body(std::initializer_list<const char*> end_tags, std::string& end_tag) {
    DepthGuard guard(*this);
    Body body;
    while (true) {
      const Token& t = peek();
      if (t.type == TokenType::kEnd) {
        if (end_tags.size() != 0) {
          std::string expected;
          for (const char* tag : end_tags)
            expected += std::string(expected.empty() ? "" : " or ") + "'" + tag + "'";
          error_here("unexpected end of template, expected " + expected);
        }
        return body;
      }
      if (t.type == TokenType::kText) {
        auto s = std::make_unique<Stmt>();
        s->kind = StmtKind::kText;
        s->offset = t.offset;
        s->text = next().value;
        body.push_back(std::move(s));
        continue;
      }
      if (t.type == TokenType::kVariableBegin) {
        next();
        auto s = std::make_unique<Stmt>();
        s->kind = StmtKind::kOutput;
        s->offset = t.offset;
        s->expr = parse_tuple(true);
        if (peek().type != TokenType::kVariableEnd) error_here("expected '}}'");
        next();
        body.push_back(std::move(s));
        continue;
      }
      if (t.type != TokenType::kBlockBegin) error_here("unexpected token");
      const Token& keyword = peek(1);
      if (keyword.type != TokenType::kName) {
        next();
        error_here("expected a tag name");
      }
      for (const char* tag : end_tags) {
        if (keyword.value == tag) {
          next();
          next();
          end_tag = tag;
          return body;
        }
      }
      next();
      body.push_back(parse_statement());
    }
  }

  StmtPtr parse_statement() {
    const Token& keyword = next();
    const std::string& k = keyword.value;
    auto s = std::make_unique<Stmt>();
    s->offset = keyword.offset;
    if (k == "if") return parse_if(std::move(s));
    if (k == "for") return parse_for(std::move(s));
    if (k == "set") return parse_set(std::move(s));
    if (k == "macro") return parse_macro(std::move(s));
    if (k == "call") return parse_call_block(std::move(s));
    if (k == "filter") return parse_filter_block(std::move(s));
    if (k == "generation") {
      s->kind = StmtKind::kScope;
      expect_block_end();
      std::string end;
      s->body = parse_body({"endgeneration"}, end);
      expect_block_end();
      return s;
    }
    if (k == "break" || k == "continue") {
      if (loop_depth_ == 0) error_at(keyword.offset, "'" + k + "' outside of a loop");
      s->kind = k == "break" ? StmtKind::kBreak : StmtKind::kContinue;
      expect_block_end();
      return s;
    }
    error_at(keyword.offset, "unknown or unsupported tag '" + k + "'");
  }

  StmtPtr parse_if(StmtPtr s) {
    s->kind = StmtKind::kIf;
    ExprPtr condition = parse_expression(true);
    while (true) {
      expect_block_end();
      std::string end;
      Body body = parse_body({"elif", "else", "endif"}, end);
      s->branches.emplace_back(std::move(condition), std::move(body));
      if (end == "endif") break;
      if (end == "else") {
        expect_block_end();
        Body else_body = parse_body({"endif"}, end);
        s->branches.emplace_back(nullptr, std::move(else_body));
        break;
      }
      condition = parse_expression(true);
    }
    expect_block_end();
    return s;
  }

  // Assignment targets: `a`, `a, b`, `(a, b)`.
  std::vector<std::string> parse_targets() {
    std::vector<std::string> names;
    const bool parenthesized = accept_op("(");
    do {
      names.push_back(expect_name());
    } while (accept_op(","));
    if (parenthesized) expect_op(")");
    return names;
  }

  StmtPtr parse_for(StmtPtr s) {
    s->kind = StmtKind::kFor;
    s->targets = parse_targets();
    if (!accept_name("in")) error_here("expected 'in'");
    s->expr = parse_tuple(false);
    if (accept_name("if")) s->condition = parse_expression(true);
    if (is_name("recursive")) error_here("recursive loops are not supported");
    expect_block_end();
    ++loop_depth_;
    std::string end;
    s->body = parse_body({"else", "endfor"}, end);
    --loop_depth_;
    if (end == "else") {
      expect_block_end();
      // break/continue in a for-else body belong to an enclosing loop, as in jinja2.
      s->else_body = parse_body({"endfor"}, end);
    }
    expect_block_end();
    return s;
  }

  StmtPtr parse_set(StmtPtr s) {
    if (peek().type == TokenType::kName && is_op(".", 1)) {
      s->targets.push_back(next().value);
      next();
      s->attribute = expect_name();
    } else {
      s->targets = parse_targets();
    }
    if (accept_op("=")) {
      s->kind = StmtKind::kSet;
      s->expr = parse_tuple(true);
      expect_block_end();
      return s;
    }
    if (s->targets.size() != 1 || !s->attribute.empty()) error_here("expected '='");
    s->kind = StmtKind::kSetBlock;
    if (is_op("|")) s->expr = parse_filters(nullptr);
    expect_block_end();
    std::string end;
    s->body = parse_body({"endset"}, end);
    expect_block_end();
    return s;
  }

  void parse_params(Stmt& s) {
    expect_op("(");
    while (!is_op(")")) {
      if (!s.params.empty()) expect_op(",");
      if (is_op(")")) break;
      MacroParam p;
      p.name = expect_name();
      if (accept_op("=")) p.default_value = parse_expression(true);
      s.params.push_back(std::move(p));
    }
    expect_op(")");
  }

  StmtPtr parse_macro(StmtPtr s) {
    s->kind = StmtKind::kMacro;
    s->name = expect_name();
    parse_params(*s);
    expect_block_end();
    const int saved_loops = loop_depth_;
    loop_depth_ = 0;
    std::string end;
    s->body = parse_body({"endmacro"}, end);
    loop_depth_ = saved_loops;
    if (peek().type == TokenType::kName) next();  // {% endmacro name %}
    expect_block_end();
    return s;
  }

  StmtPtr parse_call_block(StmtPtr s) {
    s->kind = StmtKind::kCallBlock;
    if (is_op("(")) parse_params(*s);
    s->expr = parse_expression(true);
    if (s->expr->kind != ExprKind::kCall) error_at(s->offset, "expected a call after 'call'");
    expect_block_end();
    const int saved_loops = loop_depth_;
    loop_depth_ = 0;
    std::string end;
    s->body = parse_body({"endcall"}, end);
    loop_depth_ = saved_loops;
    expect_block_end();
    return s;
  }

  StmtPtr parse_filter_block(StmtPtr s) {
    s->kind = StmtKind::kFilterBlock;
    s->expr = parse_filters(nullptr, /*first_without_pipe=*/true);
    expect_block_end();
    std::string end;
    s->body = parse_body({"endfilter"}, end);
    expect_block_end();
    return s;
  }

  // ---- expressions (jinja2 precedence, loosest first) ----
  // A comma-separated list without brackets is a tuple: {{ a, b }}, {% set x = 1, 2 %}.
  ExprPtr parse_tuple(bool with_condition) {
    const size_t offset = peek().offset;
    ExprPtr first = parse_expression(with_condition);
    if (!is_op(",")) return first;
    auto tuple = make(ExprKind::kTuple, offset);
    tuple->args.push_back(std::move(first));
    while (accept_op(",")) {
      if (peek().type == TokenType::kBlockEnd || peek().type == TokenType::kVariableEnd ||
          is_op(")"))
        break;
      tuple->args.push_back(parse_expression(with_condition));
    }
    return finish(std::move(tuple));
  }

  ExprPtr parse_expression(bool with_condition) {
    DepthGuard guard(*this);
    const size_t offset = peek().offset;
    ExprPtr value = parse_or();
    if (!with_condition) return value;
    while (accept_name("if")) {
      auto cond = make(ExprKind::kCondition, offset);
      ExprPtr test = parse_or();
      ExprPtr otherwise = accept_name("else") ? parse_expression(true) : nullptr;
      cond->args.push_back(std::move(test));
      cond->args.push_back(std::move(value));
      cond->args.push_back(std::move(otherwise));
      value = finish(std::move(cond));
    }
    return value;
  }

  ExprPtr binary(const std::string& op, ExprPtr left, ExprPtr right, size_t offset) {
    auto e = make(ExprKind::kBinary, offset);
    e->name = op;
    e->args.push_back(std::move(left));
    e->args.push_back(std::move(right));
    return finish(std::move(e));
  }

  ExprPtr parse_or() {
    const size_t offset = peek().offset;
    ExprPtr left = parse_and();
    while (accept_name("or")) left = binary("or", std::move(left), parse_and(), offset);
    return left;
  }

  ExprPtr parse_and() {
    const size_t offset = peek().offset;
    ExprPtr left = parse_not();
    while (accept_name("and")) left = binary("and", std::move(left), parse_not(), offset);
    return left;
  }

  ExprPtr parse_not() {
    if (is_name("not")) {
      DepthGuard guard(*this);
      const size_t offset = next().offset;
      auto e = make(ExprKind::kUnary, offset);
      e->name = "not";
      e->args.push_back(parse_not());
      return finish(std::move(e));
    }
    return parse_compare();
  }

  ExprPtr parse_compare() {
    const size_t offset = peek().offset;
    ExprPtr first = parse_math1();
    ExprPtr cmp;
    while (true) {
      std::string op;
      const Token& t = peek();
      if (t.type == TokenType::kOperator &&
          (t.value == "==" || t.value == "!=" || t.value == "<" || t.value == ">" ||
           t.value == "<=" || t.value == ">=")) {
        op = next().value;
      } else if (is_name("in")) {
        next();
        op = "in";
      } else if (is_name("not") && is_name("in", 1)) {
        next();
        next();
        op = "not in";
      } else {
        break;
      }
      if (!cmp) {
        cmp = make(ExprKind::kCompare, offset);
        cmp->args.push_back(std::move(first));
      }
      cmp->ops.push_back(op);
      cmp->args.push_back(parse_math1());
      if (cmp->args.size() > static_cast<size_t>(kMaxSyntaxDepth))
        error_here("comparison chain too long");
    }
    return cmp ? finish(std::move(cmp)) : std::move(first);
  }

  ExprPtr parse_math1() {
    const size_t offset = peek().offset;
    ExprPtr left = parse_concat();
    while (is_op("+") || is_op("-")) {
      const std::string op = next().value;
      left = binary(op, std::move(left), parse_concat(), offset);
    }
    return left;
  }

  ExprPtr parse_concat() {
    const size_t offset = peek().offset;
    ExprPtr left = parse_math2();
    while (accept_op("~")) left = binary("~", std::move(left), parse_math2(), offset);
    return left;
  }

  ExprPtr parse_math2() {
    const size_t offset = peek().offset;
    ExprPtr left = parse_pow();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      const std::string op = next().value;
      left = binary(op, std::move(left), parse_pow(), offset);
    }
    return left;
  }

  ExprPtr parse_pow() {
    const size_t offset = peek().offset;
    ExprPtr left = parse_unary(true);
    while (accept_op("**")) left = binary("**", std::move(left), parse_unary(true), offset);
    return left;
  }

  ExprPtr parse_unary(bool with_filter) {
    DepthGuard guard(*this);
    const size_t offset = peek().offset;
    ExprPtr node;
    if (is_op("-") || is_op("+")) {
      auto e = make(ExprKind::kUnary, offset);
      e->name = next().value;
      e->args.push_back(parse_unary(false));
      node = finish(std::move(e));
    } else {
      node = parse_primary();
    }
    node = parse_postfix(std::move(node));
    if (with_filter) node = parse_filters(std::move(node));
    return node;
  }

  ExprPtr parse_primary() {
    const Token& t = peek();
    const size_t offset = t.offset;
    if (t.type == TokenType::kName) {
      const std::string& n = t.value;
      ExprPtr e = make(ExprKind::kLiteral, offset);
      if (n == "true" || n == "True")
        e->literal = Value::from_bool(true);
      else if (n == "false" || n == "False")
        e->literal = Value::from_bool(false);
      else if (n == "none" || n == "None")
        e->literal = Value::none();
      else {
        e->kind = ExprKind::kName;
        e->name = n;
      }
      next();
      return finish(std::move(e));
    }
    if (t.type == TokenType::kString) {
      std::string s;
      while (peek().type == TokenType::kString) s += next().value;  // "a" "b" concatenates
      auto e = make(ExprKind::kLiteral, offset);
      e->literal = Value::from_string(std::move(s));
      return finish(std::move(e));
    }
    if (t.type == TokenType::kInteger || t.type == TokenType::kFloat) {
      auto e = make(ExprKind::kLiteral, offset);
      e->literal =
          t.type == TokenType::kInteger ? Value::from_int(t.integer) : Value::from_float(t.number);
      next();
      return finish(std::move(e));
    }
    if (accept_op("(")) {
      if (accept_op(")")) {
        auto e = make(ExprKind::kTuple, offset);
        return finish(std::move(e));
      }
      ExprPtr first = parse_expression(true);
      if (accept_op(")")) return first;
      auto tuple = make(ExprKind::kTuple, offset);
      tuple->args.push_back(std::move(first));
      while (accept_op(",")) {
        if (is_op(")")) break;
        tuple->args.push_back(parse_expression(true));
      }
      expect_op(")");
      return finish(std::move(tuple));
    }
    if (accept_op("[")) {
      auto list = make(ExprKind::kList, offset);
      while (!is_op("]")) {
        if (!list->args.empty()) expect_op(",");
        if (is_op("]")) break;
        list->args.push_back(parse_expression(true));
      }
      expect_op("]");
      return finish(std::move(list));
    }
    if (accept_op("{")) {
      auto dict = make(ExprKind::kDict, offset);
      while (!is_op("}")) {
        if (!dict->args.empty()) expect_op(",");
        if (is_op("}")) break;
        dict->args.push_back(parse_expression(true));
        expect_op(":");
        dict->args.push_back(parse_expression(true));
      }
      expect_op("}");
      return finish(std::move(dict));
    }
    error_here("expected an expression");
  }

  void parse_call_args(Expr& call) {
    // '(' already consumed
    while (!is_op(")")) {
      if (call.args.size() > 1 || !call.keywords.empty()) expect_op(",");
      if (is_op(")")) break;
      if (peek().type == TokenType::kName && is_op("=", 1)) {
        std::string key = next().value;
        next();
        call.keywords.emplace_back(std::move(key), parse_expression(true));
      } else {
        if (!call.keywords.empty()) error_here("positional argument after keyword argument");
        call.args.push_back(parse_expression(true));
      }
    }
    expect_op(")");
  }

  ExprPtr parse_subscript(ExprPtr target, size_t offset) {
    // '[' already consumed: index or slice
    ExprPtr parts[3];
    int colons = 0;
    if (!is_op(":")) parts[0] = parse_expression(true);
    while (colons < 2 && accept_op(":")) {
      ++colons;
      if (!is_op(":") && !is_op("]")) parts[colons] = parse_expression(true);
    }
    expect_op("]");
    if (colons == 0) {
      auto e = make(ExprKind::kGetItem, offset);
      e->args.push_back(std::move(target));
      e->args.push_back(std::move(parts[0]));
      return finish(std::move(e));
    }
    auto e = make(ExprKind::kSlice, offset);
    e->args.push_back(std::move(target));
    for (auto& p : parts) e->args.push_back(std::move(p));
    return finish(std::move(e));
  }

  ExprPtr parse_postfix(ExprPtr node) {
    while (true) {
      const size_t offset = peek().offset;
      if (accept_op(".")) {
        const Token& t = peek();
        if (t.type == TokenType::kName) {
          auto e = make(ExprKind::kGetAttr, offset);
          e->name = next().value;
          e->args.push_back(std::move(node));
          node = finish(std::move(e));
        } else if (t.type == TokenType::kInteger) {  // foo.0 indexes like foo[0]
          auto e = make(ExprKind::kGetItem, offset);
          auto index = make(ExprKind::kLiteral, t.offset);
          index->literal = Value::from_int(next().integer);
          e->args.push_back(std::move(node));
          e->args.push_back(finish(std::move(index)));
          node = finish(std::move(e));
        } else {
          error_here("expected an attribute name after '.'");
        }
      } else if (accept_op("[")) {
        DepthGuard guard(*this);
        node = parse_subscript(std::move(node), offset);
      } else if (accept_op("(")) {
        DepthGuard guard(*this);
        auto call = make(ExprKind::kCall, offset);
        call->args.push_back(std::move(node));
        parse_call_args(*call);
        node = finish(std::move(call));
      } else {
        return node;
      }
    }
  }

  // `| name(args)` chains and `is [not] test args` (jinja2 parses both at this level).
  ExprPtr parse_filters(ExprPtr node, bool first_without_pipe = false) {
    bool pipe_optional = first_without_pipe;
    while (true) {
      const size_t offset = peek().offset;
      if (pipe_optional || accept_op("|")) {
        pipe_optional = false;
        auto e = make(ExprKind::kFilter, offset);
        e->name = expect_name();
        while (accept_op(".")) e->name += "." + expect_name();
        e->args.push_back(std::move(node));
        if (accept_op("(")) {
          DepthGuard guard(*this);
          parse_call_args(*e);
        }
        node = finish(std::move(e));
      } else if (accept_name("is")) {
        auto e = make(ExprKind::kTest, offset);
        e->negated = accept_name("not");
        e->name = expect_name();
        e->args.push_back(std::move(node));
        if (accept_op("(")) {
          DepthGuard guard(*this);
          parse_call_args(*e);
        } else if (starts_test_argument()) {
          DepthGuard guard(*this);
          ExprPtr arg = parse_primary();
          e->args.push_back(parse_postfix(std::move(arg)));
        }
        node = finish(std::move(e));
      } else {
        return node;
      }
    }
  }

  // `x is divisibleby 3`, `x is equalto 'a'`: one argument without parentheses.
  bool starts_test_argument() const {
    const Token& t = peek();
    switch (t.type) {
      case TokenType::kString:
      case TokenType::kInteger:
      case TokenType::kFloat:
        return true;
      case TokenType::kName:
        return t.value != "else" && t.value != "or" && t.value != "and" && t.value != "is" &&
               t.value != "if" && t.value != "in" && t.value != "not";
      case TokenType::kOperator:
        return t.value == "[" || t.value == "{";
      default:
        return false;
    }
  }

  std::string_view source_;
  const std::vector<Token>& tokens_;
  size_t pos_ = 0;
  int depth_ = 0;
  int loop_depth_ = 0;
};

}  // namespace

Body parse_template(std::string_view source, const std::vector<Token>& tokens) {
  return Parser(source, tokens).parse_all();
}

}  // namespace edgelm::jinja
