// phi3: Phi-3 / Phi-3.5 / Phi-4-mini. q, k and v share one attn_qkv matrix (rows q, then k, then
// v); ffn_up holds the gate rows followed by the up rows (2 n_ff). NEOX RoPE, possibly on part of
// the head only (Phi-4-mini). Long-context models ship LongRoPE frequency divisors:
// rope_factors_long when the context exceeds rope.scaling.original_context_length, else
// rope_factors_short, plus rope.scaling.attn_factor on the rotated dims. Like llama.cpp we ignore
// attention.sliding_window, which the converters fill in inconsistently for these models.
#include "model/architectures.h"

namespace edgelm::model::detail {

Status configure_phi3(const format::GgufFile& file, const KeyReader&, HParams& hp) {
  hp.rope_style = kernels::RopeStyle::kNeox;
  hp.fused_qkv = file.find_tensor("blk.0.attn_qkv.weight") != nullptr;
  hp.fused_gate_up = true;
  if (file.find_tensor("rope_factors_long.weight") != nullptr ||
      file.find_tensor("rope_factors_short.weight") != nullptr) {
    hp.rope_scaling = RopeScaling::kLongRope;
    hp.rope_freq_scale = 1.0f;  // LongRoPE scales through the factors, not the positions
  }
  return {};
}

}  // namespace edgelm::model::detail
