// Over-the-air model updates following The Update Framework: the device keeps trusted metadata and
// model slots in a state folder, fetches signed metadata and a model from an update repository,
// stages the model in a new slot, runs a validation gate, and switches atomically.
//
// State folder:
//   metadata/{root,timestamp,snapshot,targets}.json   last trusted metadata (DSSE envelopes)
//   slots/<model_version>-<sha256 prefix>/model.gguf  installed models, each with slot.json
//   active -> slots/...    symlink replaced by rename(2): the model to serve
//   previous -> slots/...  the model before it (for rollback)
//   staging/               partial downloads (removed at the start of each update)
// kill -9 at any moment leaves `active` naming a complete, verified slot: slots are written and
// fsynced before any link points at them, links are swapped by rename, and slots are deleted only
// when no link names them.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "edgelm/error.h"
#include "edgelm/security/tuf_metadata.h"

namespace edgelm::security {

// Fetches files of an update repository, never reading more than `max_bytes` of one.
class Fetcher {
 public:
  virtual ~Fetcher() = default;
  // kNotFound when the repository has no such file; kSecurity when it is longer than max_bytes.
  virtual Result<std::string> fetch(const std::string& path, uint64_t max_bytes) = 0;
  // Streams into `out`, calling on_progress after each piece written.
  virtual Status fetch_to_file(const std::string& path, uint64_t max_bytes, const std::filesystem::path& out,
                               const std::function<void()>& on_progress) = 0;
};

// "http://host:port/prefix" (https too). Reads time out after `timeout_seconds` without data.
Result<std::unique_ptr<Fetcher>> make_http_fetcher(const std::string& base_url, int timeout_seconds = 10);

// The validation gate's verdict on a staged candidate.
struct GateVerdict {
  bool pass = false;
  std::string summary;  // scores and thresholds, for logs and errors
};
// Scores `candidate` against `current` (nullptr on a first install) and decides pass/fail.
using ValidationGate =
    std::function<Result<GateVerdict>(const std::filesystem::path& candidate, const std::filesystem::path* current)>;

struct UpdateSettings {
  std::filesystem::path state_dir;
  std::string model_name;                // which targets (custom.model_name) this device runs
  std::filesystem::path bootstrap_root;  // trusted root.json shipped with the device (first run)
  uint64_t max_metadata_bytes = 1 << 20;
  uint32_t max_root_rotations = 64;  // per update run
};

struct UpdateOptions {
  ValidationGate gate;  // required
  // Called at every step that changes state or finishes a phase (tests kill the process here).
  std::function<void(std::string_view step)> on_step;
  std::function<int64_t()> now;  // default: the system clock
};

struct UpdateOutcome {
  bool installed = false;  // false: the active model is already the newest
  std::string target;
  uint64_t model_version = 0;
  std::filesystem::path model_path;  // the active model after the update
  std::string gate_summary;
};

Result<UpdateOutcome> run_update(const UpdateSettings& settings, Fetcher& fetcher, const UpdateOptions& options);

struct SlotInfo {
  std::filesystem::path model_path;
  std::string target;
  uint64_t model_version = 0;
  Sha256 sha256{};
  uint64_t length = 0;
};

// The active model, checked against its slot record (size and SHA-256) unless verify is false.
Result<SlotInfo> active_model(const std::filesystem::path& state_dir, bool verify = true);
Result<SlotInfo> previous_model(const std::filesystem::path& state_dir, bool verify = true);
// Makes the previous model active again (and the active one previous).
Result<SlotInfo> rollback(const std::filesystem::path& state_dir);

}  // namespace edgelm::security
