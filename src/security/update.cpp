#include "edgelm/security/update.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <ctime>
#include <nlohmann/json.hpp>
#include <random>
#include <set>

#include "security/internal.h"

namespace edgelm::security {
namespace fs = std::filesystem;
using nlohmann::json;
using tuf::Role;

namespace {

constexpr uint64_t kMaxSlotRecordBytes = 64 * 1024;
constexpr const char* kModelFile = "model.gguf";
constexpr const char* kSlotRecord = "slot.json";

struct Layout {
  fs::path dir;
  fs::path metadata() const { return dir / "metadata"; }
  fs::path metadata_file(Role role) const {
    return metadata() / (std::string(tuf::role_name(role)) + ".json");
  }
  fs::path slots() const { return dir / "slots"; }
  fs::path staging() const { return dir / "staging"; }
  fs::path active() const { return dir / "active"; }
  // The highest model version ever activated: anti-rollback must not depend on slots that a
  // rollback, a lost link or a cleanup can make disappear.
  fs::path version_floor() const { return metadata() / "model_version_floor.json"; }
  fs::path previous() const { return dir / "previous"; }
};

void step(const UpdateOptions& options, std::string_view name) {
  if (options.on_step) options.on_step(name);
}

// Points `link` at `target` (relative) atomically: a new symlink renamed over the old one.
Status replace_symlink(const fs::path& link, const fs::path& target, const UpdateOptions* options,
                       std::string_view temp_step) {
  std::random_device rd;
  const fs::path tmp = link.string() + ".tmp-" + std::to_string(rd());
  if (::symlink(target.c_str(), tmp.c_str()) != 0)
    return detail::io_error(tmp, "cannot create symlink");
  if (options != nullptr) step(*options, temp_step);
  if (::rename(tmp.c_str(), link.c_str()) != 0) {
    Error e = detail::io_error(link, "cannot rename symlink into place");
    ::unlink(tmp.c_str());
    return e;
  }
  return detail::fsync_path(link.parent_path());
}

// 0 when no model was ever activated (or the state predates the floor file).
Result<uint64_t> read_version_floor(const Layout& layout, const std::string& model_name) {
  std::error_code ec;
  if (!fs::exists(layout.version_floor(), ec)) return uint64_t{0};
  EDGELM_TRY(std::string text, detail::read_file(layout.version_floor(), kMaxSlotRecordBytes));
  const json doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
  const std::string where = "'" + layout.version_floor().string() + "'";
  if (!doc.is_object() || !doc.contains("versions") || !doc["versions"].is_object()) {
    return detail::security_error(where + " is damaged: expected {\"versions\": {model: version}}");
  }
  const json& versions = doc["versions"];
  if (!versions.contains(model_name)) return uint64_t{0};
  if (!versions[model_name].is_number_unsigned()) {
    return detail::security_error(where + ": the version of '" + model_name + "' is not a number");
  }
  return versions[model_name].get<uint64_t>();
}

Status raise_version_floor(const Layout& layout, const std::string& model_name, uint64_t version) {
  json doc = {{"versions", json::object()}};
  std::error_code ec;
  if (fs::exists(layout.version_floor(), ec)) {
    EDGELM_TRY(std::string text, detail::read_file(layout.version_floor(), kMaxSlotRecordBytes));
    doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (!doc.is_object() || !doc.contains("versions") || !doc["versions"].is_object()) {
      return detail::security_error("'" + layout.version_floor().string() + "' is damaged");
    }
  }
  json& entry = doc["versions"][model_name];
  if (entry.is_number_unsigned() && entry.get<uint64_t>() >= version) return {};
  entry = version;
  const std::string text = doc.dump(2);
  return detail::write_file_atomic(layout.version_floor(), detail::as_bytes(text), 0644);
}

std::string slot_record_json(const tuf::Target& target) {
  return json{{"target", target.path},
              {"model_name", target.model_name},
              {"model_version", target.model_version},
              {"length", target.length},
              {"sha256", to_hex(target.sha256)}}
      .dump(2);
}

// Reads the slot a link points at; verify: hash the model against the slot record.
Result<SlotInfo> read_slot(const fs::path& link, bool verify) {
  std::error_code ec;
  if (!fs::is_symlink(fs::symlink_status(link, ec))) {
    return make_error(ErrorCode::kNotFound,
                      "no model installed: '" + link.string() + "' does not exist");
  }
  const fs::path slot = link.parent_path() / fs::read_symlink(link, ec);
  if (ec)
    return make_error(ErrorCode::kIo, "cannot read link '" + link.string() + "': " + ec.message());
  EDGELM_TRY(std::string text, detail::read_file(slot / kSlotRecord, kMaxSlotRecordBytes));
  const json doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
  const std::string where = "slot record '" + (slot / kSlotRecord).string() + "'";
  if (!doc.is_object() || !doc.contains("target") || !doc["target"].is_string() ||
      !doc.contains("model_version") || !doc["model_version"].is_number_unsigned() ||
      !doc.contains("length") || !doc["length"].is_number_unsigned() || !doc.contains("sha256") ||
      !doc["sha256"].is_string()) {
    return make_error(ErrorCode::kInvalidFormat, where + ": missing or mistyped fields");
  }
  SlotInfo info;
  info.model_path = slot / kModelFile;
  info.target = doc["target"].get<std::string>();
  info.model_version = doc["model_version"].get<uint64_t>();
  info.length = doc["length"].get<uint64_t>();
  EDGELM_TRY(info.sha256, sha256_from_hex(doc["sha256"].get<std::string>(), where + ": sha256"));
  if (verify) {
    EDGELM_TRY(FileDigest digest, sha256_file(info.model_path));
    if (digest.size != info.length || digest.sha256 != info.sha256) {
      return detail::security_error("installed model '" + info.model_path.string() +
                                    "' does not match its slot record (size or sha256)");
    }
  }
  return info;
}

// A lock so two updates (or an update and a rollback) never interleave.
class StateLock {
 public:
  static Result<StateLock> acquire(const fs::path& dir) {
    StateLock lock;
    const fs::path path = dir / "lock";
    lock.fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lock.fd_ < 0) return detail::io_error(path, "cannot open lock file");
    if (::flock(lock.fd_, LOCK_EX | LOCK_NB) != 0) {
      return make_error(ErrorCode::kIo,
                        "another update or rollback is running on '" + dir.string() + "'");
    }
    return lock;
  }
  StateLock(StateLock&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  ~StateLock() {
    if (fd_ >= 0) ::close(fd_);
  }

 private:
  StateLock() = default;
  int fd_ = -1;
};

class Updater {
 public:
  Updater(const UpdateSettings& settings, Fetcher& fetcher, const UpdateOptions& options)
      : s_(settings), fetcher_(fetcher), o_(options), layout_{settings.state_dir} {}

  Result<UpdateOutcome> run() {
    if (!o_.gate)
      return make_error(ErrorCode::kInvalidArgument, "update: no validation gate given");
    if (s_.model_name.empty())
      return make_error(ErrorCode::kInvalidArgument, "update: no model name configured");
    EDGELM_CHECK(detail::create_dirs(layout_.metadata()));
    EDGELM_CHECK(detail::create_dirs(layout_.slots()));
    EDGELM_TRY(StateLock lock, StateLock::acquire(layout_.dir));
    now_ = o_.now ? o_.now() : static_cast<int64_t>(std::time(nullptr));
    EDGELM_CHECK(load_trusted());
    EDGELM_CHECK(update_root());
    EDGELM_CHECK(update_timestamp());
    EDGELM_CHECK(update_snapshot());
    EDGELM_CHECK(update_targets());
    return install();
  }

 private:
  Error refused(std::string_view check, const std::string& what) const {
    return detail::security_error("update refused: " + std::string(check) + ": " + what);
  }
  Status check_expiry(std::string_view file, int64_t expires) const {
    if (expires <= now_) {
      return refused("freeze", std::string(file) + " expired at " + tuf::format_time(expires) +
                                   " (a stale or frozen repository)");
    }
    return {};
  }

  // The role's payload from an envelope, if a threshold of the role's keys in `root` signed it.
  Result<std::string> verified_payload(std::string_view text, Role role,
                                       const tuf::RootMetadata& root,
                                       const std::string& source) const {
    EDGELM_TRY(Envelope envelope, parse_envelope(text, source));
    const tuf::RoleKeys& rk = root.roles.at(role);
    Status ok = verify_envelope(envelope, tuf::payload_type_for(role), root.keys_for(role),
                                rk.threshold, source);
    if (!ok) return refused("signature", ok.error().message);
    return std::move(envelope.payload);
  }

  Status save(Role role, std::string_view text) {
    const std::string name(tuf::role_name(role));
    return detail::write_file_atomic(layout_.metadata_file(role), detail::as_bytes(text), 0644,
                                     [&] { step(o_, name + "-temp-written"); });
  }

  // Previously trusted metadata that still verifies under the trusted root; absent otherwise (a
  // key rotation makes old timestamp/snapshot metadata unverifiable: TUF's fast-forward recovery).
  template <class Meta, class Parse>
  std::optional<Meta> load_local(Role role, Parse parse) const {
    auto text = detail::read_file(layout_.metadata_file(role), s_.max_metadata_bytes);
    if (!text) return std::nullopt;
    auto payload = verified_payload(*text, role, root_,
                                    "trusted " + std::string(tuf::role_name(role)) + ".json");
    if (!payload) return std::nullopt;
    auto meta = parse(*payload, "trusted " + std::string(tuf::role_name(role)) + ".json");
    if (!meta) return std::nullopt;
    return std::move(*meta);
  }

  Status load_trusted() {
    auto text = detail::read_file(layout_.metadata_file(Role::kRoot), s_.max_metadata_bytes);
    if (!text && text.error().code == ErrorCode::kNotFound) {
      if (s_.bootstrap_root.empty()) {
        return make_error(ErrorCode::kNotFound, "no trusted root in '" +
                                                    layout_.metadata().string() +
                                                    "' and no bootstrap root.json configured");
      }
      text = detail::read_file(s_.bootstrap_root, s_.max_metadata_bytes);
      if (!text) return text.error();
      EDGELM_CHECK(load_root_self_signed(*text, s_.bootstrap_root.string()));
      return save(Role::kRoot, *text);
    }
    if (!text) return text.error();
    EDGELM_CHECK(load_root_self_signed(*text, "trusted root.json"));
    timestamp_ = load_local<tuf::TimestampMetadata>(Role::kTimestamp, tuf::parse_timestamp);
    snapshot_ = load_local<tuf::SnapshotMetadata>(Role::kSnapshot, tuf::parse_snapshot);
    return {};
  }

  Status load_root_self_signed(std::string_view text, const std::string& source) {
    EDGELM_TRY(Envelope envelope, parse_envelope(text, source));
    EDGELM_TRY(root_, tuf::parse_root(envelope.payload, source));
    Status ok =
        verify_envelope(envelope, tuf::payload_type_for(Role::kRoot), root_.keys_for(Role::kRoot),
                        root_.roles.at(Role::kRoot).threshold, source);
    if (!ok) return refused("signature", ok.error().message);
    return {};
  }

  // TUF 5.3: walk the chain of roots N+1, N+2, ...; each must be signed by a threshold of the
  // trusted root's keys and of its own, and carry exactly the next version number.
  Status update_root() {
    for (uint32_t i = 0; i < s_.max_root_rotations; ++i) {
      const uint64_t next = root_.version + 1;
      const std::string name = std::to_string(next) + ".root.json";
      auto text = fetcher_.fetch(name, s_.max_metadata_bytes);
      if (!text && text.error().code == ErrorCode::kNotFound) break;
      if (!text) return text.error();
      EDGELM_TRY(Envelope envelope, parse_envelope(*text, name));
      const auto& old_rk = root_.roles.at(Role::kRoot);
      Status by_old =
          verify_envelope(envelope, tuf::payload_type_for(Role::kRoot), root_.keys_for(Role::kRoot),
                          old_rk.threshold,
                          name + " (keys of trusted root v" + std::to_string(root_.version) + ")");
      if (!by_old) return refused("root rotation", by_old.error().message);
      EDGELM_TRY(tuf::RootMetadata candidate, tuf::parse_root(envelope.payload, name));
      Status by_new = verify_envelope(
          envelope, tuf::payload_type_for(Role::kRoot), candidate.keys_for(Role::kRoot),
          candidate.roles.at(Role::kRoot).threshold, name + " (its own keys)");
      if (!by_new) return refused("root rotation", by_new.error().message);
      if (candidate.version != next) {
        return refused("root rotation", name + " has version " + std::to_string(candidate.version) +
                                            ", expected " + std::to_string(next));
      }
      EDGELM_CHECK(save(Role::kRoot, *text));
      root_ = std::move(candidate);
      step(o_, "root-saved");
      // Metadata signed by keys the new root no longer trusts is dropped.
      timestamp_ = load_local<tuf::TimestampMetadata>(Role::kTimestamp, tuf::parse_timestamp);
      snapshot_ = load_local<tuf::SnapshotMetadata>(Role::kSnapshot, tuf::parse_snapshot);
    }
    return check_expiry("root.json v" + std::to_string(root_.version), root_.expires);
  }

  Status update_timestamp() {
    EDGELM_TRY(std::string text, fetcher_.fetch("timestamp.json", s_.max_metadata_bytes));
    EDGELM_TRY(std::string payload,
               verified_payload(text, Role::kTimestamp, root_, "timestamp.json"));
    EDGELM_TRY(tuf::TimestampMetadata fresh, tuf::parse_timestamp(payload, "timestamp.json"));
    if (timestamp_) {
      if (fresh.version < timestamp_->version) {
        return refused("rollback", "timestamp.json version " + std::to_string(fresh.version) +
                                       " is older than the trusted version " +
                                       std::to_string(timestamp_->version));
      }
      if (fresh.snapshot.version < timestamp_->snapshot.version) {
        return refused("rollback", "timestamp.json names snapshot version " +
                                       std::to_string(fresh.snapshot.version) +
                                       ", older than the trusted " +
                                       std::to_string(timestamp_->snapshot.version));
      }
    }
    EDGELM_CHECK(check_expiry("timestamp.json", fresh.expires));
    EDGELM_CHECK(save(Role::kTimestamp, text));
    timestamp_ = fresh;
    step(o_, "timestamp-saved");
    return {};
  }

  // A metadata file whose length and hash a higher role declared.
  Result<std::string> fetch_declared(const std::string& name, const tuf::MetaFile& declared,
                                     const std::string& declared_by) {
    EDGELM_TRY(std::string text, fetcher_.fetch(name, declared.length));
    if (text.size() != declared.length || sha256(text) != declared.sha256) {
      return refused("mix-and-match",
                     name + " does not match the length and sha256 " + declared_by + " declares");
    }
    return text;
  }

  Status update_snapshot() {
    EDGELM_TRY(std::string text,
               fetch_declared("snapshot.json", timestamp_->snapshot, "timestamp.json"));
    EDGELM_TRY(std::string payload,
               verified_payload(text, Role::kSnapshot, root_, "snapshot.json"));
    EDGELM_TRY(tuf::SnapshotMetadata fresh, tuf::parse_snapshot(payload, "snapshot.json"));
    if (fresh.version != timestamp_->snapshot.version) {
      return refused("mix-and-match", "snapshot.json has version " + std::to_string(fresh.version) +
                                          " but timestamp.json names version " +
                                          std::to_string(timestamp_->snapshot.version));
    }
    if (snapshot_ && (fresh.version < snapshot_->version ||
                      fresh.targets.version < snapshot_->targets.version)) {
      return refused("rollback", "snapshot.json (version " + std::to_string(fresh.version) +
                                     ", targets " + std::to_string(fresh.targets.version) +
                                     ") is older than the trusted one (version " +
                                     std::to_string(snapshot_->version) + ", targets " +
                                     std::to_string(snapshot_->targets.version) + ")");
    }
    EDGELM_CHECK(check_expiry("snapshot.json", fresh.expires));
    EDGELM_CHECK(save(Role::kSnapshot, text));
    snapshot_ = fresh;
    step(o_, "snapshot-saved");
    return {};
  }

  Status update_targets() {
    EDGELM_TRY(std::string text,
               fetch_declared("targets.json", snapshot_->targets, "snapshot.json"));
    EDGELM_TRY(std::string payload, verified_payload(text, Role::kTargets, root_, "targets.json"));
    EDGELM_TRY(tuf::TargetsMetadata fresh, tuf::parse_targets(payload, "targets.json"));
    if (fresh.version != snapshot_->targets.version) {
      return refused("mix-and-match", "targets.json has version " + std::to_string(fresh.version) +
                                          " but snapshot.json names version " +
                                          std::to_string(snapshot_->targets.version));
    }
    EDGELM_CHECK(check_expiry("targets.json", fresh.expires));
    EDGELM_CHECK(save(Role::kTargets, text));
    targets_ = std::move(fresh);
    step(o_, "targets-saved");
    return {};
  }

  Result<UpdateOutcome> install() {
    const tuf::Target* best = nullptr;
    for (const auto& t : targets_.targets) {
      if (t.model_name == s_.model_name &&
          (best == nullptr || t.model_version > best->model_version))
        best = &t;
    }
    if (best == nullptr) {
      return make_error(ErrorCode::kNotFound,
                        "the update repository has no target for model '" + s_.model_name + "'");
    }
    std::optional<SlotInfo> current;
    if (auto active = active_model(layout_.dir, /*verify=*/true)) {
      current = std::move(*active);
    } else if (active.error().code != ErrorCode::kNotFound) {
      return std::move(active).error();
    }
    if (current) {
      if (best->model_version < current->model_version) {
        return refused("anti-rollback", "model '" + s_.model_name + "' version " +
                                            std::to_string(best->model_version) +
                                            " is lower than the installed version " +
                                            std::to_string(current->model_version));
      }
      if (best->model_version == current->model_version) {
        if (best->sha256 != current->sha256) {
          return refused("anti-rollback",
                         "model '" + s_.model_name + "' version " +
                             std::to_string(best->model_version) +
                             " is installed with different content than the repository lists");
        }
        return UpdateOutcome{false, current->target, current->model_version, current->model_path,
                             ""};
      }
    }

    EDGELM_TRY(const uint64_t floor, read_version_floor(layout_, s_.model_name));
    if (best->model_version < floor) {
      return refused("anti-rollback", "model '" + s_.model_name + "' version " +
                                          std::to_string(best->model_version) +
                                          " is lower than version " + std::to_string(floor) +
                                          ", which this device has already installed");
    }

    const std::string slot_name =
        "v" + std::to_string(best->model_version) + "-" + to_hex(best->sha256).substr(0, 16);
    const fs::path slot = layout_.slots() / slot_name;
    EDGELM_CHECK(remove_unreferenced_slots());
    std::error_code ec;
    // A slot that survived remove_unreferenced_slots is `previous` (after a rollback): reuse it if
    // intact.
    bool reused = false;
    if (fs::exists(slot, ec)) {
      auto digest = sha256_file(slot / kModelFile);
      if (!digest || digest->size != best->length || digest->sha256 != best->sha256) {
        return detail::security_error("slot '" + slot.string() +
                                      "' is damaged; run edgelm update --rollback first");
      }
      reused = true;
    } else {
      EDGELM_CHECK(stage(*best, slot_name));
    }
    step(o_, "slot-staged");

    const fs::path candidate = slot / kModelFile;
    const fs::path* current_path = current ? &current->model_path : nullptr;
    EDGELM_TRY(GateVerdict verdict, o_.gate(candidate, current_path));
    if (!verdict.pass) {
      if (!reused) fs::remove_all(slot, ec);
      return refused("validation gate", "candidate '" + best->path + "' (model version " +
                                            std::to_string(best->model_version) +
                                            ") failed: " + verdict.summary);
    }
    step(o_, "validated");
    EDGELM_CHECK(raise_version_floor(layout_, s_.model_name, best->model_version));
    step(o_, "floor-raised");

    if (current) {
      EDGELM_CHECK(replace_symlink(layout_.previous(), fs::read_symlink(layout_.active()), &o_,
                                   "previous-temp-linked"));
      step(o_, "previous-linked");
    }
    EDGELM_CHECK(replace_symlink(layout_.active(), fs::path("slots") / slot_name, &o_,
                                 "active-temp-linked"));
    step(o_, "activated");
    EDGELM_CHECK(remove_unreferenced_slots());
    step(o_, "cleaned");
    return UpdateOutcome{true, best->path, best->model_version, candidate, verdict.summary};
  }

  // Downloads into staging/, checks length and hash, records the slot, then moves it into slots/.
  Status stage(const tuf::Target& target, const std::string& slot_name) {
    std::error_code ec;
    fs::remove_all(layout_.staging(), ec);
    EDGELM_CHECK(detail::create_dirs(layout_.staging() / slot_name));
    const fs::path staged = layout_.staging() / slot_name;
    bool started = false;
    EDGELM_CHECK(
        fetcher_.fetch_to_file("targets/" + target.path, target.length, staged / kModelFile, [&] {
          if (!std::exchange(started, true)) step(o_, "download-started");
        }));
    step(o_, "downloaded");
    EDGELM_TRY(FileDigest digest, sha256_file(staged / kModelFile));
    if (digest.size != target.length || digest.sha256 != target.sha256) {
      return refused("arbitrary package",
                     "targets/" + target.path + " (" + std::to_string(digest.size) +
                         " bytes, sha256 " + to_hex(digest.sha256) +
                         ") does not match targets.json (" + std::to_string(target.length) +
                         " bytes, sha256 " + to_hex(target.sha256) + ")");
    }
    const std::string record = slot_record_json(target);
    EDGELM_CHECK(detail::write_file_atomic(staged / kSlotRecord, detail::as_bytes(record), 0644));
    if (::rename(staged.c_str(), (layout_.slots() / slot_name).c_str()) != 0) {
      return detail::io_error(layout_.slots() / slot_name,
                              "cannot move the staged slot into place");
    }
    EDGELM_CHECK(detail::fsync_path(layout_.slots()));
    return detail::fsync_path(layout_.staging());
  }

  // Slots no link names: failed or interrupted installs and models older than `previous`.
  Status remove_unreferenced_slots() {
    std::set<fs::path> keep;
    std::error_code ec;
    for (const fs::path& link : {layout_.active(), layout_.previous()}) {
      if (fs::is_symlink(fs::symlink_status(link, ec)))
        keep.insert(fs::read_symlink(link, ec).filename());
    }
    for (const auto& entry : fs::directory_iterator(layout_.slots(), ec)) {
      if (!keep.contains(entry.path().filename())) fs::remove_all(entry.path(), ec);
    }
    return {};
  }

  const UpdateSettings& s_;
  Fetcher& fetcher_;
  const UpdateOptions& o_;
  Layout layout_;
  int64_t now_ = 0;
  tuf::RootMetadata root_;
  std::optional<tuf::TimestampMetadata> timestamp_;
  std::optional<tuf::SnapshotMetadata> snapshot_;
  tuf::TargetsMetadata targets_;
};

}  // namespace

Result<UpdateOutcome> run_update(const UpdateSettings& settings, Fetcher& fetcher,
                                 const UpdateOptions& options) {
  return Updater(settings, fetcher, options).run();
}

Result<SlotInfo> active_model(const fs::path& state_dir, bool verify) {
  return read_slot(Layout{state_dir}.active(), verify);
}

Result<SlotInfo> previous_model(const fs::path& state_dir, bool verify) {
  return read_slot(Layout{state_dir}.previous(), verify);
}

Result<SlotInfo> rollback(const fs::path& state_dir) {
  const Layout layout{state_dir};
  EDGELM_TRY(StateLock lock, StateLock::acquire(state_dir));
  auto previous = previous_model(state_dir, /*verify=*/true);
  if (!previous) {
    if (previous.error().code == ErrorCode::kNotFound) {
      return make_error(ErrorCode::kNotFound, "nothing to roll back to: no previous model in '" +
                                                  state_dir.string() + "'");
    }
    return std::move(previous).error();
  }
  std::error_code ec;
  const fs::path old_active = fs::read_symlink(layout.active(), ec);
  if (ec)
    return make_error(ErrorCode::kNotFound, "no active model in '" + state_dir.string() + "'");
  const fs::path old_previous = fs::read_symlink(layout.previous(), ec);
  EDGELM_CHECK(replace_symlink(layout.active(), old_previous, nullptr, ""));
  EDGELM_CHECK(replace_symlink(layout.previous(), old_active, nullptr, ""));
  return previous;
}

}  // namespace edgelm::security
