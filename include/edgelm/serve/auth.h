// API keys and per-key rate limits for the server.
//
// Keys are never stored: the key file lists BLAKE2b-256 hashes (API keys are long random strings,
// so a fast hash is enough; a slow password hash would cost every request). A presented key is
// hashed and compared with every stored hash in constant time (sodium_memcmp, no early exit), so
// timing reveals neither which key nor how much of it matched.
//
// Key file: one key per line, `#` starts a comment:
//   <name> blake2b256:<64 hex digits> [requests_per_minute]
// `edgelm serve --hash-key` prints the hash of a key read from standard input.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "edgelm/error.h"

namespace edgelm::serve {

using KeyHash = std::array<uint8_t, 32>;

// "blake2b256:<hex>" for a key. kInvalidArgument for keys shorter than 16 bytes (too guessable
// for a fast hash) or containing whitespace/control characters.
Result<std::string> hash_api_key(std::string_view key);

struct ApiKey {
  std::string name;
  KeyHash hash{};
  int32_t requests_per_minute = 0;  // 0: the server's default
};

class ApiKeyStore {
 public:
  static Result<ApiKeyStore> parse(std::string_view text, std::string_view source = "api keys");
  static Result<ApiKeyStore> load(const std::filesystem::path& path);

  bool empty() const { return keys_.empty(); }
  size_t size() const { return keys_.size(); }
  // The entry whose hash matches `key`, or null. Compares against every entry.
  const ApiKey* find(std::string_view key) const;

 private:
  std::vector<ApiKey> keys_;
};

// Token buckets per client (key name or address): `requests_per_minute` capacity, refilled
// continuously. Thread-safe.
class RateLimiter {
 public:
  using Clock = std::chrono::steady_clock;
  // Takes one request from `client`'s bucket; nullopt when allowed, else the seconds until one
  // is available again (for Retry-After). requests_per_minute <= 0 always allows.
  std::optional<int> acquire(const std::string& client, int32_t requests_per_minute,
                             Clock::time_point now = Clock::now());

 private:
  struct Bucket {
    double tokens = 0;
    Clock::time_point updated;
  };
  std::mutex mutex_;
  std::map<std::string, Bucket> buckets_;
};

}  // namespace edgelm::serve
