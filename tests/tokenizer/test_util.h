// Shared helpers for the tokenizer tests: loading the real vocabularies and llama.cpp's vectors.
#pragma once

#include <gtest/gtest.h>

#include <cctype>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "common/test_paths.h"
#include "edgelm/gguf.h"
#include "edgelm/tokenizer.h"

namespace edgelm::tokenizer::test {

inline std::filesystem::path vocab_dir() {
  return edgelm::test::shared_models_dir() / "llama.cpp-vocab";
}
inline std::filesystem::path vocab_path(const std::string& name) {
  return vocab_dir() / ("ggml-vocab-" + name + ".gguf");
}

// gtest parameter names allow only [A-Za-z0-9_]: "llama-spm" -> "llama_spm".
inline std::string vocab_test_name(const ::testing::TestParamInfo<std::string>& info) {
  std::string name = info.param;
  for (char& c : name) c = std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  return name;
}

inline std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// The .inp cases: the file split on "\n__ggml_vocab_test__\n" (the last, empty part dropped).
inline std::vector<std::string> read_cases(const std::filesystem::path& inp) {
  const std::string text = read_file(inp);
  const std::string separator = "\n__ggml_vocab_test__\n";
  std::vector<std::string> cases;
  size_t start = 0;
  for (size_t pos; (pos = text.find(separator, start)) != std::string::npos;
       start = pos + separator.size()) {
    cases.push_back(text.substr(start, pos - start));
  }
  return cases;
}

// The .out lines: expected ids per case.
inline std::vector<std::vector<int32_t>> read_expected(const std::filesystem::path& out) {
  std::istringstream in(read_file(out));
  std::vector<std::vector<int32_t>> expected;
  for (std::string line; std::getline(in, line);) {
    std::istringstream ids(line);
    std::vector<int32_t> row;
    for (int32_t id; ids >> id;) row.push_back(id);
    expected.push_back(std::move(row));
  }
  return expected;
}

struct LoadedTokenizer {
  std::unique_ptr<format::GgufFile> file;
  std::unique_ptr<Tokenizer> tokenizer;
  std::string error;
};

inline LoadedTokenizer load_tokenizer(const std::filesystem::path& path) {
  LoadedTokenizer loaded;
  auto file = format::GgufFile::open(path);
  if (!file) {
    loaded.error = file.error().to_string();
    return loaded;
  }
  loaded.file = std::make_unique<format::GgufFile>(std::move(file).value());
  auto tokenizer = Tokenizer::from_gguf(*loaded.file);
  if (!tokenizer) {
    loaded.error = tokenizer.error().to_string();
    return loaded;
  }
  loaded.tokenizer = std::move(tokenizer).value();
  return loaded;
}

inline std::string ids_to_string(const std::vector<int32_t>& ids) {
  std::string s;
  for (int32_t id : ids) {
    s.push_back(' ');
    s.append(std::to_string(id));
  }
  return s;
}

// llama.cpp's three in-place clean-up passes of llama_detokenize (clean_spaces), restated
// directly over one buffer as the reference for the streaming SpaceCleaner.
inline std::string clean_spaces_reference(std::string text) {
  int total = static_cast<int>(text.size());
  const int total1 = total;
  total = total ? 1 : 0;
  for (int i = 1; i < total1; ++i) {
    const char x = text[i];
    if (text[i - 1] == ' ' && (x == '?' || x == '!' || x == '.' || x == ',')) --total;
    text[total++] = x;
  }
  const int total2 = total;
  total = total ? 1 : 0;
  for (int i = 1; i < total2; ++i) {
    const char x = text[i];
    if (x == '\'' && i + 1 < total2 && text[i - 1] == ' ' && text[i + 1] == ' ') {
      --total;
      text[++i] = '\0';
    }
    text[total++] = x;
  }
  const int total3 = total;
  total = total ? 1 : 0;
  for (int i = 1; i < total3; ++i) {
    const char x = text[i];
    if (text[i - 1] == ' ' && x == '\'' && i + 1 < total3) {
      const char x1 = text[i + 1];
      if (x1 == 't' || x1 == 'd') {
      } else if (x1 == 's' || x1 == 'm') {
        --total;
      } else if (i + 2 < total3) {
        const char x2 = text[i + 2];
        if ((x1 == 'r' && x2 == 'e') || (x1 == 'v' && x2 == 'e')) --total;
      }
    }
    text[total++] = x;
  }
  text.resize(total);
  return text;
}

}  // namespace edgelm::tokenizer::test
