// Publisher-side tooling for an update repository: a static folder any web server can serve.
//   <n>.root.json, root.json, timestamp.json, snapshot.json, targets.json, targets/<file>
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "edgelm/error.h"
#include "edgelm/security/tuf_metadata.h"

namespace edgelm::security::tuf {

class RepositoryBuilder {
 public:
  explicit RepositoryBuilder(std::filesystem::path dir) : dir_(std::move(dir)) {}
  // Continues an existing repository: root, targets and the snapshot/timestamp versions are read
  // back from its metadata files (the publisher's own files: parsed, not verified).
  static Result<RepositoryBuilder> open(std::filesystem::path dir);

  // Sets which keys sign `role` and how many must (in the next root version).
  void set_role_keys(Role role, const std::vector<PublicKey>& keys, uint32_t threshold);
  // Writes root version+1 as "<n>.root.json" and "root.json", signed by `signers` (for a
  // rotation: a threshold of the old root's keys and of the new one's).
  Status publish_root(std::span<const SigningKey* const> signers, int64_t expires);

  // Copies `file` to targets/<path> and lists it (replacing an entry with the same path).
  Status add_target(const std::filesystem::path& file, const std::string& path,
                    std::string model_name, uint64_t model_version);
  void remove_target(const std::string& path);
  // Writes targets, snapshot and timestamp (each version+1) signed by the given keys.
  Status publish(std::span<const SigningKey* const> targets_signers,
                 std::span<const SigningKey* const> snapshot_signers,
                 std::span<const SigningKey* const> timestamp_signers, int64_t expires);

  const RootMetadata& root() const { return root_; }
  const TargetsMetadata& targets() const { return targets_; }
  const std::filesystem::path& dir() const { return dir_; }

 private:
  std::filesystem::path dir_;
  RootMetadata root_;
  TargetsMetadata targets_;
  uint64_t snapshot_version_ = 0;
  uint64_t timestamp_version_ = 0;
};

}  // namespace edgelm::security::tuf
