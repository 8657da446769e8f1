// `edgelm serve` as a process: it binds loopback, answers, hashes keys for the key file, and
// exits cleanly on SIGTERM after finishing the request in flight.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <future>
#include <regex>

#include "serve/serve_test_util.h"

extern char** environ;

namespace edgelm::serve::test {
namespace {

using namespace std::chrono_literals;

fs::path edgelm_binary() {
  return edgelm::test::binary_dir() / "apps" / "edgelm" / "edgelm";
}

bool serve_registered() {
  const auto r = edgelm::test::run_command(edgelm::test::shell_quote(edgelm_binary().string()) +
                                           " serve --help");
  return r.exit_code == 0;
}

TEST(CliServe, HashKeyPrintsTheKeyFileHash) {
  ASSERT_TRUE(serve_registered())
      << "`edgelm serve` is missing: apps/edgelm/main.cpp must call register_serve";
  const std::string key = "sk-cli-test-key-0123456789";
  const auto r = edgelm::test::run_command(
      "printf '%s\\n' " + edgelm::test::shell_quote(key) + " | " +
      edgelm::test::shell_quote(edgelm_binary().string()) + " serve --hash-key");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, *hash_api_key(key) + "\n");
}

TEST(CliServe, ServesOnLoopbackAndStopsOnSigterm) {
  ASSERT_TRUE(serve_registered())
      << "`edgelm serve` is missing: apps/edgelm/main.cpp must call register_serve";
  const fs::path log =
      fs::temp_directory_path() / ("edgelm-serve-cli-" + std::to_string(::getpid()) + ".log");
  const std::string bin = edgelm_binary().string();
  const std::string model = stories_path().string();
  std::vector<std::string> args = {bin,
                                   "serve",
                                   "-m",
                                   model,
                                   "--port",
                                   "0",
                                   "--parallel",
                                   "2",
                                   "--ctx",
                                   "256",
                                   "--threads",
                                   "1",
                                   "--shutdown-timeout",
                                   "5"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 2, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  pid_t pid = -1;
  ASSERT_EQ(posix_spawn(&pid, bin.c_str(), &actions, nullptr, argv.data(), environ), 0);
  posix_spawn_file_actions_destroy(&actions);

  int port = -1;
  std::string text;
  const std::regex listening(R"(listening on http://127\.0\.0\.1:(\d+))");
  for (int i = 0; i < 300 && port < 0; ++i) {
    std::this_thread::sleep_for(20ms);
    std::ifstream in(log);
    std::stringstream s;
    s << in.rdbuf();
    text = s.str();
    std::smatch m;
    if (std::regex_search(text, m, listening)) port = std::stoi(m[1]);
  }
  ASSERT_GT(port, 0) << text;

  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(30, 0);
  const auto& t = reference_decode().tokens;
  const json body = {{"model", "stories260K"},
                     {"prompt", std::vector<int32_t>(t.begin(), t.begin() + 3)},
                     {"max_tokens", 40},
                     {"temperature", 0},
                     {"stream", true}};
  auto in_flight = std::async(std::launch::async, [&] {
    httplib::Client c2("127.0.0.1", port);
    c2.set_read_timeout(30, 0);
    return c2.Post("/v1/completions", body.dump(), "application/json");
  });
  std::this_thread::sleep_for(20ms);
  ::kill(pid, SIGTERM);
  int status = 0;
  const auto until = std::chrono::steady_clock::now() + 15s;
  while (::waitpid(pid, &status, WNOHANG) == 0 && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_TRUE(WIFEXITED(status)) << "edgelm serve did not exit after SIGTERM";
  if (!WIFEXITED(status)) ::kill(pid, SIGKILL), ::waitpid(pid, &status, 0);
  EXPECT_EQ(WEXITSTATUS(status), 0);
  auto r = in_flight.get();
  if (r) {  // the request either finished before the listener closed or was refused cleanly
    EXPECT_TRUE(r->status == 200 || r->status == 503) << r->status;
    if (r->status == 200) {
      EXPECT_NE(r->body.find("data: [DONE]"), std::string::npos) << r->body;
    }
  }
  std::ifstream in(log);
  std::stringstream s;
  s << in.rdbuf();
  EXPECT_NE(s.str().find("edgelm serve: stopped"), std::string::npos) << s.str();
  fs::remove(log);
}

}  // namespace
}  // namespace edgelm::serve::test
