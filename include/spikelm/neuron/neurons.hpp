// spikelm: neuron models. Equations: ../shared/SPEC.md §1 (docs/neurons.md tabulates which published
// library each one reproduces).
#ifndef SPIKELM_NEURON_NEURONS_HPP
#define SPIKELM_NEURON_NEURONS_HPP

#include "../config.hpp"
#include "../core/error.hpp"
#include "multistep.hpp"
#include "surrogate.hpp"

#include <array>
#include <cmath>
#include <type_traits>

SPIKELM_NAMESPACE_BEGIN

namespace detail {
template <class R>
struct is_hard_reset : std::false_type {};
template <class V>
struct is_hard_reset<reset::Hard<V>> : std::true_type {};

/// The reset potential of a hard reset (0 for the others).
template <class R>
constexpr double reset_potential() noexcept {
  if constexpr (is_hard_reset<R>::value)
    return R::v_reset;
  else
    return 0.0;
}

template <class R>
inline constexpr bool reset_is_valid =
    std::is_same_v<R, reset::Subtract> || std::is_same_v<R, reset::None> || is_hard_reset<R>::value;

/// Membrane after the reset, from h (before reset) and the spike s (0/1).
template <class Reset, class V>
V apply_reset(const V& h, const V& s, const V& theta) noexcept {
  if constexpr (std::is_same_v<Reset, reset::Subtract>)
    return h - theta * s;
  else if constexpr (std::is_same_v<Reset, reset::None>)
    return h;
  else
    return h * (V(1) - s) + V(Reset::v_reset) * s;
}

/// d(reset(h, S(h, theta)))/dh and /dtheta, with dS/dh = sg = -dS/dtheta; a detached reset treats S as
/// constant.
template <class Reset, bool Detach, class T>
std::array<T, 2> reset_derivatives(T h, T s, T theta, T sg) noexcept {
  const T ds = Detach ? T(0) : sg;
  if constexpr (std::is_same_v<Reset, reset::Subtract>)
    return {T(1) - theta * ds, -s + theta * ds};
  else if constexpr (std::is_same_v<Reset, reset::None>)
    return {T(1), T(0)};
  else
    return {(T(1) - s) + (T(Reset::v_reset) - h) * ds, -(T(Reset::v_reset) - h) * ds};
}
} // namespace detail

/// Integrate-and-fire (SpikingBERT / IDE): H = V + I; S = [H >= theta]; reset (default: subtract theta).
/// Parameter gradients: {theta}.
template <class T = float, class Reset = reset::Subtract, class Surrogate = surrogate::ATan<ratio<2>>,
          class Fire = fire::GreaterEqual, bool DetachReset = false>
class IF : public NeuronBase<IF<T, Reset, Surrogate, Fire, DetachReset>, T, 1, 1, 1> {
  static_assert(detail::reset_is_valid<Reset>,
                "IF: Reset must be reset::Subtract, reset::Hard<v> or reset::None");

 public:
  using reset_policy = Reset;
  using surrogate_policy = Surrogate;
  using fire_policy = Fire;
  static constexpr bool detach_reset = DetachReset;

  explicit IF(T threshold = T(1)) : theta(threshold) {
    check(threshold > T(0), "IF: threshold must be positive, got ", threshold);
  }
  T theta;

  template <class V>
  V forward_elem(const V& x, std::array<V, 1>& st, std::array<V, 1>& sv) const noexcept {
    const V h = st[0] + x;
    const V th(theta);
    const V s = detail::indicator<V>(Fire::test(h, th));
    st[0] = detail::apply_reset<Reset>(h, s, th);
    sv[0] = h;
    return s;
  }
  T backward_elem(T gs, std::array<T, 1>& gst, const std::array<T, 1>& sv,
                  std::array<T, 1>& pg) const noexcept {
    const T h = sv[0];
    const T s = Fire::test(h, theta) ? T(1) : T(0);
    const T sg = Surrogate::grad(h - theta);
    const auto dr = detail::reset_derivatives<Reset, DetachReset>(h, s, theta, sg);
    const T gh = gs * sg + gst[0] * dr[0];
    pg[0] += -gs * sg + gst[0] * dr[1];
    gst[0] = gh; // dH/dV_prev = 1
    return gh;   // dH/dI = 1
  }
  [[nodiscard]] std::array<T, 1> initial_values() const noexcept { return {T(0)}; }
};

namespace detail {
/// SpikingJelly's LIF with decay_input: H = V + (X - (V - V_rest)) / tau, V_rest = V_reset for a hard reset
/// and 0 otherwise. Parametric = true learns w with 1/tau = sigmoid(w) (PLIF). Saved: H and X - (V - V_rest).
template <class Derived, class T, class Reset, class Surrogate, class Fire, bool DetachReset>
class DecayInputLIF : public NeuronBase<Derived, T, 1, 2, 2> {
  static_assert(reset_is_valid<Reset>, "LIF: Reset must be reset::Subtract, reset::Hard<v> or reset::None");

 public:
  using reset_policy = Reset;
  using surrogate_policy = Surrogate;
  using fire_policy = Fire;
  static constexpr bool detach_reset = DetachReset;
  T theta = T(1);

  template <class V>
  V forward_elem(const V& x, std::array<V, 1>& st, std::array<V, 2>& sv) const noexcept {
    const V d = x - (st[0] - V(v_rest()));
    const V h = st[0] + static_cast<const Derived&>(*this).apply_decay(d);
    const V th(theta);
    const V s = indicator<V>(Fire::test(h, th));
    st[0] = apply_reset<Reset>(h, s, th);
    sv[0] = h;
    sv[1] = d;
    return s;
  }
  T backward_elem(T gs, std::array<T, 1>& gst, const std::array<T, 2>& sv,
                  std::array<T, 2>& pg) const noexcept {
    const T h = sv[0], d = sv[1], k = inv_tau();
    const T s = Fire::test(h, theta) ? T(1) : T(0);
    const T sg = Surrogate::grad(h - theta);
    const auto dr = reset_derivatives<Reset, DetachReset>(h, s, theta, sg);
    const T gh = gs * sg + gst[0] * dr[0];
    pg[0] += -gs * sg + gst[0] * dr[1]; // theta
    pg[1] += gh * d;                    // d/d(1/tau); the model maps it to its own parameter
    gst[0] = gh * (T(1) - k);
    return gh * k;
  }
  [[nodiscard]] std::array<T, 1> initial_values() const noexcept {
    if constexpr (is_hard_reset<Reset>::value)
      return {T(Reset::v_reset)};
    else
      return {T(0)};
  }

 protected:
  [[nodiscard]] T inv_tau() const noexcept { return static_cast<const Derived&>(*this).decay(); }
  static constexpr T v_rest() noexcept {
    if constexpr (is_hard_reset<Reset>::value)
      return T(Reset::v_reset);
    else
      return T(0);
  }
};
} // namespace detail

/// Leaky integrate-and-fire in SpikingJelly's form (decay_input; SpikeGPT's neuron):
///   H = V + (I - (V - V_reset)) / tau;  S = [H >= theta];  V = H (1 - S) + V_reset S  (hard) or H - theta S.
/// Parameter gradients: {theta, 1/tau} (the second is dL/d(1/tau); dL/dtau = -that / tau^2).
template <class T = float, class Reset = reset::Hard<ratio<0>>, class Surrogate = surrogate::ATan<ratio<2>>,
          class Fire = fire::GreaterEqual, bool DetachReset = false>
class LIF : public detail::DecayInputLIF<LIF<T, Reset, Surrogate, Fire, DetachReset>, T, Reset, Surrogate,
                                         Fire, DetachReset> {
 public:
  explicit LIF(T tau_ = T(2), T threshold = T(1)) : tau(tau_) {
    check(tau_ >= T(1), "LIF: tau must be >= 1 (decay_input form), got ", tau_);
    check(threshold > T(0), "LIF: threshold must be positive, got ", threshold);
    this->theta = threshold;
  }
  T tau;
  [[nodiscard]] T decay() const noexcept { return T(1) / tau; }
  /// d / tau, divided as SpikingJelly does (bit-identical membranes).
  template <class V>
  [[nodiscard]] V apply_decay(const V& d) const noexcept {
    return d / V(tau);
  }
};

/// Parametric LIF (SpikingJelly's ParametricLIFNode): LIF with a learnable w, 1/tau = sigmoid(w), w
/// initialised as -log(tau_init - 1). Parameter gradients: {theta, 1/tau}; dL/dw = grads[1] * k (1 - k).
template <class T = float, class Reset = reset::Hard<ratio<0>>, class Surrogate = surrogate::ATan<ratio<2>>,
          class Fire = fire::GreaterEqual, bool DetachReset = false>
class PLIF : public detail::DecayInputLIF<PLIF<T, Reset, Surrogate, Fire, DetachReset>, T, Reset, Surrogate,
                                          Fire, DetachReset> {
 public:
  explicit PLIF(T tau_init = T(2), T threshold = T(1)) {
    check(tau_init > T(1), "PLIF: initial tau must be > 1, got ", tau_init);
    check(threshold > T(0), "PLIF: threshold must be positive, got ", threshold);
    w = -std::log(tau_init - T(1));
    this->theta = threshold;
  }
  /// The learned parameter.
  T w;
  [[nodiscard]] T decay() const noexcept { return T(1) / (T(1) + std::exp(-w)); }
  [[nodiscard]] T tau() const noexcept { return T(1) / decay(); }
  /// d * sigmoid(w), as SpikingJelly's ParametricLIFNode.
  template <class V>
  [[nodiscard]] V apply_decay(const V& d) const noexcept {
    return d * V(decay());
  }
  /// dL/dw from the backward's dL/d(1/tau).
  [[nodiscard]] double grad_w(double grad_inv_tau) const noexcept {
    const double k = static_cast<double>(decay());
    return grad_inv_tau * k * (1 - k);
  }
};

/// snnTorch's Leaky neuron (reset_delay, detached reset):
///   R = [V_{t-1} > theta] (no gradient);  V_t = beta V_{t-1} + I_t - R theta   (Subtract)
///                                         V_t = beta (1 - R) V_{t-1} + I_t     (Hard<ratio<0>>, snnTorch
///                                         "zero") V_t = beta V_{t-1} + I_t             (None)
///   S_t = [V_t > theta].  beta is clamped to [0, 1] as snnTorch does. Parameter gradients: {theta, beta}.
template <class T = float, class Reset = reset::Subtract, class Surrogate = surrogate::ATan<ratio<2>>,
          class Fire = fire::Greater>
class Leaky : public NeuronBase<Leaky<T, Reset, Surrogate, Fire>, T, 1, 2, 2> {
  static_assert(detail::reset_is_valid<Reset>,
                "Leaky: Reset must be reset::Subtract, reset::Hard<ratio<0>> or None");
  static_assert(
      detail::reset_potential<Reset>() == 0.0f,
      "Leaky: snnTorch's zero reset is reset::Hard<ratio<0>>; other reset potentials do not exist there");

 public:
  using reset_policy = Reset;
  using surrogate_policy = Surrogate;
  using fire_policy = Fire;
  explicit Leaky(T beta_ = T(0.9), T threshold = T(1)) : beta(beta_), theta(threshold) {
    check(threshold > T(0), "Leaky: threshold must be positive, got ", threshold);
  }
  T beta;
  T theta;

  template <class V>
  V forward_elem(const V& x, std::array<V, 1>& st, std::array<V, 2>& sv) const noexcept {
    const V th(theta), b(clamped_beta());
    const V vp = st[0];
    const V r = detail::indicator<V>(Fire::test(vp, th));
    V v;
    if constexpr (std::is_same_v<Reset, reset::Subtract>)
      v = b * vp + x - r * th;
    else if constexpr (std::is_same_v<Reset, reset::None>)
      v = b * vp + x;
    else
      v = b * (V(1) - r) * vp + x;
    st[0] = v;
    sv[0] = vp;
    sv[1] = v;
    return detail::indicator<V>(Fire::test(v, th));
  }
  T backward_elem(T gs, std::array<T, 1>& gst, const std::array<T, 2>& sv,
                  std::array<T, 2>& pg) const noexcept {
    const T vp = sv[0], v = sv[1], b = clamped_beta();
    const T r = Fire::test(vp, theta) ? T(1) : T(0);
    const T sg = Surrogate::grad(v - theta);
    const T gv = gst[0] + gs * sg;
    T dvp = b, dth = T(0), dbeta = vp;
    if constexpr (std::is_same_v<Reset, reset::Subtract>)
      dth = -r;
    else if constexpr (detail::is_hard_reset<Reset>::value)
      dvp = b * (T(1) - r), dbeta = (T(1) - r) * vp;
    pg[0] += -gs * sg + gv * dth;
    if (beta > T(0) && beta < T(1)) pg[1] += gv * dbeta; // the clamp passes no gradient outside [0, 1]
    gst[0] = gv * dvp;
    return gv;
  }
  [[nodiscard]] std::array<T, 1> initial_values() const noexcept { return {T(0)}; }

 private:
  [[nodiscard]] T clamped_beta() const noexcept { return std::min(T(1), std::max(T(0), beta)); }
};

/// When the input current of a Norse LIF enters the synaptic current.
enum class NorseInput {
  /// i' = i + x first, the membrane integrates i', then i' decays: Norse >= 1.1's lif_feed_forward_step (and
  /// lif_feed_forward_integral of every version), and ../shared/SPEC.md's table. The default.
  BeforeVoltageUpdate,
  /// The membrane integrates the current from before this step's input, which jumps into the current after
  /// the membrane update: Norse <= 1.0's lif_feed_forward_step.
  AfterVoltageUpdate,
};

/// Norse's LIF with a synaptic current (lif_feed_forward_step), explicit Euler with step dt:
///   i' = i + x;  v_dec = v + dt tau_mem_inv ((v_leak - v) + i');  i = i' - dt tau_syn_inv i';
///   z = [v_dec > v_th];  v = (1 - z) v_dec + z v_reset      (Order = BeforeVoltageUpdate, Norse >= 1.1)
/// or, with Order = AfterVoltageUpdate (Norse <= 1.0), v_dec uses i and x is added after the decay.
/// State {v, i}, starting at {v_leak, 0}. Defaults are Norse's (tau_syn_inv 200, tau_mem_inv 100, dt 1e-3,
/// v_th 1, SuperSpike alpha 100). Parameter gradients: {v_th}.
template <class T = float, class Surrogate = surrogate::FastSigmoid<ratio<100>>, class Fire = fire::Greater,
          NorseInput Order = NorseInput::BeforeVoltageUpdate>
class NorseLIF : public NeuronBase<NorseLIF<T, Surrogate, Fire, Order>, T, 2, 1, 1> {
 public:
  using surrogate_policy = Surrogate;
  using fire_policy = Fire;
  struct Parameters {
    T tau_syn_inv = T(200);
    T tau_mem_inv = T(100);
    T v_leak = T(0);
    T v_th = T(1);
    T v_reset = T(0);
    T dt = T(0.001);
  };
  NorseLIF() : NorseLIF(Parameters{}) {}
  explicit NorseLIF(const Parameters& params) : p(params) {
    check(p.dt > T(0) && p.tau_mem_inv >= T(0) && p.tau_syn_inv >= T(0), "NorseLIF: dt must be positive and ",
          "inverse time constants non-negative (dt ", p.dt, ", tau_mem_inv ", p.tau_mem_inv, ", tau_syn_inv ",
          p.tau_syn_inv, ")");
  }
  Parameters p;

  template <class V>
  V forward_elem(const V& x, std::array<V, 2>& st, std::array<V, 1>& sv) const noexcept {
    const V am(p.dt * p.tau_mem_inv), as(p.dt * p.tau_syn_inv);
    V i = st[1];
    if constexpr (Order == NorseInput::BeforeVoltageUpdate) i = i + x;
    const V vdec = st[0] + am * ((V(p.v_leak) - st[0]) + i);
    const V idec = i - as * i; // Norse: i + (-dt tau_syn_inv) i
    const V z = detail::indicator<V>(Fire::test(vdec, V(p.v_th)));
    st[0] = (V(1) - z) * vdec + z * V(p.v_reset);
    st[1] = Order == NorseInput::AfterVoltageUpdate ? idec + x : idec;
    sv[0] = vdec;
    return z;
  }
  T backward_elem(T gs, std::array<T, 2>& gst, const std::array<T, 1>& sv,
                  std::array<T, 1>& pg) const noexcept {
    const T vdec = sv[0], am = p.dt * p.tau_mem_inv, as = p.dt * p.tau_syn_inv;
    const T z = Fire::test(vdec, p.v_th) ? T(1) : T(0);
    const T sg = Surrogate::grad(vdec - p.v_th);
    const T gvdec = gs * sg + gst[0] * ((T(1) - z) + (p.v_reset - vdec) * sg);
    pg[0] += -gs * sg - gst[0] * (p.v_reset - vdec) * sg;
    const T gv_prev = gvdec * (T(1) - am);
    T gx;
    if constexpr (Order == NorseInput::AfterVoltageUpdate) {
      gx = gst[1];
      gst[1] = gvdec * am + gst[1] * (T(1) - as);
    } else {
      const T gi_in = gvdec * am + gst[1] * (T(1) - as); // dL/d(i + x)
      gx = gi_in;
      gst[1] = gi_in;
    }
    gst[0] = gv_prev;
    return gx;
  }
  [[nodiscard]] std::array<T, 2> initial_values() const noexcept { return {p.v_leak, T(0)}; }
};

// ---- friendly aliases (the published defaults) ------------------------------------------------------------
/// SpikeGPT's neuron: SpikingJelly LIF, tau = 2, theta = 1, hard reset to 0, ATan(2), not detached.
template <class T = float>
using SpikeGptLIF = LIF<T, reset::Hard<ratio<0>>, surrogate::ATan<ratio<2>>, fire::GreaterEqual, false>;
/// SpikingBERT's neuron: IF, theta = 1, subtract reset, spike when V >= theta.
template <class T = float>
using SpikingBertIF = IF<T, reset::Subtract, surrogate::ATan<ratio<2>>, fire::GreaterEqual, false>;
/// snnTorch's snn.Leaky defaults: beta given, threshold 1, subtract reset, ATan(2), spike when V > theta.
template <class T = float>
using SnnTorchLeaky = Leaky<T, reset::Subtract, surrogate::ATan<ratio<2>>, fire::Greater>;
/// Norse's LIFCell / lif_feed_forward_step defaults.
template <class T = float>
using NorseLIFCell = NorseLIF<T>;

SPIKELM_NAMESPACE_END

#endif // SPIKELM_NEURON_NEURONS_HPP
