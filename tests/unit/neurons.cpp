// Tests for neuron/: conformance with SpikingJelly, snnTorch, Norse, SpikingBERT's IF and EvNN's unit
// (fixtures from tests/reference/neurons.py), surrogate formulas, detach-reset, IF rate convergence,
// single step vs multi-step, errors.
#include "fixtures.hpp"
#include "test_util.hpp"

#include <algorithm>
#include <numbers>

using namespace spikelm;
using spikelm_test::close;
using spikelm_test::Fixtures;

namespace {
const Fixtures& fixtures() {
  static const Fixtures f("reference/fixtures/neurons.txt");
  return f;
}

double max_abs(const std::vector<double>& v) {
  double m = 0;
  for (double x : v) m = std::max(m, std::abs(x));
  return m;
}

/// Gradients within 1e-5 relative (to the tensor's scale for entries near zero).
void require_grad_close(const double* got, const std::vector<double>& want, const std::string& what) {
  const double scale = std::max(max_abs(want), 1e-12);
  for (std::size_t i = 0; i < want.size(); ++i) {
    INFO(what, " element ", i, ": got ", got[i], ", want ", want[i]);
    REQUIRE(close(got[i], want[i], 1e-5, 1e-7 * scale));
  }
}

struct ParamCheck {
  std::string name;      // fixture tensor, e.g. "grad_theta"
  std::size_t index;     // position in the neuron's parameter gradients
  double (*map)(double); // transforms our gradient into the fixture's parameterisation (nullptr: identity)
};

template <class Neuron>
void check_conformance(const std::string& c, const Neuron& neuron, const std::vector<ParamCheck>& params,
                       bool has_current = false) {
  const auto& f = fixtures();
  const auto x = f[c + "/x"].as<double>();
  const auto g = f[c + "/g"].as<double>();
  const auto& want_s = f[c + "/spikes"].values;
  const auto& want_v = f[c + "/v"].values;
  const std::size_t steps = x.dim(0), n = x.size() / steps;

  // multi-step forward: identical spikes
  NeuronTrace<double> trace;
  const auto spikes = neuron.forward(x, &trace);
  for (std::size_t i = 0; i < want_s.size(); ++i) {
    INFO(c, " spike ", i);
    REQUIRE(spikes.data()[i] == want_s[i]);
  }
  // single steps: the same spikes, and the membrane (and synaptic current) after every step
  auto state = neuron.initial_state(n);
  std::vector<double> s_t(n);
  for (std::size_t t = 0; t < steps; ++t) {
    neuron.step(x.data() + t * n, state, s_t.data());
    for (std::size_t i = 0; i < n; ++i) {
      INFO(c, " step ", t, " neuron ", i);
      REQUIRE(s_t[i] == want_s[t * n + i]);
      REQUIRE(std::abs(state(0, i) - want_v[t * n + i]) <= 1e-6);
      if (has_current) REQUIRE(std::abs(state(1, i) - f[c + "/i"].values[t * n + i]) <= 1e-6);
    }
  }
  // backward through time
  typename Neuron::ParamGrads pg{};
  const auto gx = neuron.backward(g, trace, &pg);
  require_grad_close(gx.data(), f[c + "/grad_x"].values, c + " grad_x");
  for (const auto& p : params) {
    const double ours = p.map ? p.map(pg[p.index]) : pg[p.index];
    const double want = f[c + "/" + p.name].values.at(0);
    INFO(c, " ", p.name, ": got ", ours, ", want ", want);
    CHECK(close(ours, want, 1e-5, 1e-9));
  }
}
} // namespace

TEST_CASE("conformance: SpikingJelly LIF, hard reset (SpikeGPT's neuron)") {
  check_conformance("sj_lif_hard", SpikeGptLIF<double>{},
                    {{"grad_theta", 0, nullptr}, {"grad_inv_tau", 1, nullptr}});
}

TEST_CASE("conformance: SpikingJelly LIF, soft reset, detached, Sigmoid surrogate") {
  LIF<double, reset::Subtract, surrogate::Sigmoid<ratio<4>>, fire::GreaterEqual, true> lif(3.0);
  check_conformance("sj_lif_soft_detach", lif, {{"grad_theta", 0, nullptr}, {"grad_inv_tau", 1, nullptr}});
}

TEST_CASE("conformance: SpikingJelly ParametricLIF") {
  static const PLIF<double> plif(2.0);
  check_conformance("sj_plif", plif,
                    {{"grad_theta", 0, nullptr}, {"grad_w", 1, [](double g) { return plif.grad_w(g); }}});
}

TEST_CASE("conformance: SpikingBERT IF, subtract reset") {
  check_conformance("if_subtract", SpikingBertIF<double>{}, {{"grad_theta", 0, nullptr}});
}

TEST_CASE("conformance: snnTorch Leaky, subtract reset") {
  check_conformance("snntorch_leaky_subtract", SnnTorchLeaky<double>(0.8),
                    {{"grad_theta", 0, nullptr}, {"grad_beta", 1, nullptr}});
}

TEST_CASE("conformance: snnTorch Leaky, zero reset, fast sigmoid") {
  Leaky<double, reset::Hard<ratio<0>>, surrogate::FastSigmoid<ratio<25>>> leaky(0.7);
  check_conformance("snntorch_leaky_zero", leaky, {{"grad_theta", 0, nullptr}, {"grad_beta", 1, nullptr}});
}

TEST_CASE("conformance: Norse LIF, Norse <= 1.0 lif_feed_forward_step order") {
  NorseLIF<double, surrogate::FastSigmoid<ratio<100>>, fire::Greater, NorseInput::AfterVoltageUpdate> lif;
  check_conformance("norse_lif", lif, {{"grad_v_th", 0, nullptr}}, true);
}

TEST_CASE("conformance: Norse LIF, Norse >= 1.1 order (input before the voltage update, the default)") {
  check_conformance("norse_lif_before", NorseLIFCell<double>{}, {{"grad_v_th", 0, nullptr}}, true);
}

TEST_CASE("surrogate gradients equal their formulas and the reference") {
  const auto& f = fixtures();
  const auto& xs = f["surrogates/x"].values;
  auto check_one = [&](const std::string& name, auto grad_fn, auto formula) {
    const auto& want = f["surrogates/" + name].values;
    for (std::size_t i = 0; i < xs.size(); ++i) {
      INFO(name, " at x = ", xs[i]);
      REQUIRE(close(grad_fn(xs[i]), want[i], 1e-6, 1e-7));
      REQUIRE(close(grad_fn(xs[i]), formula(xs[i]), 1e-6, 1e-7));
      REQUIRE(close(double(grad_fn(float(xs[i]))), want[i], 1e-5, 1e-6));
    }
  };
  const double pi = std::numbers::pi;
  check_one(
      "atan_2", [](auto x) { return surrogate::ATan<ratio<2>>::grad(x); },
      [&](double x) { return 1.0 / (1 + (pi * x) * (pi * x)); });
  check_one(
      "sigmoid_4", [](auto x) { return surrogate::Sigmoid<ratio<4>>::grad(x); },
      [](double x) {
        const double s = 1 / (1 + std::exp(-4 * x));
        return 4 * s * (1 - s);
      });
  check_one(
      "fastsigmoid_25", [](auto x) { return surrogate::FastSigmoid<ratio<25>>::grad(x); },
      [](double x) { return 1 / ((25 * std::abs(x) + 1) * (25 * std::abs(x) + 1)); });
  check_one(
      "fastsigmoid_100", [](auto x) { return surrogate::FastSigmoid<ratio<100>>::grad(x); },
      [](double x) { return 1 / ((100 * std::abs(x) + 1) * (100 * std::abs(x) + 1)); });
  check_one(
      "triangle_0.7_1", [](auto x) { return surrogate::Triangle<ratio<7, 10>, ratio<1>>::grad(x); },
      [](double x) { return 0.7 * std::max(0.0, 1 - std::abs(x)); });
  check_one(
      "triangle_3.6_3.6", [](auto x) { return surrogate::Triangle<ratio<18, 5>, ratio<18, 5>>::grad(x); },
      [](double x) { return double(3.6f) * std::max(0.0, 1 - double(3.6f) * std::abs(x)); });
  check_one(
      "pwquad_1", [](auto x) { return surrogate::PiecewiseQuadratic<ratio<1>>::grad(x); },
      [](double x) { return std::abs(x) <= 1 ? 1 - std::abs(x) : 0.0; });
  check_one(
      "pwquad_2", [](auto x) { return surrogate::PiecewiseQuadratic<ratio<2>>::grad(x); },
      [](double x) { return std::abs(x) <= 0.5 ? 2 - 4 * std::abs(x) : 0.0; });
  CHECK(surrogate::StraightThrough::grad(3.0) == 1.0);
}

TEST_CASE("EGRU threshold unit matches the reference") {
  const auto& f = fixtures();
  const auto c = f["egru_unit/c"].as<double>();
  const auto theta = f["egru_unit/theta"].as<double>();
  const auto dy = f["egru_unit/dy"].as<double>();
  const auto dh = f["egru_unit/dh"].as<double>();
  const std::size_t rows = c.dim(0), n = c.dim(1);
  Tensor<double> y(c.shape()), h(c.shape()), dc(c.shape()), dtheta({n});
  EgruThresholdUnit<double>::forward(c.data(), theta.data(), y.data(), h.data(), rows, n);
  EgruThresholdUnit<double>::backward(c.data(), theta.data(), dy.data(), dh.data(), dc.data(), dtheta.data(),
                                      rows, n);
  spikelm_test::require_close(y.data(), f["egru_unit/y"].values.data(), y.size(), 1e-12, 1e-12, "y");
  spikelm_test::require_close(h.data(), f["egru_unit/h"].values.data(), h.size(), 1e-12, 1e-12, "h");
  require_grad_close(dc.data(), f["egru_unit/grad_c"].values, "grad_c");
  require_grad_close(dtheta.data(), f["egru_unit/grad_theta"].values, "grad_theta");
  Tensor<double> th({3}, {-0.5, 0.5, 1.5});
  EgruThresholdUnit<double>::clamp_thresholds(th.data(), 3);
  CHECK(th(0) == 0.0);
  CHECK(th(1) == 0.5);
  CHECK(th(2) == 1.0);
}

TEST_CASE("detach-reset changes the gradient exactly as specified (hand-computed IF)") {
  // IF, theta = 1, ATan(2): x = (1.2, 0.5). Step 1: H = 1.2, S = 1, V = 0.2. Step 2: H = 0.7, S = 0.
  // Loss = S_2. dL/dH_2 = sg(-0.3); dL/dV_1 = sg(-0.3).
  //   not detached: dL/dH_1 = sg(-0.3) (1 - theta sg(0.2));  detached: dL/dH_1 = sg(-0.3).
  Tensor<double> x({2, 1}, {1.2, 0.5}), g({2, 1}, {0.0, 1.0});
  const double sg2 = surrogate::ATan<ratio<2>>::grad(-0.3), sg1 = surrogate::ATan<ratio<2>>::grad(0.2);
  IF<double, reset::Subtract, surrogate::ATan<ratio<2>>, fire::GreaterEqual, false> attached;
  IF<double, reset::Subtract, surrogate::ATan<ratio<2>>, fire::GreaterEqual, true> detached;
  NeuronTrace<double> ta, td;
  const auto sa = attached.forward(x, &ta);
  (void)detached.forward(x, &td);
  CHECK(sa(0, 0) == 1.0);
  CHECK(sa(1, 0) == 0.0);
  const auto ga = attached.backward(g, ta), gd = detached.backward(g, td);
  CHECK(ga(1, 0) == doctest::Approx(sg2).epsilon(1e-14));
  CHECK(gd(1, 0) == doctest::Approx(sg2).epsilon(1e-14));
  CHECK(ga(0, 0) == doctest::Approx(sg2 * (1 - sg1)).epsilon(1e-14));
  CHECK(gd(0, 0) == doctest::Approx(sg2).epsilon(1e-14));
  // hard reset: dV/dH = (1 - S) + (V_reset - H) sg when attached, (1 - S) when detached
  IF<double, reset::Hard<ratio<0>>, surrogate::ATan<ratio<2>>, fire::GreaterEqual, false> hard_att;
  IF<double, reset::Hard<ratio<0>>, surrogate::ATan<ratio<2>>, fire::GreaterEqual, true> hard_det;
  NeuronTrace<double> ha, hd;
  (void)hard_att.forward(x, &ha);
  (void)hard_det.forward(x, &hd);
  const double sg2h = surrogate::ATan<ratio<2>>::grad(0.5 - 1.0); // after a hard reset V_1 = 0, H_2 = 0.5
  CHECK(hard_att.backward(g, ha)(0, 0) == doctest::Approx(sg2h * (-1.2 * sg1)).epsilon(1e-14));
  CHECK(hard_det.backward(g, hd)(0, 0) == doctest::Approx(0.0));
}

TEST_CASE("IF rate converges to clamp(I / theta, 0, 1) within 1/T") {
  for (double theta : {1.0, 0.7}) {
    SpikingBertIF<double> neuron(theta);
    for (double current : {-0.3, 0.0, 0.1, 0.37, 0.5, 0.93, 1.0, 1.5}) {
      const double target = std::clamp(current / theta, 0.0, 1.0);
      for (std::size_t steps : {4u, 16u, 64u, 256u, 1024u}) {
        Tensor<double> x({steps, 1}, current);
        const auto rate = average_rate(neuron.forward(x));
        INFO("theta ", theta, " I ", current, " T ", steps, " rate ", rate(0));
        REQUIRE(std::abs(rate(0) - target) <= 1.0 / static_cast<double>(steps) + 1e-12);
      }
    }
  }
}

TEST_CASE_TEMPLATE("multi-step forward equals repeated single steps, SIMD equals scalar", T, float, double) {
  Tensor<T> x({12, 3, 37});
  Rng(5).fill_uniform(x.span(), T(-0.5), T(2));
  SpikeGptLIF<T> lif;
  auto state = lif.initial_state(3 * 37);
  const auto spikes = lif.forward(x, nullptr, &state);
  auto s1 = lif.initial_state(3 * 37), s2 = lif.initial_state(3 * 37);
  std::vector<T> o1(3 * 37), o2(3 * 37);
  for (std::size_t t = 0; t < 12; ++t) {
    lif.step(x.data() + t * 111, s1, o1.data());
    lif.template step<simd::scalar_arch>(x.data() + t * 111, s2, o2.data());
    for (std::size_t i = 0; i < 111; ++i) {
      REQUIRE(o1[i] == spikes.data()[t * 111 + i]);
      REQUIRE(o2[i] == o1[i]);
    }
  }
  for (std::size_t i = 0; i < 111; ++i) REQUIRE(state(0, i) == s1(0, i));
  // packed spikes
  const auto packed = SpikeTensor::from_dense(spikes);
  CHECK(packed.steps() == 12);
  CHECK(packed.count() == static_cast<std::size_t>(std::count(spikes.begin(), spikes.end(), T(1))));
}

TEST_CASE("leak-weighted and average rates") {
  Tensor<double> s({3, 2}, {1, 0, 0, 1, 1, 1});
  const auto a = average_rate(s);
  CHECK(a(0) == doctest::Approx(2.0 / 3));
  CHECK(a(1) == doctest::Approx(2.0 / 3));
  const auto w = leak_weighted_rate(s, 0.5); // weights 0.25, 0.5, 1 over t = 1..3
  CHECK(w(0) == doctest::Approx((0.25 + 1) / 1.75));
  CHECK(w(1) == doctest::Approx((0.5 + 1) / 1.75));
  CHECK_THROWS_AS((void)leak_weighted_rate(s, 0.0), Error);
  CHECK_THROWS_AS((void)average_rate(Tensor<double>({0, 2})), Error);
}

TEST_CASE("neuron errors name what is wrong") {
  CHECK_THROWS_WITH_AS(SpikeGptLIF<float>(0.5f), doctest::Contains("tau"), Error);
  CHECK_THROWS_AS(SpikingBertIF<float>(-1.f), Error);
  SpikeGptLIF<float> lif;
  CHECK_THROWS_WITH_AS((void)lif.forward(Tensor<float>({5})), doctest::Contains("time axis"), Error);
  NeuronTrace<float> tr;
  (void)lif.forward(Tensor<float>({4, 3}), &tr);
  CHECK_THROWS_WITH_AS((void)lif.backward(Tensor<float>({4, 2}), tr), doctest::Contains("[4, 2]"), Error);
  auto st = lif.initial_state(7);
  CHECK_THROWS_AS((void)lif.forward(Tensor<float>({4, 3}), nullptr, &st), Error);
}
