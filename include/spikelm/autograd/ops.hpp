// spikelm: differentiable ops on the tape. Each op computes its value with the library's kernels and
// records a backward function that adds into its inputs' gradients. Inference code calls the kernels
// directly; these are the training path.
#ifndef SPIKELM_AUTOGRAD_OPS_HPP
#define SPIKELM_AUTOGRAD_OPS_HPP

#include "../config.hpp"
#include "../core/error.hpp"
#include "../core/linalg.hpp"
#include "../core/parallel.hpp"
#include "../core/rng.hpp"
#include "../core/tensor.hpp"
#include "../neuron/multistep.hpp"
#include "../neuron/surrogate.hpp"
#include "../simd/elementwise.hpp"
#include "../simd/reduce.hpp"
#include "../simd/rowwise.hpp"
#include "../spike/accumulate.hpp"
#include "../spike/spike_tensor.hpp"
#include "tape.hpp"

#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <type_traits>
#include <vector>

SPIKELM_NAMESPACE_BEGIN

namespace detail {
/// Writes a gradient of n values for node i: compute(dst) fills dst; when the slot already holds a
/// gradient, compute() fills a scratch buffer that is then added.
template <class T, class F>
void write_grad(Tape<T>& tape, std::size_t i, std::size_t n, F&& compute) {
  if (!tape.requires_grad(i)) return;
  const GradSlot<T> s = tape.slot(i);
  if (s.fresh) {
    compute(s.data);
  } else {
    std::vector<T> tmp(n);
    compute(tmp.data());
    simd::add(s.data, tmp.data(), s.data, n);
  }
}
/// A zeroed (when fresh) gradient slot, for backward functions that only add.
template <class T>
T* zeroed_slot(Tape<T>& tape, std::size_t i, std::size_t n) {
  const GradSlot<T> s = tape.slot(i);
  if (s.fresh) std::fill(s.data, s.data + n, T(0));
  return s.data;
}

template <class T, class Fwd, class Bwd>
Var<T> unary(const Var<T>& x, Fwd fwd, Bwd bwd) {
  const auto xv = x.value();
  Tensor<T> y(xv.shape(), uninitialized);
  fwd(xv.data(), y.data(), xv.size());
  const std::size_t xi = x.index();
  return x.tape().push(std::move(y), {x}, [xi, bwd](Tape<T>& tp, std::size_t self) {
    const auto dy = tp.grad(self);
    const auto xv2 = tp.value(xi), yv = tp.value(self);
    write_grad(tp, xi, xv2.size(), [&](T* dx) { bwd(xv2.data(), yv.data(), dy.data(), dx, xv2.size()); });
  });
}

/// Broadcasting of two shapes (numpy rules, aligned at the last axis), padded to rank 4.
struct Broadcast {
  Shape out;
  std::array<std::size_t, 4> dims{1, 1, 1, 1};
  std::array<std::size_t, 4> sa{}, sb{}; // element strides of a and b in the padded out index (0: broadcast)
};
inline std::array<std::size_t, 4> padded(const Shape& s) {
  std::array<std::size_t, 4> d{1, 1, 1, 1};
  for (std::size_t i = 0; i < s.rank(); ++i) d[4 - s.rank() + i] = s.begin()[i];
  return d;
}
inline std::array<std::size_t, 4> padded_strides(const Shape& s, const std::array<std::size_t, 4>& out) {
  const auto d = padded(s);
  std::array<std::size_t, 4> st{};
  std::size_t acc = 1;
  for (std::size_t i = 4; i-- > 0;) {
    st[i] = (d[i] == 1 && out[i] != 1) ? 0 : acc;
    acc *= d[i];
  }
  return st;
}
inline Broadcast broadcast(const Shape& a, const Shape& b, const char* op) {
  Broadcast bc;
  const auto da = padded(a), db = padded(b);
  for (std::size_t i = 0; i < 4; ++i) {
    check(da[i] == db[i] || da[i] == 1 || db[i] == 1, op, ": shapes ", a, " and ", b, " do not broadcast");
    bc.dims[i] = std::max(da[i], db[i]);
  }
  const std::size_t rank = std::max(a.rank(), b.rank());
  bc.out = Shape(bc.dims.begin() + (4 - rank), bc.dims.end());
  bc.sa = padded_strides(a, bc.dims);
  bc.sb = padded_strides(b, bc.dims);
  return bc;
}
/// f(out_index, a_index, b_index) over the broadcast output, row-major.
template <class F>
void for_each_broadcast(const Broadcast& bc, F&& f) {
  std::size_t o = 0;
  for (std::size_t i0 = 0; i0 < bc.dims[0]; ++i0)
    for (std::size_t i1 = 0; i1 < bc.dims[1]; ++i1)
      for (std::size_t i2 = 0; i2 < bc.dims[2]; ++i2)
        for (std::size_t i3 = 0; i3 < bc.dims[3]; ++i3, ++o)
          f(o, i0 * bc.sa[0] + i1 * bc.sa[1] + i2 * bc.sa[2] + i3 * bc.sa[3],
            i0 * bc.sb[0] + i1 * bc.sb[1] + i2 * bc.sb[2] + i3 * bc.sb[3]);
}

enum class BinaryKind { Add, Sub, Mul, Div };

template <class T, BinaryKind K>
Var<T> binary(const Var<T>& a, const Var<T>& b) {
  constexpr const char* names[] = {"add", "sub", "mul", "div"};
  const char* name = names[static_cast<int>(K)];
  Tape<T>& tape = a.tape();
  tape.check_var(b);
  const auto av = a.value(), bv = b.value();
  const Broadcast bc = broadcast(av.shape(), bv.shape(), name);
  Tensor<T> out(bc.out, uninitialized);
  const bool same = av.shape() == bv.shape();
  if (same) {
    if constexpr (K == BinaryKind::Add)
      simd::add(av.data(), bv.data(), out.data(), out.size());
    else if constexpr (K == BinaryKind::Sub)
      simd::sub(av.data(), bv.data(), out.data(), out.size());
    else if constexpr (K == BinaryKind::Mul)
      simd::mul(av.data(), bv.data(), out.data(), out.size());
    else
      simd::div(av.data(), bv.data(), out.data(), out.size());
  } else {
    const T* pa = av.data();
    const T* pb = bv.data();
    T* po = out.data();
    for_each_broadcast(bc, [&](std::size_t o, std::size_t ia, std::size_t ib) {
      if constexpr (K == BinaryKind::Add)
        po[o] = pa[ia] + pb[ib];
      else if constexpr (K == BinaryKind::Sub)
        po[o] = pa[ia] - pb[ib];
      else if constexpr (K == BinaryKind::Mul)
        po[o] = pa[ia] * pb[ib];
      else
        po[o] = pa[ia] / pb[ib];
    });
  }
  const std::size_t ai = a.index(), bi = b.index();
  return tape.push(std::move(out), {a, b}, [ai, bi, bc, same](Tape<T>& tp, std::size_t self) {
    const auto dy = tp.grad(self);
    const auto av2 = tp.value(ai), bv2 = tp.value(bi);
    const T* pa = av2.data();
    const T* pb = bv2.data();
    const T* g = dy.data();
    if (same) {
      const std::size_t n = dy.size();
      write_grad(tp, ai, n, [&](T* da) {
        if constexpr (K == BinaryKind::Add || K == BinaryKind::Sub)
          std::copy(g, g + n, da);
        else if constexpr (K == BinaryKind::Mul)
          simd::mul(g, pb, da, n);
        else
          simd::div(g, pb, da, n);
      });
      write_grad(tp, bi, n, [&](T* db) {
        if constexpr (K == BinaryKind::Add)
          std::copy(g, g + n, db);
        else if constexpr (K == BinaryKind::Sub)
          simd::scale(T(-1), g, db, n);
        else if constexpr (K == BinaryKind::Mul)
          simd::mul(g, pa, db, n);
        else
          for (std::size_t i = 0; i < n; ++i) db[i] = -g[i] * pa[i] / (pb[i] * pb[i]);
      });
      return;
    }
    // broadcast: sum the elementwise gradient over the broadcast axes
    if (tp.requires_grad(ai)) {
      std::vector<T> da(av2.size(), T(0));
      for_each_broadcast(bc, [&](std::size_t o, std::size_t ia, std::size_t ib) {
        if constexpr (K == BinaryKind::Add || K == BinaryKind::Sub)
          da[ia] += g[o];
        else if constexpr (K == BinaryKind::Mul)
          da[ia] += g[o] * pb[ib];
        else
          da[ia] += g[o] / pb[ib];
      });
      tp.accumulate(ai, TensorView<const T>(da.data(), av2.shape()));
    }
    if (tp.requires_grad(bi)) {
      std::vector<T> db(bv2.size(), T(0));
      for_each_broadcast(bc, [&](std::size_t o, std::size_t ia, std::size_t ib) {
        if constexpr (K == BinaryKind::Add)
          db[ib] += g[o];
        else if constexpr (K == BinaryKind::Sub)
          db[ib] -= g[o];
        else if constexpr (K == BinaryKind::Mul)
          db[ib] += g[o] * pa[ia];
        else
          db[ib] -= g[o] * pa[ia] / (pb[ib] * pb[ib]);
      });
      tp.accumulate(bi, TensorView<const T>(db.data(), bv2.shape()));
    }
  });
}

/// [outer, axis, inner] view of `shape` around `axis`.
inline std::array<std::size_t, 3> split_axis(const Shape& shape, std::ptrdiff_t axis, const char* op) {
  const auto r = static_cast<std::ptrdiff_t>(shape.rank());
  const std::ptrdiff_t a = axis < 0 ? axis + r : axis;
  check(a >= 0 && a < r, op, ": axis ", axis, " out of range for shape ", shape);
  std::size_t outer = 1, inner = 1;
  for (std::ptrdiff_t i = 0; i < a; ++i) outer *= shape.begin()[i];
  for (std::ptrdiff_t i = a + 1; i < r; ++i) inner *= shape.begin()[i];
  return {outer, shape.begin()[a], inner};
}
inline std::size_t normalize_axis(const Shape& shape, std::ptrdiff_t axis, const char* op) {
  const auto r = static_cast<std::ptrdiff_t>(shape.rank());
  const std::ptrdiff_t a = axis < 0 ? axis + r : axis;
  check(a >= 0 && a < r, op, ": axis ", axis, " out of range for shape ", shape);
  return static_cast<std::size_t>(a);
}
} // namespace detail

// ---- arithmetic ---------------------------------------------------------------------------------------

/// a + b with numpy broadcasting.
template <class T>
Var<T> add(const Var<T>& a, const Var<T>& b) {
  return detail::binary<T, detail::BinaryKind::Add>(a, b);
}
/// a - b with broadcasting.
template <class T>
Var<T> sub(const Var<T>& a, const Var<T>& b) {
  return detail::binary<T, detail::BinaryKind::Sub>(a, b);
}
/// a * b (elementwise) with broadcasting.
template <class T>
Var<T> mul(const Var<T>& a, const Var<T>& b) {
  return detail::binary<T, detail::BinaryKind::Mul>(a, b);
}
/// a / b (elementwise) with broadcasting.
template <class T>
Var<T> div(const Var<T>& a, const Var<T>& b) {
  return detail::binary<T, detail::BinaryKind::Div>(a, b);
}
template <class T>
Var<T> operator+(const Var<T>& a, const Var<T>& b) {
  return add(a, b);
}
template <class T>
Var<T> operator-(const Var<T>& a, const Var<T>& b) {
  return sub(a, b);
}
template <class T>
Var<T> operator*(const Var<T>& a, const Var<T>& b) {
  return mul(a, b);
}
template <class T>
Var<T> operator/(const Var<T>& a, const Var<T>& b) {
  return div(a, b);
}

/// c * x for a constant c.
template <class T>
Var<T> scale(const Var<T>& x, T c) {
  return detail::unary(
      x, [c](const T* in, T* out, std::size_t n) { simd::scale(c, in, out, n); },
      [c](const T*, const T*, const T* dy, T* dx, std::size_t n) { simd::scale(c, dy, dx, n); });
}
/// -x
template <class T>
Var<T> neg(const Var<T>& x) {
  return scale(x, T(-1));
}

// ---- reductions -------------------------------------------------------------------------------------------

/// Sum of all elements (a rank-0 scalar).
template <class T>
Var<T> sum(const Var<T>& x) {
  const auto xv = x.value();
  Tensor<T> out(Shape{});
  out.data()[0] = simd::sum(xv.data(), xv.size());
  const std::size_t xi = x.index();
  return x.tape().push(std::move(out), {x}, [xi](Tape<T>& tp, std::size_t self) {
    const T g = tp.grad(self).data()[0];
    const std::size_t n = tp.value(xi).size();
    detail::write_grad(tp, xi, n, [&](T* dx) { std::fill(dx, dx + n, g); });
  });
}
/// Mean of all elements (a rank-0 scalar).
template <class T>
Var<T> mean(const Var<T>& x) {
  const std::size_t n = x.value().size();
  check(n > 0, "mean: empty input");
  return scale(sum(x), T(1) / static_cast<T>(n));
}
/// Sum over `axis`; keepdim keeps it with extent 1.
template <class T>
Var<T> sum(const Var<T>& x, std::ptrdiff_t axis, bool keepdim = false) {
  const auto xv = x.value();
  const auto split = detail::split_axis(xv.shape(), axis, "sum");
  const std::size_t outer = split[0], len = split[1], inner = split[2];
  const std::size_t a = detail::normalize_axis(xv.shape(), axis, "sum");
  std::vector<std::size_t> dims(xv.shape().begin(), xv.shape().end());
  if (keepdim)
    dims[a] = 1;
  else
    dims.erase(dims.begin() + static_cast<std::ptrdiff_t>(a));
  Tensor<T> out(Shape(dims.begin(), dims.end()));
  for (std::size_t o = 0; o < outer; ++o)
    for (std::size_t k = 0; k < len; ++k)
      simd::add(out.data() + o * inner, xv.data() + (o * len + k) * inner, out.data() + o * inner, inner);
  const std::size_t xi = x.index();
  return x.tape().push(std::move(out), {x}, [xi, outer, len, inner](Tape<T>& tp, std::size_t self) {
    const auto dy = tp.grad(self);
    detail::write_grad(tp, xi, outer * len * inner, [&](T* dx) {
      for (std::size_t o = 0; o < outer; ++o)
        for (std::size_t k = 0; k < len; ++k)
          std::copy(dy.data() + o * inner, dy.data() + (o + 1) * inner, dx + (o * len + k) * inner);
    });
  });
}
/// Mean over `axis`.
template <class T>
Var<T> mean(const Var<T>& x, std::ptrdiff_t axis, bool keepdim = false) {
  const std::size_t len = x.value().shape()[axis];
  check(len > 0, "mean: empty axis ", axis, " in shape ", x.value().shape());
  return scale(sum(x, axis, keepdim), T(1) / static_cast<T>(len));
}

// ---- shape ops
// ----------------------------------------------------------------------------------------------

/// The same values under another shape (no copy).
template <class T>
Var<T> reshape(const Var<T>& x, const Shape& shape) {
  const auto view = x.value().reshape(shape);
  const std::size_t xi = x.index();
  return x.tape().push_view(view, {x},
                            [xi](Tape<T>& tp, std::size_t self) { tp.accumulate(xi, tp.grad(self)); });
}

/// Swaps the last two axes (rank 2, 3 or 4).
template <class T>
Var<T> transpose(const Var<T>& x) {
  const auto xv = x.value();
  check(xv.rank() >= 2, "transpose: needs rank >= 2, got ", xv.shape());
  const std::size_t m = xv.dim(-2), n = xv.dim(-1), batch = m * n == 0 ? 0 : xv.size() / (m * n);
  std::vector<std::size_t> dims(xv.shape().begin(), xv.shape().end());
  std::swap(dims[dims.size() - 1], dims[dims.size() - 2]);
  Tensor<T> out(Shape(dims.begin(), dims.end()), uninitialized);
  auto tr = [m, n, batch](const T* src, T* dst, std::size_t rows, std::size_t cols) {
    for (std::size_t b = 0; b < batch; ++b)
      for (std::size_t i = 0; i < rows; ++i)
        for (std::size_t j = 0; j < cols; ++j) dst[b * m * n + j * rows + i] = src[b * m * n + i * cols + j];
  };
  tr(xv.data(), out.data(), m, n);
  const std::size_t xi = x.index();
  return x.tape().push(std::move(out), {x}, [xi, tr, m, n](Tape<T>& tp, std::size_t self) {
    const auto dy = tp.grad(self);
    detail::write_grad(tp, xi, dy.size(), [&](T* dx) { tr(dy.data(), dx, n, m); });
  });
}

/// Elements [begin, end) of `axis` (a copy).
template <class T>
Var<T> slice(const Var<T>& x, std::ptrdiff_t axis, std::size_t begin, std::size_t end) {
  const auto xv = x.value();
  const auto split = detail::split_axis(xv.shape(), axis, "slice");
  const std::size_t outer = split[0], len = split[1], inner = split[2];
  check(begin <= end && end <= len, "slice: range [", begin, ", ", end, ") out of bounds for axis ", axis,
        " of shape ", xv.shape());
  const std::size_t a = detail::normalize_axis(xv.shape(), axis, "slice"), w = end - begin;
  std::vector<std::size_t> dims(xv.shape().begin(), xv.shape().end());
  dims[a] = w;
  Tensor<T> out(Shape(dims.begin(), dims.end()), uninitialized);
  for (std::size_t o = 0; o < outer; ++o)
    std::copy(xv.data() + (o * len + begin) * inner, xv.data() + (o * len + end) * inner,
              out.data() + o * w * inner);
  const std::size_t xi = x.index();
  return x.tape().push(std::move(out), {x}, [=](Tape<T>& tp, std::size_t self) {
    if (!tp.requires_grad(xi)) return;
    const auto dy = tp.grad(self);
    T* dx = detail::zeroed_slot(tp, xi, outer * len * inner);
    for (std::size_t o = 0; o < outer; ++o)
      simd::add(dx + (o * len + begin) * inner, dy.data() + o * w * inner, dx + (o * len + begin) * inner,
                w * inner);
  });
}

/// Concatenation along `axis`; the other extents must agree.
template <class T>
Var<T> concat(std::span<const Var<T>> xs, std::ptrdiff_t axis) {
  check(!xs.empty(), "concat: no inputs");
  const Shape first = xs[0].value().shape();
  const std::size_t a = detail::normalize_axis(first, axis, "concat");
  std::size_t total = 0;
  std::vector<std::size_t> lens;
  for (const auto& v : xs) {
    const Shape s = v.value().shape();
    check(s.rank() == first.rank(), "concat: rank of ", s, " differs from ", first);
    for (std::size_t i = 0; i < s.rank(); ++i)
      check(i == a || s.begin()[i] == first.begin()[i], "concat: shape ", s, " does not match ", first,
            " outside axis ", axis);
    lens.push_back(s.begin()[a]);
    total += s.begin()[a];
  }
  const auto split = detail::split_axis(first, axis, "concat");
  const std::size_t outer = split[0], len0 = split[1], inner = split[2];
  (void)len0;
  std::vector<std::size_t> dims(first.begin(), first.end());
  dims[a] = total;
  Tensor<T> out(Shape(dims.begin(), dims.end()), uninitialized);
  std::size_t off = 0;
  for (std::size_t k = 0; k < xs.size(); ++k) {
    const T* src = xs[k].value().data();
    for (std::size_t o = 0; o < outer; ++o)
      std::copy(src + o * lens[k] * inner, src + (o + 1) * lens[k] * inner,
                out.data() + (o * total + off) * inner);
    off += lens[k];
  }
  std::vector<std::size_t> idx;
  for (const auto& v : xs) idx.push_back(v.index());
  return xs[0].tape().push(std::move(out), xs, [=](Tape<T>& tp, std::size_t self) {
    const auto dy = tp.grad(self);
    std::size_t offset = 0;
    for (std::size_t k = 0; k < idx.size(); ++k) {
      detail::write_grad(tp, idx[k], outer * lens[k] * inner, [&](T* dx) {
        for (std::size_t o = 0; o < outer; ++o)
          std::copy(dy.data() + (o * total + offset) * inner,
                    dy.data() + (o * total + offset + lens[k]) * inner, dx + o * lens[k] * inner);
      });
      offset += lens[k];
    }
  });
}
template <class T>
Var<T> concat(std::initializer_list<Var<T>> xs, std::ptrdiff_t axis) {
  return concat(std::span<const Var<T>>(xs.begin(), xs.size()), axis);
}

// ---- linear algebra -------------------------------------------------------------------------------------

/// op(a) op(b) for rank-2 a, b.
template <class T>
Var<T> matmul(const Var<T>& a, const Var<T>& b, Trans ta = Trans::No, Trans tb = Trans::No) {
  Tape<T>& tape = a.tape();
  tape.check_var(b);
  const auto av = a.value(), bv = b.value();
  check(av.rank() == 2 && bv.rank() == 2, "matmul: needs rank-2 operands, got ", av.shape(), " and ",
        bv.shape());
  const std::size_t m = ta == Trans::No ? av.dim(0) : av.dim(1);
  const std::size_t n = tb == Trans::No ? bv.dim(1) : bv.dim(0);
  Tensor<T> out({m, n}, uninitialized);
  spikelm::matmul(av, bv, out, ta, tb);
  const std::size_t ai = a.index(), bi = b.index();
  return tape.push(std::move(out), {a, b}, [ai, bi, ta, tb](Tape<T>& tp, std::size_t self) {
    const auto dc = tp.grad(self);
    const auto av2 = tp.value(ai), bv2 = tp.value(bi);
    if (tp.requires_grad(ai)) {
      const GradSlot<T> s = tp.slot(ai);
      TensorView<T> da(s.data, av2.shape());
      const T beta = s.fresh ? T(0) : T(1);
      if (ta == Trans::No)
        spikelm::matmul(dc, bv2, da, Trans::No, tb == Trans::No ? Trans::Yes : Trans::No, T(1), beta);
      else
        spikelm::matmul(bv2, dc, da, tb, Trans::Yes, T(1), beta);
    }
    if (tp.requires_grad(bi)) {
      const GradSlot<T> s = tp.slot(bi);
      TensorView<T> db(s.data, bv2.shape());
      const T beta = s.fresh ? T(0) : T(1);
      if (tb == Trans::No)
        spikelm::matmul(av2, dc, db, ta == Trans::No ? Trans::Yes : Trans::No, Trans::No, T(1), beta);
      else
        spikelm::matmul(dc, av2, db, Trans::Yes, ta, T(1), beta);
    }
  });
}

/// y = x W^T (+ b) over the last axis of x (PyTorch's nn.Linear layout: W is [out, in], b is [out]).
template <class T>
Var<T> linear(const Var<T>& x, const Var<T>& w, const std::type_identity_t<Var<T>>* b = nullptr) {
  Tape<T>& tape = x.tape();
  tape.check_var(w);
  const auto xv = x.value(), wv = w.value();
  check(xv.rank() >= 1 && wv.rank() == 2 && xv.dim(-1) == wv.dim(1), "linear: input ", xv.shape(),
        " does not match weight ", wv.shape(), " ([out, in])");
  const std::size_t in = wv.dim(1), out_f = wv.dim(0), rows = in == 0 ? 0 : xv.size() / in;
  std::vector<std::size_t> dims(xv.shape().begin(), xv.shape().end());
  dims.back() = out_f;
  Tensor<T> y(Shape(dims.begin(), dims.end()), uninitialized);
  const auto x2 = xv.reshape({rows, in});
  auto y2 = y.reshape({rows, out_f});
  spikelm::matmul(x2, wv, y2, Trans::No, Trans::Yes);
  std::size_t bi = static_cast<std::size_t>(-1);
  if (b) {
    tape.check_var(*b);
    const auto bv = b->value();
    check(bv.rank() == 1 && bv.dim(0) == out_f, "linear: bias shape ", bv.shape(), " is not [", out_f, "]");
    for (std::size_t r = 0; r < rows; ++r)
      simd::add(y.data() + r * out_f, bv.data(), y.data() + r * out_f, out_f);
    bi = b->index();
  }
  const std::size_t xi = x.index(), wi = w.index();
  auto fn = [=](Tape<T>& tp, std::size_t self) {
    const auto dy = tp.grad(self).reshape({rows, out_f});
    if (tp.requires_grad(xi)) {
      const GradSlot<T> s = tp.slot(xi);
      spikelm::matmul(dy, tp.value(wi), TensorView<T>(s.data, {rows, in}), Trans::No, Trans::No, T(1),
                      s.fresh ? T(0) : T(1));
    }
    if (tp.requires_grad(wi)) {
      const GradSlot<T> s = tp.slot(wi);
      spikelm::matmul(dy, tp.value(xi).reshape({rows, in}), TensorView<T>(s.data, {out_f, in}), Trans::Yes,
                      Trans::No, T(1), s.fresh ? T(0) : T(1));
    }
    if (bi != static_cast<std::size_t>(-1) && tp.requires_grad(bi)) {
      T* db = detail::zeroed_slot(tp, bi, out_f);
      for (std::size_t r = 0; r < rows; ++r) simd::add(db, dy.data() + r * out_f, db, out_f);
    }
  };
  if (b) return tape.push(std::move(y), {x, w, *b}, fn);
  return tape.push(std::move(y), {x, w}, fn);
}

/// y = x W^T + b.
template <class T>
Var<T> linear(const Var<T>& x, const Var<T>& w, const Var<T>& b) {
  return linear(x, w, &b);
}

/// Event-driven linear layer fed by spikes: y = s W with s holding 0/1 values [..., n_in] and W stored
/// input-major [n_in, n_out]. The forward sums weight rows of active inputs; dW touches only those rows;
/// ds = dy W^T is dense (a surrogate backward needs it for every input).
template <class T>
Var<T> spike_linear(const Var<T>& s, const Var<T>& w) {
  Tape<T>& tape = s.tape();
  tape.check_var(w);
  const auto sv = s.value(), wv = w.value();
  check(sv.rank() >= 1 && wv.rank() == 2 && sv.dim(-1) == wv.dim(0), "spike_linear: input ", sv.shape(),
        " does not match weight ", wv.shape(), " ([n_in, n_out], input-major)");
  const std::size_t n_in = wv.dim(0), n_out = wv.dim(1), rows = n_in == 0 ? 0 : sv.size() / n_in;
  auto packed = std::make_shared<SpikeTensor>(SpikeTensor::from_dense(sv.reshape({rows, n_in})));
  std::vector<std::size_t> dims(sv.shape().begin(), sv.shape().end());
  dims.back() = n_out;
  Tensor<T> y(Shape(dims.begin(), dims.end()), uninitialized);
  spike_matmul(*packed, wv, y.reshape({rows, n_out}));
  const std::size_t si = s.index(), wi = w.index();
  return tape.push(std::move(y), {s, w}, [=](Tape<T>& tp, std::size_t self) {
    const auto dy = tp.grad(self).reshape({rows, n_out});
    if (tp.requires_grad(wi))
      spike_matmul_weight_grad(*packed, dy,
                               TensorView<T>(detail::zeroed_slot(tp, wi, n_in * n_out), {n_in, n_out}));
    if (tp.requires_grad(si)) {
      const GradSlot<T> g = tp.slot(si);
      spike_matmul_input_grad(dy, tp.value(wi), TensorView<T>(g.data, {rows, n_in}), !g.fresh);
    }
  });
}

/// Rows of a table: out[i, :] = table[ids[i], :]. The gradient adds only into the rows that were used.
template <class T>
Var<T> embedding(const Var<T>& table, std::span<const std::int64_t> ids) {
  const auto tv = table.value();
  check(tv.rank() == 2, "embedding: table must be [vocabulary, dim], got ", tv.shape());
  const std::size_t vocab = tv.dim(0), d = tv.dim(1);
  for (std::size_t i = 0; i < ids.size(); ++i)
    check(ids[i] >= 0 && static_cast<std::size_t>(ids[i]) < vocab, "embedding: id ", ids[i], " at position ",
          i, " is outside the vocabulary [0, ", vocab, ")");
  Tensor<T> out({ids.size(), d}, uninitialized);
  for (std::size_t i = 0; i < ids.size(); ++i)
    std::copy(tv.data() + static_cast<std::size_t>(ids[i]) * d,
              tv.data() + (static_cast<std::size_t>(ids[i]) + 1) * d, out.data() + i * d);
  const std::size_t ti = table.index();
  std::vector<std::int64_t> idv(ids.begin(), ids.end());
  return table.tape().push(std::move(out), {table}, [ti, idv, vocab, d](Tape<T>& tp, std::size_t self) {
    if (!tp.requires_grad(ti)) return;
    const auto dy = tp.grad(self);
    T* dt = detail::zeroed_slot(tp, ti, vocab * d);
    for (std::size_t i = 0; i < idv.size(); ++i)
      simd::add(dt + static_cast<std::size_t>(idv[i]) * d, dy.data() + i * d,
                dt + static_cast<std::size_t>(idv[i]) * d, d);
  });
}

// ---- multi-head attention
// -----------------------------------------------------------------------------------

namespace detail {
template <class T>
using StridedMap = Eigen::Map<RowMajorMatrix<T>, 0, Eigen::OuterStride<>>;
template <class T>
using ConstStridedMap = Eigen::Map<const RowMajorMatrix<T>, 0, Eigen::OuterStride<>>;
/// Head h of a [L, D] row block (columns [h dh, (h + 1) dh), row stride D).
template <class T>
ConstStridedMap<T> head_of(const T* base, std::size_t rows, std::size_t dh, std::size_t ld) {
  return ConstStridedMap<T>(base, static_cast<Eigen::Index>(rows), static_cast<Eigen::Index>(dh),
                            Eigen::OuterStride<>(static_cast<Eigen::Index>(ld)));
}
template <class T>
StridedMap<T> head_of(T* base, std::size_t rows, std::size_t dh, std::size_t ld) {
  return StridedMap<T>(base, static_cast<Eigen::Index>(rows), static_cast<Eigen::Index>(dh),
                       Eigen::OuterStride<>(static_cast<Eigen::Index>(ld)));
}
inline void check_heads(const Shape& s, std::size_t heads, const char* fn) {
  check(s.rank() == 3, fn, ": needs [batch, length, heads x head_dim], got ", s);
  check(heads > 0 && s[2] % heads == 0, fn, ": width ", s[2], " does not split into ", heads, " heads");
}
} // namespace detail

/// Attention scores per head: q [B, Lq, D], k [B, Lk, D] with D = heads x d_head (head h owns columns
/// [h d_head, (h + 1) d_head)); returns S [B, heads, Lq, Lk] with S[b, h] = scale q_h k_h^T + key_bias[b, :].
/// key_bias (empty, or B x Lk values, e.g. BERT's (1 - mask) x -10000) takes no gradient.
template <class T>
Var<T> attention_scores(const Var<T>& q, const Var<T>& k, std::size_t heads, T scale,
                        std::span<const T> key_bias = {}) {
  Tape<T>& tape = q.tape();
  tape.check_var(k);
  const auto qv = q.value(), kv = k.value();
  detail::check_heads(qv.shape(), heads, "attention_scores");
  detail::check_heads(kv.shape(), heads, "attention_scores");
  check(qv.dim(0) == kv.dim(0) && qv.dim(2) == kv.dim(2), "attention_scores: q ", qv.shape(), " and k ",
        kv.shape(), " do not match");
  const std::size_t B = qv.dim(0), Lq = qv.dim(1), Lk = kv.dim(1), D = qv.dim(2), dh = D / heads;
  check(key_bias.empty() || key_bias.size() == B * Lk, "attention_scores: key_bias has ", key_bias.size(),
        " values, expected ", B * Lk, " (batch x key length)");
  Tensor<T> s({B, heads, Lq, Lk}, uninitialized);
  parallel_for(B * heads, Lq * Lk * dh, [&](std::size_t bh) {
    const std::size_t b = bh / heads, h = bh % heads;
    MatrixMap<T> S(s.data() + bh * Lq * Lk, static_cast<Eigen::Index>(Lq), static_cast<Eigen::Index>(Lk));
    S.noalias() = scale * detail::head_of(qv.data() + b * Lq * D + h * dh, Lq, dh, D) *
                  detail::head_of(kv.data() + b * Lk * D + h * dh, Lk, dh, D).transpose();
    if (!key_bias.empty())
      for (std::size_t i = 0; i < Lq; ++i)
        simd::add(s.data() + (bh * Lq + i) * Lk, key_bias.data() + b * Lk, s.data() + (bh * Lq + i) * Lk, Lk);
  });
  const std::size_t qi = q.index(), ki = k.index();
  return tape.push(std::move(s), {q, k}, [=](Tape<T>& tp, std::size_t self) {
    const auto ds = tp.grad(self);
    const auto qval = tp.value(qi), kval = tp.value(ki);
    T* dq = tp.requires_grad(qi) ? detail::zeroed_slot(tp, qi, B * Lq * D) : nullptr;
    T* dk = tp.requires_grad(ki) ? detail::zeroed_slot(tp, ki, B * Lk * D) : nullptr;
    // heads of one sequence write disjoint columns, so (b, h) tasks never share memory
    parallel_for(B * heads, Lq * Lk * dh * 2, [&](std::size_t bh) {
      const std::size_t b = bh / heads, h = bh % heads;
      MatrixMap<const T> dS(ds.data() + bh * Lq * Lk, static_cast<Eigen::Index>(Lq),
                            static_cast<Eigen::Index>(Lk));
      if (dq)
        detail::head_of(dq + b * Lq * D + h * dh, Lq, dh, D).noalias() +=
            scale * dS * detail::head_of(kval.data() + b * Lk * D + h * dh, Lk, dh, D);
      if (dk)
        detail::head_of(dk + b * Lk * D + h * dh, Lk, dh, D).noalias() +=
            scale * dS.transpose() * detail::head_of(qval.data() + b * Lq * D + h * dh, Lq, dh, D);
    });
  });
}

/// Attention output: p [B, heads, Lq, Lk] (weights, e.g. softmax of attention_scores), v [B, Lk, D];
/// returns [B, Lq, D] with out[b, :, head h] = p[b, h] v_h (the heads concatenated in order).
template <class T>
Var<T> attention_context(const Var<T>& p, const Var<T>& v, std::size_t heads) {
  Tape<T>& tape = p.tape();
  tape.check_var(v);
  const auto pv = p.value(), vv = v.value();
  detail::check_heads(vv.shape(), heads, "attention_context");
  check(pv.rank() == 4 && pv.dim(0) == vv.dim(0) && pv.dim(1) == heads && pv.dim(3) == vv.dim(1),
        "attention_context: weights ", pv.shape(), " do not match values ", vv.shape(), " and ", heads,
        " heads ([B, heads, Lq, Lk] and [B, Lk, D])");
  const std::size_t B = vv.dim(0), Lk = vv.dim(1), D = vv.dim(2), Lq = pv.dim(2), dh = D / heads;
  Tensor<T> out({B, Lq, D}, uninitialized);
  parallel_for(B * heads, Lq * Lk * dh, [&](std::size_t bh) {
    const std::size_t b = bh / heads, h = bh % heads;
    MatrixMap<const T> P(pv.data() + bh * Lq * Lk, static_cast<Eigen::Index>(Lq),
                         static_cast<Eigen::Index>(Lk));
    detail::head_of(out.data() + b * Lq * D + h * dh, Lq, dh, D).noalias() =
        P * detail::head_of(vv.data() + b * Lk * D + h * dh, Lk, dh, D);
  });
  const std::size_t pi = p.index(), vi = v.index();
  return tape.push(std::move(out), {p, v}, [=](Tape<T>& tp, std::size_t self) {
    const auto dout = tp.grad(self);
    const auto pval = tp.value(pi), vval = tp.value(vi);
    T* dp = tp.requires_grad(pi) ? detail::zeroed_slot(tp, pi, B * heads * Lq * Lk) : nullptr;
    T* dv = tp.requires_grad(vi) ? detail::zeroed_slot(tp, vi, B * Lk * D) : nullptr;
    parallel_for(B * heads, Lq * Lk * dh * 2, [&](std::size_t bh) {
      const std::size_t b = bh / heads, h = bh % heads;
      const auto dO = detail::head_of(dout.data() + b * Lq * D + h * dh, Lq, dh, D);
      if (dp)
        MatrixMap<T>(dp + bh * Lq * Lk, static_cast<Eigen::Index>(Lq), static_cast<Eigen::Index>(Lk))
            .noalias() += dO * detail::head_of(vval.data() + b * Lk * D + h * dh, Lk, dh, D).transpose();
      if (dv)
        detail::head_of(dv + b * Lk * D + h * dh, Lk, dh, D).noalias() +=
            MatrixMap<const T>(pval.data() + bh * Lq * Lk, static_cast<Eigen::Index>(Lq),
                               static_cast<Eigen::Index>(Lk))
                .transpose() *
            dO;
    });
  });
}

// ---- normalisation and activations ------------------------------------------------------------------------

/// LayerNorm over the last axis (biased variance, as torch.nn.LayerNorm); gamma and beta are [C].
template <class T>
Var<T> layer_norm(const Var<T>& x, const Var<T>& gamma, const Var<T>& beta, T eps = T(1e-5)) {
  Tape<T>& tape = x.tape();
  tape.check_var(gamma);
  tape.check_var(beta);
  const auto xv = x.value();
  check(xv.rank() >= 1, "layer_norm: needs rank >= 1");
  const std::size_t cols = xv.dim(-1), rows = cols == 0 ? 0 : xv.size() / cols;
  check(gamma.value().shape() == Shape{cols} && beta.value().shape() == Shape{cols}, "layer_norm: gamma ",
        gamma.value().shape(), " and beta ", beta.value().shape(), " must be [", cols, "] for input ",
        xv.shape());
  Tensor<T> y(xv.shape(), uninitialized);
  auto stats = std::make_shared<Tensor<T>>(Shape{2, rows}, uninitialized); // mean, rstd
  simd::layernorm_rows(xv.data(), gamma.value().data(), beta.value().data(), y.data(), stats->data(),
                       stats->data() + rows, rows, cols, eps);
  const std::size_t xi = x.index(), gi = gamma.index(), bi = beta.index();
  return tape.push(std::move(y), {x, gamma, beta}, [=](Tape<T>& tp, std::size_t self) {
    const auto dy = tp.grad(self);
    T* dg = tp.requires_grad(gi) ? detail::zeroed_slot(tp, gi, cols) : nullptr;
    T* db = tp.requires_grad(bi) ? detail::zeroed_slot(tp, bi, cols) : nullptr;
    std::vector<T> dx(tp.requires_grad(xi) ? rows * cols : 0);
    if (!tp.requires_grad(xi) && !dg && !db) return;
    // the kernel always writes dx; give it scratch when x needs no gradient
    std::vector<T> scratch(tp.requires_grad(xi) ? 0 : rows * cols);
    T* dxp = tp.requires_grad(xi) ? dx.data() : scratch.data();
    simd::layernorm_backward_rows(dy.data(), tp.value(xi).data(), tp.value(gi).data(), stats->data(),
                                  stats->data() + rows, dxp, dg, db, rows, cols);
    if (tp.requires_grad(xi)) tp.accumulate(xi, TensorView<const T>(dx.data(), tp.value(xi).shape()));
  });
}

/// Softmax over the last axis.
template <class T>
Var<T> softmax(const Var<T>& x) {
  const std::size_t cols = x.value().dim(-1);
  return detail::unary(
      x,
      [cols](const T* in, T* out, std::size_t n) { simd::softmax_rows(in, out, cols ? n / cols : 0, cols); },
      [cols](const T*, const T* y, const T* dy, T* dx, std::size_t n) {
        simd::softmax_backward_rows(y, dy, dx, cols ? n / cols : 0, cols);
      });
}
/// Log-softmax over the last axis.
template <class T>
Var<T> log_softmax(const Var<T>& x) {
  const std::size_t cols = x.value().dim(-1);
  return detail::unary(
      x,
      [cols](const T* in, T* out, std::size_t n) {
        simd::log_softmax_rows(in, out, cols ? n / cols : 0, cols);
      },
      [cols](const T*, const T* y, const T* dy, T* dx, std::size_t n) {
        simd::log_softmax_backward_rows(y, dy, dx, cols ? n / cols : 0, cols);
      });
}

#define SPIKELM_UNARY_OP(NAME, FWD, BWD_FROM)                                                                \
  template <class T>                                                                                         \
  Var<T> NAME(const Var<T>& x) {                                                                             \
    return detail::unary(                                                                                    \
        x, [](const T* in, T* out, std::size_t n) { simd::FWD(in, out, n); },                                \
        [](const T* xin, const T* y, const T* dy, T* dx, std::size_t n) {                                    \
          (void)xin;                                                                                         \
          (void)y;                                                                                           \
          simd::FWD##_backward(BWD_FROM, dy, dx, n);                                                         \
        });                                                                                                  \
  }
/// GELU, erf form (BERT).
SPIKELM_UNARY_OP(gelu, gelu, xin)
/// GELU, tanh approximation.
SPIKELM_UNARY_OP(gelu_tanh, gelu_tanh, xin)
/// max(x, 0)
SPIKELM_UNARY_OP(relu, relu, xin)
/// max(x, 0)^2 (RWKV's channel mix)
SPIKELM_UNARY_OP(relu_sq, relu_sq, xin)
/// 1 / (1 + exp(-x))
SPIKELM_UNARY_OP(sigmoid, sigmoid, y)
/// tanh(x)
SPIKELM_UNARY_OP(tanh, tanh, y)
/// exp(x)
SPIKELM_UNARY_OP(exp, exp, y)
#undef SPIKELM_UNARY_OP

/// min(max(x, lo), hi); the gradient passes where lo <= x <= hi (as torch.clamp).
template <class T>
Var<T> clamp(const Var<T>& x, T lo, T hi) {
  check(lo <= hi, "clamp: lo (", lo, ") exceeds hi (", hi, ")");
  return detail::unary(
      x,
      [lo, hi](const T* in, T* out, std::size_t n) {
        for (std::size_t i = 0; i < n; ++i) out[i] = std::min(hi, std::max(lo, in[i]));
      },
      [lo, hi](const T* xin, const T*, const T* dy, T* dx, std::size_t n) {
        for (std::size_t i = 0; i < n; ++i) dx[i] = (xin[i] >= lo && xin[i] <= hi) ? dy[i] : T(0);
      });
}

/// Inverted dropout: zeroes each element with probability p and scales the rest by 1 / (1 - p). The mask
/// comes from `rng` (deterministic for a given seed and counter). With training = false or p = 0, returns x.
template <class T>
Var<T> dropout(const Var<T>& x, double p, Rng& rng, bool training = true) {
  check(p >= 0.0 && p < 1.0, "dropout: p must be in [0, 1), got ", p);
  if (!training || p == 0.0) return x;
  const auto xv = x.value();
  auto mask = std::make_shared<std::vector<T>>(xv.size());
  rng.fill_bernoulli(std::span<T>(*mask), 1.0 - p);
  const T keep = static_cast<T>(1.0 / (1.0 - p));
  for (T& m : *mask) m *= keep;
  Tensor<T> y(xv.shape(), uninitialized);
  simd::mul(xv.data(), mask->data(), y.data(), y.size());
  const std::size_t xi = x.index();
  return x.tape().push(std::move(y), {x}, [xi, mask](Tape<T>& tp, std::size_t self) {
    const auto dy = tp.grad(self);
    detail::write_grad(tp, xi, dy.size(), [&](T* dx) { simd::mul(dy.data(), mask->data(), dx, dy.size()); });
  });
}

/// Token shift along time: x is [B, T, C] (or [T, C]); out[:, t] = x[:, t - 1], out[:, 0] = 0.
template <class T>
Var<T> token_shift(const Var<T>& x) {
  const auto xv = x.value();
  check(xv.rank() == 2 || xv.rank() == 3, "token_shift: needs [B, T, C] or [T, C], got ", xv.shape());
  const std::size_t c = xv.dim(-1), steps = xv.dim(-2), batch = xv.rank() == 3 ? xv.dim(0) : 1;
  Tensor<T> y(xv.shape());
  for (std::size_t b = 0; b < batch; ++b)
    if (steps > 1)
      std::copy(xv.data() + b * steps * c, xv.data() + (b * steps + steps - 1) * c,
                y.data() + (b * steps + 1) * c);
  const std::size_t xi = x.index();
  return x.tape().push(std::move(y), {x}, [=](Tape<T>& tp, std::size_t self) {
    const auto dy = tp.grad(self);
    detail::write_grad(tp, xi, batch * steps * c, [&](T* dx) {
      for (std::size_t b = 0; b < batch; ++b) {
        if (steps > 1)
          std::copy(dy.data() + (b * steps + 1) * c, dy.data() + (b * steps + steps) * c, dx + b * steps * c);
        std::fill(dx + (b * steps + steps - 1) * c, dx + (b * steps + steps) * c, T(0));
      }
    });
  });
}

/// The spike nonlinearity: S = Fire::test(x, theta) ? 1 : 0, with dS/dx = Surrogate::grad(x - theta).
template <class Surrogate, class Fire = fire::GreaterEqual, class T>
Var<T> spike(const Var<T>& x, T theta = T(1)) {
  return detail::unary(
      x,
      [theta](const T* in, T* out, std::size_t n) {
        for (std::size_t i = 0; i < n; ++i) out[i] = Fire::test(in[i], theta) ? T(1) : T(0);
      },
      [theta](const T* xin, const T*, const T* dy, T* dx, std::size_t n) {
        for (std::size_t i = 0; i < n; ++i) dx[i] = dy[i] * Surrogate::grad(xin[i] - theta);
      });
}

/// A multi-step neuron population on the tape: x is [T, ...] (time first); returns spikes. Backward runs
/// backpropagation through time with the neuron's surrogate; its parameter gradients are added to
/// `param_grads` when given (which must outlive the backward pass).
template <class Neuron, class T = typename Neuron::value_type>
Var<T> neuron(const Neuron& model, const Var<T>& x, typename Neuron::ParamGrads* param_grads = nullptr) {
  auto trace = std::make_shared<NeuronTrace<T>>();
  Tensor<T> s = model.forward(x.value(), grad_enabled() ? trace.get() : nullptr);
  const std::size_t xi = x.index();
  return x.tape().push(std::move(s), {x}, [model, trace, xi, param_grads](Tape<T>& tp, std::size_t self) {
    const Tensor<T> gx = model.backward(tp.grad(self), *trace, param_grads);
    tp.accumulate(xi, gx);
  });
}

// ---- losses -----------------------------------------------------------------------------------------------

/// Mean cross-entropy of logits [N, C] (or [..., C]) against class ids (one per row); rows whose target is
/// `ignore_index` are left out of the mean (as torch's cross_entropy). All rows ignored gives 0.
template <class T>
Var<T> cross_entropy(const Var<T>& logits, std::span<const std::int64_t> targets,
                     std::int64_t ignore_index = -100) {
  const auto lv = logits.value();
  check(lv.rank() >= 1, "cross_entropy: logits need a class axis");
  const std::size_t c = lv.dim(-1), rows = c == 0 ? 0 : lv.size() / c;
  check(targets.size() == rows, "cross_entropy: ", targets.size(), " targets for ", rows, " rows of logits ",
        lv.shape());
  std::size_t counted = 0;
  for (std::size_t r = 0; r < rows; ++r) {
    if (targets[r] == ignore_index) continue;
    check(targets[r] >= 0 && static_cast<std::size_t>(targets[r]) < c, "cross_entropy: target ", targets[r],
          " at row ", r, " is outside [0, ", c, ")");
    ++counted;
  }
  auto logp = std::make_shared<Tensor<T>>(lv.shape(), uninitialized);
  simd::log_softmax_rows(lv.data(), logp->data(), rows, c);
  double loss = 0;
  for (std::size_t r = 0; r < rows; ++r)
    if (targets[r] != ignore_index)
      loss -= static_cast<double>(logp->data()[r * c + static_cast<std::size_t>(targets[r])]);
  Tensor<T> out(Shape{});
  out.data()[0] = counted ? static_cast<T>(loss / static_cast<double>(counted)) : T(0);
  const std::size_t li = logits.index();
  std::vector<std::int64_t> tv(targets.begin(), targets.end());
  return logits.tape().push(std::move(out), {logits}, [=](Tape<T>& tp, std::size_t self) {
    const T g = tp.grad(self).data()[0];
    const T w = counted ? g / static_cast<T>(counted) : T(0);
    detail::write_grad(tp, li, rows * c, [&](T* dx) {
      for (std::size_t r = 0; r < rows; ++r) {
        T* d = dx + r * c;
        if (tv[r] == ignore_index) {
          std::fill(d, d + c, T(0));
          continue;
        }
        for (std::size_t k = 0; k < c; ++k) d[k] = std::exp(logp->data()[r * c + k]) * w;
        d[static_cast<std::size_t>(tv[r])] -= w;
      }
    });
  });
}

/// Mean squared error mean((a - b)^2).
template <class T>
Var<T> mse_loss(const Var<T>& a, const Var<T>& b) {
  check(a.value().shape() == b.value().shape(), "mse_loss: shapes ", a.value().shape(), " and ",
        b.value().shape(), " differ");
  const Var<T> d = sub(a, b);
  return mean(mul(d, d));
}

/// TinyBERT's soft cross-entropy for distillation: mean over all elements of
/// -softmax(teacher / tau) * log_softmax(student / tau) (the mean runs over rows and classes, as TinyBERT's
/// soft_cross_entropy does).
template <class T>
Var<T> soft_cross_entropy(const Var<T>& student, const Var<T>& teacher, T tau = T(1)) {
  check(student.value().shape() == teacher.value().shape(), "soft_cross_entropy: student ",
        student.value().shape(), " and teacher ", teacher.value().shape(), " differ");
  check(tau > T(0), "soft_cross_entropy: temperature must be positive, got ", tau);
  const Var<T> p = softmax(scale(teacher, T(1) / tau));
  const Var<T> logq = log_softmax(scale(student, T(1) / tau));
  return neg(mean(mul(p, logq)));
}

/// KL(softmax(teacher) || softmax(student)) averaged over rows (torch's kl_div(log_softmax(student),
/// softmax(teacher), reduction='batchmean')).
template <class T>
Var<T> kl_divergence(const Var<T>& student_logits, const Var<T>& teacher_logits) {
  const auto sv = student_logits.value();
  check(sv.shape() == teacher_logits.value().shape(), "kl_divergence: student ", sv.shape(), " and teacher ",
        teacher_logits.value().shape(), " differ");
  const std::size_t rows = sv.dim(-1) == 0 ? 0 : sv.size() / sv.dim(-1);
  check(rows > 0, "kl_divergence: empty input");
  const Var<T> logp = log_softmax(teacher_logits);
  const Var<T> logq = log_softmax(student_logits);
  const Var<T> p = exp(logp);
  return scale(sum(mul(p, sub(logp, logq))), T(1) / static_cast<T>(rows));
}

SPIKELM_NAMESPACE_END

#endif // SPIKELM_AUTOGRAD_OPS_HPP
