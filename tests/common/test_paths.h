// Where tests find the repository, the build tree and the shared real models.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <string>

namespace edgelm::test {

inline std::filesystem::path source_dir() { return EDGELM_SOURCE_DIR; }
inline std::filesystem::path binary_dir() { return EDGELM_BINARY_DIR; }

// ../shared/models beside the repository (the only outside folder the project reads).
inline std::filesystem::path shared_models_dir() { return source_dir().parent_path() / "shared" / "models"; }

// Debian's interpreter, which has numpy/torch/jinja2 (the first python3 on PATH may not).
inline std::string python3() { return "/usr/bin/python3"; }

}  // namespace edgelm::test
