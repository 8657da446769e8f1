#!/usr/bin/env python3
"""Writes tiny random-weight GGUF models, one per architecture variant and weight type, for the
model-layer tests. Each has its architecture's features switched on (biases, q/k norm, fused
tensors, sliding window, softcapping, rope scaling) and a small llama-style tokenizer block so the
file is complete.

Usage: model_make_tiny.py OUT_DIR NAME...     NAME = <variant>-<type>, e.g. llama-f32, gemma3-q4_k
Variants: see VARIANTS; types: f32 f16 bf16 and those tests/reference/quants.py quantizes.
K-quant types (256-element blocks) use the wide shapes (n_embd 256).
"""
import math
import os
import sys
import zlib

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import model_gguf as g  # noqa: E402

N_VOCAB = 300

# name -> (architecture, hyper-parameters). "wide" shapes replace the small ones for K-quants.
VARIANTS = {
    # Llama 3 style: rope_freqs factors, large rope base, separate output matrix.
    "llama": dict(arch="llama", n_layer=2, n_head=4, n_head_kv=2, head_dim=16, n_ff=96,
                  rope_base=500000.0, rope_freqs=True),
    # Qwen2: q/k/v biases, tied embeddings, linear rope scaling.
    "qwen2": dict(arch="qwen2", n_layer=2, n_head=4, n_head_kv=2, head_dim=16, n_ff=96,
                  biases=True, tied=True, rope_base=1000000.0, linear_scaling=2.0),
    # Qwen3: per-head q/k RMSNorm; head_dim * n_head != n_embd.
    "qwen3": dict(arch="qwen3", n_layer=2, n_head=4, n_head_kv=2, head_dim=32, n_ff=96,
                  qk_norm=True, rope_base=1000000.0),
    # Phi-3 / Phi-4-mini: fused qkv and gate+up, partial rotary, LongRoPE factors + attn factor.
    "phi3": dict(arch="phi3", n_layer=2, n_head=4, n_head_kv=2, head_dim=16, n_ff=96, fused=True,
                 rot_fraction=0.75, longrope=True),
    # Gemma 3: sliding window (5 local : 1 global), post norms, q/k norm, GeGLU, softcaps, tied.
    "gemma3": dict(arch="gemma3", n_layer=6, n_head=4, n_head_kv=1, head_dim=32, n_ff=96,
                   qk_norm=True, tied=True, post_norms=True, rope_base=1000000.0,
                   linear_scaling=8.0, sliding_window=4, final_softcap=30.0, attn_softcap=50.0),
}
SMALL_EMBD = 64
WIDE = dict(n_embd=256, head_dim=64, n_ff=512)
K_QUANTS = {"q2_k", "q3_k", "q4_k", "q5_k", "q6_k"}


def make_tokenizer_metadata():
    tokens, scores, types = ["<unk>", "<s>", "</s>"], [0.0, 0.0, 0.0], [2, 3, 3]
    tokens += [f"<0x{b:02X}>" for b in range(256)]
    scores += [0.0] * 256
    types += [6] * 256
    while len(tokens) < N_VOCAB:
        tokens.append(f"\u2581w{len(tokens)}")
        scores.append(-float(len(tokens)))
        types.append(1)
    return [
        ("tokenizer.ggml.model", g.STRING, "llama"),
        ("tokenizer.ggml.tokens", g.ARRAY, tokens, g.STRING),
        ("tokenizer.ggml.scores", g.ARRAY, scores, g.FLOAT32),
        ("tokenizer.ggml.token_type", g.ARRAY, types, g.INT32),
        ("tokenizer.ggml.bos_token_id", g.UINT32, 1),
        ("tokenizer.ggml.eos_token_id", g.UINT32, 2),
        ("tokenizer.ggml.unknown_token_id", g.UINT32, 0),
    ]


def encode(type_name, array):
    """float32 array [rows][cols] -> raw bytes of `type_name`."""
    a = np.ascontiguousarray(array, dtype=np.float32)
    if type_name == "f32":
        return a.tobytes()
    if type_name == "f16":
        return a.astype("<f2").tobytes()
    if type_name == "bf16":  # round to nearest even on the upper 16 bits
        bits = a.view(np.uint32).astype(np.uint64)
        rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
        return rounded.astype("<u2").tobytes()
    import quants  # helper 'tensor': reference block quantization
    return quants.quantize(type_name, a.reshape(-1))


def make_model(path, variant, type_name):
    v = dict(VARIANTS[variant])
    if type_name in K_QUANTS:
        v.update(WIDE)
    arch = v["arch"]
    n_embd = v.get("n_embd", SMALL_EMBD)
    n_layer, n_head, n_head_kv, head_dim, n_ff = (v[k] for k in
                                                   ("n_layer", "n_head", "n_head_kv", "head_dim", "n_ff"))
    n_rot = int(head_dim * v.get("rot_fraction", 1.0))
    q_dim, kv_dim = n_head * head_dim, n_head_kv * head_dim
    rng = np.random.default_rng(zlib.crc32(f"{variant}-{type_name}".encode()))
    n_ctx_train = 128

    meta = [("general.architecture", g.STRING, arch),
            ("general.name", g.STRING, f"tiny-{variant}-{type_name}"),
            (f"{arch}.context_length", g.UINT32, n_ctx_train),
            (f"{arch}.embedding_length", g.UINT32, n_embd),
            (f"{arch}.block_count", g.UINT32, n_layer),
            (f"{arch}.feed_forward_length", g.UINT32, n_ff),
            (f"{arch}.attention.head_count", g.UINT32, n_head),
            (f"{arch}.attention.head_count_kv", g.UINT32, n_head_kv),
            (f"{arch}.attention.layer_norm_rms_epsilon", g.FLOAT32, 1e-6),
            (f"{arch}.rope.dimension_count", g.UINT32, n_rot)]
    if head_dim != n_embd // n_head:
        meta += [(f"{arch}.attention.key_length", g.UINT32, head_dim),
                 (f"{arch}.attention.value_length", g.UINT32, head_dim)]
    if "rope_base" in v:
        meta.append((f"{arch}.rope.freq_base", g.FLOAT32, v["rope_base"]))
    if "linear_scaling" in v:
        meta += [(f"{arch}.rope.scaling.type", g.STRING, "linear"),
                 (f"{arch}.rope.scaling.factor", g.FLOAT32, v["linear_scaling"])]
    if v.get("longrope"):
        n_ctx_orig = 32
        meta += [(f"{arch}.rope.scaling.original_context_length", g.UINT32, n_ctx_orig),
                 (f"{arch}.rope.scaling.attn_factor", g.FLOAT32,
                  math.sqrt(1 + math.log(n_ctx_train / n_ctx_orig) / math.log(n_ctx_orig)))]
    if "sliding_window" in v:
        meta.append((f"{arch}.attention.sliding_window", g.UINT32, v["sliding_window"]))
    if "final_softcap" in v:
        meta.append((f"{arch}.final_logit_softcapping", g.FLOAT32, v["final_softcap"]))
    if "attn_softcap" in v:
        meta.append((f"{arch}.attn_logit_softcapping", g.FLOAT32, v["attn_softcap"]))
    meta += make_tokenizer_metadata()

    tensors = []

    def matrix(name, rows, cols, scale=None):
        w = rng.standard_normal((rows, cols)).astype(np.float32) * (scale or 1.0 / math.sqrt(cols))
        tensors.append((name, [cols, rows], type_name.upper(), encode(type_name, w)))

    def vector(name, n, mean, spread):
        w = (mean + spread * rng.standard_normal(n)).astype(np.float32)
        tensors.append((name, [n], "F32", w.tobytes()))

    # Tied models read logits off the embeddings: keep them O(1) there too.
    embd_scale = 1.0 / math.sqrt(n_embd) if v.get("tied") else 1.0
    matrix("token_embd.weight", N_VOCAB, n_embd, scale=embd_scale)
    vector("output_norm.weight", n_embd, 1.0, 0.1)
    if not v.get("tied"):
        matrix("output.weight", N_VOCAB, n_embd)
    if v.get("rope_freqs"):  # llama3-style: low frequencies stretched, high ones kept
        factors = np.linspace(1.0, 8.0, n_rot // 2, dtype=np.float32)
        tensors.append(("rope_freqs.weight", [n_rot // 2], "F32", factors.tobytes()))
    if v.get("longrope"):
        for name, top in (("rope_factors_long.weight", 6.0), ("rope_factors_short.weight", 1.5)):
            factors = np.linspace(1.0, top, n_rot // 2, dtype=np.float32)
            tensors.append((name, [n_rot // 2], "F32", factors.tobytes()))
    for il in range(n_layer):
        p = f"blk.{il}."
        vector(p + "attn_norm.weight", n_embd, 1.0, 0.1)
        if v.get("fused"):
            matrix(p + "attn_qkv.weight", q_dim + 2 * kv_dim, n_embd)
        else:
            matrix(p + "attn_q.weight", q_dim, n_embd)
            matrix(p + "attn_k.weight", kv_dim, n_embd)
            matrix(p + "attn_v.weight", kv_dim, n_embd)
        if v.get("biases"):
            vector(p + "attn_q.bias", q_dim, 0.0, 0.2)
            vector(p + "attn_k.bias", kv_dim, 0.0, 0.2)
            vector(p + "attn_v.bias", kv_dim, 0.0, 0.2)
        if v.get("qk_norm"):
            vector(p + "attn_q_norm.weight", head_dim, 1.0, 0.1)
            vector(p + "attn_k_norm.weight", head_dim, 1.0, 0.1)
        matrix(p + "attn_output.weight", n_embd, q_dim)
        if v.get("post_norms"):
            vector(p + "post_attention_norm.weight", n_embd, 1.0, 0.1)
            vector(p + "post_ffw_norm.weight", n_embd, 1.0, 0.1)
        vector(p + "ffn_norm.weight", n_embd, 1.0, 0.1)
        if v.get("fused"):
            matrix(p + "ffn_up.weight", 2 * n_ff, n_embd)
        else:
            matrix(p + "ffn_gate.weight", n_ff, n_embd)
            matrix(p + "ffn_up.weight", n_ff, n_embd)
        matrix(p + "ffn_down.weight", n_embd, n_ff)
    g.write_gguf(path, meta, tensors)


def main():
    out_dir = sys.argv[1]
    os.makedirs(out_dir, exist_ok=True)
    for name in sys.argv[2:]:
        variant, type_name = name.rsplit("-", 1)
        make_model(os.path.join(out_dir, name + ".gguf"), variant, type_name)


if __name__ == "__main__":
    main()
