#include "edgelm/security/hash.h"

#include <openssl/evp.h>
#include <sodium.h>

#include <algorithm>
#include <cstring>

#include "security/internal.h"

namespace edgelm::security {

// SHA-256 comes from OpenSSL's libcrypto, which picks SHA-NI / AVX2 code at run time: about 3x
// libsodium's portable implementation, and model files are hashed at every verified load.
// Signatures and encryption stay with libsodium.
namespace {

struct DigestContext {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  ~DigestContext() { EVP_MD_CTX_free(ctx); }
};

Status hash_pieces(std::span<const uint8_t> bytes, Sha256& out) {
  DigestContext digest;
  if (digest.ctx == nullptr || EVP_DigestInit_ex(digest.ctx, EVP_sha256(), nullptr) != 1) {
    return detail::security_error("SHA-256 is unavailable (OpenSSL digest initialization failed)");
  }
  // Hash in pieces so the kernel can read ahead and drop pages behind us on large files.
  constexpr size_t kPiece = 8u << 20;
  for (size_t off = 0; off < bytes.size(); off += kPiece) {
    if (EVP_DigestUpdate(digest.ctx, bytes.data() + off, std::min(kPiece, bytes.size() - off)) !=
        1) {
      return detail::security_error("SHA-256 update failed");
    }
  }
  unsigned int n = 0;
  if (EVP_DigestFinal_ex(digest.ctx, out.data(), &n) != 1 || n != out.size()) {
    return detail::security_error("SHA-256 finalization failed");
  }
  return {};
}

}  // namespace

Sha256 sha256(std::span<const uint8_t> bytes) {
  Sha256 out{};
  if (!hash_pieces(bytes, out)) {
    detail::sodium_ready();  // the portable implementation when libcrypto cannot run
    crypto_hash_sha256(out.data(), bytes.data(), bytes.size());
  }
  return out;
}

Result<FileDigest> sha256_file(const std::filesystem::path& path) {
  EDGELM_TRY(detail::MappedFile file, detail::MappedFile::open(path));
  FileDigest digest;
  digest.size = file.bytes().size();
  EDGELM_CHECK(hash_pieces(file.bytes(), digest.sha256));
  return digest;
}

std::string to_hex(std::span<const uint8_t> bytes) {
  std::string out(bytes.size() * 2 + 1, '\0');
  sodium_bin2hex(out.data(), out.size(), bytes.data(), bytes.size());
  out.pop_back();
  return out;
}

Result<std::vector<uint8_t>> from_hex(std::string_view hex, std::string_view what) {
  std::vector<uint8_t> out(hex.size() / 2);
  size_t n = 0;
  const char* end = nullptr;
  if (hex.size() % 2 != 0 ||
      sodium_hex2bin(out.data(), out.size(), hex.data(), hex.size(), nullptr, &n, &end) != 0 ||
      end != hex.data() + hex.size()) {
    return make_error(ErrorCode::kInvalidFormat, std::string(what) + ": not a hex string");
  }
  out.resize(n);
  return out;
}

Result<Sha256> sha256_from_hex(std::string_view hex, std::string_view what) {
  EDGELM_TRY(auto bytes, from_hex(hex, what));
  if (bytes.size() != 32) {
    return make_error(ErrorCode::kInvalidFormat, std::string(what) + ": expected 64 hex digits");
  }
  Sha256 out{};
  std::copy(bytes.begin(), bytes.end(), out.begin());
  return out;
}

std::string to_base64(std::span<const uint8_t> bytes) {
  constexpr int kVariant = sodium_base64_VARIANT_ORIGINAL;
  std::string out(sodium_base64_ENCODED_LEN(bytes.size(), kVariant), '\0');
  sodium_bin2base64(out.data(), out.size(), bytes.data(), bytes.size(), kVariant);
  out.resize(std::strlen(out.c_str()));
  return out;
}

Result<std::vector<uint8_t>> from_base64(std::string_view text, std::string_view what) {
  std::vector<uint8_t> out(text.size() / 4 * 3 + 3);
  size_t n = 0;
  const char* end = nullptr;
  if (sodium_base642bin(out.data(), out.size(), text.data(), text.size(), nullptr, &n, &end,
                        sodium_base64_VARIANT_ORIGINAL) != 0 ||
      end != text.data() + text.size()) {
    return make_error(ErrorCode::kInvalidFormat, std::string(what) + ": not valid base64");
  }
  out.resize(n);
  return out;
}

}  // namespace edgelm::security
