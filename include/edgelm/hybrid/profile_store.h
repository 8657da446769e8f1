// Local personalization: per user, the preferences and facts that user allowed the device to
// remember, {"alice": ["Prefers short answers.", "Lives in Lyon."]}. They are added to prompts for
// the LOCAL model only (a system message); the upstream never sees them. The file may be plain
// JSON or encrypted at rest (security/encryption.h blob), decrypted into locked memory.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "edgelm/error.h"
#include "edgelm/security/keys.h"

namespace edgelm::hybrid {

class ProfileStore {
 public:
  static constexpr size_t kMaxFactsPerUser = 64;
  static constexpr size_t kMaxFactBytes = 1024;

  // `key` is needed only when the file is encrypted.
  static Result<ProfileStore> load(const std::filesystem::path& path,
                                   const security::SecretKey* key);

  // The system message text for `user`'s local prompts ("" when there is nothing to add).
  std::string local_context(const std::string& user) const;
  const std::vector<std::string>* facts(const std::string& user) const;

 private:
  std::map<std::string, std::vector<std::string>> facts_;
};

}  // namespace edgelm::hybrid
