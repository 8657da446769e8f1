#!/usr/bin/python3
"""Exports a small random-init LM whose attention has no mask (bidirectional, as an encoder or a
mask-free decoder writes it: scores / sqrt(d) -> softmax -> @ v) at opset 13 and 17, for the
edgelm.Attention fusion test.

  make_unmasked_attention.py OUT_DIR

Writes unmasked_op13.onnx, unmasked_op17.onnx (input_ids int64 [batch, seq] -> logits), ids.bin
(int64 [1, 9]) and torch_logits.bin (PyTorch's logits for ids.bin).
"""
import math
import os
import sys

import torch
from torch import nn

VOCAB, DIM, HEADS, LAYERS = 61, 24, 3, 2


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.qkv = nn.Linear(DIM, 3 * DIM)
        self.proj = nn.Linear(DIM, DIM)

    def forward(self, x):
        b, t, _ = x.shape
        hd = DIM // HEADS
        q, k, v = self.qkv(x).split(DIM, dim=2)
        q = q.view(b, t, HEADS, hd).transpose(1, 2)
        k = k.view(b, t, HEADS, hd).transpose(1, 2)
        v = v.view(b, t, HEADS, hd).transpose(1, 2)
        att = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(hd), dim=-1)
        return x + self.proj((att @ v).transpose(1, 2).reshape(b, t, DIM))


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, DIM)
        self.blocks = nn.ModuleList([Block() for _ in range(LAYERS)])
        self.head = nn.Linear(DIM, VOCAB, bias=False)

    def forward(self, input_ids):
        x = self.embed(input_ids)
        for block in self.blocks:
            x = block(x)
        return self.head(x)


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(99)
    model = Model().eval()
    ids = torch.tensor([[5, 17, 33, 2, 60, 41, 8, 19, 27]], dtype=torch.long)
    ids.numpy().astype("<i8").tofile(os.path.join(out, "ids.bin"))
    with torch.no_grad():
        model(ids).numpy().astype("<f4").tofile(os.path.join(out, "torch_logits.bin"))
        for opset in (13, 17):
            torch.onnx.export(model, (ids,), os.path.join(out, f"unmasked_op{opset}.onnx"),
                              input_names=["input_ids"], output_names=["logits"],
                              dynamic_axes={"input_ids": {0: "batch", 1: "seq"},
                                            "logits": {0: "batch", 1: "seq"}},
                              opset_version=opset, do_constant_folding=True)


if __name__ == "__main__":
    main()
