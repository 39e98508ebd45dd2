// spikelm: the machinery shared by every neuron model — a single SIMD step over a population with explicit
// state, and a multi-step forward over [T, ...] that keeps what the backward (through time, with a
// surrogate gradient) needs.
//
// A neuron model derives from NeuronBase<Model, T, K, S, P> and provides
//   template <class V> V forward_elem(const V& x, std::array<V, K>& state, std::array<V, S>& saved) const;
//     one time step for one lane (V is T or an xsimd batch); returns the spike (0 or 1) and updates the
//     state; fills `saved` with what backward needs;
//   T backward_elem(T grad_spike, std::array<T, K>& grad_state, const std::array<T, S>& saved,
//                   std::array<T, P>& grad_params) const;
//     one time step backwards: grad_state holds dL/d(state after the step) on entry and dL/d(state before
//     the step) on exit; the return value is dL/dx; parameter gradients are added to grad_params;
//   std::array<T, K> initial_values() const;  the state a fresh population starts from.
#ifndef SPIKELM_NEURON_MULTISTEP_HPP
#define SPIKELM_NEURON_MULTISTEP_HPP

#include "../config.hpp"
#include "../core/error.hpp"
#include "../core/parallel.hpp"
#include "../core/tensor.hpp"
#include "../simd/compat.hpp"
#include "../spike/spike_tensor.hpp"

#include <array>
#include <cstddef>
#include <type_traits>
#include <utility>
#include <vector>

SPIKELM_NAMESPACE_BEGIN

namespace detail {
template <class V>
inline constexpr bool lane_is_scalar = std::is_arithmetic_v<V>;

template <class V, class T>
V load_lane(const T* p) noexcept {
  if constexpr (lane_is_scalar<V>)
    return *p;
  else
    return V::load_unaligned(p);
}
template <class T, class V>
void store_lane(T* p, const V& v) noexcept {
  if constexpr (lane_is_scalar<V>)
    *p = v;
  else
    v.store_unaligned(p);
}
/// cond ? a : b for scalars (bool condition) and batches (batch_bool condition).
template <class C, class V>
V select_lane(const C& cond, const V& a, const V& b) noexcept {
  if constexpr (lane_is_scalar<V>)
    return cond ? a : b;
  else
    return xsimd::select(cond, a, b);
}
/// 1 where cond holds, else 0.
template <class V, class C>
V indicator(const C& cond) noexcept {
  return select_lane(cond, V(1), V(0));
}

/// Calls f(tag, i) over [begin, end): tag is an xsimd batch while a whole batch fits, then a scalar.
template <class Arch, class T, class F>
void for_lanes(std::size_t begin, std::size_t end, F&& f) {
  std::size_t i = begin;
  if constexpr (simd::lanes < T, Arch >> 0) {
    using B = xsimd::batch<T, Arch>;
    for (; i + B::size <= end; i += B::size) f(B{}, i);
  }
  for (; i < end; ++i) f(T{}, i);
}

inline constexpr std::size_t neuron_chunk = 1024;
} // namespace detail

/// What a multi-step forward keeps for its backward: `saved` is [steps, S, neurons].
template <class T>
struct NeuronTrace {
  Tensor<T> saved;
  Shape input_shape;
  std::size_t steps = 0;
  std::size_t neurons = 0;
};

template <class Model, class T, std::size_t K, std::size_t S, std::size_t P>
class NeuronBase {
  static_assert(std::is_floating_point_v<T>, "neurons are defined over float or double");

 public:
  using value_type = T;
  static constexpr std::size_t state_vars = K;
  static constexpr std::size_t saved_vars = S;
  static constexpr std::size_t param_count = P;
  /// State of a population of n neurons: [K, n] (row k is state variable k).
  using State = Tensor<T>;
  using ParamGrads = std::array<double, P>;

  /// A population of n neurons at rest.
  [[nodiscard]] State initial_state(std::size_t n) const {
    State s({K, n}, uninitialized);
    const auto init = model().initial_values();
    for (std::size_t k = 0; k < K; ++k) std::fill(s.data() + k * n, s.data() + (k + 1) * n, init[k]);
    return s;
  }

  /// One time step of n neurons (SIMD over neurons, Arch selectable): spikes[i] = 0 or 1; `state` advances.
  template <class Arch = simd::default_arch>
  void step(const T* x, State& state, T* spikes) const {
    check(state.rank() == 2 && state.dim(0) == K, "neuron step: state must be [", K, ", n], got ",
          state.shape());
    const std::size_t n = state.dim(1);
    T* st = state.data();
    parallel_for((n + detail::neuron_chunk - 1) / detail::neuron_chunk, n * 16, [&](std::size_t c) {
      const std::size_t b = c * detail::neuron_chunk, e = std::min(n, b + detail::neuron_chunk);
      detail::for_lanes<Arch, T>(b, e, [&](auto tag, std::size_t i) {
        using V = decltype(tag);
        std::array<V, K> s;
        std::array<V, S> sv;
        for (std::size_t k = 0; k < K; ++k) s[k] = detail::load_lane<V>(st + k * n + i);
        detail::store_lane(spikes + i, model().forward_elem(detail::load_lane<V>(x + i), s, sv));
        for (std::size_t k = 0; k < K; ++k) detail::store_lane(st + k * n + i, s[k]);
      });
    });
  }

  /// Runs the population over time. `input` is [T, ...] (time first; the rest is the population, e.g.
  /// [T, B, N]); returns spikes of the same shape. With `trace`, keeps what backward() needs. With `state`
  /// ([K, numel / T]), starts from it and leaves the final state in it; without, starts at rest.
  template <class Arch = simd::default_arch, TensorLike X>
  [[nodiscard]] Tensor<T> forward(const X& input, NeuronTrace<T>* trace = nullptr,
                                  State* state = nullptr) const {
    Tensor<T> spikes(input.shape(), uninitialized);
    forward_into<Arch>(input, spikes, trace, state);
    return spikes;
  }

  /// forward() writing the spikes into `out` (the input's shape), with no allocation when `state` is given
  /// and the trace already has the right size.
  template <class Arch = simd::default_arch, TensorLike X, TensorLike O>
  void forward_into(const X& input, O&& out, NeuronTrace<T>* trace = nullptr, State* state = nullptr) const {
    const TensorView<const T> x = cview(input);
    const TensorView<T> spikes = mview(std::forward<O>(out));
    check(spikes.shape() == x.shape(), "neuron forward: output shape ", spikes.shape(),
          " does not match input ", x.shape());
    check(x.rank() >= 2, "neuron forward: input must be [T, ...] with a time axis first, got ", x.shape());
    const std::size_t steps = x.dim(0), n = x.dim(0) == 0 ? 0 : x.size() / x.dim(0);
    State local;
    if (!state) {
      local = initial_state(n);
      state = &local;
    }
    check(state->shape() == Shape{K, n}, "neuron forward: state shape ", state->shape(), " does not match [",
          K, ", ", n, "] for input ", x.shape());
    T* sv_out = nullptr;
    if (trace) {
      trace->saved.resize({steps, S, n});
      trace->input_shape = x.shape();
      trace->steps = steps;
      trace->neurons = n;
      sv_out = trace->saved.data();
    }
    T* st = state->data();
    const T* xp = x.data();
    T* sp = spikes.data();
    // Time runs inside each chunk of neurons so that a chunk's state stays in L1 while every step reads
    // and writes one contiguous stretch of the input, spikes and trace.
    parallel_for((n + detail::neuron_chunk - 1) / detail::neuron_chunk, n * steps * 16, [&](std::size_t c) {
      const std::size_t b = c * detail::neuron_chunk, e = std::min(n, b + detail::neuron_chunk);
      for (std::size_t t = 0; t < steps; ++t) {
        detail::for_lanes<Arch, T>(b, e, [&](auto tag, std::size_t i) {
          using V = decltype(tag);
          std::array<V, K> s;
          std::array<V, S> sv;
          for (std::size_t k = 0; k < K; ++k) s[k] = detail::load_lane<V>(st + k * n + i);
          detail::store_lane(sp + t * n + i,
                             model().forward_elem(detail::load_lane<V>(xp + t * n + i), s, sv));
          for (std::size_t k = 0; k < K; ++k) detail::store_lane(st + k * n + i, s[k]);
          if (sv_out)
            for (std::size_t k = 0; k < S; ++k) detail::store_lane(sv_out + (t * S + k) * n + i, sv[k]);
        });
      }
    });
  }

  /// Backpropagation through time. `grad_spikes` is dL/dS with the forward input's shape; returns dL/dx.
  /// Parameter gradients (summed over neurons and steps, in double) are added to `param_grads` if given.
  /// `grad_final_state` ([K, n]) is dL/d(final state), if the state after the last step feeds a loss.
  template <TensorLike G>
  [[nodiscard]] Tensor<T> backward(const G& grad_spikes, const NeuronTrace<T>& trace,
                                   ParamGrads* param_grads = nullptr,
                                   const State* grad_final_state = nullptr) const {
    const TensorView<const T> g = cview(grad_spikes);
    check(g.shape() == trace.input_shape, "neuron backward: gradient shape ", g.shape(),
          " does not match the forward input ", trace.input_shape);
    check(trace.saved.shape() == Shape{trace.steps, S, trace.neurons},
          "neuron backward: trace is empty or stale");
    const std::size_t steps = trace.steps, n = trace.neurons;
    if (grad_final_state)
      check(grad_final_state->shape() == Shape{K, n}, "neuron backward: final-state gradient shape ",
            grad_final_state->shape(), " is not [", K, ", ", n, "]");
    Tensor<T> gx(g.shape(), uninitialized);
    const std::size_t chunks = (n + detail::neuron_chunk - 1) / detail::neuron_chunk;
    std::vector<std::array<double, P>> partial(chunks);
    const T* sv_in = trace.saved.data();
    parallel_for(chunks, n * steps * 24, [&](std::size_t c) {
      const std::size_t b = c * detail::neuron_chunk, e = std::min(n, b + detail::neuron_chunk), m = e - b;
      // per-neuron running gradients of the state and of the parameters for this chunk
      std::vector<std::array<T, K>> gs(m, std::array<T, K>{});
      std::vector<std::array<T, P>> pg(m, std::array<T, P>{});
      if (grad_final_state)
        for (std::size_t j = 0; j < m; ++j)
          for (std::size_t k = 0; k < K; ++k) gs[j][k] = grad_final_state->data()[k * n + b + j];
      for (std::size_t t = steps; t-- > 0;) {
        for (std::size_t j = 0; j < m; ++j) {
          const std::size_t i = b + j;
          std::array<T, S> sv;
          for (std::size_t k = 0; k < S; ++k) sv[k] = sv_in[(t * S + k) * n + i];
          gx.data()[t * n + i] = model().backward_elem(g.data()[t * n + i], gs[j], sv, pg[j]);
        }
      }
      std::array<double, P> acc{};
      for (std::size_t j = 0; j < m; ++j)
        for (std::size_t p = 0; p < P; ++p) acc[p] += static_cast<double>(pg[j][p]);
      partial[c] = acc;
    });
    if (param_grads)
      for (const auto& a : partial)
        for (std::size_t p = 0; p < P; ++p) (*param_grads)[p] += a[p];
    return gx;
  }

 private:
  [[nodiscard]] const Model& model() const noexcept { return static_cast<const Model&>(*this); }
};

SPIKELM_NAMESPACE_END

#endif // SPIKELM_NEURON_MULTISTEP_HPP
