// spikelm: spiking rates over time.
#ifndef SPIKELM_NEURON_RATES_HPP
#define SPIKELM_NEURON_RATES_HPP

#include "../config.hpp"
#include "../core/error.hpp"
#include "../core/tensor.hpp"
#include "../spike/spike_tensor.hpp"

#include <cmath>
#include <cstddef>

SPIKELM_NAMESPACE_BEGIN

/// a = (1/T) sum_t S_t over the leading (time) axis of spikes [T, ...]; returns [...].
template <TensorLike X>
[[nodiscard]] Tensor<tensor_value_t<X>> average_rate(const X& spikes) {
  using T = tensor_value_t<X>;
  const auto s = cview(spikes);
  check(s.rank() >= 2 && s.dim(0) > 0, "average_rate: spikes must be [T, ...] with T > 0, got ", s.shape());
  const std::size_t steps = s.dim(0), n = s.size() / steps;
  Tensor<T> out(s.shape().drop_front());
  for (std::size_t t = 0; t < steps; ++t)
    for (std::size_t i = 0; i < n; ++i) out.data()[i] += s.data()[t * n + i];
  for (auto& v : out) v /= static_cast<T>(steps);
  return out;
}

/// Leak-weighted rate sum_t lambda^(T-t) S_t / sum_t lambda^(T-t), t = 1..T (IDE, LIF): recent spikes count
/// more. lambda = 1 gives the average rate.
template <TensorLike X>
[[nodiscard]] Tensor<tensor_value_t<X>> leak_weighted_rate(const X& spikes, double lambda) {
  using T = tensor_value_t<X>;
  const auto s = cview(spikes);
  check(s.rank() >= 2 && s.dim(0) > 0, "leak_weighted_rate: spikes must be [T, ...] with T > 0, got ",
        s.shape());
  check(lambda > 0.0 && lambda <= 1.0, "leak_weighted_rate: lambda must be in (0, 1], got ", lambda);
  const std::size_t steps = s.dim(0), n = s.size() / steps;
  Tensor<T> out(s.shape().drop_front());
  double norm = 0.0;
  for (std::size_t t = 0; t < steps; ++t) {
    const double w = std::pow(lambda, static_cast<double>(steps - 1 - t));
    norm += w;
    for (std::size_t i = 0; i < n; ++i) out.data()[i] += static_cast<T>(w) * s.data()[t * n + i];
  }
  for (auto& v : out) v = static_cast<T>(static_cast<double>(v) / norm);
  return out;
}

/// Per-neuron rate of packed spikes over every step and row (see SpikeTensor::rate_per_neuron).
[[nodiscard]] inline std::vector<double> average_rate(const SpikeTensor& spikes) {
  return spikes.rate_per_neuron();
}

SPIKELM_NAMESPACE_END

#endif // SPIKELM_NEURON_RATES_HPP
