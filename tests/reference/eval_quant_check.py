#!/usr/bin/env python3
"""Model-level quantization check: decodes every tensor of quantized GGUF files with the numpy
block reference (quants.py) and compares it with the original F32 model.

Usage: eval_quant_check.py ORIGINAL.gguf OUT.json QUANTIZED.gguf...
OUT.json = {quantized path: {tensor name: {"type": "q8_0", "rel_rms": float, "sum": float}}}
  rel_rms = ||w - dequant(q)|| / ||w||, sum = sum of dequant(q) (float64), per tensor.
"""
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import quants  # noqa: E402
from model_gguf import read_gguf  # noqa: E402


def floats(tensor):
    n = int(np.prod(tensor.ne))
    return quants.dequantize(tensor.type_name.lower(), tensor.data, n).astype(np.float64)


def main():
    _, original = read_gguf(sys.argv[1])
    result = {}
    for path in sys.argv[3:]:
        _, tensors = read_gguf(path)
        per_tensor = {}
        for name, t in tensors.items():
            ref = floats(original[name])
            got = floats(t)
            per_tensor[name] = {"type": t.type_name.lower(),
                                "rel_rms": float(np.linalg.norm(ref - got) / np.linalg.norm(ref)),
                                "sum": float(got.sum())}
        result[path] = per_tensor
    with open(sys.argv[2], "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main()
