// Signed model manifests, in the spirit of OpenSSF model-signing: the manifest lists every file of
// a model with its size and SHA-256, plus the model's name and version, and is signed in a DSSE
// envelope stored beside the model as "<model>.sig.json".
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "edgelm/error.h"
#include "edgelm/security/envelope.h"
#include "edgelm/security/hash.h"
#include "edgelm/security/keys.h"

namespace edgelm::security {

inline constexpr std::string_view kManifestPayloadType = "application/vnd.edgelm.model-manifest.v1+json";

struct ManifestFile {
  std::string path;  // relative to the model's folder; no "..", not absolute
  uint64_t size = 0;
  Sha256 sha256{};
};

struct ModelManifest {
  std::string name;
  std::string version;
  std::vector<ManifestFile> files;  // the model file first
};

std::filesystem::path manifest_path_for(const std::filesystem::path& model);

// Hashes `model` and `extra_files` (which must lie in the model's folder or below it).
Result<ModelManifest> build_manifest(const std::filesystem::path& model,
                                     const std::vector<std::filesystem::path>& extra_files,
                                     std::string name, std::string version);
std::string manifest_to_json(const ModelManifest& manifest);
Result<ModelManifest> parse_manifest(std::string_view json_text, std::string_view source);

// Builds the manifest, signs it with `keys` and writes manifest_path_for(model) (replacing it).
Result<ModelManifest> sign_model(const std::filesystem::path& model,
                                 const std::vector<std::filesystem::path>& extra_files,
                                 std::span<const SigningKey* const> keys, std::string name,
                                 std::string version);

// Which signatures a loader accepts.
struct TrustPolicy {
  bool require_signature = false;
  KeyRing trusted_keys;
  size_t threshold = 1;  // distinct trusted keys that must have signed

  // From config values: "require_signature" and "trusted_keys" (public key files).
  static Result<TrustPolicy> from_key_files(const std::vector<std::filesystem::path>& key_files,
                                            bool require_signature);
};

// Checks the manifest beside `model` against `policy`, then every listed file's size and hash.
// Errors (kSecurity) name the check that failed: "unsigned" (no manifest), "signature" (no
// trusted or valid signature), "coverage" (model not listed), "size" (truncated or extended),
// "sha256" (tampered), "missing file". With require_signature off and no manifest, succeeds.
Result<ModelManifest> verify_model_manifest(const std::filesystem::path& model, const TrustPolicy& policy);
Status verify_model(const std::filesystem::path& model, const TrustPolicy& policy);
// For loaders: `model_bytes` are the bytes that will be used (e.g. the mapping), so the bytes
// checked are the bytes that run even if the file changes on disk afterwards.
Status verify_model_bytes(const std::filesystem::path& model, std::span<const uint8_t> model_bytes,
                          const TrustPolicy& policy);

}  // namespace edgelm::security
