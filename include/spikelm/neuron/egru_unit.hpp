// spikelm: the EGRU threshold unit (EvNN): graded event output, subtract-theta reset, per-unit learnable
// threshold. ../shared/SPEC.md §4: o = H(c - theta) (strict), y = o c, h = c - o theta.
#ifndef SPIKELM_NEURON_EGRU_UNIT_HPP
#define SPIKELM_NEURON_EGRU_UNIT_HPP

#include "../config.hpp"
#include "../core/error.hpp"
#include "../core/tensor.hpp"
#include "surrogate.hpp"

#include <cstddef>

SPIKELM_NAMESPACE_BEGIN

/// The EGRU's event unit over a population of n units with thresholds theta[n]. Surrogate: the triangle
/// pseudo-derivative (defaults gamma = 0.7, s = 1 as EvNN; the EGRU LM uses Triangle<ratio<18, 5>, ratio<18,
/// 5>>).
template <class T = float, class Surrogate = surrogate::Triangle<ratio<7, 10>, ratio<1>>,
          class Fire = fire::Greater>
struct EgruThresholdUnit {
  using surrogate_policy = Surrogate;

  /// o = [c > theta], y = o c, h = c - o theta, for rows of n units (c is [rows, n] flattened).
  static void forward(const T* c, const T* theta, T* y, T* h, std::size_t rows, std::size_t n) noexcept {
    for (std::size_t r = 0; r < rows; ++r)
      for (std::size_t j = 0; j < n; ++j) {
        const T cv = c[r * n + j];
        const T o = Fire::test(cv, theta[j]) ? T(1) : T(0);
        y[r * n + j] = o * cv;
        h[r * n + j] = cv - o * theta[j];
      }
  }

  /// Given dL/dy and dL/dh, writes dL/dc and adds dL/dtheta. With the pseudo-derivative p = d o / d c:
  ///   dL/do = dy c - dh theta;  dL/dc = dy o + dh + dL/do p;  dL/dtheta = -(dL/do p + o dh).
  static void backward(const T* c, const T* theta, const T* dy, const T* dh, T* dc, T* dtheta,
                       std::size_t rows, std::size_t n) noexcept {
    for (std::size_t r = 0; r < rows; ++r)
      for (std::size_t j = 0; j < n; ++j) {
        const std::size_t i = r * n + j;
        const T cv = c[i], th = theta[j];
        const T o = Fire::test(cv, th) ? T(1) : T(0);
        const T p = Surrogate::grad(cv - th);
        const T gy = dy ? dy[i] : T(0), gh = dh ? dh[i] : T(0);
        const T d_heaviside = (gy * cv - gh * th) * p;
        dc[i] = gy * o + gh + d_heaviside;
        if (dtheta) dtheta[j] += -(d_heaviside + o * gh);
      }
  }

  /// Keeps thresholds in [0, 1] after an optimizer step (EvNN clamps them the same way).
  static void clamp_thresholds(T* theta, std::size_t n) noexcept {
    for (std::size_t j = 0; j < n; ++j)
      theta[j] = theta[j] < T(0) ? T(0) : (theta[j] > T(1) ? T(1) : theta[j]);
  }
};

SPIKELM_NAMESPACE_END

#endif // SPIKELM_NEURON_EGRU_UNIT_HPP
