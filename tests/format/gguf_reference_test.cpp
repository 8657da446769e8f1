// Compares the C++ reader with the independent Python reader (tests/reference/gguf_reader.py):
// the same keys, types, values and tensor table for every real file, line by line.
#include <gtest/gtest.h>

#include <cstdio>
#include <sstream>

#include "format/gguf_test_util.h"

namespace edgelm::format {
namespace {

std::string run_python_listing(const std::vector<std::filesystem::path>& files) {
  std::string cmd =
      edgelm::test::python3() + " " +
      (edgelm::test::source_dir() / "tests" / "reference" / "gguf_reader.py").string();
  for (const auto& f : files) cmd += " '" + f.string() + "'";
  std::string out;
  FILE* pipe = ::popen(cmd.c_str(), "r");
  if (pipe == nullptr) return out;
  char buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) out.append(buf, n);
  if (::pclose(pipe) != 0) out += "\n(python exited with an error)\n";
  return out;
}

std::string cpp_listing(const std::vector<std::filesystem::path>& files) {
  std::string out;
  for (const auto& path : files) {
    out += "file " + path.filename().string() + "\n";
    auto f = GgufFile::open(path);
    if (!f.has_value()) {
      // The Python reader only distinguishes the v1 case; other errors would differ in wording.
      out += f.error().message.find("unsupported GGUF v1") != std::string::npos
                 ? "error unsupported GGUF v1\n"
                 : "error " + f.error().message + "\n";
      continue;
    }
    out += test::render_listing(*f);
  }
  return out;
}

TEST(GgufReference, ListingMatchesPythonReaderForEveryRealFile) {
  const auto files = test::real_gguf_files();
  ASSERT_FALSE(files.empty());
  const std::string expected = run_python_listing(files);
  const std::string actual = cpp_listing(files);
  ASSERT_GT(expected.size(), 1000000u)
      << expected.substr(0, 2000);  // the vocabularies are listed in full
  if (expected == actual) return;
  std::istringstream e(expected);
  std::istringstream a(actual);
  std::string le;
  std::string la;
  for (size_t line = 1;; ++line) {
    const bool more_e = static_cast<bool>(std::getline(e, le));
    const bool more_a = static_cast<bool>(std::getline(a, la));
    if (!more_e && !more_a) break;
    ASSERT_EQ(le, la) << "first difference at line " << line;
  }
}

}  // namespace
}  // namespace edgelm::format
