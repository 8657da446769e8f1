// libFuzzer target: arbitrary bytes as a chat template, parsed and rendered with a fixed
// conversation. Any crash, sanitizer report, leak or timeout is a bug: errors are fine.
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string_view>

#include "edgelm/jinja.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const nlohmann::ordered_json context = nlohmann::ordered_json::parse(R"({
    "messages": [{"role": "system", "content": "sys"}, {"role": "user", "content": "hi \u00e9"},
                 {"role": "assistant", "content": "<think>r</think>ok", "tool_calls": [{"function": {"name": "f", "arguments": {"a": 1}}}]}],
    "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
    "add_generation_prompt": true, "bos_token": "<s>", "eos_token": "</s>", "n": 3, "xs": [1, 2.5, null, true]})");
  edgelm::jinja::RenderOptions options;
  options.max_steps = 200000;  // keeps each input fast; the limits themselves are what is tested
  options.max_output_bytes = 1 << 20;
  options.now = 0;
  auto parsed =
      edgelm::jinja::Template::parse(std::string_view(reinterpret_cast<const char*>(data), size));
  if (parsed) (void)parsed->render(context, options);
  return 0;
}
