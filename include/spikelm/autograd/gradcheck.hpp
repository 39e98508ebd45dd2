// spikelm: gradient checking by central differences (double precision).
#ifndef SPIKELM_AUTOGRAD_GRADCHECK_HPP
#define SPIKELM_AUTOGRAD_GRADCHECK_HPP

#include "../config.hpp"
#include "../core/error.hpp"
#include "../core/tensor.hpp"
#include "tape.hpp"

#include <cmath>
#include <cstddef>
#include <functional>
#include <string>
#include <vector>

SPIKELM_NAMESPACE_BEGIN

struct GradcheckResult {
  bool passed = true;
  double max_abs_error = 0;
  double max_rel_error = 0;
  /// First failing entry, e.g. "input 1, element 4: analytic 0.25, numeric 0.2500003".
  std::string first_failure;
};

/// Compares the tape's gradient of a scalar function with central differences,
/// (f(x + eps e_i) - f(x - eps e_i)) / (2 eps), for every element of every input. `f` builds the function on
/// the tape from leaf Vars made from `inputs` and returns a scalar Var. An element passes when
/// |analytic - numeric| <= atol + rtol |numeric|.
inline GradcheckResult
gradcheck(const std::function<Var<double>(Tape<double>&, const std::vector<Var<double>>&)>& f,
          const std::vector<Tensor<double>>& inputs, double eps = 1e-6, double rtol = 1e-5,
          double atol = 1e-8) {
  auto evaluate = [&](const std::vector<Tensor<double>>& xs, std::vector<Tensor<double>>* grads) {
    Tape<double> tape;
    std::vector<Var<double>> vars;
    for (const auto& x : xs) vars.push_back(tape.leaf(x));
    const Var<double> y = f(tape, vars);
    check(y.value().size() == 1, "gradcheck: the function must return a scalar, got shape ",
          y.value().shape());
    const double value = y.value().data()[0];
    if (grads) {
      tape.backward(y);
      for (std::size_t k = 0; k < xs.size(); ++k) {
        const auto g = vars[k].grad();
        Tensor<double> gk(xs[k].shape());
        if (g.size() == gk.size()) gk.copy_from(g.reshape(xs[k].shape()));
        grads->push_back(std::move(gk));
      }
    }
    return value;
  };
  std::vector<Tensor<double>> analytic;
  evaluate(inputs, &analytic);
  GradcheckResult res;
  std::vector<Tensor<double>> xs = inputs;
  for (std::size_t k = 0; k < xs.size(); ++k) {
    for (std::size_t i = 0; i < xs[k].size(); ++i) {
      const double orig = xs[k].data()[i];
      xs[k].data()[i] = orig + eps;
      const double fp = evaluate(xs, nullptr);
      xs[k].data()[i] = orig - eps;
      const double fm = evaluate(xs, nullptr);
      xs[k].data()[i] = orig;
      const double numeric = (fp - fm) / (2 * eps);
      const double a = analytic[k].data()[i];
      const double err = std::abs(a - numeric);
      res.max_abs_error = std::max(res.max_abs_error, err);
      if (std::abs(numeric) > atol) res.max_rel_error = std::max(res.max_rel_error, err / std::abs(numeric));
      if (!(err <= atol + rtol * std::abs(numeric)) && res.passed) {
        res.passed = false;
        res.first_failure =
            detail::concat("input ", k, ", element ", i, ": analytic ", a, ", numeric ", numeric);
      }
    }
  }
  return res;
}

SPIKELM_NAMESPACE_END

#endif // SPIKELM_AUTOGRAD_GRADCHECK_HPP
