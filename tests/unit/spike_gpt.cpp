// SpikeGPT: conformance with tests/reference/spike_gpt.py (PyTorch, float64) in double and float; the WKV op
// (PyTorch fixture, gradcheck, stability, SIMD vs scalar, thread count); token_mix and L2Wrap; the reference
// initialisation; recurrent mode against parallel mode; configuration inference; errors; a training run.
#include "fixtures.hpp"
#include "test_util.hpp"

#include <spikelm/models/spike_gpt.hpp>
#include <spikelm/train/optim.hpp>

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <string>
#include <vector>

using namespace spikelm;
using spikelm_test::Fixtures;
using spikelm_test::require_close;

namespace {
const Fixtures& fixtures() {
  static const Fixtures f("reference/fixtures/spike_gpt.txt");
  return f;
}

/// The fixture model's configuration, inferred from its tensors' names and shapes (time_mix_* are [1, 1, d]).
SpikeGptConfig fixture_config() {
  const auto& f = fixtures();
  SpikeGptConfig probe;
  probe.vocab = f["model/emb.weight"].shape[0];
  probe.d_model = f["model/emb.weight"].shape[1];
  probe.layers = 0;
  while (f.has("model/blocks." + std::to_string(probe.layers) + ".ln1.weight")) ++probe.layers;
  std::map<std::string, Shape> shapes;
  for (const auto& [name, shape] : spike_gpt_parameter_shapes(probe)) {
    (void)shape;
    shapes.emplace(name, f["model/" + name].shape);
  }
  SpikeGptConfig cfg = infer_spike_gpt_config(shapes, 16);
  cfg.dropout = 0.0;
  return cfg;
}

template <class T>
std::unique_ptr<SpikeGPT<T>> fixture_model() {
  auto m = std::make_unique<SpikeGPT<T>>(fixture_config());
  m->parameters().for_each([&](Parameter<T>& p) {
    const auto t = fixtures()["model/" + p.name].template as<T>();
    m->set_parameter(p.name, t.cview());
  });
  return m;
}

std::vector<std::int64_t> fixture_ids(const std::string& name) {
  std::vector<std::int64_t> v;
  for (double x : fixtures()[name].values) v.push_back(static_cast<std::int64_t>(x));
  return v;
}

/// max |a - b| / max |b| over a tensor (the error relative to the tensor's scale).
double scaled_error(const double* got, const double* want, std::size_t n) {
  double err = 0, scale = 0;
  for (std::size_t i = 0; i < n; ++i) {
    err = std::max(err, std::abs(got[i] - want[i]));
    scale = std::max(scale, std::abs(want[i]));
  }
  return scale > 0 ? err / scale : err;
}

/// Batch-major [B, T, C] -> time-major [T, B, C].
template <class T>
Tensor<T> to_time_major(const spikelm_test::FixtureTensor& f) {
  const std::size_t B = f.shape[0], S = f.shape[1], C = f.shape[2];
  Tensor<T> out({S, B, C});
  for (std::size_t b = 0; b < B; ++b)
    for (std::size_t t = 0; t < S; ++t)
      for (std::size_t c = 0; c < C; ++c) out(t, b, c) = static_cast<T>(f.values[(b * S + t) * C + c]);
  return out;
}

/// Runs the fixture model in T; returns logits (batch-major, as the fixture) and leaves gradients in the
/// model.
template <class T>
struct ConformanceRun {
  std::unique_ptr<SpikeGPT<T>> model;
  std::vector<double> logits;
  double loss = 0;
};
template <class T>
ConformanceRun<T> run_fixture_model() {
  const auto& f = fixtures();
  ConformanceRun<T> run{fixture_model<T>(), {}, 0};
  SpikeGPT<T>& m = *run.model;
  const auto tokens = fixture_ids("model/tokens"), targets = fixture_ids("model/targets");
  const std::size_t B = f["model/tokens"].shape[0], S = f["model/tokens"].shape[1], V = m.config().vocab;
  {
    Tape<T> tape;
    const auto z = m.logits(tape, tokens, B, false);
    REQUIRE(z.value().shape() == Shape{S * B, V});
    run.logits.resize(B * S * V);
    for (std::size_t b = 0; b < B; ++b)
      for (std::size_t t = 0; t < S; ++t)
        for (std::size_t j = 0; j < V; ++j)
          run.logits[(b * S + t) * V + j] = static_cast<double>(z.value().data()[(t * B + b) * V + j]);
  }
  m.parameters().zero_grad();
  Tape<T> tape;
  const auto loss = m.loss(tape, tokens, targets, B, true); // training, but dropout is 0 in the fixture
  tape.backward(loss);
  run.loss = static_cast<double>(loss.value().data()[0]);
  return run;
}
} // namespace

TEST_CASE("conformance: SpikeGPT logits, loss, firing rates and every parameter gradient (double)") {
  const auto& f = fixtures();
  auto run = run_fixture_model<double>();
  SpikeGPT<double>& m = *run.model;
  const auto& want = f["model/logits"];
  const double logit_err = scaled_error(run.logits.data(), want.values.data(), want.values.size());
  MESSAGE("double: logits max |error| / max |logit| = ", logit_err);
  require_close(run.logits.data(), want.values.data(), want.values.size(), 1e-9, 1e-12, "logits");
  CHECK(run.loss == doctest::Approx(f["model/loss"].values[0]).epsilon(1e-12));
  // the firing rates are spike counts over equal populations: identical spike patterns give identical rates
  const auto& rates = f["model/rates"];
  for (std::size_t l = 0; l < m.config().layers; ++l)
    for (std::size_t j = 0; j < 2; ++j) {
      CHECK(m.firing_rates()[l][j] == doctest::Approx(rates.values[l * 2 + j]).epsilon(1e-12));
      CHECK(m.firing_rates()[l][j] > 0.05); // the LIFs fire
    }
  double worst = 0;
  std::string worst_name;
  std::size_t count = 0;
  m.parameters().for_each([&](Parameter<double>& p) {
    const auto& g = f["model/grad/" + p.name];
    REQUIRE(g.values.size() == p.grad.size());
    const double e = scaled_error(p.grad.data(), g.values.data(), g.values.size());
    if (e > worst) worst = e, worst_name = p.name;
    require_close(p.grad.data(), g.values.data(), g.values.size(), 1e-7, 1e-10, p.name);
    ++count;
  });
  CHECK(count == m.parameters().size());
  MESSAGE("double: worst gradient max |error| / max |grad| = ", worst, " (", worst_name, ") over ", count,
          " parameters");
}

TEST_CASE("conformance: SpikeGPT in float matches the float64 reference (logits 1e-4, gradients 1e-3)") {
  const auto& f = fixtures();
  auto run = run_fixture_model<float>();
  SpikeGPT<float>& m = *run.model;
  const auto& want = f["model/logits"];
  double max_rel = 0;
  for (std::size_t i = 0; i < want.values.size(); ++i)
    max_rel = std::max(max_rel, std::abs(run.logits[i] - want.values[i]) / std::abs(want.values[i]));
  MESSAGE("float: logits max relative error = ", max_rel);
  require_close(run.logits.data(), want.values.data(), want.values.size(), 1e-4, 0.0, "logits");
  CHECK(run.loss == doctest::Approx(f["model/loss"].values[0]).epsilon(1e-5));
  const auto& rates = f["model/rates"];
  for (std::size_t l = 0; l < m.config().layers; ++l)
    for (std::size_t j = 0; j < 2; ++j)
      CHECK(m.firing_rates()[l][j] == doctest::Approx(rates.values[l * 2 + j]));
  // Gradients: |error| <= 1e-3 |reference| + 1e-3 * 1e-2 max|reference| (an absolute floor for elements that
  // are small through cancellation).
  double worst = 0;
  m.parameters().for_each([&](Parameter<float>& p) {
    const auto& g = f["model/grad/" + p.name];
    std::vector<double> got(p.grad.begin(), p.grad.end());
    double scale = 0;
    for (double v : g.values) scale = std::max(scale, std::abs(v));
    worst = std::max(worst, scaled_error(got.data(), g.values.data(), got.size()));
    require_close(got.data(), g.values.data(), got.size(), 1e-3, 1e-5 * scale, p.name);
  });
  MESSAGE("float: worst gradient max |error| / max |grad| = ", worst);
}

TEST_CASE("conformance: WKV forward and gradients against the PyTorch loop (k up to 60)") {
  const auto& f = fixtures();
  const auto k = to_time_major<double>(f["wkv/k"]), v = to_time_major<double>(f["wkv/v"]);
  const auto gy = to_time_major<double>(f["wkv/gy"]), ywant = to_time_major<double>(f["wkv/y"]);
  Tape<double> tape;
  const auto vd = tape.leaf(f["wkv/time_decay"].as<double>()),
             vf = tape.leaf(f["wkv/time_first"].as<double>());
  const auto vk = tape.leaf(k), vv = tape.leaf(v);
  const auto y = wkv(vd, vf, vk, vv);
  require_close(y.value().data(), ywant.data(), ywant.size(), 1e-12, 1e-14, "y");
  tape.backward(sum(mul(y, tape.constant(gy))));
  require_close(vd.grad().data(), f["wkv/grad_time_decay"].values.data(), vd.grad().size(), 1e-10, 1e-13,
                "d time_decay");
  require_close(vf.grad().data(), f["wkv/grad_time_first"].values.data(), vf.grad().size(), 1e-10, 1e-13,
                "d time_first");
  const auto gk = to_time_major<double>(f["wkv/grad_k"]), gv = to_time_major<double>(f["wkv/grad_v"]);
  require_close(vk.grad().data(), gk.data(), gk.size(), 1e-10, 1e-13, "dk");
  require_close(vv.grad().data(), gv.data(), gv.size(), 1e-10, 1e-13, "dv");
}

TEST_CASE("WKV: the hand-written backward passes gradcheck in double") {
  struct Case {
    std::size_t steps, batch, channels;
    double k_range, decay_lo, decay_hi;
  };
  // the 67-channel case crosses a block of the kernel; the last one has large k and a wide decay range
  for (const Case& c : {Case{6, 2, 5, 2.0, -3.0, 1.0}, Case{3, 1, 67, 1.0, -2.0, 0.5},
                        Case{9, 2, 3, 25.0, -6.0, 3.0}, Case{1, 3, 4, 3.0, -1.0, 1.0}}) {
    Rng rng(100 + c.steps * 7 + c.channels);
    Tensor<double> decay({c.channels}), first({c.channels}), k({c.steps, c.batch, c.channels}),
        v({c.steps, c.batch, c.channels}), g({c.steps, c.batch, c.channels});
    rng.fill_uniform(decay.span(), c.decay_lo, c.decay_hi);
    rng.fill_uniform(first.span(), -1.5, 1.5);
    rng.fill_uniform(k.span(), -c.k_range, c.k_range);
    rng.fill_uniform(v.span(), -2.0, 2.0);
    rng.fill_uniform(g.span(), -1.0, 1.0);
    const auto res = gradcheck(
        [&](Tape<double>& t, const std::vector<Var<double>>& in) {
          return sum(mul(wkv(in[0], in[1], in[2], in[3]), t.constant(g)));
        },
        {decay, first, k, v}, 1e-6, 1e-6, 1e-8);
    INFO("T ", c.steps, " B ", c.batch, " C ", c.channels, ": ", res.first_failure);
    CHECK(res.passed);
    MESSAGE("WKV gradcheck T ", c.steps, " B ", c.batch, " C ", c.channels, ": max abs error ",
            res.max_abs_error);
  }
}

TEST_CASE("WKV: float stays finite where exp(k) overflows and agrees with double") {
  const std::size_t S = 12, B = 2, C = 9;
  Rng rng(9);
  Tensor<double> decay({C}), first({C}), k({S, B, C}), v({S, B, C}), g({S, B, C});
  rng.fill_uniform(decay.span(), -4.0, 3.0);
  rng.fill_uniform(first.span(), -2.0, 2.0);
  rng.fill_uniform(k.span(), -150.0, 150.0); // exp(89) already overflows float
  rng.fill_uniform(v.span(), -1.0, 1.0);
  rng.fill_uniform(g.span(), -1.0, 1.0);
  auto to_float = [](const Tensor<double>& x) {
    Tensor<float> y(x.shape());
    std::transform(x.begin(), x.end(), y.begin(), [](double a) { return static_cast<float>(a); });
    return y;
  };
  Tape<double> td;
  const auto dd = td.leaf(decay), df = td.leaf(first), dk = td.leaf(k), dv = td.leaf(v);
  const auto yd = wkv(dd, df, dk, dv);
  td.backward(sum(mul(yd, td.constant(g))));
  Tape<float> tf;
  const auto fd = tf.leaf(to_float(decay)), ff = tf.leaf(to_float(first)), fk = tf.leaf(to_float(k)),
             fv = tf.leaf(to_float(v));
  const auto yf = wkv(fd, ff, fk, fv);
  tf.backward(sum(mul(yf, tf.constant(to_float(g)))));
  auto compare = [](TensorView<const float> a, TensorView<const double> b, double tol, const char* what) {
    double scale = 0;
    for (double x : b) scale = std::max(scale, std::abs(x));
    for (std::size_t i = 0; i < a.size(); ++i) {
      INFO(what, " element ", i);
      REQUIRE(std::isfinite(a.data()[i]));
      REQUIRE(std::abs(static_cast<double>(a.data()[i]) - b.data()[i]) <=
              tol * scale + tol * std::abs(b.data()[i]));
    }
  };
  compare(yf.value(), yd.value(), 1e-5, "y");
  compare(fk.grad(), dk.grad(), 1e-4, "dk");
  compare(fv.grad(), dv.grad(), 1e-4, "dv");
  compare(fd.grad(), dd.grad(), 1e-4, "d decay");
  compare(ff.grad(), df.grad(), 1e-4, "d first");
}

TEST_CASE("WKV: SIMD kernels agree with the scalar kernels, and results do not depend on the thread count") {
  const std::size_t S = 32, B = 4, C = 300; // several channel blocks, enough work to run in parallel
  Rng rng(21);
  std::vector<float> w(C), u(C), k(S * B * C), v(S * B * C), gy(S * B * C);
  rng.fill_uniform(std::span<float>(w), -3.0f, -0.01f);
  rng.fill_uniform(std::span<float>(u), -1.0f, 1.0f);
  rng.fill_uniform(std::span<float>(k), -5.0f, 5.0f);
  rng.fill_uniform(std::span<float>(v), -1.0f, 1.0f);
  rng.fill_uniform(std::span<float>(gy), -1.0f, 1.0f);
  struct Out {
    std::vector<float> y, gk, gv, gw, gu;
  };
  auto run = [&](auto arch) {
    using Arch = decltype(arch);
    Out o{std::vector<float>(S * B * C), std::vector<float>(S * B * C), std::vector<float>(S * B * C),
          std::vector<float>(B * C), std::vector<float>(B * C)};
    detail::wkv_forward_kernel<Arch>(S, B, C, w.data(), u.data(), k.data(), v.data(), o.y.data(),
                                     static_cast<float*>(nullptr), static_cast<float*>(nullptr),
                                     static_cast<float*>(nullptr), false);
    detail::wkv_backward_kernel<Arch>(S, B, C, w.data(), u.data(), k.data(), v.data(), o.y.data(), gy.data(),
                                      o.gk.data(), o.gv.data(), o.gw.data(), o.gu.data());
    return o;
  };
  const Out scalar = run(simd::scalar_arch{});
  Out one, two;
  {
    ScopedThreads t(1);
    one = run(simd::default_arch{});
  }
  {
    ScopedThreads t(2);
    two = run(simd::default_arch{});
  }
  require_close(one.y.data(), scalar.y.data(), one.y.size(), 1e-5, 1e-6, "y");
  require_close(one.gk.data(), scalar.gk.data(), one.gk.size(), 1e-4, 1e-5, "gk");
  require_close(one.gv.data(), scalar.gv.data(), one.gv.size(), 1e-4, 1e-5, "gv");
  require_close(one.gw.data(), scalar.gw.data(), one.gw.size(), 1e-4, 1e-4, "gw");
  require_close(one.gu.data(), scalar.gu.data(), one.gu.size(), 1e-4, 1e-5, "gu");
  CHECK(one.y == two.y);
  CHECK(one.gk == two.gk);
  CHECK(one.gv == two.gv);
  CHECK(one.gw == two.gw);
  CHECK(one.gu == two.gu);
}

TEST_CASE("token_mix and l2wrap: gradients") {
  Rng rng(4);
  Tensor<double> x({5, 2, 3}), mu({3});
  rng.fill_uniform(x.span(), -1.0, 1.0);
  rng.fill_uniform(mu.span(), 0.0, 1.0);
  const auto res = gradcheck(
      [](Tape<double>& t, const std::vector<Var<double>>& in) {
        Tensor<double> w({5, 2, 3});
        Rng r(5);
        r.fill_uniform(w.span(), -1.0, 1.0);
        return sum(mul(token_mix(in[0], in[1]), t.constant(std::move(w))));
      },
      {x, mu});
  INFO(res.first_failure);
  CHECK(res.passed);
  {
    Tape<double> t;
    const auto y = token_mix(t.leaf(x), t.leaf(mu));
    CHECK(y.value()(0, 1, 2) == doctest::Approx(x(0, 1, 2) * mu(2))); // xx_0 = 0
    CHECK(y.value()(3, 0, 1) == doctest::Approx(x(3, 0, 1) * mu(1) + x(2, 0, 1) * (1 - mu(1))));
  }

  // L2Wrap: the loss value passes unchanged; the logits' gradient is the cross-entropy's plus
  // 1e-4 / rows * max at each row's largest logit.
  Tensor<double> z({3, 4}, {0.1, 2.0, -1.0, 0.5, -3.0, -0.5, -2.0, -1.0, 1.0, 0.0, 4.0, 3.0});
  const std::vector<std::int64_t> tg{0, 3, 2};
  Tape<double> a, b;
  const auto za = a.leaf(z), zb = b.leaf(z);
  const auto ce = cross_entropy(za, tg);
  a.backward(ce);
  const auto wrapped = l2wrap(cross_entropy(zb, tg), zb);
  CHECK(wrapped.value().data()[0] == ce.value().data()[0]);
  b.backward(wrapped);
  const std::size_t top[3] = {1, 1, 2};
  for (std::size_t r = 0; r < 3; ++r)
    for (std::size_t j = 0; j < 4; ++j) {
      const double extra = j == top[r] ? 1e-4 / 3.0 * z(r, j) : 0.0;
      CHECK(zb.grad()(r, j) == doctest::Approx(za.grad()(r, j) + extra).epsilon(1e-14));
    }
}

TEST_CASE("reference initialisation: time_decay, time_first and the mix coefficients (SPEC §3)") {
  const auto& f = fixtures();
  SpikeGptConfig cfg;
  cfg.vocab = 7;
  cfg.d_model = 12;
  cfg.layers = 3;
  SpikeGPT<double> m(cfg);
  Rng rng(1);
  m.reset_parameters(rng);
  std::size_t checked = 0;
  m.parameters().for_each([&](const Parameter<double>& p) {
    if (!f.has("init/" + p.name)) return;
    const auto& want = f["init/" + p.name];
    CHECK(spike_gpt_internal_shape(p.name, want.shape) == p.shape());
    require_close(p.value.data(), want.values.data(), p.size(), 1e-12, 1e-14, p.name);
    ++checked;
  });
  CHECK(checked == 3 * 7);
  // Torch-default matrices: U(-1/sqrt(in), 1/sqrt(in)); LayerNorms (1, 0)
  const auto& fk = m.parameters()["blocks.1.ffn.value.weight"]; // [12, 48]
  double top = 0;
  for (double x : fk.value) top = std::max(top, std::abs(x));
  CHECK(top <= 1.0 / std::sqrt(48.0));
  CHECK(top > 0.8 / std::sqrt(48.0));
  for (double x : m.parameters()["ln_out.weight"].value) CHECK(x == 1.0);
  for (double x : m.parameters()["blocks.0.ln0.bias"].value) CHECK(x == 0.0);

  // RWKV_Init: orthogonal matrices with the reference's gains, zeros where it puts them
  m.reset_parameters(rng, SpikeGptInit::Rwkv);
  for (const char* n :
       {"blocks.0.att.key.weight", "blocks.2.att.receptance.weight", "blocks.1.att.output.weight",
        "blocks.0.ffn.value.weight", "blocks.2.ffn.receptance.weight"})
    for (double x : m.parameters()[n].value) CHECK(x == 0.0);
  auto gram_is = [](const Tensor<double>& w, bool columns, double gain2) {
    const std::size_t r = w.dim(0), c = w.dim(1), n = columns ? c : r;
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t j = 0; j < n; ++j) {
        double s = 0;
        for (std::size_t q = 0; q < (columns ? r : c); ++q)
          s += columns ? w(q, i) * w(q, j) : w(i, q) * w(j, q);
        REQUIRE(s == doctest::Approx(i == j ? gain2 : 0.0).epsilon(1e-10).scale(gain2));
      }
  };
  gram_is(m.parameters()["blocks.1.att.value.weight"].value, true, 1.0);
  gram_is(m.parameters()["blocks.1.ffn.key.weight"].value, true, 4.0); // [48, 12], gain sqrt(4)
  gram_is(m.parameters()["head.weight"].value, false, 0.25);           // [7, 12], V < d: gain 0.5
  gram_is(m.parameters()["emb.weight"].value, false, 1.2e-7);          // gain 1e-4 sqrt(12)
}

namespace {
/// A random model whose LIFs fire: Torch-default init with the TimeMix/ChannelMix output matrices scaled up.
template <class T>
std::unique_ptr<SpikeGPT<T>> firing_model(std::size_t vocab, std::size_t d, std::size_t layers,
                                          std::size_t context, std::uint64_t seed) {
  SpikeGptConfig cfg;
  cfg.vocab = vocab;
  cfg.d_model = d;
  cfg.layers = layers;
  cfg.context = context;
  auto m = std::make_unique<SpikeGPT<T>>(cfg);
  Rng rng(seed);
  m->reset_parameters(rng);
  m->parameters().for_each([](Parameter<T>& p) {
    if (p.name.find("att.output") != std::string::npos || p.name.find("ffn.value") != std::string::npos)
      for (T& x : p.value) x *= T(16);
  });
  return m;
}

template <class T>
void recurrent_equals_parallel(double tol) {
  const std::size_t V = 23, d = 32, L = 3, S = 64, B = 2, split = 40;
  auto mp = firing_model<T>(V, d, L, S, 77);
  SpikeGPT<T>& m = *mp;
  std::vector<std::int64_t> tokens(B * S);
  Rng rng(8);
  for (auto& t : tokens) t = static_cast<std::int64_t>(rng.uniform_index(V));
  NoGradGuard inference;
  Tape<T> tape;
  const auto whole = m.logits(tape, tokens, B, false);
  const auto rates = m.firing_rates();
  for (std::size_t l = 0; l < L; ++l) {
    CHECK(rates[l][0] > 0.02);
    CHECK(rates[l][1] > 0.02);
    CHECK(rates[l][0] < 0.6);
    CHECK(rates[l][1] < 0.6);
  }
  double scale = 0;
  for (T x : whole.value()) scale = std::max(scale, std::abs(static_cast<double>(x)));
  double worst = 0;
  auto compare = [&](const Tensor<T>& got, std::size_t t) {
    for (std::size_t b = 0; b < B; ++b)
      for (std::size_t j = 0; j < V; ++j) {
        const double a = static_cast<double>(got(b, j));
        const double w = static_cast<double>(whole.value().data()[(t * B + b) * V + j]);
        worst = std::max(worst, std::abs(a - w) / scale);
        INFO("step ", t, " sequence ", b, " logit ", j, ": recurrent ", a, ", parallel ", w);
        REQUIRE(std::abs(a - w) <= tol * scale);
      }
  };
  // token by token from the empty state
  SpikeGptState<T> state;
  std::vector<std::int64_t> col(B);
  for (std::size_t t = 0; t < S; ++t) {
    for (std::size_t b = 0; b < B; ++b) col[b] = tokens[b * S + t];
    compare(m.step(col, state), t);
  }
  const std::string type = sizeof(T) == 8 ? "double" : "float";
  MESSAGE(type, ": recurrent vs parallel over ", S, " tokens, max |difference| / max |logit| = ", worst,
          "; firing rates of layer 0: ", rates[0][0], ", ", rates[0][1]);
  // a parallel prefill of the first `split` tokens, then the rest token by token
  std::vector<std::int64_t> head(B * split);
  for (std::size_t b = 0; b < B; ++b)
    for (std::size_t t = 0; t < split; ++t) head[b * split + t] = tokens[b * S + t];
  Tape<T> t2;
  SpikeGptState<T> prefilled;
  const auto first = m.logits(t2, head, B, false, nullptr, &prefilled);
  for (std::size_t i = 0; i < first.value().size(); ++i) // a prefix gives the same logits
    REQUIRE(std::abs(static_cast<double>(first.value().data()[i] - whole.value().data()[i])) <= tol * scale);
  for (std::size_t t = split; t < S; ++t) {
    for (std::size_t b = 0; b < B; ++b) col[b] = tokens[b * S + t];
    compare(m.step(col, prefilled), t);
  }
}
} // namespace

TEST_CASE("SpikeGPT: recurrent mode equals parallel mode over 64 tokens (double)") {
  recurrent_equals_parallel<double>(1e-5);
}

TEST_CASE("SpikeGPT: recurrent mode equals parallel mode over 64 tokens (float)") {
  recurrent_equals_parallel<float>(1e-5);
}

TEST_CASE("SpikeGPT: parameter names and shapes, and configuration inference") {
  SpikeGptConfig cfg;
  cfg.vocab = 11;
  cfg.d_model = 8;
  cfg.layers = 3;
  SpikeGPT<float> m(cfg);
  const auto list = spike_gpt_parameter_shapes(cfg);
  REQUIRE(m.parameters().size() == list.size());
  for (std::size_t i = 0; i < list.size(); ++i) {
    CHECK(m.parameters().at(i).name == list[i].first);
    CHECK(m.parameters().at(i).shape() == list[i].second);
  }
  CHECK(list.front().first == "emb.weight");
  CHECK(list.back().first == "head.weight");
  CHECK(m.parameters().contains("blocks.0.ln0.weight"));
  CHECK(!m.parameters().contains("blocks.1.ln0.weight"));
  CHECK(m.parameters()["blocks.2.ffn.key.weight"].shape() == Shape{32, 8});
  CHECK(m.parameters()["blocks.2.ffn.value.weight"].shape() == Shape{8, 32});

  // shape helpers
  CHECK(spike_gpt_internal_shape("blocks.0.att.time_mix_k", Shape{1, 1, 8}) == Shape{8});
  CHECK(spike_gpt_internal_shape("blocks.0.att.time_decay", Shape{8}) == Shape{8});
  CHECK(spike_gpt_internal_shape("blocks.0.att.key.weight", Shape{8, 8}) == Shape{8, 8});
  CHECK(spike_gpt_internal_shape("blocks.0.att.time_mix_k", Shape{2, 1, 8}) == Shape{2, 1, 8});
  CHECK(spike_gpt_reference_shape("blocks.1.ffn.time_mix_r", Shape{8}) == Shape{1, 1, 8});
  CHECK(spike_gpt_reference_shape("blocks.1.att.time_first", Shape{8}) == Shape{8});

  // inference: from a model's own set, from the reference's shapes, with a non-default ChannelMix width
  auto shapes = parameter_shape_map(m.parameters());
  SpikeGptConfig got = infer_spike_gpt_config(shapes, cfg.context);
  CHECK(got == cfg);
  for (auto& [name, shape] : shapes) shape = spike_gpt_reference_shape(name, shape);
  CHECK(shapes["blocks.1.att.time_mix_v"] == Shape{1, 1, 8});
  CHECK(infer_spike_gpt_config(shapes, 77).context == 77);
  CHECK(infer_spike_gpt_config(shapes).layers == 3);
  SpikeGptConfig wide = cfg;
  wide.ffn = 24;
  SpikeGPT<float> mw(wide);
  CHECK(infer_spike_gpt_config(parameter_shape_map(mw.parameters()), cfg.context) == wide);

  // set_parameter takes either layout
  Tensor<float> mix({1, 1, 8}, 0.25f);
  m.set_parameter("blocks.1.att.time_mix_k", mix.cview());
  CHECK(m.parameters()["blocks.1.att.time_mix_k"].value(3) == 0.25f);
  m.set_parameter("blocks.1.att.time_mix_k", Tensor<float>({8}, 0.5f).cview());
  CHECK(m.parameters()["blocks.1.att.time_mix_k"].value(3) == 0.5f);
}

TEST_CASE("SpikeGPT: weights of another architecture or layout are rejected with a clear message") {
  SpikeGptConfig cfg;
  cfg.vocab = 11;
  cfg.d_model = 8;
  cfg.layers = 2;
  SpikeGPT<float> m(cfg);
  const auto good = parameter_shape_map(m.parameters());
  // an EGRU language model's state dict
  const std::map<std::string, Shape> egru{{"embeddings.weight", Shape{11, 8}},
                                          {"rnns.0.kernel", Shape{8, 24}},
                                          {"decoder.decoder.bias", Shape{11}}};
  CHECK_THROWS_WITH_AS(infer_spike_gpt_config(egru), doctest::Contains("not a SpikeGPT weights set"), Error);
  CHECK_THROWS_WITH_AS(infer_spike_gpt_config({}), doctest::Contains("no 'emb.weight'"), Error);
  auto ffn_pre = good;
  ffn_pre["blocks.0.ffnPre.key.weight"] = Shape{32, 8};
  CHECK_THROWS_WITH_AS(infer_spike_gpt_config(ffn_pre), doctest::Contains("RWKV-ffnPre"), Error);
  auto extra = good;
  extra["head_q.weight"] = Shape{256, 8};
  CHECK_THROWS_WITH_AS(infer_spike_gpt_config(extra), doctest::Contains("unexpected tensor 'head_q.weight'"),
                       Error);
  auto missing = good;
  missing.erase("blocks.1.att.output.weight");
  CHECK_THROWS_WITH_AS(infer_spike_gpt_config(missing),
                       doctest::Contains("'blocks.1.att.output.weight' is missing"), Error);
  auto bad_shape = good;
  bad_shape["blocks.1.att.value.weight"] = Shape{8, 9};
  CHECK_THROWS_WITH_AS(infer_spike_gpt_config(bad_shape), doctest::Contains("has shape [8, 9]"), Error);
  auto bad_head = good;
  bad_head["head.weight"] = Shape{12, 8};
  CHECK_THROWS_AS(infer_spike_gpt_config(bad_head), Error);
  CHECK_THROWS_WITH_AS(m.set_parameter("blocks.0.att.key.weight", Tensor<float>({8, 7}).cview()),
                       doctest::Contains("the model expects [8, 8]"), Error);
  CHECK_THROWS_WITH_AS(m.set_parameter("blocks.0.att.nope", Tensor<float>({8}).cview()),
                       doctest::Contains("no parameter named"), Error);
}

TEST_CASE("SpikeGPT: bad input throws spikelm::Error") {
  SpikeGptConfig cfg;
  cfg.vocab = 5;
  cfg.d_model = 8;
  cfg.layers = 1;
  cfg.context = 4;
  SpikeGPT<float> m(cfg);
  Rng rng(3);
  m.reset_parameters(rng);
  Tape<float> tape;
  const std::vector<std::int64_t> out_of_vocab{1, 2, 5, 0}, negative{1, -1}, too_long{1, 2, 3, 4, 0},
      two_by_four{1, 2, 3, 4, 0, 1, 2, 3}, ok{1, 2};
  CHECK_THROWS_WITH_AS(m.logits(tape, out_of_vocab, 1, false),
                       doctest::Contains("token id 5 at position 2 is outside the vocabulary [0, 5)"), Error);
  CHECK_THROWS_WITH_AS(m.logits(tape, negative, 1, false), doctest::Contains("outside the vocabulary"),
                       Error);
  CHECK_THROWS_WITH_AS(m.logits(tape, too_long, 1, false),
                       doctest::Contains("5 tokens is longer than the context (4)"), Error);
  CHECK_NOTHROW(m.logits(tape, two_by_four, 2, false)); // 2 sequences of 4 fit
  CHECK_THROWS_WITH_AS(m.logits(tape, two_by_four, 3, false), doctest::Contains("do not split"), Error);
  CHECK_THROWS_WITH_AS(m.loss(tape, ok, negative, 1, false), doctest::Contains("target -1"), Error);
  CHECK_THROWS_WITH_AS(m.loss(tape, ok, two_by_four, 1, false), doctest::Contains("targets for"), Error);
  CHECK_THROWS_WITH_AS(m.logits(tape, ok, 1, true), doctest::Contains("needs an Rng"), Error);
  CHECK_NOTHROW(m.logits(tape, ok, 1, true, &rng));
  CHECK_THROWS_WITH_AS(m.logits(tape, std::vector<std::int64_t>{}, 1, false), doctest::Contains("no tokens"),
                       Error);
  // recurrent mode: no context limit, but the vocabulary and the state's batch are checked
  SpikeGptState<float> st;
  for (int i = 0; i < 10; ++i) CHECK_NOTHROW((void)m.step(std::vector<std::int64_t>{1, 2}, st));
  CHECK_THROWS_WITH_AS((void)m.step(std::vector<std::int64_t>{1, 7}, st),
                       doctest::Contains("token id 7 at position 1 is outside the vocabulary"), Error);
  CHECK_THROWS_WITH_AS((void)m.step(std::vector<std::int64_t>{1, 2, 3}, st),
                       doctest::Contains("holds 2 sequences"), Error);
  Tensor<float> wrong({2, 4});
  CHECK_THROWS_WITH_AS(m.step(std::vector<std::int64_t>{1, 2}, st, wrong.view()),
                       doctest::Contains("logits buffer"), Error);
  // configuration
  SpikeGptConfig zero = cfg;
  zero.vocab = 0;
  CHECK_THROWS_AS(SpikeGPT<float>{zero}, Error);
  SpikeGptConfig drop = cfg;
  drop.dropout = 1.0;
  CHECK_THROWS_AS(SpikeGPT<float>{drop}, Error);
  // the WKV op's shapes
  Tape<float> t;
  const auto k = t.leaf(Tensor<float>({3, 2, 4})), v = t.leaf(Tensor<float>({3, 2, 5}));
  CHECK_THROWS_AS(wkv(t.leaf(Tensor<float>({4})), t.leaf(Tensor<float>({4})), k, v), Error);
  CHECK_THROWS_AS(wkv(t.leaf(Tensor<float>({5})), t.leaf(Tensor<float>({4})), k, k), Error);
  CHECK_THROWS_AS(token_mix(k, t.leaf(Tensor<float>({3}))), Error);
}

TEST_CASE("SpikeGPT: training with dropout lowers the loss on a repeating sequence") {
  SpikeGptConfig cfg;
  cfg.vocab = 8;
  cfg.d_model = 32;
  cfg.layers = 2;
  cfg.context = 32;
  SpikeGPT<float> m(cfg); // dropout 0.03, as the reference
  Rng rng(12);
  m.reset_parameters(rng);
  std::vector<std::int64_t> seq;
  for (int i = 0; i < 40; ++i) seq.push_back((i * 3) % 8);
  // two sequences of 32 tokens at different offsets, targets shifted by one
  std::vector<std::int64_t> in, tgt;
  for (std::size_t off : {0u, 5u})
    for (std::size_t t = 0; t < 32; ++t) {
      in.push_back(seq[off + t]);
      tgt.push_back(seq[off + t + 1]);
    }
  Adam<float> opt(m.parameters(), {.lr = 3e-3, .beta1 = 0.9, .beta2 = 0.99, .eps = 1e-8});
  float first = 0, last = 0;
  for (int step = 0; step < 80; ++step) {
    Tape<float> tape;
    m.parameters().zero_grad();
    const auto loss = m.loss(tape, in, tgt, 2, true, &rng);
    tape.backward(loss);
    opt.step();
    (step == 0 ? first : last) = loss.value().data()[0];
  }
  MESSAGE("training: loss ", first, " -> ", last, " after 80 Adam steps");
  CHECK(std::isfinite(last));
  CHECK(last < 0.5f * first);
  // the model still generates with the learnt weights, token by token
  SpikeGptState<float> st;
  Tensor<float> z;
  for (std::size_t t = 0; t < 16; ++t) z = m.step(std::vector<std::int64_t>{seq[t]}, st);
  std::size_t best = 0;
  for (std::size_t j = 1; j < 8; ++j)
    if (z(0, j) > z(0, best)) best = j;
  CHECK(static_cast<std::int64_t>(best) == seq[16]);
}
