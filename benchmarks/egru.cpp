// EGRU: event-driven vs dense, one thread.
//  - BM_EgruForward/<mode>/H/B: 16 recurrent steps of one layer (input width 64, so that the shared input
//  projection x W stays small next to the recurrent product), per-step time reported as
//    time / 16. The event-driven path sums rows of R for the units with events; the dense path multiplies
//    y_{t-1} [B, H] by R [H, 3H] with Eigen.
//  - BM_EgruTrain/<mode>/H/B: forward and backward over 16 steps (sparse backward vs dense backward).
// Thresholds are initialised from Beta(a, 3) with mean thr / 100 (thr = 15 gives about 80 % activity
// sparsity here, thr = 30 about 95 %); the measured activity (fraction of y != 0) and backward sparsity
// are reported as counters. mode: 0 = event-driven (EgruKernel::Rows, the default), 1 = dense, 2 =
// event-driven with EgruKernel::Panels (forward only).
#include <spikelm/spikelm.hpp>

#include <spikelm/models/egru_layer.hpp>

#include <benchmark/benchmark.h>

namespace {
using namespace spikelm;
constexpr std::size_t Steps = 16, In = 64;

struct Setup {
  ParameterSet<float> ps;
  EgruLayer<float> layer;
  Tensor<float> x;
  Setup(std::size_t H, std::size_t B, std::int64_t mode, double thr_mean) : x({Steps, B, In}) {
    EgruOptions o;
    o.mode = mode == 1 ? EgruMode::Dense : EgruMode::EventDriven;
    o.kernel = mode == 2 ? EgruKernel::Panels : EgruKernel::Rows;
    o.support = 3.6; // the EGRU LM's pseudo-derivative (gamma = s = 3.6)
    o.dampening = 3.6;
    layer = EgruLayer<float>(ps, "", In, H, o);
    Rng rng(17);
    layer.reset_parameters(rng, thr_mean);
    rng.fill_normal(x.span(), 0.f, 1.0f);
  }
};

void BM_EgruForward(benchmark::State& state) {
  ScopedThreads threads(1);
  Eigen::setNbThreads(1);
  const auto mode = state.range(0);
  const auto H = static_cast<std::size_t>(state.range(1)), B = static_cast<std::size_t>(state.range(2));
  Setup s(H, B, mode, static_cast<double>(state.range(3)) / 100.0);
  Tensor<float> y({Steps, B, H});
  EgruActivity act;
  for (auto _ : state) {
    act = {};
    s.layer.forward(s.x, {}, {}, y.view(), {}, {}, false, nullptr, nullptr, &act);
    benchmark::DoNotOptimize(y.data());
  }
  state.counters["activity"] = act.activity();
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(Steps)); // items = recurrent steps
}
BENCHMARK(BM_EgruForward)
    ->ArgNames({"mode", "H", "B", "thr"})
    ->ArgsProduct({{0, 1, 2}, {1024, 2048}, {1, 16}, {15, 30}})
    ->Unit(benchmark::kMillisecond);

void BM_EgruTrain(benchmark::State& state) {
  ScopedThreads threads(1);
  Eigen::setNbThreads(1);
  const auto mode = state.range(0);
  const auto H = static_cast<std::size_t>(state.range(1)), B = static_cast<std::size_t>(state.range(2));
  Setup s(H, B, mode, static_cast<double>(state.range(3)) / 100.0);
  Tensor<float> y({Steps, B, H}), dy({Steps, B, H});
  Rng rng(5);
  rng.fill_normal(dy.span());
  EgruActivity act;
  EgruGrads<float> g;
  EgruCache<float> cache;
  for (auto _ : state) {
    act = {};
    s.layer.forward(s.x, {}, {}, y.view(), {}, {}, true, nullptr, &cache, &act);
    s.layer.backward(cache, dy, {}, {}, g, &act);
    benchmark::DoNotOptimize(g.recurrent_kernel.data());
  }
  state.counters["activity"] = act.activity();
  state.counters["backward_sparsity"] = act.backward_sparsity();
}
BENCHMARK(BM_EgruTrain)
    ->ArgNames({"mode", "H", "B", "thr"})
    ->ArgsProduct({{0, 1}, {1024}, {16}, {15, 30}})
    ->Unit(benchmark::kMillisecond);
} // namespace

BENCHMARK_MAIN();
