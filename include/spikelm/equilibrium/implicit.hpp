// spikelm: implicit differentiation at a fixed point z* = f(z*, x; theta), as a tape op.
//
// Forward: solve z* without recording (on a scratch tape, so memory does not grow with iterations). Then
// record f(z*) once on the caller's tape with z* as a leaf. Backward: with g = dL/dz*, solve the adjoint
// fixed point u = J_f(z*)^T u + g by vector-Jacobian products through that one recorded f, then push u
// through f into x and theta. Memory is O(size of z) plus one recording of f, whatever the number of
// iterations.
#ifndef SPIKELM_EQUILIBRIUM_IMPLICIT_HPP
#define SPIKELM_EQUILIBRIUM_IMPLICIT_HPP

#include "../autograd/tape.hpp"
#include "../config.hpp"
#include "../core/error.hpp"
#include "../core/tensor.hpp"
#include "solvers.hpp"

#include <functional>
#include <memory>
#include <span>
#include <vector>

SPIKELM_NAMESPACE_BEGIN

/// f(z, inputs) built with tape ops on `tape`. It may also use parameters through tape.param(...).
template <class T>
using EquilibriumMap = std::function<Var<T>(Tape<T>& tape, const Var<T>& z, std::span<const Var<T>> inputs)>;

struct EquilibriumOptions {
  Solver forward_solver = Solver::Anderson;
  SolverOptions forward{};
  Solver backward_solver = Solver::Anderson;
  SolverOptions backward{};
  /// Throw spikelm::Error when a solve does not converge (default: report it in the stats and go on).
  bool require_convergence = false;
};

/// What the last forward and backward solves did (filled when the op is given a stats object).
struct EquilibriumStats {
  SolverResult<double> forward;
  SolverResult<double> backward;
  bool backward_ran = false;
};

namespace detail {
template <class T>
SolverResult<double> to_double_result(const SolverResult<T>& r) {
  SolverResult<double> d;
  d.solution.assign(r.solution.begin(), r.solution.end());
  d.iterations = r.iterations;
  d.abs_residual = r.abs_residual;
  d.rel_residual = r.rel_residual;
  d.converged = r.converged;
  d.diverged = r.diverged;
  d.residual_history = r.residual_history;
  d.solver = r.solver;
  return d;
}
} // namespace detail

/// Attaches implicit differentiation at a given equilibrium point z_star: records f(z_star) on the tape
/// and returns a Var holding `output` (default: f(z_star)) whose backward solves the adjoint system. Use it
/// when z_star comes from elsewhere (e.g. the rates of a simulated spiking network).
template <class T>
Var<T> implicit_at(const EquilibriumMap<T>& f, std::span<const Var<T>> inputs, const Tensor<T>& z_star,
                   const EquilibriumOptions& opt = {}, std::shared_ptr<EquilibriumStats> stats = nullptr,
                   const Tensor<T>* output = nullptr) {
  check(!inputs.empty(), "implicit_at: needs at least one input Var (to find the tape)");
  Tape<T>& tape = inputs[0].tape();
  if (!grad_enabled()) {
    const Var<T> z = tape.constant(z_star);
    return output ? tape.constant(*output) : f(tape, z, inputs);
  }
  const Var<T> zleaf = tape.leaf(z_star);
  const Var<T> fz = f(tape, zleaf, inputs);
  check(fz.value().shape() == z_star.shape(), "implicit_at: f(z) has shape ", fz.value().shape(), ", z has ",
        z_star.shape());
  Tensor<T> value = output ? *output : Tensor<T>(fz.value());
  check(value.shape() == z_star.shape(), "implicit_at: output shape ", value.shape(), " differs from z ",
        z_star.shape());
  const std::size_t first = zleaf.index(), root = fz.index();
  const Shape zshape = z_star.shape();
  return tape.push(std::move(value), {fz}, [=](Tape<T>& tp, std::size_t self) {
    const auto g0v = tp.grad(self);
    const std::vector<T> g0(g0v.begin(), g0v.end());
    const std::size_t n = g0.size();
    // u -> J^T u + g0, with J^T u from one isolated reverse pass through the recorded f
    FixedPointMap<T> adjoint = [&](const T* u, T* out) {
      tp.backward_segment(first, root, TensorView<const T>(u, zshape), true);
      const auto ju = tp.grad(first);
      for (std::size_t i = 0; i < n; ++i) out[i] = (ju.size() == n ? ju.data()[i] : T(0)) + g0[i];
    };
    SolverResult<T> res = solve_fixed_point(opt.backward_solver, adjoint, g0, opt.backward);
    if (stats) {
      stats->backward = detail::to_double_result(res);
      stats->backward_ran = true;
    }
    check(res.converged || !opt.require_convergence, "implicit backward: ", res.message());
    check(!res.diverged, "implicit backward: the adjoint solve diverged (", res.message(), ")");
    // push u* through f into the inputs and parameters, then keep the outer pass from re-running f's nodes
    tp.backward_segment(first, root, TensorView<const T>(res.solution.data(), zshape), false);
    tp.forget(first, root);
  });
}

/// Solves z* = f(z*, inputs) from z0 with the forward solver (no recording) and returns f(z*) as a Var
/// whose gradient is computed by implicit differentiation.
template <class T>
Var<T> equilibrium(const EquilibriumMap<T>& f, std::span<const Var<T>> inputs, const Tensor<T>& z0,
                   const EquilibriumOptions& opt = {}, std::shared_ptr<EquilibriumStats> stats = nullptr) {
  check(!inputs.empty(), "equilibrium: needs at least one input Var");
  // forward solve on a scratch tape holding copies of the inputs
  Tape<T> scratch;
  std::vector<Var<T>> consts;
  for (const auto& v : inputs) consts.push_back(scratch.constant(Tensor<T>(v.value())));
  const std::size_t base = scratch.size();
  const Shape zshape = z0.shape();
  FixedPointMap<T> map = [&](const T* z, T* out) {
    NoGradGuard no_grad;
    const Var<T> zc = scratch.constant(Tensor<T>(TensorView<const T>(z, zshape)));
    const Var<T> fz = f(scratch, zc, consts);
    check(fz.value().shape() == zshape, "equilibrium: f(z) has shape ", fz.value().shape(), ", z has ",
          zshape);
    std::copy(fz.value().begin(), fz.value().end(), out);
    scratch.truncate(base);
  };
  const std::vector<T> start(z0.begin(), z0.end());
  SolverResult<T> res = solve_fixed_point(opt.forward_solver, map, start, opt.forward);
  if (stats) stats->forward = detail::to_double_result(res);
  check(!res.diverged, "equilibrium: the forward solve diverged (", res.message(), ")");
  check(res.converged || !opt.require_convergence, "equilibrium: ", res.message());
  const Tensor<T> z_star(zshape, std::span<const T>(res.solution));
  return implicit_at(f, inputs, z_star, opt, stats);
}

SPIKELM_NAMESPACE_END

#endif // SPIKELM_EQUILIBRIUM_IMPLICIT_HPP
