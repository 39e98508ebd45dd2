// Trains a small spiking classifier with the autograd tape and prints the loss falling.
//
//   input x [B, 10] --linear--> current [B, 64] repeated over T = 8 steps --> LIF population (SpikingJelly
//   form, ATan surrogate, BPTT) --> firing rate over time [B, 64] --linear--> logits [B, 4] --> cross-entropy
//
// Data: four overlapping Gaussian clusters in 10 dimensions (seeded), 512 training and 256 test points.
//   train_classifier [steps]    (default 300)
#include <spikelm/spikelm.hpp>

#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace {
using namespace spikelm;

struct Dataset {
  Tensor<float> x;
  std::vector<std::int64_t> y;
};

Dataset make_clusters(std::size_t n, std::uint64_t seed) {
  constexpr std::size_t dims = 10, classes = 4;
  Rng centres_rng(1); // the same centres for train and test
  Tensor<float> centres({classes, dims});
  centres_rng.fill_normal(centres.span(), 0.f, 1.f);
  Rng rng(seed);
  Dataset d{Tensor<float>({n, dims}), std::vector<std::int64_t>(n)};
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t c = rng.uniform_index(classes);
    d.y[i] = static_cast<std::int64_t>(c);
    for (std::size_t k = 0; k < dims; ++k) d.x(i, k) = centres(c, k) + rng.normal(0.f, 1.3f);
  }
  return d;
}
} // namespace

int main(int argc, char** argv) {
  const std::size_t steps = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 300;
  if (steps == 0 || steps > 100000) {
    std::fprintf(stderr, "usage: train_classifier [steps in 1..100000]\n");
    return 2;
  }
  constexpr std::size_t T = 8, hidden = 64, classes = 4, batch = 32;
  const Dataset train = make_clusters(512, 2), test = make_clusters(256, 3);

  ParameterSet<float> params;
  Rng init(7);
  auto make = [&](const char* name, Shape s, float stddev) -> Parameter<float>& {
    Tensor<float> t(s);
    init.fill_normal(t.span(), 0.f, stddev);
    return params.add(name, std::move(t));
  };
  auto& w1 = make("fc1.weight", {hidden, 10}, 0.5f);
  auto& b1 = params.add("fc1.bias", Tensor<float>({hidden}, 0.5f));
  auto& w2 = make("fc2.weight", {classes, hidden}, 0.3f);
  auto& b2 = params.add("fc2.bias", Tensor<float>({classes}));
  AdamW<float> opt(params, {.lr = 0.01, .weight_decay = 0.01});
  const SpikeGptLIF<float> lif;

  // forward pass of a batch: returns logits and the mean firing rate
  auto forward = [&](Tape<float>& tape, const Tensor<float>& x, float& rate) {
    const auto current = linear(tape.constant(x), tape.param(w1), tape.param(b1));
    const auto repeated = add(tape.constant(Tensor<float>({T, x.dim(0), hidden})), current); // [T, B, H]
    const auto spikes = neuron(lif, repeated);
    rate =
        simd::sum(spikes.value().data(), spikes.value().size()) / static_cast<float>(spikes.value().size());
    const auto r = mean(spikes, 0); // firing rate over time, [B, H]
    return linear(r, tape.param(w2), tape.param(b2));
  };

  std::printf("training a spiking classifier: 10 -> %zu LIF (T = %zu) -> %zu, batch %zu, AdamW lr 0.01\n",
              hidden, T, classes, batch);
  Rng order(11);
  Tape<float> tape;
  double running = 0;
  for (std::size_t step = 0; step < steps; ++step) {
    Tensor<float> xb({batch, 10});
    std::vector<std::int64_t> yb(batch);
    for (std::size_t i = 0; i < batch; ++i) {
      const std::size_t k = order.uniform_index(train.y.size());
      std::copy(train.x[k].begin(), train.x[k].end(), xb[i].begin());
      yb[i] = train.y[k];
    }
    tape.clear();
    params.zero_grad();
    float rate = 0;
    const auto loss = cross_entropy(forward(tape, xb, rate), yb);
    tape.backward(loss);
    opt.step();
    const double l = loss.value().data()[0];
    running = step == 0 ? l : 0.9 * running + 0.1 * l;
    if (step % 25 == 0 || step + 1 == steps)
      std::printf("step %4zu  loss %.4f  (smoothed %.4f)  firing rate %.3f\n", step, l, running,
                  double(rate));
  }
  // test accuracy
  NoGradGuard no_grad;
  tape.clear();
  float rate = 0;
  const auto logits = forward(tape, test.x, rate);
  std::size_t correct = 0;
  for (std::size_t i = 0; i < test.y.size(); ++i) {
    const auto row = logits.value()[i];
    const auto best = static_cast<std::int64_t>(std::max_element(row.begin(), row.end()) - row.begin());
    correct += best == test.y[i];
  }
  std::printf("test accuracy %.3f (%zu / %zu), firing rate %.3f\n",
              static_cast<double>(correct) / static_cast<double>(test.y.size()), correct, test.y.size(),
              double(rate));
  // the metrics report of the test pass (docs/metrics.md), per sample: fc1 reads real inputs (MACs); the
  // event-driven form of fc2 adds a weight row per spike and step (the time mean commutes with fc2), against
  // the non-spiking network that applies fc2 once to a real vector
  const std::size_t n = test.y.size();
  const auto spikes = static_cast<std::uint64_t>(std::llround(double(rate) * double(T * n * hidden)));
  OpsCounter ops;
  ops.add(dense_linear_ops(n, 10, hidden, "fc1"));
  ops.add(LayerOps{"fc2", spikes * classes, 0, n * hidden * classes});
  ops.add_tokens(n);
  FiringRateMonitor monitor;
  monitor.record("fc2", spikes, T * n * hidden);
  std::printf("%s", make_report(ops, &monitor).table().c_str());
  return 0;
}
