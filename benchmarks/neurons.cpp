// Neuron benchmarks: LIF (SpikeGPT's SpikingJelly form) neuron-steps per second over 1M neurons x 100 steps,
// as GB/s (input read + spikes written) and against a plain scalar loop computing the same update.
#include <spikelm/spikelm.hpp>

#include <benchmark/benchmark.h>

namespace {
using namespace spikelm;

constexpr std::size_t kNeurons = std::size_t(1) << 20;
constexpr std::size_t kSteps = 100;

const Tensor<float>& currents() {
  static const Tensor<float> x = [] {
    Tensor<float> t({kSteps, kNeurons}, uninitialized);
    Rng(1).fill_uniform(t.span(), -0.5f, 2.0f);
    return t;
  }();
  return x;
}

void report(benchmark::State& state) {
  const auto items = static_cast<std::int64_t>(kNeurons * kSteps);
  state.SetItemsProcessed(state.iterations() * items); // neuron-steps/s
  state.SetBytesProcessed(state.iterations() * items * static_cast<std::int64_t>(2 * sizeof(float)));
}

/// The library's multi-step forward (SIMD over neurons, OpenMP over neuron chunks).
void BM_LifForward(benchmark::State& state) {
  ScopedThreads threads(static_cast<int>(state.range(0)));
  const SpikeGptLIF<float> lif;
  const auto& x = currents();
  Tensor<float> s(x.shape(), uninitialized);
  auto st = lif.initial_state(kNeurons);
  lif.forward_into(x, s, nullptr, &st); // first touch of the output pages
  for (auto _ : state) {
    lif.forward_into(x, s, nullptr, &st);
    benchmark::DoNotOptimize(s.data());
  }
  report(state);
}
BENCHMARK(BM_LifForward)->Arg(1)->Arg(2)->ArgName("threads")->Unit(benchmark::kMillisecond);

/// The same forward keeping the trace a backward needs.
void BM_LifForwardWithTrace(benchmark::State& state) {
  ScopedThreads threads(1);
  const SpikeGptLIF<float> lif;
  const auto& x = currents();
  NeuronTrace<float> trace;
  Tensor<float> s(x.shape(), uninitialized);
  auto st = lif.initial_state(kNeurons);
  lif.forward_into(x, s, &trace, &st); // first touch of the output and trace pages
  for (auto _ : state) {
    lif.forward_into(x, s, &trace, &st);
    benchmark::DoNotOptimize(s.data());
  }
  report(state);
}
BENCHMARK(BM_LifForwardWithTrace)->Unit(benchmark::kMillisecond);

/// Plain scalar loop: the baseline the SIMD kernel is compared with (same update, same memory traffic,
/// time outer and neurons inner as one would write it; the compiler may vectorise it on its own).
void BM_LifPlainScalarLoop(benchmark::State& state) {
  const auto& x = currents();
  Tensor<float> s({kSteps, kNeurons}, uninitialized);
  std::vector<float> v(kNeurons);
  s.fill(0.f); // first touch of the output pages
  for (auto _ : state) {
    std::fill(v.begin(), v.end(), 0.f);
    for (std::size_t t = 0; t < kSteps; ++t) {
      const float* xt = x.data() + t * kNeurons;
      float* st = s.data() + t * kNeurons;
      for (std::size_t i = 0; i < kNeurons; ++i) {
        const float h = v[i] + (xt[i] - v[i]) * 0.5f;
        const bool spike = h >= 1.f;
        st[i] = spike ? 1.f : 0.f;
        v[i] = spike ? 0.f : h;
      }
    }
    benchmark::DoNotOptimize(s.data());
  }
  report(state);
}
BENCHMARK(BM_LifPlainScalarLoop)->Unit(benchmark::kMillisecond);

/// Backward through time over the same population.
void BM_LifBackward(benchmark::State& state) {
  ScopedThreads threads(1);
  const SpikeGptLIF<float> lif;
  const auto& x = currents();
  NeuronTrace<float> trace;
  (void)lif.forward(x, &trace);
  Tensor<float> g(x.shape(), 1.f);
  {
    auto warm = lif.backward(g, trace); // first touch of the output pages
    benchmark::DoNotOptimize(warm.data());
  }
  for (auto _ : state) {
    auto gx = lif.backward(g, trace);
    benchmark::DoNotOptimize(gx.data());
  }
  report(state);
}
BENCHMARK(BM_LifBackward)->Unit(benchmark::kMillisecond);

} // namespace

BENCHMARK_MAIN();
