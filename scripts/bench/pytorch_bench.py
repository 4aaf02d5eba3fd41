#!/usr/bin/python3
"""One PyTorch cell of the benchmark (scripts/bench/run drives it), in a fresh process.

    pytorch_bench.py --workload mlp|cnn|lstm|transformer|tiny_mlp [--settings default|tuned]
                     [--warmup N] [--steps N] [--windows N] [--seed N]

The same workloads as lighter_bench's hand-written LibTorch models, written the plain PyTorch eager way (torch.nn
modules, Adam, F.cross_entropy), on float32 data held in memory. "default" leaves PyTorch and glibc as they are;
"tuned" raises glibc malloc's mmap and trim thresholds (mallopt through ctypes) and uses one thread per hardware
thread, as Lighter's defaults do. Prints one JSON line: milliseconds per step of each window of --steps steps after
--warmup steps, and the peak resident memory.
"""
import argparse
import ctypes
import json
import math
import os
import resource
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

BATCHES = 8
VOCAB, SEQ = 1000, 32
CHARS, CONTEXT, MODEL, HEADS, FEEDFORWARD = 96, 64, 128, 4, 512


def tune():
    libc = ctypes.CDLL("libc.so.6")
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
    libc.mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024)
    libc.mallopt(M_TRIM_THRESHOLD, 1024 * 1024 * 1024)
    torch.set_num_threads(os.cpu_count() or 1)


class Mlp(nn.Module):
    def __init__(self, sizes):
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes, sizes[1:]))

    def forward(self, x):
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i + 1 < len(self.layers):
                x = F.relu(x)
        return x


class Cnn(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1, self.c2 = nn.Conv2d(1, 32, 3), nn.Conv2d(32, 64, 3)
        self.f1, self.f2 = nn.Linear(64 * 5 * 5, 128), nn.Linear(128, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.c1(x)), 2)
        x = F.max_pool2d(F.relu(self.c2(x)), 2)
        x = F.relu(self.f1(x.flatten(1)))
        return self.f2(F.dropout(x, 0.5, self.training))


class LstmClassifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(VOCAB, 64)
        self.lstm = nn.LSTM(64, 128, batch_first=True)
        self.out = nn.Linear(128, 2)

    def forward(self, ids):
        _, (h, _) = self.lstm(self.embedding(ids))
        return self.out(h.squeeze(0))


class DecoderBlock(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(MODEL, eps=1e-5), nn.LayerNorm(MODEL, eps=1e-5)
        self.q, self.k, self.v, self.o = (nn.Linear(MODEL, MODEL) for _ in range(4))
        self.ff1, self.ff2 = nn.Linear(MODEL, FEEDFORWARD), nn.Linear(FEEDFORWARD, MODEL)

    def forward(self, x, causal_bias):
        n, t, d = x.size(0), x.size(1), MODEL // HEADS
        heads = lambda z: z.view(n, t, HEADS, d).transpose(1, 2)
        h = self.ln1(x)
        q, k, v = heads(self.q(h)), heads(self.k(h)), heads(self.v(h))
        scores = torch.matmul(q * (1.0 / math.sqrt(d)), k.transpose(-2, -1)) + causal_bias
        context = torch.matmul(torch.softmax(scores, -1), v).transpose(1, 2).reshape(n, t, MODEL)
        x = x + self.o(context)
        return x + self.ff2(F.relu(self.ff1(self.ln2(x))))


class CharLm(nn.Module):
    def __init__(self):
        super().__init__()
        self.tokens, self.positions = nn.Embedding(CHARS, MODEL), nn.Embedding(CONTEXT, MODEL)
        self.b1, self.b2 = DecoderBlock(), DecoderBlock()
        self.ln = nn.LayerNorm(MODEL, eps=1e-5)
        self.head = nn.Linear(MODEL, CHARS)
        self.register_buffer("causal_bias", torch.full((CONTEXT, CONTEXT), -1e9).triu(1))
        self.register_buffer("position_ids", torch.arange(CONTEXT))

    def forward(self, ids):
        x = self.tokens(ids) + self.positions(self.position_ids)
        x = self.b2(self.b1(x, self.causal_bias), self.causal_bias)
        return self.head(self.ln(x))


def workload(name):
    if name in ("mlp", "tiny_mlp"):
        tiny = name == "tiny_mlp"
        batch, inputs, outputs = (16, 4, 3) if tiny else (128, 784, 10)
        xs = [torch.rand(batch, inputs) for _ in range(BATCHES)]
        ys = [torch.randint(outputs, (batch,)) for _ in range(BATCHES)]
        return batch, Mlp([4, 16, 3] if tiny else [784, 512, 256, 10]), xs, ys
    if name == "cnn":
        xs = [torch.rand(64, 28, 28, 1).permute(0, 3, 1, 2).contiguous() for _ in range(BATCHES)]
        return 64, Cnn(), xs, [torch.randint(10, (64,)) for _ in range(BATCHES)]
    if name == "lstm":
        xs = [torch.randint(1, VOCAB, (64, SEQ)) for _ in range(BATCHES)]
        return 64, LstmClassifier(), xs, [torch.randint(2, (64,)) for _ in range(BATCHES)]
    if name == "transformer":
        xs = [torch.randint(CHARS, (32, CONTEXT)) for _ in range(BATCHES)]
        ys = [torch.randint(CHARS, (32, CONTEXT)) for _ in range(BATCHES)]
        return 32, CharLm(), xs, ys
    raise SystemExit(f"pytorch_bench.py: unknown workload '{name}' (mlp, cnn, lstm, transformer, tiny_mlp)")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--workload", default="mlp")
    p.add_argument("--settings", default="default", choices=["default", "tuned"])
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--windows", type=int, default=3)
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args()
    if a.settings == "tuned":
        tune()
    torch.manual_seed(a.seed)
    batch, net, xs, ys = workload(a.workload)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    net.train()

    def step(i):
        x, y = xs[i % BATCHES], ys[i % BATCHES]
        opt.zero_grad()
        logits = net(x)
        loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1))
        loss.backward()
        opt.step()

    for i in range(a.warmup):
        step(i)
    i, windows = a.warmup, []
    for _ in range(a.windows):
        t0 = time.perf_counter()
        for _ in range(a.steps):
            step(i)
            i += 1
        windows.append((time.perf_counter() - t0) * 1000.0 / max(1, a.steps))
    print(json.dumps({"mode": "step", "workload": a.workload, "impl": "pytorch", "settings": a.settings,
                      "batch": batch, "ms_per_step": windows, "steps": a.steps, "warmup": a.warmup,
                      "threads": torch.get_num_threads(), "torch": torch.__version__,
                      "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0}))


if __name__ == "__main__":
    sys.exit(main())
