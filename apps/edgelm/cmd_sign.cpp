// edgelm sign: write a signed manifest (every file's SHA-256 and size) beside a model.
#include <cstdio>

#include "cli.h"
#include "edgelm/security/model_signing.h"

namespace edgelm::cli {
namespace {

struct SignOptions {
  std::vector<std::string> files;  // the model first, then files that belong with it
  std::vector<std::string> keys;
  std::string name;
  std::string version = "1";
};

int sign(const SignOptions& o) {
  std::vector<security::SigningKey> keys;
  for (const auto& path : o.keys) {
    auto key = security::SigningKey::load(path);
    if (!key) return report(key.error());
    keys.push_back(std::move(*key));
  }
  std::vector<const security::SigningKey*> signers;
  for (const auto& k : keys) signers.push_back(&k);
  const std::filesystem::path model = o.files.front();
  const std::vector<std::filesystem::path> extra(o.files.begin() + 1, o.files.end());
  const std::string name = o.name.empty() ? model.stem().string() : o.name;
  auto manifest = security::sign_model(model, extra, signers, name, o.version);
  if (!manifest) return report(manifest.error());
  std::printf("signed %s %s: %zu file(s), manifest %s\n", manifest->name.c_str(), manifest->version.c_str(),
              manifest->files.size(), security::manifest_path_for(model).c_str());
  return 0;
}

}  // namespace

void register_sign(CLI::App& app, int& exit_code) {
  auto options = std::make_shared<SignOptions>();
  CLI::App* cmd = app.add_subcommand("sign", "sign a model: writes MODEL.sig.json listing every file's SHA-256");
  cmd->add_option("model", options->files, "model file, then other files of the model")->required();
  cmd->add_option("-k,--key", options->keys, "private signing key (repeatable)")->required();
  cmd->add_option("--name", options->name, "model name (default: the file name)");
  cmd->add_option("--model-version", options->version, "model version")->capture_default_str();
  cmd->callback([options, &exit_code] { exit_code = sign(*options); });
}

}  // namespace edgelm::cli
