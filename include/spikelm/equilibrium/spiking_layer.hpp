// spikelm: a spiking layer trained at equilibrium (SpikingBERT / IDE style).
//
// An IF population (threshold theta, subtract reset) gets the constant current c = F x + b and, with
// feedback, the recurrent current W_s s_{t-1} from its own spikes. Simulated for T steps (no tape; the
// feedback product is event-driven), its average rates a_T approach the fixed point of
//   a = f(a) = clamp((W_s a + F x + b) / theta, 0, 1).
// Training differentiates that map implicitly at a_T (implicit_at): without feedback J_f = 0 and the gradient
// is the straight-through gradient of the clamp map (the released SpikingBERT); with feedback the adjoint
// system is solved. Memory does not grow with T.
#ifndef SPIKELM_EQUILIBRIUM_SPIKING_LAYER_HPP
#define SPIKELM_EQUILIBRIUM_SPIKING_LAYER_HPP

#include "../autograd/ops.hpp"
#include "../autograd/parameter.hpp"
#include "../autograd/tape.hpp"
#include "../config.hpp"
#include "../core/error.hpp"
#include "../core/linalg.hpp"
#include "../spike/accumulate.hpp"
#include "../spike/spike_tensor.hpp"
#include "implicit.hpp"

#include <memory>
#include <vector>

SPIKELM_NAMESPACE_BEGIN

/// Parameters (PyTorch layout): F [n, n_in], b [n], and with feedback W_s [n, n].
template <class T>
struct SpikingEquilibriumLayer {
  Parameter<T>* feedforward = nullptr; ///< F
  Parameter<T>* bias = nullptr;        ///< b
  Parameter<T>* feedback = nullptr;    ///< W_s, or null for none (the released SpikingBERT)
  T theta = T(1);
  std::size_t steps = 32; ///< T
  EquilibriumOptions options{};

  /// Simulates the IF population for `steps` steps on input rows x [B, n_in] and returns the average rates
  /// [B, n] (no tape). `spike_count` receives the number of spikes if given.
  [[nodiscard]] Tensor<T> simulate(TensorView<const T> x, std::size_t* spike_count = nullptr) const {
    validate(x.shape());
    const std::size_t rows = x.dim(0), n = feedforward->value.dim(0);
    Tensor<T> current({rows, n}, uninitialized);
    matmul(x, feedforward->value, current, Trans::No, Trans::Yes);
    for (std::size_t r = 0; r < rows; ++r)
      simd::add(current[r].data(), bias->value.data(), current[r].data(), n);
    Tensor<T> ws_in_major; // W_s^T, so that the spike product sums rows of active neurons
    if (feedback) {
      ws_in_major = Tensor<T>({n, n}, uninitialized);
      for (std::size_t i = 0; i < n; ++i)
        for (std::size_t j = 0; j < n; ++j) ws_in_major(i, j) = feedback->value(j, i);
    }
    Tensor<T> v({rows, n}), rate({rows, n}), input({rows, n}, uninitialized), spikes({rows, n});
    SpikeTensor packed(rows, n);
    std::size_t count = 0;
    for (std::size_t t = 0; t < steps; ++t) {
      input.copy_from(current);
      if (feedback && t > 0) spike_matmul(packed, ws_in_major, input, true);
      for (std::size_t i = 0; i < v.size(); ++i) {
        const T h = v.data()[i] + input.data()[i];
        const bool s = h >= theta;
        spikes.data()[i] = s ? T(1) : T(0);
        v.data()[i] = s ? h - theta : h;
        rate.data()[i] += spikes.data()[i];
      }
      packed = SpikeTensor::from_dense(spikes);
      count += packed.count();
    }
    for (T& r : rate) r /= static_cast<T>(steps);
    if (spike_count) *spike_count = count;
    return rate;
  }

  /// The equilibrium map f(a) = clamp((a W_s^T + x F^T + b) / theta, 0, 1) on the tape.
  [[nodiscard]] Var<T> map(Tape<T>& tape, const Var<T>& a, const Var<T>& x) const {
    Var<T> pre = linear(x, tape.param(*feedforward), tape.param(*bias));
    if (feedback) pre = add(pre, linear(a, tape.param(*feedback)));
    return clamp(scale(pre, T(1) / theta), T(0), T(1));
  }

  /// Rates of the simulated population for x [B, n_in], differentiable by implicit differentiation.
  Var<T> forward(const Var<T>& x, std::shared_ptr<EquilibriumStats> stats = nullptr) const {
    const Tensor<T> rates = simulate(x.value());
    const SpikingEquilibriumLayer layer = *this;
    EquilibriumMap<T> f = [layer](Tape<T>& tape, const Var<T>& a, std::span<const Var<T>> in) {
      return layer.map(tape, a, in[0]);
    };
    const std::vector<Var<T>> inputs{x};
    return implicit_at(f, std::span<const Var<T>>(inputs), rates, options, stats, &rates);
  }

  void validate(const Shape& x) const {
    check(feedforward && bias, "SpikingEquilibriumLayer: feedforward weight and bias must be set");
    const std::size_t n = feedforward->value.dim(0);
    check(feedforward->value.rank() == 2 && bias->value.shape() == Shape{n}, "SpikingEquilibriumLayer: F ",
          feedforward->value.shape(), " and b ", bias->value.shape(), " disagree");
    check(!feedback || feedback->value.shape() == Shape{n, n}, "SpikingEquilibriumLayer: W_s must be [", n,
          ", ", n, "], got ", feedback ? feedback->value.shape() : Shape{});
    check(x.rank() == 2 && x[1] == feedforward->value.dim(1), "SpikingEquilibriumLayer: input ", x,
          " does not match F ", feedforward->value.shape());
    check(theta > T(0) && steps > 0, "SpikingEquilibriumLayer: theta and steps must be positive");
  }
};

SPIKELM_NAMESPACE_END

#endif // SPIKELM_EQUILIBRIUM_SPIKING_LAYER_HPP
