// Reliability tests: the training guard (NaN/Inf in the loss, a gradient or a weight stops the run with the
// step and the parameter named, before the weights change), and determinism (same seed and thread count give
// bit-identical weights after N steps; 1 and 2 threads agree within a documented tolerance).
//
// The parallel grain is lowered so that the small models here really run their OpenMP loops on several
// threads (the library's default only parallelizes loops of 32768+ operations).
#define SPIKELM_DEFAULT_PARALLEL_GRAIN 64
#include "test_util.hpp"

#include <spikelm/models/egru_lm.hpp>
#include <spikelm/train/guard.hpp>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

using namespace spikelm;

namespace {

/// Trains a small EGRU LM (dropout, DropConnect, AdamW, clipping) for `steps` steps on a fixed text and
/// returns all its weights, flattened.
std::vector<float> train_egru(int threads, std::size_t steps, std::uint64_t seed, EgruMode mode) {
  ScopedThreads scope(threads);
  EgruLmConfig cfg;
  cfg.vocab = 11;
  cfg.embedding = 24;
  cfg.hidden = 40;
  cfg.layers = 3;
  cfg.thr_mean = 0.05;
  cfg.dropout_embedding = 0.1;
  cfg.dropout_forward = 0.1;
  cfg.dropout_output = 0.1;
  cfg.cell.dropconnect = 0.2;
  cfg.cell.mode = mode;
  EgruLM<float> lm(cfg);
  Rng init(seed), drop(seed + 1);
  lm.reset_parameters(init);
  std::vector<std::int64_t> text;
  for (int i = 0; i < 400; ++i) text.push_back((i * 7 + i / 5) % 11);
  AdamW<float> opt(lm.parameters(), {.lr = 3e-3});
  const std::size_t B = 4, T = 16;
  for (std::size_t s = 0; s < steps; ++s) {
    std::vector<std::int64_t> in, tgt;
    for (std::size_t b = 0; b < B; ++b)
      for (std::size_t t = 0; t < T; ++t) {
        const std::size_t at = (s * 37 + b * 91 + t) % (text.size() - 1);
        in.push_back(text[at]);
        tgt.push_back(text[at + 1]);
      }
    Tape<float> tape;
    lm.parameters().zero_grad();
    const auto loss = lm.loss(tape, in, tgt, B, true, &drop);
    tape.backward(loss);
    check_finite_step(s, loss.value().data()[0], lm.parameters());
    clip_grad_norm(lm.parameters(), 1.0);
    opt.step();
  }
  std::vector<float> w;
  w.reserve(lm.parameters().numel());
  for (std::size_t i = 0; i < lm.parameters().size(); ++i)
    for (float v : lm.parameters().at(i).value) w.push_back(v);
  return w;
}

double max_rel_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double worst = 0;
  for (std::size_t i = 0; i < a.size(); ++i)
    worst = std::max(worst, std::abs(static_cast<double>(a[i]) - b[i]) /
                                (1e-3 + std::abs(static_cast<double>(b[i]))));
  return worst;
}

} // namespace

TEST_CASE("training guard: NaN or Inf in the loss or a gradient names the step and the parameter") {
  ParameterSet<float> ps;
  ps.add("layer.weight", Tensor<float>({2, 3}));
  ps.add("layer.bias", Tensor<float>({3}));
  ps.zero_grad();
  CHECK_NOTHROW(check_finite_step(4, 1.25, ps));
  CHECK_FALSE(find_non_finite_grad(ps).has_value());

  CHECK_THROWS_WITH_AS(check_finite_step(7, std::numeric_limits<double>::quiet_NaN(), ps),
                       doctest::Contains("step 7: the loss is nan"), Error);
  CHECK_THROWS_WITH_AS(check_finite_step(8, std::numeric_limits<double>::infinity(), ps),
                       doctest::Contains("step 8: the loss is inf"), Error);

  ps["layer.bias"].grad.data()[2] = std::numeric_limits<float>::infinity();
  const auto bad = find_non_finite_grad(ps);
  REQUIRE(bad.has_value());
  CHECK(bad->parameter == "layer.bias");
  CHECK(bad->index == 2);
  CHECK_THROWS_WITH_AS(check_finite_step(12, 0.5, ps),
                       doctest::Contains("step 12: the gradient of 'layer.bias'"), Error);
  ps["layer.weight"].grad.data()[4] = std::numeric_limits<float>::quiet_NaN();
  CHECK(find_non_finite_grad(ps)->parameter == "layer.weight"); // registration order: the first one wins
  CHECK(find_non_finite_grad(ps)->index == 4);
}

TEST_CASE("training guard: the weights are untouched when the step is refused, and bad updates are caught") {
  ParameterSet<float> ps;
  auto& w = ps.add("w", Tensor<float>({4}));
  for (std::size_t i = 0; i < 4; ++i) w.value.data()[i] = static_cast<float>(i) + 0.5f;
  ps.zero_grad();
  const std::vector<float> before(w.value.begin(), w.value.end());
  SGD<float> opt(ps, {.lr = 0.1});
  w.grad.data()[1] = std::numeric_limits<float>::quiet_NaN();
  bool stopped = false;
  try {
    check_finite_step(3, 0.1, ps);
    opt.step();
  } catch (const Error&) {
    stopped = true;
  }
  CHECK(stopped);
  CHECK(std::vector<float>(w.value.begin(), w.value.end()) == before);

  // A finite gradient with an absurd learning rate overflows the weight: caught after the step.
  ps.zero_grad();
  w.grad.data()[0] = 1e30f;
  SGD<float> wild(ps, {.lr = 1e30});
  check_finite_step(4, 0.1, ps);
  wild.step();
  CHECK_THROWS_WITH_AS(check_finite_weights(4, ps), doctest::Contains("weight 'w' is"), Error);
}

TEST_CASE("determinism: same seed and thread count give bit-identical weights after training") {
  for (const EgruMode mode : {EgruMode::EventDriven, EgruMode::Dense}) {
    for (const int threads : {1, 2}) {
      const auto a = train_egru(threads, 12, 5, mode);
      const auto b = train_egru(threads, 12, 5, mode);
      CHECK(a == b);
    }
  }
  const auto c = train_egru(1, 12, 6, EgruMode::EventDriven);
  CHECK(c != train_egru(1, 12, 5, EgruMode::EventDriven)); // the seed matters
}

TEST_CASE("determinism: 1 and 2 threads agree within the documented tolerance (1e-4 relative)") {
  // The RNG is counter-based and the kernels split work by output element, so the thread count changes at
  // most the order of floating-point reductions; docs/reliability.md documents 1e-4 relative after training.
  const auto one = train_egru(1, 12, 5, EgruMode::EventDriven);
  const auto two = train_egru(2, 12, 5, EgruMode::EventDriven);
  REQUIRE(one.size() == two.size());
  MESSAGE("1 vs 2 threads: max relative weight difference ", max_rel_diff(two, one));
  CHECK(max_rel_diff(two, one) < 1e-4);
}
