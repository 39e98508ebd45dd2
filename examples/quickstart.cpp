// spikelm quick start: a population of spiking neurons driven by a signal, its spike raster and rates, and
// an event-driven layer fed by those spikes.
//
//   quickstart [steps]        (default 64 time steps)
#include <spikelm/spikelm.hpp>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <numbers>
#include <string>

int main(int argc, char** argv) {
  using namespace spikelm;
  const std::size_t steps = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 64;
  if (steps == 0 || steps > 100000) {
    std::fprintf(stderr, "usage: quickstart [steps in 1..100000]\n");
    return 2;
  }
  constexpr std::size_t neurons = 16;

  // 1. Input currents: a sine wave, each neuron with its own gain (neuron 0 weakest), plus a little noise.
  Tensor<float> current({steps, 1, neurons});
  Rng rng(2024);
  for (std::size_t t = 0; t < steps; ++t)
    for (std::size_t n = 0; n < neurons; ++n) {
      const double signal = 0.5 + 0.5 * std::sin(2 * std::numbers::pi * static_cast<double>(t) / 32.0);
      const double gain = 0.6 + 3.0 * static_cast<double>(n) / (neurons - 1);
      current(t, 0, n) = static_cast<float>(gain * signal) + rng.normal(0.f, 0.05f);
    }

  // 2. SpikeGPT's LIF neuron (SpikingJelly form: tau = 2, threshold 1, hard reset) over all steps.
  const SpikeGptLIF<float> lif;
  const Tensor<float> spikes = lif.forward(current);
  const SpikeTensor packed = SpikeTensor::from_dense(spikes);

  std::printf("spikelm %s quick start: %zu LIF neurons (tau 2, threshold 1) driven by a sine, %zu steps\n\n",
              version_string(), neurons, steps);
  std::printf("spike raster (rows: neurons, columns: time; '|' = spike)\n");
  const std::size_t shown = std::min<std::size_t>(steps, 100);
  const Tensor<float> rates = average_rate(spikes);
  for (std::size_t n = 0; n < neurons; ++n) {
    std::string row;
    for (std::size_t t = 0; t < shown; ++t) row += packed.test(t, 0, n) ? '|' : '.';
    std::printf("  n%02zu %s  rate %.3f\n", n, row.c_str(), static_cast<double>(rates(0, n)));
  }
  std::printf("\noverall firing rate %.3f (%zu spikes in %zu neuron-steps)\n", packed.rate(), packed.count(),
              steps * neurons);

  // 3. An event-driven layer: those spikes drive 8 outputs through W [16 x 8]; only active rows are summed.
  constexpr std::size_t outputs = 8;
  Tensor<float> w({neurons, outputs});
  rng.fill_normal(w.span(), 0.0f, 0.5f);
  Tensor<float> out({steps, 1, outputs});
  spike_matmul(packed, w, out);
  const double ac = static_cast<double>(packed.count() * outputs);
  const double dense_mac = static_cast<double>(steps * neurons * outputs);
  std::printf("event-driven layer 16 -> 8: %.0f accumulates instead of %.0f dense multiply-accumulates "
              "(%.1f%%)\n",
              ac, dense_mac, 100.0 * ac / dense_mac);
  // the metrics report (docs/metrics.md): operations of that layer per time step, the population's rate,
  // energy at 0.9 pJ per AC and 4.6 pJ per MAC against the dense layer
  OpsCounter ops;
  ops.add(spike_linear_ops(packed, w, "layer 16 -> 8"));
  ops.add_tokens(steps); // a "token" here is one time step
  FiringRateMonitor rates_monitor;
  rates_monitor.record("layer 16 -> 8", packed);
  std::printf("%s", make_report(ops, &rates_monitor).table().c_str());

  // 4. The fact SpikingBERT's equilibrium training rests on: an IF neuron's rate tends to clamp(I/theta, 0,
  // 1).
  std::printf("\nIF neuron rate under constant current (threshold 1), T = %zu:\n", steps);
  const SpikingBertIF<double> if_neuron;
  for (double i : {-0.2, 0.1, 0.25, 0.6, 0.9, 1.3}) {
    const Tensor<double> constant({steps, 1}, i);
    const double rate = average_rate(if_neuron.forward(constant))(0);
    std::printf("  I = %5.2f  rate %.4f  clamp(I, 0, 1) = %.2f  |error| %.4f <= 1/T = %.4f\n", i, rate,
                std::clamp(i, 0.0, 1.0), std::abs(rate - std::clamp(i, 0.0, 1.0)),
                1.0 / static_cast<double>(steps));
  }
  return 0;
}
