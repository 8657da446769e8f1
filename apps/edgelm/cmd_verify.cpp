// edgelm verify: check a model's signed manifest against trusted public keys.
#include <cstdio>

#include "cli.h"
#include "edgelm/security/model_signing.h"

namespace edgelm::cli {
namespace {

struct VerifyOptions {
  std::string model;
  std::vector<std::string> trusted;
  size_t threshold = 1;
};

int verify(const VerifyOptions& o) {
  const std::vector<std::filesystem::path> keys(o.trusted.begin(), o.trusted.end());
  auto policy = security::TrustPolicy::from_key_files(keys, /*require_signature=*/true);
  if (!policy) return report(policy.error());
  policy->threshold = o.threshold;
  auto manifest = security::verify_model_manifest(o.model, *policy);
  if (!manifest) return report(manifest.error());
  std::printf("verified %s: %s %s, %zu file(s), signed by %zu+ trusted key(s)\n", o.model.c_str(),
              manifest->name.c_str(), manifest->version.c_str(), manifest->files.size(), o.threshold);
  return 0;
}

}  // namespace

void register_verify(CLI::App& app, int& exit_code) {
  auto options = std::make_shared<VerifyOptions>();
  CLI::App* cmd = app.add_subcommand("verify", "verify a signed model against trusted public keys");
  cmd->add_option("model", options->model, "model file (its manifest is MODEL.sig.json)")->required();
  cmd->add_option("--trusted", options->trusted, "trusted public key file (repeatable)")->required();
  cmd->add_option("--threshold", options->threshold, "distinct trusted keys that must have signed")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  cmd->callback([options, &exit_code] { exit_code = verify(*options); });
}

}  // namespace edgelm::cli
