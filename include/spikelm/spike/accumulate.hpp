// spikelm: event-driven kernels for a linear layer fed by spikes.
//
// With binary input s [R, n_in] and weights W [n_in, n_out] stored input-major (row i = the weights leaving
// input i), the product s * W is a sum of weight rows: out[r, :] = sum over active i of W[i, :]. No multiply
// is done and only the rows of active inputs are read. The weight gradient dW = s^T g likewise touches only
// the rows of inputs that were active somewhere in the batch.
//
// Work is split over blocks of output columns (and rows for the forward), so each output element is summed
// by one thread in event order: results do not depend on the thread count.
#ifndef SPIKELM_SPIKE_ACCUMULATE_HPP
#define SPIKELM_SPIKE_ACCUMULATE_HPP

#include "../config.hpp"
#include "../core/error.hpp"
#include "../core/linalg.hpp"
#include "../core/parallel.hpp"
#include "../core/tensor.hpp"
#include "../simd/compat.hpp"
#include "spike_tensor.hpp"

#include <algorithm>

#include <cstddef>

SPIKELM_NAMESPACE_BEGIN

namespace detail {
/// Output columns one task handles. Whole weight rows stream best (the hardware prefetcher follows them), so
/// columns are split only as far as needed to give every thread work when there are few rows to share out.
inline std::size_t accumulate_col_block(std::size_t n_out, std::size_t rows) {
  const auto threads = static_cast<std::size_t>(max_threads());
  if (threads <= 1 || rows >= 2 * threads) return std::max<std::size_t>(n_out, 1);
  const std::size_t split = (n_out + 2 * threads - 1) / (2 * threads);
  return std::max<std::size_t>(256, (split + 63) / 64 * 64);
}

/// dst[c0, c1) += src[c0, c1)
template <class Arch, class T>
void add_range(const T* src, T* dst, std::size_t c0, std::size_t c1) {
  std::size_t c = c0;
  if constexpr (simd::lanes < T, Arch >> 0) {
    using B = xsimd::batch<T, Arch>;
    for (; c + B::size <= c1; c += B::size)
      (B::load_unaligned(dst + c) + B::load_unaligned(src + c)).store_unaligned(dst + c);
  }
  for (; c < c1; ++c) dst[c] += src[c];
}

/// dst[c0, c1) = (add ? dst : 0) + sum over idx of src[idx * ld + c] — the column range of a sum of rows.
/// Each source row segment is streamed contiguously into the destination segment, which stays in L1.
template <class Arch, class T, class Index>
void sum_rows_tile(const T* src, std::size_t ld, const Index* idx, std::size_t n_idx, T* dst, std::size_t c0,
                   std::size_t c1, bool add) {
  if (!add) std::fill(dst + c0, dst + c1, T(0));
  std::size_t e = 0;
  // two source rows per pass halve the loads and stores of the destination
  for (; e + 2 <= n_idx; e += 2) {
    const T* p0 = src + static_cast<std::size_t>(idx[e]) * ld;
    const T* p1 = src + static_cast<std::size_t>(idx[e + 1]) * ld;
    std::size_t c = c0;
    if constexpr (simd::lanes < T, Arch >> 0) {
      using B = xsimd::batch<T, Arch>;
      for (; c + B::size <= c1; c += B::size)
        (B::load_unaligned(dst + c) + (B::load_unaligned(p0 + c) + B::load_unaligned(p1 + c)))
            .store_unaligned(dst + c);
    }
    for (; c < c1; ++c) dst[c] += p0[c] + p1[c];
  }
  if (e < n_idx) add_range<Arch>(src + static_cast<std::size_t>(idx[e]) * ld, dst, c0, c1);
}

/// Columns weighted_sum_rows keeps in registers at once: eight SIMD batches (eight values without SIMD).
template <class T, class Arch>
inline constexpr std::size_t weighted_sum_panel = 8 * std::max<std::size_t>(simd::lanes<T, Arch>, 1);

/// dst[c0, c1) += sum over e of coef[idx[e]] * src[idx[e] * ld + c] — a weighted sum of rows (graded
/// events). The destination is held in registers over panels of weighted_sum_panel columns while every
/// event's row segment is read once, so each term costs one load, one multiply and one add (no destination
/// traffic). Callers iterate panels in their outer loop so that a panel of all `src` rows stays in cache.
/// `stream`, when given, is prefetched: its first `stream_lines` 64-byte cache lines, spread evenly over the
/// events (callers pass the next panel, so that it streams in while this one is summed).
template <class Arch, class T, class Index>
void weighted_sum_rows(const T* src, std::size_t ld, const Index* idx, std::size_t n_idx, const T* coef,
                       T* dst, std::size_t c0, std::size_t c1, const T* stream = nullptr,
                       std::size_t stream_lines = 0) {
  std::size_t c = c0;
  if constexpr (simd::lanes < T, Arch >> 0) {
    using B = xsimd::batch<T, Arch>;
    constexpr std::size_t N = B::size, kAhead = 4;
    const std::size_t per_event = n_idx ? (stream_lines + n_idx - 1) / n_idx : 0;
    static_assert(weighted_sum_panel<T, Arch> == 8 * N);
    for (; c + 8 * N <= c1; c += 8 * N) {
      B a0 = B::load_unaligned(dst + c), a1 = B::load_unaligned(dst + c + N);
      B a2 = B::load_unaligned(dst + c + 2 * N), a3 = B::load_unaligned(dst + c + 3 * N);
      B a4 = B::load_unaligned(dst + c + 4 * N), a5 = B::load_unaligned(dst + c + 5 * N);
      B a6 = B::load_unaligned(dst + c + 6 * N), a7 = B::load_unaligned(dst + c + 7 * N);
      for (std::size_t e = 0; e < n_idx; ++e) {
        const auto i = static_cast<std::size_t>(idx[e]);
        const B v(coef[i]);
        const T* p = src + i * ld + c;
        if (e + kAhead < n_idx) { // the rows are scattered: ask for a later event's segment early
          const T* q = src + static_cast<std::size_t>(idx[e + kAhead]) * ld + c;
#if defined(__GNUC__) || defined(__clang__)
          __builtin_prefetch(q);
          __builtin_prefetch(q + 8 * N - 1);
#else
          (void)q;
#endif
        }
#if defined(__GNUC__) || defined(__clang__)
        for (std::size_t l = e * per_event, l1 = std::min(stream_lines, l + per_event); l < l1; ++l)
          __builtin_prefetch(stream + l * (64 / sizeof(T)));
#endif
        a0 += v * B::load_unaligned(p), a1 += v * B::load_unaligned(p + N);
        a2 += v * B::load_unaligned(p + 2 * N), a3 += v * B::load_unaligned(p + 3 * N);
        a4 += v * B::load_unaligned(p + 4 * N), a5 += v * B::load_unaligned(p + 5 * N);
        a6 += v * B::load_unaligned(p + 6 * N), a7 += v * B::load_unaligned(p + 7 * N);
      }
      a0.store_unaligned(dst + c), a1.store_unaligned(dst + c + N);
      a2.store_unaligned(dst + c + 2 * N), a3.store_unaligned(dst + c + 3 * N);
      a4.store_unaligned(dst + c + 4 * N), a5.store_unaligned(dst + c + 5 * N);
      a6.store_unaligned(dst + c + 6 * N), a7.store_unaligned(dst + c + 7 * N);
    }
    for (; c + N <= c1; c += N) {
      B a = B::load_unaligned(dst + c);
      for (std::size_t e = 0; e < n_idx; ++e) {
        const auto i = static_cast<std::size_t>(idx[e]);
        a += B(coef[i]) * B::load_unaligned(src + i * ld + c);
      }
      a.store_unaligned(dst + c);
    }
  }
  for (; c < c1; ++c) {
    T a = dst[c];
    for (std::size_t e = 0; e < n_idx; ++e) {
      const auto i = static_cast<std::size_t>(idx[e]);
      a += coef[i] * src[i * ld + c];
    }
    dst[c] = a;
  }
}

/// dst[c0, c1) += sum over e of coef[idx[e]] * src[idx[e] * ld + c] (or coef[e] * ..., with CoefPerEvent),
/// the same sum as weighted_sum_rows but in the other loop order: four events at a time, each of their row
/// segments read contiguously from c0 to c1 while the destination segment stays in L1, so the destination is
/// loaded and stored once per four events. The hardware prefetcher follows the four row streams, so the
/// long contiguous segments arrive without waiting on memory (the panel kernel's short scattered segments
/// do, at small batches). The terms of every column are added in the same order whatever [c0, c1) is; for
/// bit-identical results across different splits of the columns, put the split points on multiples of the
/// SIMD width (with FP contraction the SIMD body and the scalar tail may round differently).
template <class Arch, bool CoefPerEvent = false, class T, class Index>
void weighted_sum_rows_streamed(const T* src, std::size_t ld, const Index* idx, std::size_t n_idx,
                                const T* coef, T* dst, std::size_t c0, std::size_t c1) {
  auto weight = [&](std::size_t e) {
    return CoefPerEvent ? coef[e] : coef[static_cast<std::size_t>(idx[e])];
  };
  std::size_t e = 0;
  for (; e + 4 <= n_idx; e += 4) {
    const T* p0 = src + static_cast<std::size_t>(idx[e]) * ld;
    const T* p1 = src + static_cast<std::size_t>(idx[e + 1]) * ld;
    const T* p2 = src + static_cast<std::size_t>(idx[e + 2]) * ld;
    const T* p3 = src + static_cast<std::size_t>(idx[e + 3]) * ld;
    const T v0 = weight(e), v1 = weight(e + 1), v2 = weight(e + 2), v3 = weight(e + 3);
    std::size_t c = c0;
    if constexpr (simd::lanes < T, Arch >> 0) {
      using B = xsimd::batch<T, Arch>;
      const B w0(v0), w1(v1), w2(v2), w3(v3);
      for (; c + B::size <= c1; c += B::size)
        (B::load_unaligned(dst + c) + ((w0 * B::load_unaligned(p0 + c) + w1 * B::load_unaligned(p1 + c)) +
                                       (w2 * B::load_unaligned(p2 + c) + w3 * B::load_unaligned(p3 + c))))
            .store_unaligned(dst + c);
    }
    for (; c < c1; ++c) dst[c] += (v0 * p0[c] + v1 * p1[c]) + (v2 * p2[c] + v3 * p3[c]);
  }
  for (; e < n_idx; ++e) {
    const T* p = src + static_cast<std::size_t>(idx[e]) * ld;
    const T v = weight(e);
    std::size_t c = c0;
    if constexpr (simd::lanes < T, Arch >> 0) {
      using B = xsimd::batch<T, Arch>;
      const B w(v);
      for (; c + B::size <= c1; c += B::size)
        (B::load_unaligned(dst + c) + w * B::load_unaligned(p + c)).store_unaligned(dst + c);
    }
    for (; c < c1; ++c) dst[c] += v * p[c];
  }
}

/// out[k] = sum over c < n of x[c] * src[idx[k] * ld + c] for k < n_idx: the dot products of one vector with
/// several rows, four rows at a time so that x is loaded once per four products. Every product is summed in
/// the same order whatever the other rows are.
template <class Arch, class T, class Index>
void dot_rows(const T* x, const T* src, std::size_t ld, const Index* idx, std::size_t n_idx, std::size_t n,
              T* out) {
  std::size_t k = 0;
  for (; k + 4 <= n_idx; k += 4) {
    const T* p0 = src + static_cast<std::size_t>(idx[k]) * ld;
    const T* p1 = src + static_cast<std::size_t>(idx[k + 1]) * ld;
    const T* p2 = src + static_cast<std::size_t>(idx[k + 2]) * ld;
    const T* p3 = src + static_cast<std::size_t>(idx[k + 3]) * ld;
    T s0 = T(0), s1 = T(0), s2 = T(0), s3 = T(0);
    std::size_t c = 0;
    if constexpr (simd::lanes < T, Arch >> 0) {
      using B = xsimd::batch<T, Arch>;
      B a0(T(0)), a1(T(0)), a2(T(0)), a3(T(0));
      for (; c + B::size <= n; c += B::size) {
        const B xv = B::load_unaligned(x + c);
        a0 += xv * B::load_unaligned(p0 + c), a1 += xv * B::load_unaligned(p1 + c);
        a2 += xv * B::load_unaligned(p2 + c), a3 += xv * B::load_unaligned(p3 + c);
      }
      s0 = simd::compat::reduce_add(a0), s1 = simd::compat::reduce_add(a1);
      s2 = simd::compat::reduce_add(a2), s3 = simd::compat::reduce_add(a3);
    }
    for (; c < n; ++c) s0 += x[c] * p0[c], s1 += x[c] * p1[c], s2 += x[c] * p2[c], s3 += x[c] * p3[c];
    out[k] = s0, out[k + 1] = s1, out[k + 2] = s2, out[k + 3] = s3;
  }
  for (; k < n_idx; ++k) {
    const T* p = src + static_cast<std::size_t>(idx[k]) * ld;
    T s = T(0);
    std::size_t c = 0;
    if constexpr (simd::lanes < T, Arch >> 0) {
      using B = xsimd::batch<T, Arch>;
      B a(T(0));
      for (; c + B::size <= n; c += B::size) a += B::load_unaligned(x + c) * B::load_unaligned(p + c);
      s = simd::compat::reduce_add(a);
    }
    for (; c < n; ++c) s += x[c] * p[c];
    out[k] = s;
  }
}

/// Copies src [rows, cols] (row stride ld) into panel-major order for weighted_sum_rows: panel p holds
/// columns [p w, p w + w) of every row, contiguously (row i of panel p at dst + (p rows + i) w); the last
/// panel is zero-padded to w columns. dst must hold ceil(cols / w) * rows * w values. Row-major weights whose
/// row stride is a multiple of the page size put every row's segment of a column panel at the same offset
/// within its page, so a panel cannot stay in a physically indexed cache (it maps to a few sets only); the
/// packed panel is contiguous and does.
template <class T>
void pack_column_panels(const T* src, std::size_t rows, std::size_t cols, std::size_t ld, std::size_t w,
                        T* dst) {
  const std::size_t panels = (cols + w - 1) / w;
  for (std::size_t i = 0; i < rows; ++i) {
    const T* row = src + i * ld;
    for (std::size_t p = 0; p < panels; ++p) {
      const std::size_t c0 = p * w, n = std::min(w, cols - c0);
      T* out = dst + (p * rows + i) * w;
      std::copy(row + c0, row + c0 + n, out);
      std::fill(out + n, out + w, T(0));
    }
  }
}

inline void check_spike_out(const SpikeTensor& s, const Shape& out, std::size_t n_out, const char* fn) {
  check(out.rank() >= 1 && out.numel() == s.total_rows() * n_out && out[-1] == n_out, fn, ": output shape ",
        out, " does not hold ", s.total_rows(), " rows x ", n_out, " outputs");
}
} // namespace detail

/// out[r, :] = (accumulate ? out[r, :] : 0) + sum over active inputs i of row r of W[i, :].
/// W is [n_in, n_out] (input-major), n_in == s.neurons(); out holds s.total_rows() rows of n_out.
template <class Arch = simd::default_arch, TensorLike WT, TensorLike OT>
void spike_matmul(const SpikeTensor& s, const WT& weight, OT&& out, bool accumulate = false) {
  using T = tensor_value_t<WT>;
  const TensorView<const T> w = cview(weight);
  const TensorView<T> o = mview(std::forward<OT>(out));
  check(w.rank() == 2 && w.dim(0) == s.neurons(), "spike_matmul: weight shape ", w.shape(),
        " does not match ", s.neurons(), " input neurons (expected [n_in, n_out], input-major)");
  const std::size_t n_out = w.dim(1), R = s.total_rows();
  detail::check_spike_out(s, o.shape(), n_out, "spike_matmul");
  if (R == 0 || n_out == 0) return;
  const std::size_t block = detail::accumulate_col_block(n_out, R);
  const std::size_t col_blocks = (n_out + block - 1) / block;
  const std::size_t want = 4 * static_cast<std::size_t>(max_threads());
  const std::size_t row_chunks = std::min(R, std::max<std::size_t>(1, (want + col_blocks - 1) / col_blocks));
  const std::size_t rows_per = (R + row_chunks - 1) / row_chunks;
  parallel_for(row_chunks * col_blocks, s.count() * n_out + R * n_out, [&](std::size_t task) {
    const std::size_t rc = task / col_blocks, cb = task % col_blocks;
    const std::size_t c0 = cb * block;
    const std::size_t c1 = std::min(n_out, c0 + block);
    const std::size_t r1 = std::min(R, (rc + 1) * rows_per);
    for (std::size_t r = rc * rows_per; r < r1; ++r) {
      const auto ev = s.events(r);
      detail::sum_rows_tile<Arch>(w.data(), n_out, ev.data(), ev.size(), o.data() + r * n_out, c0, c1,
                                  accumulate);
    }
  });
}

/// dW[i, :] += sum over rows r where input i spiked of g[r, :]. Only rows of dW whose input was active
/// in some row are touched. g holds s.total_rows() rows of n_out; dW is [n_in, n_out].
template <class Arch = simd::default_arch, TensorLike GT, TensorLike DWT>
void spike_matmul_weight_grad(const SpikeTensor& s, const GT& grad_out, DWT&& grad_weight) {
  using T = tensor_value_t<GT>;
  const TensorView<const T> g = cview(grad_out);
  const TensorView<T> dw = mview(std::forward<DWT>(grad_weight));
  check(dw.rank() == 2 && dw.dim(0) == s.neurons(), "spike_matmul_weight_grad: weight-gradient shape ",
        dw.shape(), " does not match ", s.neurons(), " input neurons");
  const std::size_t n_out = dw.dim(1), R = s.total_rows();
  detail::check_spike_out(s, g.shape(), n_out, "spike_matmul_weight_grad");
  if (R == 0 || n_out == 0) return;
  const std::size_t block = detail::accumulate_col_block(n_out, 1);
  const std::size_t col_blocks = (n_out + block - 1) / block;
  parallel_for(col_blocks, s.count() * n_out, [&](std::size_t cb) {
    const std::size_t c0 = cb * block;
    const std::size_t c1 = std::min(n_out, c0 + block);
    for (std::size_t r = 0; r < R; ++r) {
      const T* gr = g.data() + r * n_out;
      for (const auto i : s.events(r)) detail::add_range<Arch>(gr, dw.data() + i * n_out, c0, c1);
    }
  });
}

/// grad_in = g * W^T (dense; a surrogate-gradient backward needs every input's gradient). W is [n_in, n_out],
/// g is [R, n_out], grad_in is [R, n_in]. With `accumulate`, adds to grad_in.
template <TensorLike GT, TensorLike WT, TensorLike DIT>
void spike_matmul_input_grad(const GT& grad_out, const WT& weight, DIT&& grad_in, bool accumulate = false) {
  using T = tensor_value_t<GT>;
  const TensorView<const T> g = cview(grad_out), w = cview(weight);
  const TensorView<T> gi = mview(std::forward<DIT>(grad_in));
  check(w.rank() == 2, "spike_matmul_input_grad: weight must be [n_in, n_out], got ", w.shape());
  const std::size_t n_in = w.dim(0), n_out = w.dim(1);
  check(g.rank() >= 1 && g.dim(-1) == n_out && gi.rank() >= 1 && gi.dim(-1) == n_in &&
            g.size() / std::max<std::size_t>(n_out, 1) == gi.size() / std::max<std::size_t>(n_in, 1),
        "spike_matmul_input_grad: gradient ", g.shape(), ", weight ", w.shape(), " and input gradient ",
        gi.shape(), " do not agree");
  const std::size_t R = n_out ? g.size() / n_out : gi.size() / std::max<std::size_t>(n_in, 1);
  matmul(g.reshape({R, n_out}), w, gi.reshape({R, n_in}), Trans::No, Trans::Yes, T(1),
         accumulate ? T(1) : T(0));
}

SPIKELM_NAMESPACE_END

#endif // SPIKELM_SPIKE_ACCUMULATE_HPP
