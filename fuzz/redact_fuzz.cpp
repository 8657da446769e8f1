// libFuzzer target: arbitrary bytes as text to redact (and to restore, and to stream-restore in
// two chunks). Redaction must not crash or hang on any input; when every entity got a placeholder
// of its own (no two spellings of one value) restoring gives the input back; the streamed
// restoration equals the whole-text restoration.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "edgelm/hybrid/redactor.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace edgelm::hybrid;
  static const auto redactor = std::move(*Redactor::create(RedactionPolicy{}));
  std::string_view text(reinterpret_cast<const char*>(data), size);
  Vault vault;
  auto result = redactor->redact(text, vault);
  bool one_to_one = result.entities.size() == vault.entries().size();
  if (one_to_one && text.find('<') == std::string_view::npos && vault.restore(result.text) != text)
    std::abort();
  size_t cut = size == 0 ? 0 : data[0] % (result.text.size() + 1);
  StreamRestorer restorer(vault);
  std::string streamed = restorer.feed(std::string_view(result.text).substr(0, cut));
  streamed += restorer.feed(std::string_view(result.text).substr(cut));
  streamed += restorer.finish();
  if (streamed != vault.restore(result.text)) std::abort();
  return 0;
}
