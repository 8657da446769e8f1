// End-to-end test of over-the-air updates through the tool only: `edgelm publish` keeps a TUF
// repository served over loopback HTTP, `edgelm update` installs from it through the CLI's own
// validation gate, with real candidates made by the tool (a q8_0 quantization that must pass the
// gate, a heavily pruned model that must fail it).
#include <gtest/gtest.h>
#include <httplib.h>

#include <ctime>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/run_command.h"
#include "common/test_paths.h"
#include "edgelm/security/update.h"

namespace edgelm::test {
namespace {

namespace fs = std::filesystem;

std::string edgelm_bin() {
  return shell_quote((binary_dir() / "apps" / "edgelm" / "edgelm").string());
}
fs::path stories() {
  return shared_models_dir() / "stories260K" / "stories260K.gguf";
}

// The reference continuation published with the model: the validation texts and labels come from
// it, not from our own runtime.
std::string reference_text() {
  std::ifstream in(shared_models_dir() / "stories260K" / "stories260K.greedy-from-bos.json");
  return nlohmann::json::parse(in)["text"].get<std::string>();
}

class LoopbackFolder {
 public:
  explicit LoopbackFolder(const fs::path& root) {
    server_.set_mount_point("/", root.string());
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
  }
  ~LoopbackFolder() {
    server_.stop();
    thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

 private:
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
};

class CliUpdate : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("edgelm-cli-update-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "device");
    auto init = run_command(edgelm_bin() + " publish init --repo " + shell_quote(repo().string()) +
                            " --keys " + shell_quote(keys().string()));
    ASSERT_EQ(init.exit_code, 0) << init.err;
    EXPECT_EQ(fs::status(keys() / "root.key").permissions() & fs::perms::group_all,
              fs::perms::none);
    fs::copy_file(repo() / "1.root.json", dir_ / "device" / "trusted-root.json");
    server_ = std::make_unique<LoopbackFolder>(dir_ / "repo");

    const std::string text = reference_text();
    std::ofstream(dir_ / "device" / "validation.txt") << text;
    // "... a little girl named" -> "Lily", "... she saw a big, red" -> "ball": the next words of
    // the reference continuation.
    std::ofstream tasks(dir_ / "device" / "validation.jsonl");
    for (const char* cue : {"named", "a big, red"}) {
      const size_t end = text.find(cue) + std::string(cue).size();
      const size_t next = text.find_first_of(" .,", end + 1);
      tasks << nlohmann::json{{"prompt", text.substr(0, end)},
                              {"answer", text.substr(end + 1, next - end - 1)}}
                   .dump()
            << "\n";
    }
    tasks.close();
    nlohmann::json config = {{"threads", 1},
                             {"update",
                              {{"state_dir", "state"},
                               {"model", "stories"},
                               {"trusted_root", "trusted-root.json"},
                               {"validation",
                                {{"text", "validation.txt"},
                                 {"tasks", "validation.jsonl"},
                                 {"window", 128},
                                 {"gate",
                                  {{"max_ppl_increase_pct", 2.0},
                                   {"min_top1_agreement", 0.9},
                                   {"min_accuracy", 1.0}}}}}}}};
    std::ofstream(config_path()) << config.dump();
  }
  void TearDown() override { fs::remove_all(dir_); }

  fs::path config_path() const { return dir_ / "device" / "edgelm.json"; }

  fs::path repo() const { return dir_ / "repo"; }
  fs::path keys() const { return dir_ / "publisher-keys"; }

  CommandResult publish_command(const std::string& args) {
    return run_command(edgelm_bin() + " publish " + args + " --repo " +
                       shell_quote(repo().string()) + " --keys " + shell_quote(keys().string()));
  }
  void publish(const fs::path& model, uint64_t version) {
    auto r = publish_command("add " + shell_quote(model.string()) + " --name stories --version " +
                             std::to_string(version));
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }

  CommandResult update(const std::string& extra = "") {
    return run_command(edgelm_bin() + " update --config " + shell_quote(config_path().string()) +
                       extra);
  }
  CommandResult update_from_repo() { return update(" --repo " + server_->url()); }

  uint64_t active_version() const {
    auto slot = security::active_model(dir_ / "device" / "state");
    return slot ? slot->model_version : 0;
  }

  CommandResult make_model(const std::string& command) {
    auto r = run_command(edgelm_bin() + " " + command);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r;
  }

  fs::path dir_;
  std::unique_ptr<LoopbackFolder> server_;
};

TEST_F(CliUpdate, GateAdmitsAFaithfulCandidateRefusesABrokenOneAndRollsBack) {
  publish(stories(), 1);
  auto first = update_from_repo();
  ASSERT_EQ(first.exit_code, 0) << first.err;
  EXPECT_NE(first.out.find("installed model version 1"), std::string::npos) << first.out;
  EXPECT_NE(first.out.find("accuracy 1.000"), std::string::npos)
      << "the labeled answer must hold: " << first.out;
  EXPECT_EQ(active_version(), 1u);

  auto again = update_from_repo();
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_NE(again.out.find("up to date"), std::string::npos) << again.out;

  // q8_0 keeps stories260K's greedy text and perplexity (docs/COMPRESSION.md: +0.02 %).
  const fs::path q8 = dir_ / "stories-q8_0.gguf";
  make_model("quantize " + shell_quote(stories().string()) + " " + shell_quote(q8.string()) +
             " --type q8_0");
  publish(q8, 2);
  auto second = update_from_repo();
  ASSERT_EQ(second.exit_code, 0) << second.err << second.out;
  EXPECT_NE(second.out.find("installed model version 2"), std::string::npos) << second.out;
  EXPECT_NE(second.out.find("top-1 agreement"), std::string::npos)
      << "compared with the current model";
  EXPECT_EQ(active_version(), 2u);

  // Three quarters of every FFN removed: a valid, signed, hash-correct model that is much worse.
  const fs::path pruned = dir_ / "stories-pruned.gguf";
  make_model("prune " + shell_quote(stories().string()) + " " + shell_quote(pruned.string()) +
             " --ffn-ratio 0.75");
  publish(pruned, 3);
  auto third = update_from_repo();
  EXPECT_NE(third.exit_code, 0) << third.out;
  EXPECT_NE(third.err.find("validation gate"), std::string::npos) << third.err;
  EXPECT_NE(third.err.find("FAILED"), std::string::npos) << "names the threshold: " << third.err;
  EXPECT_EQ(active_version(), 2u) << "a refused candidate never becomes active";

  auto status = update(" --status");
  ASSERT_EQ(status.exit_code, 0) << status.err;
  EXPECT_NE(status.out.find("active: "), std::string::npos);
  EXPECT_NE(status.out.find("model version 2"), std::string::npos) << status.out;
  EXPECT_NE(status.out.find("model version 1"), std::string::npos)
      << "previous kept: " << status.out;

  auto back = update(" --rollback");
  ASSERT_EQ(back.exit_code, 0) << back.err;
  EXPECT_EQ(active_version(), 1u);

  // The device runs what is active: the original model's published greedy text.
  auto slot = security::active_model(dir_ / "device" / "state");
  ASSERT_TRUE(slot);
  auto run = run_command(edgelm_bin() + " run -m " + shell_quote(slot->model_path.string()) +
                         " -p '' -n 20 --temp 0 --no-stats");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(reference_text().rfind(run.out.substr(0, 40), 0), 0u) << run.out;
}

TEST_F(CliUpdate, PublisherRefusesMistakes) {
  auto again = run_command(edgelm_bin() + " publish init --repo " + shell_quote(repo().string()) +
                           " --keys " + shell_quote(keys().string()));
  EXPECT_NE(again.exit_code, 0);
  EXPECT_NE(again.err.find("already holds an update repository"), std::string::npos) << again.err;
  auto traversal = publish_command("add " + shell_quote(stories().string()) +
                                   " --name stories --version 1 --path ../escape.gguf");
  EXPECT_NE(traversal.exit_code, 0);
  EXPECT_NE(traversal.err.find("plain file name"), std::string::npos) << traversal.err;
  EXPECT_FALSE(fs::exists(dir_ / "escape.gguf"));
  auto no_version = publish_command("add " + shell_quote(stories().string()) + " --name stories");
  EXPECT_NE(no_version.exit_code, 0);
  auto not_a_repo = run_command(edgelm_bin() + " publish refresh --repo " +
                                shell_quote((dir_ / "none").string()) + " --keys " +
                                shell_quote(keys().string()));
  EXPECT_NE(not_a_repo.exit_code, 0);
  EXPECT_NE(not_a_repo.err.find("is not an update repository"), std::string::npos)
      << not_a_repo.err;
}

TEST_F(CliUpdate, ConfigWithoutValidationIsRefused) {
  std::ofstream(config_path()) << R"({"update": {"state_dir": "state", "model": "stories"}})";
  auto r = update_from_repo();
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("'validation' is required"), std::string::npos) << r.err;
  EXPECT_EQ(active_version(), 0u);

  std::ofstream(config_path()) << R"({"update": {"state_dir": "state", "model": "stories",
      "validation": {"text": "validation.txt", "gate": {"min_top1_agreemnt": 0.9}}}})";
  auto typo = update_from_repo();
  EXPECT_NE(typo.exit_code, 0);
  EXPECT_NE(typo.err.find("min_top1_agreemnt"), std::string::npos) << typo.err;
  EXPECT_EQ(active_version(), 0u);
}

}  // namespace
}  // namespace edgelm::test
