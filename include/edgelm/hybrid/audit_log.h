// The audit trail of escalations: one JSON record per request sent upstream (or attempted), with
// the time, the local confidence, entity counts per type, the consent source, the upstream, the
// bytes sent and the outcome; never a prompt, an answer or a personal value. Records go to a new
// encrypted file per process run in the audit directory (security/encryption.h records), each
// written through at once.
#pragma once

#include <filesystem>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <vector>

#include "edgelm/error.h"
#include "edgelm/security/encryption.h"
#include "edgelm/security/keys.h"

namespace edgelm::hybrid {

class AuditLog {
 public:
  // Creates the directory if needed and a new file in it.
  static Result<std::unique_ptr<AuditLog>> open(const std::filesystem::path& dir,
                                                const security::SecretKey& key);
  Status append(const nlohmann::json& record);
  const std::filesystem::path& path() const { return path_; }

  // Every record of every audit file in `dir` (files of a crashed run included), oldest file
  // first.
  static Result<std::vector<nlohmann::json>> read_all(const std::filesystem::path& dir,
                                                      const security::SecretKey& key);

 private:
  AuditLog(std::filesystem::path path, security::EncryptedWriter writer);
  std::filesystem::path path_;
  std::mutex mutex_;
  security::EncryptedWriter writer_;
};

}  // namespace edgelm::hybrid
