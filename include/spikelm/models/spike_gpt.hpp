// spikelm: SpikeGPT, the spiking RWKV-4 language model (../shared/SPEC.md §3; the reference's training model,
// ridgerchu/SpikeGPT src/model.py).
//
//   x = LN0(H(E[token]))                          binary embedding: H(z) = [z >= 0], ATan surrogate (alpha 2)
//   per layer l:  x = x + LIF1(TimeMix(LN1(x)));  x = x + LIF2(ChannelMix(LN2(x)));  x = dropout(x)
//   logits = W_head LN_out(x)                     no bias
//
//   token shift xx_t = x_{t-1} (xx_0 = 0); mix(x, mu) = x mu + xx (1 - mu), one mu per use
//   TimeMix:    k = W_k mix(x, mu_k); v = W_v mix(x, mu_v); r = sigmoid(W_r mix(x, mu_r));
//               out = W_o (r * wkv(w, u, k, v)), w = -exp(time_decay), u = time_first
//   ChannelMix: out = sigmoid(W_r mix(x, mu_r)) * W_v relu(W_k mix(x, mu_k))^2      (W_k: d -> 4d)
//   LIF:        SpikingJelly's LIF (tau 2, theta 1, hard reset to 0), per channel across token positions,
//               from rest for every sequence (SpikeGptLIF)
//
// Two modes that give the same logits:
//   - parallel (SpikeGPT::logits / loss): a whole [B, T] batch on the tape, T <= context, for training;
//   - recurrent (SpikeGPT::step): one token per sequence with explicit per-layer state (att_xx, ffn_xx, the
//     WKV state a, b, p and the two LIF membranes: 7 d values per sequence), for generation.
// Layout: internally time-major. Tokens are given batch-major ([B, T] flattened, as the reference); logits
// come back with time-major rows (row t * B + b), as EgruLM.
// Parameter names are those of the reference's state dict (emb.weight, blocks.{l}.att.key.weight, ...);
// per-channel vectors are kept as [d] (the reference saves time_mix_* as [1, 1, d]:
// spike_gpt_internal_shape / spike_gpt_reference_shape map between the two).
#ifndef SPIKELM_MODELS_SPIKE_GPT_HPP
#define SPIKELM_MODELS_SPIKE_GPT_HPP

#include "../autograd/ops.hpp"
#include "../autograd/parameter.hpp"
#include "../autograd/tape.hpp"
#include "../config.hpp"
#include "../core/error.hpp"
#include "../core/linalg.hpp"
#include "../core/parallel.hpp"
#include "../core/rng.hpp"
#include "../core/tensor.hpp"
#include "../neuron/multistep.hpp"
#include "../neuron/neurons.hpp"
#include "../neuron/surrogate.hpp"
#include "../simd/elementwise.hpp"
#include "../simd/reduce.hpp"
#include "../simd/rowwise.hpp"

#include <Eigen/QR>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

SPIKELM_NAMESPACE_BEGIN

// ---- WKV --------------------------------------------------------------------------------------------------

/// The WKV recurrence's state per (sequence, channel): a and b are the running numerator and denominator
/// divided by exp(p). Each tensor is [B, C]; an empty state has a = b = 0 and p = -1e30.
template <class T>
struct WkvState {
  Tensor<T> a, b, p;
  [[nodiscard]] static WkvState initial(std::size_t batch, std::size_t channels) {
    WkvState s;
    s.a = Tensor<T>({batch, channels});
    s.b = Tensor<T>({batch, channels});
    s.p = Tensor<T>({batch, channels}, T(-1e30));
    return s;
  }
};

namespace detail {
/// Channels per parallel task of the WKV kernels.
inline constexpr std::size_t wkv_block = 64;

/// WKV forward, numerically stable (SPEC §3), over time-major k, v, y [steps, batch, C]; w (= -exp(decay))
/// and u are [C]. With `state_in`, (a, b, p) ([batch, C] each) is read first; when `sa` is non-null the
/// final state is written there. Vectorized over channels; parallel over (sequence, block of channels).
template <class Arch, class T>
void wkv_forward_kernel(std::size_t steps, std::size_t batch, std::size_t C, const T* w, const T* u,
                        const T* k, const T* v, T* y, T* sa, T* sb, T* sp, bool state_in) {
  const std::size_t blocks = (C + wkv_block - 1) / wkv_block, stride = batch * C;
  parallel_for(batch * blocks, steps * batch * C * 24, [&](std::size_t task) {
    const std::size_t b = task / blocks, c0 = (task % blocks) * wkv_block, c1 = std::min(C, c0 + wkv_block);
    for_lanes<Arch, T>(c0, c1, [&](auto tag, std::size_t c) {
      using V = decltype(tag);
      const V wv = load_lane<V>(w + c), uv = load_lane<V>(u + c);
      const std::size_t s0 = b * C + c;
      V a = state_in ? load_lane<V>(sa + s0) : V(T(0));
      V den = state_in ? load_lane<V>(sb + s0) : V(T(0));
      V p = state_in ? load_lane<V>(sp + s0) : V(T(-1e30));
      for (std::size_t t = 0; t < steps; ++t) {
        const std::size_t i = t * stride + s0;
        const V kt = load_lane<V>(k + i), vt = load_lane<V>(v + i);
        const V uk = uv + kt;
        V q = simd::detail::vmax(p, uk);
        V e1 = simd::detail::vexp(p - q), e2 = simd::detail::vexp(uk - q);
        store_lane(y + i, (e1 * a + e2 * vt) / (e1 * den + e2));
        const V pw = p + wv;
        q = simd::detail::vmax(pw, kt);
        e1 = simd::detail::vexp(pw - q);
        e2 = simd::detail::vexp(kt - q);
        a = e1 * a + e2 * vt;
        den = e1 * den + e2;
        p = q;
      }
      if (sa) {
        store_lane(sa + s0, a);
        store_lane(sb + s0, den);
        store_lane(sp + s0, p);
      }
    });
  });
}

/// WKV backward from the empty state. Inputs as the forward plus y and gy = dL/dy [steps, batch, C]; writes
/// gk, gv [steps, batch, C] and per-sequence partial gradients gw = dL/dw and gu = dL/du ([batch, C]).
///
/// With D_t = b_{t-1} + e^{u+k_t} (true scale) and gamma_t = gy_t / D_t:
///   dL/du   = sum_t gamma_t e^{u+k_t} (v_t - y_t)
///   dL/dw   = sum_t gamma_t (A'_{t-1} - y_t B'_{t-1}),  A'_t = e^w (A'_{t-1} + a_{t-1}),  B' alike with b
///   dL/dv_i = e^{k_i} (e^u gamma_i + G_i),  dL/dk_i = e^{k_i} (e^u gamma_i (v_i - y_i) + v_i G_i - H_i)
///   G_{i-1} = gamma_i + e^w G_i,  H_{i-1} = gamma_i y_i + e^w H_i,  G_{T-1} = H_{T-1} = 0
/// A' and B' are kept on the forward's scale exp(p); G and H on their own running scale exp(s) with
/// s_{i-1} = max(-q_i, w + s_i), so that every exponential taken is of a non-positive number.
template <class Arch, class T>
void wkv_backward_kernel(std::size_t steps, std::size_t batch, std::size_t C, const T* w, const T* u,
                         const T* k, const T* v, const T* y, const T* gy, T* gk, T* gv, T* gw, T* gu) {
  const std::size_t blocks = (C + wkv_block - 1) / wkv_block, stride = batch * C;
  parallel_for(batch * blocks, steps * batch * C * 64, [&](std::size_t task) {
    const std::size_t b = task / blocks, c0 = (task % blocks) * wkv_block, c1 = std::min(C, c0 + wkv_block);
    const std::size_t width = c1 - c0;
    // per step and channel: gamma (scaled), q (the scale of D_t) and e2 = exp(u + k_t - q_t)
    std::vector<T> scratch(3 * steps * width);
    T* sg = scratch.data();
    T* sq = sg + steps * width;
    T* se = sq + steps * width;
    for_lanes<Arch, T>(c0, c1, [&](auto tag, std::size_t c) {
      using V = decltype(tag);
      const V wv = load_lane<V>(w + c), uv = load_lane<V>(u + c);
      const std::size_t s0 = b * C + c, j = c - c0;
      V a(T(0)), den(T(0)), p(T(-1e30)), a1(T(0)), b1(T(0)), dw(T(0)), du(T(0));
      for (std::size_t t = 0; t < steps; ++t) {
        const std::size_t i = t * stride + s0;
        const V kt = load_lane<V>(k + i), vt = load_lane<V>(v + i), yt = load_lane<V>(y + i);
        const V uk = uv + kt;
        const V q = simd::detail::vmax(p, uk);
        const V e1 = simd::detail::vexp(p - q), e2 = simd::detail::vexp(uk - q);
        const V gam = load_lane<V>(gy + i) / (e1 * den + e2);
        du = du + gam * e2 * (vt - yt);
        dw = dw + gam * e1 * (a1 - yt * b1);
        store_lane(sg + t * width + j, gam);
        store_lane(sq + t * width + j, q);
        store_lane(se + t * width + j, e2);
        const V pw = p + wv;
        const V q2 = simd::detail::vmax(pw, kt);
        const V f1 = simd::detail::vexp(pw - q2), f2 = simd::detail::vexp(kt - q2);
        a1 = f1 * (a1 + a);
        b1 = f1 * (b1 + den);
        a = f1 * a + f2 * vt;
        den = f1 * den + f2;
        p = q2;
      }
      store_lane(gw + s0, dw);
      store_lane(gu + s0, du);
      V g(T(0)), h(T(0)), s(T(-1e30));
      for (std::size_t t = steps; t-- > 0;) {
        const std::size_t i = t * stride + s0;
        const V kt = load_lane<V>(k + i), vt = load_lane<V>(v + i), yt = load_lane<V>(y + i);
        const V gam = load_lane<V>(sg + t * width + j), q = load_lane<V>(sq + t * width + j);
        const V eg = load_lane<V>(se + t * width + j) * gam;
        const V ek = simd::detail::vexp(kt + s);
        store_lane(gv + i, eg + ek * g);
        store_lane(gk + i, eg * (vt - yt) + ek * (vt * g - h));
        const V nq = V(T(0)) - q;
        const V s2 = simd::detail::vmax(nq, wv + s);
        const V fn = simd::detail::vexp(nq - s2), fo = simd::detail::vexp(wv + s - s2);
        g = gam * fn + g * fo;
        h = gam * yt * fn + h * fo;
        s = s2;
      }
    });
  });
}

/// x mu + xx (1 - mu): RWKV's token mix (one formula for both modes, so that they round alike).
template <class T>
inline T token_mix_value(T x, T xx, T mu) noexcept {
  return x * mu + xx * (T(1) - mu);
}
} // namespace detail

/// WKV (RWKV-4's time mixing) on the tape over time-major k, v [T, B, C] from the empty state:
///   wkv_t = (sum_{i<t} e^{(t-1-i) w + k_i} v_i + e^{u + k_t} v_t) / (sum_{i<t} e^{(t-1-i) w + k_i} + e^{u +
///   k_t})
/// with w = -exp(time_decay) and u = time_first ([C] each), computed in the numerically stable form of
/// SPEC §3. Gradients reach time_decay, time_first, k and v (hand-written backward, see wkv_backward_kernel).
/// `final_state`, when given, receives the state after the last step (to continue with wkv_step).
template <class T>
Var<T> wkv(const Var<T>& time_decay, const Var<T>& time_first, const Var<T>& k, const Var<T>& v,
           WkvState<T>* final_state = nullptr) {
  Tape<T>& tape = k.tape();
  tape.check_var(v);
  tape.check_var(time_decay);
  tape.check_var(time_first);
  const auto kv = k.value(), vv = v.value(), dv = time_decay.value(), fv = time_first.value();
  check(kv.rank() == 3 && vv.shape() == kv.shape(), "wkv: k ", kv.shape(), " and v ", vv.shape(),
        " must both be [T, B, C] (time-major)");
  const std::size_t steps = kv.dim(0), batch = kv.dim(1), C = kv.dim(2);
  check(dv.shape() == Shape{C} && fv.shape() == Shape{C}, "wkv: time_decay ", dv.shape(), " and time_first ",
        fv.shape(), " must be [", C, "] for k ", kv.shape());
  auto w = std::make_shared<std::vector<T>>(C);
  for (std::size_t c = 0; c < C; ++c) (*w)[c] = -std::exp(dv.data()[c]);
  Tensor<T> y(kv.shape(), uninitialized);
  if (final_state) *final_state = WkvState<T>::initial(batch, C);
  detail::wkv_forward_kernel<simd::default_arch>(steps, batch, C, w->data(), fv.data(), kv.data(), vv.data(),
                                                 y.data(), final_state ? final_state->a.data() : nullptr,
                                                 final_state ? final_state->b.data() : nullptr,
                                                 final_state ? final_state->p.data() : nullptr, false);
  const std::size_t di = time_decay.index(), fi = time_first.index(), ki = k.index(), vi = v.index();
  return tape.push(std::move(y), {time_decay, time_first, k, v}, [=](Tape<T>& tp, std::size_t self) {
    const auto gy = tp.grad(self);
    const auto kv2 = tp.value(ki), vv2 = tp.value(vi), yv = tp.value(self);
    const std::size_t n = steps * batch * C;
    std::vector<T> gk(n), gv(n), gw(batch * C), gu(batch * C);
    detail::wkv_backward_kernel<simd::default_arch>(steps, batch, C, w->data(), tp.value(fi).data(),
                                                    kv2.data(), vv2.data(), yv.data(), gy.data(), gk.data(),
                                                    gv.data(), gw.data(), gu.data());
    tp.accumulate(ki, TensorView<const T>(gk.data(), kv2.shape()));
    tp.accumulate(vi, TensorView<const T>(gv.data(), vv2.shape()));
    std::vector<T> gd(C, T(0)), gf(C, T(0));
    for (std::size_t b = 0; b < batch; ++b)
      for (std::size_t c = 0; c < C; ++c) {
        gd[c] += gw[b * C + c];
        gf[c] += gu[b * C + c];
      }
    for (std::size_t c = 0; c < C; ++c) gd[c] *= (*w)[c]; // dw/d(decay) = -exp(decay) = w
    tp.accumulate(di, TensorView<const T>(gd.data(), {C}));
    tp.accumulate(fi, TensorView<const T>(gf.data(), {C}));
  });
}

/// One recurrent WKV step without a tape: k, v, y are [B, C]; `state` ([B, C] each) advances.
template <class T>
void wkv_step(TensorView<const T> time_decay, TensorView<const T> time_first, TensorView<const T> k,
              TensorView<const T> v, TensorView<T> y, WkvState<T>& state) {
  check(k.rank() == 2 && v.shape() == k.shape() && y.shape() == k.shape(), "wkv_step: k ", k.shape(), ", v ",
        v.shape(), " and y ", y.shape(), " must be the same [B, C]");
  const std::size_t batch = k.dim(0), C = k.dim(1);
  check(time_decay.shape() == Shape{C} && time_first.shape() == Shape{C}, "wkv_step: time_decay ",
        time_decay.shape(), " and time_first ", time_first.shape(), " must be [", C, "]");
  check(state.a.shape() == k.shape() && state.b.shape() == k.shape() && state.p.shape() == k.shape(),
        "wkv_step: state tensors must be ", k.shape());
  std::vector<T> w(C);
  for (std::size_t c = 0; c < C; ++c) w[c] = -std::exp(time_decay.data()[c]);
  detail::wkv_forward_kernel<simd::default_arch>(1, batch, C, w.data(), time_first.data(), k.data(), v.data(),
                                                 y.data(), state.a.data(), state.b.data(), state.p.data(),
                                                 true);
}

// ---- the other SpikeGPT ops ------------------------------------------------------------------------------

/// RWKV's token shift and mix over time-major x [T, B, C] (or [T, C]): out[t] = x[t] mu + x[t-1] (1 - mu),
/// x[-1] = 0; mu is [C].
template <class T>
Var<T> token_mix(const Var<T>& x, const Var<T>& mu) {
  Tape<T>& tape = x.tape();
  tape.check_var(mu);
  const auto xv = x.value(), mv = mu.value();
  check(xv.rank() == 2 || xv.rank() == 3, "token_mix: x must be [T, B, C] or [T, C], got ", xv.shape());
  const std::size_t C = xv.dim(-1), steps = xv.dim(0), row = steps ? xv.size() / steps : 0;
  check(mv.shape() == Shape{C}, "token_mix: mu ", mv.shape(), " must be [", C, "] for x ", xv.shape());
  Tensor<T> out(xv.shape(), uninitialized);
  const T* xp = xv.data();
  const T* m = mv.data();
  T* op = out.data();
  parallel_for(steps, steps * row * 4, [&](std::size_t t) {
    for (std::size_t i0 = 0; i0 < row; i0 += C)
      for (std::size_t c = 0; c < C; ++c) {
        const std::size_t i = t * row + i0 + c;
        op[i] = detail::token_mix_value(xp[i], t ? xp[i - row] : T(0), m[c]);
      }
  });
  const std::size_t xi = x.index(), mi = mu.index();
  return tape.push(std::move(out), {x, mu}, [=](Tape<T>& tp, std::size_t self) {
    const T* g = tp.grad(self).data();
    const T* xs = tp.value(xi).data();
    const T* ms = tp.value(mi).data();
    detail::write_grad(tp, xi, steps * row, [&](T* dx) {
      parallel_for(steps, steps * row * 4, [&](std::size_t t) {
        for (std::size_t i0 = 0; i0 < row; i0 += C)
          for (std::size_t c = 0; c < C; ++c) {
            const std::size_t i = t * row + i0 + c;
            dx[i] = g[i] * ms[c] + (t + 1 < steps ? g[i + row] * (T(1) - ms[c]) : T(0));
          }
      });
    });
    if (tp.requires_grad(mi)) {
      std::vector<T> dm(C, T(0));
      for (std::size_t t = 0; t < steps; ++t)
        for (std::size_t i0 = 0; i0 < row; i0 += C)
          for (std::size_t c = 0; c < C; ++c) {
            const std::size_t i = t * row + i0 + c;
            dm[c] += g[i] * (xs[i] - (t ? xs[i - row] : T(0)));
          }
      tp.accumulate(mi, TensorView<const T>(dm.data(), {C}));
    }
  });
}

/// SpikeGPT's L2Wrap: returns `loss` unchanged; backward passes the loss gradient through and adds
/// 1e-4 / rows * max to the largest logit of every row of `logits` ([rows, V], rows = B T), which pulls
/// the logits towards 0. As in the reference, the added gradient does not scale with the loss gradient.
template <class T>
Var<T> l2wrap(const Var<T>& loss, const Var<T>& logits) {
  Tape<T>& tape = loss.tape();
  tape.check_var(logits);
  check(loss.value().size() == 1, "l2wrap: the loss must be a scalar, got ", loss.value().shape());
  const auto lv = logits.value();
  check(lv.rank() >= 1 && lv.dim(-1) > 0, "l2wrap: logits need a class axis, got ", lv.shape());
  const std::size_t V = lv.dim(-1), rows = lv.size() / V;
  Tensor<T> out(loss.value().shape(), uninitialized);
  out.data()[0] = loss.value().data()[0];
  const std::size_t li = loss.index(), gi = logits.index();
  return tape.push(std::move(out), {loss, logits}, [=](Tape<T>& tp, std::size_t self) {
    tp.accumulate(li, tp.grad(self));
    if (!tp.requires_grad(gi) || rows == 0) return;
    const T factor = T(1e-4) / static_cast<T>(rows);
    const T* z = tp.value(gi).data();
    T* d = detail::zeroed_slot(tp, gi, rows * V);
    for (std::size_t r = 0; r < rows; ++r) {
      const T* zr = z + r * V;
      const std::size_t j = static_cast<std::size_t>(std::max_element(zr, zr + V) - zr);
      d[r * V + j] += zr[j] * factor;
    }
  });
}

namespace detail {
/// A LIF population over time-major x [T, ...] on the tape (as `neuron`), also returning the final
/// membranes in `final_state` and the number of spikes in `spikes` when given.
template <class Neuron, class T = typename Neuron::value_type>
Var<T> lif_with_state(const Neuron& model, const Var<T>& x, Tensor<T>* final_state, double* spikes) {
  const auto xv = x.value();
  auto trace = std::make_shared<NeuronTrace<T>>();
  Tensor<T> st = model.initial_state(xv.dim(0) ? xv.size() / xv.dim(0) : 0);
  Tensor<T> s = model.forward(xv, grad_enabled() ? trace.get() : nullptr, &st);
  if (final_state) *final_state = std::move(st);
  if (spikes) *spikes += static_cast<double>(simd::sum(s.data(), s.size()));
  const std::size_t xi = x.index();
  return x.tape().push(std::move(s), {x}, [model, trace, xi](Tape<T>& tp, std::size_t self) {
    tp.accumulate(xi, model.backward(tp.grad(self), *trace));
  });
}

/// True for the per-channel vectors the reference may store as [1, 1, d].
inline bool spike_gpt_channel_vector(const std::string& name) {
  for (const char* suffix : {".time_decay", ".time_first", ".time_mix_k", ".time_mix_v", ".time_mix_r"}) {
    const std::string s(suffix);
    if (name.size() >= s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0) return true;
  }
  return false;
}

/// torch.nn.init.orthogonal_ for a [rows, cols] matrix (QR of a Gaussian matrix with the signs of R's
/// diagonal folded in), times `gain`.
template <class T>
void orthogonal_init(TensorView<T> w, double gain, Rng& rng) {
  const std::size_t rows = w.dim(0), cols = w.size() / rows;
  if (gain == 0.0) {
    w.fill(T(0));
    return;
  }
  const bool flip = rows < cols;
  const std::size_t m = flip ? cols : rows, n = flip ? rows : cols;
  std::vector<double> g(m * n);
  rng.fill_normal(std::span<double>(g));
  Eigen::MatrixXd a(static_cast<Eigen::Index>(m), static_cast<Eigen::Index>(n));
  for (std::size_t i = 0; i < m; ++i)
    for (std::size_t j = 0; j < n; ++j)
      a(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(j)) = g[i * n + j];
  Eigen::HouseholderQR<Eigen::MatrixXd> qr(a);
  Eigen::MatrixXd q = qr.householderQ() * Eigen::MatrixXd::Identity(a.rows(), a.cols());
  for (Eigen::Index j = 0; j < q.cols(); ++j)
    if (qr.matrixQR()(j, j) < 0) q.col(j) *= -1.0;
  for (std::size_t i = 0; i < rows; ++i)
    for (std::size_t j = 0; j < cols; ++j) {
      const double qij = flip ? q(static_cast<Eigen::Index>(j), static_cast<Eigen::Index>(i))
                              : q(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(j));
      w.data()[i * cols + j] = static_cast<T>(gain * qij);
    }
}
} // namespace detail

// ---- configuration and names ------------------------------------------------------------------------------

struct SpikeGptConfig {
  std::size_t vocab = 0;
  std::size_t layers = 6;
  std::size_t d_model = 256;
  std::size_t context = 1024; ///< longest sequence of the parallel mode (the reference's ctx_len)
  std::size_t ffn = 0;        ///< ChannelMix hidden width; 0 means 4 d_model (the reference)
  double dropout = 0.03;      ///< on the residual stream after every block, in training only

  [[nodiscard]] std::size_t ffn_hidden() const noexcept { return ffn ? ffn : 4 * d_model; }
  void validate() const {
    check(vocab > 0 && layers > 0 && d_model > 0 && context > 0,
          "SpikeGptConfig: vocab, layers, d_model and ", "context must be positive (got ", vocab, ", ",
          layers, ", ", d_model, ", ", context, ")");
    check(dropout >= 0.0 && dropout < 1.0, "SpikeGptConfig: dropout must be in [0, 1), got ", dropout);
  }
  friend bool operator==(const SpikeGptConfig&, const SpikeGptConfig&) = default;
};

/// How SpikeGPT::reset_parameters initialises the matrices (the per-channel vectors always follow SPEC §3).
enum class SpikeGptInit {
  /// PyTorch's defaults, which the reference's train.py gets (it never sets RWKV_LOAD_MODEL, so RWKV_Init
  /// does not run): linear weights U(-1/sqrt(in), 1/sqrt(in)), embedding N(0, 1), LayerNorm (1, 0).
  Torch,
  /// The reference's RWKV_Init: orthogonal matrices (embedding gain 1e-4 sqrt(max(V, d)); ffn.key gain
  /// sqrt(4d / d); head gain 0.5 sqrt(V / d) when V > d, else 0.5; att.value gain 1) and zeros for
  /// att.key, att.receptance, att.output, ffn.receptance and ffn.value.
  Rwkv,
};

/// Every parameter of a SpikeGPT of configuration `cfg`: reference state-dict names in the reference's
/// registration order, with spikelm's shapes (per-channel vectors as [d]).
inline std::vector<std::pair<std::string, Shape>> spike_gpt_parameter_shapes(const SpikeGptConfig& cfg) {
  const std::size_t d = cfg.d_model, h = cfg.ffn_hidden();
  std::vector<std::pair<std::string, Shape>> out;
  out.emplace_back("emb.weight", Shape{cfg.vocab, d});
  for (std::size_t l = 0; l < cfg.layers; ++l) {
    const std::string pre = "blocks." + std::to_string(l) + ".";
    for (const char* n : {"ln1.weight", "ln1.bias", "ln2.weight", "ln2.bias"})
      out.emplace_back(pre + n, Shape{d});
    if (l == 0)
      for (const char* n : {"ln0.weight", "ln0.bias"}) out.emplace_back(pre + n, Shape{d});
    for (const char* n :
         {"att.time_decay", "att.time_first", "att.time_mix_k", "att.time_mix_v", "att.time_mix_r"})
      out.emplace_back(pre + n, Shape{d});
    for (const char* n : {"att.key.weight", "att.value.weight", "att.receptance.weight", "att.output.weight"})
      out.emplace_back(pre + n, Shape{d, d});
    out.emplace_back(pre + "ffn.time_mix_k", Shape{d});
    out.emplace_back(pre + "ffn.time_mix_r", Shape{d});
    out.emplace_back(pre + "ffn.key.weight", Shape{h, d});
    out.emplace_back(pre + "ffn.receptance.weight", Shape{d, d});
    out.emplace_back(pre + "ffn.value.weight", Shape{d, h});
  }
  out.emplace_back("ln_out.weight", Shape{d});
  out.emplace_back("ln_out.bias", Shape{d});
  out.emplace_back("head.weight", Shape{cfg.vocab, d});
  return out;
}

/// The shape spikelm keeps for parameter `name` stored with shape `stored`: per-channel vectors
/// (time_decay, time_first, time_mix_*) saved as [1, 1, d] or [1, d] become [d]; everything else is kept.
inline Shape spike_gpt_internal_shape(const std::string& name, const Shape& stored) {
  if (!detail::spike_gpt_channel_vector(name) || stored.rank() <= 1) return stored;
  for (std::size_t i = 0; i + 1 < stored.rank(); ++i)
    if (stored.begin()[i] != 1) return stored;
  return Shape{stored.dim(-1)};
}

/// The shape of parameter `name` in the reference's state dict: [1, 1, d] for time_mix_*, else `internal`.
inline Shape spike_gpt_reference_shape(const std::string& name, const Shape& internal) {
  const bool mix = name.find(".time_mix_") != std::string::npos;
  if (mix && internal.rank() == 1) return Shape{1, 1, internal.dim(0)};
  return internal;
}

/// Name -> shape of every parameter of a set (the input of infer_spike_gpt_config).
template <class T>
std::map<std::string, Shape> parameter_shape_map(const ParameterSet<T>& ps) {
  std::map<std::string, Shape> m;
  ps.for_each([&](const Parameter<T>& p) { m.emplace(p.name, p.shape()); });
  return m;
}

/// The configuration of a SpikeGPT weights set from its tensor names and shapes (either per-channel
/// layout is accepted). The context is not stored in the weights and is taken from `context`; dropout
/// keeps its default. Throws spikelm::Error when the set is not a SpikeGPT of the reference's layout
/// (missing, misshapen or unexpected tensors, the RWKV-ffnPre variant, head_q/head_k), naming the tensor.
/// Note: a non-spiking RWKV-4 checkpoint has the same names and shapes and cannot be told apart.
inline SpikeGptConfig infer_spike_gpt_config(const std::map<std::string, Shape>& shapes,
                                             std::size_t context = 1024) {
  const char* fn = "infer_spike_gpt_config: ";
  auto emb = shapes.find("emb.weight");
  if (emb == shapes.end()) {
    std::string some;
    std::size_t n = 0;
    for (auto it = shapes.begin(); it != shapes.end() && n < 4; ++it, ++n)
      some += (n ? ", '" : "'") + it->first + "'";
    check(false, fn, "not a SpikeGPT weights set: there is no 'emb.weight' (", shapes.size(), " tensors",
          shapes.empty() ? std::string() : ", e.g. " + some, ")");
  }
  check(emb->second.rank() == 2 && emb->second.dim(0) > 0 && emb->second.dim(1) > 0, fn,
        "'emb.weight' must be [vocab, d_model], got ", emb->second);
  check(shapes.count("blocks.0.ffnPre.key.weight") == 0, fn,
        "the 'RWKV-ffnPre' variant (blocks.0.ffnPre.*) is not supported; SpikeGPT's training model uses "
        "TimeMix in every block");
  SpikeGptConfig cfg;
  cfg.vocab = emb->second.dim(0);
  cfg.d_model = emb->second.dim(1);
  cfg.context = context;
  cfg.layers = 0;
  while (shapes.count("blocks." + std::to_string(cfg.layers) + ".ln1.weight")) ++cfg.layers;
  check(cfg.layers > 0, fn, "not a SpikeGPT weights set: there is no 'blocks.0.ln1.weight'");
  auto fk = shapes.find("blocks.0.ffn.key.weight");
  check(fk != shapes.end(), fn, "not a SpikeGPT weights set: there is no 'blocks.0.ffn.key.weight'");
  check(fk->second.rank() == 2 && fk->second.dim(0) > 0, fn, "'blocks.0.ffn.key.weight' must be [hidden, ",
        cfg.d_model, "], got ", fk->second);
  cfg.ffn = fk->second.dim(0) == 4 * cfg.d_model ? 0 : fk->second.dim(0);
  const auto expected = spike_gpt_parameter_shapes(cfg);
  for (const auto& e : expected) {
    auto it = shapes.find(e.first);
    check(it != shapes.end(), fn, "not a SpikeGPT weights set of this layout: tensor '", e.first,
          "' is missing (", cfg.layers, " layers, d_model ", cfg.d_model, ", vocabulary ", cfg.vocab, ")");
    check(spike_gpt_internal_shape(e.first, it->second) == e.second, fn, "tensor '", e.first, "' has shape ",
          it->second, ", expected ", spike_gpt_reference_shape(e.first, e.second), " for d_model ",
          cfg.d_model, ", vocabulary ", cfg.vocab, " and ChannelMix width ", cfg.ffn_hidden());
  }
  if (shapes.size() != expected.size()) {
    std::map<std::string, Shape> known(expected.begin(), expected.end());
    for (const auto& s : shapes)
      check(known.count(s.first) != 0, fn, "unexpected tensor '", s.first, "' ", s.second,
            ": not part of SpikeGPT's layout (another architecture or a variant such as head_q/head_k)");
  }
  return cfg;
}

// ---- state and model -------------------------------------------------------------------------------------

/// Recurrent state of one layer for B sequences.
template <class T>
struct SpikeGptLayerState {
  Tensor<T> att_xx; ///< [B, d]: the previous token's LN1 output (TimeMix's token shift)
  Tensor<T> ffn_xx; ///< [B, d]: the previous token's LN2 output (ChannelMix's token shift)
  WkvState<T> wkv;  ///< a, b, p [B, d]
  Tensor<T> lif1;   ///< LIF1 membranes [1, B d] (the neuron state layout)
  Tensor<T> lif2;   ///< LIF2 membranes [1, B d]
};

/// Recurrent state of a SpikeGPT for B sequences: 7 d values per layer and sequence.
template <class T>
struct SpikeGptState {
  std::size_t batch = 0;
  std::vector<SpikeGptLayerState<T>> layers;
  [[nodiscard]] bool empty() const noexcept { return layers.empty(); }
};

template <class T>
class SpikeGPT {
 public:
  using Neuron = SpikeGptLIF<T>;
  /// The binary embedding's spike: [z >= 0] with the ATan surrogate (alpha 2), SpikingJelly's defaults.
  using EmbeddingSurrogate = surrogate::ATan<ratio<2>>;

  explicit SpikeGPT(SpikeGptConfig cfg) : cfg_(cfg), lif_(T(2), T(1)) {
    cfg_.validate();
    for (const auto& [name, shape] : spike_gpt_parameter_shapes(cfg_)) params_.add(name, Tensor<T>(shape));
    emb_ = &params_["emb.weight"];
    blocks_.resize(cfg_.layers);
    for (std::size_t l = 0; l < cfg_.layers; ++l) {
      Block& b = blocks_[l];
      const std::string pre = "blocks." + std::to_string(l) + ".";
      auto p = [&](const char* n) { return &params_[pre + n]; };
      b.ln1w = p("ln1.weight"), b.ln1b = p("ln1.bias"), b.ln2w = p("ln2.weight"), b.ln2b = p("ln2.bias");
      if (l == 0) b.ln0w = p("ln0.weight"), b.ln0b = p("ln0.bias");
      b.decay = p("att.time_decay"), b.first = p("att.time_first");
      b.att_mk = p("att.time_mix_k"), b.att_mv = p("att.time_mix_v"), b.att_mr = p("att.time_mix_r");
      b.att_k = p("att.key.weight"), b.att_v = p("att.value.weight"), b.att_r = p("att.receptance.weight");
      b.att_o = p("att.output.weight");
      b.ffn_mk = p("ffn.time_mix_k"), b.ffn_mr = p("ffn.time_mix_r");
      b.ffn_k = p("ffn.key.weight"), b.ffn_r = p("ffn.receptance.weight"), b.ffn_v = p("ffn.value.weight");
    }
    lnow_ = &params_["ln_out.weight"];
    lnob_ = &params_["ln_out.bias"];
    head_ = &params_["head.weight"];
    rates_.assign(cfg_.layers, {0.0, 0.0});
    for (Block& b : blocks_)
      for (Parameter<T>* q : {b.ln1w, b.ln2w}) q->value.fill(T(1));
    blocks_[0].ln0w->value.fill(T(1));
    lnow_->value.fill(T(1));
  }
  SpikeGPT(const SpikeGPT&) = delete;
  SpikeGPT& operator=(const SpikeGPT&) = delete;

  /// The reference initialisation: time_decay, time_first and the mix coefficients as SPEC §3, LayerNorms
  /// (1, 0), matrices per `init` (see SpikeGptInit). With one layer, l / (L - 1) is taken as 0.
  void reset_parameters(Rng& rng, SpikeGptInit init = SpikeGptInit::Torch) {
    const std::size_t d = cfg_.d_model, L = cfg_.layers, V = cfg_.vocab, h = cfg_.ffn_hidden();
    for (std::size_t l = 0; l < L; ++l) {
      Block& b = blocks_[l];
      const double r01 = L > 1 ? static_cast<double>(l) / static_cast<double>(L - 1) : 0.0;
      const double r10 = 1.0 - static_cast<double>(l) / static_cast<double>(L);
      for (std::size_t i = 0; i < d; ++i) {
        const double di = static_cast<double>(i);
        const double pos = d > 1 ? di / static_cast<double>(d - 1) : 0.0;
        b.decay->value.data()[i] = static_cast<T>(-5.0 + 8.0 * std::pow(pos, 0.7 + 1.3 * r01));
        b.first->value.data()[i] =
            static_cast<T>(std::log(0.3) + 0.5 * static_cast<double>(static_cast<long>((i + 1) % 3) - 1));
        const double x = di / static_cast<double>(d);
        const double mk = std::pow(x, r10);
        b.att_mk->value.data()[i] = static_cast<T>(mk);
        b.att_mv->value.data()[i] = static_cast<T>(mk + 0.3 * r01);
        b.att_mr->value.data()[i] = static_cast<T>(std::pow(x, 0.5 * r10));
        b.ffn_mk->value.data()[i] = static_cast<T>(mk);
        b.ffn_mr->value.data()[i] = static_cast<T>(mk);
      }
      for (Parameter<T>* q : {b.ln1w, b.ln2w}) q->value.fill(T(1));
      for (Parameter<T>* q : {b.ln1b, b.ln2b}) q->value.fill(T(0));
      if (b.ln0w) {
        b.ln0w->value.fill(T(1));
        b.ln0b->value.fill(T(0));
      }
    }
    lnow_->value.fill(T(1));
    lnob_->value.fill(T(0));
    if (init == SpikeGptInit::Torch) {
      rng.fill_normal(emb_->value.span(), T(0), T(1));
      auto uniform = [&](Parameter<T>* p) {
        const T bound = T(1) / std::sqrt(static_cast<T>(p->value.dim(1)));
        rng.fill_uniform(p->value.span(), -bound, bound);
      };
      for (Block& b : blocks_)
        for (Parameter<T>* p : {b.att_k, b.att_v, b.att_r, b.att_o, b.ffn_k, b.ffn_r, b.ffn_v}) uniform(p);
      uniform(head_);
    } else {
      detail::orthogonal_init(emb_->value.view(), 1e-4 * std::sqrt(static_cast<double>(std::max(V, d))), rng);
      for (Block& b : blocks_) {
        for (Parameter<T>* p : {b.att_k, b.att_r, b.att_o, b.ffn_r, b.ffn_v}) p->value.fill(T(0));
        detail::orthogonal_init(b.att_v->value.view(), 1.0, rng);
        detail::orthogonal_init(b.ffn_k->value.view(),
                                h > d ? std::sqrt(static_cast<double>(h) / static_cast<double>(d)) : 1.0,
                                rng);
      }
      const double head_gain = V > d ? std::sqrt(static_cast<double>(V) / static_cast<double>(d)) : 1.0;
      detail::orthogonal_init(head_->value.view(), 0.5 * head_gain, rng);
    }
  }

  [[nodiscard]] const SpikeGptConfig& config() const noexcept { return cfg_; }
  [[nodiscard]] ParameterSet<T>& parameters() noexcept { return params_; }
  [[nodiscard]] const ParameterSet<T>& parameters() const noexcept { return params_; }
  [[nodiscard]] const Neuron& neuron_model() const noexcept { return lif_; }
  /// Firing rates {LIF1, LIF2} per layer of the last logits() or step() call.
  [[nodiscard]] const std::vector<std::array<double, 2>>& firing_rates() const noexcept { return rates_; }
  /// Fraction of the binary embedding's bits H(E[token]) that are 1, over the tokens of the last logits() or
  /// step() call.
  [[nodiscard]] double embedding_rate() const noexcept { return embedding_rate_; }

  /// Copies `value` into parameter `name`; per-channel vectors may come as [1, 1, d] (the reference's
  /// time_mix_* layout).
  void set_parameter(const std::string& name, TensorView<const T> value) {
    check(params_.contains(name), "SpikeGPT::set_parameter: no parameter named '", name, "'");
    Parameter<T>& p = params_[name];
    check(spike_gpt_internal_shape(name, value.shape()) == p.shape(), "SpikeGPT::set_parameter: '", name,
          "' has shape ", value.shape(), ", the model expects ", spike_gpt_reference_shape(name, p.shape()));
    std::copy(value.begin(), value.end(), p.value.data());
  }

  /// Parallel mode: logits [T B, V] (time-major rows) of the next token for tokens [B, T] given batch-major,
  /// from the empty state, on the tape. Needs 1 <= T <= context. `training` turns dropout on (needs `rng`
  /// when dropout > 0). `final_state`, when given, receives the recurrent state after the last token, so that
  /// step() can continue the sequences.
  Var<T> logits(Tape<T>& tape, std::span<const std::int64_t> tokens, std::size_t batch, bool training,
                Rng* rng = nullptr, SpikeGptState<T>* final_state = nullptr) {
    check(batch > 0 && tokens.size() % batch == 0, "SpikeGPT: ", tokens.size(), " tokens do not split into ",
          batch, " sequences");
    const std::size_t steps = tokens.size() / batch, d = cfg_.d_model;
    check(steps > 0, "SpikeGPT: no tokens");
    check(steps <= cfg_.context, "SpikeGPT: a sequence of ", steps, " tokens is longer than the context (",
          cfg_.context, ") of the parallel mode; split it, or run it token by token with step()");
    check_tokens(tokens, "SpikeGPT");
    const bool dropping = training && cfg_.dropout > 0.0;
    check(!dropping || rng != nullptr, "SpikeGPT: training with dropout needs an Rng");
    std::vector<std::int64_t> ids(tokens.size());
    for (std::size_t b = 0; b < batch; ++b)
      for (std::size_t t = 0; t < steps; ++t) ids[t * batch + b] = tokens[b * steps + t];
    if (final_state) {
      final_state->batch = batch;
      final_state->layers.assign(cfg_.layers, SpikeGptLayerState<T>{});
    }
    rates_.assign(cfg_.layers, {0.0, 0.0});
    const double neurons = static_cast<double>(steps * batch * d);

    Var<T> x = embedding(tape.param(*emb_), std::span<const std::int64_t>(ids));
    x = spike<EmbeddingSurrogate, fire::GreaterEqual>(x, T(0));
    embedding_rate_ = static_cast<double>(simd::sum(x.value().data(), x.value().size())) / neurons;
    x = reshape(layer_norm(x, tape.param(*blocks_[0].ln0w), tape.param(*blocks_[0].ln0b)), {steps, batch, d});
    for (std::size_t l = 0; l < cfg_.layers; ++l) {
      Block& bp = blocks_[l];
      SpikeGptLayerState<T>* ls = final_state ? &final_state->layers[l] : nullptr;
      // TimeMix
      Var<T> xa = layer_norm(x, tape.param(*bp.ln1w), tape.param(*bp.ln1b));
      if (ls) ls->att_xx = last_step(xa, batch);
      Var<T> k = linear(token_mix(xa, tape.param(*bp.att_mk)), tape.param(*bp.att_k));
      Var<T> v = linear(token_mix(xa, tape.param(*bp.att_mv)), tape.param(*bp.att_v));
      Var<T> r = sigmoid(linear(token_mix(xa, tape.param(*bp.att_mr)), tape.param(*bp.att_r)));
      Var<T> y = wkv(tape.param(*bp.decay), tape.param(*bp.first), k, v, ls ? &ls->wkv : nullptr);
      Var<T> att = linear(mul(r, y), tape.param(*bp.att_o));
      x = add(x, detail::lif_with_state(lif_, att, ls ? &ls->lif1 : nullptr, &rates_[l][0]));
      // ChannelMix
      xa = layer_norm(x, tape.param(*bp.ln2w), tape.param(*bp.ln2b));
      if (ls) ls->ffn_xx = last_step(xa, batch);
      Var<T> kk = relu_sq(linear(token_mix(xa, tape.param(*bp.ffn_mk)), tape.param(*bp.ffn_k)));
      Var<T> kv = linear(kk, tape.param(*bp.ffn_v));
      Var<T> rr = sigmoid(linear(token_mix(xa, tape.param(*bp.ffn_mr)), tape.param(*bp.ffn_r)));
      x = add(x, detail::lif_with_state(lif_, mul(rr, kv), ls ? &ls->lif2 : nullptr, &rates_[l][1]));
      if (dropping) x = dropout(x, cfg_.dropout, *rng, true);
      rates_[l][0] /= neurons;
      rates_[l][1] /= neurons;
    }
    x = layer_norm(x, tape.param(*lnow_), tape.param(*lnob_));
    return linear(reshape(x, {steps * batch, d}), tape.param(*head_));
  }

  /// Training loss: mean cross-entropy of `targets` (batch-major [B, T], like tokens; ignore index -100)
  /// over every position, wrapped in L2Wrap.
  Var<T> loss(Tape<T>& tape, std::span<const std::int64_t> tokens, std::span<const std::int64_t> targets,
              std::size_t batch, bool training, Rng* rng = nullptr) {
    check(targets.size() == tokens.size(), "SpikeGPT::loss: ", targets.size(), " targets for ", tokens.size(),
          " tokens");
    check(batch > 0 && tokens.size() % batch == 0, "SpikeGPT: ", tokens.size(), " tokens do not split into ",
          batch, " sequences");
    const std::size_t steps = tokens.size() / batch;
    std::vector<std::int64_t> tm(targets.size());
    for (std::size_t b = 0; b < batch; ++b)
      for (std::size_t t = 0; t < steps; ++t) tm[t * batch + b] = targets[b * steps + t];
    const Var<T> z = logits(tape, tokens, batch, training, rng);
    return l2wrap(cross_entropy(z, std::span<const std::int64_t>(tm)), z);
  }

  /// The empty recurrent state for `batch` sequences.
  [[nodiscard]] SpikeGptState<T> initial_state(std::size_t batch) const {
    check(batch > 0, "SpikeGPT::initial_state: batch must be positive");
    const std::size_t d = cfg_.d_model;
    SpikeGptState<T> s;
    s.batch = batch;
    s.layers.resize(cfg_.layers);
    for (auto& ls : s.layers) {
      ls.att_xx = Tensor<T>({batch, d});
      ls.ffn_xx = Tensor<T>({batch, d});
      ls.wkv = WkvState<T>::initial(batch, d);
      ls.lif1 = lif_.initial_state(batch * d);
      ls.lif2 = lif_.initial_state(batch * d);
    }
    return s;
  }

  /// Recurrent mode: feeds one token per sequence (tokens [B]) and writes the next-token logits [B, V] into
  /// `out`; `state` advances (an empty state starts B fresh sequences). No tape, no dropout, no length limit.
  void step(std::span<const std::int64_t> tokens, SpikeGptState<T>& state, TensorView<T> out) {
    const std::size_t B = tokens.size(), d = cfg_.d_model, h = cfg_.ffn_hidden(), V = cfg_.vocab;
    check(B > 0, "SpikeGPT::step: no tokens");
    check_tokens(tokens, "SpikeGPT::step");
    check(out.shape() == Shape{B, V}, "SpikeGPT::step: logits buffer ", out.shape(), " is not [", B, ", ", V,
          "]");
    if (state.empty()) state = initial_state(B);
    check(state.batch == B && state.layers.size() == cfg_.layers, "SpikeGPT::step: the state holds ",
          state.batch, " sequences and ", state.layers.size(), " layers; got ", B, " tokens for a model of ",
          cfg_.layers, " layers");
    for (const auto& ls : state.layers)
      check(ls.att_xx.shape() == Shape{B, d} && ls.ffn_xx.shape() == Shape{B, d} &&
                ls.wkv.p.shape() == Shape{B, d} && ls.lif1.shape() == Shape{1, B * d} &&
                ls.lif2.shape() == Shape{1, B * d},
            "SpikeGPT::step: the state's tensors do not match [", B, ", ", d, "]");
    const std::size_t n = B * d;
    Tensor<T> x({B, d}, uninitialized), xa({B, d}, uninitialized), xm({B, d}, uninitialized),
        k({B, d}, uninitialized), v({B, d}, uninitialized), r({B, d}, uninitialized),
        y({B, d}, uninitialized), o({B, d}, uninitialized), s({B, d}, uninitialized),
        hk({B, h}, uninitialized);
    const T* emb = emb_->value.data();
    for (std::size_t b = 0; b < B; ++b)
      for (std::size_t c = 0; c < d; ++c)
        x.data()[b * d + c] =
            fire::GreaterEqual::test(emb[static_cast<std::size_t>(tokens[b]) * d + c], T(0)) ? T(1) : T(0);
    embedding_rate_ = static_cast<double>(simd::sum(x.data(), n)) / static_cast<double>(n);
    norm(x, *blocks_[0].ln0w, *blocks_[0].ln0b, x);
    auto mix = [&](const Tensor<T>& cur, const Tensor<T>& prev, const Parameter<T>& mu) {
      const T* m = mu.value.data();
      for (std::size_t i0 = 0; i0 < n; i0 += d)
        for (std::size_t c = 0; c < d; ++c)
          xm.data()[i0 + c] = detail::token_mix_value(cur.data()[i0 + c], prev.data()[i0 + c], m[c]);
    };
    auto proj = [](const Tensor<T>& in, const Parameter<T>& w, Tensor<T>& dst) {
      spikelm::matmul(in, w.value, dst, Trans::No, Trans::Yes);
    };
    for (std::size_t l = 0; l < cfg_.layers; ++l) {
      Block& bp = blocks_[l];
      SpikeGptLayerState<T>& ls = state.layers[l];
      norm(x, *bp.ln1w, *bp.ln1b, xa);
      mix(xa, ls.att_xx, *bp.att_mk);
      proj(xm, *bp.att_k, k);
      mix(xa, ls.att_xx, *bp.att_mv);
      proj(xm, *bp.att_v, v);
      mix(xa, ls.att_xx, *bp.att_mr);
      proj(xm, *bp.att_r, r);
      simd::sigmoid(r.data(), r.data(), n);
      ls.att_xx.copy_from(xa);
      wkv_step(bp.decay->value.cview(), bp.first->value.cview(), k.cview(), v.cview(), y.view(), ls.wkv);
      simd::mul(r.data(), y.data(), y.data(), n);
      proj(y, *bp.att_o, o);
      lif_.step(o.data(), ls.lif1, s.data());
      rates_[l][0] = static_cast<double>(simd::sum(s.data(), n)) / static_cast<double>(n);
      simd::add(x.data(), s.data(), x.data(), n);

      norm(x, *bp.ln2w, *bp.ln2b, xa);
      mix(xa, ls.ffn_xx, *bp.ffn_mk);
      proj(xm, *bp.ffn_k, hk);
      simd::relu_sq(hk.data(), hk.data(), B * h);
      proj(hk, *bp.ffn_v, o);
      mix(xa, ls.ffn_xx, *bp.ffn_mr);
      proj(xm, *bp.ffn_r, r);
      simd::sigmoid(r.data(), r.data(), n);
      ls.ffn_xx.copy_from(xa);
      simd::mul(r.data(), o.data(), o.data(), n);
      lif_.step(o.data(), ls.lif2, s.data());
      rates_[l][1] = static_cast<double>(simd::sum(s.data(), n)) / static_cast<double>(n);
      simd::add(x.data(), s.data(), x.data(), n);
    }
    norm(x, *lnow_, *lnob_, xa);
    spikelm::matmul(xa, head_->value, out, Trans::No, Trans::Yes);
  }

  /// step() returning a fresh [B, V] tensor.
  [[nodiscard]] Tensor<T> step(std::span<const std::int64_t> tokens, SpikeGptState<T>& state) {
    Tensor<T> out({tokens.size(), cfg_.vocab}, uninitialized);
    step(tokens, state, out.view());
    return out;
  }

 private:
  struct Block {
    Parameter<T>* ln1w = nullptr;
    Parameter<T>* ln1b = nullptr;
    Parameter<T>* ln2w = nullptr;
    Parameter<T>* ln2b = nullptr;
    Parameter<T>* ln0w = nullptr;
    Parameter<T>* ln0b = nullptr;
    Parameter<T>* decay = nullptr;
    Parameter<T>* first = nullptr;
    Parameter<T>* att_mk = nullptr;
    Parameter<T>* att_mv = nullptr;
    Parameter<T>* att_mr = nullptr;
    Parameter<T>* att_k = nullptr;
    Parameter<T>* att_v = nullptr;
    Parameter<T>* att_r = nullptr;
    Parameter<T>* att_o = nullptr;
    Parameter<T>* ffn_mk = nullptr;
    Parameter<T>* ffn_mr = nullptr;
    Parameter<T>* ffn_k = nullptr;
    Parameter<T>* ffn_r = nullptr;
    Parameter<T>* ffn_v = nullptr;
  };

  void check_tokens(std::span<const std::int64_t> tokens, const char* who) const {
    for (std::size_t i = 0; i < tokens.size(); ++i)
      check(tokens[i] >= 0 && static_cast<std::size_t>(tokens[i]) < cfg_.vocab, who, ": token id ", tokens[i],
            " at position ", i, " is outside the vocabulary [0, ", cfg_.vocab, ")");
  }
  /// Rows of the last time step of a time-major [T, B, d] value, as [B, d].
  static Tensor<T> last_step(const Var<T>& x, std::size_t batch) {
    const auto xv = x.value();
    const std::size_t d = xv.dim(-1), steps = xv.dim(0);
    Tensor<T> out({batch, d}, uninitialized);
    std::copy(xv.data() + (steps - 1) * batch * d, xv.data() + steps * batch * d, out.data());
    return out;
  }
  static void norm(const Tensor<T>& in, const Parameter<T>& g, const Parameter<T>& b, Tensor<T>& out) {
    simd::layernorm_rows(in.data(), g.value.data(), b.value.data(), out.data(), static_cast<T*>(nullptr),
                         static_cast<T*>(nullptr), in.dim(0), in.dim(1), T(1e-5));
  }

  SpikeGptConfig cfg_;
  Neuron lif_;
  ParameterSet<T> params_;
  Parameter<T>* emb_ = nullptr;
  std::vector<Block> blocks_;
  Parameter<T>* lnow_ = nullptr;
  Parameter<T>* lnob_ = nullptr;
  Parameter<T>* head_ = nullptr;
  std::vector<std::array<double, 2>> rates_;
  double embedding_rate_ = 0.0;
};

SPIKELM_NAMESPACE_END

#endif // SPIKELM_MODELS_SPIKE_GPT_HPP
