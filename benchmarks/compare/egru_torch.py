#!/usr/bin/env python3
"""Times the plain-PyTorch EGRU layer of tests/reference/egru.py (float32, eager, a loop over time with the
triangle pseudo-derivative) on the shapes of bench_egru: input width 64, 16 steps, H = 1024 and 2048, batch 1
and 16 (forward), and H = 1024, batch 16 (forward + backward). PyTorch's cost does not depend on the activity
(it multiplies densely), so one timing per shape is compared with bench_egru's event-driven and dense rows at
each threshold. Prints milliseconds per 16-step call and, given bench_egru's JSON, the ours/theirs speed ratios.

Needs torch (Debian: python3-torch, run with /usr/bin/python3) and, for a fair comparison, OpenBLAS
(`apt-get install libopenblas0-pthread`): without it Debian's torch uses the reference BLAS, about 25x slower
on matrix products. Usage:
  /usr/bin/python3 benchmarks/compare/egru_torch.py [--json bench_egru.json] [--repeats 5]
"""
import argparse
import json
import os
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "reference"))
import egru as ref  # noqa: E402

STEPS, IN = 16, 64


def setup(H, B, grad):
    gen = torch.Generator().manual_seed(17)
    k = 1.0 / H ** 0.5

    def u(*shape):
        t = (2 * torch.rand(*shape, generator=gen) - 1) * k
        return t.requires_grad_(grad)

    W, R, bx, br = u(IN, 3 * H), u(H, 3 * H), u(3 * H), u(3 * H)
    thr = torch.full((H,), 0.15).requires_grad_(grad)
    x = torch.randn(STEPS, B, IN, generator=gen)
    zeros = torch.zeros(B, H)
    return x, zeros, W, R, bx, br, thr


def best_ms(fn, repeats):
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return 1e3 * best


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", help="bench_egru --benchmark_out JSON, for the ratios")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(1)
    ours = {}
    if args.json:
        with open(args.json) as f:
            for b in json.load(f)["benchmarks"]:
                if b.get("run_type") == "aggregate":
                    continue
                ours[b["name"]] = (b["real_time"], b.get("activity", float("nan")))

    def report(kind, H, B, ms):
        print("%s H=%d B=%d: pytorch eager %.2f ms per 16 steps" % (kind, H, B, ms))
        for thr in (15, 30):
            for mode, label in ((0, "event-driven"), (1, "dense")):
                name = "BM_%s/mode:%d/H:%d/B:%d/thr:%d" % (kind, mode, H, B, thr)
                if name in ours:
                    t, act = ours[name]
                    print("    spikelm %-12s thr %d (activity %.3f): %.2f ms, ours/theirs speed = %.2f" % (
                        label, thr, act, t, ms / t))

    ref.DTYPE = torch.float32
    for H in (1024, 2048):
        for B in (1, 16):
            x, z, W, R, bx, br, thr = setup(H, B, False)
            with torch.no_grad():
                ms = best_ms(lambda: ref.egru_layer(x, z, z, W, R, bx, br, thr, 3.6, 3.6), args.repeats)
            report("EgruForward", H, B, ms)
    H, B = 1024, 16
    x, z, W, R, bx, br, thr = setup(H, B, True)
    dy = torch.randn(STEPS, B, H)

    def train():
        y = ref.egru_layer(x, z, z, W, R, bx, br, thr, 3.6, 3.6)[0]
        y.backward(dy)

    report("EgruTrain", H, B, best_ms(train, args.repeats))


if __name__ == "__main__":
    main()
