// llama: Llama 2/3, TinyLlama, SmolLM2, llama2.c stories.
// llama.cpp's converter permutes the Q/K rows of HF checkpoints so that RoPE rotates adjacent
// pairs (NORM style) in GGUF files. Llama 3 long-context scaling ships as the rope_freqs tensor.
#include "model/architectures.h"

namespace edgelm::model::detail {

Status configure_llama(const format::GgufFile& file, const KeyReader& keys, HParams& hp) {
  hp.rope_style = kernels::RopeStyle::kNorm;
  if (hp.n_rot != hp.head_dim) {
    return make_error(ErrorCode::kInvalidFormat, "key '" + keys.key("rope.dimension_count") +
                                                     "': " + std::to_string(hp.n_rot) +
                                                     ", llama rotates the whole head of " +
                                                     std::to_string(hp.head_dim));
  }
  // A few llama-architecture exports carry q/k/v biases; they are all present or all absent.
  hp.attn_bias = file.find_tensor("blk.0.attn_q.bias") != nullptr;
  return {};
}

}  // namespace edgelm::model::detail
