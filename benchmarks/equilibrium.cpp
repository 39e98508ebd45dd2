// Equilibrium training vs backprop through time, on the same spiking layer (IF population, feedback on,
// n_in = 64, n = 128, batch 16, MSE on the rates). One training step = simulate T steps, loss, backward.
//  - BM_EquilibriumStep/T: SpikingEquilibriumLayer (simulation off the tape, implicit gradient at the
//    rates: one map evaluation on the tape and an Anderson adjoint solve).
//  - BM_BpttStep/T: the same T steps unrolled on the tape (spike op with the ATan surrogate, subtract
//    reset), gradient through every step.
// Counters: peak_heap_MiB = the largest number of heap bytes live during the step above what was live when
// it began (every operator new in this binary is counted, through glibc's malloc_usable_size);
// tape_MiB = the tape's values and gradients after the backward pass.
#include <spikelm/spikelm.hpp>

#include <benchmark/benchmark.h>

#include "heap_counter.hpp"

namespace {
using namespace spikelm;
constexpr std::size_t B = 16, In = 64, N = 128;

struct Setup {
  ParameterSet<float> ps;
  SpikingEquilibriumLayer<float> layer;
  Tensor<float> x{Shape{B, In}}, target{Shape{B, N}};
  explicit Setup(std::size_t steps) {
    Rng rng(7);
    auto init = [&](const char* name, Shape s, float lo, float hi) {
      Tensor<float> t(s);
      rng.fill_uniform(t.span(), lo, hi);
      return &ps.add(name, std::move(t));
    };
    layer.feedforward = init("F", {N, In}, -0.15f, 0.25f);
    layer.bias = init("b", {N}, 0.0f, 0.2f);
    layer.feedback = init("W_s", {N, N}, -0.05f, 0.05f);
    layer.steps = steps;
    rng.fill_uniform(x.span(), 0.f, 1.f);
    rng.fill_uniform(target.span(), 0.f, 1.f);
  }

  /// The same simulation unrolled on the tape.
  Var<float> bptt_rates(Tape<float>& tape) {
    const Var<float> c = linear(tape.constant(x), tape.param(*layer.feedforward), tape.param(*layer.bias));
    const Var<float> ws = tape.param(*layer.feedback);
    Var<float> v = tape.constant(Tensor<float>({B, N})), s, acc;
    for (std::size_t t = 0; t < layer.steps; ++t) {
      const Var<float> in = t == 0 ? c : add(c, linear(s, ws));
      const Var<float> h = add(v, in);
      s = spike<surrogate::ATan<>>(h, layer.theta);
      v = sub(h, scale(s, layer.theta));
      acc = t == 0 ? s : add(acc, s);
    }
    return scale(acc, 1.f / static_cast<float>(layer.steps));
  }
};

template <bool Implicit>
void run_step(benchmark::State& state) {
  ScopedThreads threads(1);
  Eigen::setNbThreads(1);
  Setup s(static_cast<std::size_t>(state.range(0)));
  Tape<float> tape;
  std::size_t peak = 0, tape_bytes = 0;
  for (auto _ : state) {
    tape.clear();
    s.ps.zero_grad();
    const spikelm_bench::HeapPeak heap;
    const Var<float> x = tape.constant(s.x);
    const Var<float> rates = Implicit ? s.layer.forward(x) : s.bptt_rates(tape);
    const Var<float> loss = mse_loss(rates, tape.constant(s.target));
    tape.backward(loss);
    peak = std::max(peak, heap.bytes());
    tape_bytes = tape.memory_bytes();
    benchmark::DoNotOptimize(loss.value().data());
  }
  state.counters["peak_heap_MiB"] = static_cast<double>(peak) / (1024.0 * 1024.0);
  state.counters["tape_MiB"] = static_cast<double>(tape_bytes) / (1024.0 * 1024.0);
}

void BM_EquilibriumStep(benchmark::State& state) {
  run_step<true>(state);
}
void BM_BpttStep(benchmark::State& state) {
  run_step<false>(state);
}
BENCHMARK(BM_EquilibriumStep)->Arg(8)->Arg(32)->Arg(128)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_BpttStep)->Arg(8)->Arg(32)->Arg(128)->Unit(benchmark::kMillisecond);
} // namespace

BENCHMARK_MAIN();
