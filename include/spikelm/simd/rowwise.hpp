// spikelm: kernels over the rows of a [rows, cols] array: stable softmax and log-softmax, LayerNorm, and
// their backward passes. Rows run in parallel (OpenMP); each row is vectorised.
#ifndef SPIKELM_SIMD_ROWWISE_HPP
#define SPIKELM_SIMD_ROWWISE_HPP

#include "../config.hpp"
#include "../core/parallel.hpp"
#include "compat.hpp"
#include "elementwise.hpp"
#include "reduce.hpp"

#include <cmath>
#include <cstddef>

SPIKELM_NAMESPACE_BEGIN
namespace simd {

/// y[r, :] = softmax(x[r, :]) computed as exp(x - max) / sum; x and y may be the same array.
template <class Arch = default_arch, class T>
void softmax_rows(const T* x, T* y, std::size_t rows, std::size_t cols) {
  if (cols == 0) return;
  parallel_for(rows, rows * cols * 20, [&](std::size_t r) {
    const T* xr = x + r * cols;
    T* yr = y + r * cols;
    const T m = simd::max<Arch>(xr, cols);
    detail::map1<Arch>(xr, yr, cols, 0, [m](auto v) { return detail::vexp(v - decltype(v)(m)); });
    const T s = simd::sum<Arch>(yr, cols);
    scale<Arch>(T(1) / s, yr, yr, cols);
  });
}

/// y[r, :] = x - max - log(sum(exp(x - max))).
template <class Arch = default_arch, class T>
void log_softmax_rows(const T* x, T* y, std::size_t rows, std::size_t cols) {
  if (cols == 0) return;
  parallel_for(rows, rows * cols * 20, [&](std::size_t r) {
    const T* xr = x + r * cols;
    T* yr = y + r * cols;
    const T m = simd::max<Arch>(xr, cols);
    // sum of exp(x - m) without a scratch row: accumulate in the output, then overwrite it.
    detail::map1<Arch>(xr, yr, cols, 0, [m](auto v) { return detail::vexp(v - decltype(v)(m)); });
    const T lse = m + std::log(simd::sum<Arch>(yr, cols));
    detail::map1<Arch>(xr, yr, cols, 0, [lse](auto v) { return v - decltype(v)(lse); });
  });
}

/// dx = y * (dy - sum(dy * y)) for y = softmax(x); dx may alias dy.
template <class Arch = default_arch, class T>
void softmax_backward_rows(const T* y, const T* dy, T* dx, std::size_t rows, std::size_t cols) {
  if (cols == 0) return;
  parallel_for(rows, rows * cols * 4, [&](std::size_t r) {
    const T* yr = y + r * cols;
    const T* gr = dy + r * cols;
    const T s = simd::dot<Arch>(yr, gr, cols);
    detail::map2<Arch>(yr, gr, dx + r * cols, cols, 0,
                       [s](auto yv, auto g) { return yv * (g - decltype(yv)(s)); });
  });
}

/// dx = dy - exp(y) * sum(dy) for y = log_softmax(x); dx may alias dy.
template <class Arch = default_arch, class T>
void log_softmax_backward_rows(const T* y, const T* dy, T* dx, std::size_t rows, std::size_t cols) {
  if (cols == 0) return;
  parallel_for(rows, rows * cols * 20, [&](std::size_t r) {
    const T* yr = y + r * cols;
    const T* gr = dy + r * cols;
    const T s = simd::sum<Arch>(gr, cols);
    detail::map2<Arch>(yr, gr, dx + r * cols, cols, 0,
                       [s](auto yv, auto g) { return g - detail::vexp(yv) * decltype(yv)(s); });
  });
}

/// LayerNorm over each row: y = (x - mean) * rstd * gamma + beta, rstd = 1 / sqrt(var + eps) with the
/// biased variance (PyTorch's nn.LayerNorm). gamma/beta may be null (no affine part). `mean` and `rstd`
/// (one value per row) may be null; the backward needs them.
template <class Arch = default_arch, class T>
void layernorm_rows(const T* x, const T* gamma, const T* beta, T* y, T* mean, T* rstd, std::size_t rows,
                    std::size_t cols, T eps) {
  if (cols == 0) return;
  parallel_for(rows, rows * cols * 8, [&](std::size_t r) {
    const T* xr = x + r * cols;
    T* yr = y + r * cols;
    const T mu = simd::sum<Arch>(xr, cols) / static_cast<T>(cols);
    // centred second pass: numerically safe for rows with a large mean
    detail::map1<Arch>(xr, yr, cols, 0, [mu](auto v) { return v - decltype(v)(mu); });
    const T var = simd::sum_sq<Arch>(yr, cols) / static_cast<T>(cols);
    const T rs = T(1) / std::sqrt(var + eps);
    if (gamma && beta) {
      std::size_t i = 0;
      if constexpr (lanes < T, Arch >> 0) {
        using B = xsimd::batch<T, Arch>;
        const B rsb(rs);
        for (; i + B::size <= cols; i += B::size)
          (B::load_unaligned(yr + i) * rsb * B::load_unaligned(gamma + i) + B::load_unaligned(beta + i))
              .store_unaligned(yr + i);
      }
      for (; i < cols; ++i) yr[i] = yr[i] * rs * gamma[i] + beta[i];
    } else if (gamma) {
      detail::map2<Arch>(yr, gamma, yr, cols, 0, [rs](auto v, auto g) { return v * decltype(v)(rs) * g; });
    } else {
      scale<Arch>(rs, yr, yr, cols);
      if (beta) add<Arch>(yr, beta, yr, cols);
    }
    if (mean) mean[r] = mu;
    if (rstd) rstd[r] = rs;
  });
}

/// LayerNorm backward. dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)) with dxhat = dy * gamma;
/// dgamma += sum_r dy * xhat and dbeta += sum_r dy (either may be null; they are accumulated, not set).
/// dx may alias dy. The parameter sums run over column blocks, in row order, so they are deterministic.
template <class Arch = default_arch, class T>
void layernorm_backward_rows(const T* dy, const T* x, const T* gamma, const T* mean, const T* rstd, T* dx,
                             T* dgamma, T* dbeta, std::size_t rows, std::size_t cols) {
  if (cols == 0) return;
  if (dgamma || dbeta) {
    constexpr std::size_t block = 256;
    const std::size_t blocks = (cols + block - 1) / block;
    parallel_for(blocks, rows * cols * 4, [&](std::size_t cb) {
      const std::size_t c0 = cb * block, c1 = std::min(cols, c0 + block);
      for (std::size_t r = 0; r < rows; ++r) {
        const T* gr = dy + r * cols;
        const T* xr = x + r * cols;
        const T mu = mean[r], rs = rstd[r];
        for (std::size_t c = c0; c < c1; ++c) {
          if (dgamma) dgamma[c] += gr[c] * (xr[c] - mu) * rs;
          if (dbeta) dbeta[c] += gr[c];
        }
      }
    });
  }
  parallel_for(rows, rows * cols * 10, [&](std::size_t r) {
    const T* gr = dy + r * cols;
    const T* xr = x + r * cols;
    T* dxr = dx + r * cols;
    const T mu = mean[r], rs = rstd[r];
    T s1 = T(0), s2 = T(0); // sum(dxhat), sum(dxhat * xhat)
    for (std::size_t c = 0; c < cols; ++c) {
      const T g = gamma ? gr[c] * gamma[c] : gr[c];
      s1 += g;
      s2 += g * (xr[c] - mu) * rs;
    }
    const T inv = T(1) / static_cast<T>(cols);
    s1 *= inv, s2 *= inv;
    for (std::size_t c = 0; c < cols; ++c) {
      const T g = gamma ? gr[c] * gamma[c] : gr[c];
      dxr[c] = rs * (g - s1 - (xr[c] - mu) * rs * s2);
    }
  });
}

} // namespace simd
SPIKELM_NAMESPACE_END

#endif // SPIKELM_SIMD_ROWWISE_HPP
