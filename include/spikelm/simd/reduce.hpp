// spikelm: reductions (sum, max, dot, sum of squares, L2 norm).
//
// The array is cut into fixed chunks of simd::chunk_elements; each chunk is reduced with SIMD and the
// partial results are combined in chunk order, so the result does not depend on the thread count.
#ifndef SPIKELM_SIMD_REDUCE_HPP
#define SPIKELM_SIMD_REDUCE_HPP

#include "../config.hpp"
#include "../core/error.hpp"
#include "compat.hpp"
#include "elementwise.hpp"

#include <cmath>
#include <cstddef>
#include <limits>
#include <vector>

SPIKELM_NAMESPACE_BEGIN
namespace simd {

namespace detail {
/// Reduces [0, n) chunk by chunk: part(b, e) reduces a chunk, combine(acc, part) joins them in order.
template <class T, class Part, class Combine>
T chunked_reduce(std::size_t n, T init, std::size_t cost, Part part, Combine combine) {
  const std::size_t chunks = (n + chunk_elements - 1) / chunk_elements;
  if (chunks <= 1) return n == 0 ? init : combine(init, part(std::size_t{0}, n));
  std::vector<T> partial(chunks);
  parallel_for(chunks, n * cost, [&](std::size_t c) {
    const std::size_t b = c * chunk_elements;
    partial[c] = part(b, std::min(n, b + chunk_elements));
  });
  T acc = init;
  for (const T& p : partial) acc = combine(acc, p);
  return acc;
}

/// Sum over [b, e) of f(i-th batch or scalar) with four independent SIMD accumulators.
template <class Arch, class T, class Load>
T sum_range(std::size_t b, std::size_t e, Load load) {
  std::size_t i = b;
  T total = T(0);
  if constexpr (lanes < T, Arch >> 0) {
    using B = xsimd::batch<T, Arch>;
    constexpr std::size_t W = B::size;
    B s0(T(0)), s1(T(0)), s2(T(0)), s3(T(0));
    for (; i + 4 * W <= e; i += 4 * W) {
      s0 += load(B{}, i);
      s1 += load(B{}, i + W);
      s2 += load(B{}, i + 2 * W);
      s3 += load(B{}, i + 3 * W);
    }
    for (; i + W <= e; i += W) s0 += load(B{}, i);
    total = compat::reduce_add((s0 + s1) + (s2 + s3));
  }
  for (; i < e; ++i) total += load(T{}, i);
  return total;
}
} // namespace detail

/// Sum of x[0..n).
template <class Arch = default_arch, class T>
T sum(const T* x, std::size_t n) {
  return detail::chunked_reduce<T>(
      n, T(0), 1,
      [x](std::size_t b, std::size_t e) {
        return detail::sum_range<Arch, T>(b, e, [x](auto tag, std::size_t i) {
          using V = decltype(tag);
          if constexpr (detail::is_scalar_v<V>)
            return x[i];
          else
            return V::load_unaligned(x + i);
        });
      },
      [](T a, T b) { return a + b; });
}

/// Dot product of x and y.
template <class Arch = default_arch, class T>
T dot(const T* x, const T* y, std::size_t n) {
  return detail::chunked_reduce<T>(
      n, T(0), 2,
      [x, y](std::size_t b, std::size_t e) {
        return detail::sum_range<Arch, T>(b, e, [x, y](auto tag, std::size_t i) {
          using V = decltype(tag);
          if constexpr (detail::is_scalar_v<V>)
            return x[i] * y[i];
          else
            return V::load_unaligned(x + i) * V::load_unaligned(y + i);
        });
      },
      [](T a, T b) { return a + b; });
}

/// Sum of squares of x.
template <class Arch = default_arch, class T>
T sum_sq(const T* x, std::size_t n) {
  return dot<Arch>(x, x, n);
}

/// Euclidean norm of x.
template <class Arch = default_arch, class T>
T norm2(const T* x, std::size_t n) {
  return std::sqrt(sum_sq<Arch>(x, n));
}

/// Largest element of x (n > 0). NaN inputs give an unspecified element.
template <class Arch = default_arch, class T>
T max(const T* x, std::size_t n) {
  check(n > 0, "simd::max of an empty array");
  auto part = [x](std::size_t b, std::size_t e) {
    std::size_t i = b;
    T best = x[b];
    if constexpr (lanes < T, Arch >> 0) {
      using B = xsimd::batch<T, Arch>;
      if (e - b >= B::size) {
        B m = B::load_unaligned(x + i);
        for (i += B::size; i + B::size <= e; i += B::size) m = xsimd::max(m, B::load_unaligned(x + i));
        best = compat::reduce_max(m);
      }
    }
    for (; i < e; ++i) best = std::max(best, x[i]);
    return best;
  };
  return detail::chunked_reduce<T>(n, -std::numeric_limits<T>::infinity(), 1, part,
                                   [](T a, T b) { return std::max(a, b); });
}

} // namespace simd
SPIKELM_NAMESPACE_END

#endif // SPIKELM_SIMD_REDUCE_HPP
