// Upstream answers cached on the device, keyed on the *redacted* request (so the same question
// about different people hits the same entry, and the answer is restored with each request's own
// vault). The file is encrypted at rest (security/encryption.h) and rewritten whole on every
// change; entries older than the TTL are neither returned nor kept.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "edgelm/error.h"
#include "edgelm/hybrid/hybrid_policy.h"
#include "edgelm/security/keys.h"

namespace edgelm::hybrid {

class ResponseCache {
 public:
  using Clock = std::function<std::chrono::system_clock::time_point()>;

  // Loads policy.path when it exists (a file that fails authentication is an error, not an empty
  // cache: it was written with another key or tampered with).
  static Result<std::unique_ptr<ResponseCache>> open(const CachePolicy& policy,
                                                     std::shared_ptr<const security::SecretKey> key,
                                                     Clock clock = {});

  // Lower-case hex SHA-256 of the canonical JSON of `redacted_request`.
  static std::string key_for(const nlohmann::json& redacted_request);

  std::optional<std::string> get(const std::string& key);
  Status put(const std::string& key, std::string value);
  size_t size() const;

 private:
  struct Entry {
    int64_t stored_s = 0;  // unix seconds
    std::string value;
  };
  ResponseCache(CachePolicy policy, std::shared_ptr<const security::SecretKey> key, Clock clock);
  int64_t now_s() const;
  bool expired(const Entry& entry, int64_t now) const;
  Status save_locked();

  CachePolicy policy_;
  std::shared_ptr<const security::SecretKey> key_;
  Clock clock_;
  mutable std::mutex mutex_;
  std::map<std::string, Entry> entries_;
};

}  // namespace edgelm::hybrid
