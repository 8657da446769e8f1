#include "edgelm/jinja.h"

#include <new>
#include <nlohmann/json.hpp>

#include "template/interpreter.h"
#include "template/lexer.h"
#include "template/parser.h"
#include "template/template_error.h"

namespace edgelm::jinja {

struct Program {
  std::string source;
  Body body;
};

Result<Template> Template::parse(std::string_view source, const ParseOptions& options) {
  if (source.size() > options.max_source_bytes)
    return make_error(ErrorCode::kOutOfRange, "chat template: source is " +
                                                  std::to_string(source.size()) +
                                                  " bytes, more than the limit of " +
                                                  std::to_string(options.max_source_bytes));
  try {
    auto program = std::make_shared<Program>();
    program->source = std::string(source);
    LexerOptions lexer_options;
    lexer_options.trim_blocks = options.trim_blocks;
    lexer_options.lstrip_blocks = options.lstrip_blocks;
    lexer_options.keep_trailing_newline = options.keep_trailing_newline;
    const std::vector<Token> tokens = tokenize(program->source, lexer_options);
    program->body = parse_template(program->source, tokens);
    Template t;
    t.program_ = std::move(program);
    return t;
  } catch (const TemplateError& e) {
    return make_error(e.code, "chat template: " + e.message);
  } catch (const std::bad_alloc&) {
    return make_error(ErrorCode::kOutOfRange, "chat template: out of memory while parsing");
  } catch (const std::exception& e) {
    return make_error(ErrorCode::kInternal, std::string("chat template: ") + e.what());
  }
}

namespace {

template <class Json>
Result<std::string> render_impl(const Program& program, const Json& context,
                                const RenderOptions& options) {
  if (!context.is_object())
    return make_error(ErrorCode::kInvalidArgument, "chat template: context must be a JSON object");
  try {
    Budget budget;
    budget.max_output_bytes = options.max_output_bytes;
    budget.max_steps = options.max_steps;
    budget.max_call_depth = options.max_macro_depth;
    budget.now = options.now.value_or(std::time(nullptr));
    Interpreter interpreter(budget, from_json(context), program.source);
    return interpreter.render(program.body);
  } catch (const TemplateError& e) {
    return make_error(e.code, "chat template: " + e.message);
  } catch (const std::bad_alloc&) {
    return make_error(ErrorCode::kOutOfRange, "chat template: out of memory while rendering");
  } catch (const std::exception& e) {
    return make_error(ErrorCode::kInternal, std::string("chat template: ") + e.what());
  }
}

}  // namespace

Result<std::string> Template::render(const nlohmann::ordered_json& context,
                                     const RenderOptions& options) const {
  return render_impl(*program_, context, options);
}

Result<std::string> Template::render(const nlohmann::json& context,
                                     const RenderOptions& options) const {
  return render_impl(*program_, context, options);
}

const std::string& Template::source() const {
  return program_->source;
}

}  // namespace edgelm::jinja
