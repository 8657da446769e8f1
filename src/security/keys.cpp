#include "edgelm/security/keys.h"

#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "edgelm/security/hash.h"
#include "security/internal.h"

namespace edgelm::security {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr std::string_view kSigningKeyType = "ed25519";
constexpr std::string_view kSecretKeyType = "xchacha20poly1305-secretstream";
constexpr uint64_t kMaxKeyFileBytes = 4096;

// Wipes a string that held key material before it is freed.
struct WipeOnExit {
  std::string& text;
  ~WipeOnExit() { sodium_memzero(text.data(), text.size()); }
};

// Reads a private key file after the permission check and returns the hex of `field`, decoded
// into a SecureBuffer of exactly `size` bytes.
Result<SecureBuffer> read_private_hex(const fs::path& path, std::string_view keytype,
                                      std::string_view field, size_t size) {
  EDGELM_CHECK(check_private_file(path));
  EDGELM_TRY(std::string text, detail::read_file(path, kMaxKeyFileBytes));
  WipeOnExit wipe_text{text};
  const std::string where = "key file '" + path.string() + "'";
  json doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!doc.is_object() || !doc.contains("keytype") || !doc["keytype"].is_string() ||
      !doc.contains(field) || !doc[field].is_string()) {
    return make_error(ErrorCode::kInvalidFormat, where + ": expected {\"keytype\": \"" +
                                                     std::string(keytype) + "\", \"" +
                                                     std::string(field) + "\": HEX}");
  }
  if (doc["keytype"].get<std::string>() != keytype) {
    return make_error(ErrorCode::kInvalidFormat, where + ": keytype is '" +
                                                     doc["keytype"].get<std::string>() +
                                                     "', expected '" + std::string(keytype) + "'");
  }
  std::string& hex = doc[field].get_ref<std::string&>();
  WipeOnExit wipe_hex{hex};
  EDGELM_TRY(SecureBuffer secret, SecureBuffer::allocate(size));
  size_t n = 0;
  const char* end = nullptr;
  if (sodium_hex2bin(secret.data(), size, hex.data(), hex.size(), nullptr, &n, &end) != 0 ||
      n != size || end != hex.data() + hex.size()) {
    return make_error(ErrorCode::kInvalidFormat, where + ": '" + std::string(field) + "' must be " +
                                                     std::to_string(size * 2) + " hex digits");
  }
  return secret;
}

Status write_private_json(const fs::path& path, std::string_view keytype, std::string_view field,
                          std::span<const uint8_t> secret, const std::string& public_hex) {
  std::string hex(secret.size() * 2 + 1, '\0');
  WipeOnExit wipe_hex{hex};
  sodium_bin2hex(hex.data(), hex.size(), secret.data(), secret.size());
  hex.pop_back();
  std::string text = "{\"keytype\": \"" + std::string(keytype) + "\", \"" + std::string(field) +
                     "\": \"" + hex + "\"";
  WipeOnExit wipe_text{text};
  if (!public_hex.empty()) text += ", \"public\": \"" + public_hex + "\"";
  text += "}\n";
  return detail::write_new_file(path, detail::as_bytes(text), 0600);
}

}  // namespace

std::string PublicKey::key_id() const {
  return to_hex(sha256(std::span<const uint8_t>(bytes)));
}

Status check_private_file(const fs::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT)
      return make_error(ErrorCode::kNotFound, "key file '" + path.string() + "' does not exist");
    return detail::io_error(path, "cannot stat key file");
  }
  if (!S_ISREG(st.st_mode)) {
    return make_error(ErrorCode::kInvalidArgument,
                      "key file '" + path.string() + "' is not a regular file");
  }
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%03o", static_cast<unsigned>(st.st_mode & 0777));
    return detail::security_error("key file '" + path.string() + "' has mode " + mode +
                                  ": group or others can access it; run chmod 600 on it");
  }
  if (st.st_uid != ::geteuid()) {
    return detail::security_error("key file '" + path.string() +
                                  "' is owned by another user (uid " + std::to_string(st.st_uid) +
                                  ")");
  }
  return {};
}

Result<SigningKey> SigningKey::generate() {
  EDGELM_CHECK(detail::require_sodium());
  SigningKey key;
  EDGELM_TRY(key.secret_, SecureBuffer::allocate(crypto_sign_SECRETKEYBYTES));
  crypto_sign_keypair(key.public_key_.bytes.data(), key.secret_.data());
  return key;
}

Result<SigningKey> SigningKey::load(const fs::path& path) {
  EDGELM_CHECK(detail::require_sodium());
  EDGELM_TRY(SecureBuffer seed,
             read_private_hex(path, kSigningKeyType, "private", crypto_sign_SEEDBYTES));
  SigningKey key;
  EDGELM_TRY(key.secret_, SecureBuffer::allocate(crypto_sign_SECRETKEYBYTES));
  crypto_sign_seed_keypair(key.public_key_.bytes.data(), key.secret_.data(), seed.data());
  return key;
}

Status SigningKey::save(const fs::path& path) const {
  EDGELM_TRY(SecureBuffer seed, SecureBuffer::allocate(crypto_sign_SEEDBYTES));
  crypto_sign_ed25519_sk_to_seed(seed.data(), secret_.data());
  return write_private_json(path, kSigningKeyType, "private", seed.bytes(),
                            to_hex(std::span<const uint8_t>(public_key_.bytes)));
}

Signature SigningKey::sign(std::span<const uint8_t> message) const {
  Signature sig{};
  crypto_sign_detached(sig.data(), nullptr, message.data(), message.size(), secret_.data());
  return sig;
}

bool verify_signature(const PublicKey& key, std::span<const uint8_t> message,
                      const Signature& signature) {
  if (!detail::sodium_ready()) return false;
  return crypto_sign_verify_detached(signature.data(), message.data(), message.size(),
                                     key.bytes.data()) == 0;
}

Result<PublicKey> public_key_from_hex(std::string_view hex, std::string_view what) {
  EDGELM_TRY(auto bytes, from_hex(hex, what));
  if (bytes.size() != 32) {
    return make_error(ErrorCode::kInvalidFormat,
                      std::string(what) + ": an Ed25519 public key has 64 hex digits");
  }
  PublicKey key;
  std::copy(bytes.begin(), bytes.end(), key.bytes.begin());
  return key;
}

Result<PublicKey> load_public_key(const fs::path& path) {
  EDGELM_TRY(std::string text, detail::read_file(path, kMaxKeyFileBytes));
  const std::string where = "public key file '" + path.string() + "'";
  const json doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!doc.is_object() || doc.value("keytype", "") != kSigningKeyType || !doc.contains("public") ||
      !doc["public"].is_string()) {
    return make_error(ErrorCode::kInvalidFormat,
                      where + ": expected {\"keytype\": \"ed25519\", \"public\": HEX}");
  }
  return public_key_from_hex(doc["public"].get<std::string>(), where);
}

Status save_public_key(const PublicKey& key, const fs::path& path) {
  const std::string text = "{\"keytype\": \"ed25519\", \"public\": \"" +
                           to_hex(std::span<const uint8_t>(key.bytes)) + "\"}\n";
  return detail::write_new_file(path, detail::as_bytes(text), 0644);
}

Result<SecretKey> SecretKey::generate() {
  EDGELM_CHECK(detail::require_sodium());
  SecretKey key;
  EDGELM_TRY(key.secret_, SecureBuffer::allocate(kSize));
  crypto_secretstream_xchacha20poly1305_keygen(key.secret_.data());
  return key;
}

Result<SecretKey> SecretKey::load(const fs::path& path) {
  EDGELM_CHECK(detail::require_sodium());
  SecretKey key;
  EDGELM_TRY(key.secret_, read_private_hex(path, kSecretKeyType, "key", kSize));
  return key;
}

Status SecretKey::save(const fs::path& path) const {
  return write_private_json(path, kSecretKeyType, "key", secret_.bytes(), "");
}

std::array<uint8_t, 16> SecretKey::key_id() const {
  static constexpr std::string_view kContext = "edgelm secretstream key id v1";
  std::array<uint8_t, 16> id{};
  crypto_generichash(id.data(), id.size(), reinterpret_cast<const uint8_t*>(kContext.data()),
                     kContext.size(), secret_.data(), secret_.size());
  return id;
}

Result<SecretKey> resolve_secret_key(const fs::path& key_file) {
  if (!key_file.empty()) return SecretKey::load(key_file);
  const char* env = std::getenv(kKeyFileEnv);
  if (env != nullptr && *env != '\0') return SecretKey::load(env);
  return make_error(ErrorCode::kNotFound,
                    std::string("no encryption key: give a key file or set ") + kKeyFileEnv +
                        " to the path of one (create it with: edgelm keygen --secret -o KEY)");
}

}  // namespace edgelm::security
