// Runs tests/reference/quants.py (the independent numpy codec) on a batch of jobs in one Python
// process and returns its outputs.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "common/test_paths.h"

namespace edgelm::test {

struct OracleJob {
  std::string operation;  // "dequantize" (input: blocks) or "quantize" (input: float32 values)
  std::string type;       // ggml type name
  int64_t n = 0;          // elements
  std::vector<uint8_t> input;
  std::vector<uint8_t> output;  // filled by run_numpy_oracle
};

// Returns false (with `error` set) when Python fails; outputs are filled otherwise.
inline bool run_numpy_oracle(std::vector<OracleJob>& jobs, std::string* error) {
  static int counter = 0;
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() /
      ("edgelm_quants_" + std::to_string(getpid()) + "_" + std::to_string(counter++));
  std::filesystem::create_directories(dir);
  const std::filesystem::path manifest = dir / "manifest.txt";
  {
    std::ofstream list(manifest);
    for (size_t i = 0; i < jobs.size(); ++i) {
      const auto in = dir / ("in" + std::to_string(i));
      std::ofstream(in, std::ios::binary)
          .write(reinterpret_cast<const char*>(jobs[i].input.data()),
                 static_cast<std::streamsize>(jobs[i].input.size()));
      list << jobs[i].operation << ' ' << jobs[i].type << ' ' << jobs[i].n << ' ' << in.string()
           << ' ' << (dir / ("out" + std::to_string(i))).string() << '\n';
    }
  }
  const std::string command = python3() + " " +
                              (source_dir() / "tests" / "reference" / "quants.py").string() +
                              " batch " + manifest.string();
  const int status = std::system(command.c_str());
  bool ok = status == 0;
  if (!ok) *error = "command failed (" + std::to_string(status) + "): " + command;
  for (size_t i = 0; ok && i < jobs.size(); ++i) {
    std::ifstream out(dir / ("out" + std::to_string(i)), std::ios::binary);
    jobs[i].output.assign(std::istreambuf_iterator<char>(out), {});
  }
  std::filesystem::remove_all(dir);
  return ok;
}

}  // namespace edgelm::test
