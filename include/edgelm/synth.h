// Random-weight models with the exact shapes of real ones: speed depends on shapes and types, not
// on the values, so benchmarks need no downloaded weights.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "edgelm/error.h"
#include "edgelm/gguf.h"
#include "edgelm/quantize.h"

namespace edgelm::tools {

struct ModelShape {
  std::string name;  // "smollm2-135m"
  std::string arch;  // GGUF general.architecture
  int32_t n_vocab, n_embd, n_layer, n_head, n_head_kv, head_dim, n_ff, n_ctx;
  float rope_freq_base;
  float rms_eps;
  bool tied_embeddings;
  bool llama3_rope;  // rope_freqs tensor (Llama 3.x long-context scaling)
  int32_t sliding_window = 0;  // gemma3: local layers; every 6th layer is global
};

const std::vector<ModelShape>& known_shapes();
Result<ModelShape> find_shape(std::string_view name);  // error lists the known names

struct SynthOptions {
  std::string shape;
  std::string recipe = "q8_0";  // see parse_quant_recipe
  std::filesystem::path vocab;  // vocab-only GGUF whose tokenizer.* keys (and size) to use
  uint64_t seed = 1;
  int n_threads = 1;
};

// Writes the model to `out`; returns the size in bytes.
Result<uint64_t> synthesize_model(const SynthOptions& options, const std::filesystem::path& out);

}  // namespace edgelm::tools
