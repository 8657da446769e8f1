// edgelm encrypt / decrypt: the chunked, authenticated at-rest format (XChaCha20-Poly1305).
#include <cstdio>

#include "cli.h"
#include "edgelm/security/encryption.h"

namespace edgelm::cli {
namespace {

struct CryptOptions {
  std::string in;
  std::string out;
  std::string key_file;  // empty: $EDGELM_KEY_FILE
  uint32_t chunk_size = security::kDefaultChunkSize;
};

void add_common(CLI::App& cmd, CryptOptions& o) {
  cmd.add_option("input", o.in, "file to read")->required();
  cmd.add_option("output", o.out, "file to write (mode 0600)")->required();
  cmd.add_option("--key-file", o.key_file,
                 std::string("key file from 'edgelm keygen --secret' (default: $") + security::kKeyFileEnv + ")");
}

int encrypt(const CryptOptions& o) {
  auto key = security::resolve_secret_key(o.key_file);
  if (!key) return report(key.error());
  if (Status s = security::encrypt_file(o.in, o.out, *key, o.chunk_size); !s) return report(s.error());
  std::printf("encrypted %s -> %s\n", o.in.c_str(), o.out.c_str());
  return 0;
}

int decrypt(const CryptOptions& o) {
  auto key = security::resolve_secret_key(o.key_file);
  if (!key) return report(key.error());
  if (Status s = security::decrypt_file(o.in, o.out, *key); !s) return report(s.error());
  std::printf("decrypted %s -> %s\n", o.in.c_str(), o.out.c_str());
  return 0;
}

}  // namespace

void register_encrypt(CLI::App& app, int& exit_code) {
  auto enc = std::make_shared<CryptOptions>();
  CLI::App* cmd = app.add_subcommand("encrypt", "encrypt a file (e.g. a model) for storage at rest");
  add_common(*cmd, *enc);
  cmd->add_option("--chunk-size", enc->chunk_size, "plaintext bytes per authenticated chunk")
      ->check(CLI::Range(uint32_t{1}, security::kMaxChunkSize))
      ->capture_default_str();
  cmd->callback([enc, &exit_code] { exit_code = encrypt(*enc); });

  auto dec = std::make_shared<CryptOptions>();
  CLI::App* dcmd = app.add_subcommand(
      "decrypt", "decrypt a file to disk (run/serve load encrypted models without this, in memory only)");
  add_common(*dcmd, *dec);
  dcmd->callback([dec, &exit_code] { exit_code = decrypt(*dec); });
}

}  // namespace edgelm::cli
