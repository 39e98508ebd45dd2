// SpikeGPT benchmarks.
//  - BM_SpikeGptGenerate/threads: recurrent-mode generation latency at the 216M shape (18 layers x 768,
//    vocabulary 50277, random weights, FP32), batch 1, one token per iteration: the time column is the
//    latency per token. Counter: weight_GBps (bytes of all two-dimensional parameters / time; this includes
//    the embedding table, of which a token reads one row, so it overstates the bytes streamed by about 18 %).
//  - BM_SpikeGptTrain/threads: one training step (parallel mode on the tape: forward, backward, Adam) at
//    L = 6, d = 256, context 256, batch 8, vocabulary 256 (byte level). Counter: tokens_per_s.
//  - BM_MemoryReadBandwidth/threads: a plain SIMD sum over as many bytes as the generation reads per token,
//  the
//    ceiling weight_GBps can reach on the machine. Counter: read_GBps.
// Compare with benchmarks/compare/spike_gpt_torch.py (the PyTorch reference timed on the same shapes).
#include <spikelm/spikelm.hpp>

#include <benchmark/benchmark.h>

#include <memory>

namespace {
using namespace spikelm;

SpikeGPT<float>& model_216m() {
  static std::unique_ptr<SpikeGPT<float>> m = [] {
    SpikeGptConfig cfg;
    cfg.vocab = 50277;
    cfg.layers = 18;
    cfg.d_model = 768;
    cfg.context = 1024;
    auto p = std::make_unique<SpikeGPT<float>>(cfg);
    Rng rng(1);
    p->reset_parameters(rng);
    return p;
  }();
  return *m;
}

void BM_SpikeGptGenerate(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0));
  ScopedThreads scope(threads);
  Eigen::setNbThreads(threads);
  SpikeGPT<float>& m = model_216m();
  SpikeGptState<float> st;
  Tensor<float> logits({1, m.config().vocab});
  std::int64_t token = 1;
  for (auto _ : state) {
    m.step(std::span<const std::int64_t>(&token, 1), st, logits.view());
    benchmark::DoNotOptimize(logits.data());
    token = (token * 31 + 7) % static_cast<std::int64_t>(m.config().vocab);
  }
  double bytes = 0;
  for (std::size_t i = 0; i < m.parameters().size(); ++i)
    if (m.parameters().at(i).value.rank() == 2)
      bytes += 4.0 * static_cast<double>(m.parameters().at(i).size());
  const auto iters = static_cast<double>(state.iterations());
  state.counters["weight_GBps"] = benchmark::Counter(iters * bytes / 1e9, benchmark::Counter::kIsRate);
}
BENCHMARK(BM_SpikeGptGenerate)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);

/// The machine's ceiling for generation: simd::sum over a buffer as large as the weight matrices one token
/// reads (the same bytes as weight_GBps counts), at 1 and 2 threads. Counter: read_GBps.
void BM_MemoryReadBandwidth(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0));
  ScopedThreads scope(threads);
  SpikeGPT<float>& m = model_216m();
  std::size_t n = 0;
  for (std::size_t i = 0; i < m.parameters().size(); ++i)
    if (m.parameters().at(i).value.rank() == 2) n += m.parameters().at(i).size();
  static Tensor<float> buffer = [n] {
    Tensor<float> t({n});
    Rng rng(4);
    rng.fill_uniform(t.span(), -1.f, 1.f);
    return t;
  }();
  for (auto _ : state) benchmark::DoNotOptimize(simd::sum(buffer.data(), buffer.size()));
  state.counters["read_GBps"] =
      benchmark::Counter(static_cast<double>(state.iterations()) * 4.0 * static_cast<double>(n) / 1e9,
                         benchmark::Counter::kIsRate);
}
BENCHMARK(BM_MemoryReadBandwidth)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(1.0);

void BM_SpikeGptTrain(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0));
  ScopedThreads scope(threads);
  Eigen::setNbThreads(threads);
  SpikeGptConfig cfg;
  cfg.vocab = 256;
  cfg.layers = 6;
  cfg.d_model = 256;
  cfg.context = 256;
  SpikeGPT<float> m(cfg);
  Rng rng(2);
  m.reset_parameters(rng);
  const std::size_t B = 8, T = 256;
  std::vector<std::int64_t> in(B * T), tgt(B * T);
  for (std::size_t i = 0; i < in.size(); ++i) {
    in[i] = static_cast<std::int64_t>((i * 13 + i / 7) % 256);
    tgt[i] = static_cast<std::int64_t>((i * 13 + (i + 1) / 7 + 13) % 256);
  }
  Adam<float> opt(m.parameters(), {.lr = 6e-4, .beta1 = 0.9, .beta2 = 0.99, .eps = 1e-8});
  for (auto _ : state) {
    Tape<float> tape;
    m.parameters().zero_grad();
    const auto loss = m.loss(tape, in, tgt, B, true, &rng);
    tape.backward(loss);
    opt.step();
    benchmark::DoNotOptimize(loss.value().data());
  }
  state.counters["tokens_per_s"] =
      benchmark::Counter(static_cast<double>(state.iterations() * B * T), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_SpikeGptTrain)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);
} // namespace

BENCHMARK_MAIN();
