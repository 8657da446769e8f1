// qwen2: Qwen2 / Qwen2.5. Llama's block with q/k/v biases and NEOX-style RoPE (rotating halves).
#include "model/architectures.h"

namespace edgelm::model::detail {

Status configure_qwen2(const format::GgufFile&, const KeyReader&, HParams& hp) {
  hp.rope_style = kernels::RopeStyle::kNeox;
  hp.attn_bias = true;
  return {};
}

}  // namespace edgelm::model::detail
