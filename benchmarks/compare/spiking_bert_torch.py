#!/usr/bin/env python3
"""Times the plain-PyTorch SpikingBERT student of tests/reference/bert.py (float32, eager, the IF simulation
of SPEC section 2 with dense products) on the shape of bench_spiking_bert's BM_SpikingBertInfer: 4 layers,
hidden 256, 4 heads, FFN 1024, vocabulary 3423, 6 labels, batch 8 x 40 tokens, weights N(0, 0.08). Prints
sequences/s per T and thread count, and the ours/theirs ratio when given bench_spiking_bert's JSON output.

Needs torch (Debian: python3-torch, run with /usr/bin/python3) and, for a fair comparison, OpenBLAS
(`apt-get install libopenblas0-pthread`): without it Debian's torch uses the reference BLAS, about 25x slower
on matrix products. Usage:
  /usr/bin/python3 benchmarks/compare/spiking_bert_torch.py [--threads 1] [--json bench_spiking_bert.json]
"""
import argparse
import json
import os
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "reference"))
import bert as ref  # noqa: E402

LAYERS, BATCH, LENGTH = 4, 8, 40


def configure():
    ref.DTYPE = torch.float32
    ref.V, ref.D, ref.H, ref.FFN, ref.POS, ref.TYPES, ref.C = 3423, 256, 4, 1024, 64, 2, 6
    gen = torch.Generator().manual_seed(3)
    P = {}
    for name, shape in ref.bert_shapes(LAYERS, False, True):
        if name.endswith("LayerNorm.weight"):
            P[name] = torch.ones(shape)
        elif name.endswith("bias"):
            P[name] = torch.zeros(shape)
        else:
            P[name] = 0.08 * torch.randn(shape, generator=gen)
    ids = torch.randint(0, ref.V, (BATCH, LENGTH), generator=gen)
    return P, ids


def simulate(P, ids, steps):
    """The reference's IF loop (student_simulate) without its margin bookkeeping, which adds a reduction per
    population and step that the C++ simulation does not do; returns the logits."""
    types = torch.zeros_like(ids)
    mask = torch.ones(ids.shape, dtype=ref.DTYPE)
    rates, _ = ref.student_simulate(P, LAYERS, ids, types, mask, steps, track_margin=False)
    a_o = rates["%d.O" % (LAYERS - 1)]
    return torch.relu(a_o[:, 0]) @ P["classifier.weight"].T + P["classifier.bias"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", default="1")
    ap.add_argument("--json", help="bench_spiking_bert --benchmark_out JSON, for the ratio")
    args = ap.parse_args()
    P, ids = configure()
    ours = {}
    if args.json:
        with open(args.json) as f:
            for b in json.load(f)["benchmarks"]:
                if b["name"].startswith("BM_SpikingBertInfer/") and b["name"].endswith("dense:0"):
                    ours[int(b["name"].split("T:")[1].split("/")[0])] = b["seq_per_s"]
    for n in [int(x) for x in args.threads.split(",")]:
        torch.set_num_threads(n)
        for steps in (4, 8, 16, 32):
            simulate(P, ids, 1)  # warm-up
            t0 = time.perf_counter()
            simulate(P, ids, steps)
            dt = time.perf_counter() - t0
            rate = BATCH / dt
            line = "pytorch eager, %d thread(s), T = %2d: %8.1f ms per batch, %6.2f sequences/s" % (
                n, steps, 1e3 * dt, rate)
            if steps in ours:
                line += "; spikelm (1 thread, event-driven) %6.2f sequences/s, ours/theirs = %.2f" % (
                    ours[steps], ours[steps] / rate)
            print(line, flush=True)


if __name__ == "__main__":
    main()
