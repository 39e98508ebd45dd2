#!/usr/bin/env python3
"""Conformance of the `spikegpt` program with the PyTorch reference (ctest: tools/spikegpt_logits; needs torch).

    spikegpt_logits.py REPO_ROOT WORK_DIR SPIKEGPT_EXECUTABLE

1. Builds a random SpikeGPT (vocabulary 29, d 24, 2 layers) in PyTorch under the reference's state-dict names and
   shapes (time_mix_* as [1, 1, d]), float32 values, chosen so that every LIF population fires (rates in
   [0.03, 0.6]) and no membrane comes within 1e-4 of the threshold on the test tokens (so the float32 program
   must reproduce the spike pattern exactly).
2. Saves it with torch.save as a .pth state dict and converts it with tools/convert_checkpoint.py: a weights file
   as the reference would give, with no vocabulary or configuration in its metadata.
3. Runs `spikegpt logits` on 32 token ids in parallel and in recurrent mode and compares the float32 logits
   with the float64 PyTorch logits of tests/reference/spike_gpt.py's model_forward (max |error| / max |logit|
   at most 1e-4) and the firing rates with the reference's spike counts (equal).
4. With a vocab.json in SpikeGPT's format (UTF-16): `spikegpt generate --temperature 0` must follow the
   reference's greedy choice at every step (up to near-ties), and `spikegpt eval --text` the reference's
   bits/char over non-overlapping windows from the zero state (to 2e-4, the printed precision).
"""

import json
import math
import os
import re
import subprocess
import sys

import torch

from safetensors_f32 import read_safetensors

V, D, L, T = 29, 24, 2, 32
MARGIN = 1e-4
TOLERANCE = 1e-4
CHARS = "abcdefghijklmnopqrstuvwxyz .\n"


def random_model(ref, seed):
    """Reference-named parameters (float64 holding float32 values), as tests/reference/spike_gpt.py draws them."""
    gen = torch.Generator().manual_seed(seed)

    def rnd(*shape, lo=-1.0, hi=1.0):
        return torch.rand(*shape, generator=gen, dtype=torch.float64) * (hi - lo) + lo

    base = ref.reference_init(D, L)
    P = {}
    for name, shape in ref.parameter_shapes(V, D, L):
        leaf = name.split(".")[-1]
        if name == "emb.weight":
            P[name] = torch.randn(*shape, generator=gen, dtype=torch.float64)
        elif re.search(r"(ln0|ln1|ln2|ln_out)\.weight$", name):
            P[name] = 1.0 + rnd(*shape, lo=-0.3, hi=0.3)
        elif name.endswith(".bias"):
            P[name] = rnd(*shape, lo=-0.3, hi=0.3)
        elif leaf in ("time_decay", "time_first"):
            P[name] = base[name] + rnd(*shape, lo=-0.5, hi=0.5)
        elif leaf.startswith("time_mix"):
            P[name] = torch.clamp(base[name] + rnd(*shape, lo=-0.3, hi=0.3), 0.02, 0.98)
        elif name == "head.weight":
            P[name] = rnd(*shape, lo=-0.6, hi=0.6)
        else:
            scale = {"att.key": 1.0, "att.value": 1.2, "att.receptance": 1.0, "att.output": 4.0,
                     "ffn.key": 1.0, "ffn.receptance": 1.0, "ffn.value": 4.0}[".".join(name.split(".")[2:4])]
            bound = scale * math.sqrt(3.0 / shape[1])
            P[name] = rnd(*shape, lo=-bound, hi=bound)
    P = {k: v.float().double() for k, v in P.items()}  # the program reads float32
    tokens = torch.randint(0, V, (T,), generator=gen)
    return P, tokens


def forward(ref, P, tokens):
    """Logits [T, V] (float64), per-population firing rates [L, 2] and the smallest margin to a threshold."""
    margins, spikes = [], []
    with torch.no_grad():
        z = ref.model_forward(P, tokens.reshape(1, -1), L, margins, spikes)[0]
    rates = torch.tensor([s.mean().item() for s in spikes], dtype=torch.float64).reshape(L, 2)
    return z, rates, min(margins)


def run(args, expect_ok=True):
    p = subprocess.run(args, capture_output=True, text=True)
    print("$ " + " ".join(args) + "\n" + p.stdout + p.stderr, end="")
    if expect_ok and p.returncode != 0:
        raise SystemExit("FAIL: exit status %d" % p.returncode)
    return p


def main():
    root, work, exe = sys.argv[1:4]
    os.makedirs(work, exist_ok=True)
    sys.path.insert(0, os.path.join(root, "tests", "reference"))
    import spike_gpt as ref  # noqa: E402  (the reference model, float64)

    torch.set_num_threads(1)
    for seed in range(100, 200):
        P, tokens = random_model(ref, seed)
        z, rates, margin = forward(ref, P, tokens)
        if margin >= MARGIN and rates.min() >= 0.03 and rates.max() <= 0.6:
            break
    else:
        raise SystemExit("FAIL: no seed gave firing rates in [0.03, 0.6] with margins >= %g" % MARGIN)
    print("model seed %d: firing rates %s, min margin %.3g" % (seed, rates.tolist(), margin))

    pth = os.path.join(work, "reference.pth")
    weights = os.path.join(work, "reference.safetensors")
    torch.save({k: v.float() for k, v in P.items()}, pth)
    run([sys.executable, os.path.join(root, "tools", "convert_checkpoint.py"), pth, weights])

    failures = []
    ids = ",".join(str(int(t)) for t in tokens)
    for mode in ("parallel", "recurrent"):
        out = os.path.join(work, "logits_%s.safetensors" % mode)
        run([exe, "logits", "--weights", weights, "--tokens", ids, "--out", out, "--mode", mode])
        got, _ = read_safetensors(out)
        c = got["logits"].double()
        if list(c.shape) != [T, V]:
            raise SystemExit("FAIL: logits shape %s, expected [%d, %d]" % (list(c.shape), T, V))
        err = ((c - z).abs().max() / z.abs().max()).item()
        r = torch.tensor([[got["firing_rate.%d.%s" % (l, k)].item() for k in ("att", "ffn")] for l in range(L)],
                         dtype=torch.float64)
        rate_err = (r - rates).abs().max().item()
        print("%s mode: max |logit error| / max |logit| = %.3g (limit %g); firing rate difference %.3g"
              % (mode, err, TOLERANCE, rate_err))
        if not err <= TOLERANCE:
            failures.append("%s logits differ by %.3g relative" % (mode, err))
        if not rate_err <= 1e-6:
            failures.append("%s firing rates %s, reference %s" % (mode, r.tolist(), rates.tolist()))

    # Greedy generation and eval with a vocab.json in SpikeGPT's format (no vocabulary in the weights file).
    vocab = os.path.join(work, "vocab.json")
    with open(vocab, "w", encoding="utf-16") as f:
        json.dump({str(i): c for i, c in enumerate(CHARS)}, f, ensure_ascii=False)
    p = run([exe, "generate", "--weights", weights, "--length", "1"], expect_ok=False)
    if p.returncode == 0 or "pass --vocab vocab.json" not in p.stderr:
        failures.append("generate without a vocabulary did not fail with a message")
    prompt = "".join(CHARS[int(t)] for t in tokens[:8])
    p = run([exe, "generate", "--weights", weights, "--vocab", vocab, "--prompt", prompt, "--length", "24",
             "--temperature", "0"])
    text = p.stdout[:-1] if p.stdout.endswith("\n") else p.stdout  # the program ends the text with a newline
    if not text.startswith(prompt) or len(text) != len(prompt) + 24:
        failures.append("generate printed %r" % text)
    else:
        seq = torch.tensor([CHARS.index(ch) for ch in text])
        zz, _, m = forward(ref, P, seq)
        if m < MARGIN:
            print("greedy check skipped: a membrane comes within %.2g of the threshold" % m)
        else:
            for t in range(len(prompt) - 1, len(seq) - 1):
                top2 = torch.topk(zz[t], 2).values
                near_tie = (top2[0] - top2[1]).item() < 1e-4 * zz.abs().max().item()
                if int(zz[t].argmax()) != int(seq[t + 1]) and not near_tie:
                    failures.append("greedy generation differs at position %d" % (t + 1))
                    break
            print("greedy generation follows the reference over %d characters" % (len(seq) - len(prompt)))

    text_path = os.path.join(work, "text.txt")
    g = torch.Generator().manual_seed(5)
    text_ids = torch.randint(0, V, (70,), generator=g)
    with open(text_path, "w", encoding="utf-8") as f:
        f.write("".join(CHARS[int(i)] for i in text_ids))
    p = run([exe, "eval", "--weights", weights, "--vocab", vocab, "--text", text_path, "--context", "16",
             "--batch", "2"])
    nll, count, min_margin = 0.0, 0, 1.0
    for s in range(0, len(text_ids) - 1, 16):
        n = min(16, len(text_ids) - 1 - s)
        zz, _, m = forward(ref, P, text_ids[s:s + n])
        min_margin = min(min_margin, m)
        nll += torch.nn.functional.cross_entropy(zz, text_ids[s + 1:s + n + 1], reduction="sum").item()
        count += n
    want = nll / count / math.log(2)
    got = float(re.search(r"([0-9.]+) bits/char", p.stdout).group(1))
    print("eval: %.4f bits/char, reference %.6f (min margin %.2g)" % (got, want, min_margin))
    if min_margin >= MARGIN and abs(got - want) > 2e-4:
        failures.append("eval gives %.4f bits/char, the reference %.6f" % (got, want))

    if failures:
        raise SystemExit("FAIL: " + "; ".join(failures))
    print("spikegpt agrees with the PyTorch reference")
    return 0


if __name__ == "__main__":
    sys.exit(main())
