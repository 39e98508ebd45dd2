#!/usr/bin/env python3
"""Trains the plain-PyTorch SpikeGPT of tests/reference/spike_gpt.py (SPEC section 3, float32) exactly as
`spikegpt train` does, from the same initial weights and on the same batches, and prints the validation
bits/char at the same steps; also prints the unigram baseline. For the learning comparison of
docs/models/spike_gpt.md.

Same as the C++ trainer: the corpus split 90/5/5 (split_tokens), the character vocabulary from the weights'
metadata, the training windows drawn by spikelm's counter-based Rng (Philox4x32-10, seed + 1000, Lemire's
multiply-shift; ported below), Adam (betas 0.9/0.99, eps 4e-9), global-norm clipping 1.0, linear warm-up and
cosine decay to lr_final, cross-entropy with L2Wrap, no dropout (pass --dropout 0 to spikegpt train: the
dropout masks are not reproduced), validation on the first --eval-chars characters in non-overlapping
windows of the context from the zero state. What differs is only the arithmetic (PyTorch's float32 kernels
and summation order against spikelm's), which the spikes amplify, so the two runs are not bit-identical.

Needs torch (Debian: python3-torch, run with /usr/bin/python3). Usage:
  ./build/examples/spikegpt train --layers 2 --width 128 --context 64 --batch 8 --steps 2000 --lr 2e-3 \\
      --dropout 0 --every 500 --init-out init.safetensors --out cpp.safetensors
  /usr/bin/python3 benchmarks/compare/spike_gpt_learning.py --init init.safetensors --steps 2000 \\
      --batch 8 --context 64 --lr 2e-3 --every 500
"""
import argparse
import json
import math
import os
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")
sys.path.insert(0, os.path.join(ROOT, "tests", "reference"))
sys.path.insert(0, os.path.join(ROOT, "tests", "tools"))
import spike_gpt as ref  # noqa: E402
from safetensors_f32 import read_safetensors  # noqa: E402
from spike_gpt_torch import lif_fast  # noqa: E402  (the reference LIF without fixture bookkeeping)

M32 = 0xFFFFFFFF


def philox4x32(counter, key):
    """spikelm::detail::philox4x32: one Philox4x32 block, 10 rounds, high counter words fixed."""
    c0, c1, c2, c3 = counter & M32, (counter >> 32) & M32, 0x243F6A88, 0x85A308D3
    k0, k1 = key & M32, (key >> 32) & M32
    for _ in range(10):
        p0 = 0xD2511F53 * c0
        p1 = 0xCD9E8D57 * c2
        c0, c1, c2, c3 = ((p1 >> 32) ^ c1 ^ k0) & M32, p1 & M32, ((p0 >> 32) ^ c3 ^ k1) & M32, p0 & M32
        k0, k1 = (k0 + 0x9E3779B9) & M32, (k1 + 0xBB67AE85) & M32
    return c0, c1, c2, c3


class Rng:
    """spikelm::Rng's next_u64 and uniform_index."""

    def __init__(self, seed):
        self.seed, self.counter = seed, 0

    def uniform_index(self, n):
        b = philox4x32(self.counter, self.seed)
        self.counter += 1
        x = ((b[0] << 32) | b[1]) >> 32
        return (x * n) >> 32


def forward(P, tokens, L):
    return ref.model_forward(P, tokens, L, [], None)


def evaluate(P, L, tokens, context, batch=8):
    """Mean NLL (nats) over non-overlapping windows, every next-character prediction once."""
    n = len(tokens)
    starts = list(range(0, n - 1, context))
    total, count = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(starts), batch):
            group = starts[i:i + batch]
            lens = [min(context, n - 1 - s) for s in group]
            x = torch.zeros(len(group), context, dtype=torch.long)
            y = torch.full((len(group), context), -100, dtype=torch.long)
            for r, (s, ln) in enumerate(zip(group, lens)):
                x[r, :ln] = torch.tensor(tokens[s:s + ln])
                y[r, :ln] = torch.tensor(tokens[s + 1:s + 1 + ln])
            z = forward(P, x, L)
            total += torch.nn.functional.cross_entropy(z.reshape(-1, z.shape[-1]).double(), y.reshape(-1),
                                                       ignore_index=-100, reduction="sum").item()
            count += sum(lens)
    return total / count, count


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--init", required=True, help="initial weights from spikegpt train --init-out")
    ap.add_argument("--data", default=os.path.join(ROOT, "examples", "data", "kjv.txt"))
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--context", type=int, default=64)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--lr-final", type=float, default=None)
    ap.add_argument("--warmup", type=int, default=None)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--every", type=int, default=500)
    ap.add_argument("--eval-chars", type=int, default=20000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--stop", type=int, default=None,
                    help="stop after this many steps (the schedule still spans --steps), to compare a prefix")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    ref.lif = lif_fast
    lr_final = args.lr / 10 if args.lr_final is None else args.lr_final
    warmup = min(args.steps // 20 + 1, 200) if args.warmup is None else args.warmup

    P, meta = read_safetensors(args.init)
    vocab = json.loads(meta["vocab"])
    chars = [vocab[str(i)] for i in range(len(vocab))]
    ids = {c: i for i, c in enumerate(chars)}
    text = open(args.data, encoding="utf-8").read()
    tokens = [ids[c] for c in text]
    n = len(tokens)
    nv = min(n, int(math.floor(n * 0.05 + 0.5)))
    nt = min(n - nv, nv)
    train, valid = tokens[:n - nv - nt], tokens[n - nv - nt:n - nt]
    valid = valid[:args.eval_chars]
    L = sum(1 for k in P if k.endswith(".att.key.weight"))
    for k in P:  # time_mix_* stored [1, 1, d] broadcast as the reference's
        P[k].requires_grad_(True)
    params = [P[k] for k in P]
    nparams = sum(p.numel() for p in params)

    # unigram baseline: train-split character frequencies (add-one) scored on the validation characters
    counts = [1] * len(chars)
    for t in train:
        counts[t] += 1
    total = sum(counts)
    unigram = -sum(math.log(counts[t] / total) for t in valid[1:]) / (len(valid) - 1) / math.log(2)
    print("unigram baseline: %.4f bits/char on the first %d validation characters" % (unigram, len(valid)))
    print("PyTorch %s reference: %d layers, %.2fM parameters, %d steps, batch %d x %d, lr %g -> %g, warm-up %d, "
          "%d threads" % (torch.__version__, L, nparams / 1e6, args.steps, args.batch, args.context, args.lr,
                          lr_final, warmup, args.threads))

    opt = torch.optim.Adam(params, lr=args.lr, betas=(0.9, 0.99), eps=4e-9)

    def factor(s):
        if s < warmup:
            return (s + 1) / warmup
        progress = min(1.0, (s - warmup) / (args.steps - warmup))
        f = lr_final / args.lr
        return f + (1 - f) * 0.5 * (1 + math.cos(math.pi * progress))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
    rng = Rng(args.seed + 1000)
    starts_n = len(train) - args.context
    t0 = time.time()
    eval_secs = 0.0
    smoothed = 0.0
    for step in range(args.steps if args.stop is None else min(args.stop, args.steps)):
        x = torch.empty(args.batch, args.context, dtype=torch.long)
        y = torch.empty(args.batch, args.context, dtype=torch.long)
        for r in range(args.batch):
            s = rng.uniform_index(starts_n)
            x[r] = torch.tensor(train[s:s + args.context])
            y[r] = torch.tensor(train[s + 1:s + 1 + args.context])
        z = forward(P, x, L)
        loss = torch.nn.functional.cross_entropy(z.reshape(-1, z.shape[-1]), y.reshape(-1))
        loss = ref.L2Wrap.apply(loss, z)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        lv = loss.item()
        smoothed = lv if step == 0 else 0.9 * smoothed + 0.1 * lv
        if (step + 1) % 100 == 0 or step + 1 == args.steps:
            secs = time.time() - t0 - eval_secs
            print("step %5d  loss %.4f  bits/char %.3f  %.0f tokens/s" %
                  (step + 1, smoothed, smoothed / math.log(2), (step + 1) * args.batch * args.context / secs),
                  flush=True)
        if (step + 1) % args.every == 0 or step + 1 == args.steps:
            te = time.time()
            nll, count = evaluate(P, L, valid, args.context)
            eval_secs += time.time() - te
            print("  validation: %d chars, loss %.4f nats, %.4f bits/char" % (count, nll, nll / math.log(2)),
                  flush=True)
    print("trained in %.1f s (without validation)" % (time.time() - t0 - eval_secs))


if __name__ == "__main__":
    main()
