// SHA-256 over memory and over files (streamed from a read-only mapping), plus hex/base64 helpers.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "edgelm/error.h"

namespace edgelm::security {

using Sha256 = std::array<uint8_t, 32>;

Sha256 sha256(std::span<const uint8_t> bytes);
inline Sha256 sha256(std::string_view text) {
  return sha256(std::span(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
}

struct FileDigest {
  uint64_t size = 0;
  Sha256 sha256{};
};

// Hashes a file by mapping it read-only and streaming over the mapping (no copy of the file).
Result<FileDigest> sha256_file(const std::filesystem::path& path);

std::string to_hex(std::span<const uint8_t> bytes);
// `what` names the field in the error ("manifest file 'a.gguf' sha256").
Result<std::vector<uint8_t>> from_hex(std::string_view hex, std::string_view what);
Result<Sha256> sha256_from_hex(std::string_view hex, std::string_view what);

std::string to_base64(std::span<const uint8_t> bytes);
Result<std::vector<uint8_t>> from_base64(std::string_view text, std::string_view what);

}  // namespace edgelm::security
