#!/usr/bin/env python3
"""PyTorch reference for spiking-neuron update rules and surrogate gradients.

Writes tests/reference/fixtures/neurons.txt, the fixture file that the C++
tests read.  Regenerate from the repository root with

    /usr/bin/python3 tests/reference/neurons.py            # writes the fixture
    /usr/bin/python3 tests/reference/neurons.py --check    # compare, write nothing

Only torch is needed (Debian's python3-torch is enough).  Everything runs in
float64 on the CPU with a single thread.  The neuron equations are written out
by hand below, mirroring the order of operations of the libraries they come
from (SpikingJelly, snnTorch, Norse, EvNN/EGRU); each spike nonlinearity is a
torch.autograd.Function whose forward is the Heaviside test and whose backward
is the surrogate derivative.  Gradients are obtained with torch autograd by
backpropagating an upstream gradient g through all time steps via
loss = (spikes * g).sum().

Fixture format (plain text):
  * lines starting with '#' are comments;
  * each tensor is two lines:
        tensor <case>/<name> <ndim> <d0> <d1> ...
        <all values, row-major, single-space separated, '%.17g'>
  * spikes are written as 0/1; scalar parameter gradients as ndim 1, shape 1.
"""

import argparse
import math
import os
import sys
from collections import OrderedDict

import torch

DTYPE = torch.float64
T, B, N = 16, 2, 7

# An H value this close to the threshold (but not exactly on it) would make the
# spike pattern depend on the last bit of the arithmetic; the script refuses
# such inputs so that a faithful float64 implementation reproduces the spikes.
MIN_MARGIN = 1e-9
NEAR = 0.05  # at least one H must lie within NEAR of the threshold


# --------------------------------------------------------------------------
# Spike nonlinearities: forward = Heaviside test, backward = surrogate.
# Each backward mirrors the library's expression (same order of operations).
# --------------------------------------------------------------------------
def _heaviside_ge(x):
    return (x >= 0).to(x.dtype)


def _heaviside_gt(x):
    return (x > 0).to(x.dtype)


class SJATan(torch.autograd.Function):
    """SpikingJelly surrogate.ATan: S = [x >= 0],
    dS/dx = (alpha/2) / (1 + (pi * alpha/2 * x)^2)."""

    @staticmethod
    def forward(ctx, x, alpha):
        ctx.save_for_backward(x)
        ctx.alpha = alpha
        return _heaviside_ge(x)

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        a = ctx.alpha / 2
        ax = math.pi * a * x
        return a / (1 + ax * ax) * grad_output, None


class SJSigmoid(torch.autograd.Function):
    """SpikingJelly surrogate.Sigmoid: S = [x >= 0],
    dS/dx = alpha * sigmoid(alpha x) * (1 - sigmoid(alpha x))."""

    @staticmethod
    def forward(ctx, x, alpha):
        ctx.save_for_backward(x)
        ctx.alpha = alpha
        return _heaviside_ge(x)

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        sg = torch.sigmoid(x * ctx.alpha)
        return grad_output * (1.0 - sg) * sg * ctx.alpha, None


class SJPiecewiseQuadratic(torch.autograd.Function):
    """SpikingJelly surrogate.PiecewiseQuadratic: S = [x >= 0],
    dS/dx = alpha - alpha^2 |x| for |x| <= 1/alpha, else 0."""

    @staticmethod
    def forward(ctx, x, alpha):
        ctx.save_for_backward(x)
        ctx.alpha = alpha
        return _heaviside_ge(x)

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        alpha = ctx.alpha
        x_abs = x.abs()
        mask = x_abs > 1 / alpha
        grad = (grad_output * (-(alpha ** 2) * x_abs + alpha)).masked_fill(mask, 0)
        return grad, None


class SnnATan(torch.autograd.Function):
    """snnTorch surrogate.atan: S = [x > 0] (strict),
    dS/dx = (alpha/2) / (1 + (pi/2 * alpha * x)^2)."""

    @staticmethod
    def forward(ctx, x, alpha):
        ctx.save_for_backward(x)
        ctx.alpha = alpha
        return _heaviside_gt(x)

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        alpha = ctx.alpha
        return alpha / 2 / (1 + (math.pi / 2 * alpha * x).pow(2)) * grad_output, None


class SnnFastSigmoid(torch.autograd.Function):
    """snnTorch surrogate.fast_sigmoid: S = [x > 0] (strict),
    dS/dx = 1 / (slope |x| + 1)^2."""

    @staticmethod
    def forward(ctx, x, slope):
        ctx.save_for_backward(x)
        ctx.slope = slope
        return _heaviside_gt(x)

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return grad_output / (ctx.slope * torch.abs(x) + 1.0) ** 2, None


class NorseSuperSpike(torch.autograd.Function):
    """Norse SuperSpike (method="super"): z = [x > 0] (strict),
    dz/dx = 1 / (alpha |x| + 1)^2."""

    @staticmethod
    def forward(ctx, x, alpha):
        ctx.save_for_backward(x)
        ctx.alpha = alpha
        return _heaviside_gt(x)

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return grad_output / (ctx.alpha * torch.abs(x) + 1.0).pow(2), None


class Triangle(torch.autograd.Function):
    """EGRU (EvNN) SpikeFunction: o = [x > 0] (strict; torch.heaviside(x, x)),
    do/dx = gamma * max(0, 1 - s |x|)  (gamma: dampening factor, s: support)."""

    @staticmethod
    def forward(ctx, x, gamma, support):
        ctx.save_for_backward(x)
        ctx.gamma = gamma
        ctx.support = support
        return _heaviside_gt(x)

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        dz = ctx.gamma * torch.clamp(1 - ctx.support * torch.abs(x), min=0)
        return grad_output * dz, None, None


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------
def scalar_leaf(value):
    return torch.tensor([value], dtype=DTYPE, requires_grad=True)


def make_inputs(seed, low, high, plant=()):
    """x ~ U(low, high) of shape [T, B, N], g ~ N(0, 1), both seeded.
    `plant` is a list of ((t, b, n), value) overrides of x."""
    torch.manual_seed(seed)
    x = torch.empty(T, B, N, dtype=DTYPE).uniform_(low, high)
    g = torch.randn(T, B, N, dtype=DTYPE)
    for (t, b, n), value in plant:
        x[t, b, n] = value
    return x, g


def finish(x, g, spikes, seqs, params):
    """Backpropagate loss = (spikes * g).sum() and collect the outputs."""
    loss = (spikes * g).sum()
    loss.backward()
    out = OrderedDict()
    out["x"] = x.detach().clone()
    out["g"] = g.clone()
    out["spikes"] = spikes.detach().clone()
    for name, seq in seqs:
        out[name] = torch.stack(seq).detach().clone()
    out["grad_x"] = x.grad.detach().clone()
    for name, p in params:
        out[name] = p.grad.detach().clone()
    return out


# --------------------------------------------------------------------------
# Neuron cases.  Each function takes x [T,B,N] and g [T,B,N] and returns an
# OrderedDict of output tensors; `h` is the pre-reset membrane (the value the
# spike test looks at).  State starts at zero unless stated.
# --------------------------------------------------------------------------
def sj_lif_hard(x, g, tau=2.0, theta_value=1.0, v_reset=0.0, alpha=2.0):
    """SpikingJelly LIFNode(tau=2, decay_input=True, v_threshold=1,
    v_reset=0, detach_reset=False, surrogate ATan(alpha=2)).
    H = V + (X - (V - V_reset)) * k, k = 1/tau; S = [H >= theta];
    V = S * V_reset + (1 - S) * H."""
    x = x.clone().requires_grad_(True)
    theta = scalar_leaf(theta_value)
    inv_tau = scalar_leaf(1.0 / tau)
    v = torch.zeros(B, N, dtype=DTYPE)
    spikes, vs, hs = [], [], []
    for t in range(T):
        h = v + (x[t] - (v - v_reset)) * inv_tau
        s = SJATan.apply(h - theta, alpha)
        v = s * v_reset + (1.0 - s) * h
        spikes.append(s)
        vs.append(v)
        hs.append(h)
    return finish(x, g, torch.stack(spikes), [("v", vs), ("h", hs)],
                  [("grad_theta", theta), ("grad_inv_tau", inv_tau)])


def sj_lif_soft_detach(x, g, tau=3.0, theta_value=1.0, alpha=4.0):
    """SpikingJelly LIFNode(tau=3, decay_input=True, v_threshold=1,
    v_reset=None, detach_reset=True, surrogate Sigmoid(alpha=4)).
    H = V + (X - V) * k, k = 1/tau; S = [H >= theta];
    V = H - theta * detach(S)  (S itself is not detached in the output).
    SpikingJelly divides by tau instead of multiplying by k = 1/tau; with
    tau = 3 that differs in the last bit (measured: <= 3.3e-16 in v)."""
    x = x.clone().requires_grad_(True)
    theta = scalar_leaf(theta_value)
    inv_tau = scalar_leaf(1.0 / tau)
    v = torch.zeros(B, N, dtype=DTYPE)
    spikes, vs, hs = [], [], []
    for t in range(T):
        h = v + (x[t] - (v - 0.0)) * inv_tau
        s = SJSigmoid.apply(h - theta, alpha)
        v = h - s.detach() * theta
        spikes.append(s)
        vs.append(v)
        hs.append(h)
    return finish(x, g, torch.stack(spikes), [("v", vs), ("h", hs)],
                  [("grad_theta", theta), ("grad_inv_tau", inv_tau)])


def sj_plif(x, g, init_tau=2.0, theta_value=1.0, v_reset=0.0, alpha=2.0):
    """SpikingJelly ParametricLIFNode(init_tau=2, decay_input=True,
    v_threshold=1, v_reset=0, detach_reset=False, surrogate ATan(alpha=2)).
    w = -log(init_tau - 1); k = sigmoid(w);
    H = V + (X - (V - V_reset)) * k; S = [H >= theta];
    V = S * V_reset + (1 - S) * H."""
    x = x.clone().requires_grad_(True)
    theta = scalar_leaf(theta_value)
    w = scalar_leaf(-math.log(init_tau - 1.0))
    v = torch.zeros(B, N, dtype=DTYPE)
    spikes, vs, hs = [], [], []
    for t in range(T):
        k = torch.sigmoid(w)
        h = v + (x[t] - (v - v_reset)) * k
        s = SJATan.apply(h - theta, alpha)
        v = s * v_reset + (1.0 - s) * h
        spikes.append(s)
        vs.append(v)
        hs.append(h)
    return finish(x, g, torch.stack(spikes), [("v", vs), ("h", hs)],
                  [("grad_w", w), ("grad_theta", theta)])


def if_subtract(x, g, theta_value=1.0, alpha=2.0):
    """IF neuron with subtractive reset (SpikingBERT; SpikingJelly IFNode with
    v_reset=None): H = V + X; S = [H >= theta]; V = H - theta * S
    (S not detached); surrogate ATan(alpha=2)."""
    x = x.clone().requires_grad_(True)
    theta = scalar_leaf(theta_value)
    v = torch.zeros(B, N, dtype=DTYPE)
    spikes, vs, hs = [], [], []
    for t in range(T):
        h = v + x[t]
        s = SJATan.apply(h - theta, alpha)
        v = h - s * theta
        spikes.append(s)
        vs.append(v)
        hs.append(h)
    return finish(x, g, torch.stack(spikes), [("v", vs), ("h", hs)],
                  [("grad_theta", theta)])


def snntorch_leaky_subtract(x, g, beta_value=0.8, theta_value=1.0, alpha=2.0):
    """snnTorch Leaky(beta=0.8, threshold=1, reset_mechanism="subtract",
    reset_delay=True, spike_grad=atan(alpha=2)).
    R_t = detach([V_{t-1} > theta]); V_t = (beta V_{t-1} + X_t) - R_t theta;
    S_t = [V_t > theta].  The reset is delayed: `v` is the membrane snnTorch
    returns at step t (h == v here).  (snnTorch's spike tensor is float32
    whatever the input dtype, so its gradients agree to ~1e-7 relative.)"""
    x = x.clone().requires_grad_(True)
    theta = scalar_leaf(theta_value)
    beta = scalar_leaf(beta_value)
    v = torch.zeros(B, N, dtype=DTYPE)
    spikes, vs, hs = [], [], []
    for t in range(T):
        r = SnnATan.apply(v - theta, alpha).clone().detach()
        v = (beta.clamp(0, 1) * v + x[t]) - r * theta
        s = SnnATan.apply(v - theta, alpha)
        spikes.append(s)
        vs.append(v)
        hs.append(v)
    return finish(x, g, torch.stack(spikes), [("v", vs), ("h", hs)],
                  [("grad_theta", theta), ("grad_beta", beta)])


def snntorch_leaky_zero(x, g, beta_value=0.7, theta_value=1.0, slope=25.0):
    """snnTorch Leaky(beta=0.7, threshold=1, reset_mechanism="zero",
    reset_delay=True, spike_grad=fast_sigmoid(slope=25)).
    R_t = detach([V_{t-1} > theta]); V_t = beta ((1 - R_t) V_{t-1}) + X_t;
    S_t = [V_t > theta]  (h == v here)."""
    x = x.clone().requires_grad_(True)
    theta = scalar_leaf(theta_value)
    beta = scalar_leaf(beta_value)
    v = torch.zeros(B, N, dtype=DTYPE)
    spikes, vs, hs = [], [], []
    for t in range(T):
        r = SnnFastSigmoid.apply(v - theta, slope).clone().detach()
        v = (1 - r) * v
        v = beta.clamp(0, 1) * v + x[t]
        s = SnnFastSigmoid.apply(v - theta, slope)
        spikes.append(s)
        vs.append(v)
        hs.append(v)
    return finish(x, g, torch.stack(spikes), [("v", vs), ("h", hs)],
                  [("grad_theta", theta), ("grad_beta", beta)])


NORSE = dict(tau_syn_inv=200.0, tau_mem_inv=100.0, v_leak=0.0, v_th=1.0,
             v_reset=0.0, alpha=100.0, dt=1e-3)


def norse_lif(x, g, p=NORSE):
    """Norse lif_feed_forward_step (Norse <= 1.0.0 ordering: the input enters
    the current AFTER the voltage update), method="super", alpha=100:
      v_dec = v + dt*tm_inv*((v_leak - v) + i)
      i_dec = i + (-dt*ts_inv)*i
      z     = [v_dec - v_th > 0]
      v     = (1 - z) v_dec + z v_reset          (z not detached)
      i     = i_dec + x_t
    Initial v = v_leak, i = 0.  `i` is the current after the step."""
    x = x.clone().requires_grad_(True)
    v_th = scalar_leaf(p["v_th"])
    dt = p["dt"]
    v = torch.full((B, N), p["v_leak"], dtype=DTYPE)
    i = torch.zeros(B, N, dtype=DTYPE)
    spikes, vs, is_, hs = [], [], [], []
    for t in range(T):
        dv = dt * p["tau_mem_inv"] * ((p["v_leak"] - v) + i)
        v_decayed = v + dv
        di = -dt * p["tau_syn_inv"] * i
        i_decayed = i + di
        z = NorseSuperSpike.apply(v_decayed - v_th, p["alpha"])
        v = (1 - z) * v_decayed + z * p["v_reset"]
        i = i_decayed + x[t]
        spikes.append(z)
        vs.append(v)
        is_.append(i)
        hs.append(v_decayed)
    return finish(x, g, torch.stack(spikes), [("v", vs), ("i", is_), ("h", hs)],
                  [("grad_v_th", v_th)])


def norse_lif_before(x, g, p=NORSE):
    """Norse lif_feed_forward_step with the input entering the current BEFORE
    the voltage update (the order of Norse 1.1.0's lif_feed_forward_step and
    of lif_feed_forward_integral in Norse 1.0.0 and 1.1.0), SuperSpike
    alpha=100 (Norse 1.1.0's SuperSpike ignores alpha, i.e. uses alpha = 1):
      i'    = i + x_t
      v_dec = v + dt*tm_inv*((v_leak - v) + i')
      i     = i' + (-dt*ts_inv)*i'               (= i' (1 - dt*ts_inv))
      z     = [v_dec - v_th > 0]
      v     = (1 - z) v_dec + z v_reset          (z not detached)"""
    x = x.clone().requires_grad_(True)
    v_th = scalar_leaf(p["v_th"])
    dt = p["dt"]
    v = torch.full((B, N), p["v_leak"], dtype=DTYPE)
    i = torch.zeros(B, N, dtype=DTYPE)
    spikes, vs, is_, hs = [], [], [], []
    for t in range(T):
        i_new = i + x[t]
        dv = dt * p["tau_mem_inv"] * ((p["v_leak"] - v) + i_new)
        v_decayed = v + dv
        di = -dt * p["tau_syn_inv"] * i_new
        i = i_new + di
        z = NorseSuperSpike.apply(v_decayed - v_th, p["alpha"])
        v = (1 - z) * v_decayed + z * p["v_reset"]
        spikes.append(z)
        vs.append(v)
        is_.append(i)
        hs.append(v_decayed)
    return finish(x, g, torch.stack(spikes), [("v", vs), ("i", is_), ("h", hs)],
                  [("grad_v_th", v_th)])


# name -> (function, threshold value, seed, x range, planted exact hits)
# A planted value makes H land exactly on the threshold at t = 0 (the product
# or sum involved is exact in binary floating point, so it is on the threshold
# in any faithful implementation): it pins down '>=' versus '>'.
NEURON_CASES = OrderedDict([
    ("sj_lif_hard", (sj_lif_hard, 1.0, 1001, (0.0, 2.6),
                     [((0, 0, 0), 2.0), ((0, 1, 4), 2.0)])),           # H = 2 * 0.5
    ("sj_lif_soft_detach", (sj_lif_soft_detach, 1.0, 1002, (0.0, 2.8), [])),
    ("sj_plif", (sj_plif, 1.0, 1003, (0.0, 2.2),
                 [((0, 0, 1), 2.0)])),                                 # H = 2 * sigmoid(0)
    ("if_subtract", (if_subtract, 1.0, 1004, (-0.2, 0.9),
                     [((0, 0, 2), 1.0)])),                             # H = 0 + 1
    ("snntorch_leaky_subtract", (snntorch_leaky_subtract, 1.0, 1005, (0.0, 0.9),
                                 [((0, 0, 3), 1.0)])),                 # V = 0.8*0 + 1
    ("snntorch_leaky_zero", (snntorch_leaky_zero, 1.0, 1006, (0.0, 1.0),
                             [((0, 1, 5), 1.0)])),                     # V = 0.7*0 + 1
    ("norse_lif", (norse_lif, 1.0, 1007, (0.0, 2.2),
                   [((0, 0, 6), 10.0)])),   # t=1: v_dec = 0 + 0.1*(0 + 10) (if nothing else at t=0)
    ("norse_lif_before", (norse_lif_before, 1.0, 1008, (0.0, 2.2),
                          [((0, 1, 0), 10.0)])),                       # v_dec = 0.1 * 10
])


def exact_hit_positions(h, theta):
    return [tuple(int(i) for i in idx) for idx in (h == theta).nonzero()]


def run_neuron_case(name):
    fn, theta, seed, (low, high), plant = NEURON_CASES[name]
    x, g = make_inputs(seed, low, high, plant)
    out = fn(x, g)
    return out, theta


def check_neuron_case(name, out, theta):
    """Sanity checks: a non-trivial spike pattern, and the threshold is
    exercised (H near theta), but never within MIN_MARGIN of it unless
    exactly on it by construction."""
    rate = out["spikes"].mean().item()
    assert 0.1 < rate < 0.7, f"{name}: firing rate {rate:.3f} outside (0.1, 0.7)"
    h = out["h"]
    margin = (h - theta).abs()
    exact = margin == 0
    assert bool((margin < NEAR).any()), f"{name}: no H within {NEAR} of theta"
    nonexact = margin[~exact]
    assert bool((nonexact < NEAR).any()), f"{name}: no non-exact H within {NEAR} of theta"
    smallest = nonexact.min().item()
    assert smallest > MIN_MARGIN, (
        f"{name}: an H lies {smallest:.3g} from theta; the spike would depend on rounding")
    for key, val in out.items():
        assert torch.isfinite(val).all(), f"{name}/{key} not finite"
    return rate, int(exact.sum().item()), smallest


# --------------------------------------------------------------------------
# Surrogate derivative table
# --------------------------------------------------------------------------
def surrogate_grid():
    # linspace(-1.5, 1.5, 61) computed as i/20 so every point is correctly
    # rounded and 0, +-0.5, +-1 and +-1.5 are exact.
    return torch.arange(-30, 31, dtype=DTYPE) / 20


SURROGATES = OrderedDict([
    ("atan_2", (SJATan, (2.0,), lambda x: 1.0 / (1 + (math.pi * x) ** 2))),
    ("sigmoid_4", (SJSigmoid, (4.0,),
                   lambda x: 4.0 * torch.sigmoid(4 * x) * (1 - torch.sigmoid(4 * x)))),
    ("fastsigmoid_25", (SnnFastSigmoid, (25.0,), lambda x: 1 / (25 * x.abs() + 1) ** 2)),
    ("fastsigmoid_100", (NorseSuperSpike, (100.0,), lambda x: 1 / (100 * x.abs() + 1) ** 2)),
    ("triangle_0.7_1", (Triangle, (0.7, 1.0),
                        lambda x: 0.7 * torch.clamp(1 - x.abs(), min=0))),
    ("triangle_3.6_3.6", (Triangle, (3.6, 3.6),
                          lambda x: 3.6 * torch.clamp(1 - 3.6 * x.abs(), min=0))),
    ("pwquad_1", (SJPiecewiseQuadratic, (1.0,),
                  lambda x: torch.where(x.abs() <= 1.0, 1.0 - x.abs(), torch.zeros_like(x)))),
    ("pwquad_2", (SJPiecewiseQuadratic, (2.0,),
                  lambda x: torch.where(x.abs() <= 0.5, 2.0 - 4.0 * x.abs(), torch.zeros_like(x)))),
])


def surrogates_case():
    grid = surrogate_grid()
    out = OrderedDict()
    out["x"] = grid.clone()
    for name, (fn, args, formula) in SURROGATES.items():
        x = grid.clone().requires_grad_(True)
        fn.apply(x, *args).sum().backward()
        d = x.grad.detach().clone()
        expected = formula(grid)
        assert torch.allclose(d, expected, rtol=1e-14, atol=1e-15), name
        out[name] = d
    # spot values at the exact points
    i0, im1, ip1 = 30, 10, 50
    assert grid[i0] == 0 and grid[im1] == -1 and grid[ip1] == 1
    assert out["atan_2"][i0] == 1.0 and out["sigmoid_4"][i0] == 1.0
    assert out["fastsigmoid_25"][i0] == 1.0 and out["fastsigmoid_100"][i0] == 1.0
    assert out["triangle_0.7_1"][i0] == 0.7 and out["triangle_0.7_1"][ip1] == 0.0
    assert out["pwquad_1"][i0] == 1.0 and out["pwquad_1"][im1] == 0.0
    assert out["pwquad_2"][i0] == 2.0 and out["pwquad_2"][20] == 0.0
    return out


# --------------------------------------------------------------------------
# EGRU event unit
# --------------------------------------------------------------------------
def egru_unit(seed=1010, gamma=0.7, support=1.0):
    """EGRU (Subramoney et al.; EvNN) event unit on a cell state c:
    o = [c - theta > 0] with triangle pseudo-derivative (gamma=0.7, s=1);
    y = o * c; h = c - o * theta; loss = (y * dy + h * dh).sum()."""
    torch.manual_seed(seed)
    c0 = torch.randn(4, 6, dtype=DTYPE)
    theta0 = torch.rand(6, dtype=DTYPE)
    dy = torch.randn(4, 6, dtype=DTYPE)
    dh = torch.randn(4, 6, dtype=DTYPE)
    c0[1, 2] = theta0[2]  # exactly on the threshold: no event (strict '>')
    c = c0.clone().requires_grad_(True)
    theta = theta0.clone().requires_grad_(True)
    o = Triangle.apply(c - theta, gamma, support)
    y = o * c
    h = c - o * theta
    (y * dy + h * dh).sum().backward()
    out = OrderedDict()
    out["c"] = c0
    out["theta"] = theta0
    out["dy"] = dy
    out["dh"] = dh
    out["o"] = o.detach().clone()
    out["y"] = y.detach().clone()
    out["h"] = h.detach().clone()
    out["grad_c"] = c.grad.detach().clone()
    out["grad_theta"] = theta.grad.detach().clone()
    rate = out["o"].mean().item()
    assert 0.1 < rate < 0.9, f"egru_unit: event rate {rate}"
    assert out["o"][1, 2] == 0 and out["y"][1, 2] == 0
    assert ((c0 - theta0).abs() < 1.0).any()  # some inside the triangle support
    return out


# --------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------
def format_tensor(case, name, t):
    t = t.detach().to(DTYPE).contiguous()
    shape = list(t.shape) if t.dim() > 0 else [1]
    head = "tensor %s/%s %d %s" % (case, name, len(shape), " ".join(str(d) for d in shape))
    vals = " ".join("%.17g" % v for v in t.reshape(-1).tolist())
    return head + "\n" + vals + "\n"


HEADER = """\
# Generated by tests/reference/neurons.py -- do not edit by hand.
# Regenerate from the repository root:  /usr/bin/python3 tests/reference/neurons.py
# (needs only torch; float64, CPU, 1 thread; torch {torch_version}).
# Format: lines starting with '#' are comments; each tensor is two lines:
#   tensor <case>/<name> <ndim> <d0> <d1> ...
#   <values, row-major, single-space separated, %.17g>
# Neuron cases 1-8 use x, g of shape [T=16, B=2, N=7]; loss = (spikes * g).sum();
# v = state after each step (after reset), h = pre-reset membrane seen by the
# spike test, grad_* = d loss / d parameter (shape [1]).  See the docstrings in
# tests/reference/neurons.py for the exact update rules.
"""


def build():
    torch.set_num_threads(1)
    lines = [HEADER.format(torch_version=torch.__version__)]
    summary = []
    for name in NEURON_CASES:
        out, theta = run_neuron_case(name)
        rate, n_exact, smallest = check_neuron_case(name, out, theta)
        summary.append((name, rate, n_exact, smallest))
        fn = NEURON_CASES[name][0]
        hits = " ".join("[%d,%d,%d]" % idx for idx in exact_hit_positions(out["h"], theta))
        lines.append("# case %s: firing rate %.4f; H exactly on theta at [t,b,n] %s; "
                     "smallest other |H - theta| = %.3g\n"
                     % (name, rate, hits or "(none)", smallest))
        for doc_line in (fn.__doc__ or "").strip().splitlines():
            lines.append("#   " + doc_line.strip() + "\n")
        for key, val in out.items():
            lines.append(format_tensor(name, key, val))
    lines.append("# case surrogates: derivative dS/dx of each spike function at x = i/20, "
                 "i = -30..30\n")
    for key, val in surrogates_case().items():
        lines.append(format_tensor("surrogates", key, val))
    lines.append("# case egru_unit: " + " ".join(egru_unit.__doc__.split()) + "\n")
    for key, val in egru_unit().items():
        lines.append(format_tensor("egru_unit", key, val))
    return "".join(lines), summary


def main(argv=None):
    here = os.path.dirname(os.path.abspath(__file__))
    default_out = os.path.join(here, "fixtures", "neurons.txt")
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=default_out, help="fixture path to write")
    ap.add_argument("--check", action="store_true",
                    help="compare with the existing fixture instead of writing it")
    args = ap.parse_args(argv)

    text, summary = build()
    for name, rate, n_exact, smallest in summary:
        print("%-26s rate %.3f  exact-on-theta %d  min other margin %.3g"
              % (name, rate, n_exact, smallest))
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
