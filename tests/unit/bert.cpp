// BERT teacher and SpikingBERT student: conformance with tests/reference/bert.py (PyTorch, float64) — the
// teacher's hidden states, scores, pooled output, logits and gradients; the student's IF simulation (rates
// of every population, logits) in the event-driven and the dense form; the training graph's distillation
// losses and gradients — plus the attention ops' gradients, configuration parsing and errors.
#include "fixtures.hpp"
#include "test_util.hpp"

#include <spikelm/autograd/gradcheck.hpp>
#include <spikelm/metrics/spiking_bert.hpp>
#include <spikelm/models/bert.hpp>
#include <spikelm/models/spiking_bert.hpp>

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

using namespace spikelm;
using spikelm_test::Fixtures;
using spikelm_test::require_close;

namespace {
const Fixtures& fixtures() {
  static const Fixtures f("reference/fixtures/bert.txt");
  return f;
}

std::size_t count_layers(const std::string& prefix) {
  std::size_t n = 0;
  while (fixtures().has(prefix + "encoder.layer." + std::to_string(n) + ".output.dense.bias")) ++n;
  return n;
}

BertConfig fixture_config(const std::string& prefix) {
  const auto& f = fixtures();
  BertConfig c;
  c.vocab = f[prefix + "embeddings.word_embeddings.weight"].shape[0];
  c.hidden = f[prefix + "embeddings.word_embeddings.weight"].shape[1];
  c.max_positions = f[prefix + "embeddings.position_embeddings.weight"].shape[0];
  c.type_vocab = f[prefix + "embeddings.token_type_embeddings.weight"].shape[0];
  c.intermediate = f[prefix + "encoder.layer.0.intermediate.dense.weight"].shape[0];
  c.labels = f[prefix + "classifier.bias"].shape[0];
  c.layers = count_layers(prefix);
  c.heads = 3; // tests/reference/bert.py: H = 3
  return c;
}

BertBatch fixture_batch() {
  const auto& f = fixtures();
  BertBatch b;
  const auto& ids = f["teacher/input_ids"];
  b.batch = ids.shape[0];
  b.length = ids.shape[1];
  for (double v : ids.values) b.ids.push_back(static_cast<std::int64_t>(v));
  for (double v : f["teacher/token_type_ids"].values) b.types.push_back(static_cast<std::int64_t>(v));
  for (double v : f["teacher/attention_mask"].values) b.mask.push_back(static_cast<std::int64_t>(v));
  return b;
}

template <class Model>
void load(Model& m, const std::string& prefix) {
  m.parameters().for_each([&](auto& p) {
    const auto t = fixtures()[prefix + p.name].template as<typename Model::value_type>();
    m.set_parameter(p.name, t.cview());
  });
}

template <class T>
void require_tensor(TensorView<const T> got, const std::string& name, double rtol, double atol) {
  const auto& want = fixtures()[name];
  REQUIRE(got.shape() == want.shape);
  const auto w = want.as<T>();
  require_close(got.data(), w.data(), w.size(), rtol, atol, name);
}
} // namespace

// Bert and SpikingBert expose their element type for the helpers above.
template <class T>
struct TeacherD : Bert<T> {
  using value_type = T;
  using Bert<T>::Bert;
};
template <class T>
struct StudentD : SpikingBert<T> {
  using value_type = T;
  using SpikingBert<T>::SpikingBert;
};

TEST_CASE("teacher matches the PyTorch BERT: hidden states, scores, pooled output, logits, gradients") {
  TeacherD<double> m(fixture_config("teacher/"));
  load(m, "teacher/");
  Tape<double> tape;
  const BertOutputs<double> o = m.forward(tape, fixture_batch());
  REQUIRE(o.hidden.size() == m.config().layers + 1);
  for (std::size_t i = 0; i < o.hidden.size(); ++i)
    require_tensor(o.hidden[i].value(), "teacher/hidden." + std::to_string(i), 1e-9, 1e-9);
  for (std::size_t i = 0; i < o.scores.size(); ++i)
    require_tensor(o.scores[i].value(), "teacher/scores." + std::to_string(i), 1e-9, 1e-9);
  require_tensor(o.pooled.value(), "teacher/pooled", 1e-9, 1e-9);
  require_tensor(o.logits.value(), "teacher/logits", 1e-9, 1e-9);
  std::vector<std::int64_t> labels;
  for (double v : fixtures()["teacher/labels"].values) labels.push_back(static_cast<std::int64_t>(v));
  const Var<double> loss = cross_entropy(o.logits, std::span<const std::int64_t>(labels));
  CHECK(loss.value().data()[0] == doctest::Approx(fixtures()["teacher/loss"].values[0]).epsilon(1e-10));
  m.parameters().zero_grad();
  tape.backward(loss);
  m.parameters().for_each([&](Parameter<double>& p) {
    require_tensor(TensorView<const double>(p.grad), "teacher/grad/" + p.name, 1e-7, 1e-10);
  });
}

TEST_CASE("teacher in float matches to 1e-4") {
  TeacherD<float> m(fixture_config("teacher/"));
  load(m, "teacher/");
  Tape<float> tape;
  NoGradGuard nograd;
  const BertOutputs<float> o = m.forward(tape, fixture_batch());
  for (std::size_t i = 0; i < o.hidden.size(); ++i)
    require_tensor(o.hidden[i].value(), "teacher/hidden." + std::to_string(i), 1e-4, 1e-4);
  require_tensor(o.logits.value(), "teacher/logits", 1e-4, 1e-4);
}

TEST_CASE("teacher loads Hugging Face names with the bert. prefix and rejects wrong shapes") {
  TeacherD<double> a(fixture_config("teacher/")), b(fixture_config("teacher/"));
  load(a, "teacher/");
  a.parameters().for_each([&](const Parameter<double>& p) {
    const std::string stored = p.name.rfind("classifier.", 0) == 0 ? p.name : "bert." + p.name;
    b.set_parameter(stored, p.value.cview());
  });
  Tape<double> ta, tb;
  const auto oa = a.forward(ta, fixture_batch());
  const auto ob = b.forward(tb, fixture_batch());
  require_close(ob.logits.value().data(), oa.logits.value().data(), oa.logits.value().size(), 0.0, 0.0);
  Tensor<double> wrong({3, 3});
  CHECK_THROWS_WITH_AS(b.set_parameter("bert.pooler.dense.weight", wrong.cview()),
                       doctest::Contains("pooler.dense.weight"), Error);
  CHECK_THROWS_WITH_AS(b.set_parameter("encoder.layer.9.output.dense.bias", wrong.cview()),
                       doctest::Contains("no parameter named"), Error);
}

TEST_CASE("student simulation matches the PyTorch IF reference spike for spike (double)") {
  StudentD<double> m(fixture_config("student/"));
  load(m, "student/");
  const auto steps = static_cast<std::size_t>(fixtures()["student/T"].values[0]);
  for (SpikeCompute mode : {SpikeCompute::EventDriven, SpikeCompute::Dense}) {
    CAPTURE(static_cast<int>(mode));
    const SpikingBertRun<double> run = m.simulate(fixture_batch(), steps, mode);
    require_tensor(run.embedding_rates.cview(), "student/rates.E", 0.0, 1e-12);
    for (std::size_t l = 0; l < m.config().layers; ++l)
      for (std::size_t p = 0; p < bert_population_count; ++p)
        require_tensor(run.rates[l][p].cview(),
                       "student/rates." + std::to_string(l) + "." + bert_population_names[p], 0.0, 1e-12);
    require_tensor(run.logits.cview(), "student/logits", 1e-10, 1e-12);
    double spikes = run.embedding_spikes;
    for (const auto& l : run.spikes)
      for (double s : l) spikes += s;
    CHECK(spikes > 0.0);
  }
}

TEST_CASE("student simulation in float: rates within 1/T of the reference") {
  StudentD<float> m(fixture_config("student/"));
  load(m, "student/");
  const auto steps = static_cast<std::size_t>(fixtures()["student/T"].values[0]);
  const SpikingBertRun<float> run = m.simulate(fixture_batch(), steps);
  std::size_t total = 0, off = 0;
  auto compare = [&](const Tensor<float>& got, const std::string& name) {
    const auto want = fixtures()[name].as<float>();
    REQUIRE(got.size() == want.size());
    for (std::size_t i = 0; i < got.size(); ++i) {
      ++total;
      if (std::abs(got.data()[i] - want.data()[i]) > 1.0f / static_cast<float>(steps) + 1e-6f) ++off;
    }
  };
  compare(run.embedding_rates, "student/rates.E");
  for (std::size_t l = 0; l < m.config().layers; ++l)
    for (std::size_t p = 0; p < bert_population_count; ++p)
      compare(run.rates[l][p], "student/rates." + std::to_string(l) + "." + bert_population_names[p]);
  MESSAGE(off, " of ", total, " float rates differ from the float64 reference by more than 1/T");
  CHECK(off <= total / 100);
}

TEST_CASE("student training graph: distillation losses and every gradient match the reference") {
  StudentD<double> m(fixture_config("student/"));
  load(m, "student/");
  TeacherD<double> teacher(fixture_config("teacher/"));
  load(teacher, "teacher/");
  const BertBatch batch = fixture_batch();
  std::vector<Tensor<double>> t_hidden, t_scores;
  Tensor<double> t_logits;
  {
    Tape<double> tt;
    NoGradGuard nograd;
    const auto o = teacher.forward(tt, batch);
    for (const auto& h : o.hidden) t_hidden.emplace_back(h.value());
    for (const auto& s : o.scores) t_scores.emplace_back(s.value());
    t_logits = Tensor<double>(o.logits.value());
  }
  Tape<double> tape;
  const auto steps = static_cast<std::size_t>(fixtures()["student/T"].values[0]);
  const SpikingBertTrainOutputs<double> o = m.forward_train(tape, batch, steps);
  REQUIRE(o.reps.size() == m.config().layers + 1);
  require_tensor(o.logits.value(), "student/logits", 1e-10, 1e-12);
  for (std::size_t k = 0; k < o.scores.size(); ++k)
    require_tensor(o.scores[k].value(), "student/clamp_scores." + std::to_string(k), 1e-9, 1e-9);
  std::vector<Var<double>> fitted;
  for (const auto& r : o.reps) fitted.push_back(m.fit(r));
  const Var<double> hidden = distill_hidden_loss<double>(fitted, t_hidden);
  const Var<double> att = distill_attention_loss<double>(o.scores, t_scores);
  const Var<double> pred = soft_cross_entropy(o.logits, tape.constant(Tensor<double>(t_logits.cview())));
  CHECK(hidden.value().data()[0] ==
        doctest::Approx(fixtures()["student/loss/hidden"].values[0]).epsilon(1e-10));
  CHECK(att.value().data()[0] ==
        doctest::Approx(fixtures()["student/loss/attention"].values[0]).epsilon(1e-10));
  CHECK(pred.value().data()[0] ==
        doctest::Approx(fixtures()["student/loss/prediction"].values[0]).epsilon(1e-10));
  m.parameters().zero_grad();
  tape.backward(add(add(hidden, att), pred));
  m.parameters().for_each([&](Parameter<double>& p) {
    require_tensor(TensorView<const double>(p.grad), "student/grad/" + p.name, 1e-7, 1e-10);
  });
}

TEST_CASE("attention ops: gradients match finite differences") {
  Rng rng(7);
  const std::size_t B = 2, L = 3, heads = 2, D = 4;
  Tensor<double> q({B, L, D}), k({B, L, D}), v({B, L, D});
  for (Tensor<double>* t : {&q, &k, &v}) rng.fill_uniform(t->span(), -1.0, 1.0);
  const std::vector<double> bias{0, 0, -10000, 0, 0, 0};
  Tensor<double> w({B, L, D});
  rng.fill_uniform(w.span(), -1.0, 1.0);
  auto f = [&](Tape<double>& tape, const std::vector<Var<double>>& x) {
    const Var<double> s = attention_scores(x[0], x[1], heads, 0.7, std::span<const double>(bias));
    const Var<double> c = attention_context(softmax(s), x[2], heads);
    return sum(mul(c, tape.constant(Tensor<double>(w.cview()))));
  };
  const GradcheckResult r =
      gradcheck(f, {Tensor<double>(q.cview()), Tensor<double>(k.cview()), Tensor<double>(v.cview())});
  INFO(r.first_failure);
  CHECK(r.passed);
}

TEST_CASE("BertConfig reads Hugging Face config.json and rejects what it cannot run") {
  const std::string text = R"({"vocab_size": 100, "hidden_size": 32, "num_hidden_layers": 2,
    "num_attention_heads": 4, "intermediate_size": 64, "max_position_embeddings": 40, "type_vocab_size": 2,
    "layer_norm_eps": 1e-12, "hidden_act": "gelu", "id2label": {"0": "neg", "1": "pos", "2": "neutral"}})";
  const BertConfig c = BertConfig::from_json(text);
  CHECK(c.vocab == 100);
  CHECK(c.hidden == 32);
  CHECK(c.layers == 2);
  CHECK(c.heads == 4);
  CHECK(c.labels == 3);
  CHECK(c.head_dim() == 8);
  CHECK(BertConfig::from_json(c.to_json()) == c);
  CHECK_THROWS_WITH_AS((void)BertConfig::from_json(R"({"hidden_size": 30, "num_attention_heads": 4})"),
                       doctest::Contains("not a multiple"), Error);
  CHECK_THROWS_WITH_AS((void)BertConfig::from_json(R"({"hidden_act": "relu"})"),
                       doctest::Contains("hidden_act"), Error);
}

TEST_CASE("bad batches and layer maps throw with the reason") {
  BertConfig c;
  c.vocab = 10;
  c.hidden = 8;
  c.layers = 1;
  c.heads = 2;
  c.intermediate = 16;
  c.max_positions = 4;
  c.labels = 2;
  SpikingBert<float> m(c);
  const std::vector<std::int64_t> ok{1, 2, 3};
  CHECK_NOTHROW((void)m.simulate(BertBatch::single(ok), 2));
  const std::vector<std::int64_t> bad{1, 12};
  CHECK_THROWS_WITH_AS((void)m.simulate(BertBatch::single(bad), 2),
                       doctest::Contains("outside the vocabulary"), Error);
  const std::vector<std::int64_t> too_long{1, 2, 3, 4, 5};
  CHECK_THROWS_WITH_AS((void)m.simulate(BertBatch::single(too_long), 2), doctest::Contains("max_position"),
                       Error);
  BertBatch masked = BertBatch::single(ok);
  masked.mask = {1, 2, 0};
  CHECK_THROWS_WITH_AS((void)m.simulate(masked, 2), doctest::Contains("mask values"), Error);
  CHECK_THROWS_WITH_AS((void)m.simulate(BertBatch::single(ok), 0), doctest::Contains("time step"), Error);
  CHECK(bert_teacher_layer(2, 4, 12) == 6);
  CHECK_THROWS_WITH_AS((void)bert_teacher_layer(1, 4, 6), doctest::Contains("multiple"), Error);
}

TEST_CASE("synaptic operations of a SpikingBERT run follow the spike counts of its populations") {
  StudentD<double> m(fixture_config("student/"));
  load(m, "student/");
  const auto steps = static_cast<std::size_t>(fixtures()["student/T"].values[0]);
  const BertBatch batch = fixture_batch();
  const SpikingBertRun<double> run = m.simulate(batch, steps);
  const BertConfig& c = m.config();
  // spike counts from the fixture's rates (an independent path from the run's counters)
  auto spikes = [&](const std::string& name) {
    double s = 0;
    for (double v : fixtures()[name].values) s += v * static_cast<double>(steps);
    return static_cast<std::uint64_t>(std::llround(s));
  };
  const std::uint64_t d = c.hidden, f = c.intermediate, L = batch.length, R = batch.batch * L;
  const auto ops = spiking_bert_ops(c, run, batch.batch, batch.length);
  REQUIRE(ops.size() == c.layers + 1);
  for (std::size_t l = 0; l < c.layers; ++l) {
    const std::string p = "student/rates." + std::to_string(l) + ".";
    const std::uint64_t in =
        l == 0 ? spikes("student/rates.E") : spikes("student/rates." + std::to_string(l - 1) + ".O");
    CHECK(ops[l].ac == 3 * in * d + spikes(p + "K") * L + spikes(p + "V") * L + spikes(p + "A") * d +
                           spikes(p + "SO") * f + spikes(p + "IM") * d);
    CHECK(ops[l].mac == 0);
    CHECK(ops[l].dense_mac == 4 * R * d * d + 2 * R * d * f + 2 * batch.batch * L * L * d);
  }
  CHECK(ops.back().name == "classifier");
  CHECK(ops.back().mac == batch.batch * d * c.labels);
}

namespace {
/// The fixture student with feedback: student/* parameters plus student_fb/feedback.weight x fb_scale.
template <class T>
std::unique_ptr<SpikingBert<T>> feedback_student(double fb_scale, SpikingBertOptions opt = {}) {
  opt.feedback = true;
  auto m = std::make_unique<SpikingBert<T>>(fixture_config("student/"), opt);
  m->parameters().for_each([&](Parameter<T>& p) {
    const bool fb = p.name == "feedback.weight";
    Tensor<T> t = fixtures()[(fb ? "student_fb/" : "student/") + p.name].template as<T>();
    if (fb)
      for (T& v : t.span()) v *= static_cast<T>(fb_scale);
    m->set_parameter(p.name, t.cview());
  });
  return m;
}
} // namespace

TEST_CASE("student with feedback: simulation matches the PyTorch reference spike for spike") {
  auto m = feedback_student<double>(1.0);
  const auto steps = static_cast<std::size_t>(fixtures()["student/T"].values[0]);
  for (SpikeCompute mode : {SpikeCompute::EventDriven, SpikeCompute::Dense}) {
    CAPTURE(static_cast<int>(mode));
    const SpikingBertRun<double> run = m->simulate(fixture_batch(), steps, mode);
    require_tensor(run.embedding_rates.cview(), "student_fb/rates.E", 0.0, 1e-12);
    for (std::size_t l = 0; l < m->config().layers; ++l)
      for (std::size_t p = 0; p < bert_population_count; ++p)
        require_tensor(run.rates[l][p].cview(),
                       "student_fb/rates." + std::to_string(l) + "." + bert_population_names[p], 0.0, 1e-12);
    require_tensor(run.logits.cview(), "student_fb/logits", 1e-10, 1e-12);
  }
  // feedback changes the embedding population's spikes
  const auto plain = fixtures()["student/rates.E"].as<double>();
  const SpikingBertRun<double> run = m->simulate(fixture_batch(), steps);
  // the fed-back events are the last layer's O spikes of steps 0..T-2 (the simulation is causal, so a run
  // of T-1 steps emits exactly those), and the operation count charges d accumulates for each
  const SpikingBertRun<double> shorter = m->simulate(fixture_batch(), steps - 1);
  CHECK(run.feedback_spikes == shorter.spikes.back()[5]);
  CHECK(run.feedback_spikes > 0.0);
  const auto ops = spiking_bert_ops(m->config(), run, fixture_batch().batch, fixture_batch().length);
  const auto fb =
      std::find_if(ops.begin(), ops.end(), [](const LayerOps& o) { return o.name == "feedback"; });
  REQUIRE(fb != ops.end());
  CHECK(fb->ac == static_cast<std::uint64_t>(run.feedback_spikes) * m->config().hidden);
  CHECK(fb->dense_mac == 0);
  double diff = 0;
  for (std::size_t i = 0; i < plain.size(); ++i)
    diff += std::abs(plain.data()[i] - run.embedding_rates.data()[i]);
  CHECK(diff > 0.0);
}

TEST_CASE("student with feedback: the implicit gradient equals the derivative of the equilibrium") {
  SpikingBertOptions opt;
  opt.equilibrium.forward_solver = Solver::Anderson;
  opt.equilibrium.forward = SolverOptions{.max_iterations = 300, .tol_abs = 1e-12, .tol_rel = 1e-13};
  opt.equilibrium.backward_solver = Solver::Anderson;
  opt.equilibrium.backward = SolverOptions{.max_iterations = 300, .tol_abs = 1e-12, .tol_rel = 1e-13};
  auto m = feedback_student<double>(0.5, opt);
  const BertBatch batch = fixture_batch();
  Rng rng(11);
  std::vector<Tensor<double>> w;
  // loss = sum_k <reps_k, w_k> + <logits, w_c>: touches every representation and the head
  auto loss_of = [&](Tape<double>& tape) {
    const auto o = m->forward_train(tape, batch, 0, EquilibriumSource::ClampFixedPoint);
    if (w.empty()) {
      for (const auto& r : o.reps) {
        w.emplace_back(r.value().shape());
        rng.fill_uniform(w.back().span(), -1.0, 1.0);
      }
      w.emplace_back(o.logits.value().shape());
      rng.fill_uniform(w.back().span(), -1.0, 1.0);
    }
    Var<double> l = sum(mul(o.logits, tape.constant(Tensor<double>(w.back().cview()))));
    for (std::size_t k = 0; k < o.reps.size(); ++k)
      l = add(l, sum(mul(o.reps[k], tape.constant(Tensor<double>(w[k].cview())))));
    return l;
  };
  Tape<double> tape;
  const Var<double> loss = loss_of(tape);
  REQUIRE(m->equilibrium_stats().forward.converged);
  m->parameters().zero_grad();
  tape.backward(loss);
  REQUIRE(m->equilibrium_stats().backward_ran);
  CHECK(m->equilibrium_stats().backward.converged);
  MESSAGE("forward solve: ", m->equilibrium_stats().forward.iterations,
          " iterations; backward: ", m->equilibrium_stats().backward.iterations);
  // central differences of the loss at the re-solved equilibrium, for entries of several parameters
  auto value = [&] {
    NoGradGuard ng;
    Tape<double> t;
    return loss_of(t).value().data()[0];
  };
  std::size_t checked = 0;
  for (const char* name :
       {"feedback.weight", "encoder.layer.0.attention.self.key.weight", "encoder.layer.1.output.dense.bias",
        "embeddings.LayerNorm.weight", "encoder.layer.0.attention.self.query.weight"}) {
    Parameter<double>& p = m->parameters()[name];
    for (std::size_t i : {std::size_t(0), p.size() / 3, p.size() - 1}) {
      const double x0 = p.value.data()[i], h = 1e-6;
      p.value.data()[i] = x0 + h;
      const double up = value();
      p.value.data()[i] = x0 - h;
      const double down = value();
      p.value.data()[i] = x0;
      const double numeric = (up - down) / (2 * h), analytic = p.grad.data()[i];
      INFO(name, "[", i, "]: analytic ", analytic, ", numeric ", numeric);
      CHECK(std::abs(analytic - numeric) <= 1e-6 + 1e-5 * std::abs(numeric));
      ++checked;
    }
  }
  CHECK(checked == 15);
}

TEST_CASE("regression head: one label, MSE prediction loss, gradient of the head by hand") {
  BertConfig c = fixture_config("student/");
  c.labels = 1; // a regression task (Hugging Face: num_labels = 1, MSE loss)
  StudentD<double> m(c);
  Rng rng(21);
  m.reset_parameters(rng, 0.3);
  std::size_t loaded = 0;
  m.parameters().for_each([&](Parameter<double>& p) {
    const std::string name = "student/" + p.name;
    if (fixtures().has(name) && fixtures()[name].shape == p.shape()) {
      m.set_parameter(p.name, fixtures()[name].as<double>().cview());
      ++loaded;
    }
  });
  CHECK(loaded + 2 == m.parameters().size()); // all but classifier.weight [1, d] and classifier.bias [1]
  const BertBatch batch = fixture_batch();
  const std::size_t B = batch.batch, d = c.hidden;
  const auto steps = static_cast<std::size_t>(fixtures()["student/T"].values[0]);
  Tensor<double> target({B, 1});
  rng.fill_uniform(target.span(), -1.0, 1.0);
  Tape<double> tape;
  m.parameters().zero_grad();
  const auto o = m.forward_train(tape, batch, steps);
  REQUIRE(o.logits.value().shape() == Shape{B, 1});
  // the head reads the simulated rates: the same logits as inference
  const SpikingBertRun<double> run = m.simulate(batch, steps);
  require_close(o.logits.value().data(), run.logits.data(), B, 1e-12, 1e-12, "regression logits");
  tape.backward(mse_loss(o.logits, tape.constant(Tensor<double>(target.cview()))));
  // d/dW of mean_b (z_b - y_b)^2 = sum_b 2 / B (z_b - y_b) ReLU(a_O[b, CLS])
  const Tensor<double>& rates = run.output_rates();
  const Parameter<double>& w = m.parameters()["classifier.weight"];
  const Parameter<double>& bias = m.parameters()["classifier.bias"];
  std::vector<double> want(d, 0.0);
  double want_b = 0.0;
  for (std::size_t b = 0; b < B; ++b) {
    const double r = 2.0 / static_cast<double>(B) * (run.logits.data()[b] - target.data()[b]);
    want_b += r;
    for (std::size_t j = 0; j < d; ++j) want[j] += r * std::max(rates.data()[b * batch.length * d + j], 0.0);
  }
  require_close(w.grad.data(), want.data(), d, 1e-10, 1e-12, "classifier.weight grad");
  CHECK(bias.grad.data()[0] == doctest::Approx(want_b).epsilon(1e-10));
}
