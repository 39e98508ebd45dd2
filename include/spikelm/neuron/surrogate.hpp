// spikelm: surrogate gradients and firing tests, as policy types with their parameters as template
// arguments. x is the distance to threshold, x = V - theta; grad(x) stands in for dS/dx in backward passes.
// Real-valued parameters are std::ratio types (spikelm::ratio<N, D> = N / D): clang 14 accepts no
// floating-point template arguments, e.g. surrogate::Triangle<ratio<7, 10>, ratio<1>> for gamma 0.7, s 1.
#ifndef SPIKELM_NEURON_SURROGATE_HPP
#define SPIKELM_NEURON_SURROGATE_HPP

#include "../config.hpp"

#include <cmath>
#include <numbers>
#include <ratio>

SPIKELM_NAMESPACE_BEGIN

/// A compile-time real number N / D for policy parameters.
template <std::intmax_t Num, std::intmax_t Den = 1>
using ratio = std::ratio<Num, Den>;

/// The value of a std::ratio as a double.
template <class R>
inline constexpr double ratio_value = static_cast<double>(R::num) / static_cast<double>(R::den);

namespace surrogate {

/// (alpha/2) / (1 + (pi alpha x / 2)^2) — SpikingJelly's and snnTorch's ATan (default alpha = 2).
template <class Alpha = ratio<2>>
struct ATan {
  static constexpr double alpha = ratio_value<Alpha>;
  static constexpr const char* name = "ATan";
  template <class T>
  static T grad(T x) noexcept {
    const T z = T(std::numbers::pi / 2) * T(alpha) * x;
    return T(alpha) / T(2) / (T(1) + z * z);
  }
};

/// alpha sigma(alpha x) (1 - sigma(alpha x)) — SpikingJelly's Sigmoid (default alpha = 4).
template <class Alpha = ratio<4>>
struct Sigmoid {
  static constexpr double alpha = ratio_value<Alpha>;
  static constexpr const char* name = "Sigmoid";
  template <class T>
  static T grad(T x) noexcept {
    const T s = T(1) / (T(1) + std::exp(-T(alpha) * x));
    return T(alpha) * s * (T(1) - s);
  }
};

/// 1 / (k |x| + 1)^2 — SuperSpike / fast sigmoid (snnTorch k = 25, Norse "super" k = 100).
template <class K = ratio<25>>
struct FastSigmoid {
  static constexpr double slope = ratio_value<K>;
  static constexpr const char* name = "FastSigmoid";
  template <class T>
  static T grad(T x) noexcept {
    const T d = T(slope) * std::abs(x) + T(1);
    return T(1) / (d * d);
  }
};

/// gamma max(0, 1 - s |x|) — EGRU's pseudo-derivative (EvNN default gamma = 0.7, s = 1; the EGRU LM
/// uses gamma = s = 3.6).
template <class Gamma = ratio<7, 10>, class Scale = ratio<1>>
struct Triangle {
  static constexpr double gamma = ratio_value<Gamma>;
  static constexpr double scale = ratio_value<Scale>;
  static constexpr const char* name = "Triangle";
  template <class T>
  static T grad(T x) noexcept {
    const T v = T(1) - T(scale) * std::abs(x);
    return v > T(0) ? T(gamma) * v : T(0);
  }
};

/// alpha - alpha^2 |x| for |x| <= 1/alpha, else 0 — SpikingJelly's PiecewiseQuadratic (default alpha = 1).
template <class Alpha = ratio<1>>
struct PiecewiseQuadratic {
  static constexpr double alpha = ratio_value<Alpha>;
  static constexpr const char* name = "PiecewiseQuadratic";
  template <class T>
  static T grad(T x) noexcept {
    const T ax = std::abs(x);
    return ax > T(1) / T(alpha) ? T(0) : T(alpha) - T(alpha) * T(alpha) * ax;
  }
};

/// dS/dx = 1.
struct StraightThrough {
  static constexpr const char* name = "StraightThrough";
  template <class T>
  static T grad(T) noexcept {
    return T(1);
  }
};

} // namespace surrogate

/// Firing tests: whether a neuron spikes given its membrane h and threshold theta.
namespace fire {
/// h >= theta (SpikingJelly, SpikingBERT).
struct GreaterEqual {
  static constexpr const char* name = ">=";
  template <class V>
  static auto test(const V& h, const V& theta) noexcept {
    return h >= theta;
  }
};
/// h > theta (snnTorch, Norse, EvNN).
struct Greater {
  static constexpr const char* name = ">";
  template <class V>
  static auto test(const V& h, const V& theta) noexcept {
    return h > theta;
  }
};
} // namespace fire

/// Reset rules applied after a spike.
namespace reset {
/// V <- V - theta S (soft reset; SpikingBERT's IF, snnTorch "subtract").
struct Subtract {
  static constexpr const char* name = "subtract";
};
/// V <- V_reset where S = 1 (hard reset; SpikeGPT's LIF with V_reset = 0, snnTorch "zero").
template <class VReset = ratio<0>>
struct Hard {
  static constexpr double v_reset = ratio_value<VReset>;
  static constexpr const char* name = "hard";
};
/// No reset.
struct None {
  static constexpr const char* name = "none";
};
} // namespace reset

SPIKELM_NAMESPACE_END

#endif // SPIKELM_NEURON_SURROGATE_HPP
