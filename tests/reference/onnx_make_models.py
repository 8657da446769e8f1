#!/usr/bin/python3
"""Builds small random-init causal LMs in PyTorch and exports them to ONNX (the test models).

  onnx_make_models.py OUT_DIR            the small test models below
  onnx_make_models.py OUT_DIR --bench    gpt2_bench.onnx / llama_bench.onnx: the same architectures
                                         at benchmark size (dim 512, 4 layers, vocab 8192), opset 17

Writes, for opset 13 and 17:
  gpt2_op{N}.onnx   GPT-2 style: learned positions, LayerNorm, tanh/erf GELU MLP, fused QKV
  llama_op{N}.onnx  Llama style: RMSNorm, rotary embeddings, grouped-query attention, SwiGLU
  llama_ext_op17.onnx (+ llama_ext_op17.onnx.data): the llama model with its weights as external data
Each model maps input_ids int64 [batch, seq] -> logits float [batch, seq, vocab] (seq dynamic).
  zoo_op{N}.onnx    x float [3, 8] -> y0..y8: operators the LMs do not use (Gemm, LogSoftmax, ...)
Also writes zoo_x.bin (its test input), ids.bin (int64 test input [1, 7]) and torch_logits_<model>.bin (PyTorch's output) so
tests can check both ONNX Runtime and edgelm against the PyTorch forward pass.
"""
import math
import os
import sys

import numpy as np
import torch
from torch import nn

VOCAB = 97
DIM = 32
HEADS = 4
KV_HEADS = 2
LAYERS = 2
MAX_POS = 64


class Gpt2Block(nn.Module):
    def __init__(self, gelu_approx):
        super().__init__()
        self.ln1 = nn.LayerNorm(DIM)
        self.qkv = nn.Linear(DIM, 3 * DIM)
        self.proj = nn.Linear(DIM, DIM)
        self.ln2 = nn.LayerNorm(DIM)
        self.fc = nn.Linear(DIM, 4 * DIM)
        self.out = nn.Linear(4 * DIM, DIM)
        self.gelu = nn.GELU(approximate=gelu_approx)

    def forward(self, x, mask):
        b, t, _ = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(DIM, dim=2)
        hd = DIM // HEADS
        q = q.view(b, t, HEADS, hd).transpose(1, 2)
        k = k.view(b, t, HEADS, hd).transpose(1, 2)
        v = v.view(b, t, HEADS, hd).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hd))
        att = att.masked_fill(~mask, float("-inf"))
        att = torch.softmax(att, dim=-1)
        y = (att @ v).transpose(1, 2).contiguous().view(b, t, DIM)
        x = x + self.proj(y)
        return x + self.out(self.gelu(self.fc(self.ln2(x))))


class Gpt2(nn.Module):
    def __init__(self):
        super().__init__()
        self.wte = nn.Embedding(VOCAB, DIM)
        self.wpe = nn.Embedding(MAX_POS, DIM)
        # Both GELU forms PyTorch exports: tanh approximation and erf.
        self.blocks = nn.ModuleList([Gpt2Block("tanh" if i % 2 == 0 else "none") for i in range(LAYERS)])
        self.ln_f = nn.LayerNorm(DIM)
        self.head = nn.Linear(DIM, VOCAB, bias=False)
        # GPT-2's causal mask buffer, sliced per call (exports as Slice at any opset)
        self.register_buffer("bias", torch.tril(torch.ones(MAX_POS, MAX_POS, dtype=torch.bool)))

    def forward(self, input_ids):
        t = input_ids.shape[1]
        pos = torch.arange(0, t, dtype=torch.long).unsqueeze(0)
        x = self.wte(input_ids) + self.wpe(pos)
        mask = self.bias[:t, :t]
        for block in self.blocks:
            x = block(x, mask)
        return self.head(self.ln_f(x))


class RmsNorm(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(DIM) + 0.1 * torch.randn(DIM))

    def forward(self, x):
        var = x.pow(2).mean(-1, keepdim=True)
        return self.weight * (x * torch.rsqrt(var + 1e-5))


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class LlamaBlock(nn.Module):
    def __init__(self):
        super().__init__()
        hd = DIM // HEADS
        self.norm1 = RmsNorm()
        self.wq = nn.Linear(DIM, DIM, bias=False)
        self.wk = nn.Linear(DIM, KV_HEADS * hd, bias=False)
        self.wv = nn.Linear(DIM, KV_HEADS * hd, bias=False)
        self.wo = nn.Linear(DIM, DIM, bias=False)
        self.norm2 = RmsNorm()
        self.gate = nn.Linear(DIM, 2 * DIM, bias=False)
        self.up = nn.Linear(DIM, 2 * DIM, bias=False)
        self.down = nn.Linear(2 * DIM, DIM, bias=False)

    def forward(self, x, cos, sin, mask):
        b, t, _ = x.shape
        hd = DIM // HEADS
        h = self.norm1(x)
        q = self.wq(h).view(b, t, HEADS, hd).transpose(1, 2)
        k = self.wk(h).view(b, t, KV_HEADS, hd).transpose(1, 2)
        v = self.wv(h).view(b, t, KV_HEADS, hd).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        rep = HEADS // KV_HEADS
        k = k.unsqueeze(2).expand(b, KV_HEADS, rep, t, hd).reshape(b, HEADS, t, hd)
        v = v.unsqueeze(2).expand(b, KV_HEADS, rep, t, hd).reshape(b, HEADS, t, hd)
        att = torch.matmul(q, k.transpose(2, 3)) / math.sqrt(hd) + mask
        att = torch.softmax(att.float(), dim=-1)
        y = torch.matmul(att, v).transpose(1, 2).reshape(b, t, DIM)
        x = x + self.wo(y)
        h = self.norm2(x)
        return x + self.down(nn.functional.silu(self.gate(h)) * self.up(h))


class Llama(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, DIM)
        self.blocks = nn.ModuleList([LlamaBlock() for _ in range(LAYERS)])
        self.norm = RmsNorm()
        self.head = nn.Linear(DIM, VOCAB, bias=False)
        hd = DIM // HEADS
        self.use_trilu = True
        self.register_buffer("inv_freq", 1.0 / (10000 ** (torch.arange(0, hd, 2).float() / hd)))

    def forward(self, input_ids):
        t = input_ids.shape[1]
        pos = torch.arange(t, dtype=torch.float32)
        freqs = pos[:, None] * self.inv_freq[None, :]
        emb = torch.cat((freqs, freqs), dim=-1)
        cos, sin = emb.cos()[None, None], emb.sin()[None, None]
        if self.use_trilu:  # Trilu exists from opset 14
            mask = torch.full((t, t), float("-inf")).triu(1)[None, None]
        else:
            idx = torch.arange(t)
            future = idx[None, :] > idx[:, None]
            mask = torch.where(future, torch.tensor(float("-inf")), torch.tensor(0.0))[None, None]
        x = self.embed(input_ids)
        for block in self.blocks:
            x = block(x, cos, sin, mask)
        return self.head(self.norm(x))


class OpsZoo(nn.Module):
    """Operators the two LMs do not use, for one-by-one comparison with ONNX Runtime.
    Input x float [3, 8]; outputs y0..y8."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(8, 6)
        self.use_trilu = True

    def forward(self, x):
        g = self.linear(x)                                   # Gemm
        ys = [torch.log_softmax(g, dim=-1)]                  # LogSoftmax
        ys.append(x.sum(dim=1, keepdim=True))                # ReduceSum
        ys.append(torch.flatten(torch.relu(x).view(-1, 2, 4), 1))  # Relu, Flatten
        a, b = x.split([4, 4], dim=1)                        # Split
        ys.append(a * b)
        ys.append(torch.fake_quantize_per_tensor_affine(x, 0.05, 10, 0, 255))  # Quantize/Dequantize
        ys.append(x.unsqueeze(0).squeeze(0).to(torch.int32).to(torch.float32))  # Cast, (Un)squeeze
        ys.append(torch.arange(0, x.shape[0] * 2, 1, dtype=torch.float32) * 0.5)  # float Range
        ys.append(torch.triu(x, 1) if self.use_trilu else torch.tanh(x))  # Trilu (opset >= 14)
        ys.append(x.mean() - x.abs().max() / 2 + torch.exp(-x).sum())
        return tuple(ys)


def export_zoo(path, opset):
    model = OpsZoo()
    model.use_trilu = opset >= 14
    x = torch.randn(3, 8)
    names = [f"y{i}" for i in range(9)]
    torch.onnx.export(model, (x,), path, input_names=["x"], output_names=names,
                      dynamic_axes={"x": {0: "rows"}}, opset_version=opset, do_constant_folding=True)


def export(model, path, opset, external=False):
    ids = torch.randint(0, VOCAB, (1, 5))
    model.use_trilu = opset >= 14
    torch.onnx.export(model, (ids,), path, input_names=["input_ids"], output_names=["logits"],
                      dynamic_axes={"input_ids": {0: "batch", 1: "seq"},
                                    "logits": {0: "batch", 1: "seq"}},
                      opset_version=opset, do_constant_folding=True)
    if external:
        convert_to_external(path)


def convert_to_external(path):
    """Rewrites the initializers' raw_data of an exported file into PATH.data (ONNX external data)
    with a tiny protobuf editor, since Debian's torch exports without the onnx package."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import onnx_proto_edit

    onnx_proto_edit.externalize(path, os.path.basename(path) + ".data")


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(1234)
    if "--bench" in sys.argv[2:]:
        global VOCAB, DIM, HEADS, KV_HEADS, LAYERS, MAX_POS
        VOCAB, DIM, HEADS, KV_HEADS, LAYERS, MAX_POS = 8192, 512, 8, 4, 4, 256
        with torch.no_grad():
            for name, model in (("gpt2", Gpt2()), ("llama", Llama())):
                model.eval()
                export(model, os.path.join(out, f"{name}_bench.onnx"), 17)
        return
    ids = torch.tensor([[3, 14, 15, 92, 65, 35, 89]], dtype=torch.long)
    ids.numpy().astype("<i8").tofile(os.path.join(out, "ids.bin"))
    models = {"gpt2": Gpt2(), "llama": Llama()}
    with torch.no_grad():
        for name, model in models.items():
            model.eval()
            model(ids).numpy().astype("<f4").tofile(os.path.join(out, f"torch_logits_{name}.bin"))
            for opset in (13, 17):
                export(model, os.path.join(out, f"{name}_op{opset}.onnx"), opset)
        export(models["llama"], os.path.join(out, "llama_ext_op17.onnx"), 17, external=True)
        for opset in (13, 17):
            export_zoo(os.path.join(out, f"zoo_op{opset}.onnx"), opset)
    x = torch.randn(3, 8) * 2
    x.numpy().astype("<f4").tofile(os.path.join(out, "zoo_x.bin"))


if __name__ == "__main__":
    main()
