// qwen3: Qwen3 dense models. No biases; each head of q and k is RMS-normed (attn_q_norm /
// attn_k_norm, head_dim weights) before NEOX RoPE. head_dim comes from attention.key_length and
// n_head * head_dim may differ from n_embd.
#include "model/architectures.h"

namespace edgelm::model::detail {

Status configure_qwen3(const format::GgufFile&, const KeyReader&, HParams& hp) {
  hp.rope_style = kernels::RopeStyle::kNeox;
  hp.qk_norm = true;
  return {};
}

}  // namespace edgelm::model::detail
