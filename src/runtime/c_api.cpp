// The C API is a thin shell over Engine and Session; no exception or Error crosses it.
#include "edgelm/edgelm.h"

#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include "edgelm/engine.h"
#include "edgelm/session.h"

struct edgelm_engine {
  std::unique_ptr<edgelm::runtime::Engine> engine;
};

struct edgelm_session {
  std::unique_ptr<edgelm::runtime::Session> session;
};

namespace {

char* copy_string(std::string_view s) {
  char* out = static_cast<char*>(std::malloc(s.size() + 1));
  if (out == nullptr) return nullptr;
  std::memcpy(out, s.data(), s.size());
  out[s.size()] = '\0';
  return out;
}

void set_error(char** error, const std::string& message) {
  if (error != nullptr) *error = copy_string(message);
}

void set_error(char** error, const edgelm::Error& e) { set_error(error, e.to_string()); }

}  // namespace

extern "C" {

edgelm_engine* edgelm_engine_load(const char* model_path, const char* config_json, char** error) {
  if (model_path == nullptr) {
    set_error(error, "edgelm_engine_load: model_path is NULL");
    return nullptr;
  }
  edgelm::Config config;
  if (config_json != nullptr) {
    auto parsed = edgelm::parse_config(config_json, "config_json");
    if (!parsed) {
      set_error(error, parsed.error());
      return nullptr;
    }
    config = *parsed;
  }
  auto engine = edgelm::runtime::Engine::load(model_path, config);
  if (!engine) {
    set_error(error, engine.error());
    return nullptr;
  }
  return new edgelm_engine{std::move(*engine)};
}

void edgelm_engine_free(edgelm_engine* engine) { delete engine; }

int32_t edgelm_tokenize(const edgelm_engine* engine, const char* text, int32_t* tokens, int32_t capacity,
                        char** error) {
  if (engine == nullptr || text == nullptr || (tokens == nullptr && capacity > 0) || capacity < 0) {
    set_error(error, "edgelm_tokenize: NULL engine/text/tokens or negative capacity");
    return -1;
  }
  auto ids = engine->engine->tokenize(text);
  if (!ids) {
    set_error(error, ids.error());
    return -1;
  }
  const size_t n = std::min<size_t>(ids->size(), static_cast<size_t>(capacity));
  std::copy_n(ids->begin(), n, tokens);
  return static_cast<int32_t>(ids->size());
}

edgelm_session* edgelm_session_new(const edgelm_engine* engine, char** error) {
  if (engine == nullptr) {
    set_error(error, "edgelm_session_new: engine is NULL");
    return nullptr;
  }
  auto session = edgelm::runtime::Session::create(*engine->engine);
  if (!session) {
    set_error(error, session.error());
    return nullptr;
  }
  return new edgelm_session{std::move(*session)};
}

void edgelm_session_free(edgelm_session* session) { delete session; }

edgelm_generate_params edgelm_generate_params_default(void) {
  const edgelm::runtime::SamplerParams d;
  return edgelm_generate_params{128, d.temperature, d.top_k, d.top_p, d.min_p, d.repeat_penalty, d.seed};
}

char* edgelm_generate(edgelm_session* session, const char* prompt, const edgelm_generate_params* params,
                      edgelm_text_callback on_text, void* user_data, char** error) {
  if (session == nullptr || prompt == nullptr) {
    set_error(error, "edgelm_generate: session or prompt is NULL");
    return nullptr;
  }
  const edgelm_generate_params p = params != nullptr ? *params : edgelm_generate_params_default();
  edgelm::runtime::GenerateOptions options;
  options.max_tokens = p.max_tokens;
  options.sampling.temperature = p.temperature;
  options.sampling.top_k = p.top_k;
  options.sampling.top_p = p.top_p;
  options.sampling.min_p = p.min_p;
  options.sampling.repeat_penalty = p.repeat_penalty;
  options.sampling.seed = p.seed;

  auto& s = *session->session;
  auto tokens = s.engine().tokenize(prompt);
  if (!tokens) {
    set_error(error, tokens.error());
    return nullptr;
  }
  edgelm::runtime::TextCallback callback;
  if (on_text != nullptr) {
    callback = [&](std::string_view text) { return on_text(text.data(), text.size(), user_data) != 0; };
  }
  auto result = s.generate(*tokens, options, callback);
  if (!result) {
    set_error(error, result.error());
    return nullptr;
  }
  return copy_string(result->text);
}

void edgelm_string_free(char* s) { std::free(s); }

}  // extern "C"
