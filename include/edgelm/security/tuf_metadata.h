// The Update Framework (theupdateframework.io) metadata roles, as edgelm stores them: each role's
// JSON is the payload of a DSSE envelope (payload type kTufPayloadType + role name) signed by the
// role's keys. Times are seconds since the Unix epoch, written as "YYYY-MM-DDTHH:MM:SSZ".
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "edgelm/error.h"
#include "edgelm/security/envelope.h"
#include "edgelm/security/hash.h"
#include "edgelm/security/keys.h"

namespace edgelm::security::tuf {

inline constexpr std::string_view kTufPayloadType = "application/vnd.edgelm.tuf.";  // + role + "+json"

enum class Role { kRoot, kTargets, kSnapshot, kTimestamp };
std::string_view role_name(Role role);  // "root", "targets", "snapshot", "timestamp"
std::string payload_type_for(Role role);

struct RoleKeys {
  std::vector<std::string> key_ids;
  uint32_t threshold = 1;
};

struct RootMetadata {
  uint64_t version = 0;
  int64_t expires = 0;
  KeyRing keys;  // every key any role uses, by key id
  std::map<Role, RoleKeys> roles;  // all four roles must be present

  // The keys of `role` that are in `keys`.
  KeyRing keys_for(Role role) const;
};

struct MetaFile {  // what timestamp says of snapshot.json and snapshot says of targets.json
  uint64_t version = 0;
  uint64_t length = 0;
  Sha256 sha256{};
};

struct TimestampMetadata {
  uint64_t version = 0;
  int64_t expires = 0;
  MetaFile snapshot;
};

struct SnapshotMetadata {
  uint64_t version = 0;
  int64_t expires = 0;
  MetaFile targets;
};

struct Target {
  std::string path;  // file under "targets/" in the repository, e.g. "stories-2.gguf"
  uint64_t length = 0;
  Sha256 sha256{};
  std::string model_name;      // custom.model_name: which device model this updates
  uint64_t model_version = 0;  // custom.model_version: anti-rollback counter
};

struct TargetsMetadata {
  uint64_t version = 0;
  int64_t expires = 0;
  std::vector<Target> targets;
};

std::string format_time(int64_t unix_seconds);
Result<int64_t> parse_time(std::string_view text, std::string_view what);

std::string to_json(const RootMetadata& m);
std::string to_json(const TimestampMetadata& m);
std::string to_json(const SnapshotMetadata& m);
std::string to_json(const TargetsMetadata& m);
// Parse a role's payload (already verified); `source` prefixes errors.
Result<RootMetadata> parse_root(std::string_view json, std::string_view source);
Result<TimestampMetadata> parse_timestamp(std::string_view json, std::string_view source);
Result<SnapshotMetadata> parse_snapshot(std::string_view json, std::string_view source);
Result<TargetsMetadata> parse_targets(std::string_view json, std::string_view source);

// A signed metadata file's bytes: the DSSE envelope JSON.
std::string sign_metadata(Role role, std::string payload, std::span<const SigningKey* const> keys);

}  // namespace edgelm::security::tuf
