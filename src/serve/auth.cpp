#include "edgelm/serve/auth.h"

#include <sodium.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

namespace edgelm::serve {
namespace {

constexpr std::string_view kHashPrefix = "blake2b256:";
constexpr size_t kMinKeyBytes = 16;
constexpr size_t kMaxKeyBytes = 512;

KeyHash blake2b(std::string_view key) {
  KeyHash h{};
  crypto_generichash(h.data(), h.size(), reinterpret_cast<const unsigned char*>(key.data()),
                     key.size(), nullptr, 0);
  return h;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

Result<std::string> hash_api_key(std::string_view key) {
  if (key.size() < kMinKeyBytes || key.size() > kMaxKeyBytes) {
    return make_error(ErrorCode::kInvalidArgument, "API key: " + std::to_string(key.size()) +
                                                       " bytes; use a random key of " +
                                                       std::to_string(kMinKeyBytes) + " to " +
                                                       std::to_string(kMaxKeyBytes) + " bytes");
  }
  for (char c : key) {
    if (static_cast<unsigned char>(c) <= ' ' || c == 0x7F) {
      return make_error(ErrorCode::kInvalidArgument,
                        "API key: contains whitespace or a control character");
    }
  }
  if (sodium_init() < 0) return make_error(ErrorCode::kInternal, "libsodium failed to initialize");
  const KeyHash h = blake2b(key);
  static const char* digits = "0123456789abcdef";
  std::string out(kHashPrefix);
  for (uint8_t b : h) {
    out += digits[b >> 4];
    out += digits[b & 15];
  }
  return out;
}

Result<ApiKeyStore> ApiKeyStore::parse(std::string_view text, std::string_view source) {
  if (sodium_init() < 0) return make_error(ErrorCode::kInternal, "libsodium failed to initialize");
  ApiKeyStore store;
  std::istringstream lines{std::string(text)};
  std::string line;
  int line_no = 0;
  while (std::getline(lines, line)) {
    ++line_no;
    const std::string where = std::string(source) + ":" + std::to_string(line_no) + ": ";
    if (const size_t hash = line.find('#'); hash != std::string::npos) line.resize(hash);
    std::istringstream fields(line);
    std::string name, hash, rpm, extra;
    if (!(fields >> name)) continue;
    if (!(fields >> hash)) {
      return make_error(ErrorCode::kInvalidFormat,
                        where + "expected '<name> blake2b256:<hex> [requests_per_minute]'");
    }
    fields >> rpm >> extra;
    if (!extra.empty())
      return make_error(ErrorCode::kInvalidFormat, where + "unexpected '" + extra + "'");
    if (hash.rfind(kHashPrefix, 0) != 0 || hash.size() != kHashPrefix.size() + 64) {
      return make_error(ErrorCode::kInvalidFormat,
                        where +
                            "the key must be given as blake2b256:<64 hex digits> (plain keys "
                            "are not stored; `edgelm serve --hash-key` prints the hash)");
    }
    ApiKey key;
    key.name = name;
    for (size_t i = 0; i < 32; ++i) {
      const int hi = hex_value(hash[kHashPrefix.size() + 2 * i]);
      const int lo = hex_value(hash[kHashPrefix.size() + 2 * i + 1]);
      if (hi < 0 || lo < 0) {
        return make_error(ErrorCode::kInvalidFormat, where + "the hash has a non-hex digit");
      }
      key.hash[i] = static_cast<uint8_t>(hi * 16 + lo);
    }
    if (!rpm.empty()) {
      const bool digits = rpm.size() <= 9 && std::all_of(rpm.begin(), rpm.end(), [](char c) {
                            return c >= '0' && c <= '9';
                          });
      if (!digits) {
        return make_error(ErrorCode::kInvalidFormat, where + "requests_per_minute '" + rpm +
                                                         "' is not a non-negative integer");
      }
      key.requests_per_minute = std::stoi(rpm);
    }
    for (const ApiKey& k : store.keys_) {
      if (k.name == key.name) {
        return make_error(ErrorCode::kInvalidFormat, where + "duplicate key name '" + name + "'");
      }
    }
    store.keys_.push_back(std::move(key));
  }
  return store;
}

Result<ApiKeyStore> ApiKeyStore::load(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(ErrorCode::kIo, "cannot read API key file '" + path.string() + "'");
  std::ostringstream text;
  text << in.rdbuf();
  EDGELM_TRY(ApiKeyStore store, parse(text.str(), path.string()));
  if (store.empty()) {
    return make_error(ErrorCode::kInvalidFormat,
                      "API key file '" + path.string() + "' lists no keys");
  }
  return store;
}

const ApiKey* ApiKeyStore::find(std::string_view key) const {
  if (key.size() > kMaxKeyBytes) return nullptr;
  const KeyHash presented = blake2b(key);
  const ApiKey* match = nullptr;
  for (const ApiKey& k : keys_) {
    // Every entry is compared, whatever matched before.
    const bool equal = sodium_memcmp(k.hash.data(), presented.data(), presented.size()) == 0;
    if (equal) match = &k;
  }
  return match;
}

std::optional<int> RateLimiter::acquire(const std::string& client, int32_t requests_per_minute,
                                        Clock::time_point now) {
  if (requests_per_minute <= 0) return std::nullopt;
  const double capacity = requests_per_minute;
  const double per_second = requests_per_minute / 60.0;
  std::lock_guard<std::mutex> lock(mutex_);
  // Without keys the clients are addresses: forget full buckets before the map grows large.
  if (buckets_.size() > 4096) {
    for (auto it = buckets_.begin(); it != buckets_.end();) {
      const double elapsed = std::chrono::duration<double>(now - it->second.updated).count();
      it =
          it->second.tokens + elapsed * per_second >= capacity ? buckets_.erase(it) : std::next(it);
    }
  }
  auto [it, inserted] = buckets_.try_emplace(client, Bucket{capacity, now});
  Bucket& b = it->second;
  if (!inserted) {
    const double elapsed = std::chrono::duration<double>(now - b.updated).count();
    b.tokens = std::min(capacity, b.tokens + std::max(0.0, elapsed) * per_second);
    b.updated = now;
  }
  if (b.tokens >= 1.0) {
    b.tokens -= 1.0;
    return std::nullopt;
  }
  return std::max(1, static_cast<int>(std::ceil((1.0 - b.tokens) / per_second)));
}

}  // namespace edgelm::serve
