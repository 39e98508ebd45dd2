#!/usr/bin/env python3
"""PyTorch reference for the BERT teacher and the SpikingBERT student (SPEC section 2).

Writes tests/reference/fixtures/bert.txt, read by tests/unit/bert.cpp.  From the repository root:

    /usr/bin/python3 tests/reference/bert.py            # writes the fixture
    /usr/bin/python3 tests/reference/bert.py --check    # compare, write nothing

Only torch is needed (Debian's python3-torch); float64, CPU, one thread.  No `transformers` import: the
teacher is Hugging Face's BertForSequenceClassification written out (eval mode, no dropout):

    E = LayerNorm(word[id] + position[t] + token_type[type])                       eps 1e-12
    per layer:  Q, K, V = linear(x);  S_h = Q_h K_h^T / sqrt(d_head) + (1 - mask) * -10000
                A = concat_h softmax(S_h) V_h
                x1 = LayerNorm(attention.output.dense(A) + x)
                x = LayerNorm(output.dense(GELU(intermediate.dense(x1))) + x1)      GELU: erf form
    pooled = tanh(pooler.dense(x[:, 0]));  logits = classifier(pooled)
    hidden.0 = E, hidden.i = output of layer i;  scores.i = S of layer i+1 (masked, pre-softmax) [B, H, L, L]

The student follows the released SpikingBERT (IF neurons, threshold vth = 1, reset by subtraction, no leak,
no feedback).  Every step t = 1..T, in this order:

    population E:   u += LayerNorm(word + position + type)   (constant current)
    per layer, fed by the spikes s_in of the previous population O (E for layer 0) at the same step:
        K:  u += W_K s_in + b_K          V:  u += W_V s_in + b_V
        A:  u += concat_h softmax(Q_h s_K,h^T / sqrt(d_head) + mask) s_V,h        Q = W_Q s_in + b_Q (real)
        SO: u += LayerNorm(W_SO s_A + b_SO + s_in)
        IM: u += GELU(W_IM s_SO + b_IM)
        O:  u += LayerNorm(W_O s_IM + b_O + s_SO)
    and after each update: s = [u >= vth];  u -= vth * s
    rates a = (sum_t s) / T;   logits = classifier(ReLU(a_O[:, 0]))   (no pooler)

Training (as released): the rates are the forward values, the gradient flows through the clamp network
a = clamp(f(a_prev) / vth, 0, 1) run from the embedding (its own values, not the rates), i.e.
a_k = clamp_k + (rate_k - clamp_k).detach() for E and every layer's O.  The distillation loss
(TinyBERT, teacher layer of student layer k is k * Lt / Ls):

    hidden:     sum_{k=0..Ls} MSE(fit_dense(a_k), H_teacher[k * r])
    attention:  sum_{k=1..Ls} MSE(S_student^k, S_teacher^{k r}), entries <= -100 set to 0 in both;
                S_student from the clamp network (Q from clamp a_in, spikes replaced by clamp a_K)
    prediction: mean(-softmax(z_T / tau) * log_softmax(z_S / tau)), tau = 1

Cases (see the fixture's names):
  teacher/*   a 4-layer BERT (vocabulary 40, hidden 24, 3 heads, FFN 48, 16 positions, 2 types, 3 labels),
              batch 2 x 6 tokens, the second sequence with 2 padding positions; hidden states, scores,
              pooled, logits, and every parameter's gradient of the cross-entropy of `labels`.
  student/*   a 2-layer student of the same width, T = 8: rates of every population, logits; the
              distillation losses against the teacher above, and every student parameter's gradient of
              their sum (hidden + attention + prediction).
  student_fb/* the same student with feedback W_s from the last layer's O to E (E's current at step t is
              LayerNorm(embedding) + W_s s_O(t - 1), none at the first step): rates and logits.

Inputs that put any membrane within MARGIN of the threshold are rejected, so the spike trains do not hinge
on rounding.
"""

import argparse
import math
import os
import sys

import torch

DTYPE = torch.float64
MARGIN = 1e-7
VTH = 1.0
EPS = 1e-12

V, D, H, FFN, POS, TYPES, C = 40, 24, 3, 48, 16, 2, 3
B, L = 2, 6
T_STEPS = 8


def fmt(name, t):
    t = t.detach().to(DTYPE).contiguous()
    dims = list(t.shape)
    head = "tensor %s %d %s" % (name, len(dims), " ".join(str(x) for x in dims))
    vals = " ".join("%.17g" % x for x in t.reshape(-1).tolist())
    return head.rstrip() + "\n" + vals + "\n"


def bert_shapes(layers, pooler, classifier):
    s = [("embeddings.word_embeddings.weight", (V, D)), ("embeddings.position_embeddings.weight", (POS, D)),
         ("embeddings.token_type_embeddings.weight", (TYPES, D)), ("embeddings.LayerNorm.weight", (D,)),
         ("embeddings.LayerNorm.bias", (D,))]
    for i in range(layers):
        p = "encoder.layer.%d." % i
        for n in ("query", "key", "value"):
            s += [(p + "attention.self.%s.weight" % n, (D, D)), (p + "attention.self.%s.bias" % n, (D,))]
        s += [(p + "attention.output.dense.weight", (D, D)), (p + "attention.output.dense.bias", (D,)),
              (p + "attention.output.LayerNorm.weight", (D,)), (p + "attention.output.LayerNorm.bias", (D,)),
              (p + "intermediate.dense.weight", (FFN, D)), (p + "intermediate.dense.bias", (FFN,)),
              (p + "output.dense.weight", (D, FFN)), (p + "output.dense.bias", (D,)),
              (p + "output.LayerNorm.weight", (D,)), (p + "output.LayerNorm.bias", (D,))]
    if pooler:
        s += [("pooler.dense.weight", (D, D)), ("pooler.dense.bias", (D,))]
    if classifier:
        s += [("classifier.weight", (C, D)), ("classifier.bias", (C,))]
    return s


def random_params(shapes, gen, scale):
    P = {}
    for name, shape in shapes:
        if name.endswith("LayerNorm.weight"):
            P[name] = 1.0 + 0.1 * torch.randn(shape, generator=gen, dtype=DTYPE)
        elif name.endswith("bias"):
            P[name] = 0.1 * torch.randn(shape, generator=gen, dtype=DTYPE)
        elif "embeddings" in name:
            P[name] = torch.randn(shape, generator=gen, dtype=DTYPE)
        else:
            P[name] = scale * torch.randn(shape, generator=gen, dtype=DTYPE) / math.sqrt(shape[1])
        P[name].requires_grad_(True)
    return P


def layer_norm(x, P, pre):
    return torch.nn.functional.layer_norm(x, (x.shape[-1],), P[pre + ".weight"], P[pre + ".bias"], EPS)


def lin(x, P, pre):
    return x @ P[pre + ".weight"].T + P[pre + ".bias"]


def gelu(x):
    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))


def embed(P, ids, types):
    pos = torch.arange(ids.shape[1])
    e = (P["embeddings.word_embeddings.weight"][ids] + P["embeddings.position_embeddings.weight"][pos][None]
         + P["embeddings.token_type_embeddings.weight"][types])
    return layer_norm(e, P, "embeddings.LayerNorm")


def heads(x):
    b, l, _ = x.shape
    return x.reshape(b, l, H, D // H).permute(0, 2, 1, 3)


def attention(q, k, v, ext_mask):
    """q, k, v [B, L, D]; returns the context [B, L, D] and the masked pre-softmax scores [B, H, L, L]."""
    s = heads(q) @ heads(k).transpose(-1, -2) / math.sqrt(D // H) + ext_mask
    ctx = torch.softmax(s, dim=-1) @ heads(v)
    return ctx.permute(0, 2, 1, 3).reshape(q.shape), s


def teacher_forward(P, layers, ids, types, mask):
    ext = ((1.0 - mask) * -10000.0)[:, None, None, :]
    x = embed(P, ids, types)
    hidden, scores = [x], []
    for i in range(layers):
        p = "encoder.layer.%d." % i
        ctx, s = attention(lin(x, P, p + "attention.self.query"), lin(x, P, p + "attention.self.key"),
                           lin(x, P, p + "attention.self.value"), ext)
        x1 = layer_norm(lin(ctx, P, p + "attention.output.dense") + x, P, p + "attention.output.LayerNorm")
        x = layer_norm(lin(gelu(lin(x1, P, p + "intermediate.dense")), P, p + "output.dense") + x1, P,
                       p + "output.LayerNorm")
        hidden.append(x)
        scores.append(s)
    pooled = torch.tanh(lin(x[:, 0], P, "pooler.dense"))
    return hidden, scores, pooled, lin(pooled, P, "classifier")


def student_currents(P, i, s_in, ext):
    """The six per-layer maps of SPEC section 2 as closures over layer i's parameters."""
    p = "encoder.layer.%d." % i
    return {
        "K": lambda a: lin(a, P, p + "attention.self.key"),
        "V": lambda a: lin(a, P, p + "attention.self.value"),
        "A": lambda a_in, a_k, a_v: attention(lin(a_in, P, p + "attention.self.query"), a_k, a_v, ext),
        "SO": lambda a_a, a_in: layer_norm(lin(a_a, P, p + "attention.output.dense") + a_in, P,
                                           p + "attention.output.LayerNorm"),
        "IM": lambda a_so: gelu(lin(a_so, P, p + "intermediate.dense")),
        "O": lambda a_im, a_so: layer_norm(lin(a_im, P, p + "output.dense") + a_so, P, p + "output.LayerNorm"),
    }


POPS = ("K", "V", "A", "SO", "IM", "O")


def student_simulate(P, layers, ids, types, mask, steps, w_fb=None, track_margin=True):
    """IF simulation; returns the rates {name: [B, L, width]} and the smallest |u - vth| seen.  With w_fb,
    population E also receives W_fb s_O(t - 1) from the last layer's O spikes of the previous step.  With
    track_margin=False the margin (one reduction per population and step) is skipped and returned as inf:
    benchmarks/compare/spiking_bert_torch.py times this loop."""
    ext = ((1.0 - mask) * -10000.0)[:, None, None, :]
    with torch.no_grad():
        x_e = embed(P, ids, types)
        maps = [student_currents(P, i, None, ext) for i in range(layers)]
        u, count = {}, {}
        margin = [float("inf")]

        def fire(name, current):
            u[name] = u.get(name, torch.zeros_like(current)) + current
            if track_margin:
                margin[0] = min(margin[0], float((u[name] - VTH).abs().min()))
            s = (u[name] >= VTH).to(DTYPE)
            u[name] = u[name] - VTH * s
            count[name] = count.get(name, torch.zeros_like(current)) + s
            return s

        s_last = None
        for _ in range(steps):
            fb = 0.0 if (w_fb is None or s_last is None) else s_last @ w_fb.T
            s_in = fire("E", x_e + fb)
            for i in range(layers):
                m = maps[i]
                s_k = fire("%d.K" % i, m["K"](s_in))
                s_v = fire("%d.V" % i, m["V"](s_in))
                s_a = fire("%d.A" % i, m["A"](s_in, s_k, s_v)[0])
                s_so = fire("%d.SO" % i, m["SO"](s_a, s_in))
                s_im = fire("%d.IM" % i, m["IM"](s_so))
                s_in = fire("%d.O" % i, m["O"](s_im, s_so))
            s_last = s_in
        return {k: v / steps for k, v in count.items()}, margin[0]


def clamp_network(P, layers, ids, types, mask):
    """The equivalent network on rates: every population's output clamp(current / vth, 0, 1)."""
    ext = ((1.0 - mask) * -10000.0)[:, None, None, :]
    c = lambda z: torch.clamp(z / VTH, 0.0, 1.0)
    a = {"E": c(embed(P, ids, types))}
    scores = []
    a_in = a["E"]
    for i in range(layers):
        m = student_currents(P, i, None, ext)
        a_k = c(m["K"](a_in))
        a_v = c(m["V"](a_in))
        ctx, s = m["A"](a_in, a_k, a_v)
        a_a = c(ctx)
        a_so = c(m["SO"](a_a, a_in))
        a_im = c(m["IM"](a_so))
        a_in = c(m["O"](a_im, a_so))
        a.update({"%d.K" % i: a_k, "%d.V" % i: a_v, "%d.A" % i: a_a, "%d.SO" % i: a_so, "%d.IM" % i: a_im,
                  "%d.O" % i: a_in})
        scores.append(s)
    return a, scores


def teacher_case(out, gen):
    Lt = 4
    P = random_params(bert_shapes(Lt, True, True), gen, 1.0)
    ids = torch.randint(1, V, (B, L), generator=gen)
    ids[:, 0] = 2  # a [CLS]-like first token
    types = torch.zeros(B, L, dtype=torch.long)
    types[:, 3:] = 1
    mask = torch.ones(B, L, dtype=DTYPE)
    mask[1, 4:] = 0.0
    ids[1, 4:] = 0
    labels = torch.tensor([2, 0])
    hidden, scores, pooled, logits = teacher_forward(P, Lt, ids, types, mask)
    loss = torch.nn.functional.cross_entropy(logits, labels)
    loss.backward()
    for name, _ in bert_shapes(Lt, True, True):
        out.append(fmt("teacher/" + name, P[name]))
    out.append(fmt("teacher/input_ids", ids))
    out.append(fmt("teacher/token_type_ids", types))
    out.append(fmt("teacher/attention_mask", mask))
    out.append(fmt("teacher/labels", labels))
    for i, h in enumerate(hidden):
        out.append(fmt("teacher/hidden.%d" % i, h))
    for i, s in enumerate(scores):
        out.append(fmt("teacher/scores.%d" % i, s))
    out.append(fmt("teacher/pooled", pooled))
    out.append(fmt("teacher/logits", logits))
    out.append(fmt("teacher/loss", loss.reshape(1)))
    for name, _ in bert_shapes(Lt, True, True):
        out.append(fmt("teacher/grad/" + name, P[name].grad))
    return dict(P=P, layers=Lt, ids=ids, types=types, mask=mask, hidden=[h.detach() for h in hidden],
                scores=[s.detach() for s in scores], logits=logits.detach())


def student_case(out, teacher, seed):
    Ls = 2
    gen = torch.Generator().manual_seed(seed)
    shapes = bert_shapes(Ls, False, True) + [("fit_dense.weight", (D, D)), ("fit_dense.bias", (D,))]
    P = random_params(shapes, gen, 2.5)
    ids, types, mask = teacher["ids"], teacher["types"], teacher["mask"]
    rates, margin = student_simulate(P, Ls, ids, types, mask, T_STEPS)
    if margin < MARGIN:
        return None
    means = [float(r.mean()) for r in rates.values()]
    if min(means) < 0.03 or max(means) > 0.7:
        return None
    # training graph: clamp network, outputs of E and every O replaced by the simulated rates
    clamp, s_scores = clamp_network(P, Ls, ids, types, mask)
    reps = []
    for name in ["E"] + ["%d.O" % i for i in range(Ls)]:
        reps.append(clamp[name] + (rates[name] - clamp[name]).detach())
    logits = lin(torch.relu(reps[-1][:, 0]), P, "classifier")
    r = teacher["layers"] // Ls
    mse = torch.nn.functional.mse_loss
    rep_loss = sum(mse(lin(a, P, "fit_dense"), teacher["hidden"][k * r]) for k, a in enumerate(reps))
    zero = lambda s: torch.where(s <= -100.0, torch.zeros_like(s), s)
    att_loss = sum(mse(zero(s_scores[k]), zero(teacher["scores"][(k + 1) * r - 1])) for k in range(Ls))
    pred_loss = (-torch.softmax(teacher["logits"], -1) * torch.log_softmax(logits, -1)).mean()
    total = rep_loss + att_loss + pred_loss
    total.backward()
    for name, _ in shapes:
        out.append(fmt("student/" + name, P[name]))
    out.append(fmt("student/T", torch.tensor([float(T_STEPS)])))
    for name, v in rates.items():
        out.append(fmt("student/rates." + name, v))
    out.append(fmt("student/logits", logits))
    for k, s in enumerate(s_scores):
        out.append(fmt("student/clamp_scores.%d" % k, s))
    out.append(fmt("student/loss/hidden", rep_loss.reshape(1)))
    out.append(fmt("student/loss/attention", att_loss.reshape(1)))
    out.append(fmt("student/loss/prediction", pred_loss.reshape(1)))
    for name, _ in shapes:
        out.append(fmt("student/grad/" + name, P[name].grad))
    # the same student with feedback W_s (O of the last layer -> E)
    for attempt in range(50):
        w_fb = 1.5 * torch.randn(D, D, generator=gen, dtype=DTYPE) / math.sqrt(D)
        fb_rates, fb_margin = student_simulate(P, Ls, ids, types, mask, T_STEPS, w_fb)
        if fb_margin >= MARGIN and max(float((fb_rates["E"] - rates["E"]).abs().max()), 0) > 0:
            break
    else:
        return None
    out.append(fmt("student_fb/feedback.weight", w_fb))
    for name, v in fb_rates.items():
        out.append(fmt("student_fb/rates." + name, v))
    out.append(fmt("student_fb/logits", lin(torch.relu(fb_rates["%d.O" % (Ls - 1)][:, 0]), P, "classifier")))
    return min(margin, fb_margin), {k: round(v, 3) for k, v in zip(rates.keys(), means)}


def build():
    torch.set_num_threads(1)
    out = ["# BERT teacher and SpikingBERT student fixtures written by tests/reference/bert.py (float64). "
           "Do not edit.\n"]
    teacher = teacher_case(out, torch.Generator().manual_seed(1234))
    for seed in range(100, 200):
        got = student_case(out, teacher, seed)
        if got:
            break
    else:
        raise SystemExit("no student seed gave margins >= %g and moderate rates" % MARGIN)
    return "".join(out), "student seed %d: margin %.3g, mean rates %s" % (seed, got[0], got[1])


def main(argv=None):
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join(here, "fixtures", "bert.txt"))
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
