"""Independent numpy formulations of the kernels (vectorised over whole tensors, float64).

Usage: oracle.py <op> <input.json> <output.json>; the C++ tests write the inputs and compare.
"""
import json
import sys

import numpy as np


def rope(a):
    x = np.array(a["x"], dtype=np.float64).reshape(a["n_heads"], a["head_dim"])
    n_rot, pos = a["n_rot"], a["pos"]
    i = np.arange(n_rot // 2, dtype=np.float64)
    theta = pos * a["freq_scale"] * a["freq_base"] ** (-2.0 * i / n_rot)
    if a.get("freq_factors") is not None:
        theta = theta / np.array(a["freq_factors"], dtype=np.float64)
    if a["style"] == "norm":  # adjacent pairs
        first, second = np.arange(0, n_rot, 2), np.arange(1, n_rot, 2)
    else:  # neox: halves
        first, second = np.arange(n_rot // 2), np.arange(n_rot // 2, n_rot)
    # Rotation as multiplication by e^{i theta} of the complex number (first + i second).
    z = (x[:, first] + 1j * x[:, second]) * np.exp(1j * theta)
    out = x.copy()
    out[:, first], out[:, second] = z.real, z.imag
    return out.ravel()


def attention(a):
    n_head, n_kv, hd = a["n_head"], a["n_head_kv"], a["head_dim"]
    n_tok, pos0 = a["n_tokens"], a["pos0"]
    n_pos = pos0 + n_tok
    q = np.array(a["q"], dtype=np.float64).reshape(n_tok, n_head, hd)
    k = np.array(a["k"], dtype=np.float64).reshape(n_pos, n_kv, hd)
    v = np.array(a["v"], dtype=np.float64).reshape(n_pos, n_kv, hd)
    if a.get("kv_f16"):  # an F16 cache: the float32 keys and values rounded to half precision
        k = k.astype(np.float32).astype(np.float16).astype(np.float64)
        v = v.astype(np.float32).astype(np.float16).astype(np.float64)
    # Expand kv heads to query heads (GQA): query head h reads kv head h // (n_head // n_kv).
    k = np.repeat(k, n_head // n_kv, axis=1)
    v = np.repeat(v, n_head // n_kv, axis=1)
    scores = np.einsum("thd,phd->htp", q, k) * a["scale"]
    if a["softcap"] > 0:
        scores = a["softcap"] * np.tanh(scores / a["softcap"])
    qpos = pos0 + np.arange(n_tok)[:, None]
    kpos = np.arange(n_pos)[None, :]
    visible = kpos <= qpos
    if a["window"] > 0:
        visible &= kpos > qpos - a["window"]
    scores = np.where(visible[None], scores, -np.inf)
    scores -= scores.max(axis=-1, keepdims=True)
    p = np.exp(scores)
    p /= p.sum(axis=-1, keepdims=True)
    return np.einsum("htp,phd->thd", p, v).ravel()


def to_f16(a):
    """IEEE half bits of each float32 value."""
    with np.errstate(over="ignore"):  # overflow to inf is one of the cases
        return np.array(a["x"], dtype=np.float32).astype(np.float16).view(np.uint16)


def main():
    op, in_path, out_path = sys.argv[1:4]
    with open(in_path) as f:
        args = json.load(f)
    result = {"rope": rope, "attention": attention, "to_f16": to_f16}[op](args)
    with open(out_path, "w") as f:
        json.dump([float(r) for r in result], f)


if __name__ == "__main__":
    main()
