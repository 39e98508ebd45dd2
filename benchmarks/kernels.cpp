// Kernel benchmarks: event-driven accumulate vs Eigen dense GEMV/GEMM across firing rates, and elementwise
// kernels' bandwidth against a plain sum over the same array.
//
//   bench_kernels --benchmark_format=json     (benchmarks/run_all.sh renders docs/performance.md)
//
// Every benchmark runs on one thread unless its name says threads:N, so ratios compare like with like.
#include <spikelm/spikelm.hpp>

#include <benchmark/benchmark.h>

#include <vector>

namespace {
using namespace spikelm;

// ---- accumulate vs dense --------------------------------------------------------------------------------
// Args: n (n_in = n_out), batch rows, firing rate in percent, threads.

struct SpikeLayer {
  Tensor<float> dense_in, w, out;
  SpikeTensor spikes;
  SpikeLayer(std::size_t n, std::size_t batch, double rate)
      : dense_in({batch, n}), w({n, n}), out({batch, n}) {
    Rng rng(1234);
    rng.fill_bernoulli(dense_in.span(), rate);
    rng.fill_normal(w.span(), 0.f, 0.05f);
    spikes = SpikeTensor::from_dense(dense_in);
  }
};

void set_counters(benchmark::State& state, std::size_t n, std::size_t batch, double rate,
                  std::size_t events) {
  state.counters["n"] = static_cast<double>(n);
  state.counters["batch"] = static_cast<double>(batch);
  state.counters["rate_pct"] = rate * 100;
  state.counters["events"] = static_cast<double>(events);
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(batch)); // rows/s
}

void BM_AccumulateEvents(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0)), batch = static_cast<std::size_t>(state.range(1));
  const double rate = static_cast<double>(state.range(2)) / 100.0;
  ScopedThreads threads(static_cast<int>(state.range(3)));
  SpikeLayer L(n, batch, rate);
  for (auto _ : state) {
    spike_matmul(L.spikes, L.w, L.out);
    benchmark::DoNotOptimize(L.out.data());
    benchmark::ClobberMemory();
  }
  set_counters(state, n, batch, rate, L.spikes.count());
}

void BM_DenseEigen(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0)), batch = static_cast<std::size_t>(state.range(1));
  const double rate = static_cast<double>(state.range(2)) / 100.0;
  ScopedThreads threads(static_cast<int>(state.range(3)));
  Eigen::setNbThreads(static_cast<int>(state.range(3)));
  SpikeLayer L(n, batch, rate);
  for (auto _ : state) {
    matmul(L.dense_in, L.w, L.out);
    benchmark::DoNotOptimize(L.out.data());
    benchmark::ClobberMemory();
  }
  set_counters(state, n, batch, rate, L.spikes.count());
}

void accumulate_args(benchmark::internal::Benchmark* b) {
  for (int n : {512, 2048})
    for (int batch : {1, 32})
      for (int rate : {1, 5, 10, 20, 50}) b->Args({n, batch, rate, 1});
  for (int rate : {1, 10, 50}) b->Args({2048, 32, rate, 2});
}
// The dense product does the same work whatever the rate; a few rates suffice to show that.
void dense_args(benchmark::internal::Benchmark* b) {
  for (int n : {512, 2048})
    for (int batch : {1, 32}) b->Args({n, batch, 10, 1});
  b->Args({2048, 32, 10, 2});
}
BENCHMARK(BM_AccumulateEvents)->Apply(accumulate_args)->ArgNames({"n", "batch", "rate", "threads"});
BENCHMARK(BM_DenseEigen)->Apply(dense_args)->ArgNames({"n", "batch", "rate", "threads"});

void BM_AccumulateWeightGrad(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0)), batch = static_cast<std::size_t>(state.range(1));
  const double rate = static_cast<double>(state.range(2)) / 100.0;
  ScopedThreads threads(1);
  SpikeLayer L(n, batch, rate);
  Tensor<float> g({batch, n}, 0.01f), dw({n, n});
  for (auto _ : state) {
    spike_matmul_weight_grad(L.spikes, g, dw);
    benchmark::DoNotOptimize(dw.data());
  }
  set_counters(state, n, batch, rate, L.spikes.count());
}
void BM_DenseWeightGrad(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0)), batch = static_cast<std::size_t>(state.range(1));
  ScopedThreads threads(1);
  Eigen::setNbThreads(1);
  SpikeLayer L(n, batch, 0.1);
  Tensor<float> g({batch, n}, 0.01f), dw({n, n});
  for (auto _ : state) {
    matmul(L.dense_in, g, dw, Trans::Yes, Trans::No, 1.f, 1.f);
    benchmark::DoNotOptimize(dw.data());
  }
  set_counters(state, n, batch, 0.1, L.spikes.count());
}
BENCHMARK(BM_AccumulateWeightGrad)
    ->Args({2048, 32, 10})
    ->Args({2048, 32, 1})
    ->ArgNames({"n", "batch", "rate"});
BENCHMARK(BM_DenseWeightGrad)->Args({2048, 32, 10})->ArgNames({"n", "batch", "rate"});

// ---- elementwise bandwidth --------------------------------------------------------------------------------
constexpr std::size_t stream_elems = std::size_t(1) << 24; // 64 MiB of float: far beyond the caches

std::vector<float>& stream_a() {
  static std::vector<float> v = [] {
    std::vector<float> x(stream_elems);
    Rng(5).fill_uniform(std::span<float>(x), -2.f, 2.f);
    return x;
  }();
  return v;
}
std::vector<float>& stream_b() {
  static std::vector<float> v(stream_elems, 0.5f);
  return v;
}

/// The read-bandwidth yardstick: a plain loop that only reads, with eight independent partial sums so that
/// memory, not the latency of one chain of adds, limits it.
void BM_PlainSumRead(benchmark::State& state) {
  ScopedThreads threads(1);
  const auto& a = stream_a();
  for (auto _ : state) {
    float s[8] = {};
    for (std::size_t i = 0; i + 8 <= a.size(); i += 8)
      for (std::size_t k = 0; k < 8; ++k) s[k] += a[i + k];
    benchmark::DoNotOptimize(s);
  }
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(stream_elems * sizeof(float)));
}
BENCHMARK(BM_PlainSumRead);

template <class Kernel>
void run_unary(benchmark::State& state, Kernel k) {
  ScopedThreads threads(static_cast<int>(state.range(0)));
  auto& a = stream_a();
  auto& b = stream_b();
  for (auto _ : state) {
    k(a.data(), b.data(), stream_elems);
    benchmark::DoNotOptimize(b.data());
    benchmark::ClobberMemory();
  }
  // bytes read + written
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(2 * stream_elems * sizeof(float)));
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(stream_elems));
}
void BM_SimdSum(benchmark::State& state) {
  ScopedThreads threads(static_cast<int>(state.range(0)));
  const auto& a = stream_a();
  for (auto _ : state) benchmark::DoNotOptimize(simd::sum(a.data(), stream_elems));
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(stream_elems * sizeof(float)));
}
void BM_Scale(benchmark::State& s) {
  run_unary(s, [](const float* x, float* y, std::size_t n) { simd::scale(1.5f, x, y, n); });
}
void BM_Relu(benchmark::State& s) {
  run_unary(s, [](auto... a) { simd::relu(a...); });
}
void BM_Exp(benchmark::State& s) {
  run_unary(s, [](auto... a) { simd::exp(a...); });
}
void BM_Sigmoid(benchmark::State& s) {
  run_unary(s, [](auto... a) { simd::sigmoid(a...); });
}
void BM_Gelu(benchmark::State& s) {
  run_unary(s, [](auto... a) { simd::gelu(a...); });
}
void BM_Tanh(benchmark::State& s) {
  run_unary(s, [](auto... a) { simd::tanh(a...); });
}
BENCHMARK(BM_SimdSum)->Arg(1)->Arg(2)->ArgName("threads");
BENCHMARK(BM_Scale)->Arg(1)->Arg(2)->ArgName("threads");
BENCHMARK(BM_Relu)->Arg(1)->ArgName("threads");
BENCHMARK(BM_Exp)->Arg(1)->ArgName("threads");
BENCHMARK(BM_Sigmoid)->Arg(1)->ArgName("threads");
BENCHMARK(BM_Gelu)->Arg(1)->ArgName("threads");
BENCHMARK(BM_Tanh)->Arg(1)->ArgName("threads");

void BM_SoftmaxRows(benchmark::State& state) {
  ScopedThreads threads(1);
  const std::size_t rows = 256, cols = static_cast<std::size_t>(state.range(0));
  std::vector<float> x(rows * cols), y(rows * cols);
  Rng(3).fill_normal(std::span<float>(x));
  for (auto _ : state) {
    simd::softmax_rows(x.data(), y.data(), rows, cols);
    benchmark::DoNotOptimize(y.data());
  }
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(2 * rows * cols * sizeof(float)));
}
void BM_LayerNormRows(benchmark::State& state) {
  ScopedThreads threads(1);
  const std::size_t rows = 256, cols = static_cast<std::size_t>(state.range(0));
  std::vector<float> x(rows * cols), y(rows * cols), g(cols, 1.f), b(cols, 0.f), m(rows), r(rows);
  Rng(3).fill_normal(std::span<float>(x));
  for (auto _ : state) {
    simd::layernorm_rows(x.data(), g.data(), b.data(), y.data(), m.data(), r.data(), rows, cols, 1e-5f);
    benchmark::DoNotOptimize(y.data());
  }
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(2 * rows * cols * sizeof(float)));
}
BENCHMARK(BM_SoftmaxRows)->Arg(768)->Arg(50277);
BENCHMARK(BM_LayerNormRows)->Arg(768);

} // namespace

BENCHMARK_MAIN();
