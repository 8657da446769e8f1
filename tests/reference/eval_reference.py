#!/usr/bin/env python3
"""Independent numpy reference for edgelm's evaluation metrics (src/tools/eval_text.cpp).

Runs the float64 reference forward pass of forward.py (written for the model layer, one token at a
time) over the same sliding windows as edgelm eval and computes, from those logits:
  perplexity  exp(mean over scored tokens of -log p(token | window prefix))
  mean_kl     mean over scored positions of KL(P_base || P_candidate)   (with --candidate)
  p99_kl      99th percentile of the same (linear interpolation between order statistics)
  top1        share of scored positions where both models' argmax agree

Windows (see include/edgelm/eval.h): windows of n_ctx tokens start every `stride` tokens; each
starts from an empty cache; the first scores every prediction, later ones only the tokens no
earlier window scored.

Usage: eval_reference.py --model BASE.gguf [--candidate CAND.gguf] --tokens IDS.json
                         --n-ctx N --stride S --out RESULT.json [--kv-type f16|f32]
  --kv-type f16 rounds K and V as an F16 KV cache stores them (forward.py "kv_type").
"""
import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from forward import Model, Session  # noqa: E402


def windows(n_tokens, n_ctx, stride):
    scored_until = 1
    begin = 0
    while True:
        end = min(begin + n_ctx, n_tokens)
        yield begin, end, scored_until
        scored_until = end
        if end == n_tokens:
            return
        begin += stride


def log_softmax(logits):
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def scored_log_probs(model, tokens, n_ctx, stride, kv_type):
    """[n_scored][n_vocab] log-probabilities and the [n_scored] targets, in stream order."""
    rows, targets = [], []
    for begin, end, first in windows(len(tokens), n_ctx, stride):
        logits = Session(model, n_ctx, kv_type).decode(tokens[begin:end])  # row i predicts begin + i + 1
        for target in range(first, end):
            rows.append(log_softmax(logits[target - 1 - begin]))
            targets.append(tokens[target])
    return np.stack(rows), np.array(targets)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--candidate")
    ap.add_argument("--tokens", required=True)
    ap.add_argument("--n-ctx", type=int, required=True)
    ap.add_argument("--stride", type=int, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--kv-type", choices=["f32", "f16"], default="f32")
    args = ap.parse_args()
    with open(args.tokens) as f:
        tokens = json.load(f)

    base_lp, targets = scored_log_probs(Model(args.model), tokens, args.n_ctx, args.stride,
                                         args.kv_type)
    idx = np.arange(len(targets))
    result = {"n_scored": int(len(targets)),
              "perplexity": float(np.exp(-base_lp[idx, targets].mean()))}
    if args.candidate:
        cand_lp, _ = scored_log_probs(Model(args.candidate), tokens, args.n_ctx, args.stride,
                                      args.kv_type)
        kl = (np.exp(base_lp) * (base_lp - cand_lp)).sum(axis=1)
        result["candidate_perplexity"] = float(np.exp(-cand_lp[idx, targets].mean()))
        result["mean_kl"] = float(kl.mean())
        result["p99_kl"] = float(np.percentile(kl, 99))  # numpy's default is linear interpolation
        result["top1"] = float((base_lp.argmax(axis=1) == cand_lp.argmax(axis=1)).mean())
    with open(args.out, "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main()
