// spikelm: fixed-point solvers z = f(z) on flat vectors — forward iteration (with damping), Anderson
// acceleration and Broyden's method (low-rank inverse Jacobian). Each reports iterations, residuals and
// whether it converged; divergence and non-convergence are reported, never silent.
#ifndef SPIKELM_EQUILIBRIUM_SOLVERS_HPP
#define SPIKELM_EQUILIBRIUM_SOLVERS_HPP

#include "../config.hpp"
#include "../core/error.hpp"

#include <Eigen/Dense>

#include <cmath>
#include <cstddef>
#include <functional>
#include <limits>
#include <string>
#include <vector>

SPIKELM_NAMESPACE_BEGIN

enum class Solver { ForwardIteration, Anderson, Broyden };

inline const char* to_string(Solver s) noexcept {
  switch (s) {
  case Solver::ForwardIteration:
    return "forward iteration";
  case Solver::Anderson:
    return "Anderson";
  case Solver::Broyden:
    return "Broyden";
  }
  return "?";
}

struct SolverOptions {
  std::size_t max_iterations = 50;
  /// Converged when ||f(z) - z|| <= tol_abs or ||f(z) - z|| / ||f(z)|| <= tol_rel.
  double tol_abs = 1e-10;
  double tol_rel = 1e-6;
  /// Mixing / damping beta: forward iteration z <- (1 - beta) z + beta f(z); Anderson mixes likewise.
  double beta = 1.0;
  /// Anderson: number of past iterates kept (m).
  std::size_t memory = 6;
  /// Anderson: Tikhonov regularisation of the least-squares system, relative to the largest squared residual
  /// difference in memory (scale-free; the DEQ code's absolute 1e-4 stalls once residuals are small).
  double lambda = 1e-4;
  /// Broyden: rank of the inverse-Jacobian update before a restart.
  std::size_t broyden_rank = 30;
};

template <class T>
struct SolverResult {
  std::vector<T> solution;
  std::size_t iterations = 0; ///< evaluations of f
  double abs_residual = std::numeric_limits<double>::infinity();
  double rel_residual = std::numeric_limits<double>::infinity();
  bool converged = false;
  bool diverged = false;                ///< a non-finite residual was met
  std::vector<double> residual_history; ///< ||f(z) - z|| at each evaluation
  Solver solver = Solver::ForwardIteration;
  /// A sentence a person can act on, e.g. "Anderson did not converge in 50 iterations (relative residual
  /// 3e-3)".
  [[nodiscard]] std::string message() const {
    if (converged)
      return detail::concat(to_string(solver), " converged in ", iterations, " iterations (residual ",
                            abs_residual, ", relative ", rel_residual, ")");
    if (diverged) return detail::concat(to_string(solver), " diverged after ", iterations, " iterations");
    return detail::concat(to_string(solver), " did not converge in ", iterations, " iterations (residual ",
                          abs_residual, ", relative ", rel_residual, ")");
  }
};

/// f writes f(z) for z (both of the vector's length).
template <class T>
using FixedPointMap = std::function<void(const T* z, T* fz)>;

namespace detail {
template <class T>
using Vec = Eigen::Matrix<T, Eigen::Dynamic, 1>;

/// Evaluates f at z, records the residual, and updates the best iterate. Returns false to stop.
template <class T>
struct Tracker {
  const FixedPointMap<T>& f;
  const SolverOptions& opt;
  SolverResult<T>& res;
  double best = std::numeric_limits<double>::infinity();
  /// fz = f(z); g = fz - z; returns true when converged or diverged (stop).
  bool evaluate(const Vec<T>& z, Vec<T>& fz, Vec<T>& g) {
    f(z.data(), fz.data());
    ++res.iterations;
    g = fz - z;
    const double an = static_cast<double>(g.norm());
    const double fn = static_cast<double>(fz.norm());
    const double rel = an / (fn + 1e-12);
    res.residual_history.push_back(an);
    if (!std::isfinite(an)) {
      res.diverged = true;
      return true;
    }
    if (an < best) { // keep the lowest-residual iterate (its image f(z), one step further)
      best = an;
      res.abs_residual = an;
      res.rel_residual = rel;
      res.solution.assign(fz.data(), fz.data() + fz.size());
    }
    if (an <= opt.tol_abs || rel <= opt.tol_rel) {
      res.converged = true;
      return true;
    }
    return false;
  }
};

inline void check_options(const SolverOptions& o) {
  check(o.max_iterations > 0, "solver: max_iterations must be positive");
  check(o.beta > 0 && o.beta <= 1, "solver: beta must be in (0, 1], got ", o.beta);
  check(o.memory > 0, "solver: Anderson memory must be positive");
  check(o.lambda >= 0, "solver: lambda must be >= 0");
}
} // namespace detail

/// z <- (1 - beta) z + beta f(z) until the residual is small.
template <class T>
SolverResult<T> forward_iteration(const FixedPointMap<T>& f, const std::vector<T>& z0,
                                  const SolverOptions& opt = {}) {
  detail::check_options(opt);
  SolverResult<T> res;
  res.solver = Solver::ForwardIteration;
  const auto n = static_cast<Eigen::Index>(z0.size());
  detail::Vec<T> z = Eigen::Map<const detail::Vec<T>>(z0.data(), n), fz(n), g(n);
  detail::Tracker<T> tr{f, opt, res};
  for (std::size_t it = 0; it < opt.max_iterations; ++it) {
    if (tr.evaluate(z, fz, g)) break;
    z = z + static_cast<T>(opt.beta) * g;
  }
  return res;
}

/// Anderson acceleration (type II, as in the DEQ literature): with the last m iterates X and images F,
/// alpha = argmin ||sum alpha_i (F_i - X_i)||^2 + lambda ||alpha||^2 subject to sum alpha_i = 1, then
/// z = beta sum alpha_i F_i + (1 - beta) sum alpha_i X_i.
template <class T>
SolverResult<T> anderson(const FixedPointMap<T>& f, const std::vector<T>& z0, const SolverOptions& opt = {}) {
  detail::check_options(opt);
  SolverResult<T> res;
  res.solver = Solver::Anderson;
  const auto n = static_cast<Eigen::Index>(z0.size());
  const auto m = static_cast<Eigen::Index>(opt.memory);
  Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic> X(n, m), F(n, m);
  detail::Vec<T> z = Eigen::Map<const detail::Vec<T>>(z0.data(), n), fz(n), g(n);
  detail::Tracker<T> tr{f, opt, res};
  for (std::size_t it = 0; it < opt.max_iterations; ++it) {
    if (tr.evaluate(z, fz, g)) break;
    const Eigen::Index k = static_cast<Eigen::Index>(it % opt.memory);
    X.col(k) = z;
    F.col(k) = fz;
    const Eigen::Index used = std::min<Eigen::Index>(static_cast<Eigen::Index>(it) + 1, m);
    if (used == 1) {
      z = z + static_cast<T>(opt.beta) * g;
      continue;
    }
    // min ||sum_i alpha_i g_i|| subject to sum_i alpha_i = 1, written in differences from the newest
    // residual g_k (alpha_i = gamma_i for i != k): min ||g_k + D gamma||, D = [g_i - g_k]. Solved by QR on
    // D stacked over sqrt(lambda * s) I, which keeps the accuracy that the normal equations G^T G lose
    // once the residuals are small (Anderson then stagnates near 1e-8).
    using Mat = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic>;
    const Eigen::Index others = used - 1;
    Mat A(n + others, others);
    const Eigen::VectorXd gk = (F.col(k) - X.col(k)).template cast<double>();
    double scale = gk.squaredNorm();
    for (Eigen::Index i = 0, c = 0; i < used; ++i) {
      if (i == k) continue;
      A.col(c).head(n) = (F.col(i) - X.col(i)).template cast<double>() - gk;
      scale = std::max(scale, A.col(c).head(n).squaredNorm());
      ++c;
    }
    A.bottomRows(others).setIdentity();
    A.bottomRows(others) *= std::sqrt(opt.lambda * std::max(scale, 1e-300));
    Eigen::VectorXd rhs = Eigen::VectorXd::Zero(n + others);
    rhs.head(n) = -gk;
    const Eigen::VectorXd gamma = A.colPivHouseholderQr().solve(rhs);
    detail::Vec<T> alpha(used);
    for (Eigen::Index i = 0, c = 0; i < used; ++i) alpha(i) = i == k ? T(0) : static_cast<T>(gamma(c++));
    alpha(k) = T(1) - alpha.sum();
    const T b = static_cast<T>(opt.beta);
    z = b * (F.leftCols(used) * alpha) + (T(1) - b) * (X.leftCols(used) * alpha);
  }
  return res;
}

/// Broyden's method on g(z) = f(z) - z with a low-rank inverse Jacobian B = -I + sum u_i v_i^T ("good"
/// Broyden update), restarted when the rank limit is reached. Returns the lowest-residual iterate.
template <class T>
SolverResult<T> broyden(const FixedPointMap<T>& f, const std::vector<T>& z0, const SolverOptions& opt = {}) {
  detail::check_options(opt);
  SolverResult<T> res;
  res.solver = Solver::Broyden;
  const auto n = static_cast<Eigen::Index>(z0.size());
  std::vector<detail::Vec<T>> us, vs;
  auto apply_b = [&](const detail::Vec<T>& x) { // B x
    detail::Vec<T> y = -x;
    for (std::size_t i = 0; i < us.size(); ++i) y += us[i] * vs[i].dot(x);
    return y;
  };
  auto apply_bt = [&](const detail::Vec<T>& x) { // x^T B, as a column
    detail::Vec<T> y = -x;
    for (std::size_t i = 0; i < us.size(); ++i) y += vs[i] * us[i].dot(x);
    return y;
  };
  detail::Vec<T> z = Eigen::Map<const detail::Vec<T>>(z0.data(), n), fz(n), g(n), fz_new(n), g_new(n);
  detail::Tracker<T> tr{f, opt, res};
  if (tr.evaluate(z, fz, g)) return res;
  while (res.iterations < opt.max_iterations) {
    const detail::Vec<T> dz = -apply_b(g); // Newton step with the inverse-Jacobian estimate
    const detail::Vec<T> z_new = z + dz;
    if (tr.evaluate(z_new, fz_new, g_new)) break;
    const detail::Vec<T> dg = g_new - g;
    const detail::Vec<T> bdg = apply_b(dg);
    const T denom = dz.dot(bdg);
    if (std::abs(static_cast<double>(denom)) > 1e-30 && us.size() < opt.broyden_rank) {
      detail::Vec<T> v = apply_bt(dz); // with the current B, before the new term is added
      us.push_back((dz - bdg) / denom);
      vs.push_back(std::move(v));
    } else {
      us.clear(), vs.clear(); // restart from B = -I
    }
    z = z_new, g = g_new;
  }
  return res;
}

/// Runs the chosen solver.
template <class T>
SolverResult<T> solve_fixed_point(Solver s, const FixedPointMap<T>& f, const std::vector<T>& z0,
                                  const SolverOptions& opt = {}) {
  switch (s) {
  case Solver::ForwardIteration:
    return forward_iteration(f, z0, opt);
  case Solver::Anderson:
    return anderson(f, z0, opt);
  case Solver::Broyden:
    return broyden(f, z0, opt);
  }
  fail("solve_fixed_point: unknown solver");
}

SPIKELM_NAMESPACE_END

#endif // SPIKELM_EQUILIBRIUM_SOLVERS_HPP
