#!/usr/bin/env python3
"""PyTorch reference for the EGRU layer and the EGRU language model (SPEC section 4).

Writes tests/reference/fixtures/egru.txt, read by tests/unit/egru.cpp.  From the repository root:

    /usr/bin/python3 tests/reference/egru.py            # writes the fixture
    /usr/bin/python3 tests/reference/egru.py --check    # compare, write nothing

Only torch is needed (Debian's python3-torch is enough); float64, CPU, one thread.

The EGRU is written out as a loop over time with a custom Heaviside whose backward is the triangle
pseudo-derivative gamma * max(0, 1 - s |c - theta|), following SPEC section 4 and the EvNN kernels:

    a = x_t W + bx;  b = y_{t-1} R + br                  (gate order [u | r | g])
    u = sigmoid(a_u + b_u);  r = sigmoid(a_r + b_r);  g = tanh(a_g + r * b_g)
    c = u * h_{t-1} + (1 - u) * g
    o = H(c - theta) (strict);  y = o * c;  h = c - o * theta
    trace_t = 0.9 trace_{t-1} + 0.1 y_t

The initial state is y0 (given) and h0 (given, zero in the LM, as EvNN's layer forward).  torch autograd
gives every gradient, theta's included.

Cases:
  layer/*  one layer, input 5, hidden 6, batch 3, 9 steps, random y0 and h0; loss
           L = sum(y * gy) + sum(h * gh) + sum(trace * gt) with fixed random gy, gh, gt; layer/ar_* the
           gradients of L + 2.5 mean(o) (EvNN's activity regularisation, EgruOptions::activity_penalty).
  gru/*    EgruOptions::gru (a plain GRU, the dense baseline) against torch.nn.GRU, weights mapped from the
           EvNN layout; y0 = h0 given; loss sum(y * gy).
  lm/*     the AWD-style LM without dropout: vocab 13, embedding 6, hidden 8, 3 layers (the last as wide as
           the embedding), decoder tied to the embedding with its own bias; batch 2, 7 tokens, zero state;
           log-probabilities [B*T, V] (batch-major rows, as EvNN's decoder) and the mean NLL of the next
           tokens, with the gradient of every parameter under the reference names.
Thresholds and weights are chosen so that the units actually fire (rates are printed); inputs with
|c - theta| < 1e-6 anywhere are rejected so that the spike pattern cannot hinge on the last bit.
"""

import argparse
import os
import sys

import torch

DTYPE = torch.float64
GAMMA, SUPPORT = 0.7, 1.0
AR_PENALTY = 2.5


class Heaviside(torch.autograd.Function):
    @staticmethod
    def forward(ctx, v, gamma, support):
        ctx.save_for_backward(v)
        ctx.gamma, ctx.support = gamma, support
        return (v > 0).to(v.dtype)

    @staticmethod
    def backward(ctx, grad):
        (v,) = ctx.saved_tensors
        pd = ctx.gamma * torch.clamp(1.0 - ctx.support * v.abs(), min=0.0)
        return grad * pd, None, None


def egru_layer(x, y0, h0, W, R, bx, br, thr, gamma=GAMMA, support=SUPPORT, margins=None):
    """x [T, B, in] -> y, h, o, trace [T, B, H]."""
    H = R.shape[0]
    y, h, tr = y0, h0, torch.zeros_like(y0)
    ys, hs, os_, trs = [], [], [], []
    for t in range(x.shape[0]):
        a = x[t] @ W + bx
        b = y @ R + br
        u = torch.sigmoid(a[:, :H] + b[:, :H])
        r = torch.sigmoid(a[:, H:2 * H] + b[:, H:2 * H])
        g = torch.tanh(a[:, 2 * H:] + r * b[:, 2 * H:])
        c = u * h + (1 - u) * g
        if margins is not None:
            margins.append((c - thr).detach().abs().min().item())
        o = Heaviside.apply(c - thr, gamma, support)
        y = o * c
        h = c - o * thr
        tr = 0.9 * tr + 0.1 * y
        ys.append(y)
        hs.append(h)
        os_.append(o)
        trs.append(tr)
    return torch.stack(ys), torch.stack(hs), torch.stack(os_), torch.stack(trs)


def fmt(name, t):
    t = t.detach().to(DTYPE).contiguous()
    dims = list(t.shape)
    head = "tensor %s %d %s" % (name, len(dims), " ".join(str(d) for d in dims))
    vals = " ".join("%.17g" % v for v in t.reshape(-1).tolist())
    return head.rstrip() + "\n" + vals + "\n"


def layer_case(out):
    gen = torch.Generator().manual_seed(4242)
    T, B, I, H = 9, 3, 5, 6

    def rnd(*shape, lo=-1.0, hi=1.0):
        return (torch.rand(*shape, generator=gen, dtype=DTYPE) * (hi - lo) + lo)

    x = rnd(T, B, I)
    W = rnd(I, 3 * H, lo=-0.8, hi=0.8)
    R = rnd(H, 3 * H, lo=-0.8, hi=0.8)
    bx = rnd(3 * H, lo=-0.3, hi=0.3)
    br = rnd(3 * H, lo=-0.3, hi=0.3)
    thr = rnd(H, lo=0.05, hi=0.4)
    y0 = rnd(B, H, lo=0.0, hi=0.6) * (rnd(B, H) > 0).to(DTYPE)
    h0 = rnd(B, H, lo=-0.5, hi=0.5)
    gy, gh, gt = rnd(T, B, H), rnd(T, B, H), rnd(T, B, H)
    leaves = [x, y0, h0, W, R, bx, br, thr]
    for v in leaves:
        v.requires_grad_(True)
    margins = []
    y, h, o, tr = egru_layer(x, y0, h0, W, R, bx, br, thr, margins=margins)
    if min(margins) < 1e-6:
        raise SystemExit("layer case: c too close to theta (%g)" % min(margins))
    loss = (y * gy).sum() + (h * gh).sum() + (tr * gt).sum()
    loss.backward()
    names = ["x", "y0", "h0", "kernel", "recurrent_kernel", "bias", "recurrent_bias", "thr"]
    for n, v in zip(names, leaves):
        out.append(fmt("layer/" + n, v))
    for n, v in zip(["gy", "gh", "gt"], [gy, gh, gt]):
        out.append(fmt("layer/" + n, v))
    for n, v in zip(["y", "h", "o", "trace"], [y, h, o, tr]):
        out.append(fmt("layer/" + n, v))
    out.append(fmt("layer/loss", loss.reshape(1)))
    for n, v in zip(names, leaves):
        out.append(fmt("layer/grad_" + n, v.grad))
    # EvNN's activity regularisation (its LM's gamma): the same loss plus AR_PENALTY * mean(o), o through
    # the pseudo-derivative
    for v in leaves:
        v.grad = None
    y, h, o, tr = egru_layer(x, y0, h0, W, R, bx, br, thr)
    loss_ar = (y * gy).sum() + (h * gh).sum() + (tr * gt).sum() + AR_PENALTY * o.mean()
    loss_ar.backward()
    out.append(fmt("layer/ar_penalty", torch.tensor([AR_PENALTY], dtype=DTYPE)))
    for n, v in zip(names, leaves):
        out.append(fmt("layer/ar_grad_" + n, v.grad))
    return float(o.mean()), min(margins)


def lm_case(out):
    gen = torch.Generator().manual_seed(777)
    V, E, Hd, L, B, T = 13, 6, 8, 3, 2, 7

    def rnd(*shape, lo=-1.0, hi=1.0):
        return (torch.rand(*shape, generator=gen, dtype=DTYPE) * (hi - lo) + lo)

    params = {"embeddings.weight": rnd(V, E, lo=-0.9, hi=0.9)}
    sizes = []
    for l in range(L):
        n_in = E if l == 0 else Hd
        n_h = E if l == L - 1 else Hd
        sizes.append((n_in, n_h))
        params["rnns.%d.kernel" % l] = rnd(n_in, 3 * n_h, lo=-0.9, hi=0.9)
        params["rnns.%d.recurrent_kernel" % l] = rnd(n_h, 3 * n_h, lo=-0.9, hi=0.9)
        params["rnns.%d.bias" % l] = rnd(3 * n_h, lo=-0.3, hi=0.3)
        params["rnns.%d.recurrent_bias" % l] = rnd(3 * n_h, lo=-0.3, hi=0.3)
        params["rnns.%d.thr" % l] = rnd(n_h, lo=0.02, hi=0.25)
    params["decoder.decoder.bias"] = rnd(V, lo=-0.1, hi=0.1)
    tokens = torch.randint(0, V, (B, T + 1), generator=gen)
    for v in params.values():
        v.requires_grad_(True)

    inp, tgt = tokens[:, :T], tokens[:, 1:]
    emb = params["embeddings.weight"][inp]          # [B, T, E]
    hid = emb.transpose(0, 1)                       # time-major [T, B, E]
    margins, rates = [], []
    for l, (n_in, n_h) in enumerate(sizes):
        zeros = torch.zeros(B, n_h, dtype=DTYPE)
        y, _, o, _ = egru_layer(hid, zeros, zeros, params["rnns.%d.kernel" % l],
                                params["rnns.%d.recurrent_kernel" % l], params["rnns.%d.bias" % l],
                                params["rnns.%d.recurrent_bias" % l], params["rnns.%d.thr" % l],
                                margins=margins)
        rates.append(float(o.mean()))
        hid = y
    if min(margins) < 1e-6:
        raise SystemExit("lm case: c too close to theta (%g)" % min(margins))
    flat = hid.transpose(0, 1).reshape(B * T, E)    # batch-major rows
    logits = flat @ params["embeddings.weight"].t() + params["decoder.decoder.bias"]
    logp = torch.log_softmax(logits, dim=1)
    loss = torch.nn.functional.nll_loss(logp, tgt.reshape(-1))
    loss.backward()
    out.append(fmt("lm/tokens", tokens.to(DTYPE)))
    for n, v in params.items():
        out.append(fmt("lm/" + n, v))
    out.append(fmt("lm/logp", logp))
    out.append(fmt("lm/loss", loss.reshape(1)))
    for n, v in params.items():
        out.append(fmt("lm/grad/" + n, v.grad))
    return rates, min(margins)


def gru_case(out):
    """EgruOptions::gru (every unit emits y = h = c) against torch.nn.GRU with the weights mapped from the
    EvNN layout ([u | r | g], W [in, 3H]) to PyTorch's ([r | z | n], weight_ih [3H, in])."""
    gen = torch.Generator().manual_seed(99)
    T, B, I, H = 6, 2, 4, 5

    def rnd(*shape, lo=-1.0, hi=1.0):
        return (torch.rand(*shape, generator=gen, dtype=DTYPE) * (hi - lo) + lo)

    x = rnd(T, B, I)
    W, R = rnd(I, 3 * H, lo=-0.7, hi=0.7), rnd(H, 3 * H, lo=-0.7, hi=0.7)
    bx, br = rnd(3 * H, lo=-0.3, hi=0.3), rnd(3 * H, lo=-0.3, hi=0.3)
    h0 = rnd(B, H, lo=-0.5, hi=0.5)
    gy = rnd(T, B, H)

    def reorder(m):  # [.., u | r | g] -> [.., r | u | g]
        return torch.cat([m[..., H:2 * H], m[..., :H], m[..., 2 * H:]], dim=-1)

    gru = torch.nn.GRU(I, H, dtype=DTYPE)
    with torch.no_grad():
        gru.weight_ih_l0.copy_(reorder(W).t())
        gru.weight_hh_l0.copy_(reorder(R).t())
        gru.bias_ih_l0.copy_(reorder(bx))
        gru.bias_hh_l0.copy_(reorder(br))
    xl = x.clone().requires_grad_(True)
    y, _ = gru(xl, h0.unsqueeze(0))
    loss = (y * gy).sum()
    loss.backward()

    def back(m):  # [.., r | u | g] -> [.., u | r | g]
        return torch.cat([m[..., H:2 * H], m[..., :H], m[..., 2 * H:]], dim=-1)

    for n, v in [("x", x), ("kernel", W), ("recurrent_kernel", R), ("bias", bx), ("recurrent_bias", br),
                 ("h0", h0), ("gy", gy), ("y", y)]:
        out.append(fmt("gru/" + n, v))
    out.append(fmt("gru/grad_x", xl.grad))
    out.append(fmt("gru/grad_kernel", back(gru.weight_ih_l0.grad.t())))
    out.append(fmt("gru/grad_recurrent_kernel", back(gru.weight_hh_l0.grad.t())))
    out.append(fmt("gru/grad_bias", back(gru.bias_ih_l0.grad)))
    out.append(fmt("gru/grad_recurrent_bias", back(gru.bias_hh_l0.grad)))


def build():
    torch.set_num_threads(1)
    out = ["# EGRU fixtures written by tests/reference/egru.py (float64). Do not edit.\n"]
    rate, margin = layer_case(out)
    lm_rates, lm_margin = lm_case(out)
    gru_case(out)
    summary = ("layer firing rate %.3f (min |c-theta| %.3g); lm rates %s (min |c-theta| %.3g)"
               % (rate, margin, " ".join("%.3f" % r for r in lm_rates), lm_margin))
    return "".join(out), summary


def main(argv=None):
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join(here, "fixtures", "egru.txt"))
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
