// Tests for autograd/: every differentiable op passes gradcheck (double, central differences); tape
// semantics (add-or-set, parameters, no-grad, errors); losses against PyTorch fixtures.
#include "fixtures.hpp"
#include "test_util.hpp"

using namespace spikelm;
using spikelm_test::random_vector;
using Vars = std::vector<Var<double>>;

namespace {
Tensor<double> rnd(const Shape& s, std::uint64_t seed, double lo = -1, double hi = 1) {
  return Tensor<double>(s, random_vector<double>(s.numel(), seed, lo, hi));
}

/// Reduces any output to a scalar with fixed random weights, so every output element's gradient matters.
Var<double> weighted_sum(Tape<double>& t, const Var<double>& y, std::uint64_t seed = 99) {
  const Var<double> w = t.constant(rnd(y.value().shape(), seed));
  return sum(mul(y, w));
}

void require_gradcheck(const char* what, const std::function<Var<double>(Tape<double>&, const Vars&)>& f,
                       const std::vector<Tensor<double>>& inputs, double rtol = 1e-5, double atol = 1e-7) {
  const auto r = gradcheck(f, inputs, 1e-6, rtol, atol);
  INFO(what, ": ", r.first_failure, " (max abs error ", r.max_abs_error, ")");
  REQUIRE(r.passed);
}
} // namespace

TEST_CASE("gradcheck: arithmetic with broadcasting") {
  for (auto shapes : std::vector<std::pair<Shape, Shape>>{{{3, 4}, {3, 4}},
                                                          {{3, 4}, {4}},
                                                          {{2, 3, 4}, {3, 1}},
                                                          {{1, 4}, {3, 1}},
                                                          {{2, 1, 3, 1}, {4, 1, 1}},
                                                          {{3}, {}}}) {
    const auto a = rnd(shapes.first, 1), b = rnd(shapes.second, 2, 0.5, 2.0);
    require_gradcheck("add", [](auto& t, const Vars& v) { return weighted_sum(t, add(v[0], v[1])); }, {a, b});
    require_gradcheck("sub", [](auto& t, const Vars& v) { return weighted_sum(t, v[0] - v[1]); }, {a, b});
    require_gradcheck("mul", [](auto& t, const Vars& v) { return weighted_sum(t, v[0] * v[1]); }, {a, b});
    require_gradcheck("div", [](auto& t, const Vars& v) { return weighted_sum(t, v[0] / v[1]); }, {a, b});
  }
  const auto x = rnd({2, 3}, 3);
  require_gradcheck("scale", [](auto& t, const Vars& v) { return weighted_sum(t, scale(v[0], 2.5)); }, {x});
  require_gradcheck("neg", [](auto& t, const Vars& v) { return weighted_sum(t, neg(v[0])); }, {x});
  Tape<double> t;
  CHECK_THROWS_WITH_AS(add(t.leaf(Tensor<double>({3, 4})), t.leaf(Tensor<double>({3, 5}))),
                       doctest::Contains("do not broadcast"), Error);
}

TEST_CASE("gradcheck: reductions and shape ops") {
  const auto x = rnd({2, 3, 4}, 4);
  require_gradcheck("sum", [](auto&, const Vars& v) { return sum(v[0]); }, {x});
  require_gradcheck("mean", [](auto&, const Vars& v) { return mean(v[0]); }, {x});
  for (int axis : {0, 1, 2, -1})
    for (bool keep : {false, true}) {
      require_gradcheck("sum axis",
                        [=](auto& t, const Vars& v) { return weighted_sum(t, sum(v[0], axis, keep)); }, {x});
      require_gradcheck("mean axis",
                        [=](auto& t, const Vars& v) { return weighted_sum(t, mean(v[0], axis, keep)); }, {x});
    }
  require_gradcheck("reshape",
                    [](auto& t, const Vars& v) {
                      return weighted_sum(t, reshape(v[0], {6, 4}));
                    },
                    {x});
  require_gradcheck("transpose", [](auto& t, const Vars& v) { return weighted_sum(t, transpose(v[0])); },
                    {x});
  require_gradcheck("slice", [](auto& t, const Vars& v) { return weighted_sum(t, slice(v[0], 1, 1, 3)); },
                    {x});
  require_gradcheck("slice last",
                    [](auto& t, const Vars& v) { return weighted_sum(t, slice(v[0], -1, 0, 2)); }, {x});
  const auto y = rnd({2, 2, 4}, 5);
  require_gradcheck("concat",
                    [](auto& t, const Vars& v) {
                      return weighted_sum(t, concat({v[0], v[1]}, 1));
                    },
                    {x, y});
  // the same input used twice: gradients add
  require_gradcheck("reuse", [](auto& t, const Vars& v) { return weighted_sum(t, v[0] * v[0] + v[0]); }, {x});
}

TEST_CASE("gradcheck: matmul (all transposes), linear, spike_linear, embedding") {
  for (Trans ta : {Trans::No, Trans::Yes})
    for (Trans tb : {Trans::No, Trans::Yes}) {
      const auto a = rnd(ta == Trans::No ? Shape{3, 5} : Shape{5, 3}, 6);
      const auto b = rnd(tb == Trans::No ? Shape{5, 2} : Shape{2, 5}, 7);
      require_gradcheck("matmul",
                        [=](auto& t, const Vars& v) { return weighted_sum(t, matmul(v[0], v[1], ta, tb)); },
                        {a, b});
    }
  const auto x = rnd({2, 3, 5}, 8), w = rnd({4, 5}, 9), b = rnd({4}, 10);
  require_gradcheck("linear+bias",
                    [](auto& t, const Vars& v) { return weighted_sum(t, linear(v[0], v[1], &v[2])); },
                    {x, w, b});
  require_gradcheck("linear", [](auto& t, const Vars& v) { return weighted_sum(t, linear(v[0], v[1])); },
                    {x, w});

  // spike_linear: the input holds 0/1; check dW by gradcheck (perturbing the spikes themselves would flip
  // them)
  Tensor<double> s({6, 5});
  Rng(3).fill_bernoulli(s.span(), 0.4);
  const auto wi = rnd({5, 3}, 11);
  require_gradcheck(
      "spike_linear dW",
      [&](auto& t, const Vars& v) { return weighted_sum(t, spike_linear(t.constant(s), v[0])); }, {wi});
  {
    Tape<double> t;
    const auto sv = t.leaf(s), wv = t.leaf(wi);
    const auto y = spike_linear(sv, wv);
    const auto dense = matmul(t.constant(s), t.constant(wi));
    spikelm_test::require_close(y.value().data(), dense.value().data(), y.value().size(), 1e-14, 1e-14,
                                "forward");
    const auto l = weighted_sum(t, y, 5);
    t.backward(l);
    // ds = g W^T, dense
    Tape<double> t2;
    const auto s2 = t2.leaf(s);
    t2.backward(weighted_sum(t2, matmul(s2, t2.constant(wi)), 5));
    spikelm_test::require_close(sv.grad().data(), s2.grad().data(), s.size(), 1e-12, 1e-12, "ds");
  }
  const std::vector<std::int64_t> ids{2, 0, 2, 4};
  require_gradcheck("embedding",
                    [&](auto& t, const Vars& v) { return weighted_sum(t, embedding(v[0], ids)); },
                    {rnd({5, 3}, 12)});
  Tape<double> t;
  CHECK_THROWS_WITH_AS(embedding(t.leaf(rnd({5, 3}, 1)), std::vector<std::int64_t>{5}),
                       doctest::Contains("outside the vocabulary"), Error);
  CHECK_THROWS_AS(linear(t.leaf(x), t.leaf(rnd({4, 6}, 1))), Error);
  CHECK_THROWS_AS(matmul(t.leaf(rnd({2, 3}, 1)), t.leaf(rnd({2, 3}, 1))), Error);
}

TEST_CASE("gradcheck: normalisation, activations, dropout, token shift") {
  const auto x = rnd({3, 6}, 13, -2, 2);
  require_gradcheck("layer_norm",
                    [](auto& t, const Vars& v) { return weighted_sum(t, layer_norm(v[0], v[1], v[2])); },
                    {x, rnd({6}, 14, 0.5, 1.5), rnd({6}, 15)});
  require_gradcheck("softmax", [](auto& t, const Vars& v) { return weighted_sum(t, softmax(v[0])); }, {x});
  require_gradcheck("log_softmax", [](auto& t, const Vars& v) { return weighted_sum(t, log_softmax(v[0])); },
                    {x});
  require_gradcheck("gelu", [](auto& t, const Vars& v) { return weighted_sum(t, gelu(v[0])); }, {x});
  require_gradcheck("gelu_tanh", [](auto& t, const Vars& v) { return weighted_sum(t, gelu_tanh(v[0])); },
                    {x});
  require_gradcheck("sigmoid", [](auto& t, const Vars& v) { return weighted_sum(t, sigmoid(v[0])); }, {x});
  require_gradcheck("tanh", [](auto& t, const Vars& v) { return weighted_sum(t, tanh(v[0])); }, {x});
  require_gradcheck("exp", [](auto& t, const Vars& v) { return weighted_sum(t, exp(v[0])); }, {x});
  // ReLU and its square: keep inputs away from the kink at 0
  auto away = x;
  for (double& v : away) v = v >= 0 ? v + 0.1 : v - 0.1;
  require_gradcheck("relu", [](auto& t, const Vars& v) { return weighted_sum(t, relu(v[0])); }, {away});
  require_gradcheck("relu_sq", [](auto& t, const Vars& v) { return weighted_sum(t, relu_sq(v[0])); }, {away});
  require_gradcheck("dropout",
                    [](auto& t, const Vars& v) {
                      Rng rng(77); // the same mask at every evaluation
                      return weighted_sum(t, dropout(v[0], 0.3, rng));
                    },
                    {x});
  require_gradcheck("token_shift", [](auto& t, const Vars& v) { return weighted_sum(t, token_shift(v[0])); },
                    {rnd({2, 4, 3}, 16)});
  require_gradcheck("token_shift 2d",
                    [](auto& t, const Vars& v) { return weighted_sum(t, token_shift(v[0])); },
                    {rnd({4, 3}, 17)});
  Tape<double> t;
  const auto ts = token_shift(t.leaf(Tensor<double>({1, 3, 2}, {1, 2, 3, 4, 5, 6})));
  CHECK(std::vector<double>(ts.value().begin(), ts.value().end()) == std::vector<double>{0, 0, 1, 2, 3, 4});
  Rng r1(5), r2(5);
  const auto d1 = dropout(t.leaf(rnd({100}, 1)), 0.5, r1), d2 = dropout(t.leaf(rnd({100}, 1)), 0.5, r2);
  CHECK(std::equal(d1.value().begin(), d1.value().end(), d2.value().begin()));
  const auto same = t.leaf(rnd({3}, 1));
  CHECK(dropout(same, 0.5, r1, false).index() == same.index());
  CHECK_THROWS_AS(dropout(same, 1.0, r1), Error);
}

TEST_CASE("gradcheck: losses") {
  const auto logits = rnd({5, 4}, 18, -2, 2);
  const std::vector<std::int64_t> targets{1, -100, 3, 0, 2};
  require_gradcheck("cross_entropy", [&](auto&, const Vars& v) { return cross_entropy(v[0], targets); },
                    {logits});
  require_gradcheck("mse", [](auto&, const Vars& v) { return mse_loss(v[0], v[1]); },
                    {logits, rnd({5, 4}, 19)});
  require_gradcheck("soft_ce", [](auto&, const Vars& v) { return soft_cross_entropy(v[0], v[1], 2.0); },
                    {logits, rnd({5, 4}, 20)});
  require_gradcheck("kl", [](auto&, const Vars& v) { return kl_divergence(v[0], v[1]); },
                    {logits, rnd({5, 4}, 21)});
  Tape<double> t;
  const std::vector<std::int64_t> bad{1, 2, 9, 0, 1};
  CHECK_THROWS_WITH_AS(cross_entropy(t.leaf(logits), bad), doctest::Contains("target 9"), Error);
  const std::vector<std::int64_t> all_ignored(5, -100);
  CHECK(cross_entropy(t.leaf(logits), all_ignored).value().data()[0] == 0.0);
}

TEST_CASE("spike op: forward is the firing test, gradient is the surrogate formula") {
  Tape<double> t;
  const auto x = t.leaf(Tensor<double>({5}, {0.2, 0.9, 1.0, 1.3, 2.5}));
  const auto s = spike<surrogate::ATan<ratio<2>>>(x, 1.0);
  CHECK(std::vector<double>(s.value().begin(), s.value().end()) == std::vector<double>{0, 0, 1, 1, 1});
  const auto sg = spike<surrogate::Sigmoid<ratio<4>>, fire::Greater>(x, 1.0);
  CHECK(sg.value().data()[2] == 0.0); // strict test at exactly theta
  t.backward(sum(s));
  for (std::size_t i = 0; i < 5; ++i)
    CHECK(x.grad().data()[i] == doctest::Approx(surrogate::ATan<ratio<2>>::grad(x.value().data()[i] - 1.0)));
}

TEST_CASE("neuron op: BPTT through a LIF population on the tape equals the neuron's own backward") {
  Tape<double> t;
  const auto xt = rnd({6, 2, 5}, 22, 0, 2);
  const auto x = t.leaf(xt);
  SpikeGptLIF<double> lif;
  SpikeGptLIF<double>::ParamGrads pg{};
  const auto s = neuron(lif, x, &pg);
  t.backward(weighted_sum(t, s, 3));
  NeuronTrace<double> trace;
  (void)lif.forward(xt, &trace);
  SpikeGptLIF<double>::ParamGrads pg2{};
  const auto g = rnd({6, 2, 5}, 3);
  const auto gx = lif.backward(g, trace, &pg2);
  spikelm_test::require_close(x.grad().data(), gx.data(), gx.size(), 1e-14, 1e-14, "dx");
  CHECK(pg[0] == doctest::Approx(pg2[0]));
  CHECK(pg[1] == doctest::Approx(pg2[1]));
}

TEST_CASE("tape: parameters accumulate, add-or-set, no-grad, clear, errors") {
  ParameterSet<double> ps;
  auto& w = ps.add("w", Tensor<double>({2, 2}, {1, 2, 3, 4}));
  auto& b = ps.add("b", Tensor<double>({2}, {0.5, -0.5}));
  CHECK(w.decay);
  CHECK_FALSE(b.decay);
  CHECK(ps.numel() == 6);
  CHECK_THROWS_WITH_AS(ps.add("w", Tensor<double>({1})), doctest::Contains("already exists"), Error);
  CHECK_THROWS_WITH_AS((void)ps["nope"], doctest::Contains("no parameter named 'nope'"), Error);
  ps.zero_grad();
  Tape<double> t;
  const auto x = t.constant(Tensor<double>({1, 2}, {1, 1}));
  for (int rep = 0; rep < 2; ++rep) { // two backward passes accumulate into the parameter
    const auto y = linear(x, t.param(w), nullptr);
    const auto l = sum(add(y, t.param(b)));
    t.backward(l);
  }
  // dL/dW[i, j] = x[j] per pass; dL/db = 1 per pass
  for (double g : w.grad) CHECK(g == 2.0);
  for (double g : b.grad) CHECK(g == 2.0);
  ps.zero_grad();
  for (double g : ps.flat_grad()) CHECK(g == 0.0);

  // a Var used twice in one graph receives both contributions (add-or-set)
  const auto v = t.leaf(Tensor<double>({2}, {3, 4}));
  t.backward(sum(mul(v, v)));
  CHECK(v.grad().data()[0] == 6.0);
  CHECK(v.grad().data()[1] == 8.0);

  // errors
  const auto big = t.leaf(Tensor<double>({3}));
  CHECK_THROWS_WITH_AS(t.backward(big), doctest::Contains("needs a seed gradient"), Error);
  const Tensor<double> seed({3}, 1.0);
  t.backward(scale(big, 2.0), &seed);
  CHECK(big.grad().data()[0] == 2.0);
  const Tensor<double> bad_seed({2}, 1.0);
  CHECK_THROWS_AS(t.backward(big, &bad_seed), Error);
  CHECK_THROWS_WITH_AS(t.backward(sum(t.constant(Tensor<double>({2})))), doctest::Contains("does not depend"),
                       Error);
  t.clear();
  CHECK_FALSE(v.valid());
  CHECK_THROWS_WITH_AS((void)v.value(), doctest::Contains("after its tape was cleared"), Error);
  Tape<double> other;
  CHECK_THROWS_WITH_AS(add(t.leaf(Tensor<double>({1})), other.leaf(Tensor<double>({1}))),
                       doctest::Contains("another tape"), Error);

  // no-grad: values computed, nothing recorded for backward
  {
    NoGradGuard guard;
    CHECK_FALSE(grad_enabled());
    const auto y = tanh(t.param(w));
    CHECK_FALSE(y.requires_grad());
    CHECK(y.value().data()[0] == doctest::Approx(std::tanh(1.0)));
  }
  CHECK(grad_enabled());
}

TEST_CASE("embedding gradient touches only the rows that were used") {
  ParameterSet<float> ps;
  auto& table = ps.add("emb", Tensor<float>({6, 3}, 1.f));
  ps.zero_grad();
  Tape<float> t;
  const std::vector<std::int64_t> ids{1, 4, 1};
  t.backward(sum(embedding(t.param(table), ids)));
  for (std::size_t r = 0; r < 6; ++r)
    for (std::size_t c = 0; c < 3; ++c) CHECK(table.grad(r, c) == (r == 1 ? 2.f : (r == 4 ? 1.f : 0.f)));
}

TEST_CASE("losses and kernels match PyTorch (fixtures)") {
  const spikelm_test::Fixtures f("reference/fixtures/optim_losses.txt");
  auto grads_match = [](const Var<double>& v, const spikelm_test::FixtureTensor& want, const char* what) {
    spikelm_test::require_close(v.grad().data(), want.values.data(), want.values.size(), 1e-9, 1e-12, what);
  };
  auto value_is = [](const Var<double>& v, const spikelm_test::FixtureTensor& want) {
    CHECK(v.value().data()[0] == doctest::Approx(want.values[0]).epsilon(1e-12));
  };
  {
    Tape<double> t;
    const auto logits = t.leaf(f["loss/ce/logits"].as<double>());
    std::vector<std::int64_t> tg;
    for (double v : f["loss/ce/targets"].values) tg.push_back(static_cast<std::int64_t>(v));
    const auto l = cross_entropy(logits, tg);
    t.backward(l);
    value_is(l, f["loss/ce/value"]);
    grads_match(logits, f["loss/ce/grad_logits"], "ce");
  }
  {
    Tape<double> t;
    const auto a = t.leaf(f["loss/mse/a"].as<double>()), b = t.leaf(f["loss/mse/b"].as<double>());
    const auto l = mse_loss(a, b);
    t.backward(l);
    value_is(l, f["loss/mse/value"]);
    grads_match(a, f["loss/mse/grad_a"], "mse a");
    grads_match(b, f["loss/mse/grad_b"], "mse b");
  }
  for (std::string c : {"loss/soft_ce", "loss/soft_ce_t1"}) {
    Tape<double> t;
    const auto zs = t.leaf(f[c + "/z_s"].as<double>()), zt = t.leaf(f[c + "/z_t"].as<double>());
    const auto l = soft_cross_entropy(zs, zt, f[c + "/tau"].values[0]);
    t.backward(l);
    value_is(l, f[c + "/value"]);
    grads_match(zs, f[c + "/grad_zs"], "soft ce student");
    grads_match(zt, f[c + "/grad_zt"], "soft ce teacher");
  }
  {
    Tape<double> t;
    const auto zs = t.leaf(f["loss/kl/z_s"].as<double>()), zt = t.leaf(f["loss/kl/z_t"].as<double>());
    const auto l = kl_divergence(zs, zt);
    t.backward(l);
    value_is(l, f["loss/kl/value"]);
    grads_match(zs, f["loss/kl/grad_zs"], "kl student");
    grads_match(zt, f["loss/kl/grad_zt"], "kl teacher");
  }
  {
    Tape<double> t;
    const auto x = t.leaf(f["loss/log_softmax/x"].as<double>());
    const auto y = log_softmax(x);
    spikelm_test::require_close(y.value().data(), f["loss/log_softmax/y"].values.data(), y.value().size(),
                                1e-12, 1e-12, "log_softmax");
    t.backward(sum(mul(y, t.constant(f["loss/log_softmax/w"].as<double>()))));
    grads_match(x, f["loss/log_softmax/grad_x"], "log_softmax grad");
  }
  {
    Tape<double> t;
    const auto x = t.leaf(f["loss/layernorm/x"].as<double>());
    const auto g = t.leaf(f["loss/layernorm/weight"].as<double>()),
               b = t.leaf(f["loss/layernorm/bias"].as<double>());
    const auto y = layer_norm(x, g, b, 1e-5);
    spikelm_test::require_close(y.value().data(), f["loss/layernorm/y"].values.data(), y.value().size(),
                                1e-10, 1e-12, "layernorm");
    t.backward(sum(mul(y, t.constant(f["loss/layernorm/w"].as<double>()))));
    grads_match(x, f["loss/layernorm/grad_x"], "ln x");
    grads_match(g, f["loss/layernorm/grad_weight"], "ln weight");
    grads_match(b, f["loss/layernorm/grad_bias"], "ln bias");
  }
  {
    Tape<double> t;
    const auto x = t.leaf(f["loss/gelu/x"].as<double>());
    const auto x2 = t.leaf(f["loss/gelu/x"].as<double>());
    const auto y = gelu(x), y2 = gelu_tanh(x2);
    spikelm_test::require_close(y.value().data(), f["loss/gelu/y"].values.data(), 20, 1e-12, 1e-13, "gelu");
    spikelm_test::require_close(y2.value().data(), f["loss/gelu/y_tanh"].values.data(), 20, 1e-12, 1e-13,
                                "gelu tanh");
    t.backward(add(sum(y), sum(y2)));
    grads_match(x, f["loss/gelu/grad"], "gelu grad");
    grads_match(x2, f["loss/gelu/grad_tanh"], "gelu tanh grad");
  }
}
