#!/usr/bin/python3
"""Independent numpy reference for edgelm's sampler chain (include/edgelm/sampler.h).

Usage: sampler_reference.py <in.json> <out.json>
Input: {"cases": [...]}; each case has "op":
  "chain":    {"logits", "params": {...SamplerParams fields...}, "history": [ids]}
              -> {"candidates": [[id, prob], ...]} in final order (logit desc, id asc)
  "logprobs": {"logits", "token", "top_n"} -> {"chosen": lp, "top": [[id, lp], ...]}
  "rng":      {"seed", "count"}
(-inf logits and biases arrive as null, since JSON has no infinities.) -> {"u64": ["decimal", ...], "unit": [float, ...]}
Everything is float64 and written from the definitions, not from the C++ code.
"""
import json
import sys
from collections import Counter

import numpy as np

MASK64 = (1 << 64) - 1


def number(v):
    # JSON has no infinities: the test writes -inf as null
    return -np.inf if v is None else float(v)


def softmax(x):
    x = np.asarray(x, dtype=np.float64)
    e = np.exp(x - x.max())
    return e / e.sum()


def by_logit_order(ids, logits):
    # descending logit, ascending id on ties
    return sorted(range(len(ids)), key=lambda i: (-logits[i], ids[i]))


def chain(case):
    p = case["params"]
    logits = np.array([number(v) for v in case["logits"]], dtype=np.float64)
    n = len(logits)
    for tok, bias in p.get("logit_bias", []):
        logits[tok] += number(bias)
    last_n = p.get("repeat_last_n", 64)
    history = case.get("history", [])
    recent = history[-last_n:] if last_n > 0 else []
    rp = p.get("repeat_penalty", 1.0)
    fp = p.get("frequency_penalty", 0.0)
    pp = p.get("presence_penalty", 0.0)
    for tok, count in Counter(recent).items():
        if not np.isfinite(logits[tok]):
            continue
        logits[tok] = logits[tok] / rp if logits[tok] > 0 else logits[tok] * rp
        logits[tok] -= count * fp + pp

    ids = [i for i in range(n) if logits[i] > -np.inf]
    vals = [logits[i] for i in ids]
    temperature = p.get("temperature", 0.8)
    if temperature == 0:
        best = max(range(len(ids)), key=lambda i: (vals[i], -ids[i]))
        return {"candidates": [[ids[best], 1.0]]}

    order = by_logit_order(ids, vals)
    ids = [ids[i] for i in order]
    vals = [vals[i] for i in order]

    top_k = p.get("top_k", 40)
    if 0 < top_k < len(ids):
        ids, vals = ids[:top_k], vals[:top_k]

    typical_p = p.get("typical_p", 1.0)
    if typical_p < 1.0 and len(ids) > 1:
        probs = softmax(vals)
        entropy = -np.sum(probs * np.log(probs))
        dist = np.abs(-np.log(probs) - entropy)
        order = sorted(range(len(ids)), key=lambda i: (dist[i], ids[i]))
        cum, keep = 0.0, len(ids)
        for rank, i in enumerate(order):
            cum += probs[i]
            if cum >= typical_p:
                keep = rank + 1
                break
        kept = order[:keep]
        ids = [ids[i] for i in kept]
        vals = [vals[i] for i in kept]
        order = by_logit_order(ids, vals)
        ids = [ids[i] for i in order]
        vals = [vals[i] for i in order]

    top_p = p.get("top_p", 0.95)
    if top_p < 1.0 and len(ids) > 1:
        probs = softmax(vals)
        cum = np.cumsum(probs)
        keep = int(np.argmax(cum >= top_p)) + 1 if np.any(cum >= top_p) else len(ids)
        ids, vals = ids[:keep], vals[:keep]

    min_p = p.get("min_p", 0.05)
    if min_p > 0 and len(ids) > 1:
        # p_i >= min_p * p_max
        probs = softmax(vals)
        keep = [i for i in range(len(ids)) if probs[i] >= min_p * probs.max()]
        ids = [ids[i] for i in keep]
        vals = [vals[i] for i in keep]

    probs = softmax(np.array(vals) / temperature)
    return {"candidates": [[ids[i], float(probs[i])] for i in range(len(ids))]}


def logprobs(case):
    x = np.array(case["logits"], dtype=np.float64)
    m = x.max()
    lse = m + np.log(np.sum(np.exp(x - m)))
    lp = x - lse
    order = sorted(range(len(x)), key=lambda i: (-x[i], i))[: case["top_n"]]
    return {"chosen": float(lp[case["token"]]), "top": [[i, float(lp[i])] for i in order]}


def rng(case):
    # splitmix64 seeding + xoshiro256** (Blackman & Vigna), unit = (x >> 11) * 2^-53
    s = case["seed"]
    state = []
    for _ in range(4):
        s = (s + 0x9E3779B97F4A7C15) & MASK64
        z = s
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
        state.append(z ^ (z >> 31))

    def rotl(x, k):
        return ((x << k) | (x >> (64 - k))) & MASK64

    out = []
    for _ in range(case["count"]):
        result = (rotl((state[1] * 5) & MASK64, 7) * 9) & MASK64
        t = (state[1] << 17) & MASK64
        state[2] ^= state[0]
        state[3] ^= state[1]
        state[1] ^= state[2]
        state[0] ^= state[3]
        state[2] ^= t
        state[3] = rotl(state[3], 45)
        out.append(result)
    return {"u64": [str(v) for v in out], "unit": [(v >> 11) * 2.0**-53 for v in out]}


def main():
    with open(sys.argv[1]) as f:
        cases = json.load(f)["cases"]
    ops = {"chain": chain, "logprobs": logprobs, "rng": rng}
    results = [ops[c["op"]](c) for c in cases]
    with open(sys.argv[2], "w") as f:
        json.dump({"results": results}, f)


if __name__ == "__main__":
    main()
