// npm packages the tests use as oracles or clients, installed once per build tree into
// <build>/<folder>/node_modules (flock keeps parallel CTest processes from racing). Nothing is
// committed; the first run needs node, npm and the npm registry.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "common/run_command.h"
#include "common/test_paths.h"

namespace edgelm::test {

// Installs `packages` (npm specs separated by spaces) into binary_dir()/folder unless `marker`
// (a path under node_modules) exists. Returns the node_modules folder, or "" with `why` set.
inline std::string npm_install_once(const std::string& folder, const std::string& packages,
                                    const std::string& marker, std::string& why,
                                    bool ignore_scripts = false) {
  const std::filesystem::path dir = binary_dir() / folder;
  const std::filesystem::path modules = dir / "node_modules";
  if (std::filesystem::exists(modules / marker)) return modules.string();
  std::filesystem::create_directories(dir);
  const std::string log = (dir / "npm-install.log").string();
  const std::string install = "test -f " + shell_quote((modules / marker).string()) +
                              " || npm install --prefix " + shell_quote(dir.string()) +
                              (ignore_scripts ? " --ignore-scripts" : "") +
                              " --no-audit --no-fund --loglevel=error " + packages;
  const std::string command = "flock " + shell_quote((dir / ".lock").string()) + " sh -c " +
                              shell_quote(install) + " > " + shell_quote(log) + " 2>&1";
  if (std::system(command.c_str()) != 0 || !std::filesystem::exists(modules / marker)) {
    std::ifstream in(log);
    std::stringstream text;
    text << in.rdbuf();
    why = "npm install " + packages +
          " failed (needs node/npm and the npm registry once): " + text.str();
    return "";
  }
  return modules.string();
}

}  // namespace edgelm::test
