#include "edgelm/hybrid/audit_log.h"

#include <sodium.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <system_error>

#include "edgelm/security/hash.h"

namespace edgelm::hybrid {

namespace fs = std::filesystem;

AuditLog::AuditLog(fs::path path, security::EncryptedWriter writer)
    : path_(std::move(path)), writer_(std::move(writer)) {}

Result<std::unique_ptr<AuditLog>> AuditLog::open(const fs::path& dir,
                                                 const security::SecretKey& key) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) {
    return make_error(ErrorCode::kIo,
                      "audit directory '" + dir.string() + "': cannot create: " + ec.message());
  }
  if (sodium_init() < 0) return make_error(ErrorCode::kInternal, "libsodium failed to initialize");
  // Sortable by time, unique across processes.
  const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  uint8_t nonce[4];
  randombytes_buf(nonce, sizeof nonce);
  char name[96];
  std::snprintf(name, sizeof name, "audit-%013lld-%d-%s.enc", static_cast<long long>(now_ms),
                static_cast<int>(::getpid()), security::to_hex(nonce).c_str());
  const fs::path path = dir / name;
  EDGELM_TRY(auto writer, security::EncryptedWriter::create(path, key, 1 << 16));
  return std::unique_ptr<AuditLog>(new AuditLog(path, std::move(writer)));
}

Status AuditLog::append(const nlohmann::json& record) {
  std::lock_guard<std::mutex> lock(mutex_);
  return writer_.append(record.dump());
}

Result<std::vector<nlohmann::json>> AuditLog::read_all(const fs::path& dir,
                                                       const security::SecretKey& key) {
  std::vector<fs::path> files;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("audit-", 0) == 0 && entry.path().extension() == ".enc") {
      files.push_back(entry.path());
    }
  }
  if (ec) {
    return make_error(ErrorCode::kIo,
                      "audit directory '" + dir.string() + "': cannot list: " + ec.message());
  }
  std::sort(files.begin(), files.end());
  std::vector<nlohmann::json> out;
  for (const fs::path& file : files) {
    EDGELM_TRY(auto records,
               security::read_encrypted_records(file, key, /*allow_unfinished=*/true));
    for (const std::string& r : records.records) {
      nlohmann::json j = nlohmann::json::parse(r, nullptr, /*allow_exceptions=*/false);
      if (j.is_discarded()) {
        return make_error(ErrorCode::kInvalidFormat,
                          "audit file '" + file.string() + "': a record is not JSON");
      }
      out.push_back(std::move(j));
    }
  }
  return out;
}

}  // namespace edgelm::hybrid
