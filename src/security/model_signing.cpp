#include "edgelm/security/model_signing.h"

#include <nlohmann/json.hpp>

#include "security/internal.h"

namespace edgelm::security {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr uint64_t kMaxManifestBytes = 16u << 20;
constexpr std::string_view kManifestType = "edgelm/model-manifest/v1";

// Paths in a manifest are relative, inside the model's folder: an attacker-written manifest must
// not make the verifier read (or vouch for) files elsewhere.
bool is_safe_relative(const std::string& path) {
  if (path.empty()) return false;
  const fs::path p(path);
  if (p.is_absolute()) return false;
  for (const auto& part : p) {
    if (part == ".." || part == ".") return false;
  }
  return true;
}

Error refused(const fs::path& model, std::string_view check, const std::string& detail) {
  return detail::security_error("model '" + model.string() + "' refused: " + std::string(check) +
                                " check failed: " + detail);
}

Status check_digest(const fs::path& model, const ManifestFile& entry, const FileDigest& actual) {
  if (actual.size != entry.size) {
    return refused(model, "size",
                   "file '" + entry.path + "' has " + std::to_string(actual.size) +
                       " bytes but the signed manifest says " + std::to_string(entry.size) +
                       (actual.size < entry.size ? " (truncated)" : " (extended)"));
  }
  if (actual.sha256 != entry.sha256) {
    return refused(model, "sha256",
                   "file '" + entry.path + "' has sha256 " + to_hex(actual.sha256) +
                       " but the signed manifest says " + to_hex(entry.sha256) + " (modified)");
  }
  return {};
}

}  // namespace

fs::path manifest_path_for(const fs::path& model) {
  return fs::path(model.string() + ".sig.json");
}

Result<ModelManifest> build_manifest(const fs::path& model,
                                     const std::vector<fs::path>& extra_files, std::string name,
                                     std::string version) {
  ModelManifest manifest{std::move(name), std::move(version), {}};
  std::error_code ec;
  const fs::path dir = fs::weakly_canonical(fs::absolute(model).parent_path(), ec);
  if (ec) return make_error(ErrorCode::kIo, detail::quoted(model) + ": cannot resolve its folder");
  std::vector<fs::path> files{model};
  files.insert(files.end(), extra_files.begin(), extra_files.end());
  for (const auto& file : files) {
    const fs::path rel = fs::weakly_canonical(fs::absolute(file), ec).lexically_relative(dir);
    if (ec || !is_safe_relative(rel.string())) {
      return make_error(
          ErrorCode::kInvalidArgument,
          detail::quoted(file) + " is not inside the model's folder '" + dir.string() + "'");
    }
    EDGELM_TRY(FileDigest digest, sha256_file(file));
    manifest.files.push_back({rel.generic_string(), digest.size, digest.sha256});
  }
  return manifest;
}

std::string manifest_to_json(const ModelManifest& manifest) {
  json files = json::array();
  for (const auto& f : manifest.files) {
    files.push_back({{"path", f.path}, {"size", f.size}, {"sha256", to_hex(f.sha256)}});
  }
  const json doc = {{"_type", kManifestType},
                    {"name", manifest.name},
                    {"version", manifest.version},
                    {"files", std::move(files)}};
  return doc.dump(2);
}

Result<ModelManifest> parse_manifest(std::string_view json_text, std::string_view source) {
  const std::string where(source);
  const json doc = json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  auto bad = [&](const std::string& what) {
    return make_error(ErrorCode::kInvalidFormat, where + ": " + what);
  };
  if (!doc.is_object() || doc.value("_type", "") != kManifestType) {
    return bad("not an edgelm model manifest (_type must be '" + std::string(kManifestType) + "')");
  }
  if (!doc.contains("name") || !doc["name"].is_string() || !doc.contains("version") ||
      !doc["version"].is_string()) {
    return bad("'name' and 'version' must be strings");
  }
  if (!doc.contains("files") || !doc["files"].is_array()) return bad("'files' must be an array");
  ModelManifest manifest{doc["name"].get<std::string>(), doc["version"].get<std::string>(), {}};
  for (const json& f : doc["files"]) {
    if (!f.is_object() || !f.contains("path") || !f["path"].is_string() || !f.contains("size") ||
        !f["size"].is_number_unsigned() || !f.contains("sha256") || !f["sha256"].is_string()) {
      return bad("each file needs 'path' (string), 'size' (unsigned) and 'sha256' (hex)");
    }
    ManifestFile entry;
    entry.path = f["path"].get<std::string>();
    if (!is_safe_relative(entry.path))
      return bad("file path '" + entry.path + "' is not a relative path inside the model's folder");
    entry.size = f["size"].get<uint64_t>();
    EDGELM_TRY(entry.sha256, sha256_from_hex(f["sha256"].get<std::string>(),
                                             where + ": file '" + entry.path + "' sha256"));
    manifest.files.push_back(std::move(entry));
  }
  return manifest;
}

Result<ModelManifest> sign_model(const fs::path& model, const std::vector<fs::path>& extra_files,
                                 std::span<const SigningKey* const> keys, std::string name,
                                 std::string version) {
  if (keys.empty())
    return make_error(ErrorCode::kInvalidArgument, "sign_model: no signing key given");
  EDGELM_TRY(ModelManifest manifest,
             build_manifest(model, extra_files, std::move(name), std::move(version)));
  const Envelope envelope =
      sign_envelope(std::string(kManifestPayloadType), manifest_to_json(manifest), keys);
  const std::string text = envelope_to_json(envelope);
  EDGELM_CHECK(detail::write_file_atomic(manifest_path_for(model), detail::as_bytes(text), 0644));
  return manifest;
}

Result<TrustPolicy> TrustPolicy::from_key_files(const std::vector<fs::path>& key_files,
                                                bool require_signature) {
  TrustPolicy policy;
  policy.require_signature = require_signature;
  for (const auto& file : key_files) {
    EDGELM_TRY(PublicKey key, load_public_key(file));
    policy.trusted_keys[key.key_id()] = key;
  }
  if (require_signature && policy.trusted_keys.empty()) {
    return make_error(ErrorCode::kInvalidArgument,
                      "require_signature is set but trusted_keys names no key");
  }
  return policy;
}

namespace {

Result<ModelManifest> verify_impl(const fs::path& model,
                                  const std::span<const uint8_t>* model_bytes,
                                  const TrustPolicy& policy) {
  const fs::path manifest_path = manifest_path_for(model);
  auto text = detail::read_file(manifest_path, kMaxManifestBytes);
  if (!text && text.error().code == ErrorCode::kNotFound) {
    if (!policy.require_signature) return ModelManifest{};
    return refused(model, "unsigned",
                   "no signed manifest '" + manifest_path.filename().string() +
                       "' beside it (sign it with: edgelm sign MODEL --key KEY)");
  }
  if (!text) return refused(model, "manifest", text.error().message);
  if (policy.trusted_keys.empty()) {
    if (!policy.require_signature) return ModelManifest{};
    return make_error(ErrorCode::kInvalidArgument,
                      "require_signature is set but no trusted key is configured");
  }
  const std::string source = manifest_path.filename().string();
  auto envelope = parse_envelope(*text, source);
  if (!envelope) return refused(model, "manifest", envelope.error().message);
  Status signed_ok = verify_envelope(*envelope, kManifestPayloadType, policy.trusted_keys,
                                     policy.threshold, source);
  if (!signed_ok) return refused(model, "signature", signed_ok.error().message);
  auto manifest = parse_manifest(envelope->payload, source);
  if (!manifest) return refused(model, "manifest", manifest.error().message);

  const std::string model_name = model.filename().string();
  bool covered = false;
  for (const auto& entry : manifest->files) {
    if (entry.path == model_name && model_bytes != nullptr) {
      covered = true;
      EDGELM_CHECK(
          check_digest(model, entry, FileDigest{model_bytes->size(), sha256(*model_bytes)}));
      continue;
    }
    covered = covered || entry.path == model_name;
    auto digest = sha256_file(model.parent_path() / entry.path);
    if (!digest) {
      if (digest.error().code == ErrorCode::kNotFound) {
        return refused(model, "missing file",
                       "file '" + entry.path + "' listed in the manifest does not exist");
      }
      return digest.error();
    }
    EDGELM_CHECK(check_digest(model, entry, *digest));
  }
  if (!covered) {
    return refused(model, "coverage", "the signed manifest does not list '" + model_name + "'");
  }
  return manifest;
}

}  // namespace

Result<ModelManifest> verify_model_manifest(const fs::path& model, const TrustPolicy& policy) {
  return verify_impl(model, nullptr, policy);
}

Status verify_model(const fs::path& model, const TrustPolicy& policy) {
  auto manifest = verify_impl(model, nullptr, policy);
  if (!manifest) return std::move(manifest).error();
  return {};
}

Status verify_model_bytes(const fs::path& model, std::span<const uint8_t> model_bytes,
                          const TrustPolicy& policy) {
  auto manifest = verify_impl(model, &model_bytes, policy);
  if (!manifest) return std::move(manifest).error();
  return {};
}

}  // namespace edgelm::security
