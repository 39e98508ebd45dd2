// Every kernel that runs on OpenMP threads (core/parallel.hpp's parallel_for and the chunked reductions),
// run on 1 and on 4 threads with sizes above the parallel grain: the results must be bit-identical, since
// each index is owned by one thread and reductions combine fixed chunks in a fixed order. This file is also
// what the ThreadSanitizer job (tests/tsan.sh, label "sanitize") builds and runs, with LLVM's libomp and its
// Archer tool, to check the same kernels for data races.
#include "test_util.hpp"

#include <spikelm/spikelm.hpp>

#include <cstdint>
#include <functional>
#include <vector>

using namespace spikelm;

namespace {
/// Runs f on 1 thread and on 4 threads; f returns the values to compare.
void same_on_1_and_4_threads(const std::function<std::vector<float>()>& f) {
  std::vector<float> one, four;
  {
    ScopedThreads t(1);
    one = f();
  }
  {
    ScopedThreads t(4);
    four = f();
  }
  REQUIRE(one.size() == four.size());
  std::size_t differ = 0;
  for (std::size_t i = 0; i < one.size(); ++i) differ += one[i] != four[i];
  CHECK(differ == 0);
}

template <class X>
std::vector<float> values(const X& x) {
  return std::vector<float>(x.begin(), x.end());
}
} // namespace

TEST_CASE("event-driven accumulate kernels on 1 and 4 threads") {
  const std::size_t rows = 96, n_in = 300, n_out = 257;
  Rng rng(3);
  Tensor<float> dense({rows, n_in}), w({n_in, n_out}), g({rows, n_out});
  rng.fill_bernoulli(dense.span(), 0.2);
  rng.fill_normal(w.span());
  rng.fill_normal(g.span());
  same_on_1_and_4_threads([&] {
    const SpikeTensor s = SpikeTensor::from_dense(dense);
    Tensor<float> out({rows, n_out}), dw({n_in, n_out}), gin({rows, n_in});
    spike_matmul(s, w, out);
    spike_matmul_weight_grad(s, g, dw);
    spike_matmul_input_grad(g, w, gin);
    std::vector<float> v = values(out);
    for (float x : dw) v.push_back(x);
    for (float x : gin) v.push_back(x);
    for (std::size_t r = 0; r < rows; ++r) v.push_back(static_cast<float>(s.count(r)));
    return v;
  });
}

TEST_CASE("SIMD element-wise, row-wise and reduction kernels on 1 and 4 threads") {
  const std::size_t rows = 300, cols = 257, n = rows * cols;
  Rng rng(4);
  Tensor<float> x({rows, cols}), y({rows, cols}), gamma({cols}), beta({cols});
  rng.fill_normal(x.span());
  rng.fill_normal(y.span());
  rng.fill_normal(gamma.span());
  rng.fill_normal(beta.span());
  same_on_1_and_4_threads([&] {
    Tensor<float> a({rows, cols}), b({rows, cols}), c({rows, cols}), mean({rows}), rstd({rows}), dg({cols}),
        db({cols});
    simd::add(x.data(), y.data(), a.data(), n);
    simd::exp(x.data(), b.data(), n);
    simd::axpy(0.5f, y.data(), b.data(), n);
    simd::softmax_rows(x.data(), c.data(), rows, cols);
    std::vector<float> v = values(a);
    for (float z : b) v.push_back(z);
    for (float z : c) v.push_back(z);
    simd::layernorm_rows(x.data(), gamma.data(), beta.data(), a.data(), mean.data(), rstd.data(), rows, cols,
                         1e-5f);
    simd::layernorm_backward_rows(y.data(), x.data(), gamma.data(), mean.data(), rstd.data(), b.data(),
                                  dg.data(), db.data(), rows, cols);
    for (const auto* t : {&a, &b, &dg, &db}) v.insert(v.end(), t->begin(), t->end());
    v.push_back(simd::sum(x.data(), n));
    v.push_back(simd::dot(x.data(), y.data(), n));
    v.push_back(simd::max(x.data(), n));
    return v;
  });
}

TEST_CASE("Rng fills do not depend on the thread count") {
  same_on_1_and_4_threads([] {
    Rng rng(9);
    std::vector<float> v(200000);
    rng.fill_normal(std::span<float>(v).first(100000));
    rng.fill_uniform(std::span<float>(v).subspan(100000));
    return v;
  });
}

TEST_CASE("SpikeGPT training step and recurrent step on 1 and 4 threads") {
  SpikeGptConfig cfg;
  cfg.vocab = 40;
  cfg.layers = 2;
  cfg.d_model = 64;
  cfg.context = 64;
  const std::size_t B = 4, T_ = 64;
  std::vector<std::int64_t> tokens(B * T_), targets(B * T_);
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    tokens[i] = static_cast<std::int64_t>((i * 7 + i / 5) % cfg.vocab);
    targets[i] = static_cast<std::int64_t>((i * 3 + 1) % cfg.vocab);
  }
  same_on_1_and_4_threads([&] {
    SpikeGPT<float> m(cfg);
    Rng rng(1);
    m.reset_parameters(rng);
    Adam<float> opt(m.parameters(), {.lr = 1e-2});
    Rng drop(2);
    for (int step = 0; step < 2; ++step) {
      Tape<float> tape;
      m.parameters().zero_grad();
      auto loss = m.loss(tape, tokens, targets, B, true, &drop);
      tape.backward(loss);
      opt.step();
    }
    std::vector<float> v;
    m.parameters().for_each(
        [&](const Parameter<float>& p) { v.insert(v.end(), p.value.begin(), p.value.end()); });
    SpikeGptState<float> state;
    const std::vector<std::int64_t> step_tokens{1, 2, 3, 4};
    for (int t = 0; t < 3; ++t) {
      const Tensor<float> z = m.step(step_tokens, state);
      v.insert(v.end(), z.begin(), z.end());
    }
    return v;
  });
}

TEST_CASE("EGRU layer forward and backward on 1 and 4 threads") {
  EgruLmConfig cfg;
  cfg.vocab = 30;
  cfg.embedding = 32;
  cfg.hidden = 256;
  cfg.layers = 2;
  cfg.thr_mean = 0.05;
  const std::size_t B = 8, T_ = 24;
  std::vector<std::int64_t> tokens(B * T_), targets(B * T_);
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    tokens[i] = static_cast<std::int64_t>((i * 11 + 3) % cfg.vocab);
    targets[i] = static_cast<std::int64_t>((i * 5 + 2) % cfg.vocab);
  }
  // hidden 203: 609 columns, so the backward's column blocks are rounded up to multiples of 16 and differ
  // between 1 and 4 threads
  for (std::size_t hidden : {std::size_t(256), std::size_t(203)})
    for (auto kernel : {EgruKernel::Rows, EgruKernel::Panels}) {
      cfg.hidden = hidden;
      cfg.cell.kernel = kernel;
      same_on_1_and_4_threads([&] {
        EgruLM<float> lm(cfg);
        Rng rng(6);
        lm.reset_parameters(rng);
        Tape<float> tape;
        lm.parameters().zero_grad();
        auto loss = lm.loss(tape, tokens, targets, B, false);
        tape.backward(loss);
        std::vector<float> v{loss.value().data()[0]};
        lm.parameters().for_each([&](const Parameter<float>& p) {
          v.insert(v.end(), p.value.begin(), p.value.end());
          v.insert(v.end(), p.grad.begin(), p.grad.end());
        });
        return v;
      });
    }
}
