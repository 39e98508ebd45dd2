// Shared helpers for spikelm's unit tests.
#pragma once

#include <spikelm/spikelm.hpp>

#include <doctest/doctest.h>

#include <cmath>
#include <cstddef>
#include <string>
#include <vector>

namespace spikelm_test {

/// Random values in [lo, hi) from a fixed-seed spikelm::Rng.
template <class T>
std::vector<T> random_vector(std::size_t n, std::uint64_t seed, T lo = T(-1), T hi = T(1)) {
  std::vector<T> v(n);
  spikelm::Rng rng(seed);
  rng.fill_uniform(std::span<T>(v), lo, hi);
  return v;
}

/// |a - b| <= atol + rtol * |b|
template <class T>
bool close(T a, T b, double rtol, double atol = 0.0) {
  if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b);
  if (std::isinf(a) || std::isinf(b)) return a == b;
  return std::abs(static_cast<double>(a) - static_cast<double>(b)) <=
         atol + rtol * std::abs(static_cast<double>(b));
}

/// Checks every element of got against want; reports the first mismatch with its index.
template <class T>
void require_close(const T* got, const T* want, std::size_t n, double rtol, double atol = 0.0,
                   const std::string& what = "") {
  for (std::size_t i = 0; i < n; ++i) {
    if (!close(got[i], want[i], rtol, atol)) {
      INFO(what, ": element ", i, " of ", n, ": got ", got[i], ", want ", want[i]);
      REQUIRE(close(got[i], want[i], rtol, atol));
    }
  }
}

/// Sizes that hit empty input, a single element, below/at/above SIMD widths and chunk boundaries.
inline const std::vector<std::size_t>& awkward_sizes() {
  static const std::vector<std::size_t> sizes{0,  1,  3,  4,  7,   8,    15,   16,   17,
                                              31, 33, 63, 65, 127, 1000, 8193, 20011};
  return sizes;
}

} // namespace spikelm_test
