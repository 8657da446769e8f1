// End-to-end tests of the edgelm tool on the real stories260K model.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "common/run_command.h"
#include "common/test_paths.h"

namespace edgelm::test {
namespace {

namespace fs = std::filesystem;

std::string edgelm_bin() { return shell_quote((binary_dir() / "apps" / "edgelm" / "edgelm").string()); }
fs::path stories() { return shared_models_dir() / "stories260K" / "stories260K.gguf"; }

nlohmann::json reference_decode() {
  std::ifstream in(shared_models_dir() / "stories260K" / "stories260K.greedy-from-bos.json");
  return nlohmann::json::parse(in);
}

fs::path temp_dir(const std::string& name) {
  fs::path dir = fs::temp_directory_path() / ("edgelm-cli-test-" + std::to_string(::getpid())) / name;
  fs::create_directories(dir);
  return dir;
}

std::string run_greedy(const std::string& model, const std::string& extra = "") {
  return edgelm_bin() + " run -m " + shell_quote(model) + " -p '' -n 256 --temp 0 --no-stats" + extra;
}

// From BOS, greedy decoding must reproduce the published stories260K continuation exactly.
TEST(Cli, GreedyRunReproducesReferenceText) {
  const auto ref = reference_decode();
  auto r = run_command(run_greedy(stories().string()));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, ref["text"].get<std::string>() + "\n");
}

TEST(Cli, NoMmapGivesTheSameText) {
  auto mapped = run_command(run_greedy(stories().string()));
  auto read = run_command(run_greedy(stories().string(), " --no-mmap"));
  ASSERT_EQ(read.exit_code, 0) << read.err;
  EXPECT_EQ(mapped.out, read.out);
}

TEST(Cli, ConfigFileIsHonoured) {
  const fs::path config = temp_dir("config") / "edgelm.json";
  std::ofstream(config) << R"({"quant_bits": 0, "use_mmap": false, "provider": "CPUExecutionProvider", "threads": 2})";
  auto r = run_command(run_greedy(stories().string(), " --config " + shell_quote(config.string())));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, reference_decode()["text"].get<std::string>() + "\n");
}

TEST(Cli, PrintsTokensPerSecond) {
  auto r = run_command(edgelm_bin() + " run -m " + shell_quote(stories().string()) +
                       " -p 'Once upon a time' -n 16 --seed 3");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("Once upon a time", 0), 0u) << r.out;
  EXPECT_NE(r.err.find("tokens/s"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("generated 16 tokens"), std::string::npos) << r.err;
}

TEST(Cli, SeededSamplingIsReproducible) {
  const std::string cmd = edgelm_bin() + " run -m " + shell_quote(stories().string()) +
                          " -p 'Once upon a time' -n 40 --temp 1.0 --top-k 0 --top-p 1 --min-p 0 --no-stats";
  auto a = run_command(cmd + " --seed 42");
  auto b = run_command(cmd + " --seed 42");
  auto c = run_command(cmd + " --seed 43");
  ASSERT_EQ(a.exit_code, 0) << a.err;
  EXPECT_EQ(a.out, b.out);
  EXPECT_NE(a.out, c.out);  // 40 tokens at temperature 1: two seeds agreeing throughout is implausible
}

TEST(Cli, StopStringEndsTheOutputBeforeIt) {
  auto r = run_command(run_greedy(stories().string(), " --stop ' named'"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, " Once upon a time, there was a little girl\n");
}

TEST(Cli, ContextFullIsAClearErrorUnlessShifting) {
  auto full = run_command(edgelm_bin() + " run -m " + shell_quote(stories().string()) +
                          " -p '' -n 64 --temp 0 --ctx 16");
  EXPECT_EQ(full.exit_code, 1);
  EXPECT_NE(full.err.find("context full"), std::string::npos) << full.err;

  auto shifted = run_command(edgelm_bin() + " run -m " + shell_quote(stories().string()) +
                             " -p '' -n 64 --temp 0 --ctx 16 --context-shift");
  ASSERT_EQ(shifted.exit_code, 0) << shifted.err;
  EXPECT_NE(shifted.err.find("generated 64 tokens"), std::string::npos) << shifted.err;
}

TEST(Cli, BadConfigNamesTheKey) {
  const fs::path config = temp_dir("badconfig") / "edgelm.json";
  std::ofstream(config) << R"({"use_mmap": true, "provider": "TensorrtExecutionProvider"})";
  auto r = run_command(run_greedy(stories().string(), " --config " + shell_quote(config.string())));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("provider"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("CPUExecutionProvider"), std::string::npos) << r.err;
}

TEST(Cli, GgufV1IsRefusedClearly) {
  auto r = run_command(run_greedy((shared_models_dir() / "stories260K" / "tinyllamas-stories-260k-f32.v1.gguf").string()));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("unsupported GGUF v1"), std::string::npos) << r.err;
}

TEST(Cli, MissingModelFileIsAnError) {
  auto r = run_command(run_greedy("/nonexistent/model.gguf"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("/nonexistent/model.gguf"), std::string::npos) << r.err;
}

TEST(Cli, DefaultModelIsFoundBesideTheRepository) {
  // Run from the repository root with no -m: ../shared/models/ holds stories260K.
  auto r = run_command("cd " + shell_quote(source_dir().string()) + " && env -u EDGELM_MODEL " + edgelm_bin() +
                       " run -p '' -n 256 --temp 0 --no-stats");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, reference_decode()["text"].get<std::string>() + "\n");
}

TEST(Cli, EdgelmModelVariableWinsAndMissingModelSaysWhatToDo) {
  const fs::path empty = temp_dir("empty");
  auto r = run_command("cd " + shell_quote(empty.string()) + " && EDGELM_MODEL=" +
                       shell_quote(stories().string()) + " " + edgelm_bin() + " run -p '' -n 4 --temp 0");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.rfind(" Once upon a time", 0), 0u) << r.out;

  auto none = run_command("cd " + shell_quote(empty.string()) + " && env -u EDGELM_MODEL " + edgelm_bin() +
                          " run -p '' -n 4");
  EXPECT_NE(none.exit_code, 0);
  EXPECT_NE(none.err.find("EDGELM_MODEL"), std::string::npos) << none.err;
  EXPECT_NE(none.err.find("-m"), std::string::npos) << none.err;
}

TEST(Cli, InspectJsonDescribesTheModel) {
  auto r = run_command(edgelm_bin() + " inspect --json " + shell_quote(stories().string()));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["version"], 3);
  EXPECT_EQ(j["tensors"].size(), 48u);
  std::map<std::string, nlohmann::json> meta;
  for (const auto& kv : j["metadata"]) meta[kv["key"]] = kv;
  EXPECT_EQ(meta["general.architecture"]["value"], "llama");
  EXPECT_EQ(meta["tokenizer.ggml.tokens"]["count"], 512);
  auto text = run_command(edgelm_bin() + " inspect " + shell_quote(stories().string()));
  ASSERT_EQ(text.exit_code, 0);
  EXPECT_NE(text.out.find("blk.0.attn_q.weight"), std::string::npos);
  EXPECT_NE(text.out.find("GGUF v3"), std::string::npos);
}

TEST(Cli, ChatAnswersOneMessage) {
  auto r = run_command(edgelm_bin() + " chat -m " + shell_quote(stories().string()) +
                       " -p 'Tell me a story' -n 24 --temp 0 --show-template");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("Tell me a story"), std::string::npos) << r.err;
  EXPECT_GT(r.out.size(), 10u);
}

// Quantized copies of the real model still tell the same story at the start.
TEST(Cli, QuantizedModelsStaySensible) {
  const fs::path dir = temp_dir("quant");
  for (const char* type : {"q8_0", "q4_0"}) {
    const fs::path out = dir / (std::string("stories260K-") + type + ".gguf");
    auto q = run_command(edgelm_bin() + " quantize " + shell_quote(stories().string()) + " " +
                         shell_quote(out.string()) + " --type " + type);
    ASSERT_EQ(q.exit_code, 0) << q.err;
    EXPECT_LT(fs::file_size(out), fs::file_size(stories())) << type;
    auto r = run_command(edgelm_bin() + " run -m " + shell_quote(out.string()) + " -p '' -n 24 --temp 0 --no-stats");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out.rfind(" Once upon a time", 0), 0u) << type << ": " << r.out;
  }
}

}  // namespace
}  // namespace edgelm::test

namespace edgelm::test {
namespace {

// An encrypted model runs from locked memory and gives the same text; the wrong key is refused.
TEST(CliSecurity, EncryptedModelRunsLikeThePlainOne) {
  const fs::path dir = temp_dir("encrypted");
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string key = (dir / "model.key").string();
  auto k = run_command(edgelm_bin() + " keygen --secret -o " + shell_quote(key));
  ASSERT_EQ(k.exit_code, 0) << k.err;
  const std::string enc = (dir / "stories.enc").string();
  auto e = run_command(edgelm_bin() + " encrypt " + shell_quote(stories().string()) + " " + shell_quote(enc) +
                       " --key-file " + shell_quote(key));
  ASSERT_EQ(e.exit_code, 0) << e.err;
  const fs::path config = dir / "edgelm.json";
  std::ofstream(config) << R"({"key_file": ")" << key << R"("})";
  auto r = run_command(run_greedy(enc, " --config " + shell_quote(config.string())));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, reference_decode()["text"].get<std::string>() + "\n");

  const std::string other = (dir / "other.key").string();
  ASSERT_EQ(run_command(edgelm_bin() + " keygen --secret -o " + shell_quote(other)).exit_code, 0);
  auto wrong = run_command("EDGELM_KEY_FILE=" + shell_quote(other) + " " + run_greedy(enc));
  EXPECT_NE(wrong.exit_code, 0);
  EXPECT_FALSE(wrong.err.empty());
}

// With require_signature, only a model signed by a trusted key loads; a tampered copy is refused
// before it runs, naming the failed check.
TEST(CliSecurity, SignaturePolicyIsEnforcedAtLoad) {
  const fs::path dir = temp_dir("signed");
  fs::remove_all(dir);
  fs::create_directories(dir);
  const fs::path model = dir / "stories.gguf";
  fs::copy_file(stories(), model);
  const std::string key = (dir / "signer").string();
  ASSERT_EQ(run_command(edgelm_bin() + " keygen -o " + shell_quote(key)).exit_code, 0);
  const fs::path config = dir / "edgelm.json";
  std::ofstream(config) << R"({"require_signature": true, "trusted_keys": [")" << key << R"(.pub"]})";
  const std::string with_policy = " --config " + shell_quote(config.string());

  auto unsigned_run = run_command(run_greedy(model.string(), with_policy));
  EXPECT_EQ(unsigned_run.exit_code, 2);
  EXPECT_NE(unsigned_run.err.find("unsigned"), std::string::npos) << unsigned_run.err;

  auto s = run_command(edgelm_bin() + " sign " + shell_quote(model.string()) + " -k " + shell_quote(key));
  ASSERT_EQ(s.exit_code, 0) << s.err;
  auto ok = run_command(run_greedy(model.string(), with_policy));
  ASSERT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_EQ(ok.out, reference_decode()["text"].get<std::string>() + "\n");

  {  // flip one byte of tensor data
    std::fstream f(model, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(fs::file_size(model) - 100));
    f.put('\x5a');
  }
  auto tampered = run_command(run_greedy(model.string(), with_policy));
  EXPECT_EQ(tampered.exit_code, 2);
  EXPECT_NE(tampered.err.find("sha256"), std::string::npos) << tampered.err;
}

}  // namespace
}  // namespace edgelm::test
