// metrics/: operation counts against hand-computed counts, firing-rate monitors, the energy arithmetic,
// perplexity helpers, the EGRU LM's per-layer counts from a known forward, the report (table and JSON),
// errors.
#include "test_util.hpp"

#include <spikelm/metrics/egru.hpp>
#include <spikelm/metrics/energy.hpp>
#include <spikelm/metrics/firing.hpp>
#include <spikelm/metrics/ops.hpp>
#include <spikelm/metrics/perplexity.hpp>
#include <spikelm/metrics/report.hpp>
#include <spikelm/metrics/spike_gpt.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

using namespace spikelm;

namespace {
/// A 4 x 3 spike pattern with 6 spikes:
///   1 0 1
///   0 0 0
///   1 1 1
///   0 1 0
SpikeTensor pattern() {
  Tensor<float> d({4, 3});
  const float v[] = {1, 0, 1, 0, 0, 0, 1, 1, 1, 0, 1, 0};
  std::copy(std::begin(v), std::end(v), d.data());
  return SpikeTensor::from_dense(d);
}

std::vector<std::string> lines(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream is(s);
  for (std::string l; std::getline(is, l);) out.push_back(l);
  return out;
}
} // namespace

TEST_CASE("spike_linear_ops counts one AC per active input and output") {
  const SpikeTensor s = pattern();
  REQUIRE(s.count() == 6);
  const LayerOps ops = spike_linear_ops(s, 5, "fc");
  CHECK(ops.name == "fc");
  CHECK(ops.ac == 30);        // 6 spikes x 5 outputs
  CHECK(ops.mac == 0);        // no multiplies
  CHECK(ops.dense_mac == 60); // 4 rows x 3 inputs x 5 outputs
  // the same from the weight [3, 5]
  const Tensor<float> w({3, 5});
  CHECK(spike_linear_ops(s, w, "fc") == ops);
  // the count is the number of weight rows spike_matmul adds: one row of 5 per spike
  Tensor<float> ones({3, 5}), out({4, 5});
  ones.fill(1.0f);
  spike_matmul(s, ones, out);
  double added = 0;
  for (float v : out) added += v;
  CHECK(added == doctest::Approx(static_cast<double>(ops.ac)));
  // several steps: [2 steps, 2 rows, 3 neurons] with 4 spikes into 3 -> 2
  SpikeTensor t(2, 2, 3);
  t.set(0, 0);
  t.set(1, 2);
  t.set(3, 1);
  t.set(3, 2);
  t.rebuild_events();
  const LayerOps o2 = spike_linear_ops(t, 2);
  CHECK(o2.ac == 8);
  CHECK(o2.dense_mac == 2 * 2 * 3 * 2);
  // an all-silent input costs nothing but its dense equivalent does not change
  const LayerOps silent = spike_linear_ops(SpikeTensor(4, 3), 5);
  CHECK(silent.ac == 0);
  CHECK(silent.dense_mac == 60);
}

TEST_CASE("dense and graded linear ops") {
  const LayerOps d = dense_linear_ops(6, 4, 3, "dense");
  CHECK(d.ac == 0);
  CHECK(d.mac == 72);
  CHECK(d.dense_mac == 72);
  // from a tensor [2, 3, 4] and a weight [4, 6]: 6 rows
  const Tensor<float> x({2, 3, 4}), w({4, 6});
  const LayerOps dx = dense_linear_ops(x, w);
  CHECK(dx.mac == 6 * 4 * 6);
  CHECK(dx.dense_mac == 6 * 4 * 6);
  // graded events: 3 non-zero inputs of 2 x 4 into 4 -> 6
  Tensor<double> g({2, 4});
  const double gv[] = {0, 1.5, 0, -2, 0, 0, 0.5, 0};
  std::copy(std::begin(gv), std::end(gv), g.data());
  CHECK(count_nonzero(g) == 3);
  const LayerOps go = graded_linear_ops(g, Tensor<double>({4, 6}), "graded");
  CHECK(go.ac == 0);
  CHECK(go.mac == 18);
  CHECK(go.dense_mac == 48);
  // event_linear_ops by kind
  CHECK(event_linear_ops(3, 2, 4, 6, InputKind::Spikes).ac == 18);
  CHECK(event_linear_ops(3, 2, 4, 6, InputKind::GradedEvents).mac == 18);
  // LayerOps adds up
  LayerOps sum = d;
  sum += go;
  CHECK(sum.mac == 90);
  CHECK(sum.dense_mac == 120);
}

TEST_CASE("linear ops reject mismatched sizes and overflow") {
  const SpikeTensor s = pattern();
  CHECK_THROWS_AS((void)spike_linear_ops(s, Tensor<float>({4, 5})), Error);
  CHECK_THROWS_AS((void)spike_linear_ops(s, Tensor<float>({15})), Error);
  CHECK_THROWS_AS((void)dense_linear_ops(Tensor<float>({2, 3}), Tensor<float>({4, 6})), Error);
  CHECK_THROWS_AS((void)graded_linear_ops(Tensor<float>({2, 3}), Tensor<float>({4, 6})), Error);
  CHECK_THROWS_AS((void)event_linear_ops(9, 2, 4, 6, InputKind::Spikes), Error); // 9 > 2 x 4
  const std::uint64_t big = std::uint64_t{1} << 33;
  CHECK_THROWS_AS((void)dense_linear_ops(big, big, 2), Error);
  LayerOps a{"a", std::numeric_limits<std::uint64_t>::max(), 0, 0};
  CHECK_THROWS_AS((a += LayerOps{"b", 1, 0, 0}), Error);
  // stale event lists
  SpikeTensor t(2, 3);
  t.set(0, 1);
  CHECK_THROWS_AS((void)spike_linear_ops(t, 4), Error);
}

TEST_CASE("OpsCounter merges layers by name and counts tokens") {
  OpsCounter c;
  c.add(LayerOps{"a", 1, 2, 3});
  c.add(std::vector<LayerOps>{{"b", 0, 5, 5}, {"a", 10, 20, 30}});
  c.add_tokens(4);
  c.add_tokens(6);
  REQUIRE(c.layers().size() == 2);
  CHECK(c.layers()[0] == LayerOps{"a", 11, 22, 33});
  CHECK(c.layers()[1].name == "b");
  CHECK(c.layer("b").mac == 5);
  CHECK(c.contains("a"));
  CHECK_FALSE(c.contains("c"));
  CHECK_THROWS_AS((void)c.layer("c"), Error);
  CHECK(c.tokens() == 10);
  CHECK(c.total() == LayerOps{"total", 11, 27, 38});
  c.clear();
  CHECK(c.layers().empty());
  CHECK(c.tokens() == 0);
}

TEST_CASE("FiringRateMonitor accumulates spikes per population") {
  FiringRateMonitor m;
  m.record("in", pattern());         // 6 of 12
  m.record("in", SpikeTensor(2, 3)); // 0 of 6
  m.record("hidden", 1, 4);          // 1 of 4
  Tensor<double> y({2, 5});
  y.data()[0] = 0.7;
  y.data()[9] = -0.2;
  m.record("out", y); // graded events: 2 of 10
  REQUIRE(m.populations().size() == 3);
  CHECK(m.population("in").spikes == 6);
  CHECK(m.population("in").neuron_steps == 18);
  CHECK(m.rate("in") == doctest::Approx(1.0 / 3.0));
  CHECK(m.rate("hidden") == doctest::Approx(0.25));
  CHECK(m.rate("out") == doctest::Approx(0.2));
  CHECK(m.overall_rate() == doctest::Approx(9.0 / 32.0));
  CHECK(m.mean_rate() == doctest::Approx((1.0 / 3.0 + 0.25 + 0.2) / 3.0));
  CHECK_THROWS_AS(m.record("hidden", 5, 4), Error);
  CHECK_THROWS_AS((void)m.rate("missing"), Error);
  m.clear();
  CHECK(m.overall_rate() == 0.0);
  CHECK(m.mean_rate() == 0.0);
}

TEST_CASE("EnergyModel arithmetic") {
  const EnergyModel e;
  CHECK(e.pj_per_ac == 0.9);
  CHECK(e.pj_per_mac == 4.6);
  const LayerOps ops{"l", 30, 10, 100};
  CHECK(e.picojoules(ops) == doctest::Approx(30 * 0.9 + 10 * 4.6)); // 73 pJ
  CHECK(e.dense_picojoules(ops) == doctest::Approx(460.0));
  CHECK(e.dense_ratio(ops) == doctest::Approx(460.0 / 73.0));
  CHECK(e.picojoules(1000, 0) == doctest::Approx(900.0));
  const EnergyModel custom{1.0, 2.0};
  CHECK(custom.picojoules(ops) == doctest::Approx(50.0));
  CHECK(custom.dense_ratio(ops) == doctest::Approx(4.0));
  // a layer that did nothing
  CHECK(std::isinf(e.dense_ratio(LayerOps{"idle", 0, 0, 10})));
  CHECK(e.dense_ratio(LayerOps{"empty", 0, 0, 0}) == 1.0);
  // bad energies
  CHECK_THROWS_AS((EnergyModel{-0.1, 4.6}.validate()), Error);
  CHECK_THROWS_AS((void)(EnergyModel{0.9, -1.0}.picojoules(ops)), Error);
  CHECK_THROWS_AS((EnergyModel{std::nan(""), 4.6}.validate()), Error);
  CHECK_THROWS_AS((EnergyModel{0.9, HUGE_VAL}.validate()), Error);
  CHECK_NOTHROW((EnergyModel{0.0, 0.0}.validate()));
}

TEST_CASE("perplexity and bits per char from the NLL in nats") {
  CHECK(perplexity(std::log(8.0)) == doctest::Approx(8.0));
  CHECK(bits_per_char(std::log(8.0)) == doctest::Approx(3.0));
  CHECK(bits_per_token(std::log(2.0)) == doctest::Approx(1.0));
  CHECK(perplexity(0.0) == 1.0);
  // from a sum over a count
  CHECK(mean_nll(6.0, 4) == 1.5);
  CHECK(perplexity(3 * std::log(2.0), 3) == doctest::Approx(2.0));
  CHECK(bits_per_char(10 * std::log(4.0), 10) == doctest::Approx(2.0));
  CHECK(bits_per_token(10 * std::log(4.0), 10) == doctest::Approx(2.0));
  CHECK(perplexity(-1e-9) == doctest::Approx(1.0)); // float rounding of a near-certain prediction
  CHECK_THROWS_AS((void)mean_nll(1.0, 0), Error);
  CHECK_THROWS_AS((void)perplexity(-0.5), Error);
  CHECK_THROWS_AS((void)perplexity(std::nan("")), Error);
  CHECK_THROWS_AS((void)bits_per_char(HUGE_VAL), Error);
  CHECK_THROWS_AS((void)perplexity(-2.0, 3), Error);
}

TEST_CASE("EGRU LM ops from given activity counts") {
  EgruLmConfig cfg;
  cfg.vocab = 7;
  cfg.embedding = 3;
  cfg.hidden = 4;
  cfg.layers = 2; // layer 0: 3 -> 4, layer 1: 4 -> 3 (the last is as wide as the embedding)
  std::vector<EgruActivity> act(2);
  act[0].unit_steps = 6 * 4; // 6 token positions
  act[0].events = 10;
  act[1].unit_steps = 6 * 3;
  act[1].events = 5;
  CHECK(egru_lm_tokens(cfg, act) == 6);
  const auto ops = egru_lm_ops(cfg, act);
  REQUIRE(ops.size() == 3);
  CHECK(ops[0].name == "rnns.0");
  CHECK(ops[0].ac == 0);
  CHECK(ops[0].mac == 6 * 3 * 12 + 10 * 12); // dense embedding input + recurrent events: 336
  CHECK(ops[0].dense_mac == 6 * (3 + 4) * 12);
  CHECK(ops[1].name == "rnns.1");
  CHECK(ops[1].mac == 10 * 9 + 5 * 9); // graded events of layer 0 + own events: 135
  CHECK(ops[1].dense_mac == 6 * (4 + 3) * 9);
  CHECK(ops[2] == LayerOps{"decoder", 0, 6 * 3 * 7, 6 * 3 * 7});

  // mismatches
  CHECK_THROWS_AS((void)egru_lm_ops(cfg, std::vector<EgruActivity>(1)), Error);
  auto bad = act;
  bad[1].unit_steps = 5 * 3;
  CHECK_THROWS_AS((void)egru_lm_ops(cfg, bad), Error);
  bad = act;
  bad[0].events = 25;
  CHECK_THROWS_AS((void)egru_lm_ops(cfg, bad), Error);
  bad = act;
  bad[0].unit_steps = 6 * 4 + 1;
  CHECK_THROWS_AS((void)egru_lm_tokens(cfg, bad), Error);
}

TEST_CASE("EGRU LM per-layer counts match the events of a known forward") {
  EgruLmConfig cfg;
  cfg.vocab = 6;
  cfg.embedding = 4;
  cfg.hidden = 5;
  cfg.layers = 3;
  cfg.thr_mean = 0.05;
  EgruLM<double> lm(cfg);
  Rng rng(11);
  lm.reset_parameters(rng);
  // larger inputs and low thresholds so that every layer fires, but not everywhere
  for (double& v : lm.parameters()["embeddings.weight"].value) v *= 20.0;
  for (std::size_t l = 0; l < cfg.layers; ++l) {
    for (double& v : lm.layer(l).kernel().value) v *= 3.0;
    lm.layer(l).thr().value.fill(0.05);
  }
  const std::size_t B = 2, T_ = 7;
  const std::vector<std::int64_t> tokens{0, 1, 2, 3, 4, 5, 0, 5, 4, 3, 2, 1, 0, 2}; // [B, T] batch-major
  Tape<double> tape;
  NoGradGuard ng;
  (void)lm.forward(tape, tokens, B, false);

  // the same forward layer by layer (thresholds are clamped now), counting y != 0 by hand
  const auto& emb = lm.parameters()["embeddings.weight"].value;
  Tensor<double> x({T_, B, cfg.embedding});
  for (std::size_t t = 0; t < T_; ++t)
    for (std::size_t b = 0; b < B; ++b)
      for (std::size_t e = 0; e < cfg.embedding; ++e)
        x(t, b, e) = emb(static_cast<std::size_t>(tokens[b * T_ + t]), e);
  std::vector<std::uint64_t> nonzero;
  for (std::size_t l = 0; l < cfg.layers; ++l) {
    Tensor<double> y({T_, B, cfg.width(l)});
    lm.layer(l).forward(x, {}, {}, y.view(), {}, {}, false, nullptr, nullptr);
    std::uint64_t nz = 0;
    for (double v : y) nz += v != 0.0;
    nonzero.push_back(nz);
    x = std::move(y);
  }
  const std::uint64_t N = T_ * B;
  for (std::size_t l = 0; l < cfg.layers; ++l) {
    INFO("layer ", l);
    CHECK(lm.activity()[l].events == nonzero[l]);
    CHECK(nonzero[l] > 0);
    CHECK(nonzero[l] < N * cfg.width(l));
  }
  const auto ops = egru_lm_ops(cfg, lm.activity());
  REQUIRE(ops.size() == 4);
  // layer 0: 4 -> 5 (G = 15), layer 1: 5 -> 5 (G = 15), layer 2: 5 -> 4 (G = 12)
  CHECK(ops[0].mac == N * 4 * 15 + nonzero[0] * 15);
  CHECK(ops[1].mac == nonzero[0] * 15 + nonzero[1] * 15);
  CHECK(ops[2].mac == nonzero[1] * 12 + nonzero[2] * 12);
  CHECK(ops[0].dense_mac == N * (4 + 5) * 15);
  CHECK(ops[1].dense_mac == N * (5 + 5) * 15);
  CHECK(ops[2].dense_mac == N * (5 + 4) * 12);
  CHECK(ops[3].mac == N * 4 * 6);
  for (const auto& o : ops) CHECK(o.ac == 0);

  // recording two forwards adds up; firing rates are 1 - sparsity
  OpsCounter counter;
  FiringRateMonitor rates;
  record_egru_lm(lm, counter, &rates);
  record_egru_lm(lm, counter, &rates);
  CHECK(counter.tokens() == 2 * N);
  CHECK(counter.layer("rnns.1").mac == 2 * ops[1].mac);
  CHECK(counter.layer("decoder").dense_mac == 2 * ops[3].dense_mac);
  for (std::size_t l = 0; l < cfg.layers; ++l)
    CHECK(rates.rate(egru_layer_name(l)) == doctest::Approx(1.0 - lm.activity()[l].sparsity()));
  const MetricsReport rep = make_report(counter, &rates);
  CHECK(rep.rows().size() == 4);
  CHECK(rep.per_token(rep.row("rnns.0").mac) == doctest::Approx(static_cast<double>(ops[0].mac) / N));
  CHECK(rep.dense_ratio() > 1.0);
}

TEST_CASE("SpikeGPT ops from given spike counts") {
  SpikeGptConfig cfg;
  cfg.vocab = 7;
  cfg.layers = 2;
  cfg.d_model = 4; // ffn hidden 16
  cfg.context = 8;
  SpikeGptActivity a;
  a.tokens = 5;
  a.embedding_bits = 9;
  a.spikes = {{3, 4}, {2, 6}};
  const auto ops = spike_gpt_ops(cfg, a);
  REQUIRE(ops.size() == 5);
  CHECK(ops[0].name == "blocks.0.att");
  CHECK(ops[3].name == "blocks.1.ffn");
  CHECK(ops[4].name == "head");
  const std::uint64_t N = 5, d = 4, h = 16, V = 7;
  // layer 0 TimeMix reads the 9 embedding bits: k, v, r are 3 shifted projections d -> d
  CHECK(ops[0].ac == 3 * 2 * 9 * d);
  CHECK(ops[0].mac == 3 * 8 * N * d + N * d * d);
  CHECK(ops[0].dense_mac == 4 * N * d * d);
  // layer 0 ChannelMix reads 9 + 3 (LIF1): key d -> 4d and receptance d -> d shifted, value 4d -> d real
  CHECK(ops[1].ac == 2 * 12 * h + 2 * 12 * d);
  CHECK(ops[1].mac == 8 * N * h + 8 * N * d + N * h * d);
  CHECK(ops[1].dense_mac == N * d * h + N * d * d + N * h * d);
  CHECK(ops[2].ac == 3 * 2 * 16 * d);          // 9 + 3 + 4
  CHECK(ops[3].ac == 2 * 18 * h + 2 * 18 * d); // + 2
  CHECK(ops[4].ac == 24 * V);                  // + 6: the whole stream, no shift
  CHECK(ops[4].mac == 4 * N * V);
  CHECK(ops[4].dense_mac == N * d * V);

  OpsCounter counter;
  FiringRateMonitor rates;
  record_spike_gpt(cfg, a, counter, &rates);
  CHECK(counter.tokens() == N);
  CHECK(counter.layer("blocks.1.ffn").ac == ops[3].ac);
  CHECK(rates.rate("emb") == doctest::Approx(9.0 / 20.0));
  CHECK(rates.rate("blocks.1.lif2") == doctest::Approx(6.0 / 20.0));

  SpikeGptActivity twice = a;
  twice += a;
  CHECK(twice.tokens == 10);
  CHECK(twice.spikes[1][1] == 12);

  SpikeGptActivity bad = a;
  bad.spikes.pop_back();
  CHECK_THROWS_WITH_AS((void)spike_gpt_ops(cfg, bad), doctest::Contains("activity of 1 layers"), Error);
  CHECK_THROWS_AS(twice += bad, Error);
  bad = a;
  bad.spikes[0][1] = 21;
  CHECK_THROWS_WITH_AS((void)spike_gpt_ops(cfg, bad), doctest::Contains("21"), Error);
}

TEST_CASE("SpikeGPT activity from a forward counts the embedding bits and LIF spikes") {
  SpikeGptConfig cfg;
  cfg.vocab = 9;
  cfg.layers = 2;
  cfg.d_model = 8;
  cfg.context = 16;
  cfg.dropout = 0.0;
  SpikeGPT<double> model(cfg);
  Rng rng(5);
  model.reset_parameters(rng);
  model.parameters().for_each([](Parameter<double>& p) { // larger projections, so that the LIFs fire
    if (p.value.shape().rank() == 2 && p.name != "emb.weight")
      for (double& v : p.value) v *= 4.0;
  });
  const std::vector<std::int64_t> tokens{1, 4, 2, 8, 0, 3, 3, 5, 7, 6, 2, 1}; // B 2, T 6
  const std::size_t B = 2, T_ = 6;
  Tape<double> tape;
  NoGradGuard ng;
  (void)model.logits(tape, tokens, B, false);
  const SpikeGptActivity par = spike_gpt_activity(model, B * T_);
  // embedding bits by hand: H(E[token]) = [E >= 0]
  std::uint64_t bits = 0;
  const auto& emb = model.parameters()["emb.weight"].value;
  for (std::int64_t t : tokens)
    for (std::size_t c = 0; c < cfg.d_model; ++c) bits += emb(static_cast<std::size_t>(t), c) >= 0.0;
  CHECK(par.embedding_bits == bits);
  CHECK(par.tokens == B * T_);
  std::uint64_t total = 0;
  for (const auto& s : par.spikes) total += s[0] + s[1];
  CHECK(total > 0);

  // the recurrent mode, token by token, gives the same counts
  SpikeGptActivity rec;
  SpikeGptState<double> state = model.initial_state(B);
  for (std::size_t t = 0; t < T_; ++t) {
    const std::vector<std::int64_t> step{tokens[t], tokens[T_ + t]};
    (void)model.step(step, state);
    rec += spike_gpt_activity(model, B);
  }
  CHECK(rec.tokens == par.tokens);
  CHECK(rec.embedding_bits == par.embedding_bits);
  CHECK(rec.spikes == par.spikes);
}

namespace {
/// Two layers over 10 tokens, a population for the first and one without a layer.
MetricsReport sample_report() {
  OpsCounter c;
  c.add(LayerOps{"fc1", 300, 0, 600});
  c.add(LayerOps{"fc2", 0, 200, 200});
  c.add_tokens(10);
  FiringRateMonitor r;
  r.record("fc1", 30, 120);
  r.record("lif", 5, 50);
  return make_report(c, &r);
}
} // namespace

TEST_CASE("report rows totals and energy per token") {
  const MetricsReport rep = sample_report();
  REQUIRE(rep.rows().size() == 3);
  CHECK(rep.rows()[0] == ReportRow{"fc1", 300, 0, 600, 30, 120});
  CHECK(rep.rows()[1] == ReportRow{"fc2", 0, 200, 200, 0, 0});
  CHECK(rep.rows()[2] == ReportRow{"lif", 0, 0, 0, 5, 50});
  CHECK(rep.tokens() == 10);
  CHECK(rep.energy() == EnergyModel{});
  CHECK(rep.row("fc1").firing_rate() == doctest::Approx(0.25));
  CHECK_FALSE(rep.row("fc2").has_population());
  CHECK(rep.energy_pj_per_token(rep.row("fc1")) == doctest::Approx(27.0));
  CHECK(rep.dense_energy_pj_per_token(rep.row("fc1")) == doctest::Approx(276.0));
  CHECK(rep.energy_pj_per_token(rep.row("fc2")) == doctest::Approx(92.0));
  const ReportRow t = rep.total();
  CHECK(t == ReportRow{"total", 300, 200, 800, 35, 170});
  CHECK(rep.energy_pj_per_token(t) == doctest::Approx(119.0));
  CHECK(rep.dense_energy_pj_per_token(t) == doctest::Approx(368.0));
  CHECK(rep.dense_ratio() == doctest::Approx(368.0 / 119.0));
  // another energy model
  OpsCounter c;
  c.add(LayerOps{"x", 10, 10, 20});
  c.add_tokens(1);
  const MetricsReport r2 = make_report(c, nullptr, EnergyModel{1.0, 3.0});
  CHECK(r2.energy_pj_per_token(r2.row("x")) == doctest::Approx(40.0));
  CHECK(r2.dense_ratio() == doctest::Approx(1.5));
}

TEST_CASE("report table is aligned and has the values") {
  const std::string table = sample_report().table();
  const auto ls = lines(table);
  REQUIRE(ls.size() == 8); // title, header, rule, 3 rows, rule, total
  CHECK(ls[0] == "synaptic operations and energy per token over 10 tokens (0.90 pJ/AC, 4.60 pJ/MAC)");
  for (std::size_t i = 2; i < ls.size(); ++i) CHECK(ls[i].size() == ls[1].size());
  CHECK(ls[2].find_first_not_of('-') == std::string::npos);
  CHECK(ls[6] == ls[2]);
  CHECK(ls[1].rfind("layer", 0) == 0);
  for (const char* h : {"firing rate", "AC/token", "MAC/token", "dense MAC/token", "energy nJ/token",
                        "dense nJ/token", "dense/actual"})
    CHECK(ls[1].find(h) != std::string::npos);
  // fc1: rate 0.25, 30 AC, 0 MAC, 60 dense MAC per token, 0.027 nJ, 0.276 nJ, ratio 10.22
  std::istringstream fc1(ls[3]);
  std::vector<std::string> cells;
  for (std::string c; fc1 >> c;) cells.push_back(c);
  CHECK(cells == std::vector<std::string>{"fc1", "0.250", "30.0", "0.0", "60.0", "0.027", "0.276", "10.22"});
  CHECK(ls[4].find(" - ") != std::string::npos); // fc2 has no population
  std::istringstream lif(ls[5]);
  cells.clear();
  for (std::string c; lif >> c;) cells.push_back(c);
  CHECK(cells == std::vector<std::string>{"lif", "0.100", "0.0", "0.0", "0.0", "0.000", "0.000", "1.00"});
  std::istringstream total(ls[7]);
  cells.clear();
  for (std::string c; total >> c;) cells.push_back(c);
  CHECK(cells ==
        std::vector<std::string>{"total", "0.206", "30.0", "20.0", "80.0", "0.119", "0.368", "3.09"});
}

TEST_CASE("report JSON fields and round trip") {
  const MetricsReport rep = sample_report();
  const auto j = rep.to_json();
  CHECK(j["tokens"] == 10);
  CHECK(j["pj_per_ac"] == 0.9);
  CHECK(j["pj_per_mac"] == 4.6);
  REQUIRE(j["layers"].size() == 3);
  const auto& fc1 = j["layers"][0];
  CHECK(fc1["name"] == "fc1");
  CHECK(fc1["ac"] == 300);
  CHECK(fc1["mac"] == 0);
  CHECK(fc1["dense_mac"] == 600);
  CHECK(fc1["spikes"] == 30);
  CHECK(fc1["neuron_steps"] == 120);
  CHECK(fc1["firing_rate"].get<double>() == doctest::Approx(0.25));
  CHECK(fc1["ac_per_token"].get<double>() == doctest::Approx(30.0));
  CHECK(fc1["energy_nj_per_token"].get<double>() == doctest::Approx(0.027));
  CHECK(fc1["dense_energy_nj_per_token"].get<double>() == doctest::Approx(0.276));
  CHECK(fc1["dense_ratio"].get<double>() == doctest::Approx(276.0 / 27.0));
  CHECK(j["layers"][1]["firing_rate"].is_null());
  CHECK(j["total"]["name"] == "total");
  CHECK(j["total"]["dense_mac"] == 800);
  CHECK(j["total"]["dense_ratio"].get<double>() == doctest::Approx(368.0 / 119.0));
  // round trips: through the JSON value and through text
  CHECK(MetricsReport::from_json(j) == rep);
  CHECK(MetricsReport::parse(j.dump()) == rep);
  CHECK(MetricsReport::parse(j.dump(2)).table() == rep.table());
  // an infinite ratio is written as null
  OpsCounter c;
  c.add(LayerOps{"silent", 0, 0, 50});
  c.add_tokens(5);
  CHECK(make_report(c).to_json()["layers"][0]["dense_ratio"].is_null());
}

TEST_CASE("report rejects bad input") {
  // no tokens, too many spikes, duplicate names, negative energies
  CHECK_THROWS_AS(MetricsReport({}, 0), Error);
  CHECK_THROWS_AS(MetricsReport({ReportRow{"a", 0, 0, 0, 5, 4}}, 1), Error);
  CHECK_THROWS_AS(MetricsReport({ReportRow{"a", 0, 0, 0, 0, 0}, ReportRow{"a", 0, 0, 0, 0, 0}}, 1), Error);
  CHECK_THROWS_AS(MetricsReport({}, 1, EnergyModel{-0.9, 4.6}), Error);
  OpsCounter c;
  c.add(LayerOps{"a", 1, 1, 2});
  CHECK_THROWS_AS((void)make_report(c), Error); // no tokens
  c.add_tokens(1);
  CHECK_THROWS_AS((void)make_report(c, nullptr, EnergyModel{0.9, -4.6}), Error);
  // malformed JSON
  const std::string good = sample_report().to_json().dump();
  CHECK_NOTHROW((void)MetricsReport::parse(good));
  CHECK_THROWS_AS((void)MetricsReport::parse("{"), Error);
  CHECK_THROWS_AS((void)MetricsReport::parse("[]"), Error);
  CHECK_THROWS_AS((void)MetricsReport::parse(R"({"tokens": 1, "pj_per_ac": 0.9, "pj_per_mac": 4.6})"), Error);
  CHECK_THROWS_AS(
      (void)MetricsReport::parse(R"({"tokens": 1, "pj_per_ac": -1, "pj_per_mac": 4.6, "layers": []})"),
      Error);
  CHECK_THROWS_AS(
      (void)MetricsReport::parse(R"({"tokens": 0, "pj_per_ac": 0.9, "pj_per_mac": 4.6, "layers": []})"),
      Error);
  CHECK_THROWS_AS(
      (void)MetricsReport::parse(R"({"tokens": 1, "pj_per_ac": 0.9, "pj_per_mac": 4.6, "layers": )"
                                 R"([{"name": "a", "ac": -3, "mac": 0, "dense_mac": 0, "spikes": 0, )"
                                 R"("neuron_steps": 0}]})"),
      Error);
  CHECK_THROWS_AS(
      (void)MetricsReport::parse(R"({"tokens": 1, "pj_per_ac": 0.9, "pj_per_mac": 4.6, "layers": )"
                                 R"([{"name": "a", "ac": 1.5, "mac": 0, "dense_mac": 0, "spikes": 0, )"
                                 R"("neuron_steps": 0}]})"),
      Error);
  CHECK_THROWS_AS(
      (void)MetricsReport::parse(R"({"tokens": 1, "tokens": 2, "pj_per_ac": 0.9, "pj_per_mac": 4.6, )"
                                 R"("layers": []})"),
      Error); // duplicate key
  CHECK_THROWS_AS(
      (void)MetricsReport::parse(R"({"tokens": 1, "pj_per_ac": 0.9, "pj_per_mac": 4.6, "layers": )"
                                 R"([{"ac": 1, "mac": 0, "dense_mac": 0, "spikes": 0, )"
                                 R"("neuron_steps": 0}]})"),
      Error);                                            // no name
  CHECK_THROWS_AS((void)MetricsReport().table(), Error); // empty report
}
