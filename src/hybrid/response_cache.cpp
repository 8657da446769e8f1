#include "edgelm/hybrid/response_cache.h"

#include <unistd.h>

#include <algorithm>
#include <system_error>
#include <vector>

#include "edgelm/security/encryption.h"
#include "edgelm/security/hash.h"

namespace edgelm::hybrid {

using nlohmann::json;

ResponseCache::ResponseCache(CachePolicy policy, std::shared_ptr<const security::SecretKey> key,
                             Clock clock)
    : policy_(std::move(policy)), key_(std::move(key)), clock_(std::move(clock)) {
  if (!clock_) clock_ = [] { return std::chrono::system_clock::now(); };
}

int64_t ResponseCache::now_s() const {
  return std::chrono::duration_cast<std::chrono::seconds>(clock_().time_since_epoch()).count();
}

bool ResponseCache::expired(const Entry& entry, int64_t now) const {
  return now - entry.stored_s >= policy_.ttl_s || now < entry.stored_s;
}

Result<std::unique_ptr<ResponseCache>> ResponseCache::open(
    const CachePolicy& policy, std::shared_ptr<const security::SecretKey> key, Clock clock) {
  if (!key) return make_error(ErrorCode::kInvalidArgument, "the response cache needs a key");
  std::unique_ptr<ResponseCache> cache(new ResponseCache(policy, std::move(key), std::move(clock)));
  std::error_code ec;
  if (!std::filesystem::exists(policy.path, ec)) return cache;
  EDGELM_TRY(auto records, security::read_encrypted_records(policy.path, *cache->key_));
  const int64_t now = cache->now_s();
  for (const std::string& record : records.records) {
    const json j = json::parse(record, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object() || !j.contains("k") || !j["k"].is_string() || !j.contains("t") ||
        !j["t"].is_number_integer() || !j.contains("v") || !j["v"].is_string()) {
      return make_error(ErrorCode::kInvalidFormat,
                        "response cache '" + policy.path + "': a record is not {k, t, v}");
    }
    Entry entry{j["t"].get<int64_t>(), j["v"].get<std::string>()};
    if (!cache->expired(entry, now)) cache->entries_[j["k"].get<std::string>()] = std::move(entry);
  }
  return cache;
}

std::string ResponseCache::key_for(const json& redacted_request) {
  const security::Sha256 digest = security::sha256(redacted_request.dump());
  return security::to_hex(digest);
}

std::optional<std::string> ResponseCache::get(const std::string& key) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = entries_.find(key);
  if (it == entries_.end()) return std::nullopt;
  if (expired(it->second, now_s())) {
    entries_.erase(it);
    return std::nullopt;
  }
  return it->second.value;
}

size_t ResponseCache::size() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return entries_.size();
}

Status ResponseCache::put(const std::string& key, std::string value) {
  std::lock_guard<std::mutex> lock(mutex_);
  const int64_t now = now_s();
  std::erase_if(entries_, [&](const auto& kv) { return expired(kv.second, now); });
  entries_[key] = Entry{now, std::move(value)};
  while (entries_.size() > policy_.max_entries) {
    // The oldest entry goes first.
    auto oldest = std::min_element(
        entries_.begin(), entries_.end(),
        [](const auto& a, const auto& b) { return a.second.stored_s < b.second.stored_s; });
    entries_.erase(oldest);
  }
  return save_locked();
}

Status ResponseCache::save_locked() {
  // EncryptedWriter never replaces a file: write beside it, then rename over the old one.
  const std::string temp = policy_.path + ".tmp" + std::to_string(::getpid());
  std::error_code ec;
  std::filesystem::remove(temp, ec);
  {
    EDGELM_TRY(auto writer, security::EncryptedWriter::create(temp, *key_));
    for (const auto& [key, entry] : entries_) {
      EDGELM_CHECK(
          writer.append(json{{"k", key}, {"t", entry.stored_s}, {"v", entry.value}}.dump()));
    }
    EDGELM_CHECK(writer.close());
  }
  std::filesystem::rename(temp, policy_.path, ec);
  if (ec) {
    return make_error(ErrorCode::kIo,
                      "response cache '" + policy_.path + "': cannot replace: " + ec.message());
  }
  return {};
}

}  // namespace edgelm::hybrid
