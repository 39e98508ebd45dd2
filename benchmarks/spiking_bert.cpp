// SpikingBERT benchmarks on one shape: 4 layers, hidden 256, 4 heads, FFN 1024, vocabulary 3423, 6 labels,
// batch 8 sequences of 40 tokens, weights N(0, 0.08) (wide enough that every population fires; the mean rate
// is reported), one thread.
//  - BM_SpikingBertInfer/T/mode: SpikingBert::simulate over T steps (mode 0 = event-driven, 1 = dense
//    products with the 0/1 spike matrices). Counters: seq_per_s, mean_rate (over all populations).
//  - BM_SpikingBertTrainStep/T: one training step as the spiking_bert program takes it (simulate T steps,
//    the clamp-network graph on the tape, cross-entropy, backward). Counter: peak_heap_MiB = the largest
//    growth of live heap bytes during the step (heap_counter.hpp), which must not grow with T.
#include "heap_counter.hpp"

#include <spikelm/spikelm.hpp>

#include <benchmark/benchmark.h>

#include <memory>

namespace {
using namespace spikelm;
constexpr std::size_t kBatch = 8, kLength = 40;

BertConfig bench_config() {
  BertConfig c;
  c.vocab = 3423;
  c.hidden = 256;
  c.layers = 4;
  c.heads = 4;
  c.intermediate = 1024;
  c.max_positions = 64;
  c.labels = 6;
  return c;
}

SpikingBert<float>& model() {
  static std::unique_ptr<SpikingBert<float>> m = [] {
    auto p = std::make_unique<SpikingBert<float>>(bench_config());
    Rng rng(3);
    p->reset_parameters(rng, 0.08);
    return p;
  }();
  return *m;
}

BertBatch batch() {
  BertBatch b;
  b.batch = kBatch;
  b.length = kLength;
  Rng rng(5);
  std::vector<float> u(kBatch * kLength);
  rng.fill_uniform(std::span<float>(u), 0.f, 1.f);
  for (float v : u) b.ids.push_back(static_cast<std::int64_t>(v * 3422.f));
  return b;
}

double mean_rate(const SpikingBertRun<float>& run) {
  double spikes = run.embedding_spikes, neurons = static_cast<double>(run.embedding_rates.size());
  for (std::size_t l = 0; l < run.spikes.size(); ++l)
    for (std::size_t p = 0; p < bert_population_count; ++p) {
      spikes += run.spikes[l][p];
      neurons += static_cast<double>(run.rates[l][p].size());
    }
  return spikes / (neurons * static_cast<double>(run.steps));
}

void BM_SpikingBertInfer(benchmark::State& state) {
  ScopedThreads threads(1);
  Eigen::setNbThreads(1);
  const auto steps = static_cast<std::size_t>(state.range(0));
  const SpikeCompute mode = state.range(1) == 0 ? SpikeCompute::EventDriven : SpikeCompute::Dense;
  SpikingBert<float>& m = model();
  const BertBatch b = batch();
  double rate = 0;
  for (auto _ : state) {
    const SpikingBertRun<float> run = m.simulate(b, steps, mode);
    rate = mean_rate(run);
    benchmark::DoNotOptimize(run.logits.data());
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * kBatch));
  state.counters["seq_per_s"] =
      benchmark::Counter(static_cast<double>(state.iterations() * kBatch), benchmark::Counter::kIsRate);
  state.counters["mean_rate"] = rate;
}

void BM_SpikingBertTrainStep(benchmark::State& state) {
  ScopedThreads threads(1);
  Eigen::setNbThreads(1);
  const auto steps = static_cast<std::size_t>(state.range(0));
  SpikingBert<float>& m = model();
  const BertBatch b = batch();
  const std::vector<std::int64_t> labels = {0, 1, 2, 3, 4, 5, 0, 1};
  std::size_t peak = 0;
  for (auto _ : state) {
    const spikelm_bench::HeapPeak heap;
    {
      Tape<float> tape;
      m.parameters().zero_grad();
      const auto o = m.forward_train(tape, b, steps);
      const Var<float> loss = cross_entropy(o.logits, std::span<const std::int64_t>(labels));
      tape.backward(loss);
      benchmark::DoNotOptimize(loss.value().data());
    }
    peak = std::max(peak, heap.bytes());
  }
  state.counters["peak_heap_MiB"] = static_cast<double>(peak) / (1024.0 * 1024.0);
}

BENCHMARK(BM_SpikingBertInfer)
    ->ArgsProduct({{4, 8, 16, 32}, {0, 1}})
    ->ArgNames({"T", "dense"})
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_SpikingBertTrainStep)->Arg(4)->Arg(16)->Arg(64)->ArgName("T")->Unit(benchmark::kMillisecond);
} // namespace

BENCHMARK_MAIN();
