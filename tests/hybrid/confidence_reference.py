#!/usr/bin/env python3
"""Independent oracle for edgelm::hybrid::ConfidenceAccumulator: reads float32 logit rows and the
tokens drawn from them, and prints the mean/min chosen-token log-probability, the mean entropy
(nats) and the mean top-1/top-2 probability margin, computed with numpy in float64.

usage: confidence_reference.py LOGITS.f32 META.json   (META: {"vocab": V, "tokens": [...]})
"""
import json
import sys

import numpy as np


def main():
    logits_path, meta_path = sys.argv[1], sys.argv[2]
    with open(meta_path) as f:
        meta = json.load(f)
    rows = np.fromfile(logits_path, dtype=np.float32).astype(np.float64).reshape(-1, meta["vocab"])
    tokens = np.asarray(meta["tokens"])
    assert rows.shape[0] == tokens.shape[0]
    shifted = rows - rows.max(axis=1, keepdims=True)
    logp = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    p = np.exp(logp)
    chosen = logp[np.arange(len(tokens)), tokens]
    top2 = np.sort(p, axis=1)[:, -2:]
    print(json.dumps({
        "tokens": int(len(tokens)),
        "mean_logprob": float(chosen.mean()),
        "min_logprob": float(chosen.min()),
        "mean_entropy": float((-(p * logp).sum(axis=1)).mean()),
        "mean_margin": float((top2[:, 1] - top2[:, 0]).mean()),
    }))


if __name__ == "__main__":
    main()
