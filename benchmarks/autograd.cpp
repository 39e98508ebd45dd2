// Autograd overhead: one training step of a two-layer MLP (B = 32, 256 -> 256 hidden -> 10 classes, ReLU,
// cross-entropy, SGD) through the tape, against the same math called directly (hand-written backward with
// the same kernels). The report's ratio is tape time / direct time, computed from the two rows.
#include <spikelm/spikelm.hpp>

#include <benchmark/benchmark.h>

namespace {
using namespace spikelm;
constexpr std::size_t B = 32, In = 256, H = 256, C = 10;

struct Setup {
  ParameterSet<float> ps;
  Parameter<float>*w1, *b1, *w2, *b2;
  Tensor<float> x{Shape{B, In}};
  std::vector<std::int64_t> y = std::vector<std::int64_t>(B);
  Setup() {
    Rng rng(1);
    auto init = [&](const char* n, Shape s, float sd) {
      Tensor<float> t(s);
      rng.fill_normal(t.span(), 0.f, sd);
      return &ps.add(n, std::move(t));
    };
    w1 = init("w1", {H, In}, 0.05f);
    b1 = init("b1", {H}, 0.01f);
    w2 = init("w2", {C, H}, 0.05f);
    b2 = init("b2", {C}, 0.01f);
    rng.fill_normal(x.span());
    for (auto& v : y) v = static_cast<std::int64_t>(rng.uniform_index(C));
  }
  void sgd() {
    ps.for_each([](Parameter<float>& p) { simd::axpy(-0.01f, p.grad.data(), p.value.data(), p.size()); });
  }
};

void BM_MlpStepTape(benchmark::State& state) {
  ScopedThreads threads(1);
  Eigen::setNbThreads(1);
  Setup s;
  Tape<float> tape;
  for (auto _ : state) {
    tape.clear();
    s.ps.zero_grad();
    const auto h = relu(linear(tape.constant(s.x), tape.param(*s.w1), tape.param(*s.b1)));
    const auto loss = cross_entropy(linear(h, tape.param(*s.w2), tape.param(*s.b2)), s.y);
    tape.backward(loss);
    s.sgd();
    benchmark::DoNotOptimize(loss.value().data());
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(B));
}
BENCHMARK(BM_MlpStepTape);

void BM_MlpStepDirect(benchmark::State& state) {
  ScopedThreads threads(1);
  Eigen::setNbThreads(1);
  Setup s;
  Tensor<float> pre({B, H}), h({B, H}), logits({B, C}), logp({B, C}), dlogits({B, C}), dh({B, H}),
      dpre({B, H});
  for (auto _ : state) {
    s.ps.zero_grad();
    // forward
    matmul(s.x, s.w1->value, pre, Trans::No, Trans::Yes);
    for (std::size_t r = 0; r < B; ++r) simd::add(pre[r].data(), s.b1->value.data(), pre[r].data(), H);
    simd::relu(pre.data(), h.data(), pre.size());
    matmul(h, s.w2->value, logits, Trans::No, Trans::Yes);
    for (std::size_t r = 0; r < B; ++r) simd::add(logits[r].data(), s.b2->value.data(), logits[r].data(), C);
    simd::log_softmax_rows(logits.data(), logp.data(), B, C);
    float loss = 0;
    for (std::size_t r = 0; r < B; ++r) loss -= logp(r, static_cast<std::size_t>(s.y[r]));
    loss /= static_cast<float>(B);
    // backward
    for (std::size_t r = 0; r < B; ++r)
      for (std::size_t c = 0; c < C; ++c)
        dlogits(r, c) =
            (std::exp(logp(r, c)) - (static_cast<std::int64_t>(c) == s.y[r] ? 1.f : 0.f)) / float(B);
    matmul(dlogits, h, s.w2->grad, Trans::Yes, Trans::No, 1.f, 1.f);
    for (std::size_t r = 0; r < B; ++r) simd::add(s.b2->grad.data(), dlogits[r].data(), s.b2->grad.data(), C);
    matmul(dlogits, s.w2->value, dh);
    simd::relu_backward(pre.data(), dh.data(), dpre.data(), pre.size());
    matmul(dpre, s.x, s.w1->grad, Trans::Yes, Trans::No, 1.f, 1.f);
    for (std::size_t r = 0; r < B; ++r) simd::add(s.b1->grad.data(), dpre[r].data(), s.b1->grad.data(), H);
    s.sgd();
    benchmark::DoNotOptimize(loss);
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(B));
}
BENCHMARK(BM_MlpStepDirect);

} // namespace

BENCHMARK_MAIN();
