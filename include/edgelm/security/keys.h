// Key material: Ed25519 signing keys (model manifests, update metadata) and 32-byte symmetric keys
// (encryption at rest). Private key files are created 0600 and never overwritten; loading one that
// the group or others can access is refused.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>

#include "edgelm/error.h"
#include "edgelm/security/secure_buffer.h"

namespace edgelm::security {

// Environment variable naming the symmetric key file when no key file is given explicitly.
inline constexpr const char* kKeyFileEnv = "EDGELM_KEY_FILE";

struct PublicKey {
  std::array<uint8_t, 32> bytes{};
  // Lower-case hex SHA-256 of the raw key: how manifests and metadata name their signers.
  std::string key_id() const;
  bool operator==(const PublicKey&) const = default;
};

using Signature = std::array<uint8_t, 64>;

class SigningKey {
 public:
  static Result<SigningKey> generate();
  // Checks the file's permissions (owner only) before reading it.
  static Result<SigningKey> load(const std::filesystem::path& path);
  // Writes the private key (mode 0600); refuses to replace an existing file.
  Status save(const std::filesystem::path& path) const;

  const PublicKey& public_key() const { return public_key_; }
  Signature sign(std::span<const uint8_t> message) const;

 private:
  SigningKey() = default;
  SecureBuffer secret_;  // libsodium's 64-byte Ed25519 secret key (seed + public key)
  PublicKey public_key_;
};

bool verify_signature(const PublicKey& key, std::span<const uint8_t> message, const Signature& signature);

Result<PublicKey> load_public_key(const std::filesystem::path& path);
// Refuses to replace an existing file.
Status save_public_key(const PublicKey& key, const std::filesystem::path& path);
// Public key fields as stored in key files and update metadata: {"keytype":"ed25519","public":HEX}.
Result<PublicKey> public_key_from_hex(std::string_view hex, std::string_view what);

// A 32-byte key for XChaCha20-Poly1305 secretstream.
class SecretKey {
 public:
  static constexpr size_t kSize = 32;
  static Result<SecretKey> generate();
  // Checks the file's permissions (owner only, owned by this user) before reading it.
  static Result<SecretKey> load(const std::filesystem::path& path);
  // Writes the key (mode 0600); refuses to replace an existing file.
  Status save(const std::filesystem::path& path) const;

  std::span<const uint8_t> bytes() const { return secret_.bytes(); }
  // 16 bytes derived from the key (BLAKE2b, keyed by a fixed context), stored in encrypted file
  // headers so a wrong key is reported as such rather than as corruption.
  std::array<uint8_t, 16> key_id() const;

 private:
  SecretKey() = default;
  SecureBuffer secret_;
};

// The key file named by `key_file`, else by $EDGELM_KEY_FILE; kNotFound when neither is set.
Result<SecretKey> resolve_secret_key(const std::filesystem::path& key_file);

// kSecurity when `path` is accessible by group or others or owned by another user.
Status check_private_file(const std::filesystem::path& path);

}  // namespace edgelm::security
