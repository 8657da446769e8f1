// A Jinja2 interpreter for chat templates: the language subset Hugging Face chat templates use,
// rendering byte for byte like Python jinja2 with transformers' settings (trim_blocks=True,
// lstrip_blocks=True, loopcontrols, raise_exception, strftime_now, tojson as transformers defines
// it). Templates come from model files and are untrusted: every failure is an Error, and parsing
// and rendering are bounded in depth, steps and output size.
#pragma once

#include <cstddef>
#include <cstdint>
#include <ctime>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "edgelm/error.h"

namespace edgelm::jinja {

struct ParseOptions {
  bool trim_blocks = true;    // drop the first newline after a block tag (transformers' setting)
  bool lstrip_blocks = true;  // drop indentation before a block tag on its own line
  bool keep_trailing_newline = false;
  size_t max_source_bytes = 1 << 20;
};

struct RenderOptions {
  size_t max_output_bytes = 16 << 20;  // also the cap on any string or list built while rendering
  uint64_t max_steps = 10'000'000;     // evaluation steps (a 1000-message chat needs ~10^5)
  int max_macro_depth = 64;
  std::optional<std::time_t> now;  // the time strftime_now() formats (default: the clock)
};

struct Program;  // the parsed syntax tree (internal)

class Template {
 public:
  // Syntax errors name "line L, column C".
  static Result<Template> parse(std::string_view source, const ParseOptions& options = {});

  // context must be a JSON object; its keys become template variables. Pass nlohmann::ordered_json
  // to keep key order (visible through `tojson` and dict iteration); nlohmann::json sorts keys.
  // Errors: kInvalidFormat (runtime type errors, undefined attribute access, bad calls),
  // kInvalidArgument (the template called raise_exception(msg); the message carries msg),
  // kOutOfRange (a step, depth or size limit was hit).
  Result<std::string> render(const nlohmann::ordered_json& context,
                             const RenderOptions& options = {}) const;
  Result<std::string> render(const nlohmann::json& context,
                             const RenderOptions& options = {}) const;

  const std::string& source() const;

 private:
  std::shared_ptr<const Program> program_;
};

}  // namespace edgelm::jinja
