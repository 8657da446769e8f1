// Shared setup of the ONNX tests: test models exported by PyTorch (tests/reference/
// onnx_make_models.py) and ONNX Runtime (onnxruntime-node from npm) as the oracle, both made once
// per build tree. Each is built in a private folder and renamed into place, so test processes
// running in parallel never see a half-made folder.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "common/node_package.h"
#include "common/test_paths.h"
#include "edgelm/onnx/session.h"

namespace edgelm::onnx::test {

namespace fs = std::filesystem;

inline int shell(const std::string& command) {
  return std::system(command.c_str());
}

// Runs make(dir) in a fresh temporary folder and renames it to `target` unless another process
// got there first. Returns false if make failed.
template <class Make>
bool build_once(const fs::path& target, const Make& make) {
  if (fs::exists(target)) return true;
  const fs::path tmp = target.string() + ".tmp" + std::to_string(::getpid());
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  if (!make(tmp)) {
    fs::remove_all(tmp);
    return false;
  }
  std::error_code ec;
  fs::rename(tmp, target, ec);
  if (ec) fs::remove_all(tmp);  // another process finished first
  return fs::exists(target);
}

inline fs::path models_dir() {
  const fs::path dir = edgelm::test::binary_dir() / "onnx_test_models";
  const bool ok = build_once(dir, [](const fs::path& tmp) {
    const std::string script =
        (edgelm::test::source_dir() / "tests/reference/onnx_make_models.py").string();
    return shell(edgelm::test::python3() + " " + script + " " + tmp.string() + " > " +
                 tmp.string() + "/make.log 2>&1") == 0;
  });
  EXPECT_TRUE(ok) << "tests/reference/onnx_make_models.py failed";
  return dir;
}

// The folder holding node_modules/onnxruntime-node (its install script only fetches GPU extras).
inline fs::path node_deps_dir() {
  std::string why;
  const std::string modules = edgelm::test::npm_install_once(
      "node_deps_onnx", "onnxruntime-node", "onnxruntime-node/package.json", why,
      /*ignore_scripts=*/true);
  EXPECT_FALSE(modules.empty()) << why;
  return fs::path(modules).parent_path();
}

inline std::vector<char> read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<char>((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

template <class T>
std::vector<T> read_values(const fs::path& path) {
  const auto bytes = read_bytes(path);
  std::vector<T> values(bytes.size() / sizeof(T));
  std::memcpy(values.data(), bytes.data(), values.size() * sizeof(T));
  return values;
}

struct OrtOutput {
  std::string name;
  std::vector<int64_t> shape;
  std::vector<char> bytes;
  std::vector<float> floats() const {
    std::vector<float> v(bytes.size() / 4);
    std::memcpy(v.data(), bytes.data(), v.size() * 4);
    return v;
  }
};

// One input for ONNX Runtime: "name:float|int64:1x7:file".
inline std::string ort_input(const std::string& name, const std::string& type,
                             const std::vector<int64_t>& shape, const fs::path& file) {
  std::string dims;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) dims += 'x';
    dims += std::to_string(shape[i]);
  }
  return name + ":" + type + ":" + dims + ":" + file.string();
}

// Runs `model` in ONNX Runtime; outputs in graph order. Empty (and a test failure) on error.
inline std::vector<OrtOutput> run_ort(const fs::path& model,
                                      const std::vector<std::string>& inputs) {
  const fs::path out = fs::temp_directory_path() /
                       ("edgelm_ort_" + std::to_string(::getpid()) + "_" + model.stem().string());
  fs::remove_all(out);
  fs::create_directories(out);
  std::string command = "node " +
                        (edgelm::test::source_dir() / "tests/reference/onnx_ort_run.mjs").string() +
                        " " + node_deps_dir().string() + " " + model.string() + " " + out.string();
  for (const auto& i : inputs) command += " " + i;
  command += " > " + (out / "list.txt").string() + " 2> " + (out / "err.txt").string();
  std::vector<OrtOutput> outputs;
  if (shell(command) != 0) {
    ADD_FAILURE() << "onnxruntime-node failed on " << model << ": "
                  << read_bytes(out / "err.txt").data();
    return outputs;
  }
  std::ifstream list(out / "list.txt");
  std::string line;
  while (std::getline(list, line)) {
    std::istringstream fields(line);
    int index = 0;
    std::string name, dims;
    fields >> index >> name >> dims;
    OrtOutput o;
    o.name = name;
    std::istringstream dim_stream(dims);
    std::string d;
    while (std::getline(dim_stream, d, 'x')) {
      if (!d.empty()) o.shape.push_back(std::stoll(d));
    }
    o.bytes = read_bytes(out / (std::to_string(index) + ".bin"));
    outputs.push_back(std::move(o));
  }
  fs::remove_all(out);
  return outputs;
}

inline float max_abs_diff(const std::vector<float>& a, const float* b, size_t n) {
  float worst = 0;
  for (size_t i = 0; i < n; ++i) worst = std::max(worst, std::abs(a[i] - b[i]));
  return worst;
}

inline std::vector<int64_t> test_ids(const fs::path& dir) {
  return read_values<int64_t>(dir / "ids.bin");
}

}  // namespace edgelm::onnx::test
