// Tests for equilibrium/: solvers on known fixed points, acceleration on an ill-conditioned map,
// non-convergence reporting, implicit gradients against the unrolled map and finite differences, the
// spiking-equilibrium layer (straight-through without feedback, adjoint with feedback, rates -> fixed point,
// training, memory flat in T).
#include "test_util.hpp"

#include <Eigen/Dense>

using namespace spikelm;
using spikelm_test::random_vector;

namespace {
using Mat = Eigen::MatrixXd;
using Vec = Eigen::VectorXd;

Mat random_matrix(std::size_t n, std::size_t m, std::uint64_t seed, double spectral_scale) {
  const auto v = random_vector<double>(n * m, seed);
  Mat a = Eigen::Map<const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>(
      v.data(), static_cast<Eigen::Index>(n), static_cast<Eigen::Index>(m));
  if (spectral_scale > 0) a *= spectral_scale / a.jacobiSvd().singularValues()(0);
  return a;
}

SolverOptions tight(std::size_t iters) {
  SolverOptions o;
  o.max_iterations = iters;
  o.tol_rel = 1e-10;
  o.tol_abs = 1e-12;
  return o;
}

Tensor<double> to_tensor(const Mat& m) {
  Tensor<double> t({static_cast<std::size_t>(m.rows()), static_cast<std::size_t>(m.cols())});
  for (Eigen::Index i = 0; i < m.rows(); ++i)
    for (Eigen::Index j = 0; j < m.cols(); ++j) t(i, j) = m(i, j);
  return t;
}
} // namespace

TEST_CASE("solvers reach the fixed point of a contractive linear map") {
  const std::size_t n = 20;
  const Mat a = random_matrix(n, n, 1, 0.6);
  const Vec b = Vec::Map(random_vector<double>(n, 2).data(), n);
  const Vec exact = (Mat::Identity(n, n) - a).lu().solve(b);
  FixedPointMap<double> f = [&](const double* z, double* out) { Vec::Map(out, n) = a * Vec::Map(z, n) + b; };
  for (Solver s : {Solver::ForwardIteration, Solver::Anderson, Solver::Broyden}) {
    const auto r = solve_fixed_point(s, f, std::vector<double>(n, 0.0), tight(200));
    INFO(r.message());
    CHECK(r.converged);
    CHECK_FALSE(r.diverged);
    CHECK((Vec::Map(r.solution.data(), n) - exact).norm() < 1e-8);
    CHECK(r.residual_history.size() == r.iterations);
    CHECK(r.message().find("converged") != std::string::npos);
  }
}

TEST_CASE("solvers reach the fixed point of a contractive nonlinear map") {
  const std::size_t n = 16;
  const Mat w = random_matrix(n, n, 3, 0.8);
  const Vec x = Vec::Map(random_vector<double>(n, 4).data(), n);
  FixedPointMap<double> f = [&](const double* z, double* out) {
    Vec::Map(out, n) = (w * Vec::Map(z, n) + x).array().tanh().matrix();
  };
  for (Solver s : {Solver::ForwardIteration, Solver::Anderson, Solver::Broyden}) {
    const auto r = solve_fixed_point(s, f, std::vector<double>(n, 0.0), tight(300));
    INFO(r.message());
    REQUIRE(r.converged);
    Vec fz(n);
    f(r.solution.data(), fz.data());
    CHECK((fz - Vec::Map(r.solution.data(), n)).norm() < 1e-8);
  }
}

TEST_CASE("Anderson and Broyden need fewer iterations than forward iteration on an ill-conditioned map") {
  const std::size_t n = 30;
  // A = Q diag(0.5 .. 0.995) Q^T: forward iteration contracts by 0.995 per step on the slowest direction
  const Mat q = random_matrix(n, n, 5, 0).householderQr().householderQ();
  Vec d(n);
  for (std::size_t i = 0; i < n; ++i)
    d(i) = 0.5 + 0.495 * static_cast<double>(i) / static_cast<double>(n - 1);
  const Mat a = q * d.asDiagonal() * q.transpose();
  const Vec b = Vec::Map(random_vector<double>(n, 6).data(), n);
  FixedPointMap<double> f = [&](const double* z, double* out) { Vec::Map(out, n) = a * Vec::Map(z, n) + b; };
  SolverOptions o = tight(5000);
  o.tol_rel = 1e-8;
  const auto fwd = forward_iteration(f, std::vector<double>(n, 0.0), o);
  const auto and_ = anderson(f, std::vector<double>(n, 0.0), o);
  const auto bro = broyden(f, std::vector<double>(n, 0.0), o);
  INFO("forward ", fwd.iterations, ", Anderson ", and_.iterations, ", Broyden ", bro.iterations);
  REQUIRE(fwd.converged);
  REQUIRE(and_.converged);
  REQUIRE(bro.converged);
  CHECK(and_.iterations * 5 < fwd.iterations);
  CHECK(bro.iterations * 5 < fwd.iterations);
  MESSAGE("iterations to relative residual 1e-8: forward ", fwd.iterations, ", Anderson ", and_.iterations,
          ", Broyden ", bro.iterations);
}

TEST_CASE("an expanding map is reported as not converged, NaN as diverged") {
  // z = 2 z + 1 expands away from its (repelling) fixed point -1: forward iteration cannot reach it
  FixedPointMap<double> f = [](const double* z, double* out) { out[0] = 2 * z[0] + 1; };
  const auto fi = forward_iteration(f, {0.0}, tight(30));
  CHECK_FALSE(fi.converged);
  CHECK(fi.message().find("did not converge") != std::string::npos);
  CHECK(fi.residual_history.back() > fi.residual_history.front());
  // z = exp(z) + 0.5 expands and has no fixed point at all: no solver may claim one
  FixedPointMap<double> g = [](const double* z, double* out) { out[0] = std::exp(z[0]) + 0.5; };
  for (Solver s : {Solver::ForwardIteration, Solver::Anderson, Solver::Broyden}) {
    const auto r = solve_fixed_point(s, g, {0.0}, tight(30));
    INFO(r.message());
    CHECK_FALSE(r.converged);
  }
  FixedPointMap<double> nan_map = [](const double*, double* out) { out[0] = std::nan(""); };
  const auto r = anderson(nan_map, {0.0}, tight(10));
  CHECK(r.diverged);
  CHECK_FALSE(r.converged);
  CHECK(r.message().find("diverged") != std::string::npos);
  SolverOptions bad;
  bad.beta = 0;
  CHECK_THROWS_AS(forward_iteration(f, {0.0}, bad), Error);
}

namespace {
/// f(z) = tanh(z W^T + x U^T + b): feedback through W.
struct TanhMap {
  Parameter<double>*w, *u, *b;
  Var<double> operator()(Tape<double>& t, const Var<double>& z, std::span<const Var<double>> in) const {
    return tanh(add(linear(z, t.param(*w)), linear(in[0], t.param(*u), t.param(*b))));
  }
};
} // namespace

TEST_CASE("implicit gradient equals the unrolled map's gradient and finite differences (feedback on)") {
  const std::size_t n = 8, m = 5, batch = 3;
  ParameterSet<double> ps;
  auto& w = ps.add("w", to_tensor(random_matrix(n, n, 7, 0.7)));
  auto& u = ps.add("u", to_tensor(random_matrix(n, m, 8, 1.0)));
  auto& b = ps.add("b", Tensor<double>({n}, random_vector<double>(n, 9)));
  const TanhMap fmap{&w, &u, &b};
  const Tensor<double> x0({batch, m}, random_vector<double>(batch * m, 10));
  const Tensor<double> weights({batch, n}, random_vector<double>(batch * n, 11));
  EquilibriumOptions opt;
  opt.forward = tight(200);
  opt.backward = tight(200);
  opt.require_convergence = true;

  // implicit
  ps.zero_grad();
  Tape<double> t;
  const auto x = t.leaf(x0);
  const std::vector<Var<double>> inputs{x};
  auto stats = std::make_shared<EquilibriumStats>();
  const auto z = equilibrium<double>(fmap, inputs, Tensor<double>({batch, n}), opt, stats);
  t.backward(sum(mul(z, t.constant(weights))));
  CHECK(stats->forward.converged);
  CHECK(stats->backward_ran);
  CHECK(stats->backward.converged);
  const Tensor<double> gx(x.grad()), gw(w.grad), gu(u.grad), gb(b.grad);

  // unrolled: 150 applications of f from zero, backpropagated through all of them
  ps.zero_grad();
  Tape<double> t2;
  const auto x2 = t2.leaf(x0);
  const std::vector<Var<double>> in2{x2};
  Var<double> zz = t2.constant(Tensor<double>({batch, n}));
  for (int k = 0; k < 150; ++k) zz = fmap(t2, zz, in2);
  t2.backward(sum(mul(zz, t2.constant(weights))));
  auto rel = [](TensorView<const double> a, TensorView<const double> bb) {
    double num = 0, den = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
      num = std::max(num, std::abs(a.data()[i] - bb.data()[i]));
      den = std::max(den, std::abs(bb.data()[i]));
    }
    return num / den;
  };
  CHECK(rel(gx, x2.grad()) < 1e-4);
  CHECK(rel(gw, w.grad) < 1e-4);
  CHECK(rel(gu, u.grad) < 1e-4);
  CHECK(rel(gb, b.grad) < 1e-4);

  // central finite differences of the solved loss with respect to x and W
  auto loss_at = [&](const Tensor<double>& xv) {
    NoGradGuard ng;
    Tape<double> t3;
    const std::vector<Var<double>> in3{t3.constant(xv)};
    const auto zs = equilibrium<double>(fmap, in3, Tensor<double>({batch, n}), opt);
    double l = 0;
    for (std::size_t i = 0; i < zs.value().size(); ++i) l += zs.value().data()[i] * weights.data()[i];
    return l;
  };
  const double h = 1e-6;
  double worst = 0, scale = 0;
  for (std::size_t i = 0; i < x0.size(); ++i) {
    Tensor<double> xp = x0, xm = x0;
    xp.data()[i] += h, xm.data()[i] -= h;
    const double fd = (loss_at(xp) - loss_at(xm)) / (2 * h);
    worst = std::max(worst, std::abs(fd - gx.data()[i]));
    scale = std::max(scale, std::abs(fd));
  }
  CHECK(worst / scale < 1e-4);
  double worst_w = 0, scale_w = 0;
  for (std::size_t i = 0; i < w.size(); ++i) {
    const double orig = w.value.data()[i];
    w.value.data()[i] = orig + h;
    const double lp = loss_at(x0);
    w.value.data()[i] = orig - h;
    const double lm = loss_at(x0);
    w.value.data()[i] = orig;
    const double fd = (lp - lm) / (2 * h);
    worst_w = std::max(worst_w, std::abs(fd - gw.data()[i]));
    scale_w = std::max(scale_w, std::abs(fd));
  }
  CHECK(worst_w / scale_w < 1e-4);
}

namespace {
struct LayerFixture {
  ParameterSet<double> ps;
  SpikingEquilibriumLayer<double> layer;
  LayerFixture(std::size_t n_in, std::size_t n, bool feedback, std::size_t steps) {
    layer.feedforward = &ps.add("F", to_tensor(random_matrix(n, n_in, 21, 0) * 0.4));
    layer.bias = &ps.add("b", Tensor<double>({n}, 0.3));
    if (feedback) layer.feedback = &ps.add("Ws", to_tensor(random_matrix(n, n, 22, 0.5)));
    layer.steps = steps;
    layer.options.forward = tight(300);
    layer.options.backward = tight(300);
  }
};
} // namespace

TEST_CASE("spiking layer without feedback: straight-through gradient of the clamp map") {
  LayerFixture fx(6, 10, false, 32);
  const Tensor<double> x0({4, 6}, random_vector<double>(24, 23));
  const Tensor<double> g({4, 10}, random_vector<double>(40, 24));
  Tape<double> t;
  const auto x = t.leaf(x0);
  auto stats = std::make_shared<EquilibriumStats>();
  const auto a = fx.layer.forward(x, stats);
  t.backward(sum(mul(a, t.constant(g))));
  CHECK(stats->backward.iterations <= 2); // J = 0: the adjoint is g itself
  // by hand: dL/dpre = g * [0 <= pre / theta <= 1] / theta;  dL/dx = dL/dpre F;  dL/db = sum over rows
  const auto& F = fx.layer.feedforward->value;
  for (std::size_t r = 0; r < 4; ++r)
    for (std::size_t k = 0; k < 6; ++k) {
      double want = 0;
      for (std::size_t j = 0; j < 10; ++j) {
        double pre = fx.layer.bias->value(j);
        for (std::size_t q = 0; q < 6; ++q) pre += x0(r, q) * F(j, q);
        if (pre >= 0 && pre <= 1) want += g(r, j) * F(j, k);
      }
      CHECK(x.grad()(r, k) == doctest::Approx(want).epsilon(1e-10));
    }
  // the value is the simulated rate: multiples of 1/T in [0, 1]
  for (double v : a.value()) {
    CHECK(v >= 0.0);
    CHECK(v <= 1.0);
    CHECK(std::abs(v * 32 - std::round(v * 32)) < 1e-9);
  }
}

TEST_CASE("spiking layer with feedback: rates approach the map's fixed point as T grows") {
  const Tensor<double> x0({3, 6}, random_vector<double>(18, 25));
  std::vector<double> errors;
  for (std::size_t steps : {8u, 32u, 128u, 512u, 2048u}) {
    LayerFixture fx(6, 12, true, steps);
    const Tensor<double> rates = fx.layer.simulate(x0);
    // the map's fixed point
    Tape<double> t;
    const std::vector<Var<double>> in{t.constant(x0)};
    EquilibriumMap<double> f = [&](Tape<double>& tp, const Var<double>& a, std::span<const Var<double>> xs) {
      return fx.layer.map(tp, a, xs[0]);
    };
    NoGradGuard ng;
    const auto star = equilibrium<double>(f, in, Tensor<double>({3, 12}), fx.layer.options);
    double err = 0;
    for (std::size_t i = 0; i < rates.size(); ++i)
      err = std::max(err, std::abs(rates.data()[i] - star.value().data()[i]));
    errors.push_back(err);
    MESSAGE("T = ", steps, ": max |rate - fixed point| = ", err);
  }
  CHECK(errors.back() < errors.front());
  CHECK(errors.back() < 0.02);
}

TEST_CASE("spiking layer with feedback: implicit gradient equals the unrolled clamp map at the fixed point") {
  LayerFixture fx(5, 9, true, 64);
  const Tensor<double> x0({2, 5}, random_vector<double>(10, 26));
  const Tensor<double> g({2, 9}, random_vector<double>(18, 27));
  EquilibriumMap<double> f = [&](Tape<double>& tp, const Var<double>& a, std::span<const Var<double>> xs) {
    return fx.layer.map(tp, a, xs[0]);
  };
  fx.ps.zero_grad();
  Tape<double> t;
  const auto x = t.leaf(x0);
  const std::vector<Var<double>> in{x};
  const auto a = equilibrium<double>(f, in, Tensor<double>({2, 9}), fx.layer.options);
  t.backward(sum(mul(a, t.constant(g))));
  const Tensor<double> gx(x.grad()), gws(fx.layer.feedback->grad);
  fx.ps.zero_grad();
  Tape<double> t2;
  const auto x2 = t2.leaf(x0);
  const std::vector<Var<double>> in2{x2};
  Var<double> z = t2.constant(Tensor<double>({2, 9}));
  for (int k = 0; k < 200; ++k) z = fx.layer.map(t2, z, x2);
  t2.backward(sum(mul(z, t2.constant(g))));
  for (std::size_t i = 0; i < gx.size(); ++i)
    CHECK(gx.data()[i] == doctest::Approx(x2.grad().data()[i]).epsilon(1e-6));
  for (std::size_t i = 0; i < gws.size(); ++i)
    CHECK(gws.data()[i] == doctest::Approx(fx.layer.feedback->grad.data()[i]).epsilon(1e-6).scale(1e-3));
}

TEST_CASE("training a classifier through the spiking-equilibrium layer (feedback on) lowers the loss") {
  const std::size_t n_in = 8, n = 24, classes = 3, rows = 48;
  ParameterSet<double> ps;
  SpikingEquilibriumLayer<double> layer;
  layer.feedforward = &ps.add("F", to_tensor(random_matrix(n, n_in, 31, 0) * 0.3));
  layer.bias = &ps.add("b", Tensor<double>({n}, 0.4));
  layer.feedback = &ps.add("Ws", to_tensor(random_matrix(n, n, 32, 0.3)));
  layer.steps = 32;
  auto& head = ps.add("head", to_tensor(random_matrix(classes, n, 33, 0) * 0.5));
  Tensor<double> x({rows, n_in});
  std::vector<std::int64_t> y(rows);
  Rng rng(34);
  for (std::size_t r = 0; r < rows; ++r) {
    y[r] = static_cast<std::int64_t>(r % classes);
    for (std::size_t k = 0; k < n_in; ++k)
      x(r, k) = rng.normal(0.0, 0.5) + (k % classes == r % classes ? 1.5 : 0.0);
  }
  Adam<double> opt(ps, {.lr = 0.03});
  double first = 0, last = 0;
  for (int step = 0; step < 60; ++step) {
    ps.zero_grad();
    Tape<double> t;
    const auto a = layer.forward(t.constant(x));
    const auto loss = cross_entropy(linear(a, t.param(head)), y);
    t.backward(loss);
    opt.step();
    if (step == 0) first = loss.value().data()[0];
    last = loss.value().data()[0];
  }
  MESSAGE("loss ", first, " -> ", last);
  CHECK(last < 0.6 * first);
}

TEST_CASE("implicit training memory does not grow with T") {
  std::vector<std::size_t> bytes;
  for (std::size_t steps : {8u, 32u, 128u}) {
    LayerFixture fx(6, 16, true, steps);
    Tape<double> t;
    const auto a = fx.layer.forward(t.constant(Tensor<double>({4, 6}, 0.5)));
    t.backward(sum(a));
    bytes.push_back(t.memory_bytes());
  }
  CHECK(bytes[0] == bytes[1]);
  CHECK(bytes[1] == bytes[2]);
  LayerFixture fx(6, 16, true, 8);
  CHECK_THROWS_AS((void)fx.layer.simulate(Tensor<double>({4, 5})), Error);
}
