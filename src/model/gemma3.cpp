// gemma3: Gemma 3 text models.
// - embeddings are multiplied by sqrt(n_embd);
// - RMSNorm weights: Gemma computes x * (1 + w); llama.cpp's converter stores 1 + w, so the GGUF
//   norms are applied like everyone else's;
// - q and k are RMS-normed per head before NEOX RoPE; attention and FFN outputs are normed again
//   (post_attention_norm, post_ffw_norm) before their residual adds; the FFN is GeGLU (tanh gelu);
// - five sliding-window layers (attention.sliding_window positions, rope base 10000, no rope
//   scaling) alternate with one global layer (rope.freq_base and rope scaling);
// - q·k is scaled by 1/sqrt(query_pre_attn_scalar), which GGUF does not store: it is head_dim
//   except for the 27B model (62 layers), where it is n_embd / n_head;
// - optional attn_logit_softcapping and final_logit_softcapping (Gemma 2 style).
#include <cmath>

#include "model/architectures.h"

namespace edgelm::model::detail {
namespace {

constexpr int32_t kSwaPattern = 6;  // layers il % 6 < 5 are local
constexpr float kLocalRopeBase = 10000.0f;
constexpr int32_t kLayers27B = 62;

}  // namespace

Status configure_gemma3(const format::GgufFile&, const KeyReader& keys, HParams& hp) {
  hp.rope_style = kernels::RopeStyle::kNeox;
  hp.qk_norm = true;
  hp.post_norms = true;
  hp.ffn_activation = FfnActivation::kGelu;
  hp.embd_scale = std::sqrt(static_cast<float>(hp.n_embd));
  if (hp.n_layer == kLayers27B) {
    hp.attn_scale = 1.0f / std::sqrt(static_cast<float>(hp.n_embd / hp.n_head));
  }
  EDGELM_TRY(hp.sliding_window, keys.size_or("attention.sliding_window", 0, 1 << 30));
  if (hp.sliding_window > 0) {
    for (int32_t il = 0; il < hp.n_layer; ++il) {
      hp.swa_layers[static_cast<size_t>(il)] = il % kSwaPattern < kSwaPattern - 1;
    }
    hp.rope_freq_base_swa = kLocalRopeBase;
    hp.rope_freq_scale_swa = 1.0f;
  }
  EDGELM_TRY(hp.attn_softcap, keys.real_or("attn_logit_softcapping", 0.0f));
  EDGELM_TRY(hp.final_softcap, keys.real_or("final_logit_softcapping", 0.0f));
  if (hp.attn_softcap < 0.0f || hp.final_softcap < 0.0f) {
    return make_error(ErrorCode::kInvalidFormat,
                      "key '" +
                          keys.key(hp.attn_softcap < 0.0f ? "attn_logit_softcapping"
                                                          : "final_logit_softcapping") +
                          "' must not be negative");
  }
  return {};
}

}  // namespace edgelm::model::detail
