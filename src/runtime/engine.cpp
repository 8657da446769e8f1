#include "edgelm/engine.h"

#include <algorithm>
#include <cstdlib>

#include "edgelm/gguf.h"
#include "edgelm/quantize.h"
#include "edgelm/security/encryption.h"
#include "edgelm/security/keys.h"
#include "edgelm/security/model_signing.h"

namespace edgelm::runtime {
namespace fs = std::filesystem;
namespace {

// A GGUF that holds tensors and opens cleanly (vocab-only and unsupported files are skipped).
bool is_runnable_model(const fs::path& path) {
  auto file = format::GgufFile::open(path);
  return file && !file->tensors().empty();
}

Result<fs::path> model_in_directory(const fs::path& dir) {
  std::vector<fs::path> files;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, fs::directory_options::skip_permission_denied, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_regular_file(ec) && it->path().extension() == ".gguf") files.push_back(it->path());
  }
  std::sort(files.begin(), files.end());
  for (const auto& f : files) {
    if (is_runnable_model(f)) return f;
  }
  return make_error(ErrorCode::kNotFound, "no loadable .gguf model with tensors in '" + dir.string() + "'");
}

// config.quant_bits: wider weights are quantized at load (see tools::recipe_for_quant_bits);
// narrower tensors keep their type.
Result<std::unique_ptr<model::Model>> quantize_at_load(const format::GgufFile& file, int quant_bits,
                                                       int n_threads) {
  tools::QuantizeOptions options;
  EDGELM_TRY(options.recipe, tools::recipe_for_quant_bits(quant_bits));
  options.n_threads = n_threads;
  EDGELM_TRY(auto bytes, tools::quantize_model_to_bytes(file, options));
  auto owner = std::make_shared<std::vector<uint8_t>>(std::move(bytes));
  return model::Model::from_memory(*owner, owner);
}

Result<std::unique_ptr<model::Model>> load_model(const fs::path& path, const Config& config) {
  const bool check_signature = config.require_signature || !config.trusted_keys.empty();
  security::TrustPolicy policy;
  if (check_signature) {
    std::vector<fs::path> keys(config.trusted_keys.begin(), config.trusted_keys.end());
    EDGELM_TRY(policy, security::TrustPolicy::from_key_files(keys, config.require_signature));
  }
  if (security::is_encrypted_file(path)) {
    // The signature covers the file as stored (encrypted); plaintext lives only in locked memory.
    if (check_signature) EDGELM_CHECK(security::verify_model(path, policy));
    EDGELM_TRY(auto key, security::resolve_secret_key(config.key_file));
    EDGELM_TRY(auto plain, security::decrypt_to_memory(path, key));
    auto owner = std::make_shared<security::SecureBuffer>(std::move(plain));
    if (config.quant_bits != 0) {
      EDGELM_TRY(auto file, format::GgufFile::parse(owner->bytes()));
      return quantize_at_load(file, config.quant_bits, config.resolved_threads());
    }
    return model::Model::from_memory(owner->bytes(), owner);
  }
  format::GgufOpenOptions open_options;
  open_options.use_mmap = config.use_mmap;
  EDGELM_TRY(auto file, format::GgufFile::open(path, open_options));
  // Check the bytes that will run, before any tensor is used.
  if (check_signature) EDGELM_CHECK(security::verify_model_bytes(path, file.bytes(), policy));
  if (config.quant_bits != 0) return quantize_at_load(file, config.quant_bits, config.resolved_threads());
  model::LoadOptions load_options;
  load_options.repack = config.repack;
  return model::Model::from_gguf(std::move(file), load_options);
}

}  // namespace

Result<fs::path> find_model_in(const std::vector<fs::path>& candidates) {
  std::string tried;
  for (const auto& c : candidates) {
    std::error_code ec;
    tried += "\n  " + c.string();
    if (fs::is_regular_file(c, ec)) return c;
    if (fs::is_directory(c, ec)) {
      auto found = model_in_directory(c);
      if (found) return found;
      tried += " (" + found.error().message + ")";
    } else {
      tried += " (does not exist)";
    }
  }
  return make_error(ErrorCode::kNotFound,
                    "no model found; tried:" + tried +
                        "\nname one with -m MODEL.gguf, or set EDGELM_MODEL to a .gguf file or a folder of them");
}

Result<fs::path> find_default_model() {
  std::vector<fs::path> candidates;
  if (const char* env = std::getenv("EDGELM_MODEL"); env != nullptr && *env != '\0') {
    candidates.emplace_back(env);
  }
  candidates.emplace_back("models");
  candidates.emplace_back(fs::path("..") / "shared" / "models");
  return find_model_in(candidates);
}

Result<std::unique_ptr<Engine>> Engine::load(const fs::path& path, const Config& config) {
  std::unique_ptr<Engine> engine(new Engine());
  engine->path_ = path;
  engine->config_ = config;
  EDGELM_TRY(engine->model_, load_model(path, config));
  EDGELM_TRY(engine->tokenizer_, tokenizer::Tokenizer::from_gguf(engine->model_->gguf()));
  EDGELM_TRY(std::string source, engine->model_->gguf().get_string_or("tokenizer.chat_template", ""));
  const auto& tok = *engine->tokenizer_;
  const bool has_chatml = tok.find_token("<|im_start|>") >= 0 && tok.find_token("<|im_end|>") >= 0;
  EDGELM_TRY(engine->chat_template_, chat::ChatTemplate::for_model(source, has_chatml));
  return engine;
}

Result<std::vector<int32_t>> Engine::tokenize(std::string_view text, bool add_special) const {
  return tokenizer_->encode(text, add_special, /*parse_special=*/true);
}

Result<std::string> Engine::render_chat(const nlohmann::ordered_json& messages, bool add_generation_prompt) const {
  const auto& tok = *tokenizer_;
  nlohmann::ordered_json extra = {
      {"bos_token", tok.bos() >= 0 ? tok.token_to_piece(tok.bos(), true) : ""},
      {"eos_token", tok.eos() >= 0 ? tok.token_to_piece(tok.eos(), true) : ""},
  };
  return chat_template_->apply(messages, add_generation_prompt, extra);
}

}  // namespace edgelm::runtime
