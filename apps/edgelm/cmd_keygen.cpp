// edgelm keygen: create an Ed25519 signing key pair, or a symmetric key for encryption at rest.
#include <cstdio>

#include "cli.h"
#include "edgelm/security/keys.h"

namespace edgelm::cli {
namespace {

struct KeygenOptions {
  std::string out;
  bool secret = false;
};

int keygen(const KeygenOptions& o) {
  if (o.secret) {
    auto key = security::SecretKey::generate();
    if (!key) return report(key.error());
    if (Status s = key->save(o.out); !s) return report(s.error());
    std::printf("wrote encryption key %s (mode 0600)\n", o.out.c_str());
    return 0;
  }
  auto key = security::SigningKey::generate();
  if (!key) return report(key.error());
  const std::string pub = o.out + ".pub";
  if (Status s = key->save(o.out); !s) return report(s.error());
  if (Status s = security::save_public_key(key->public_key(), pub); !s) return report(s.error());
  std::printf("wrote private key %s (mode 0600) and public key %s\nkey id %s\n", o.out.c_str(), pub.c_str(),
              key->public_key().key_id().c_str());
  return 0;
}

}  // namespace

void register_keygen(CLI::App& app, int& exit_code) {
  auto options = std::make_shared<KeygenOptions>();
  CLI::App* cmd = app.add_subcommand("keygen", "create an Ed25519 signing key pair (KEY, KEY.pub) or an encryption key");
  cmd->add_option("-o,--out", options->out, "private key file to create (never overwritten)")->required();
  cmd->add_flag("--secret", options->secret, "create a 32-byte encryption key for encrypt/decrypt instead");
  cmd->callback([options, &exit_code] { exit_code = keygen(*options); });
}

}  // namespace edgelm::cli
