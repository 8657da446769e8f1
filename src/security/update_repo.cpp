#include "edgelm/security/update_repo.h"

#include "security/internal.h"

namespace edgelm::security::tuf {
namespace fs = std::filesystem;

namespace {

Status write_text(const fs::path& path, const std::string& text) {
  return detail::write_file_atomic(path, detail::as_bytes(text), 0644);
}

// The payload of one of the repository's signed metadata files.
Result<std::string> read_payload(const fs::path& path) {
  EDGELM_TRY(std::string text, detail::read_file(path, 64u << 20));
  EDGELM_TRY(Envelope envelope, parse_envelope(text, path.string()));
  return std::move(envelope.payload);
}

}  // namespace

Result<RepositoryBuilder> RepositoryBuilder::open(fs::path dir) {
  RepositoryBuilder builder(dir);
  for (const char* name : {"root.json", "targets.json", "snapshot.json", "timestamp.json"}) {
    std::error_code ec;
    if (!fs::exists(dir / name, ec)) {
      return make_error(ErrorCode::kNotFound, detail::quoted(dir) +
                                                  " is not an update repository: no " + name +
                                                  " (create one with `edgelm publish init`)");
    }
  }
  EDGELM_TRY(std::string root, read_payload(dir / "root.json"));
  EDGELM_TRY(builder.root_, parse_root(root, (dir / "root.json").string()));
  EDGELM_TRY(std::string targets, read_payload(dir / "targets.json"));
  EDGELM_TRY(builder.targets_, parse_targets(targets, (dir / "targets.json").string()));
  EDGELM_TRY(std::string snapshot, read_payload(dir / "snapshot.json"));
  EDGELM_TRY(SnapshotMetadata snapshot_meta,
             parse_snapshot(snapshot, (dir / "snapshot.json").string()));
  EDGELM_TRY(std::string timestamp, read_payload(dir / "timestamp.json"));
  EDGELM_TRY(TimestampMetadata timestamp_meta,
             parse_timestamp(timestamp, (dir / "timestamp.json").string()));
  builder.snapshot_version_ = snapshot_meta.version;
  builder.timestamp_version_ = timestamp_meta.version;
  return builder;
}

void RepositoryBuilder::set_role_keys(Role role, const std::vector<PublicKey>& keys,
                                      uint32_t threshold) {
  RoleKeys rk;
  rk.threshold = threshold;
  for (const auto& key : keys) {
    rk.key_ids.push_back(key.key_id());
    root_.keys[key.key_id()] = key;
  }
  root_.roles[role] = std::move(rk);
}

Status RepositoryBuilder::publish_root(std::span<const SigningKey* const> signers,
                                       int64_t expires) {
  EDGELM_CHECK(detail::create_dirs(dir_));
  // Keys no role uses any more are dropped from the new root.
  KeyRing used;
  for (const auto& [role, rk] : root_.roles) {
    for (const auto& id : rk.key_ids) used[id] = root_.keys.at(id);
  }
  root_.keys = std::move(used);
  root_.version += 1;
  root_.expires = expires;
  const std::string text = sign_metadata(Role::kRoot, to_json(root_), signers);
  EDGELM_CHECK(write_text(dir_ / (std::to_string(root_.version) + ".root.json"), text));
  return write_text(dir_ / "root.json", text);
}

Status RepositoryBuilder::add_target(const fs::path& file, const std::string& path,
                                     std::string model_name, uint64_t model_version) {
  EDGELM_TRY(FileDigest digest, sha256_file(file));
  const fs::path dest = dir_ / "targets" / path;
  EDGELM_CHECK(detail::create_dirs(dest.parent_path()));
  std::error_code ec;
  fs::copy_file(file, dest, fs::copy_options::overwrite_existing, ec);
  if (ec)
    return make_error(ErrorCode::kIo, "cannot copy '" + file.string() + "' to '" + dest.string() +
                                          "': " + ec.message());
  std::erase_if(targets_.targets, [&](const Target& t) { return t.path == path; });
  targets_.targets.push_back(
      {path, digest.size, digest.sha256, std::move(model_name), model_version});
  return {};
}

void RepositoryBuilder::remove_target(const std::string& path) {
  std::erase_if(targets_.targets, [&](const Target& t) { return t.path == path; });
}

Status RepositoryBuilder::publish(std::span<const SigningKey* const> targets_signers,
                                  std::span<const SigningKey* const> snapshot_signers,
                                  std::span<const SigningKey* const> timestamp_signers,
                                  int64_t expires) {
  EDGELM_CHECK(detail::create_dirs(dir_));
  targets_.version += 1;
  targets_.expires = expires;
  const std::string targets_text =
      sign_metadata(Role::kTargets, to_json(targets_), targets_signers);

  SnapshotMetadata snapshot;
  snapshot.version = ++snapshot_version_;
  snapshot.expires = expires;
  snapshot.targets = {targets_.version, targets_text.size(), sha256(targets_text)};
  const std::string snapshot_text =
      sign_metadata(Role::kSnapshot, to_json(snapshot), snapshot_signers);

  TimestampMetadata timestamp;
  timestamp.version = ++timestamp_version_;
  timestamp.expires = expires;
  timestamp.snapshot = {snapshot.version, snapshot_text.size(), sha256(snapshot_text)};
  const std::string timestamp_text =
      sign_metadata(Role::kTimestamp, to_json(timestamp), timestamp_signers);

  EDGELM_CHECK(write_text(dir_ / "targets.json", targets_text));
  EDGELM_CHECK(write_text(dir_ / "snapshot.json", snapshot_text));
  return write_text(dir_ / "timestamp.json", timestamp_text);
}

}  // namespace edgelm::security::tuf
