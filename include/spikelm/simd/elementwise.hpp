// spikelm: elementwise SIMD kernels over raw arrays (xsimd batches, scalar tail, OpenMP over chunks).
//
// Every kernel takes the xsimd architecture as its first template parameter, so objects compiled with
// different -march flags never share a symbol with different bodies. Inputs and outputs may alias exactly
// (in place) but must not overlap partially.
#ifndef SPIKELM_SIMD_ELEMENTWISE_HPP
#define SPIKELM_SIMD_ELEMENTWISE_HPP

#include "../config.hpp"
#include "../core/parallel.hpp"
#include "compat.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <numbers>
#include <type_traits>

SPIKELM_NAMESPACE_BEGIN
namespace simd {

/// Elements per parallel chunk of an elementwise kernel.
inline constexpr std::size_t chunk_elements = 8192;

namespace detail {
template <class V>
inline constexpr bool is_scalar_v = std::is_arithmetic_v<V>;

/// Calls body(begin, end) over [0, n) in chunks, in parallel when n is large. `cost` is work per element.
template <class Body>
void for_chunks(std::size_t n, std::size_t cost, Body&& body) {
  const std::size_t chunks = (n + chunk_elements - 1) / chunk_elements;
  parallel_for(chunks, n * cost, [&](std::size_t c) {
    const std::size_t b = c * chunk_elements;
    body(b, std::min(n, b + chunk_elements));
  });
}

/// y[i] = f(x[i]); f is called with xsimd batches and with scalars.
template <class Arch, class T, class F>
void map1(const T* x, T* y, std::size_t n, std::size_t cost, F f) {
  for_chunks(n, cost, [&](std::size_t b, std::size_t e) {
    // local copies: the compiler cannot prove that stores through y leave the captured pointers and f's
    // state unchanged, and would reload them every iteration
    const T* xs = x;
    T* ys = y;
    const F fn = f;
    std::size_t i = b;
    if constexpr (lanes < T, Arch >> 0) {
      using B = xsimd::batch<T, Arch>;
      for (; i + B::size <= e; i += B::size) fn(B::load_unaligned(xs + i)).store_unaligned(ys + i);
    }
    for (; i < e; ++i) ys[i] = fn(xs[i]);
  });
}

/// out[i] = f(a[i], b[i]).
template <class Arch, class T, class F>
void map2(const T* a, const T* b, T* out, std::size_t n, std::size_t cost, F f) {
  for_chunks(n, cost, [&](std::size_t lo, std::size_t hi) {
    const T *as = a, *bs = b; // local copies, as in map1
    T* os = out;
    const F fn = f;
    std::size_t i = lo;
    if constexpr (lanes < T, Arch >> 0) {
      using B = xsimd::batch<T, Arch>;
      for (; i + B::size <= hi; i += B::size)
        fn(B::load_unaligned(as + i), B::load_unaligned(bs + i)).store_unaligned(os + i);
    }
    for (; i < hi; ++i) os[i] = fn(as[i], bs[i]);
  });
}

// Math that works on scalars and on xsimd batches alike.
template <class V>
V vexp(const V& v) {
  if constexpr (is_scalar_v<V>) {
    return std::exp(v);
  } else {
    // xsimd's exp converts round(x / ln 2) to an integer before it tests the range, which is undefined
    // behaviour (clang's UBSan: float-cast-overflow) for arguments such as the WKV state's -1e38. Clamp to
    // a range where exp is already 0 or +inf in every precision; NaN fails both tests and passes through.
    using T = typename V::value_type;
    const V lo(T(-1000)), hi(T(1000));
    return xsimd::exp(xsimd::select(v < lo, lo, xsimd::select(v > hi, hi, v)));
  }
}
template <class V>
V vtanh(const V& v) {
  if constexpr (is_scalar_v<V>)
    return std::tanh(v);
  else
    return xsimd::tanh(v);
}
template <class V>
V verf(const V& v) {
  if constexpr (is_scalar_v<V>)
    return std::erf(v);
  else
    return xsimd::erf(v);
}
template <class V>
V vmax(const V& a, const V& b) {
  if constexpr (is_scalar_v<V>)
    return std::max(a, b);
  else
    return xsimd::max(a, b);
}
/// v > 0 ? a : 0
template <class V>
V where_positive(const V& v, const V& a) {
  if constexpr (is_scalar_v<V>)
    return v > V(0) ? a : V(0);
  else
    return xsimd::select(v > V(0), a, V(0));
}
/// a > b ? x : y, lane by lane
template <class V>
V where_greater(const V& a, const V& b, const V& x, const V& y) {
  if constexpr (is_scalar_v<V>)
    return a > b ? x : y;
  else
    return xsimd::select(a > b, x, y);
}
template <class V>
V vsigmoid(const V& v) {
  return V(1) / (V(1) + vexp(V(0) - v));
}
/// Loads a V (a scalar or an xsimd batch) from p, unaligned; vstore writes one back.
template <class V, class T>
V vload(const T* p) {
  if constexpr (is_scalar_v<V>)
    return *p;
  else
    return V::load_unaligned(p);
}
template <class V, class T>
void vstore(T* p, const V& v) {
  if constexpr (is_scalar_v<V>)
    *p = v;
  else
    v.store_unaligned(p);
}
} // namespace detail

// ---- arithmetic -----------------------------------------------------------------------------------------

/// out = a + b
template <class Arch = default_arch, class T>
void add(const T* a, const T* b, T* out, std::size_t n) {
  detail::map2<Arch>(a, b, out, n, 1, [](auto x, auto y) { return x + y; });
}
/// out = a - b
template <class Arch = default_arch, class T>
void sub(const T* a, const T* b, T* out, std::size_t n) {
  detail::map2<Arch>(a, b, out, n, 1, [](auto x, auto y) { return x - y; });
}
/// out = a * b
template <class Arch = default_arch, class T>
void mul(const T* a, const T* b, T* out, std::size_t n) {
  detail::map2<Arch>(a, b, out, n, 1, [](auto x, auto y) { return x * y; });
}
/// out = a / b
template <class Arch = default_arch, class T>
void div(const T* a, const T* b, T* out, std::size_t n) {
  detail::map2<Arch>(a, b, out, n, 4, [](auto x, auto y) { return x / y; });
}
/// y = alpha * x + y
template <class Arch = default_arch, class T>
void axpy(T alpha, const T* x, T* y, std::size_t n) {
  detail::map2<Arch>(x, y, y, n, 2, [alpha](auto xv, auto yv) { return decltype(xv)(alpha) * xv + yv; });
}
/// y = alpha * x
template <class Arch = default_arch, class T>
void scale(T alpha, const T* x, T* y, std::size_t n) {
  detail::map1<Arch>(x, y, n, 1, [alpha](auto v) { return decltype(v)(alpha) * v; });
}

// ---- activations ----------------------------------------------------------------------------------------

/// y = exp(x)
template <class Arch = default_arch, class T>
void exp(const T* x, T* y, std::size_t n) {
  detail::map1<Arch>(x, y, n, 16, [](auto v) { return detail::vexp(v); });
}
/// y = 1 / (1 + exp(-x))
template <class Arch = default_arch, class T>
void sigmoid(const T* x, T* y, std::size_t n) {
  detail::map1<Arch>(x, y, n, 20, [](auto v) { return detail::vsigmoid(v); });
}
/// y = tanh(x)
template <class Arch = default_arch, class T>
void tanh(const T* x, T* y, std::size_t n) {
  detail::map1<Arch>(x, y, n, 20, [](auto v) { return detail::vtanh(v); });
}
/// y = x * Phi(x) = 0.5 x (1 + erf(x / sqrt 2))  (PyTorch's GELU, approximate='none'; BERT)
template <class Arch = default_arch, class T>
void gelu(const T* x, T* y, std::size_t n) {
  detail::map1<Arch>(x, y, n, 24, [](auto v) {
    using V = decltype(v);
    return V(T(0.5)) * v * (V(1) + detail::verf(v * V(T(std::numbers::sqrt2 / 2))));
  });
}
/// y = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))  (PyTorch's GELU, approximate='tanh'; GPT-2)
template <class Arch = default_arch, class T>
void gelu_tanh(const T* x, T* y, std::size_t n) {
  detail::map1<Arch>(x, y, n, 24, [](auto v) {
    using V = decltype(v);
    const V k(T(0.7978845608028654)); // sqrt(2 / pi)
    return V(T(0.5)) * v * (V(1) + detail::vtanh(k * (v + V(T(0.044715)) * v * v * v)));
  });
}
/// y = max(x, 0)
template <class Arch = default_arch, class T>
void relu(const T* x, T* y, std::size_t n) {
  detail::map1<Arch>(x, y, n, 1, [](auto v) { return detail::vmax(v, decltype(v)(0)); });
}
/// y = max(x, 0)^2  (RWKV channel mix)
template <class Arch = default_arch, class T>
void relu_sq(const T* x, T* y, std::size_t n) {
  detail::map1<Arch>(x, y, n, 2, [](auto v) {
    const auto r = detail::vmax(v, decltype(v)(0));
    return r * r;
  });
}

// ---- activation backward (dx from the forward's input x or output y, and dy) -----------------------------

/// dx = dy * y  (y = exp(x))
template <class Arch = default_arch, class T>
void exp_backward(const T* y, const T* dy, T* dx, std::size_t n) {
  mul<Arch>(y, dy, dx, n);
}
/// dx = dy * y (1 - y)  (y = sigmoid(x))
template <class Arch = default_arch, class T>
void sigmoid_backward(const T* y, const T* dy, T* dx, std::size_t n) {
  detail::map2<Arch>(y, dy, dx, n, 3, [](auto yv, auto g) { return g * yv * (decltype(yv)(1) - yv); });
}
/// dx = dy (1 - y^2)  (y = tanh(x))
template <class Arch = default_arch, class T>
void tanh_backward(const T* y, const T* dy, T* dx, std::size_t n) {
  detail::map2<Arch>(y, dy, dx, n, 3, [](auto yv, auto g) { return g * (decltype(yv)(1) - yv * yv); });
}
/// dx = dy * [x > 0]
template <class Arch = default_arch, class T>
void relu_backward(const T* x, const T* dy, T* dx, std::size_t n) {
  detail::map2<Arch>(x, dy, dx, n, 1, [](auto xv, auto g) { return detail::where_positive(xv, g); });
}
/// dx = dy * 2 max(x, 0)
template <class Arch = default_arch, class T>
void relu_sq_backward(const T* x, const T* dy, T* dx, std::size_t n) {
  detail::map2<Arch>(x, dy, dx, n, 3, [](auto xv, auto g) {
    using V = decltype(xv);
    return V(2) * detail::vmax(xv, V(0)) * g;
  });
}
/// dx = dy (Phi(x) + x phi(x))  (exact GELU)
template <class Arch = default_arch, class T>
void gelu_backward(const T* x, const T* dy, T* dx, std::size_t n) {
  detail::map2<Arch>(x, dy, dx, n, 40, [](auto xv, auto g) {
    using V = decltype(xv);
    const V cdf = V(T(0.5)) * (V(1) + detail::verf(xv * V(T(std::numbers::sqrt2 / 2))));
    const V pdf = V(T(0.3989422804014327)) * detail::vexp(V(T(-0.5)) * xv * xv); // 1/sqrt(2 pi)
    return g * (cdf + xv * pdf);
  });
}
/// dx for the tanh-approximated GELU.
template <class Arch = default_arch, class T>
void gelu_tanh_backward(const T* x, const T* dy, T* dx, std::size_t n) {
  detail::map2<Arch>(x, dy, dx, n, 40, [](auto xv, auto g) {
    using V = decltype(xv);
    const V k(T(0.7978845608028654)), c(T(0.044715));
    const V th = detail::vtanh(k * (xv + c * xv * xv * xv));
    const V dinner = k * (V(1) + V(3) * c * xv * xv);
    return g * (V(T(0.5)) * (V(1) + th) + V(T(0.5)) * xv * (V(1) - th * th) * dinner);
  });
}

} // namespace simd
SPIKELM_NAMESPACE_END

#endif // SPIKELM_SIMD_ELEMENTWISE_HPP
