// spikelm: Eigen interop. Tensors are viewed as row-major Eigen matrices without copying, and matrix
// products run through Eigen's GEMM/GEMV.
#ifndef SPIKELM_CORE_LINALG_HPP
#define SPIKELM_CORE_LINALG_HPP

#include "../config.hpp"
#include "error.hpp"
#include "tensor.hpp"

#include <Eigen/Core>

#include <cstddef>
#include <type_traits>
#include <utility>

SPIKELM_NAMESPACE_BEGIN

template <class T>
using RowMajorMatrix = Eigen::Matrix<std::remove_const_t<T>, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

/// Eigen::Map of a row-major matrix over T (const T gives a read-only map).
template <class T>
using MatrixMap =
    Eigen::Map<std::conditional_t<std::is_const_v<T>, const RowMajorMatrix<T>, RowMajorMatrix<T>>>;

/// Views a tensor of rank >= 1 as a matrix [numel / last, last] (rank 1 gives one row).
template <class T>
[[nodiscard]] MatrixMap<T> as_matrix(TensorView<T> t) {
  check(t.rank() >= 1, "as_matrix: needs rank >= 1, got shape ", t.shape());
  const std::size_t cols = t.dim(-1);
  const std::size_t rows = cols == 0 ? 0 : t.size() / cols;
  return MatrixMap<T>(t.data(), static_cast<Eigen::Index>(rows), static_cast<Eigen::Index>(cols));
}
template <class T>
[[nodiscard]] MatrixMap<T> as_matrix(Tensor<T>& t) {
  return as_matrix(t.view());
}
template <class T>
[[nodiscard]] MatrixMap<const T> as_matrix(const Tensor<T>& t) {
  return as_matrix(t.cview());
}

/// Whether an operand of matmul is used as stored or transposed.
enum class Trans { No, Yes };

namespace detail {
template <class T>
std::size_t mm_rows(TensorView<const T> m, Trans t) {
  return t == Trans::No ? m.dim(0) : m.dim(1);
}
template <class T>
std::size_t mm_cols(TensorView<const T> m, Trans t) {
  return t == Trans::No ? m.dim(1) : m.dim(0);
}
} // namespace detail

namespace detail {
template <class T>
void matmul_views(TensorView<const T> a, TensorView<const T> b, TensorView<T> c, Trans ta = Trans::No,
                  Trans tb = Trans::No, T alpha = T(1), T beta = T(0)) {
  check(a.rank() == 2 && b.rank() == 2 && c.rank() == 2, "matmul: needs rank-2 operands, got A ", a.shape(),
        ", B ", b.shape(), ", C ", c.shape());
  const std::size_t m = detail::mm_rows(a, ta), k = detail::mm_cols(a, ta);
  const std::size_t kb = detail::mm_rows(b, tb), n = detail::mm_cols(b, tb);
  check(k == kb && c.dim(0) == m && c.dim(1) == n, "matmul: shapes do not agree: op(A) [", m, ", ", k,
        "] x op(B) [", kb, ", ", n, "] -> C ", c.shape(), " (A ", a.shape(), ", B ", b.shape(), ")");
  if (m == 0 || n == 0) return;
  auto C = as_matrix(c);
  if (k == 0) {
    if (beta == T(0))
      C.setZero();
    else
      C *= beta;
    return;
  }
  auto A = as_matrix(a);
  auto B = as_matrix(b);
  if (beta == T(0)) {
    if (ta == Trans::No && tb == Trans::No)
      C.noalias() = alpha * A * B;
    else if (ta == Trans::No)
      C.noalias() = alpha * A * B.transpose();
    else if (tb == Trans::No)
      C.noalias() = alpha * A.transpose() * B;
    else
      C.noalias() = alpha * A.transpose() * B.transpose();
  } else {
    if (beta != T(1)) C *= beta;
    if (ta == Trans::No && tb == Trans::No)
      C.noalias() += alpha * A * B;
    else if (ta == Trans::No)
      C.noalias() += alpha * A * B.transpose();
    else if (tb == Trans::No)
      C.noalias() += alpha * A.transpose() * B;
    else
      C.noalias() += alpha * A.transpose() * B.transpose();
  }
}

} // namespace detail

/// C = alpha * op(A) * op(B) + beta * C for rank-2 A, B, C (beta = 0 ignores C's old contents, NaN included).
/// Operands are Tensors or TensorViews of one element type.
template <TensorLike A, TensorLike B, TensorLike C, class T = tensor_value_t<C>>
void matmul(const A& a, const B& b, C&& c, Trans ta = Trans::No, Trans tb = Trans::No, T alpha = T(1),
            T beta = T(0)) {
  static_assert(std::is_same_v<tensor_value_t<A>, T> && std::is_same_v<tensor_value_t<B>, T>,
                "matmul: operands must have the same element type");
  detail::matmul_views<T>(cview(a), cview(b), mview(std::forward<C>(c)), ta, tb, alpha, beta);
}

/// Batched matmul over the leading axis of rank-3 tensors: C[i] = alpha op(A[i]) op(B[i]) + beta C[i].
template <TensorLike A, TensorLike B, TensorLike C, class T = tensor_value_t<C>>
void batched_matmul(const A& at, const B& bt, C&& ct, Trans ta = Trans::No, Trans tb = Trans::No,
                    T alpha = T(1), T beta = T(0)) {
  const TensorView<const T> a = cview(at), b = cview(bt);
  const TensorView<T> c = mview(std::forward<C>(ct));
  check(a.rank() == 3 && b.rank() == 3 && c.rank() == 3, "batched_matmul: needs rank-3 operands, got A ",
        a.shape(), ", B ", b.shape(), ", C ", c.shape());
  check(a.dim(0) == b.dim(0) && a.dim(0) == c.dim(0), "batched_matmul: batch sizes differ: A ", a.shape(),
        ", B ", b.shape(), ", C ", c.shape());
  for (std::size_t i = 0; i < a.dim(0); ++i) detail::matmul_views<T>(a[i], b[i], c[i], ta, tb, alpha, beta);
}

SPIKELM_NAMESPACE_END

#endif // SPIKELM_CORE_LINALG_HPP
