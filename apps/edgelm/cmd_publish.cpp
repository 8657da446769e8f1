// edgelm publish: the publisher's side of over-the-air updates. Keeps an update repository (a
// static folder any web server can serve) whose TUF metadata `edgelm update` verifies.
//
//   edgelm publish init --repo DIR --keys KEYDIR          four role keys (0600) + signed root
//   edgelm publish add  --repo DIR --keys KEYDIR MODEL --name stories --version 2
//   edgelm publish remove --repo DIR --keys KEYDIR --path stories-1.gguf
//   edgelm publish refresh --repo DIR --keys KEYDIR       re-sign with a new expiry
// Devices ship DIR/1.root.json as their trusted root ("trusted_root" in the update config).
#include <ctime>
#include <filesystem>

#include "cli.h"
#include "edgelm/security/keys.h"
#include "edgelm/security/update_repo.h"

namespace edgelm::cli {
namespace {

namespace fs = std::filesystem;
using security::SigningKey;
using security::tuf::RepositoryBuilder;
using security::tuf::Role;

struct PublishOptions {
  std::string action;
  std::string repo;
  std::string keys;
  std::string model;
  std::string name;
  uint64_t version = 0;
  std::string path;  // file name under targets/; default: <name>-<version><extension>
  int expires_days = 365;
};

constexpr Role kRoles[] = {Role::kRoot, Role::kTargets, Role::kSnapshot, Role::kTimestamp};

fs::path key_path(const PublishOptions& o, Role role) {
  return fs::path(o.keys) / (std::string(security::tuf::role_name(role)) + ".key");
}

struct RoleKeys {
  std::unique_ptr<SigningKey> keys[4];
  const SigningKey* get(Role role) const { return keys[static_cast<int>(role)].get(); }
};

Result<RoleKeys> load_keys(const PublishOptions& o) {
  RoleKeys out;
  for (Role role : kRoles) {
    EDGELM_TRY(SigningKey key, SigningKey::load(key_path(o, role)));
    out.keys[static_cast<int>(role)] = std::make_unique<SigningKey>(std::move(key));
  }
  return out;
}

Status publish_all(RepositoryBuilder& repo, const RoleKeys& keys, int64_t expires) {
  const SigningKey* t[] = {keys.get(Role::kTargets)};
  const SigningKey* s[] = {keys.get(Role::kSnapshot)};
  const SigningKey* ts[] = {keys.get(Role::kTimestamp)};
  return repo.publish(t, s, ts, expires);
}

Status init(const PublishOptions& o, int64_t expires) {
  std::error_code ec;
  if (fs::exists(fs::path(o.repo) / "root.json", ec)) {
    return make_error(ErrorCode::kInvalidArgument,
                      "'" + o.repo + "' already holds an update repository");
  }
  fs::create_directories(o.keys, ec);
  if (ec)
    return make_error(ErrorCode::kIo, "cannot create key folder '" + o.keys + "': " + ec.message());
  RoleKeys keys;
  RepositoryBuilder repo{fs::path(o.repo)};
  for (Role role : kRoles) {
    EDGELM_TRY(SigningKey key, SigningKey::generate());
    EDGELM_CHECK(key.save(key_path(o, role)));  // refuses to overwrite an existing key
    repo.set_role_keys(role, {key.public_key()}, 1);
    keys.keys[static_cast<int>(role)] = std::make_unique<SigningKey>(std::move(key));
  }
  const SigningKey* root[] = {keys.get(Role::kRoot)};
  EDGELM_CHECK(repo.publish_root(root, expires));
  EDGELM_CHECK(publish_all(repo, keys, expires));
  std::printf("update repository in %s; keys in %s (keep root.key offline)\n", o.repo.c_str(),
              o.keys.c_str());
  std::printf("devices trust %s\n", (fs::path(o.repo) / "1.root.json").c_str());
  return {};
}

Status change(const PublishOptions& o, int64_t expires) {
  EDGELM_TRY(RoleKeys keys, load_keys(o));
  EDGELM_TRY(RepositoryBuilder repo, RepositoryBuilder::open(o.repo));
  if (o.action == "add") {
    if (o.model.empty() || o.name.empty() || o.version == 0) {
      return make_error(ErrorCode::kInvalidArgument,
                        "publish add needs MODEL, --name and --version (>= 1)");
    }
    const std::string path = o.path.empty() ? o.name + "-" + std::to_string(o.version) +
                                                  fs::path(o.model).extension().string()
                                            : o.path;
    if (path.find("..") != std::string::npos || path.find('/') != std::string::npos) {
      return make_error(ErrorCode::kInvalidArgument,
                        "--path must be a plain file name, not '" + path + "'");
    }
    EDGELM_CHECK(repo.add_target(o.model, path, o.name, o.version));
    std::printf("listed %s as %s version %llu\n", path.c_str(), o.name.c_str(),
                static_cast<unsigned long long>(o.version));
  } else if (o.action == "remove") {
    if (o.path.empty())
      return make_error(ErrorCode::kInvalidArgument, "publish remove needs --path");
    repo.remove_target(o.path);
  }
  EDGELM_CHECK(publish_all(repo, keys, expires));
  std::printf("published targets version %llu\n",
              static_cast<unsigned long long>(repo.targets().version));
  return {};
}

int publish(const PublishOptions& o) {
  const int64_t expires =
      static_cast<int64_t>(std::time(nullptr)) + int64_t{o.expires_days} * 86400;
  const Status status = o.action == "init" ? init(o, expires) : change(o, expires);
  return status ? 0 : report(status.error());
}

}  // namespace

void register_publish(CLI::App& app, int& exit_code) {
  auto o = std::make_shared<PublishOptions>();
  CLI::App* cmd =
      app.add_subcommand("publish", "keep a signed update repository for edgelm update");
  cmd->add_option("action", o->action, "init | add | remove | refresh")
      ->required()
      ->check(CLI::IsMember({"init", "add", "remove", "refresh"}));
  cmd->add_option("model", o->model, "add: the model file to publish");
  cmd->add_option("--repo", o->repo, "repository folder")->required();
  cmd->add_option("--keys", o->keys, "folder of the role keys (root, targets, snapshot, timestamp)")
      ->required();
  cmd->add_option("--name", o->name, "add: model name devices update (their update.model)");
  cmd->add_option("--version", o->version, "add: model version (anti-rollback counter)");
  cmd->add_option("--path", o->path, "file name under targets/ (add: default NAME-VERSION.EXT)");
  cmd->add_option("--expires-days", o->expires_days, "metadata lifetime")
      ->capture_default_str()
      ->check(CLI::Range(1, 3650));
  cmd->callback([o, &exit_code] { exit_code = publish(*o); });
}

}  // namespace edgelm::cli
