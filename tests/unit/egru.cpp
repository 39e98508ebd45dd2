// EGRU layer and LM: conformance with tests/reference/egru.py (PyTorch, float64), event-driven vs dense,
// streaming vs whole-sequence, sparse backward, errors.
#include "fixtures.hpp"
#include "test_util.hpp"

#include <algorithm>
#include <array>
#include <numeric>

#include <spikelm/models/egru_lm.hpp>

using namespace spikelm;
using spikelm_test::Fixtures;
using spikelm_test::require_close;

namespace {
const Fixtures& fixtures() {
  static const Fixtures f("reference/fixtures/egru.txt");
  return f;
}

void load(Parameter<double>& p, const std::string& name) {
  const auto t = fixtures()[name].as<double>();
  REQUIRE(t.shape() == p.value.shape());
  p.value.copy_from(t);
}

void layer_conformance(EgruMode mode) {
  const auto& f = fixtures();
  const auto x = f["layer/x"].as<double>();
  const std::size_t T_ = x.dim(0), B = x.dim(1), I = x.dim(2), H = f["layer/thr"].shape[0];
  ParameterSet<double> ps;
  EgruOptions opt;
  opt.mode = mode;
  EgruLayer<double> layer(ps, "", I, H, opt);
  for (const char* n : {"kernel", "recurrent_kernel", "bias", "recurrent_bias", "thr"})
    load(ps[n], std::string("layer/") + n);
  const auto y0 = f["layer/y0"].as<double>(), h0 = f["layer/h0"].as<double>();
  Tensor<double> y({T_, B, H}), h({T_, B, H}), tr({T_, B, H});
  EgruCache<double> cache;
  EgruActivity act;
  layer.forward(x, y0, h0, y.view(), h.view(), tr.view(), true, nullptr, &cache, &act);
  require_close(y.data(), f["layer/y"].values.data(), y.size(), 1e-9, 1e-12, "y");
  require_close(h.data(), f["layer/h"].values.data(), h.size(), 1e-9, 1e-12, "h");
  require_close(tr.data(), f["layer/trace"].values.data(), tr.size(), 1e-9, 1e-12, "trace");
  std::size_t fired = 0;
  for (double o : f["layer/o"].values) fired += o != 0.0;
  CHECK(act.events == fired);
  CHECK(fired > 0);

  EgruGrads<double> g;
  layer.backward(cache, f["layer/gy"].as<double>(), f["layer/gh"].as<double>(), f["layer/gt"].as<double>(), g,
                 &act);
  // every gradient against the fixture's tensors named prefix + parameter
  const auto check_grads = [&](const std::string& prefix, const EgruGrads<double>& gg) {
    const std::pair<const char*, const Tensor<double>*> grads[] = {{"x", &gg.x},
                                                                   {"y0", &gg.y0},
                                                                   {"h0", &gg.h0},
                                                                   {"kernel", &gg.kernel},
                                                                   {"recurrent_kernel", &gg.recurrent_kernel},
                                                                   {"bias", &gg.bias},
                                                                   {"recurrent_bias", &gg.recurrent_bias},
                                                                   {"thr", &gg.thr}};
    for (const auto& [name, t] : grads) {
      const std::string key = prefix + name;
      REQUIRE(t->size() == f[key].values.size());
      require_close(t->data(), f[key].values.data(), t->size(), 1e-8, 1e-11, key.c_str());
    }
  };
  check_grads("layer/grad_", g);
  if (mode == EgruMode::EventDriven)
    CHECK(act.backward_sparsity() > 0.0); // some recurrent gradients were skipped

  // EvNN's activity regularisation: the same loss plus penalty * mean(o)
  EgruOptions ar = opt;
  ar.activity_penalty = f["layer/ar_penalty"].values.at(0);
  layer.set_options(ar);
  EgruCache<double> cache_ar;
  layer.forward(x, y0, h0, y.view(), h.view(), tr.view(), true, nullptr, &cache_ar);
  EgruGrads<double> gar;
  layer.backward(cache_ar, f["layer/gy"].as<double>(), f["layer/gh"].as<double>(), f["layer/gt"].as<double>(),
                 gar);
  check_grads("layer/ar_grad_", gar);
  // the penalty changed the gradients (it is not a no-op)
  double moved = 0;
  for (std::size_t j = 0; j < H; ++j) moved += std::abs(gar.thr.data()[j] - g.thr.data()[j]);
  CHECK(moved > 1e-6);
}
} // namespace

TEST_CASE("conformance: EGRU layer forward and every gradient, event-driven") {
  layer_conformance(EgruMode::EventDriven);
}

TEST_CASE("conformance: EGRU layer forward and every gradient, dense") {
  layer_conformance(EgruMode::Dense);
}

TEST_CASE("conformance: EGRU language model log-probabilities and parameter gradients") {
  const auto& f = fixtures();
  const auto tokens_f = f["lm/tokens"];
  const std::size_t B = tokens_f.shape[0], T1 = tokens_f.shape[1], T_ = T1 - 1;
  EgruLmConfig cfg;
  cfg.vocab = f["lm/decoder.decoder.bias"].shape[0];
  cfg.embedding = f["lm/embeddings.weight"].shape[1];
  cfg.hidden = f["lm/rnns.0.thr"].shape[0];
  cfg.layers = 3;
  cfg.dropout_output = 0.0; // the fixture has no dropout
  EgruLM<double> lm(cfg);
  lm.parameters().for_each([&](Parameter<double>& p) { load(p, "lm/" + p.name); });
  std::vector<std::int64_t> in, tgt;
  for (std::size_t b = 0; b < B; ++b)
    for (std::size_t t = 0; t < T_; ++t) {
      in.push_back(static_cast<std::int64_t>(tokens_f.values[b * T1 + t]));
      tgt.push_back(static_cast<std::int64_t>(tokens_f.values[b * T1 + t + 1]));
    }
  for (EgruMode mode : {EgruMode::EventDriven, EgruMode::Dense}) {
    lm.set_mode(mode);
    Tape<double> tape;
    const auto logp = lm.forward(tape, in, B, false);
    const auto& want = f["lm/logp"]; // batch-major rows
    const std::size_t V = cfg.vocab;
    for (std::size_t b = 0; b < B; ++b)
      for (std::size_t t = 0; t < T_; ++t)
        require_close(logp.value().data() + (t * B + b) * V, want.values.data() + (b * T_ + t) * V, V, 1e-9,
                      1e-12, "logp");
    lm.parameters().zero_grad();
    Tape<double> tape2;
    const auto loss = lm.loss(tape2, in, tgt, B, true);
    CHECK(loss.value().data()[0] == doctest::Approx(f["lm/loss"].values[0]).epsilon(1e-10));
    tape2.backward(loss);
    lm.parameters().for_each([&](Parameter<double>& p) {
      const auto& g = f["lm/grad/" + p.name];
      REQUIRE(g.values.size() == p.grad.size());
      require_close(p.grad.data(), g.values.data(), g.values.size(), 1e-7, 1e-10, p.name);
    });
    for (std::size_t l = 0; l < 3; ++l) CHECK(lm.activity()[l].events > 0);
  }
}

namespace {
/// Activity counts of the Rows, Panels and dense paths (index 0, 1, 2) and the outputs y of the Rows path.
struct PathResults {
  std::array<EgruActivity, 3> act{};
  Tensor<float> y;
};

/// Forward (training) and backward of one layer with the Rows kernel, the Panels kernel and the dense path,
/// each with a fresh Rng(99) so that DropConnect and zoneout masks are the same; checks that both
/// event-driven paths give the dense outputs, event counts and gradients.
PathResults check_paths_agree(EgruLayer<float>& layer, const EgruOptions& opt, const Tensor<float>& x,
                              const Tensor<float>& dy) {
  const std::size_t H = layer.hidden_size();
  Tensor<float> y[3];
  EgruGrads<float> g[3];
  PathResults res;
  auto& act = res.act;
  for (int m = 0; m < 3; ++m) {
    EgruOptions o = opt;
    o.mode = m == 2 ? EgruMode::Dense : EgruMode::EventDriven;
    o.kernel = m == 1 ? EgruKernel::Panels : EgruKernel::Rows;
    layer.set_options(o);
    Rng rng(99);
    y[m] = Tensor<float>(dy.shape());
    EgruCache<float> cache;
    layer.forward(x, {}, {}, y[m].view(), {}, {}, true, &rng, &cache, &act[m]);
    layer.backward(cache, dy, {}, {}, g[m], &act[m]);
  }
  for (int m = 0; m < 2; ++m) {
    CAPTURE(m);
    require_close(y[m].data(), y[2].data(), y[2].size(), 1e-5, 1e-6, "y");
    CHECK(act[m].events == act[2].events);
    require_close(g[m].recurrent_kernel.data(), g[2].recurrent_kernel.data(), g[2].recurrent_kernel.size(),
                  1e-4, 1e-5, "dR");
    require_close(g[m].kernel.data(), g[2].kernel.data(), g[2].kernel.size(), 1e-4, 1e-5, "dW");
    require_close(g[m].recurrent_bias.data(), g[2].recurrent_bias.data(), g[2].recurrent_bias.size(), 1e-4,
                  1e-5, "dbr");
    require_close(g[m].thr.data(), g[2].thr.data(), H, 1e-4, 1e-5, "dthr");
    require_close(g[m].x.data(), g[2].x.data(), g[2].x.size(), 1e-4, 1e-5, "dx");
    require_close(g[m].y0.data(), g[2].y0.data(), g[2].y0.size(), 1e-4, 1e-5, "dy0");
  }
  res.y = std::move(y[0]);
  return res;
}

/// A layer with random parameters and random x, dy for check_paths_agree.
struct PathSetup {
  ParameterSet<float> ps;
  EgruLayer<float> layer;
  Tensor<float> x, dy;
  PathSetup(std::size_t T_, std::size_t B, std::size_t I, std::size_t H, const EgruOptions& opt,
            std::uint64_t seed, double thr_mean)
      : layer(ps, "l.", I, H, opt), x({T_, B, I}), dy({T_, B, H}) {
    Rng init(seed);
    layer.reset_parameters(init, thr_mean);
    init.fill_normal(x.span());
    init.fill_normal(dy.span());
  }
};
} // namespace

TEST_CASE("EGRU: event-driven and dense paths agree with DropConnect and zoneout (float)") {
  EgruOptions opt;
  opt.dropconnect = 0.3;
  opt.zoneout = 0.1;
  opt.support = 3.6; // the EGRU LM's narrower pseudo-derivative
  opt.dampening = 3.6;
  PathSetup s(12, 4, 24, 64, opt, 5, 0.2);
  const auto act = check_paths_agree(s.layer, opt, s.x, s.dy).act;
  CHECK(act[0].activity() > 0.02);
  CHECK(act[0].activity() < 0.9);
  // the sparse backward skipped work; the dense one did not
  CHECK(act[0].backward_sparsity() > 0.3);
  CHECK(act[2].backward_sparsity() == doctest::Approx(0.0));
}

TEST_CASE("EGRU: sparse backward equals dense at an odd width and a batch over 64 rows") {
  // 609 columns (scalar tails of the dR and dL/dy kernels) and 70 batch rows (the dL/dy gathering runs in
  // chunks of 64 rows)
  EgruOptions opt;
  opt.support = 3.6;
  opt.dampening = 3.6;
  PathSetup s(4, 70, 9, 203, opt, 8, 0.15);
  const auto act = check_paths_agree(s.layer, opt, s.x, s.dy).act;
  CHECK(act[0].activity() > 0.05);
  CHECK(act[0].backward_sparsity() > 0.05);
}

TEST_CASE("EGRU: both event-driven kernels equal dense for odd widths (tails), batch 1 and packed panels") {
  // H = 203 gives 609 columns: two column blocks of EgruKernel::Rows and a tail that is no multiple of the
  // SIMD width; batch 8 has steps with more events than units, which EgruKernel::Panels reads from packed
  // panels (kPackEvents)
  for (std::size_t H : {std::size_t(37), std::size_t(45), std::size_t(203)})
    for (std::size_t B : {std::size_t(1), std::size_t(3), std::size_t(8)}) {
      CAPTURE(H);
      CAPTURE(B);
      PathSetup s(6, B, 7, H, EgruOptions{}, H + B, 0.1);
      const auto res = check_paths_agree(s.layer, EgruOptions{}, s.x, s.dy);
      CHECK(res.act[0].activity() > 0.05);
      if (B == 8) { // some step (read by the next one) has at least H events
        std::size_t most = 0;
        for (std::size_t t = 0; t + 1 < 6; ++t)
          most = std::max<std::size_t>(most, static_cast<std::size_t>(std::count_if(
                                                 res.y.data() + t * B * H, res.y.data() + (t + 1) * B * H,
                                                 [](float v) { return v != 0.f; })));
        CHECK(most >= H);
      }
    }
}

TEST_CASE("EGRU LM: per-layer threshold means") {
  EgruLmConfig cfg;
  cfg.vocab = 7;
  cfg.embedding = 64;
  cfg.hidden = 256;
  cfg.layer_thr_mean = {0.6, 0.3, 0.05};
  EgruLM<double> lm(cfg);
  Rng rng(2);
  lm.reset_parameters(rng);
  const auto mean = [&](std::size_t l) {
    const auto& t = lm.parameters()["rnns." + std::to_string(l) + ".thr"].value;
    return std::accumulate(t.begin(), t.end(), 0.0) / static_cast<double>(t.size());
  };
  CHECK(mean(0) == doctest::Approx(0.6).epsilon(0.1));
  CHECK(mean(1) == doctest::Approx(0.3).epsilon(0.1));
  CHECK(mean(2) < 0.15); // 64 draws from Beta(0.16, 3): mean 0.05, standard error about 0.013
  cfg.layer_thr_mean = {0.2, 0.2};
  CHECK_THROWS_WITH_AS(EgruLM<double>{cfg}, doctest::Contains("2 per-layer threshold means for 3 layers"),
                       Error);
}

TEST_CASE("EGRU: rows of dR are zero for units that never emitted an event") {
  const std::size_t T_ = 6, B = 2, I = 8, H = 16;
  ParameterSet<double> ps;
  EgruLayer<double> layer(ps, "", I, H);
  Rng rng(3);
  layer.reset_parameters(rng, 0.5);
  for (std::size_t j = 0; j < H; j += 2)
    layer.thr().value.data()[j] = 1.0; // even units can never fire (|c| < 1)
  Tensor<double> x({T_, B, I}), y({T_, B, H}), dy({T_, B, H});
  rng.fill_normal(x.span());
  rng.fill_normal(dy.span());
  EgruCache<double> cache;
  layer.forward(x, {}, {}, y.view(), {}, {}, true, nullptr, &cache);
  EgruGrads<double> g;
  layer.backward(cache, dy, {}, {}, g);
  for (std::size_t j = 0; j < H; j += 2)
    for (std::size_t k = 0; k < 3 * H; ++k) REQUIRE(g.recurrent_kernel(j, k) == 0.0);
  double odd = 0;
  for (std::size_t j = 1; j < H; j += 2)
    for (std::size_t k = 0; k < 3 * H; ++k) odd += std::abs(g.recurrent_kernel(j, k));
  CHECK(odd > 0.0);
}

TEST_CASE("EGRU LM: token-by-token streaming equals the whole-sequence forward") {
  EgruLmConfig cfg;
  cfg.vocab = 17;
  cfg.embedding = 12;
  cfg.hidden = 20;
  EgruLM<double> lm(cfg);
  Rng rng(11);
  lm.reset_parameters(rng);
  std::vector<std::int64_t> tokens;
  for (int i = 0; i < 64; ++i) tokens.push_back((i * 7 + i / 3) % 17);
  Tape<double> tape;
  EgruLmState<double> whole_state;
  const auto whole = lm.forward(tape, tokens, 1, false, nullptr, &whole_state);
  EgruLmState<double> st;
  for (std::size_t t = 0; t < tokens.size(); ++t) {
    Tape<double> tp;
    const auto lp =
        lm.forward(tp, std::span<const std::int64_t>(&tokens[t], 1), 1, false, nullptr, &st, true);
    require_close(lp.value().data(), whole.value().data() + t * cfg.vocab, cfg.vocab, 1e-10, 1e-12, "step");
  }
  for (std::size_t l = 0; l < 3; ++l)
    require_close(st.y[l].data(), whole_state.y[l].data(), st.y[l].size(), 1e-12);
}

TEST_CASE("EGRU LM: training with dropout lowers the loss on a repeating sequence") {
  EgruLmConfig cfg;
  cfg.vocab = 8;
  cfg.embedding = 16;
  cfg.hidden = 32;
  cfg.layers = 2;
  cfg.dropout_output = 0.1;
  cfg.cell.dropconnect = 0.1;
  EgruLM<float> lm(cfg);
  Rng rng(2);
  lm.reset_parameters(rng);
  std::vector<std::int64_t> seq;
  for (int i = 0; i < 33; ++i) seq.push_back(i % 8);
  const std::span<const std::int64_t> in(seq.data(), 32), tgt(seq.data() + 1, 32);
  Adam<float> opt(lm.parameters(), {.lr = 0.02});
  float first = 0, last = 0;
  for (int step = 0; step < 100; ++step) {
    Tape<float> tape;
    lm.parameters().zero_grad();
    const auto loss = lm.loss(tape, in, tgt, 1, true, &rng);
    tape.backward(loss);
    opt.step();
    (step == 0 ? first : last) = loss.value().data()[0];
  }
  CHECK(last < 0.5f * first);
}

TEST_CASE("EGRU: bad input throws spikelm::Error") {
  ParameterSet<float> ps;
  EgruLayer<float> layer(ps, "", 4, 8);
  Tensor<float> x({3, 2, 5}), y({3, 2, 8});
  CHECK_THROWS_AS(layer.forward(x, {}, {}, y.view(), {}, {}, false, nullptr, nullptr), Error);
  Tensor<float> x2({3, 2, 4}), ybad({3, 2, 7});
  CHECK_THROWS_AS(layer.forward(x2, {}, {}, ybad.view(), {}, {}, false, nullptr, nullptr), Error);
  EgruOptions o;
  o.zoneout = 1.0;
  CHECK_THROWS_AS(layer.set_options(o), Error);
  EgruOptions dc;
  dc.dropconnect = 0.5;
  layer.set_options(dc);
  CHECK_THROWS_AS(layer.forward(x2, {}, {}, y.view(), {}, {}, true, nullptr, nullptr), Error); // needs an Rng
  EgruCache<float> inference;
  layer.set_options({});
  layer.forward(x2, {}, {}, y.view(), {}, {}, false, nullptr, &inference);
  EgruGrads<float> g;
  CHECK_THROWS_AS(layer.backward(inference, y, {}, {}, g), Error);

  EgruLmConfig cfg;
  cfg.vocab = 5;
  cfg.embedding = 4;
  cfg.hidden = 6;
  EgruLM<float> lm(cfg);
  Tape<float> tape;
  const std::vector<std::int64_t> bad{1, 2, 5};
  CHECK_THROWS_WITH_AS(lm.forward(tape, bad, 1, false), doctest::Contains("outside the vocabulary"), Error);
  const std::vector<std::int64_t> odd{1, 2, 3};
  CHECK_THROWS_AS(lm.forward(tape, odd, 2, false), Error);
  EgruLmConfig zero;
  CHECK_THROWS_AS(EgruLM<float>{zero}, Error);
}

TEST_CASE("conformance: EgruOptions::gru is torch.nn.GRU (the dense baseline)") {
  const auto& f = fixtures();
  const auto x = f["gru/x"].as<double>();
  const std::size_t T_ = x.dim(0), B = x.dim(1), I = x.dim(2), H = f["gru/h0"].shape[1];
  ParameterSet<double> ps;
  EgruOptions opt;
  opt.gru = true;
  opt.mode = EgruMode::Dense;
  EgruLayer<double> layer(ps, "", I, H, opt);
  for (const char* n : {"kernel", "recurrent_kernel", "bias", "recurrent_bias"})
    load(ps[n], std::string("gru/") + n);
  layer.thr().value.fill(0.7); // unused in GRU mode
  const auto h0 = f["gru/h0"].as<double>();
  Tensor<double> y({T_, B, H});
  EgruCache<double> cache;
  layer.forward(x, h0, h0, y.view(), {}, {}, true, nullptr, &cache);
  require_close(y.data(), f["gru/y"].values.data(), y.size(), 1e-10, 1e-12, "y");
  EgruGrads<double> g;
  layer.backward(cache, f["gru/gy"].as<double>(), {}, {}, g);
  require_close(g.x.data(), f["gru/grad_x"].values.data(), g.x.size(), 1e-9, 1e-12, "dx");
  require_close(g.kernel.data(), f["gru/grad_kernel"].values.data(), g.kernel.size(), 1e-9, 1e-12, "dW");
  require_close(g.recurrent_kernel.data(), f["gru/grad_recurrent_kernel"].values.data(),
                g.recurrent_kernel.size(), 1e-9, 1e-12, "dR");
  require_close(g.bias.data(), f["gru/grad_bias"].values.data(), g.bias.size(), 1e-9, 1e-12, "dbx");
  require_close(g.recurrent_bias.data(), f["gru/grad_recurrent_bias"].values.data(), g.recurrent_bias.size(),
                1e-9, 1e-12, "dbr");
  for (double v : g.thr) CHECK(v == 0.0);
}

TEST_CASE("EGRU: options reach the layer unchanged") {
  // g++ 12 at -O2 -march=native on AVX-512 once turned this sequence, with the options passed by value, into
  // a broadcast store that also wrote support into zoneout (the constructor now takes them by reference)
  ParameterSet<float> ps;
  EgruOptions o;
  o.support = 3.6;
  o.dampening = 3.6;
  EgruLayer<float> layer(ps, "", 64, 1024, o);
  auto same = [](const EgruOptions& a, const EgruOptions& b) {
    CHECK(a.dampening == b.dampening);
    CHECK(a.support == b.support);
    CHECK(a.zoneout == b.zoneout);
    CHECK(a.dropconnect == b.dropconnect);
    CHECK(a.activity_penalty == b.activity_penalty);
    CHECK(a.gru == b.gru);
    CHECK(a.mode == b.mode);
    CHECK(a.kernel == b.kernel);
  };
  same(layer.options(), o);
  CHECK(layer.options().zoneout == 0.0);
  EgruOptions p;
  p.dampening = 1.5;
  p.support = 2.5;
  p.zoneout = 0.25;
  p.dropconnect = 0.125;
  p.activity_penalty = 0.5;
  p.mode = EgruMode::Dense;
  p.kernel = EgruKernel::Panels;
  layer.set_options(p);
  same(layer.options(), p);
  EgruOptions bad;
  bad.kernel = static_cast<EgruKernel>(7);
  CHECK_THROWS_WITH_AS(layer.set_options(bad), doctest::Contains("unknown kernel"), Error);
}
