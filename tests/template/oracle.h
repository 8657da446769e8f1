// Runs the two independent Jinja engines the template tests compare against:
// Python jinja2 configured like transformers (tests/reference/jinja_oracle.py) and the
// @huggingface/jinja npm package (tests/reference/jinja_oracle.mjs), installed once into
// <build>/node_deps with npm.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "common/node_package.h"
#include "common/test_paths.h"

namespace edgelm::test {

using OrderedJson = nlohmann::ordered_json;

// A fixed clock for strftime_now, shared by every engine (Tue 25 Nov 2025 in most time zones).
inline constexpr long long kOracleNow = 1764000000;
inline constexpr const char* kJinjaPackage = "@huggingface/jinja@0.5.11";

struct OracleResult {
  bool ok = false;
  std::string output;
  std::string error;
  std::string raised;  // the raise_exception message when that caused the failure (Python only)
};

inline std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

inline std::filesystem::path node_deps_dir() {
  return binary_dir() / "node_deps";
}

inline bool ensure_node_package(std::string& why) {
  return !npm_install_once("node_deps", kJinjaPackage, "@huggingface/jinja/package.json", why)
              .empty();
}

// cases: [{"template": ..., "context": {...}}]. Returns one result per case; on a harness failure
// records a test failure and returns an empty vector.
inline std::vector<OracleResult> run_oracle(bool python, const OrderedJson& cases) {
  static int counter = 0;
  const auto stem = binary_dir() / ("template_oracle_" + std::to_string(::getpid()) + "_" +
                                    std::to_string(counter++));
  const std::string in_path = stem.string() + ".in.json";
  const std::string out_path = stem.string() + (python ? ".py.json" : ".node.json");
  const std::string err_path = stem.string() + ".err";
  {
    OrderedJson request = {{"now", kOracleNow}, {"cases", cases}};
    std::ofstream out(in_path, std::ios::binary);
    out << request.dump();
  }
  std::string command;
  if (python) {
    command = python3() + " " +
              shell_quote((source_dir() / "tests/reference/jinja_oracle.py").string()) + " " +
              shell_quote(in_path);
  } else {
    std::string why;
    if (!ensure_node_package(why)) {
      ADD_FAILURE() << why;
      return {};
    }
    command = "node " + shell_quote((source_dir() / "tests/reference/jinja_oracle.mjs").string()) +
              " " + shell_quote(node_deps_dir().string()) + " " + shell_quote(in_path);
  }
  command += " > " + shell_quote(out_path) + " 2> " + shell_quote(err_path);
  const int status = std::system(command.c_str());
  const std::string output = read_file(out_path);
  const std::string errors = read_file(err_path);
  std::filesystem::remove(in_path);
  std::filesystem::remove(out_path);
  std::filesystem::remove(err_path);
  if (status != 0) {
    ADD_FAILURE() << (python ? "python" : "node") << " oracle failed: " << errors;
    return {};
  }
  std::vector<OracleResult> results;
  const OrderedJson parsed = OrderedJson::parse(output);
  for (const auto& r : parsed) {
    OracleResult result;
    result.ok = r.at("ok").get<bool>();
    if (result.ok)
      result.output = r.at("output").get<std::string>();
    else
      result.error = r.at("error").get<std::string>();
    if (r.contains("raised") && r["raised"].is_string())
      result.raised = r["raised"].get<std::string>();
    results.push_back(std::move(result));
  }
  if (results.size() != cases.size())
    ADD_FAILURE() << "oracle returned " << results.size() << " results";
  return results;
}

}  // namespace edgelm::test
