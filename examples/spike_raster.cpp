// Renders the spike raster of a LIF population as an SVG (used in docs/neurons.md).
//
//   spike_raster [out.svg] [steps] [neurons]      (defaults: spike_raster.svg, 200, 40)
#include <spikelm/spikelm.hpp>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <numbers>
#include <string>

int main(int argc, char** argv) {
  using namespace spikelm;
  const std::string path = argc > 1 ? argv[1] : "spike_raster.svg";
  const std::size_t steps = argc > 2 ? std::strtoul(argv[2], nullptr, 10) : 200;
  const std::size_t neurons = argc > 3 ? std::strtoul(argv[3], nullptr, 10) : 40;
  if (steps == 0 || neurons == 0 || steps > 10000 || neurons > 2000) {
    std::fprintf(stderr, "usage: spike_raster [out.svg] [steps 1..10000] [neurons 1..2000]\n");
    return 2;
  }
  Tensor<float> current({steps, 1, neurons});
  Rng rng(7);
  for (std::size_t t = 0; t < steps; ++t)
    for (std::size_t n = 0; n < neurons; ++n) {
      const double drive = 0.6 + 0.6 * std::sin(2 * std::numbers::pi * static_cast<double>(t) / 80.0 +
                                                static_cast<double>(n) * 0.15);
      current(t, 0, n) = static_cast<float>(drive) + rng.normal(0.f, 0.3f);
    }
  const SpikeGptLIF<float> lif;
  const SpikeTensor spikes = SpikeTensor::from_dense(lif.forward(current));

  const double cell_w = 4, cell_h = 8, left = 40, top = 30, rate_h = 80;
  const double width = left + cell_w * static_cast<double>(steps) + 20;
  const double raster_h = cell_h * static_cast<double>(neurons);
  const double height = top + raster_h + rate_h + 50;
  std::ofstream svg(path);
  if (!svg) {
    std::fprintf(stderr, "spike_raster: cannot write %s\n", path.c_str());
    return 1;
  }
  svg << "<svg xmlns='http://www.w3.org/2000/svg' width='" << width << "' height='" << height
      << "' font-family='sans-serif' font-size='11'>\n<rect width='100%' height='100%' fill='white'/>\n";
  svg << "<text x='" << left << "' y='18'>LIF population (SpikingJelly form, tau 2, threshold 1): " << neurons
      << " neurons x " << steps << " steps, rate " << spikes.rate() << "</text>\n";
  for (std::size_t n = 0; n < neurons; ++n)
    for (std::size_t t = 0; t < steps; ++t)
      if (spikes.test(t, 0, n))
        svg << "<rect x='" << left + cell_w * static_cast<double>(t) << "' y='"
            << top + cell_h * static_cast<double>(n) << "' width='" << cell_w - 1 << "' height='"
            << cell_h - 1 << "' fill='black'/>\n";
  svg << "<text x='4' y='" << top + raster_h / 2 << "'>neuron</text>\n";
  // population rate per step
  const double base = top + raster_h + rate_h + 10;
  svg << "<polyline fill='none' stroke='steelblue' points='";
  for (std::size_t t = 0; t < steps; ++t)
    svg << left + cell_w * (static_cast<double>(t) + 0.5) << ','
        << base - rate_h * static_cast<double>(spikes.count(t)) / static_cast<double>(neurons) << ' ';
  svg << "'/>\n<text x='4' y='" << base - rate_h / 2 << "'>rate</text>\n";
  svg << "<text x='" << left << "' y='" << base + 20 << "'>time step</text>\n</svg>\n";
  std::printf("wrote %s (%zu spikes, rate %.3f)\n", path.c_str(), spikes.count(), spikes.rate());
  // the metrics report (docs/metrics.md): this program has no synaptic layer, so only the population's rate
  OpsCounter ops;
  ops.add_tokens(steps); // a "token" here is one time step
  FiringRateMonitor monitor;
  monitor.record("lif", spikes);
  std::printf("%s", make_report(ops, &monitor).table().c_str());
  return 0;
}
