// spikelm/train/guard.hpp - stops a training run at the first non-finite loss, gradient or weight, naming
// the step and the parameter, before the optimizer writes the bad values into the weights (and so before the
// next checkpoint can save them).
#pragma once

#include "../autograd/parameter.hpp"
#include "../core/error.hpp"

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

SPIKELM_NAMESPACE_BEGIN

/// Where a non-finite value sits: the parameter's name, the flat index inside it and the value.
struct NonFinite {
  std::string parameter;
  std::size_t index = 0;
  double value = 0;
};

/// The first non-finite gradient entry of `params` (registration order), or nothing when all are finite.
template <class T>
[[nodiscard]] std::optional<NonFinite> find_non_finite_grad(const ParameterSet<T>& params) {
  for (std::size_t i = 0; i < params.size(); ++i) {
    const Parameter<T>& p = params.at(i);
    for (std::size_t k = 0; k < p.grad.size(); ++k)
      if (!std::isfinite(p.grad.data()[k]))
        return NonFinite{p.name, k, static_cast<double>(p.grad.data()[k])};
  }
  return std::nullopt;
}

/// The first non-finite weight of `params`, or nothing when all are finite.
template <class T>
[[nodiscard]] std::optional<NonFinite> find_non_finite_value(const ParameterSet<T>& params) {
  for (std::size_t i = 0; i < params.size(); ++i) {
    const Parameter<T>& p = params.at(i);
    for (std::size_t k = 0; k < p.value.size(); ++k)
      if (!std::isfinite(p.value.data()[k]))
        return NonFinite{p.name, k, static_cast<double>(p.value.data()[k])};
  }
  return std::nullopt;
}

/// Call between `tape.backward(loss)` and `optimizer.step()`: throws spikelm::Error when the loss or any
/// gradient is NaN or infinite, with the step, the parameter, the flat index and the value in the message.
/// The weights are still those of the last good step, so the last checkpoint (and the weights in memory)
/// stay usable.
template <class T>
void check_finite_step(std::uint64_t step, double loss, const ParameterSet<T>& params) {
  check(std::isfinite(loss), "training stopped at step ", step, ": the loss is ", loss,
        " (weights and checkpoints are left as they were after the previous step)");
  if (auto bad = find_non_finite_grad(params))
    fail("training stopped at step ", step, ": the gradient of '", bad->parameter, "' is ", bad->value,
         " at flat index ", bad->index, " (loss ", loss,
         "; weights and checkpoints are left as they were after the previous step)");
}

/// Call after `optimizer.step()` when the update itself may overflow (huge learning rates): throws when a
/// weight became NaN or infinite, naming the step, the parameter and the index.
template <class T>
void check_finite_weights(std::uint64_t step, const ParameterSet<T>& params) {
  if (auto bad = find_non_finite_value(params))
    fail("training stopped at step ", step, ": weight '", bad->parameter, "' is ", bad->value,
         " at flat index ", bad->index, " after the optimizer step");
}

SPIKELM_NAMESPACE_END
