// Parsing and validating OpenAI request bodies. Everything here sees untrusted bytes: each check
// names the parameter, as OpenAI's 400 errors do, and nothing allocates beyond the body's size.
#include <cmath>
#include <limits>
#include <string>

#include "edgelm/serve/api.h"

namespace edgelm::serve {
namespace {

using nlohmann::json;

// Deepest nesting of arrays/objects, scanning the raw text (strings skipped), so that a hostile
// body cannot make any recursive walk of the parsed value deep.
int json_depth(std::string_view text) {
  int depth = 0;
  int deepest = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++depth);
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return deepest;
}

std::variant<json, ApiError> parse_body(std::string_view body, const RequestLimits& limits) {
  if (body.size() > limits.max_body_bytes) {
    ApiError e = invalid_request("the request body has " + std::to_string(body.size()) +
                                 " bytes; the limit is " + std::to_string(limits.max_body_bytes));
    e.status = 413;
    return e;
  }
  if (!is_valid_utf8(body)) return invalid_request("the request body is not valid UTF-8");
  if (json_depth(body) > limits.max_json_depth) {
    return invalid_request("the request body nests deeper than " +
                           std::to_string(limits.max_json_depth) + " levels");
  }
  json value = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (value.is_discarded()) {
    return invalid_request(
        "We could not parse the JSON body of your request. (HINT: This likely means you aren't "
        "using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was "
        "sent was not valid JSON.)");
  }
  if (!value.is_object()) return invalid_request("the request body must be a JSON object");
  return value;
}

std::string type_name(const json& v) {
  switch (v.type()) {
    case json::value_t::null:
      return "null";
    case json::value_t::boolean:
      return "a boolean";
    case json::value_t::string:
      return "a string";
    case json::value_t::array:
      return "an array";
    case json::value_t::object:
      return "an object";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
      return "an integer";
    case json::value_t::number_float:
      return "a number";
    default:
      return "an unsupported value";
  }
}

ApiError wrong_type(const std::string& param, const json& v, const std::string& expected) {
  return invalid_request(v.dump(-1, ' ', false, json::error_handler_t::replace) +
                             " is not valid under any of the given schemas - '" + param +
                             "': expected " + expected + ", got " + type_name(v),
                         param, "invalid_type");
}

// Reads one field after the other into `out`; the first problem is kept in `error`.
class Fields {
 public:
  explicit Fields(std::optional<ApiError>& error) : error_(error) {}

  bool ok() const { return !error_.has_value(); }
  void fail(ApiError e) {
    if (!error_) error_ = std::move(e);
  }

  bool read_bool(const std::string& name, const json& v, bool& out) {
    if (!v.is_boolean()) return fail(wrong_type(name, v, "a boolean")), false;
    out = v.get<bool>();
    return true;
  }
  bool read_number(const std::string& name, const json& v, double lo, double hi, float& out) {
    if (!v.is_number()) return fail(wrong_type(name, v, "a number")), false;
    const double d = v.get<double>();
    if (!(d >= lo && d <= hi)) {
      fail(invalid_request(v.dump() + " is out of range for '" + name +
                               "': expected a number in [" + fmt(lo) + ", " + fmt(hi) + "]",
                           name, "invalid_value"));
      return false;
    }
    out = static_cast<float>(d);
    return true;
  }
  bool read_int(const std::string& name, const json& v, int64_t lo, int64_t hi, int64_t& out) {
    if (!v.is_number_integer()) return fail(wrong_type(name, v, "an integer")), false;
    if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(hi)) {
      return fail(out_of_range(name, v, lo, hi)), false;
    }
    const int64_t i = v.get<int64_t>();
    if (i < lo || i > hi) return fail(out_of_range(name, v, lo, hi)), false;
    out = i;
    return true;
  }
  bool read_string(const std::string& name, const json& v, std::string& out) {
    if (!v.is_string()) return fail(wrong_type(name, v, "a string")), false;
    out = v.get<std::string>();
    return true;
  }

 private:
  static std::string fmt(double d) {
    std::string s = std::to_string(d);
    while (s.size() > 1 && s.back() == '0') s.pop_back();
    if (!s.empty() && s.back() == '.') s.pop_back();
    return s;
  }
  static ApiError out_of_range(const std::string& name, const json& v, int64_t lo, int64_t hi) {
    return invalid_request("Invalid '" + name + "': " + v.dump() +
                               " is out of range; expected an integer in [" + std::to_string(lo) +
                               ", " + std::to_string(hi) + "]",
                           name, "invalid_value");
  }
  std::optional<ApiError>& error_;
};

ApiError unknown_field(const std::string& name) {
  return invalid_request("Unrecognized request argument supplied: " + name, name,
                         "unknown_parameter");
}

// The stop parameter: a string or an array of at most max_stop strings.
void read_stop(Fields& f, const json& v, const RequestLimits& limits,
               std::vector<std::string>& out) {
  auto add = [&](const json& s) {
    std::string text;
    if (!f.read_string("stop", s, text)) return;
    if (text.empty()) return f.fail(invalid_request("'stop' strings must not be empty", "stop"));
    if (text.size() > limits.max_stop_bytes) {
      return f.fail(invalid_request(
          "'stop' strings are limited to " + std::to_string(limits.max_stop_bytes) + " bytes",
          "stop"));
    }
    out.push_back(std::move(text));
  };
  if (v.is_string()) return add(v);
  if (!v.is_array()) return f.fail(wrong_type("stop", v, "a string or an array of strings"));
  if (v.size() > limits.max_stop) {
    return f.fail(invalid_request("'stop' has " + std::to_string(v.size()) + " entries; at most " +
                                      std::to_string(limits.max_stop) + " are allowed",
                                  "stop", "array_above_max_length"));
  }
  for (const json& s : v) add(s);
}

void read_logit_bias(Fields& f, const json& v, const RequestLimits& limits,
                     std::vector<std::pair<int32_t, float>>& out) {
  if (!v.is_object()) return f.fail(wrong_type("logit_bias", v, "an object"));
  if (v.size() > limits.max_logit_bias) {
    return f.fail(invalid_request(
        "'logit_bias' has too many entries (at most " + std::to_string(limits.max_logit_bias) + ")",
        "logit_bias"));
  }
  for (const auto& [key, bias] : v.items()) {
    int64_t id = -1;
    bool digits = !key.empty() && key.size() <= 9;
    for (char c : key) digits = digits && c >= '0' && c <= '9';
    if (digits) id = std::stoll(key);
    if (id < 0) {
      return f.fail(invalid_request(
          "Invalid key in 'logit_bias': " + key + " is not a token id (a non-negative integer)",
          "logit_bias"));
    }
    float b = 0;
    if (!f.read_number("logit_bias", bias, -100, 100, b)) return;
    out.emplace_back(static_cast<int32_t>(id), b);
  }
}

void read_response_format(Fields& f, const json& v, GenerationRequest& out) {
  if (!v.is_object()) return f.fail(wrong_type("response_format", v, "an object"));
  const auto type = v.find("type");
  if (type == v.end() || !type->is_string()) {
    return f.fail(invalid_request("'response_format.type' must be a string", "response_format"));
  }
  const std::string t = type->get<std::string>();
  for (const auto& [key, value] : v.items()) {
    if (key != "type" && !(t == "json_schema" && key == "json_schema")) {
      return f.fail(unknown_field("response_format." + key));
    }
  }
  if (t == "text") {
    out.response_format = ResponseFormat::kText;
  } else if (t == "json_object") {
    out.response_format = ResponseFormat::kJsonObject;
  } else if (t == "json_schema") {
    const auto spec = v.find("json_schema");
    if (spec == v.end() || !spec->is_object()) {
      return f.fail(invalid_request("'response_format.json_schema' must be an object",
                                    "response_format.json_schema"));
    }
    for (const auto& [key, value] : spec->items()) {
      if (key != "name" && key != "schema" && key != "strict" && key != "description") {
        return f.fail(unknown_field("response_format.json_schema." + key));
      }
    }
    const auto name = spec->find("name");
    if (name == spec->end() || !name->is_string() || name->get<std::string>().empty()) {
      return f.fail(invalid_request("'response_format.json_schema.name' must be a non-empty string",
                                    "response_format.json_schema.name"));
    }
    const auto schema = spec->find("schema");
    if (schema == spec->end()) {
      out.json_schema = "{}";
    } else if (!schema->is_object()) {
      return f.fail(invalid_request("'response_format.json_schema.schema' must be an object",
                                    "response_format.json_schema.schema"));
    } else {
      out.json_schema = schema->dump();
    }
    out.response_format = ResponseFormat::kJsonSchema;
  } else {
    f.fail(invalid_request("Invalid value for 'response_format.type': '" + t +
                               "'; supported: 'text', 'json_object', 'json_schema'",
                           "response_format.type", "invalid_value"));
  }
}

// OpenAI's sampling defaults: plain temperature sampling over the whole vocabulary.
runtime::SamplerParams openai_sampling_defaults() {
  runtime::SamplerParams p;
  p.temperature = 1.0f;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  p.typical_p = 1.0f;
  p.repeat_penalty = 1.0f;
  p.repeat_last_n = 64;
  p.seed = 0;
  return p;
}

// One field shared by chat and completions. Returns false when `key` is not one of them.
bool read_generation_field(Fields& f, const std::string& key, const json& v,
                           const RequestLimits& limits, bool chat, GenerationRequest& out) {
  int64_t i = 0;
  if (key == "model") {
    f.read_string(key, v, out.model);
  } else if (key == "stream") {
    f.read_bool(key, v, out.stream);
  } else if (key == "stream_options") {
    if (!v.is_object()) return f.fail(wrong_type(key, v, "an object")), true;
    for (const auto& [k, value] : v.items()) {
      if (k != "include_usage") return f.fail(unknown_field("stream_options." + k)), true;
      f.read_bool("stream_options.include_usage", value, out.include_usage);
    }
  } else if (key == "max_tokens" || key == "max_completion_tokens") {
    if (f.read_int(key, v, 1, limits.max_tokens, i)) out.max_tokens = static_cast<int32_t>(i);
  } else if (key == "temperature") {
    f.read_number(key, v, 0, 2, out.sampling.temperature);
  } else if (key == "top_p") {
    f.read_number(key, v, 0, 1, out.sampling.top_p);
  } else if (key == "top_k") {  // extension (llama.cpp)
    if (f.read_int(key, v, 0, std::numeric_limits<int32_t>::max(), i)) {
      out.sampling.top_k = static_cast<int>(i);
    }
  } else if (key == "min_p") {  // extension (llama.cpp)
    f.read_number(key, v, 0, 1, out.sampling.min_p);
  } else if (key == "presence_penalty") {
    f.read_number(key, v, -2, 2, out.sampling.presence_penalty);
  } else if (key == "frequency_penalty") {
    f.read_number(key, v, -2, 2, out.sampling.frequency_penalty);
  } else if (key == "seed") {
    if (f.read_int(key, v, std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max(),
                   i)) {
      out.sampling.seed = static_cast<uint64_t>(i);
    }
  } else if (key == "stop") {
    if (!v.is_null()) read_stop(f, v, limits, out.stop);
  } else if (key == "logit_bias") {
    if (!v.is_null()) read_logit_bias(f, v, limits, out.sampling.logit_bias);
  } else if (key == "n") {
    f.read_int(key, v, 1, 1, i);  // one choice per request
  } else if (key == "user") {
    f.read_string(key, v, out.user);
  } else if (key == "response_format") {
    read_response_format(f, v, out);
  } else if (chat && key == "logprobs") {
    f.read_bool(key, v, out.logprobs);
  } else if (chat && key == "top_logprobs") {
    if (f.read_int(key, v, 0, limits.max_top_logprobs, i)) out.top_logprobs = static_cast<int>(i);
  } else if (!chat && key == "logprobs") {  // completions: the number of alternatives, 0..5
    if (!v.is_null() && f.read_int(key, v, 0, 5, i)) {
      out.logprobs = true;
      out.top_logprobs = static_cast<int>(i);
    }
  } else {
    return false;
  }
  return true;
}

void finish_generation(Fields& f, const json& body, bool chat, GenerationRequest& out) {
  if (!f.ok()) return;
  if (chat && body.contains("top_logprobs") && !out.logprobs) {
    return f.fail(invalid_request("'top_logprobs' requires 'logprobs' to be true", "top_logprobs"));
  }
  // top_p 0 keeps only the most likely token: greedy.
  if (out.sampling.top_p <= 0.0f) {
    out.sampling.top_p = 1.0f;
    out.sampling.temperature = 0.0f;
  }
}

// Message content: a string, null (assistant turns with tool calls), or text parts.
void read_content(Fields& f, const json& v, size_t index, std::string& out) {
  const std::string param = "messages[" + std::to_string(index) + "].content";
  if (v.is_string()) {
    out = v.get<std::string>();
  } else if (v.is_null()) {
    out.clear();
  } else if (v.is_array()) {
    for (const json& part : v) {
      if (!part.is_object() || !part.contains("type") || !part["type"].is_string()) {
        return f.fail(
            invalid_request("each part of '" + param + "' must be an object with a type", param));
      }
      if (part["type"] != "text") {
        return f.fail(invalid_request("content parts of type '" + part["type"].get<std::string>() +
                                          "' are not supported by this model; only 'text'",
                                      param));
      }
      const auto text = part.find("text");
      if (text == part.end() || !text->is_string()) {
        return f.fail(
            invalid_request("a text part of '" + param + "' needs a string 'text'", param));
      }
      out += text->get<std::string>();
    }
  } else {
    f.fail(wrong_type(param, v, "a string or an array of content parts"));
  }
}

void read_messages(Fields& f, const json& v, const RequestLimits& limits, json& out) {
  if (!v.is_array()) return f.fail(wrong_type("messages", v, "an array"));
  if (v.empty()) {
    return f.fail(
        invalid_request("'messages' must contain at least one message", "messages", "empty_array"));
  }
  if (v.size() > limits.max_messages) {
    return f.fail(invalid_request(
        "'messages' has more than " + std::to_string(limits.max_messages) + " entries", "messages",
        "array_above_max_length"));
  }
  out = json::array();
  for (size_t i = 0; i < v.size(); ++i) {
    const json& m = v[i];
    const std::string at = "messages[" + std::to_string(i) + "]";
    if (!m.is_object()) return f.fail(wrong_type(at, m, "an object"));
    const auto role = m.find("role");
    if (role == m.end() || !role->is_string()) {
      return f.fail(invalid_request("Missing required parameter: '" + at + ".role'.", at + ".role",
                                    "missing_required_parameter"));
    }
    const std::string r = role->get<std::string>();
    if (r != "system" && r != "developer" && r != "user" && r != "assistant" && r != "tool") {
      return f.fail(invalid_request("Invalid value: '" + r +
                                        "'. Supported values are: 'system', "
                                        "'developer', 'user', 'assistant' and 'tool'.",
                                    at + ".role", "invalid_value"));
    }
    const auto content = m.find("content");
    if (content == m.end() && r != "assistant") {
      return f.fail(invalid_request("Missing required parameter: '" + at + ".content'.",
                                    at + ".content", "missing_required_parameter"));
    }
    for (const auto& [key, value] : m.items()) {
      if (key != "role" && key != "content" && key != "name" && key != "tool_call_id") {
        return f.fail(unknown_field(at + "." + key));
      }
      if ((key == "name" || key == "tool_call_id") && !value.is_string()) {
        return f.fail(wrong_type(at + "." + key, value, "a string"));
      }
    }
    std::string text;
    if (content != m.end()) read_content(f, *content, i, text);
    if (!f.ok()) return;
    // The developer role is the newer name of system; templates know system.
    out.push_back({{"role", r == "developer" ? "system" : r}, {"content", std::move(text)}});
  }
}

// A prompt: a string or an array of token ids (or an array holding exactly one of those).
std::optional<Prompt> read_prompt(Fields& f, const std::string& param, const json& v,
                                  bool allow_nesting) {
  if (v.is_string()) return Prompt(v.get<std::string>());
  if (v.is_array()) {
    if (v.empty()) {
      f.fail(invalid_request("'" + param + "' must not be empty", param));
      return std::nullopt;
    }
    if (allow_nesting && (v[0].is_string() || v[0].is_array())) {
      if (v.size() != 1) {
        f.fail(invalid_request("'" + param + "' with several prompts is not supported; send one",
                               param));
        return std::nullopt;
      }
      return read_prompt(f, param, v[0], false);
    }
    std::vector<int32_t> ids;
    ids.reserve(v.size());
    for (const json& t : v) {
      int64_t id = 0;
      if (!f.read_int(param, t, 0, std::numeric_limits<int32_t>::max(), id)) return std::nullopt;
      ids.push_back(static_cast<int32_t>(id));
    }
    return Prompt(std::move(ids));
  }
  f.fail(wrong_type(param, v, "a string, an array of token ids, or an array of those"));
  return std::nullopt;
}

}  // namespace

nlohmann::json error_body(const ApiError& e) {
  json err = {{"message", e.message}, {"type", e.type}, {"param", nullptr}, {"code", nullptr}};
  if (!e.param.empty()) err["param"] = e.param;
  if (!e.code.empty()) err["code"] = e.code;
  return {{"error", std::move(err)}};
}

ApiError invalid_request(std::string message, std::string param, std::string code) {
  ApiError e;
  e.status = 400;
  e.message = std::move(message);
  e.param = std::move(param);
  e.code = std::move(code);
  return e;
}

namespace {

// The scaffolding every endpoint shares: parse the body, hand each member to
// read_field(f, key, value, out) (false: not a field of this endpoint), require `required`, then
// `model`, then finish(f, body, out) for checks across fields.
template <class Request, class ReadField, class Finish>
std::variant<Request, ApiError> parse_request(std::string_view text, const RequestLimits& limits,
                                              Request out, const std::string& required,
                                              const ReadField& read_field, const Finish& finish) {
  auto parsed = parse_body(text, limits);
  if (auto* e = std::get_if<ApiError>(&parsed)) return std::move(*e);
  const json& body = std::get<json>(parsed);
  std::optional<ApiError> error;
  Fields f(error);
  for (const auto& [key, v] : body.items()) {
    if (!f.ok()) break;
    if (!read_field(f, key, v, out)) f.fail(unknown_field(key));
  }
  if (f.ok() && !body.contains(required)) {
    f.fail(invalid_request("Missing required parameter: '" + required + "'.", required,
                           "missing_required_parameter"));
  }
  if (f.ok() && !body.contains("model")) {
    f.fail(invalid_request("you must provide a model parameter", "model"));
  }
  if (f.ok()) finish(f, body, out);
  if (error) return std::move(*error);
  return out;
}

// Chat and completion requests: OpenAI's sampling defaults, the shared generation fields after
// the endpoint's own (read_own_field returns false for keys that are not its own), then the
// checks across generation fields.
template <class Request, class ReadOwnField>
std::variant<Request, ApiError> parse_generation_request(std::string_view text,
                                                         const RequestLimits& limits,
                                                         const std::string& required, bool chat,
                                                         const ReadOwnField& read_own_field) {
  Request initial;
  initial.sampling = openai_sampling_defaults();
  return parse_request(
      text, limits, std::move(initial), required,
      [&](Fields& f, const std::string& key, const json& v, Request& out) {
        return read_own_field(f, key, v, out) ||
               read_generation_field(f, key, v, limits, chat, out);
      },
      [chat](Fields& f, const json& body, Request& out) { finish_generation(f, body, chat, out); });
}

}  // namespace

std::variant<ChatRequest, ApiError> parse_chat_request(std::string_view text,
                                                       const RequestLimits& limits) {
  return parse_generation_request<ChatRequest>(
      text, limits, "messages", /*chat=*/true,
      [&](Fields& f, const std::string& key, const json& v, ChatRequest& out) {
        if (key != "messages") return false;
        read_messages(f, v, limits, out.messages);
        return true;
      });
}

std::variant<CompletionRequest, ApiError> parse_completion_request(std::string_view text,
                                                                   const RequestLimits& limits) {
  return parse_generation_request<CompletionRequest>(
      text, limits, "prompt", /*chat=*/false,
      [](Fields& f, const std::string& key, const json& v, CompletionRequest& out) {
        if (key == "prompt") {
          if (auto p = read_prompt(f, "prompt", v, true)) out.prompt = std::move(*p);
        } else if (key == "echo") {
          f.read_bool(key, v, out.echo);
        } else if (key == "suffix" || key == "best_of") {
          if (!v.is_null() && !(key == "best_of" && v == 1)) {
            f.fail(invalid_request("'" + key + "' is not supported", key, "unsupported_parameter"));
          }
        } else {
          return false;
        }
        return true;
      });
}

namespace {

// `input`: a string, token ids, or an array of strings / of token-id arrays.
void read_embedding_input(Fields& f, const json& v, const RequestLimits& limits,
                          std::vector<Prompt>& inputs) {
  if (!(v.is_array() && !v.empty() && (v[0].is_string() || v[0].is_array()))) {
    if (auto p = read_prompt(f, "input", v, false)) inputs.push_back(std::move(*p));
    return;
  }
  if (v.size() > limits.max_embedding_inputs) {
    f.fail(invalid_request(
        "'input' has more than " + std::to_string(limits.max_embedding_inputs) + " entries",
        "input", "array_above_max_length"));
    return;
  }
  for (const json& item : v) {
    if (!item.is_string() && !item.is_array()) {
      f.fail(wrong_type("input", item, "a string or an array of token ids"));
      return;
    }
    auto p = read_prompt(f, "input", item, false);
    if (!p) return;
    inputs.push_back(std::move(*p));
  }
}

}  // namespace

std::variant<EmbeddingRequest, ApiError> parse_embedding_request(std::string_view text,
                                                                 const RequestLimits& limits) {
  return parse_request(
      text, limits, EmbeddingRequest{}, "input",
      [&](Fields& f, const std::string& key, const json& v, EmbeddingRequest& out) {
        if (key == "model") {
          f.read_string(key, v, out.model);
        } else if (key == "input") {
          read_embedding_input(f, v, limits, out.inputs);
        } else if (key == "encoding_format") {
          std::string format;
          if (f.read_string(key, v, format)) {
            if (format == "base64") {
              out.base64 = true;
            } else if (format != "float") {
              f.fail(invalid_request("Invalid value for 'encoding_format': '" + format +
                                         "'; supported: 'float', 'base64'",
                                     key, "invalid_value"));
            }
          }
        } else if (key == "user") {
          std::string ignored;
          f.read_string(key, v, ignored);
        } else if (key == "dimensions") {
          f.fail(invalid_request("'dimensions' is not supported by this model", key,
                                 "unsupported_parameter"));
        } else {
          return false;
        }
        return true;
      },
      [](Fields& f, const json&, EmbeddingRequest& out) {
        for (const Prompt& p : out.inputs) {
          if (std::holds_alternative<std::string>(p) && std::get<std::string>(p).empty()) {
            f.fail(invalid_request("'input' cannot contain an empty string", "input"));
            return;
          }
        }
      });
}

}  // namespace edgelm::serve
