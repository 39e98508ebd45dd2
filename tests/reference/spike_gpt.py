#!/usr/bin/env python3
"""PyTorch reference for SpikeGPT, the spiking RWKV-4 language model (SPEC section 3).

Writes tests/reference/fixtures/spike_gpt.txt, read by tests/unit/spike_gpt.cpp.  From the repository root:

    /usr/bin/python3 tests/reference/spike_gpt.py            # writes the fixture
    /usr/bin/python3 tests/reference/spike_gpt.py --check    # compare, write nothing

Only torch is needed (Debian's python3-torch is enough); float64, CPU, one thread.  No spikingjelly import:
the neuron and the surrogate are written out here.

The model is the reference's training model, written from SPEC section 3:

    x = LN0(H(E[token]))                       H(z) = [z >= 0], backward: ATan surrogate, alpha = 2
    per layer:  x = x + LIF1(TimeMix(LN1(x)));   x = x + LIF2(ChannelMix(LN2(x)))
    logits = head(LN_out(x))                   no bias

    token shift xx_t = x_{t-1}, xx_0 = 0;  x_mu = x * mu + xx * (1 - mu)
    TimeMix:    k = W_k x_k;  v = W_v x_v;  r = sigmoid(W_r x_r);  out = W_o (r * wkv(k, v))
                wkv: the numerically stable loop over time of SPEC section 3, w = -exp(time_decay), u = time_first
    ChannelMix: out = sigmoid(W_r x_r) * W_v relu(W_k x_k)^2          W_k: d -> 4d, W_v: 4d -> d
    LIF:        SpikingJelly's LIFNode (decay_input, tau = 2, theta = 1, hard reset to 0, reset not detached),
                run per channel across token positions from V = 0 for every sequence:
                H = V + (X - (V - 0)) / tau;  S = [H >= 1];  V = (1 - S) H + S * 0
    loss:       mean cross-entropy over every position, wrapped in L2Wrap (the loss value is unchanged; its
                backward adds 1e-4 / (B T) * max_logit to each position's largest logit)

No dropout (the fixture compares deterministic passes).

Cases:
  wkv/*    the WKV function alone: B 2, T 9, C 5, time_decay and k large enough that a naive exp overflows in
           float32 (k up to 60), a fixed random gy; y = wkv(...) and the gradients of sum(y * gy) with
           respect to time_decay, time_first, k and v (torch autograd through the loop).
  init/*   the reference initialisation of time_decay, time_first and the mix coefficients for d 12, 3 layers
           (the deterministic part of the initialisation).
  model/*  vocabulary 20, d 16, 2 layers, batch 2, 8 tokens; every parameter under the reference state-dict
           names and shapes (time_mix_* as [1, 1, d]); tokens and targets [B, T]; logits [B, T, V]; the loss;
           every parameter's gradient (grad/<name>); the firing rates of LIF1 and LIF2 per layer (rates [L, 2]).

Parameters are random (chosen so that every LIF population fires at 5-50 %; rates are printed).  Inputs that
put a LIF membrane H within MARGIN of the threshold, or an embedding value within MARGIN of 0, are rejected:
the spike pattern must not hinge on rounding (MARGIN = 1e-4 also lets a float32 model reproduce it).
"""

import argparse
import math
import os
import sys

import torch

DTYPE = torch.float64
ALPHA = 2.0            # ATan surrogate
TAU, THETA = 2.0, 1.0  # SpikeGPT's LIF
MARGIN = 1e-4


class ATanSpike(torch.autograd.Function):
    """Heaviside [z >= 0] with SpikingJelly's ATan surrogate (alpha/2) / (1 + (pi alpha z / 2)^2)."""

    @staticmethod
    def forward(ctx, z):
        ctx.save_for_backward(z)
        return (z >= 0).to(z.dtype)

    @staticmethod
    def backward(ctx, grad):
        (z,) = ctx.saved_tensors
        return grad * (ALPHA / 2) / (1 + (math.pi / 2 * ALPHA * z) ** 2)


class L2Wrap(torch.autograd.Function):
    """Identity on the loss; backward adds factor * max to the largest logit of each position, independent
    of the incoming gradient, factor = 1e-4 / (B T)."""

    @staticmethod
    def forward(ctx, loss, y):
        ctx.save_for_backward(y)
        return loss.clone()

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        factor = 1e-4 / (y.shape[0] * y.shape[1])
        top, idx = torch.max(y, -1, keepdim=True)
        gy = torch.zeros_like(y)
        gy.scatter_(-1, idx, top * factor)
        return grad, gy


def lif(x, margins, spikes_out=None):
    """SpikingJelly's multi-step LIFNode over x [T, ...] (time first), starting from V = 0."""
    v = torch.zeros_like(x[0])
    out = []
    for t in range(x.shape[0]):
        h = v + (x[t] - (v - 0.0)) / TAU
        margins.append((h - THETA).detach().abs().min().item())
        s = ATanSpike.apply(h - THETA)
        v = (1.0 - s) * h + s * 0.0
        out.append(s)
    s = torch.stack(out)
    if spikes_out is not None:
        spikes_out.append(s.detach())
    return s


def wkv(time_decay, time_first, k, v):
    """The numerically stable WKV loop of SPEC section 3 over k, v [B, T, C]; returns y [B, T, C]."""
    B, T, C = k.shape
    w = -torch.exp(time_decay)
    u = time_first
    a = torch.zeros(B, C, dtype=k.dtype)
    b = torch.zeros(B, C, dtype=k.dtype)
    p = torch.full((B, C), -1e30, dtype=k.dtype)
    ys = []
    for t in range(T):
        kt, vt = k[:, t], v[:, t]
        q = torch.maximum(p, u + kt)
        e1 = torch.exp(p - q)
        e2 = torch.exp(u + kt - q)
        ys.append((e1 * a + e2 * vt) / (e1 * b + e2))
        q = torch.maximum(p + w, kt)
        e1 = torch.exp(p + w - q)
        e2 = torch.exp(kt - q)
        a = e1 * a + e2 * vt
        b = e1 * b + e2
        p = q
    return torch.stack(ys, dim=1)


def shift(x):
    """Token shift along time of x [B, T, C]: xx_t = x_{t-1}, xx_0 = 0."""
    return torch.cat([torch.zeros_like(x[:, :1]), x[:, :-1]], dim=1)


def layer_norm(x, P, name):
    return torch.nn.functional.layer_norm(x, (x.shape[-1],), P[name + ".weight"], P[name + ".bias"], 1e-5)


def time_mix(x, P, pre):
    xx = shift(x)
    mk, mv, mr = P[pre + "time_mix_k"], P[pre + "time_mix_v"], P[pre + "time_mix_r"]
    xk = x * mk + xx * (1 - mk)
    xv = x * mv + xx * (1 - mv)
    xr = x * mr + xx * (1 - mr)
    k = xk @ P[pre + "key.weight"].t()
    v = xv @ P[pre + "value.weight"].t()
    sr = torch.sigmoid(xr @ P[pre + "receptance.weight"].t())
    y = wkv(P[pre + "time_decay"], P[pre + "time_first"], k, v)
    return (sr * y) @ P[pre + "output.weight"].t()


def channel_mix(x, P, pre):
    xx = shift(x)
    mk, mr = P[pre + "time_mix_k"], P[pre + "time_mix_r"]
    xk = x * mk + xx * (1 - mk)
    xr = x * mr + xx * (1 - mr)
    k = torch.square(torch.relu(xk @ P[pre + "key.weight"].t()))
    kv = k @ P[pre + "value.weight"].t()
    return torch.sigmoid(xr @ P[pre + "receptance.weight"].t()) * kv


def model_forward(P, tokens, L, margins, spikes):
    """tokens [B, T] -> logits [B, T, V]; spikes collects each LIF population's spikes [T, B, d]."""
    e = P["emb.weight"][tokens]
    margins.append(e.detach().abs().min().item())
    x = ATanSpike.apply(e)
    for l in range(L):
        pre = "blocks.%d." % l
        if l == 0:
            x = layer_norm(x, P, pre + "ln0")
        att = time_mix(layer_norm(x, P, pre + "ln1"), P, pre + "att.")
        x = x + lif(att.transpose(0, 1), margins, spikes).transpose(0, 1)
        ffn = channel_mix(layer_norm(x, P, pre + "ln2"), P, pre + "ffn.")
        x = x + lif(ffn.transpose(0, 1), margins, spikes).transpose(0, 1)
    x = layer_norm(x, P, "ln_out")
    return x @ P["head.weight"].t()


def reference_init(d, L):
    """The deterministic part of the reference initialisation (SPEC section 3), per layer."""
    out = {}
    for l in range(L):
        r01 = l / (L - 1)            # 0 to 1
        r10 = 1.0 - l / L            # 1 to almost 0
        i = torch.arange(d, dtype=DTYPE)
        decay = -5 + 8 * (i / (d - 1)) ** (0.7 + 1.3 * r01)
        first = math.log(0.3) + 0.5 * (((i + 1) % 3) - 1)
        x = i / d
        pre = "blocks.%d." % l
        out[pre + "att.time_decay"] = decay
        out[pre + "att.time_first"] = first
        out[pre + "att.time_mix_k"] = (x ** r10).reshape(1, 1, d)
        out[pre + "att.time_mix_v"] = (x ** r10 + 0.3 * r01).reshape(1, 1, d)
        out[pre + "att.time_mix_r"] = (x ** (0.5 * r10)).reshape(1, 1, d)
        out[pre + "ffn.time_mix_k"] = (x ** r10).reshape(1, 1, d)
        out[pre + "ffn.time_mix_r"] = (x ** r10).reshape(1, 1, d)
    return out


def parameter_shapes(V, d, L):
    """Reference state-dict names and shapes, in the reference's registration order."""
    shapes = [("emb.weight", (V, d))]
    for l in range(L):
        pre = "blocks.%d." % l
        shapes += [(pre + "ln1.weight", (d,)), (pre + "ln1.bias", (d,)), (pre + "ln2.weight", (d,)),
                   (pre + "ln2.bias", (d,))]
        if l == 0:
            shapes += [(pre + "ln0.weight", (d,)), (pre + "ln0.bias", (d,))]
        shapes += [(pre + "att.time_decay", (d,)), (pre + "att.time_first", (d,)),
                   (pre + "att.time_mix_k", (1, 1, d)), (pre + "att.time_mix_v", (1, 1, d)),
                   (pre + "att.time_mix_r", (1, 1, d)), (pre + "att.key.weight", (d, d)),
                   (pre + "att.value.weight", (d, d)), (pre + "att.receptance.weight", (d, d)),
                   (pre + "att.output.weight", (d, d)), (pre + "ffn.time_mix_k", (1, 1, d)),
                   (pre + "ffn.time_mix_r", (1, 1, d)), (pre + "ffn.key.weight", (4 * d, d)),
                   (pre + "ffn.receptance.weight", (d, d)), (pre + "ffn.value.weight", (d, 4 * d))]
    shapes += [("ln_out.weight", (d,)), ("ln_out.bias", (d,)), ("head.weight", (V, d))]
    return shapes


def fmt(name, t):
    t = t.detach().to(DTYPE).contiguous()
    dims = list(t.shape)
    head = "tensor %s %d %s" % (name, len(dims), " ".join(str(x) for x in dims))
    vals = " ".join("%.17g" % x for x in t.reshape(-1).tolist())
    return head.rstrip() + "\n" + vals + "\n"


def wkv_case(out):
    gen = torch.Generator().manual_seed(31337)
    B, T, C = 2, 9, 5

    def rnd(*shape, lo=-1.0, hi=1.0):
        return torch.rand(*shape, generator=gen, dtype=DTYPE) * (hi - lo) + lo

    decay = rnd(C, lo=-4.0, hi=3.0)
    first = rnd(C, lo=-2.0, hi=2.0)
    k = rnd(B, T, C, lo=-8.0, hi=8.0)
    k[0, 3] += 52.0  # exp(60) overflows float32: only the stable form survives
    k[1, 5] -= 40.0
    v = rnd(B, T, C, lo=-2.0, hi=2.0)
    gy = rnd(B, T, C)
    leaves = [decay, first, k, v]
    for x in leaves:
        x.requires_grad_(True)
    y = wkv(decay, first, k, v)
    (y * gy).sum().backward()
    for n, x in zip(["time_decay", "time_first", "k", "v"], leaves):
        out.append(fmt("wkv/" + n, x))
    out.append(fmt("wkv/gy", gy))
    out.append(fmt("wkv/y", y))
    for n, x in zip(["time_decay", "time_first", "k", "v"], leaves):
        out.append(fmt("wkv/grad_" + n, x.grad))


def init_case(out):
    for n, t in reference_init(12, 3).items():
        out.append(fmt("init/" + n, t))


def model_case(out, seed):
    gen = torch.Generator().manual_seed(seed)
    V, d, L, B, T = 20, 16, 2, 2, 8

    def rnd(*shape, lo=-1.0, hi=1.0):
        return torch.rand(*shape, generator=gen, dtype=DTYPE) * (hi - lo) + lo

    base = reference_init(d, L)
    P = {}
    for name, shape in parameter_shapes(V, d, L):
        leaf = name.split(".")[-1] if not name.endswith(".weight") and not name.endswith(".bias") else None
        if name == "emb.weight":
            P[name] = torch.randn(*shape, generator=gen, dtype=DTYPE)
        elif name.endswith("ln0.weight") or name.endswith("ln1.weight") or name.endswith("ln2.weight") \
                or name == "ln_out.weight":
            P[name] = 1.0 + rnd(*shape, lo=-0.3, hi=0.3)
        elif name.endswith(".bias"):
            P[name] = rnd(*shape, lo=-0.3, hi=0.3)
        elif leaf in ("time_decay", "time_first"):
            P[name] = base[name] + rnd(*shape, lo=-0.5, hi=0.5)
        elif leaf is not None and leaf.startswith("time_mix"):
            P[name] = torch.clamp(base[name] + rnd(*shape, lo=-0.3, hi=0.3), 0.02, 0.98)
        elif name == "head.weight":
            P[name] = rnd(*shape, lo=-0.6, hi=0.6)
        else:
            out_f, in_f = shape
            scale = {"att.key": 1.0, "att.value": 1.2, "att.receptance": 1.0, "att.output": 4.0,
                     "ffn.key": 1.0, "ffn.receptance": 1.0, "ffn.value": 4.0}
            kind = ".".join(name.split(".")[2:4])
            bound = scale[kind] * math.sqrt(3.0 / in_f)
            P[name] = rnd(*shape, lo=-bound, hi=bound)
    tokens = torch.randint(0, V, (B, T), generator=gen)
    targets = torch.randint(0, V, (B, T), generator=gen)
    for x in P.values():
        x.requires_grad_(True)
    margins, spikes = [], []
    logits = model_forward(P, tokens, L, margins, spikes)
    ce = torch.nn.functional.cross_entropy(logits.reshape(-1, V), targets.reshape(-1))
    loss = L2Wrap.apply(ce, logits)
    loss.backward()
    rates = torch.tensor([s.mean().item() for s in spikes], dtype=DTYPE).reshape(L, 2)
    if min(margins) < MARGIN:
        return None, rates, min(margins)
    out.append(fmt("model/tokens", tokens.to(DTYPE)))
    out.append(fmt("model/targets", targets.to(DTYPE)))
    for n, x in P.items():
        out.append(fmt("model/" + n, x))
    out.append(fmt("model/logits", logits))
    out.append(fmt("model/loss", loss.reshape(1)))
    out.append(fmt("model/rates", rates))
    for n, x in P.items():
        out.append(fmt("model/grad/" + n, x.grad))
    return True, rates, min(margins)


def build():
    torch.set_num_threads(1)
    out = ["# SpikeGPT fixtures written by tests/reference/spike_gpt.py (float64). Do not edit.\n"]
    wkv_case(out)
    init_case(out)
    seed = 2024
    for attempt in range(50):
        ok, rates, margin = model_case(out, seed + attempt)
        if ok and float(rates.min()) >= 0.05 and float(rates.max()) <= 0.5:
            break
        if ok:  # written but rates out of range: drop what it wrote and retry
            while out and out[-1].startswith("tensor model/"):
                out.pop()
    else:
        raise SystemExit("no seed gave firing rates in [0.05, 0.5] with margins >= %g" % MARGIN)
    summary = "model seed %d: firing rates (LIF1, LIF2) per layer %s; min margin to threshold %.3g" % (
        seed + attempt, "; ".join("%.3f %.3f" % (r[0], r[1]) for r in rates.tolist()), margin)
    return "".join(out), summary


def main(argv=None):
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join(here, "fixtures", "spike_gpt.txt"))
    ap.add_argument("--check", action="store_true", help="compare with the existing fixture")
    args = ap.parse_args(argv)
    text, summary = build()
    print(summary)
    if args.check:
        with open(args.out) as f:
            same = f.read() == text
        print("fixture up to date" if same else "fixture differs from %s" % args.out)
        return 0 if same else 1
    with open(args.out, "w") as f:
        f.write(text)
    print("wrote %s (%d bytes)" % (args.out, len(text)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
