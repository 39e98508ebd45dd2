// spikelm: a counter-based random number generator (Philox4x32-10).
//
// Element i of a fill is a pure function of (seed, counter + i), so a fill gives the same numbers whatever
// the number of threads that compute it, and the state (seed, counter) is two integers to checkpoint.
#ifndef SPIKELM_CORE_RNG_HPP
#define SPIKELM_CORE_RNG_HPP

#include "../config.hpp"
#include "error.hpp"
#include "parallel.hpp"

#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <numbers>
#include <span>
#include <type_traits>

SPIKELM_NAMESPACE_BEGIN

namespace detail {
/// One Philox4x32 block with 10 rounds (Salmon et al., SC'11).
inline std::array<std::uint32_t, 4> philox4x32(std::uint64_t counter, std::uint64_t key) noexcept {
  constexpr std::uint32_t m0 = 0xD2511F53u, m1 = 0xCD9E8D57u;
  constexpr std::uint32_t w0 = 0x9E3779B9u, w1 = 0xBB67AE85u;
  std::uint32_t c0 = static_cast<std::uint32_t>(counter), c1 = static_cast<std::uint32_t>(counter >> 32);
  std::uint32_t c2 = 0x243F6A88u, c3 = 0x85A308D3u; // fixed high counter words (digits of pi)
  std::uint32_t k0 = static_cast<std::uint32_t>(key), k1 = static_cast<std::uint32_t>(key >> 32);
  for (int round = 0; round < 10; ++round) {
    const std::uint64_t p0 = static_cast<std::uint64_t>(m0) * c0;
    const std::uint64_t p1 = static_cast<std::uint64_t>(m1) * c2;
    const std::uint32_t n0 = static_cast<std::uint32_t>(p1 >> 32) ^ c1 ^ k0;
    const std::uint32_t n1 = static_cast<std::uint32_t>(p1);
    const std::uint32_t n2 = static_cast<std::uint32_t>(p0 >> 32) ^ c3 ^ k1;
    const std::uint32_t n3 = static_cast<std::uint32_t>(p0);
    c0 = n0, c1 = n1, c2 = n2, c3 = n3;
    k0 += w0, k1 += w1;
  }
  return {c0, c1, c2, c3};
}

/// Uniform in [0, 1) from the top bits of `bits`.
template <class T>
T unit_uniform(const std::array<std::uint32_t, 4>& bits, int word = 0) noexcept {
  if constexpr (std::is_same_v<T, float>) {
    return static_cast<float>(bits[static_cast<std::size_t>(word)] >> 8) * 0x1.0p-24f;
  } else {
    const std::uint64_t w = (static_cast<std::uint64_t>(bits[static_cast<std::size_t>(word)]) << 32) |
                            bits[static_cast<std::size_t>(word) + 1];
    return static_cast<T>(w >> 11) * static_cast<T>(0x1.0p-53);
  }
}
} // namespace detail

/// Deterministic counter-based generator. Every draw consumes one counter value.
class Rng {
 public:
  explicit Rng(std::uint64_t seed = SPIKELM_DEFAULT_SEED, std::uint64_t counter = 0) noexcept
      : seed_(seed), counter_(counter) {}

  [[nodiscard]] std::uint64_t seed() const noexcept { return seed_; }
  [[nodiscard]] std::uint64_t counter() const noexcept { return counter_; }
  void set_state(std::uint64_t seed, std::uint64_t counter) noexcept { seed_ = seed, counter_ = counter; }

  /// A generator for an independent stream (e.g. one per layer), derived from this seed and `stream`.
  [[nodiscard]] Rng fork(std::uint64_t stream) const noexcept {
    const auto b = detail::philox4x32(stream, seed_ ^ 0xA5A5A5A5F00DFACEULL);
    return Rng((static_cast<std::uint64_t>(b[0]) << 32) | b[1]);
  }

  /// 64 random bits.
  std::uint64_t next_u64() noexcept {
    const auto b = detail::philox4x32(counter_++, seed_);
    return (static_cast<std::uint64_t>(b[0]) << 32) | b[1];
  }
  /// Uniform integer in [0, n), n > 0 (Lemire's multiply-shift; the bias is below 2^-32 for n < 2^32).
  std::uint64_t uniform_index(std::uint64_t n) {
    check(n > 0, "Rng::uniform_index: n must be positive");
    const std::uint64_t x = next_u64() >> 32;
    return (x * n) >> 32;
  }
  /// Uniform in [lo, hi).
  template <class T = float>
  T uniform(T lo = T(0), T hi = T(1)) noexcept {
    return lo + (hi - lo) * detail::unit_uniform<T>(detail::philox4x32(counter_++, seed_));
  }
  /// Normal(mean, stddev) by Box-Muller.
  template <class T = float>
  T normal(T mean = T(0), T stddev = T(1)) noexcept {
    return mean + stddev * box_muller<T>(counter_++);
  }
  /// True with probability p.
  bool bernoulli(double p) noexcept { return uniform<double>() < p; }

  /// Fills `out` with Uniform[lo, hi); element i uses counter + i, on any number of threads.
  template <class T>
  void fill_uniform(std::span<T> out, T lo = T(0), T hi = T(1)) noexcept {
    const std::uint64_t base = advance(out.size());
    parallel_for(out.size(), out.size() * 16, [&](std::size_t i) {
      out[i] = lo + (hi - lo) * detail::unit_uniform<T>(detail::philox4x32(base + i, seed_));
    });
  }
  /// Fills `out` with Normal(mean, stddev).
  template <class T>
  void fill_normal(std::span<T> out, T mean = T(0), T stddev = T(1)) noexcept {
    const std::uint64_t base = advance(out.size());
    parallel_for(out.size(), out.size() * 32,
                 [&](std::size_t i) { out[i] = mean + stddev * box_muller<T>(base + i); });
  }
  /// Fills `out` with 1 (probability p) or 0.
  template <class T>
  void fill_bernoulli(std::span<T> out, double p) noexcept {
    const std::uint64_t base = advance(out.size());
    parallel_for(out.size(), out.size() * 16, [&](std::size_t i) {
      out[i] = detail::unit_uniform<double>(detail::philox4x32(base + i, seed_)) < p ? T(1) : T(0);
    });
  }

 private:
  std::uint64_t advance(std::size_t n) noexcept {
    const std::uint64_t base = counter_;
    counter_ += n;
    return base;
  }
  template <class T>
  T box_muller(std::uint64_t ctr) const noexcept {
    const auto b = detail::philox4x32(ctr, seed_);
    // u1 in (0, 1] so the log is finite; u2 in [0, 1).
    const double u1 = 1.0 - detail::unit_uniform<double>(b, 0);
    const double u2 = detail::unit_uniform<double>(b, 2);
    return static_cast<T>(std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2));
  }

  std::uint64_t seed_;
  std::uint64_t counter_;
};

SPIKELM_NAMESPACE_END

#endif // SPIKELM_CORE_RNG_HPP
