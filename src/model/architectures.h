// Per-architecture configuration. Every supported architecture is the same pre-norm decoder
// block (src/model/transformer.cpp) with features switched on or off; each file under
// src/model/<arch>.cpp sets those features and its own hyper-parameters after the common keys
// have been read.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "edgelm/error.h"
#include "edgelm/gguf.h"
#include "edgelm/model.h"

namespace edgelm::model::detail {

// Reads `<arch>.<suffix>` keys; errors name the full key.
class KeyReader {
 public:
  KeyReader(const format::GgufFile& file, std::string arch) : file_(file), arch_(std::move(arch)) {}

  std::string key(std::string_view suffix) const { return arch_ + "." + std::string(suffix); }
  // A count in [1, limit]. Per-layer arrays are accepted when every entry is the same.
  Result<int32_t> count(std::string_view suffix, int64_t limit) const;
  Result<int32_t> count_or(std::string_view suffix, int32_t fallback, int64_t limit) const;
  // The same, but 0 is allowed.
  Result<int32_t> size_or(std::string_view suffix, int32_t fallback, int64_t limit) const;
  // A finite float.
  Result<float> real(std::string_view suffix) const;
  Result<float> real_or(std::string_view suffix, float fallback) const;
  Result<std::string> string_or(std::string_view suffix, std::string fallback) const;

 private:
  Result<int32_t> read_count(std::string_view suffix, std::optional<int32_t> fallback, int64_t min,
                             int64_t limit) const;
  const format::GgufFile& file_;
  std::string arch_;
};

struct Architecture {
  std::string_view name;
  // Switches on the architecture's features and reads its extra keys into `hp`, whose common
  // fields are already set.
  Status (*configure)(const format::GgufFile& file, const KeyReader& keys, HParams& hp);
};

Status configure_llama(const format::GgufFile& file, const KeyReader& keys, HParams& hp);
Status configure_qwen2(const format::GgufFile& file, const KeyReader& keys, HParams& hp);
Status configure_qwen3(const format::GgufFile& file, const KeyReader& keys, HParams& hp);
Status configure_phi3(const format::GgufFile& file, const KeyReader& keys, HParams& hp);
Status configure_gemma3(const format::GgufFile& file, const KeyReader& keys, HParams& hp);

}  // namespace edgelm::model::detail
