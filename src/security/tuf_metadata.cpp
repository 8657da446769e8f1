#include "edgelm/security/tuf_metadata.h"

#include <ctime>
#include <nlohmann/json.hpp>

#include "security/internal.h"

namespace edgelm::security::tuf {
using nlohmann::json;

namespace {

constexpr Role kAllRoles[] = {Role::kRoot, Role::kTargets, Role::kSnapshot, Role::kTimestamp};

// Errors from parsing a payload whose signatures were already checked: still untrusted in shape.
class Parser {
 public:
  Parser(std::string_view text, std::string_view source, std::string_view type)
      : where_(std::string(source)), doc_(json::parse(text, nullptr, /*allow_exceptions=*/false)) {
    if (!doc_.is_object()) {
      error_ = bad("expected a JSON object");
    } else if (!doc_.contains("_type") || !doc_["_type"].is_string() ||
               doc_["_type"].get<std::string>() != type) {
      error_ = bad("_type must be '" + std::string(type) + "'");
    }
  }

  const std::optional<Error>& error() const { return error_; }
  const json& doc() const { return doc_; }
  Error bad(const std::string& what) const {
    return make_error(ErrorCode::kInvalidFormat, where_ + ": " + what);
  }

  Result<const json*> member(const json& obj, const char* key, json::value_t type) const {
    if (!obj.is_object() || !obj.contains(key) || obj[key].type() != type) {
      return bad(std::string("'") + key + "' is missing or has the wrong type");
    }
    return &obj[key];
  }
  Result<uint64_t> unsigned_of(const json& obj, const char* key) const {
    if (!obj.is_object() || !obj.contains(key) || !obj[key].is_number_unsigned()) {
      return bad(std::string("'") + key + "' must be a non-negative integer");
    }
    return obj[key].get<uint64_t>();
  }
  Result<std::string> string_of(const json& obj, const char* key) const {
    EDGELM_TRY(const json* v, member(obj, key, json::value_t::string));
    return v->get<std::string>();
  }
  Result<int64_t> expires() const {
    EDGELM_TRY(std::string text, string_of(doc_, "expires"));
    return parse_time(text, where_ + ": expires");
  }
  Result<Sha256> sha256_of(const json& obj) const {
    EDGELM_TRY(const json* hashes, member(obj, "hashes", json::value_t::object));
    EDGELM_TRY(std::string hex, string_of(*hashes, "sha256"));
    return sha256_from_hex(hex, where_ + ": hashes.sha256");
  }
  Result<MetaFile> meta_file(const char* name) const {
    EDGELM_TRY(const json* meta, member(doc_, "meta", json::value_t::object));
    EDGELM_TRY(const json* entry, member(*meta, name, json::value_t::object));
    MetaFile out;
    EDGELM_TRY(out.version, unsigned_of(*entry, "version"));
    EDGELM_TRY(out.length, unsigned_of(*entry, "length"));
    EDGELM_TRY(out.sha256, sha256_of(*entry));
    return out;
  }

 private:
  std::string where_;
  json doc_;
  std::optional<Error> error_;
};

json meta_file_json(const MetaFile& m) {
  return {{"version", m.version}, {"length", m.length}, {"hashes", {{"sha256", to_hex(m.sha256)}}}};
}

// Target paths become URL paths: plain relative names only.
bool is_safe_target_path(const std::string& path) {
  if (path.empty() || path.size() > 255 || path.front() == '/') return false;
  for (char c : path) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-' || c == '/';
    if (!ok) return false;
  }
  return path.find("..") == std::string::npos && path.find("//") == std::string::npos;
}

}  // namespace

std::string_view role_name(Role role) {
  switch (role) {
    case Role::kRoot:
      return "root";
    case Role::kTargets:
      return "targets";
    case Role::kSnapshot:
      return "snapshot";
    case Role::kTimestamp:
      return "timestamp";
  }
  return "?";
}

std::string payload_type_for(Role role) {
  return std::string(kTufPayloadType) + std::string(role_name(role)) + "+json";
}

KeyRing RootMetadata::keys_for(Role role) const {
  KeyRing out;
  const auto it = roles.find(role);
  if (it == roles.end()) return out;
  for (const auto& id : it->second.key_ids) {
    if (const auto key = keys.find(id); key != keys.end()) out.insert(*key);
  }
  return out;
}

std::string format_time(int64_t unix_seconds) {
  const std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

Result<int64_t> parse_time(std::string_view text, std::string_view what) {
  auto bad = [&] {
    return make_error(ErrorCode::kInvalidFormat, std::string(what) + ": '" + std::string(text) +
                                                     "' is not a time like 2030-01-31T00:00:00Z");
  };
  if (text.size() != 20 || text[4] != '-' || text[7] != '-' || text[10] != 'T' || text[13] != ':' ||
      text[16] != ':' || text[19] != 'Z') {
    return bad();
  }
  auto number = [&](size_t pos, size_t len, int& out) {
    out = 0;
    for (size_t i = pos; i < pos + len; ++i) {
      if (text[i] < '0' || text[i] > '9') return false;
      out = out * 10 + (text[i] - '0');
    }
    return true;
  };
  std::tm tm{};
  int year = 0, month = 0;
  if (!number(0, 4, year) || !number(5, 2, month) || !number(8, 2, tm.tm_mday) ||
      !number(11, 2, tm.tm_hour) || !number(14, 2, tm.tm_min) || !number(17, 2, tm.tm_sec) ||
      month < 1 || month > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 ||
      tm.tm_min > 59 || tm.tm_sec > 60) {
    return bad();
  }
  tm.tm_year = year - 1900;
  tm.tm_mon = month - 1;
  return static_cast<int64_t>(timegm(&tm));
}

std::string to_json(const RootMetadata& m) {
  json keys = json::object();
  for (const auto& [id, key] : m.keys) {
    keys[id] = {{"keytype", "ed25519"}, {"public", to_hex(std::span<const uint8_t>(key.bytes))}};
  }
  json roles = json::object();
  for (const auto& [role, rk] : m.roles)
    roles[std::string(role_name(role))] = {{"keyids", rk.key_ids}, {"threshold", rk.threshold}};
  return json{{"_type", "root"},
              {"version", m.version},
              {"expires", format_time(m.expires)},
              {"keys", keys},
              {"roles", roles}}
      .dump(2);
}

std::string to_json(const TimestampMetadata& m) {
  return json{{"_type", "timestamp"},
              {"version", m.version},
              {"expires", format_time(m.expires)},
              {"meta", {{"snapshot.json", meta_file_json(m.snapshot)}}}}
      .dump(2);
}

std::string to_json(const SnapshotMetadata& m) {
  return json{{"_type", "snapshot"},
              {"version", m.version},
              {"expires", format_time(m.expires)},
              {"meta", {{"targets.json", meta_file_json(m.targets)}}}}
      .dump(2);
}

std::string to_json(const TargetsMetadata& m) {
  json targets = json::object();
  for (const auto& t : m.targets) {
    targets[t.path] = {
        {"length", t.length},
        {"hashes", {{"sha256", to_hex(t.sha256)}}},
        {"custom", {{"model_name", t.model_name}, {"model_version", t.model_version}}}};
  }
  return json{{"_type", "targets"},
              {"version", m.version},
              {"expires", format_time(m.expires)},
              {"targets", targets}}
      .dump(2);
}

Result<RootMetadata> parse_root(std::string_view text, std::string_view source) {
  Parser p(text, source, "root");
  if (p.error()) return *p.error();
  RootMetadata m;
  EDGELM_TRY(m.version, p.unsigned_of(p.doc(), "version"));
  EDGELM_TRY(m.expires, p.expires());
  EDGELM_TRY(const json* keys, p.member(p.doc(), "keys", json::value_t::object));
  for (const auto& [id, entry] : keys->items()) {
    EDGELM_TRY(std::string keytype, p.string_of(entry, "keytype"));
    if (keytype != "ed25519")
      return p.bad("key " + id + ": keytype '" + keytype + "' is not supported");
    EDGELM_TRY(std::string hex, p.string_of(entry, "public"));
    EDGELM_TRY(PublicKey key, public_key_from_hex(hex, std::string(source) + ": key " + id));
    // A key id must be the key's own hash, or one key could be counted twice under two ids.
    if (key.key_id() != id) return p.bad("key id " + id + " is not the SHA-256 of its public key");
    m.keys[id] = key;
  }
  EDGELM_TRY(const json* roles, p.member(p.doc(), "roles", json::value_t::object));
  for (Role role : kAllRoles) {
    const std::string name(role_name(role));
    EDGELM_TRY(const json* entry, p.member(*roles, name.c_str(), json::value_t::object));
    RoleKeys rk;
    EDGELM_TRY(uint64_t threshold, p.unsigned_of(*entry, "threshold"));
    if (threshold == 0 || threshold > 1024)
      return p.bad("role " + name + ": threshold must be in [1, 1024]");
    rk.threshold = static_cast<uint32_t>(threshold);
    EDGELM_TRY(const json* ids, p.member(*entry, "keyids", json::value_t::array));
    for (const json& id : *ids) {
      if (!id.is_string() || !m.keys.contains(id.get<std::string>())) {
        return p.bad("role " + name + ": key ids must name keys listed in 'keys'");
      }
      rk.key_ids.push_back(id.get<std::string>());
    }
    if (rk.key_ids.size() < rk.threshold) {
      return p.bad("role " + name + ": threshold " + std::to_string(rk.threshold) +
                   " exceeds its " + std::to_string(rk.key_ids.size()) + " keys");
    }
    m.roles[role] = std::move(rk);
  }
  return m;
}

Result<TimestampMetadata> parse_timestamp(std::string_view text, std::string_view source) {
  Parser p(text, source, "timestamp");
  if (p.error()) return *p.error();
  TimestampMetadata m;
  EDGELM_TRY(m.version, p.unsigned_of(p.doc(), "version"));
  EDGELM_TRY(m.expires, p.expires());
  EDGELM_TRY(m.snapshot, p.meta_file("snapshot.json"));
  return m;
}

Result<SnapshotMetadata> parse_snapshot(std::string_view text, std::string_view source) {
  Parser p(text, source, "snapshot");
  if (p.error()) return *p.error();
  SnapshotMetadata m;
  EDGELM_TRY(m.version, p.unsigned_of(p.doc(), "version"));
  EDGELM_TRY(m.expires, p.expires());
  EDGELM_TRY(m.targets, p.meta_file("targets.json"));
  return m;
}

Result<TargetsMetadata> parse_targets(std::string_view text, std::string_view source) {
  Parser p(text, source, "targets");
  if (p.error()) return *p.error();
  TargetsMetadata m;
  EDGELM_TRY(m.version, p.unsigned_of(p.doc(), "version"));
  EDGELM_TRY(m.expires, p.expires());
  EDGELM_TRY(const json* targets, p.member(p.doc(), "targets", json::value_t::object));
  for (const auto& [path, entry] : targets->items()) {
    if (!is_safe_target_path(path))
      return p.bad("target path '" + path + "' is not a plain relative path");
    Target t;
    t.path = path;
    EDGELM_TRY(t.length, p.unsigned_of(entry, "length"));
    EDGELM_TRY(t.sha256, p.sha256_of(entry));
    EDGELM_TRY(const json* custom, p.member(entry, "custom", json::value_t::object));
    EDGELM_TRY(t.model_name, p.string_of(*custom, "model_name"));
    EDGELM_TRY(t.model_version, p.unsigned_of(*custom, "model_version"));
    m.targets.push_back(std::move(t));
  }
  return m;
}

std::string sign_metadata(Role role, std::string payload, std::span<const SigningKey* const> keys) {
  return envelope_to_json(sign_envelope(payload_type_for(role), std::move(payload), keys));
}

}  // namespace edgelm::security::tuf
