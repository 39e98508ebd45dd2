#!/usr/bin/env python3
"""PyTorch reference for optimizer trajectories, LR schedules and losses.

Writes tests/reference/fixtures/optim_losses.txt, the fixture file that the
C++ tests read.  Regenerate from the repository root with

    /usr/bin/python3 tests/reference/optim_losses.py            # writes the fixture
    /usr/bin/python3 tests/reference/optim_losses.py --check    # compare, write nothing

Only torch is needed (Debian's python3-torch is enough).  Everything runs in
float64 on the CPU with a single thread.

Part A (optimizers): two parameters p [7] and q [2,3] are trained together in
one optimizer for 10 steps.  At step k = 0..9 the gradient is a deterministic
function of the CURRENT parameter values

    grad_p = sin(3 p) + 0.1 p + 0.05 (k + 1)
    grad_q = cos(2 q) - 0.2 q

then (optionally) clip_grad_norm_, optimizer.step(), scheduler.step().  After
every step p and q are recorded (optim/<case>/p [10,7], optim/<case>/q
[10,2,3]) together with the learning rate in effect during that step
(optim/<case>/lr [10], read from param_groups[0]['lr'] before optimizer.step()).

Part B (losses): values and input gradients by autograd, see loss_cases().

Fixture format (plain text):
  * lines starting with '#' are comments;
  * each tensor is two lines:
        tensor <name> <ndim> <d0> <d1> ...
        <all values, row-major, single-space separated, '%.17g'>
  * scalars are written as ndim 1, shape 1; integer tensors as plain numbers.
"""

import argparse
import math
import os
import sys
from collections import OrderedDict

import torch
import torch.nn.functional as F

DTYPE = torch.float64
STEPS = 10

P0 = torch.linspace(-1.5, 2.0, 7, dtype=DTYPE) + torch.tensor(
    [0.03, -0.02, 0.05, 0.013, -0.041, 0.027, -0.008], dtype=DTYPE)
Q0 = torch.tensor([[0.3, -0.7, 1.1], [-0.25, 0.6, -1.3]], dtype=DTYPE)


# --------------------------------------------------------------------------
# Part A: optimizers
# --------------------------------------------------------------------------
def warmup_cosine(s):
    """LambdaLR factor: (s+1)/3 for s < 3, else 0.5*(1 + cos(pi*(s-3)/(10-3)))."""
    if s < 3:
        return (s + 1) / 3.0
    return 0.5 * (1.0 + math.cos(math.pi * (s - 3) / (STEPS - 3)))


def linear_warmup4(s):
    """LambdaLR factor: min(1, (s+1)/4)."""
    return min(1.0, (s + 1) / 4.0)


def make_sgd(params):
    return torch.optim.SGD(params, lr=0.1), None


def make_sgd_momentum(params):
    return torch.optim.SGD(params, lr=0.1, momentum=0.9, dampening=0,
                           weight_decay=0.01), None


def make_sgd_nesterov(params):
    return torch.optim.SGD(params, lr=0.05, momentum=0.9, nesterov=True), None


def make_adam(params):
    return torch.optim.Adam(params, lr=0.01, betas=(0.9, 0.999), eps=1e-8,
                            weight_decay=0.0, foreach=False), None


def make_adam_l2(params):
    return torch.optim.Adam(params, lr=0.01, betas=(0.9, 0.999), eps=1e-8,
                            weight_decay=0.1, foreach=False), None


def make_adamw(params):
    p, q = params
    groups = [{"params": [p], "weight_decay": 0.1},
              {"params": [q], "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=0.01, betas=(0.9, 0.98), eps=1e-6,
                             foreach=False), None


def make_adamw_warmup_cosine(params):
    opt = torch.optim.AdamW(params, lr=0.02, betas=(0.9, 0.999), eps=1e-8,
                            weight_decay=0.05, foreach=False)
    return opt, torch.optim.lr_scheduler.LambdaLR(opt, warmup_cosine)


def make_adam_clip(params):
    return torch.optim.Adam(params, lr=0.05, betas=(0.9, 0.999), eps=1e-8,
                            weight_decay=0.0, foreach=False), None


def make_sgd_linear_warmup(params):
    opt = torch.optim.SGD(params, lr=0.1)
    return opt, torch.optim.lr_scheduler.LambdaLR(opt, linear_warmup4)


# name -> (factory, clip max_norm or None, description for the fixture)
OPTIM_CASES = OrderedDict([
    ("sgd", (make_sgd, None, "SGD lr=0.1 (momentum 0, weight_decay 0)")),
    ("sgd_momentum", (make_sgd_momentum, None,
                      "SGD lr=0.1 momentum=0.9 dampening=0 weight_decay=0.01 "
                      "(g += wd*p; buf = g at step 0, else buf = 0.9*buf + g; p -= lr*buf)")),
    ("sgd_nesterov", (make_sgd_nesterov, None,
                      "SGD lr=0.05 momentum=0.9 nesterov=True dampening=0 weight_decay=0 "
                      "(buf as above; p -= lr*(g + 0.9*buf))")),
    ("adam", (make_adam, None,
              "Adam lr=0.01 betas=(0.9,0.999) eps=1e-8 weight_decay=0 "
              "(p -= (lr/bc1) * m / (sqrt(v)/sqrt(bc2) + eps))")),
    ("adam_l2", (make_adam_l2, None,
                 "Adam lr=0.01 betas=(0.9,0.999) eps=1e-8 weight_decay=0.1 "
                 "(L2: g += 0.1*p before the moments)")),
    ("adamw", (make_adamw, None,
               "AdamW lr=0.01 betas=(0.9,0.98) eps=1e-6; group 0 = [p] weight_decay=0.1, "
               "group 1 = [q] weight_decay=0.0 (decoupled: p *= 1 - lr*wd, then Adam step)")),
    ("adamw_warmup_cosine", (make_adamw_warmup_cosine, None,
                             "AdamW lr=0.02 betas=(0.9,0.999) eps=1e-8 weight_decay=0.05 on both; "
                             "LambdaLR factor(s) = (s+1)/3 for s < 3, "
                             "0.5*(1 + cos(pi*(s-3)/(10-3))) for s >= 3; lr(step s) = 0.02*factor(s)")),
    ("adam_clip", (make_adam_clip, 0.5,
                   "Adam lr=0.05 betas=(0.9,0.999) eps=1e-8 weight_decay=0; before each step "
                   "clip_grad_norm_([p,q], max_norm=0.5): total = ||(||gp||,||gq||)||_2, "
                   "coef = min(1, 0.5/(total + 1e-6)), g *= coef; norm = pre-clip total")),
    ("sgd_linear_warmup", (make_sgd_linear_warmup, None,
                           "SGD lr=0.1 with LambdaLR factor(s) = min(1, (s+1)/4); "
                           "lr(step s) = 0.1*factor(s)")),
])


def run_optim_case(name):
    factory, max_norm, _ = OPTIM_CASES[name]
    p = P0.clone().requires_grad_(True)
    q = Q0.clone().requires_grad_(True)
    opt, sched = factory([p, q])
    ps, qs, lrs, norms = [], [], [], []
    for k in range(STEPS):
        with torch.no_grad():
            p.grad = torch.sin(3.0 * p) + 0.1 * p + 0.05 * (k + 1)
            q.grad = torch.cos(2.0 * q) - 0.2 * q
        if max_norm is not None:
            total = torch.nn.utils.clip_grad_norm_([p, q], max_norm=max_norm)
            norms.append(float(total))
        lrs.append(opt.param_groups[0]["lr"])
        if len(opt.param_groups) > 1:
            assert all(g["lr"] == lrs[-1] for g in opt.param_groups)
        opt.step()
        if sched is not None:
            sched.step()
        ps.append(p.detach().clone())
        qs.append(q.detach().clone())
    out = OrderedDict()
    out["p"] = torch.stack(ps)
    out["q"] = torch.stack(qs)
    out["lr"] = torch.tensor(lrs, dtype=DTYPE)
    if max_norm is not None:
        out["norm"] = torch.tensor(norms, dtype=DTYPE)
    return out


# --------------------------------------------------------------------------
# Part B: losses
# --------------------------------------------------------------------------
def leaf(t):
    return t.detach().clone().to(DTYPE).requires_grad_(True)


def soft_cross_entropy(predicts, targets):
    """TinyBERT: (-softmax(targets) * log_softmax(predicts)).mean() over ALL elements."""
    student_likelihood = F.log_softmax(predicts, dim=-1)
    targets_prob = F.softmax(targets, dim=-1)
    return (-targets_prob * student_likelihood).mean()


def loss_cases():
    """All loss cases, generated in this order after torch.manual_seed(0)."""
    cases = OrderedDict()
    randn = lambda *s: torch.randn(*s, dtype=DTYPE)

    # 1. cross entropy with ignore_index
    logits = leaf(randn(6, 5) * 2.0)
    targets = torch.randint(0, 5, (6,), dtype=torch.int64)
    targets[1] = -100
    targets[4] = -100
    value = F.cross_entropy(logits, targets, ignore_index=-100, reduction="mean")
    value.backward()
    cases["ce"] = ("F.cross_entropy(logits, targets, ignore_index=-100, reduction='mean'); "
                   "mean over the 4 non-ignored rows; targets[1] = targets[4] = -100",
                   OrderedDict([("logits", logits), ("targets", targets), ("value", value),
                                ("grad_logits", logits.grad)]))

    # 2. mse
    a = leaf(randn(4, 3))
    b = leaf(randn(4, 3))
    value = F.mse_loss(a, b)
    value.backward()
    cases["mse"] = ("F.mse_loss(a, b) (mean over all 12 elements)",
                    OrderedDict([("a", a), ("b", b), ("value", value),
                                 ("grad_a", a.grad), ("grad_b", b.grad)]))

    # 3./4. TinyBERT soft cross-entropy with temperature
    for name, tau in (("soft_ce", 2.0), ("soft_ce_t1", 1.0)):
        zs = leaf(randn(3, 4) * 1.5)
        zt = leaf(randn(3, 4) * 1.5)
        value = soft_cross_entropy(zs / tau, zt / tau)
        value.backward()
        cases[name] = ("TinyBERT soft_cross_entropy(z_s/tau, z_t/tau) = "
                       "mean over all 12 elements of (-softmax(z_t/tau) * log_softmax(z_s/tau)), "
                       "tau = %g; grad_zt is the teacher gradient (not detached)" % tau,
                       OrderedDict([("z_s", zs), ("z_t", zt),
                                    ("tau", torch.tensor([tau], dtype=DTYPE)),
                                    ("value", value), ("grad_zs", zs.grad),
                                    ("grad_zt", zt.grad)]))

    # 5. KL divergence, batchmean
    zs = leaf(randn(3, 4) * 1.5)
    zt = leaf(randn(3, 4) * 1.5)
    value = F.kl_div(F.log_softmax(zs, -1), F.softmax(zt, -1), reduction="batchmean")
    value.backward()
    cases["kl"] = ("F.kl_div(F.log_softmax(z_s,-1), F.softmax(z_t,-1), reduction='batchmean') "
                   "= sum(pt*(log pt - log ps))/3; grad_zt not detached",
                   OrderedDict([("z_s", zs), ("z_t", zt), ("value", value),
                                ("grad_zs", zs.grad), ("grad_zt", zt.grad)]))

    # 6. log_softmax
    x = leaf(randn(3, 5) * 2.0)
    w = randn(3, 5)
    y = F.log_softmax(x, -1)
    (y * w).sum().backward()
    cases["log_softmax"] = ("y = log_softmax(x, -1); grad_x = d/dx (y*w).sum()",
                            OrderedDict([("x", x), ("y", y), ("w", w),
                                         ("grad_x", x.grad)]))

    # 7. layer norm
    x = leaf(randn(4, 6) * 1.5 + 0.5)
    weight = leaf(1.0 + 0.3 * randn(6))
    bias = leaf(0.2 * randn(6))
    w = randn(4, 6)
    y = F.layer_norm(x, (6,), weight, bias, eps=1e-5)
    (y * w).sum().backward()
    cases["layernorm"] = ("y = F.layer_norm(x, (6,), weight, bias, eps=1e-5) (biased variance); "
                          "grads of (y*w).sum()",
                          OrderedDict([("x", x), ("weight", weight), ("bias", bias),
                                       ("eps", torch.tensor([1e-5], dtype=DTYPE)),
                                       ("y", y), ("w", w), ("grad_x", x.grad),
                                       ("grad_weight", weight.grad),
                                       ("grad_bias", bias.grad)]))

    # 8. gelu
    x = leaf(torch.linspace(-4.0, 4.0, 20, dtype=DTYPE))
    y = F.gelu(x)
    (grad,) = torch.autograd.grad(y.sum(), x)
    y_tanh = F.gelu(x, approximate="tanh")
    (grad_tanh,) = torch.autograd.grad(y_tanh.sum(), x)
    cases["gelu"] = ("x = linspace(-4, 4, 20); y = 0.5*x*(1+erf(x/sqrt(2))); "
                     "y_tanh = 0.5*x*(1+tanh(sqrt(2/pi)*(x+0.044715*x^3))); "
                     "grad = dy/dx, grad_tanh = dy_tanh/dx (elementwise)",
                     OrderedDict([("x", x), ("y", y), ("y_tanh", y_tanh),
                                  ("grad", grad), ("grad_tanh", grad_tanh)]))
    return cases


# --------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------
def format_tensor(name, t):
    t = t.detach().contiguous()
    shape = list(t.shape) if t.dim() > 0 else [1]
    head = "tensor %s %d %s" % (name, len(shape), " ".join(str(d) for d in shape))
    if t.is_floating_point():
        vals = " ".join("%.17g" % v for v in t.to(DTYPE).reshape(-1).tolist())
    else:
        vals = " ".join("%d" % v for v in t.reshape(-1).tolist())
    return head + "\n" + vals + "\n"


HEADER = """\
# Generated by tests/reference/optim_losses.py -- do not edit by hand.
# Regenerate from the repository root:  /usr/bin/python3 tests/reference/optim_losses.py
# (needs only torch; float64, CPU, 1 thread; torch {torch_version}).
# Format: lines starting with '#' are comments; each tensor is two lines:
#   tensor <name> <ndim> <d0> <d1> ...
#   <values, row-major, single-space separated, %.17g; integers as plain numbers>
# Scalars are ndim 1, shape 1.
#
# Part A: optimizers.  p = optim/p0 [7] and q = optim/q0 [2,3] are trained together
# in one optimizer for 10 steps k = 0..9.  At step k, from the CURRENT values:
#   grad_p = sin(3 p) + 0.1 p + 0.05 (k + 1)
#   grad_q = cos(2 q) - 0.2 q
# then optional clip_grad_norm_, optimizer.step(), scheduler.step() (LambdaLR: the
# lr during step s = base_lr * factor(s), s = 0..9).
# optim/<case>/p [10,7], optim/<case>/q [10,2,3]: parameters after each step;
# optim/<case>/lr [10]: lr in effect during each step.
# Adam/AdamW use PyTorch's single-tensor (foreach=False, amsgrad=False) update:
#   m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2; bc1 = 1-b1^t; bc2 = 1-b2^t (t = k+1)
#   p -= (lr/bc1) * m / (sqrt(v)/sqrt(bc2) + eps)
"""


def build():
    torch.set_num_threads(1)
    torch.manual_seed(0)
    lines = [HEADER.format(torch_version=torch.__version__)]
    lines.append(format_tensor("optim/p0", P0))
    lines.append(format_tensor("optim/q0", Q0))
    summary = []
    for name, (_, _, desc) in OPTIM_CASES.items():
        out = run_optim_case(name)
        lines.append("# case optim/%s: %s\n" % (name, desc))
        for key, val in out.items():
            lines.append(format_tensor("optim/%s/%s" % (name, key), val))
        summary.append("optim/%-22s final p[0] %.6f lr[-1] %.6g"
                       % (name, out["p"][-1, 0].item(), out["lr"][-1].item()))
    lines.append("#\n# Part B: losses (inputs drawn after torch.manual_seed(0), in file order);\n"
                 "# value = loss (shape [1]); grad_* = d value / d input by autograd.\n")
    for name, (desc, out) in loss_cases().items():
        lines.append("# case loss/%s: %s\n" % (name, desc))
        for key, val in out.items():
            lines.append(format_tensor("loss/%s/%s" % (name, key), val))
        if "value" in out:
            summary.append("loss/%-23s value %.10g" % (name, out["value"].item()))
    return "".join(lines), summary


def main(argv=None):
    here = os.path.dirname(os.path.abspath(__file__))
    default_out = os.path.join(here, "fixtures", "optim_losses.txt")
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=default_out, help="fixture path to write")
    ap.add_argument("--check", action="store_true",
                    help="compare with the existing fixture instead of writing it")
    args = ap.parse_args(argv)

    text, summary = build()
    for line in summary:
        print(line)
    if args.check:
        with open(args.out) as f:
            old = f.read()
        if old != text:
            print("fixture differs from %s" % args.out)
            return 1
        print("fixture up to date: %s" % args.out)
        return 0
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        f.write(text)
    print("wrote %s (%d bytes)" % (args.out, len(text)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
