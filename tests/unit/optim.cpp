// Tests for train/: optimizer trajectories over 10 steps against torch.optim (fixtures from
// tests/reference/optim_losses.py, to 1e-6 relative), schedules, clipping, errors.
#include "fixtures.hpp"
#include "test_util.hpp"

#include <cmath>

using namespace spikelm;

namespace {
const spikelm_test::Fixtures& fx() {
  static const spikelm_test::Fixtures f("reference/fixtures/optim_losses.txt");
  return f;
}

/// Runs 10 steps with the gradient rule of the fixture script and compares every step.
template <class Step>
void run_case(const std::string& name, ParameterSet<double>& ps, OptimizerBase<double>& opt, Step step,
              double clip = 0) {
  const auto& f = fx();
  const auto& want_p = f["optim/" + name + "/p"].values;
  const auto& want_q = f["optim/" + name + "/q"].values;
  const auto& want_lr = f["optim/" + name + "/lr"].values;
  auto& p = ps["p"];
  auto& q = ps["q"];
  for (std::size_t k = 0; k < 10; ++k) {
    for (std::size_t i = 0; i < p.size(); ++i) {
      const double v = p.value.data()[i];
      p.grad.data()[i] = std::sin(3 * v) + 0.1 * v + 0.05 * static_cast<double>(k + 1);
    }
    for (std::size_t i = 0; i < q.size(); ++i) {
      const double v = q.value.data()[i];
      q.grad.data()[i] = std::cos(2 * v) - 0.2 * v;
    }
    if (clip > 0) {
      const double norm = clip_grad_norm(ps, clip);
      CHECK(norm == doctest::Approx(f["optim/" + name + "/norm"].values[k]).epsilon(1e-12));
    }
    INFO(name, " step ", k);
    CHECK(opt.lr() == doctest::Approx(want_lr[k]).epsilon(1e-12));
    step();
    for (std::size_t i = 0; i < p.size(); ++i)
      REQUIRE(spikelm_test::close(p.value.data()[i], want_p[k * p.size() + i], 1e-6, 1e-12));
    for (std::size_t i = 0; i < q.size(); ++i)
      REQUIRE(spikelm_test::close(q.value.data()[i], want_q[k * q.size() + i], 1e-6, 1e-12));
  }
}

ParameterSet<double> make_params() {
  ParameterSet<double> ps;
  auto& p = ps.add("p", fx()["optim/p0"].as<double>());
  auto& q = ps.add("q", fx()["optim/q0"].as<double>());
  p.decay = true; // p is rank 1; the reference decays it in every case that has weight decay
  q.decay = true;
  return ps;
}
} // namespace

TEST_CASE("SGD trajectories match torch.optim.SGD") {
  {
    auto ps = make_params();
    SGD<double> opt(ps, {.lr = 0.1});
    run_case("sgd", ps, opt, [&] { opt.step(); });
  }
  {
    auto ps = make_params();
    SGD<double> opt(ps, {.lr = 0.1, .momentum = 0.9, .weight_decay = 0.01});
    run_case("sgd_momentum", ps, opt, [&] { opt.step(); });
  }
  {
    auto ps = make_params();
    SGD<double> opt(ps, {.lr = 0.05, .momentum = 0.9, .nesterov = true});
    run_case("sgd_nesterov", ps, opt, [&] { opt.step(); });
  }
  {
    auto ps = make_params();
    SGD<double> opt(ps, {.lr = 0.1});
    opt.set_schedule(schedule::linear_warmup(4));
    run_case("sgd_linear_warmup", ps, opt, [&] { opt.step(); });
  }
}

TEST_CASE("Adam and AdamW trajectories match torch.optim") {
  {
    auto ps = make_params();
    Adam<double> opt(ps, {.lr = 0.01});
    run_case("adam", ps, opt, [&] { opt.step(); });
  }
  {
    auto ps = make_params();
    Adam<double> opt(ps, {.lr = 0.01, .weight_decay = 0.1});
    run_case("adam_l2", ps, opt, [&] { opt.step(); });
  }
  {
    auto ps = make_params();
    ps["q"].decay = false; // the second parameter group has weight decay 0 (as biases and norms)
    AdamW<double> opt(ps, {.lr = 0.01, .beta1 = 0.9, .beta2 = 0.98, .eps = 1e-6, .weight_decay = 0.1});
    run_case("adamw", ps, opt, [&] { opt.step(); });
  }
  {
    auto ps = make_params();
    AdamW<double> opt(ps, {.lr = 0.02, .weight_decay = 0.05});
    opt.set_schedule(schedule::warmup_cosine(3, 10));
    run_case("adamw_warmup_cosine", ps, opt, [&] { opt.step(); });
  }
  {
    auto ps = make_params();
    Adam<double> opt(ps, {.lr = 0.05});
    run_case(
        "adam_clip", ps, opt, [&] { opt.step(); }, 0.5);
  }
}

TEST_CASE("schedules, clipping, frozen parameters and option errors") {
  const auto wc = schedule::warmup_cosine(2, 6, 0.1);
  CHECK(wc(0) == doctest::Approx(0.5));
  CHECK(wc(1) == doctest::Approx(1.0));
  CHECK(wc(2) == doctest::Approx(1.0));
  CHECK(wc(6) == doctest::Approx(0.1));
  CHECK(wc(100) == doctest::Approx(0.1));
  CHECK(schedule::constant()(123) == 1.0);
  CHECK_THROWS_AS(schedule::warmup_cosine(5, 5), Error);
  CHECK_THROWS_AS(schedule::linear_warmup(0), Error);

  ParameterSet<float> ps;
  auto& a = ps.add("a", Tensor<float>({2}, {1.f, 1.f}));
  auto& frozen = ps.add("frozen", Tensor<float>({2}, {5.f, 5.f}));
  frozen.requires_grad = false;
  a.grad.fill(3.f);
  frozen.grad.fill(4.f);
  const double norm = clip_grad_norm(ps, 1.0);
  CHECK(norm == doctest::Approx(std::sqrt(9.0 * 2 + 16.0 * 2)));
  CHECK(std::sqrt(simd::sum_sq(ps.flat_grad().data(), 4)) == doctest::Approx(1.0).epsilon(1e-5));
  SGD<float> sgd(ps, {.lr = 1.0});
  sgd.step();
  CHECK(frozen.value(0) == 5.f);
  CHECK(a.value(0) < 1.f);
  CHECK_THROWS_AS(SGD<float>(ps, {.lr = -1.0}), Error);
  CHECK_THROWS_AS(SGD<float>(ps, {.lr = 0.1, .nesterov = true}), Error);
  CHECK_THROWS_AS(Adam<float>(ps, {.beta1 = 1.0}), Error);
  CHECK_THROWS_AS(clip_grad_norm(ps, 0.0), Error);
}
