// Over-the-air updates (TUF): a repository served from loopback, every attack in the issue, the
// validation gate, rollback, and a crash (SIGKILL) at every step of an update.
#include "edgelm/security/update.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>

#include "edgelm/gguf.h"
#include "edgelm/model.h"
#include "edgelm/security/update_repo.h"
#include "security_test_util.h"

namespace edgelm::security {
namespace {

namespace fs = std::filesystem;
using test::read_bytes;
using test::TempDir;
using test::write_bytes;
using tuf::Role;

std::vector<int32_t> greedy_tokens(const fs::path& path, int n) {
  auto model = model::Model::load(path);
  if (!model) return {};
  auto context = model::Context::create(**model);
  if (!context) return {};
  std::vector<int32_t> out;
  std::vector<int32_t> next = {1};  // BOS
  for (int i = 0; i < n; ++i) {
    auto logits = (*context)->decode(next);
    if (!logits) return {};
    next = {
        static_cast<int32_t>(std::max_element(logits->begin(), logits->end()) - logits->begin())};
    out.push_back(next[0]);
  }
  return out;
}

// A real gate: greedy decoding from BOS with the candidate must agree with the current model on at
// least 75% of 12 tokens (a first install must just produce tokens).
Result<GateVerdict> greedy_agreement_gate(const fs::path& candidate, const fs::path* current) {
  constexpr int kTokens = 12;
  const auto cand = greedy_tokens(candidate, kTokens);
  if (cand.size() != kTokens) return GateVerdict{false, "candidate does not run"};
  if (current == nullptr) return GateVerdict{true, "first install: candidate runs"};
  const auto cur = greedy_tokens(*current, kTokens);
  int same = 0;
  for (int i = 0; i < kTokens; ++i) same += cand[i] == cur[i];
  const double agreement = static_cast<double>(same) / kTokens;
  return GateVerdict{agreement >= 0.75,
                     "greedy agreement " + std::to_string(agreement) + " (min 0.75)"};
}

int64_t now() {
  return static_cast<int64_t>(std::time(nullptr));
}
constexpr int64_t kYear = 365 * 24 * 3600;

class Update : public ::testing::Test {
 protected:
  void SetUp() override {
    for (auto* key : {&root_key_, &targets_key_, &snapshot_key_, &timestamp_key_, &stranger_key_}) {
      *key = std::make_unique<SigningKey>(std::move(SigningKey::generate().value()));
    }
    make_models();
    builder_.set_role_keys(Role::kRoot, {root_key_->public_key()}, 1);
    builder_.set_role_keys(Role::kTargets, {targets_key_->public_key()}, 1);
    builder_.set_role_keys(Role::kSnapshot, {snapshot_key_->public_key()}, 1);
    builder_.set_role_keys(Role::kTimestamp, {timestamp_key_->public_key()}, 1);
    const SigningKey* root_signers[] = {root_key_.get()};
    ASSERT_TRUE(builder_.publish_root(root_signers, now() + kYear));
    fs::copy_file(repo() / "1.root.json", dir_ / "shipped-root.json");
    ASSERT_TRUE(builder_.add_target(v1_, "stories-1.gguf", "stories", 1));
    ASSERT_TRUE(publish());

    server_ = std::make_unique<test::LoopbackServer>(repo());
    settings_.state_dir = device();
    settings_.model_name = "stories";
    settings_.bootstrap_root = dir_ / "shipped-root.json";
    options_.gate = greedy_agreement_gate;

    auto first = update();
    ASSERT_TRUE(first) << first.error().to_string();
    ASSERT_TRUE(first->installed);
    EXPECT_EQ(first->model_version, 1u);
  }

  // v2 behaves like v1 (only a metadata key differs); "bad" has its output projection negated.
  void make_models() {
    v1_ = dir_ / "v1.gguf";
    fs::copy_file(test::stories_model(), v1_);
    auto file = format::GgufFile::open(v1_);
    ASSERT_TRUE(file);
    auto writer = format::GgufWriter::from_file(*file);
    writer.set("general.version", format::GgufValue::string("2"));
    v2_ = dir_ / "v2.gguf";
    ASSERT_TRUE(writer.write(v2_));
    std::string bytes = read_bytes(v1_);
    const auto* out = file->find_tensor("output.weight");
    ASSERT_NE(out, nullptr);
    const size_t begin = file->data_offset() + out->offset;
    for (size_t i = begin; i < begin + out->n_bytes; i += 4)
      bytes[i + 3] ^= static_cast<char>(0x80);  // sign bit
    bad_ = dir_ / "bad.gguf";
    write_bytes(bad_, bytes);
  }

  fs::path repo() const { return dir_ / "repo"; }
  fs::path device() const { return dir_ / "device"; }

  Status publish(int64_t expires = 0) {
    const SigningKey* t[] = {targets_key_.get()};
    const SigningKey* s[] = {snapshot_key_.get()};
    const SigningKey* ts[] = {timestamp_key_.get()};
    return builder_.publish(t, s, ts, expires != 0 ? expires : now() + kYear);
  }
  Status publish_v2(const fs::path& file) {
    EDGELM_CHECK(builder_.add_target(file, "stories-2.gguf", "stories", 2));
    return publish();
  }

  Result<UpdateOutcome> update() {
    auto fetcher = make_http_fetcher(server_->url());
    if (!fetcher) return fetcher.error();
    return run_update(settings_, **fetcher, options_);
  }

  // The update fails naming `check`, and the active model is still `version`, intact.
  void expect_refused(const std::string& check, uint64_t version = 1) {
    auto r = update();
    ASSERT_FALSE(r) << "update succeeded; expected a refusal naming '" << check << "'";
    EXPECT_NE(r.error().message.find(check), std::string::npos) << r.error().to_string();
    expect_active(version);
  }
  void expect_active(uint64_t version) {
    auto active = active_model(device());
    ASSERT_TRUE(active) << active.error().to_string();
    EXPECT_EQ(active->model_version, version);
    const auto expected = sha256_file(version == 1 ? v1_ : v2_);
    ASSERT_TRUE(expected);
    EXPECT_EQ(active->sha256, expected->sha256);
    EXPECT_TRUE(format::GgufFile::open(active->model_path));
  }

  TempDir dir_;
  fs::path v1_, v2_, bad_;
  std::unique_ptr<SigningKey> root_key_, targets_key_, snapshot_key_, timestamp_key_, stranger_key_;
  tuf::RepositoryBuilder builder_{dir_ / "repo"};
  std::unique_ptr<test::LoopbackServer> server_;
  UpdateSettings settings_;
  UpdateOptions options_;
};

TEST_F(Update, InstallsNewVersionKeepsPreviousAndRollsBack) {
  auto same = update();
  ASSERT_TRUE(same) << same.error().to_string();
  EXPECT_FALSE(same->installed) << "nothing new";

  ASSERT_TRUE(publish_v2(v2_));
  auto r = update();
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_TRUE(r->installed);
  EXPECT_NE(r->gate_summary.find("greedy agreement 1.0"), std::string::npos) << r->gate_summary;
  expect_active(2);
  auto previous = previous_model(device());
  ASSERT_TRUE(previous);
  EXPECT_EQ(previous->model_version, 1u);

  auto back = rollback(device());
  ASSERT_TRUE(back) << back.error().to_string();
  expect_active(1);
  EXPECT_EQ(previous_model(device())->model_version, 2u);
  // The next update re-installs version 2 from the kept slot.
  auto again = update();
  ASSERT_TRUE(again) << again.error().to_string();
  expect_active(2);
}

TEST_F(Update, RollbackToOldMetadataIsRefused) {
  std::map<std::string, std::string> old;
  for (const char* f : {"timestamp.json", "snapshot.json", "targets.json"})
    old[f] = read_bytes(repo() / f);
  ASSERT_TRUE(publish_v2(v2_));
  ASSERT_TRUE(update());
  for (const auto& [name, bytes] : old) write_bytes(repo() / name, bytes);
  expect_refused("rollback: timestamp.json version 1 is older than the trusted version 2", 2);
}

TEST_F(Update, FreezeWithExpiredMetadataIsRefused) {
  ASSERT_TRUE(builder_.add_target(v2_, "stories-2.gguf", "stories", 2));
  ASSERT_TRUE(publish(now() - 60));
  expect_refused("freeze: timestamp.json expired");
}

TEST_F(Update, MixAndMatchIsRefused) {
  ASSERT_TRUE(publish_v2(v2_));
  const std::string targets_v2 = read_bytes(repo() / "targets.json");
  ASSERT_TRUE(builder_.add_target(bad_, "stories-3.gguf", "stories", 3));
  ASSERT_TRUE(publish());
  write_bytes(repo() / "targets.json", targets_v2);  // validly signed, but not what snapshot names
  expect_refused("mix-and-match: targets.json does not match");
}

TEST_F(Update, ArbitraryPackageIsRefused) {
  ASSERT_TRUE(publish_v2(v2_));
  std::string evil = read_bytes(bad_);
  evil.resize(fs::file_size(v2_), '\0');  // same length, other bytes
  write_bytes(repo() / "targets" / "stories-2.gguf", evil);
  expect_refused("arbitrary package: targets/stories-2.gguf");
  EXPECT_FALSE(fs::exists(device() / "staging" / "v2")) << "nothing of it is kept";
}

TEST_F(Update, EndlessDataIsCutOff) {
  ASSERT_TRUE(publish_v2(v2_));
  fs::remove(repo() / "targets" / "stories-2.gguf");
  server_->server().Get("/targets/stories-2.gguf",
                        [](const httplib::Request&, httplib::Response& res) {
                          res.set_chunked_content_provider(
                              "application/octet-stream", [](size_t, httplib::DataSink& sink) {
                                static const std::string block(64 * 1024, 'A');
                                return sink.write(block.data(), block.size());  // never ends
                              });
                        });
  expect_refused("longer than the " + std::to_string(fs::file_size(v2_)) +
                 " bytes the metadata allows");
}

TEST_F(Update, EndlessMetadataIsCutOff) {
  settings_.max_metadata_bytes = 256 * 1024;
  fs::remove(repo() / "timestamp.json");
  server_->server().Get("/timestamp.json", [](const httplib::Request&, httplib::Response& res) {
    res.set_chunked_content_provider("application/json", [](size_t, httplib::DataSink& sink) {
      static const std::string block(16 * 1024, ' ');
      return sink.write(block.data(), block.size());
    });
  });
  expect_refused("timestamp.json': longer than the 262144 bytes");
}

TEST_F(Update, TamperedSignatureIsRefused) {
  ASSERT_TRUE(publish_v2(v2_));
  std::string text = read_bytes(repo() / "timestamp.json");
  const size_t at = text.find("\"sig\": \"") + 10;
  text[at] = text[at] == 'A' ? 'B' : 'A';
  write_bytes(repo() / "timestamp.json", text);
  expect_refused("bad signature");
}

TEST_F(Update, TamperedPayloadIsRefused) {
  ASSERT_TRUE(publish_v2(v2_));
  auto env = parse_envelope(read_bytes(repo() / "timestamp.json"), "timestamp.json");
  ASSERT_TRUE(env);
  const size_t at = env->payload.find("\"version\": ");
  ASSERT_NE(at, std::string::npos);
  env->payload.insert(at + 11, "9");  // a higher version, signatures untouched
  write_bytes(repo() / "timestamp.json", envelope_to_json(*env));
  expect_refused("bad signature");
}

TEST_F(Update, MissingSignaturesAreRefused) {
  ASSERT_TRUE(publish_v2(v2_));
  auto env = parse_envelope(read_bytes(repo() / "timestamp.json"), "timestamp.json");
  ASSERT_TRUE(env);
  env->signatures.clear();
  write_bytes(repo() / "timestamp.json", envelope_to_json(*env));
  expect_refused("no signatures");
}

TEST_F(Update, UntrustedKeyIsRefused) {
  ASSERT_TRUE(publish_v2(v2_));
  const std::string payload = parse_envelope(read_bytes(repo() / "timestamp.json"), "t")->payload;
  const SigningKey* stranger[] = {stranger_key_.get()};
  write_bytes(repo() / "timestamp.json", tuf::sign_metadata(Role::kTimestamp, payload, stranger));
  expect_refused("is not trusted");
}

TEST_F(Update, ThresholdNotMetIsRefused) {
  auto second = SigningKey::generate();
  ASSERT_TRUE(second);
  builder_.set_role_keys(Role::kTargets, {targets_key_->public_key(), second->public_key()}, 2);
  const SigningKey* root_signers[] = {root_key_.get()};
  ASSERT_TRUE(builder_.publish_root(root_signers, now() + kYear));
  ASSERT_TRUE(publish_v2(v2_));  // targets signed by one of the two keys
  expect_refused(
      "targets.json: signature check failed: 1 valid signature(s) from trusted keys, 2 required");

  const SigningKey* both[] = {targets_key_.get(), &*second};
  const SigningKey* s[] = {snapshot_key_.get()};
  const SigningKey* ts[] = {timestamp_key_.get()};
  ASSERT_TRUE(builder_.publish(both, s, ts, now() + kYear));
  auto r = update();
  ASSERT_TRUE(r) << r.error().to_string();
  expect_active(2);
}

TEST_F(Update, RootRotationReplacesKeys) {
  auto new_root = SigningKey::generate();
  auto new_timestamp = SigningKey::generate();
  ASSERT_TRUE(new_root && new_timestamp);
  builder_.set_role_keys(Role::kRoot, {new_root->public_key()}, 1);
  builder_.set_role_keys(Role::kTimestamp, {new_timestamp->public_key()}, 1);
  const SigningKey* both[] = {root_key_.get(), &*new_root};
  ASSERT_TRUE(builder_.publish_root(both, now() + kYear));
  timestamp_key_ = std::make_unique<SigningKey>(std::move(*new_timestamp));
  ASSERT_TRUE(publish_v2(v2_));
  auto r = update();
  ASSERT_TRUE(r) << r.error().to_string();
  expect_active(2);
  auto trusted = parse_envelope(read_bytes(device() / "metadata" / "root.json"), "root");
  ASSERT_TRUE(trusted);
  EXPECT_NE(trusted->payload.find("\"version\": 2"), std::string::npos);
}

TEST_F(Update, RootRotationNotSignedByTheOldRootIsRefused) {
  auto new_root = SigningKey::generate();
  ASSERT_TRUE(new_root);
  builder_.set_role_keys(Role::kRoot, {new_root->public_key()}, 1);
  const SigningKey* only_new[] = {&*new_root};
  ASSERT_TRUE(builder_.publish_root(only_new, now() + kYear));
  ASSERT_TRUE(publish_v2(v2_));
  expect_refused("root rotation: 2.root.json (keys of trusted root v1): signature check failed");
}

TEST_F(Update, RootRotationNotSignedByItsOwnKeysIsRefused) {
  auto new_root = SigningKey::generate();
  ASSERT_TRUE(new_root);
  builder_.set_role_keys(Role::kRoot, {new_root->public_key()}, 1);
  const SigningKey* only_old[] = {root_key_.get()};
  ASSERT_TRUE(builder_.publish_root(only_old, now() + kYear));
  expect_refused("root rotation: 2.root.json (its own keys)");
}

TEST_F(Update, RootRotationSkippingAVersionIsRefused) {
  tuf::RootMetadata skipped = builder_.root();
  skipped.version = 3;
  const SigningKey* signers[] = {root_key_.get()};
  write_bytes(repo() / "2.root.json",
              tuf::sign_metadata(Role::kRoot, tuf::to_json(skipped), signers));
  expect_refused("root rotation: 2.root.json has version 3, expected 2");
}

TEST_F(Update, ExpiredRootIsRefused) {
  const SigningKey* signers[] = {root_key_.get()};
  ASSERT_TRUE(builder_.publish_root(signers, now() - 1));
  expect_refused("freeze: root.json v2 expired");
}

TEST_F(Update, LowerModelVersionIsRefused) {
  ASSERT_TRUE(publish_v2(v2_));
  ASSERT_TRUE(update());
  builder_.remove_target("stories-2.gguf");  // the repository now offers only version 1
  ASSERT_TRUE(publish());
  expect_refused("anti-rollback: model 'stories' version 1 is lower than the installed version 2",
                 2);
}

// After a rollback the active slot is older than what the device once ran; the repository must
// still not be able to push a version between the two.
TEST_F(Update, VersionBelowTheHighestEverInstalledIsRefusedAfterRollback) {
  ASSERT_TRUE(builder_.add_target(v2_, "stories-3.gguf", "stories", 3));
  ASSERT_TRUE(publish());
  ASSERT_TRUE(update());
  ASSERT_TRUE(rollback(device()));
  builder_.remove_target("stories-3.gguf");
  ASSERT_TRUE(publish_v2(v2_));
  expect_refused(
      "anti-rollback: model 'stories' version 2 is lower than version 3, which this device has "
      "already installed");
}

TEST_F(Update, CandidateFailingTheValidationGateIsNotActivated) {
  ASSERT_TRUE(publish_v2(bad_));
  expect_refused(
      "validation gate: candidate 'stories-2.gguf' (model version 2) failed: greedy agreement");
  size_t slots = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(device() / "slots")) ++slots;
  EXPECT_EQ(slots, 1u) << "the failed candidate's slot is removed";
}

// Runs an update in a child process that SIGKILLs itself at the k-th step; returns whether the
// child was killed (false: the update finished before reaching step k).
bool update_killed_at(const UpdateSettings& settings, UpdateOptions options, int k,
                      const std::string& url, std::string* killed_at) {
  int pipe_fds[2];
  if (::pipe(pipe_fds) != 0) return false;
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(pipe_fds[0]);
    int count = 0;
    options.on_step = [&](std::string_view step) {
      if (count++ == k) {
        const std::string name(step);
        (void)!::write(pipe_fds[1], name.data(), name.size());
        ::kill(::getpid(), SIGKILL);
      }
    };
    auto fetcher = make_http_fetcher(url);
    auto r = run_update(settings, **fetcher, options);
    ::_exit(r ? 0 : 3);
  }
  ::close(pipe_fds[1]);
  char buf[128];
  const ssize_t n = ::read(pipe_fds[0], buf, sizeof buf);
  ::close(pipe_fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (killed_at != nullptr) killed_at->assign(buf, n > 0 ? static_cast<size_t>(n) : 0);
  if (WIFEXITED(status)) {
    EXPECT_EQ(WEXITSTATUS(status), 0) << "update failed in the child";
  }
  return WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
}

TEST_F(Update, KillAtEveryStepLeavesAVerifiedActiveModel) {
  // The update being interrupted rotates the root key and installs version 2.
  auto new_root = SigningKey::generate();
  ASSERT_TRUE(new_root);
  builder_.set_role_keys(Role::kRoot, {new_root->public_key()}, 1);
  const SigningKey* both[] = {root_key_.get(), &*new_root};
  ASSERT_TRUE(builder_.publish_root(both, now() + kYear));
  ASSERT_TRUE(publish_v2(v2_));

  const fs::path pristine = dir_ / "device-before";
  fs::copy(device(), pristine, fs::copy_options::recursive | fs::copy_options::copy_symlinks);
  std::vector<std::string> steps;
  for (int k = 0; k < 64; ++k) {
    fs::remove_all(device());
    fs::copy(pristine, device(), fs::copy_options::recursive | fs::copy_options::copy_symlinks);
    std::string step;
    const bool killed = update_killed_at(settings_, options_, k, server_->url(), &step);
    if (!killed) break;
    steps.push_back(step);
    SCOPED_TRACE("killed at step " + std::to_string(k) + " (" + step + ")");
    auto active = active_model(device(), /*verify=*/true);
    ASSERT_TRUE(active) << active.error().to_string();
    ASSERT_TRUE(active->model_version == 1 || active->model_version == 2);
    ASSERT_TRUE(format::GgufFile::open(active->model_path));
    // The next run recovers and finishes the update.
    auto resumed = update();
    ASSERT_TRUE(resumed) << resumed.error().to_string();
    expect_active(2);
  }
  // Every state-changing step was hit.
  for (const char* expected :
       {"root-temp-written", "root-saved", "timestamp-saved", "snapshot-saved", "targets-saved",
        "download-started", "downloaded", "slot-staged", "validated", "floor-raised",
        "previous-temp-linked", "previous-linked", "active-temp-linked", "activated", "cleaned"}) {
    EXPECT_NE(std::find(steps.begin(), steps.end(), expected), steps.end()) << expected;
  }
}

}  // namespace
}  // namespace edgelm::security
