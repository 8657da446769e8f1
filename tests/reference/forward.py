#!/usr/bin/env python3
"""Independent numpy reference forward pass for the edgelm model layer.

Architectures: llama, qwen2, qwen3, phi3, gemma3, read from a GGUF file the way llama.cpp's
converter writes them. Written to read like the math, in float64, one token at a time, with a
KV cache that keeps keys *before* RoPE together with each entry's current position; RoPE is applied
when attending. So a context shift here just renumbers positions, while the C++ code re-rotates
cached keys: the two must agree.

With "kv_type": "f16" the cache holds what an F16 cache stores instead: each rotated key and each
value rounded float32 -> float16 (round to nearest even) when written, and on a context shift the
moved keys rotated by -n_discard and rounded again. "kv_type": "q8_0" is the same with each row
of keys and values quantized to GGUF q8_0 blocks and read back (round_q8_0).

Usage: forward.py JOBS.json
  JOBS.json = [{"model": path, "n_ctx": int, "out": path,
                "kv_type": "f32" (default), "f16" or "q8_0",
                "ops": [["decode", [ids...]], ["truncate", n_keep], ["shift", n_keep, n_discard]]}]
  Each job writes the logits of every decoded token, in order, as float32 [n][n_vocab] to "out",
  and, when the job has "hidden_out", their final-normed hidden states as float32 [n][n_embd].
"""
import json
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model_gguf import read_gguf  # noqa: E402


def dequantize(tensor):
    """Raw GGUF tensor -> float64 array of shape reversed(ne) (rows of ne[0] elements)."""
    n = int(np.prod(tensor.ne))
    if tensor.type_name == "F32":
        flat = np.frombuffer(tensor.data, dtype="<f4", count=n)
    elif tensor.type_name == "F16":
        flat = np.frombuffer(tensor.data, dtype="<f2", count=n)
    elif tensor.type_name == "BF16":
        bits = np.frombuffer(tensor.data, dtype="<u2", count=n).astype(np.uint32) << 16
        flat = bits.view(np.float32)
    else:
        import quants  # helper 'tensor': reference block (de)quantization
        flat = quants.dequantize(tensor.type_name.lower(), tensor.data, n)
    return np.asarray(flat, dtype=np.float64).reshape(tuple(reversed(tensor.ne)))


def rms_norm(x, weight, eps):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * weight


def silu(x):
    return x / (1.0 + np.exp(-x))


def gelu_tanh(x):
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def rope(x, pos, n_rot, base, scale, factors, neox, mscale):
    """Rotates the first n_rot dims of every head in x [n_heads][head_dim] for position pos."""
    half = n_rot // 2
    i = np.arange(half)
    theta = pos * scale * base ** (-2.0 * i / n_rot)
    if factors is not None:
        theta = theta / factors
    cos, sin = np.cos(theta) * mscale, np.sin(theta) * mscale
    out = x.copy()
    if neox:  # pairs (i, i + n_rot/2)
        a, b = x[:, i], x[:, i + half]
        out[:, i], out[:, i + half] = a * cos - b * sin, a * sin + b * cos
    else:  # adjacent pairs (2i, 2i+1)
        a, b = x[:, 2 * i], x[:, 2 * i + 1]
        out[:, 2 * i], out[:, 2 * i + 1] = a * cos - b * sin, a * sin + b * cos
    return out


class Model:
    def __init__(self, path):
        meta, tensors = read_gguf(path)
        arch = meta["general.architecture"]
        self.arch = arch

        def key(name, default=None):
            value = meta.get(f"{arch}.{name}", default)
            assert value is not None, f"missing {arch}.{name}"
            return value

        self.n_embd = key("embedding_length")
        self.n_layer = key("block_count")
        self.n_head = key("attention.head_count")
        self.n_head_kv = key("attention.head_count_kv", self.n_head)
        self.n_ctx_train = key("context_length")
        self.head_dim = key("attention.key_length", self.n_embd // self.n_head)
        self.n_rot = key("rope.dimension_count", self.head_dim)
        self.eps = key("attention.layer_norm_rms_epsilon")
        self.rope_base = key("rope.freq_base", 10000.0)
        scaling_type = key("rope.scaling.type", "linear")
        factor = key("rope.scaling.factor", 0.0)
        self.rope_scale = 1.0 if (scaling_type == "none" or factor == 0.0) else 1.0 / factor
        self.mscale = key("rope.scaling.attn_factor", 1.0)
        self.rope_ctx_orig = key("rope.scaling.original_context_length", self.n_ctx_train)
        self.neox = arch != "llama"

        w = {name: dequantize(t) for name, t in tensors.items()}
        self.tok_embd = w["token_embd.weight"]
        self.output = w.get("output.weight", self.tok_embd)  # tied embeddings when absent
        self.output_norm = w["output_norm.weight"]
        self.n_vocab = self.tok_embd.shape[0]
        self.rope_freqs = w.get("rope_freqs.weight")
        self.rope_long = w.get("rope_factors_long.weight")
        self.rope_short = w.get("rope_factors_short.weight")

        # gemma3 extras
        self.embd_scale = math.sqrt(self.n_embd) if arch == "gemma3" else 1.0
        self.final_softcap = key("final_logit_softcapping", 0.0)
        self.attn_softcap = key("attn_logit_softcapping", 0.0)
        self.attn_scale = 1.0 / math.sqrt(self.head_dim)
        self.window = [0] * self.n_layer
        self.layer_base = [self.rope_base] * self.n_layer
        self.layer_scale = [self.rope_scale] * self.n_layer
        if arch == "gemma3":
            if self.n_layer == 62:  # 27B: query_pre_attn_scalar = n_embd / n_head
                self.attn_scale = 1.0 / math.sqrt(self.n_embd / self.n_head)
            swa = key("attention.sliding_window", 0)
            if swa > 0:
                for il in range(self.n_layer):
                    if il % 6 < 5:  # five local layers, then one global
                        self.window[il] = swa
                        self.layer_base[il] = 10000.0
                        self.layer_scale[il] = 1.0

        self.layers = []
        for il in range(self.n_layer):
            p = f"blk.{il}."
            get = lambda name: w.get(p + name)  # noqa: E731
            layer = {name: get(name + ".weight") for name in [
                "attn_norm", "attn_q", "attn_k", "attn_v", "attn_qkv", "attn_output", "attn_q_norm",
                "attn_k_norm", "post_attention_norm", "ffn_norm", "ffn_gate", "ffn_up", "ffn_down",
                "post_ffw_norm"]}
            for name in ["attn_q", "attn_k", "attn_v"]:
                layer[name + "_bias"] = get(name + ".bias")
            self.layers.append(layer)


def round_f16(x):
    """x as an F16 cache stores it: the float32 value rounded to float16, read back."""
    return np.asarray(x, dtype=np.float32).astype(np.float16).astype(np.float64)


def round_q8_0(x):
    """x as a q8_0 cache stores it, read back. Per block of 32 float32 values (a head's row holds
    whole blocks): d = max|x| / 127 and q = x * (1 / d) rounded half away from zero, clamped to
    [-127, 127], all in float32 (as tensor::quantize_row computes them); the stored scale is d
    rounded to float16, and an element reads back as the float32 product q * d16."""
    x32 = np.asarray(x, dtype=np.float32)
    assert x32.size % 32 == 0, "q8_0 rows hold whole blocks of 32"
    blocks = x32.reshape(-1, 32)
    d = np.abs(blocks).max(axis=1, keepdims=True) / np.float32(127)
    safe = np.where(d != 0, d, np.float32(1))
    inv = np.where(d != 0, np.float32(1) / safe, np.float32(0)).astype(np.float32)
    scaled = (blocks * inv).astype(np.float64)  # the float32 product, widened exactly
    q = np.clip(np.sign(scaled) * np.floor(np.abs(scaled) + 0.5), -127, 127).astype(np.float32)
    q += np.float32(0)  # int8 quants have no -0: a zero quant reads back as +0
    d16 = d.astype(np.float16).astype(np.float32)
    return (q * d16).astype(np.float64).reshape(x32.shape)


class Session:
    def __init__(self, model, n_ctx, kv_type="f32"):
        assert kv_type in ("f32", "f16", "q8_0"), f"unknown kv_type {kv_type}"
        assert kv_type != "q8_0" or model.head_dim % 32 == 0, "q8_0 blocks must not straddle heads"
        self.m = model
        self.n_ctx = n_ctx
        # How stored keys (rotated) and values are rounded; None: kept exact, keys before RoPE.
        self.round_kv = {"f32": None, "f16": round_f16, "q8_0": round_q8_0}[kv_type]
        m = model
        if m.rope_freqs is not None:
            self.factors = m.rope_freqs
        elif m.rope_long is not None:
            self.factors = m.rope_long if n_ctx > m.rope_ctx_orig else m.rope_short
        else:
            self.factors = None
        # Per layer: keys before RoPE (F16, q8_0: rotated and rounded), values; plus the current
        # position of every cached entry.
        self.k = [[] for _ in range(m.n_layer)]
        self.v = [[] for _ in range(m.n_layer)]
        self.pos = []
        self.hidden = []  # final-normed hidden state of every decoded token

    def truncate(self, n_keep):
        self.pos = self.pos[:n_keep]
        self.k = [k[:n_keep] for k in self.k]
        self.v = [v[:n_keep] for v in self.v]

    def shift(self, n_keep, n_discard):
        drop = lambda xs: xs[:n_keep] + xs[n_keep + n_discard:]  # noqa: E731
        self.k = [drop(k) for k in self.k]
        self.v = [drop(v) for v in self.v]
        self.pos = list(range(len(self.pos) - n_discard))
        if self.round_kv:  # stored keys are rotated: turn the moved ones back by n_discard
            m = self.m
            for il in range(m.n_layer):
                self.k[il][n_keep:] = [
                    self.round_kv(rope(k, -n_discard, m.n_rot, m.layer_base[il], m.layer_scale[il],
                                   self.factors, m.neox, 1.0)) for k in self.k[il][n_keep:]]

    def decode(self, tokens):
        return np.stack([self.step(t) for t in tokens])

    def attention(self, il, q, pos):
        m = self.m
        group = m.n_head // m.n_head_kv
        if self.round_kv:
            keys = np.stack(self.k[il])
        else:
            keys = np.stack([rope(k, p, m.n_rot, m.layer_base[il], m.layer_scale[il],
                                  self.factors, m.neox, m.mscale)
                             for k, p in zip(self.k[il], self.pos)])
        values = np.stack(self.v[il])  # [n_kv_entries][n_head_kv][head_dim]
        positions = np.array(self.pos)
        visible = positions <= pos
        if m.window[il] > 0:
            visible &= positions > pos - m.window[il]
        out = np.zeros_like(q)
        for h in range(m.n_head):
            scores = keys[:, h // group, :] @ q[h] * m.attn_scale
            if m.attn_softcap > 0:
                scores = m.attn_softcap * np.tanh(scores / m.attn_softcap)
            scores = np.where(visible, scores, -np.inf)
            p = np.exp(scores - scores.max())
            p /= p.sum()
            out[h] = p @ values[:, h // group, :]
        return out

    def step(self, token):
        m = self.m
        assert len(self.pos) < self.n_ctx, "context full"
        pos = len(self.pos)
        self.pos.append(pos)
        hd, q_dim, kv_dim = m.head_dim, m.n_head * m.head_dim, m.n_head_kv * m.head_dim
        x = m.tok_embd[token] * m.embd_scale
        for il, L in enumerate(m.layers):
            h = rms_norm(x, L["attn_norm"], m.eps)
            if L["attn_qkv"] is not None:  # fused rows: q, then k, then v
                qkv = L["attn_qkv"] @ h
                q, k, v = qkv[:q_dim], qkv[q_dim:q_dim + kv_dim], qkv[q_dim + kv_dim:]
            else:
                q, k, v = L["attn_q"] @ h, L["attn_k"] @ h, L["attn_v"] @ h
            if L["attn_q_bias"] is not None:
                q, k, v = q + L["attn_q_bias"], k + L["attn_k_bias"], v + L["attn_v_bias"]
            q, k, v = q.reshape(m.n_head, hd), k.reshape(m.n_head_kv, hd), v.reshape(m.n_head_kv, hd)
            if L["attn_q_norm"] is not None:  # per-head RMSNorm before RoPE
                q = rms_norm(q, L["attn_q_norm"], m.eps)
                k = rms_norm(k, L["attn_k_norm"], m.eps)
            q = rope(q, pos, m.n_rot, m.layer_base[il], m.layer_scale[il], self.factors, m.neox,
                     m.mscale)
            if self.round_kv:
                k = self.round_kv(rope(k, pos, m.n_rot, m.layer_base[il], m.layer_scale[il],
                                       self.factors, m.neox, m.mscale))
                v = self.round_kv(v)
            self.k[il].append(k)
            self.v[il].append(v)
            attn = L["attn_output"] @ self.attention(il, q, pos).reshape(q_dim)
            if L["post_attention_norm"] is not None:
                attn = rms_norm(attn, L["post_attention_norm"], m.eps)
            x = x + attn

            h = rms_norm(x, L["ffn_norm"], m.eps)
            if L["ffn_gate"] is not None:
                gate, up = L["ffn_gate"] @ h, L["ffn_up"] @ h
            else:  # phi3: ffn_up holds [gate; up]
                gate_up = L["ffn_up"] @ h
                gate, up = np.split(gate_up, 2)
            act = gelu_tanh(gate) if m.arch == "gemma3" else silu(gate)
            ffn = L["ffn_down"] @ (act * up)
            if L["post_ffw_norm"] is not None:
                ffn = rms_norm(ffn, L["post_ffw_norm"], m.eps)
            x = x + ffn
        hidden = rms_norm(x, m.output_norm, m.eps)
        self.hidden.append(hidden)
        logits = m.output @ hidden
        if m.final_softcap > 0:
            logits = m.final_softcap * np.tanh(logits / m.final_softcap)
        return logits


def run_job(job, models):
    path = job["model"]
    if path not in models:
        models[path] = Model(path)
    session = Session(models[path], job["n_ctx"], job.get("kv_type", "f32"))
    outputs = []
    for op in job["ops"]:
        if op[0] == "decode":
            outputs.append(session.decode(op[1]))
        elif op[0] == "truncate":
            session.truncate(op[1])
        elif op[0] == "shift":
            session.shift(op[1], op[2])
        else:
            raise ValueError(f"unknown op {op[0]}")
    np.concatenate(outputs).astype("<f4").tofile(job["out"])
    if "hidden_out" in job:
        np.stack(session.hidden).astype("<f4").tofile(job["hidden_out"])


def main():
    with open(sys.argv[1]) as f:
        jobs = json.load(f)
    models = {}
    for job in jobs:
        run_job(job, models)


if __name__ == "__main__":
    main()
