#!/usr/bin/env python3
"""Times the plain-PyTorch SpikeGPT of tests/reference/spike_gpt.py (eager mode, WKV and LIF as loops over
time, float32) on the shape of bench_spike_gpt's BM_SpikeGptTrain: L = 6, d = 256, context 256, batch 8,
vocabulary 256; one step = forward, cross-entropy with L2Wrap, backward, Adam. Prints tokens/s per thread
count, and the ours/theirs ratio when given bench_spike_gpt's JSON output.

Needs torch (Debian: python3-torch, run with /usr/bin/python3) and, for a fair comparison, OpenBLAS
(`apt-get install libopenblas0-pthread`): without it Debian's torch uses the reference BLAS, about 25x slower
on matrix products. Usage:
  /usr/bin/python3 benchmarks/compare/spike_gpt_torch.py [--steps 3] [--json build/bench_spike_gpt.json]
"""
import argparse
import json
import os
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "reference"))
import spike_gpt as ref  # noqa: E402


def lif_fast(x, margins, spikes_out=None):
    """The reference's LIF without the fixture bookkeeping (margins), which would add a sync per step."""
    v = torch.zeros_like(x[0])
    out = []
    for t in range(x.shape[0]):
        h = v + (x[t] - v) / ref.TAU
        s = ref.ATanSpike.apply(h - ref.THETA)
        v = (1.0 - s) * h
        out.append(s)
    return torch.stack(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--json", help="bench_spike_gpt --benchmark_out JSON, for the ratio")
    args = ap.parse_args()
    ref.lif = lif_fast
    V, d, L, B, T = 256, 256, 6, 8, 256
    gen = torch.Generator().manual_seed(0)
    P = {}
    for name, shape in ref.parameter_shapes(V, d, L):
        if name.endswith("ln0.weight") or name.endswith("ln1.weight") or name.endswith("ln2.weight") \
                or name == "ln_out.weight":
            P[name] = torch.ones(*shape)
        elif name.endswith(".bias"):
            P[name] = torch.zeros(*shape)
        elif len(shape) == 2:
            P[name] = (torch.rand(*shape, generator=gen) * 2 - 1) / shape[1] ** 0.5
        else:
            P[name] = torch.rand(*shape, generator=gen) * 0.5
    for name, value in ref.reference_init(d, L).items():
        P[name] = value.to(torch.float32).reshape(P[name].shape)
    for p in P.values():
        p.requires_grad_(True)
    opt = torch.optim.Adam(P.values(), lr=6e-4, betas=(0.9, 0.99), eps=1e-8)
    tokens = torch.randint(0, V, (B, T), generator=gen)
    targets = torch.randint(0, V, (B, T), generator=gen)

    theirs = {}
    for threads in [int(t) for t in args.threads.split(",")]:
        torch.set_num_threads(threads)
        times = []
        for step in range(args.steps + 1):
            t0 = time.perf_counter()
            opt.zero_grad()
            logits = ref.model_forward(P, tokens, L, [], [])
            ce = torch.nn.functional.cross_entropy(logits.reshape(-1, V), targets.reshape(-1))
            ref.L2Wrap.apply(ce, logits).backward()
            opt.step()
            if step > 0:  # the first step warms up the allocator
                times.append(time.perf_counter() - t0)
        best = min(times)
        theirs[threads] = B * T / best
        print(f"pytorch eager, {threads} thread(s): {best * 1e3:.0f} ms/step, {theirs[threads]:.1f} tokens/s")
    if args.json:
        with open(args.json) as f:
            data = json.load(f)
        for b in data["benchmarks"]:
            if b["name"].startswith("BM_SpikeGptTrain/"):
                threads = int(b["name"].split("/")[1])
                if threads in theirs:
                    ours = b["tokens_per_s"]
                    print(f"spikelm, {threads} thread(s): {ours:.1f} tokens/s; ours/theirs = {ours / theirs[threads]:.2f}")


if __name__ == "__main__":
    main()
