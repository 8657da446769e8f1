// libFuzzer: arbitrary bytes through encode / decode / StreamDecoder with a SentencePiece vocab
// (llama-spm) and a byte-level BPE vocab (gpt-2). The first byte picks the vocab and flags; the
// rest is the prompt, and is also read as token ids (including out-of-range ones) for decoding.
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "edgelm/gguf.h"
#include "edgelm/tokenizer.h"

namespace {

using edgelm::format::GgufFile;
using edgelm::tokenizer::StreamDecoder;
using edgelm::tokenizer::Tokenizer;

struct Loaded {
  std::unique_ptr<GgufFile> file;
  std::unique_ptr<Tokenizer> tokenizer;
};

Loaded load(const char* name) {
  // Beside the repository: ../shared/models (this file is <repo>/fuzz/tokenizer_fuzz.cpp).
  const auto path = std::filesystem::path(__FILE__).parent_path().parent_path().parent_path() /
                    "shared" / "models" / "llama.cpp-vocab" / name;
  Loaded loaded;
  auto file = GgufFile::open(path);
  if (!file) __builtin_trap();
  loaded.file = std::make_unique<GgufFile>(std::move(file).value());
  auto tokenizer = Tokenizer::from_gguf(*loaded.file);
  if (!tokenizer) __builtin_trap();
  loaded.tokenizer = std::move(tokenizer).value();
  return loaded;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const Loaded spm = load("ggml-vocab-llama-spm.gguf");
  static const Loaded bpe = load("ggml-vocab-gpt-2.gguf");
  if (size == 0) return 0;
  const uint8_t selector = data[0];
  const Tokenizer& tok = (selector & 1) ? *bpe.tokenizer : *spm.tokenizer;
  const std::string text(reinterpret_cast<const char*>(data + 1), size - 1);

  auto ids = tok.encode(text, (selector & 2) != 0, (selector & 4) != 0);
  if (!ids) return 0;
  for (int32_t id : *ids) {
    if (id < 0 || id >= tok.n_vocab()) __builtin_trap();
  }
  const std::string decoded = tok.decode(*ids, (selector & 8) != 0);
  StreamDecoder stream(tok, (selector & 8) != 0);
  for (int32_t id : *ids) (void)stream.push(id);
  (void)stream.flush();

  std::vector<int32_t> raw_ids((size - 1) / 4);
  if (!raw_ids.empty()) std::memcpy(raw_ids.data(), data + 1, raw_ids.size() * 4);
  (void)tok.decode(raw_ids, true);
  StreamDecoder raw_stream(tok, true, (selector & 16) != 0);
  for (int32_t id : raw_ids) (void)raw_stream.push(id);
  (void)raw_stream.flush();
  return 0;
}
