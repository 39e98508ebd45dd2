// spikelm: Tensor<T> (owning, aligned, row-major, rank <= 4) and TensorView<T> (non-owning).
#ifndef SPIKELM_CORE_TENSOR_HPP
#define SPIKELM_CORE_TENSOR_HPP

#include "../config.hpp"
#include "error.hpp"
#include "shape.hpp"

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <initializer_list>
#include <new>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

SPIKELM_NAMESPACE_BEGIN

/// Tag for constructors that leave the elements uninitialised.
struct uninitialized_t {
  explicit uninitialized_t() = default;
};
inline constexpr uninitialized_t uninitialized{};

/// A non-owning, contiguous, row-major view of `T` (which may be const). Copies are shallow.
/// Slicing along axis 0 and reshaping give views of the same memory without copying.
template <class T>
class TensorView {
 public:
  using element_type = T;
  using value_type = std::remove_const_t<T>;

  /// An empty view of shape [0].
  TensorView() = default;
  TensorView(T* data, const Shape& shape) : data_(data), shape_(shape) {
    check(data != nullptr || shape.numel() == 0, "TensorView: null data for shape ", shape);
  }
  /// A view of mutable elements converts to a view of const elements.
  template <class U>
  requires(std::is_const_v<T>&& std::is_same_v<const U, T>) TensorView(TensorView<U> other)
  noexcept : data_(other.data()), shape_(other.shape()) {}

  [[nodiscard]] T* data() const noexcept { return data_; }
  [[nodiscard]] const Shape& shape() const noexcept { return shape_; }
  [[nodiscard]] std::size_t rank() const noexcept { return shape_.rank(); }
  [[nodiscard]] std::size_t size() const noexcept { return shape_.numel(); }
  [[nodiscard]] bool empty() const noexcept { return size() == 0; }
  [[nodiscard]] std::size_t dim(std::ptrdiff_t axis) const { return shape_[axis]; }
  [[nodiscard]] std::span<T> span() const noexcept { return {data_, size()}; }
  [[nodiscard]] T* begin() const noexcept { return data_; }
  [[nodiscard]] T* end() const noexcept { return data_ + size(); }

  /// Unchecked element access; one index per axis.
  template <class... I>
  [[nodiscard]] T& operator()(I... idx) const noexcept {
    return data_[offset_unchecked({static_cast<std::size_t>(idx)...})];
  }
  /// Checked element access; throws spikelm::Error on a wrong number of indices or an index out of range.
  template <class... I>
  [[nodiscard]] T& at(I... idx) const {
    return data_[offset_checked({static_cast<std::size_t>(idx)...})];
  }

  /// Rows [begin, end) of axis 0, as a view.
  [[nodiscard]] TensorView slice(std::size_t begin, std::size_t end) const {
    check(rank() > 0, "TensorView::slice on a rank-0 tensor");
    check(begin <= end && end <= shape_[0], "TensorView::slice: range [", begin, ", ", end,
          ") out of bounds for shape ", shape_);
    return TensorView(data_ + begin * shape_.stride(0), shape_.with_front(end - begin));
  }
  /// Index `i` of axis 0, as a view of rank - 1.
  [[nodiscard]] TensorView operator[](std::size_t i) const {
    check(rank() > 0, "TensorView::operator[] on a rank-0 tensor");
    check(i < shape_[0], "TensorView: index ", i, " out of bounds for shape ", shape_);
    return TensorView(data_ + i * shape_.stride(0), shape_.drop_front());
  }
  /// The same elements under another shape with the same number of elements.
  [[nodiscard]] TensorView reshape(const Shape& shape) const {
    check(shape.numel() == size(), "TensorView::reshape: cannot view ", shape_, " (", size(),
          " elements) as ", shape, " (", shape.numel(), " elements)");
    return TensorView(data_, shape);
  }

  void fill(value_type v) const requires(!std::is_const_v<T>) { std::fill(data_, data_ + size(), v); }
  /// Copies the elements of `src`, which must have the same shape.
  void copy_from(TensorView<const value_type> src) const requires(!std::is_const_v<T>) {
    check(src.shape() == shape_, "TensorView::copy_from: shape ", src.shape(), " does not match ", shape_);
    if (size() != 0) std::memmove(data_, src.data(), size() * sizeof(T));
  }

 private:
  [[nodiscard]] std::size_t offset_unchecked(std::initializer_list<std::size_t> idx) const noexcept {
    std::size_t off = 0, axis = 0;
    for (std::size_t i : idx) off = off * shape_.begin()[axis++] + i;
    return off;
  }
  [[nodiscard]] std::size_t offset_checked(std::initializer_list<std::size_t> idx) const {
    check(idx.size() == rank(), "Tensor::at: ", idx.size(), " indices for a tensor of shape ", shape_);
    std::size_t axis = 0;
    for (std::size_t i : idx) {
      check(i < shape_.begin()[axis], "Tensor::at: index ", i, " out of range on axis ", axis, " of shape ",
            shape_);
      ++axis;
    }
    return offset_unchecked(idx);
  }

  T* data_ = nullptr;
  Shape shape_{0};
};

/// An owning, 64-byte aligned (SPIKELM_DEFAULT_ALIGNMENT), row-major tensor of float or double (or any
/// trivially copyable type). Elements are zero-initialised unless `uninitialized` is passed. Copies are deep.
template <class T>
class Tensor {
  static_assert(std::is_trivially_copyable_v<T>, "Tensor<T> needs a trivially copyable T");

 public:
  using element_type = T;
  using value_type = T;
  static constexpr std::size_t alignment = SPIKELM_DEFAULT_ALIGNMENT;

  /// An empty tensor of shape [0].
  Tensor() = default;
  explicit Tensor(const Shape& shape) : Tensor(shape, uninitialized) {
    std::fill(data_, data_ + size(), T{});
  }
  Tensor(const Shape& shape, T value) : Tensor(shape, uninitialized) {
    std::fill(data_, data_ + size(), value);
  }
  Tensor(const Shape& shape, uninitialized_t) : shape_(shape) { allocate(); }
  /// A tensor of `shape` holding `values` (row-major); the counts must agree.
  Tensor(const Shape& shape, std::initializer_list<T> values) : Tensor(shape, std::span<const T>(values)) {}
  Tensor(const Shape& shape, std::span<const T> values) : Tensor(shape, uninitialized) {
    check(values.size() == size(), "Tensor: ", values.size(), " values for shape ", shape, " (", size(),
          " elements)");
    std::copy(values.begin(), values.end(), data_);
  }
  /// A deep copy of a view.
  explicit Tensor(TensorView<const T> src) : Tensor(src.shape(), uninitialized) { view().copy_from(src); }

  Tensor(const Tensor& other) : Tensor(other.cview()) {}
  Tensor(Tensor&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)), shape_(std::exchange(other.shape_, Shape{0})) {}
  Tensor& operator=(const Tensor& other) {
    if (this != &other) {
      Tensor copy(other);
      swap(copy);
    }
    return *this;
  }
  Tensor& operator=(Tensor&& other) noexcept {
    if (this != &other) {
      release();
      data_ = std::exchange(other.data_, nullptr);
      shape_ = std::exchange(other.shape_, Shape{0});
    }
    return *this;
  }
  ~Tensor() { release(); }

  void swap(Tensor& other) noexcept {
    std::swap(data_, other.data_);
    std::swap(shape_, other.shape_);
  }

  [[nodiscard]] TensorView<T> view() noexcept { return {data_, shape_}; }
  [[nodiscard]] TensorView<const T> view() const noexcept { return {data_, shape_}; }
  [[nodiscard]] TensorView<const T> cview() const noexcept { return {data_, shape_}; }
  operator TensorView<T>() noexcept { return view(); }
  operator TensorView<const T>() const noexcept { return cview(); }

  [[nodiscard]] T* data() noexcept { return data_; }
  [[nodiscard]] const T* data() const noexcept { return data_; }
  [[nodiscard]] const Shape& shape() const noexcept { return shape_; }
  [[nodiscard]] std::size_t rank() const noexcept { return shape_.rank(); }
  [[nodiscard]] std::size_t size() const noexcept { return shape_.numel(); }
  [[nodiscard]] bool empty() const noexcept { return size() == 0; }
  [[nodiscard]] std::size_t dim(std::ptrdiff_t axis) const { return shape_[axis]; }
  [[nodiscard]] std::span<T> span() noexcept { return {data_, size()}; }
  [[nodiscard]] std::span<const T> span() const noexcept { return {data_, size()}; }
  [[nodiscard]] T* begin() noexcept { return data_; }
  [[nodiscard]] T* end() noexcept { return data_ + size(); }
  [[nodiscard]] const T* begin() const noexcept { return data_; }
  [[nodiscard]] const T* end() const noexcept { return data_ + size(); }

  template <class... I>
  [[nodiscard]] T& operator()(I... idx) noexcept {
    return view()(idx...);
  }
  template <class... I>
  [[nodiscard]] const T& operator()(I... idx) const noexcept {
    return cview()(idx...);
  }
  template <class... I>
  [[nodiscard]] T& at(I... idx) {
    return view().at(idx...);
  }
  template <class... I>
  [[nodiscard]] const T& at(I... idx) const {
    return cview().at(idx...);
  }
  [[nodiscard]] TensorView<T> slice(std::size_t b, std::size_t e) { return view().slice(b, e); }
  [[nodiscard]] TensorView<const T> slice(std::size_t b, std::size_t e) const { return cview().slice(b, e); }
  [[nodiscard]] TensorView<T> operator[](std::size_t i) { return view()[i]; }
  [[nodiscard]] TensorView<const T> operator[](std::size_t i) const { return cview()[i]; }
  [[nodiscard]] TensorView<T> reshape(const Shape& s) { return view().reshape(s); }
  [[nodiscard]] TensorView<const T> reshape(const Shape& s) const { return cview().reshape(s); }
  void fill(T v) noexcept { std::fill(data_, data_ + size(), v); }
  void copy_from(TensorView<const T> src) { view().copy_from(src); }

  /// Changes the shape in place; reallocates (and zeroes) only when the element count changes.
  void resize(const Shape& shape) {
    if (shape.numel() == size() && data_) {
      shape_ = shape;
      return;
    }
    Tensor(shape).swap(*this);
  }

  static Tensor zeros(const Shape& shape) { return Tensor(shape); }
  static Tensor full(const Shape& shape, T value) { return Tensor(shape, value); }

 private:
  void allocate() {
    const std::size_t n = shape_.numel();
    if (n == 0) {
      data_ = nullptr;
      return;
    }
    data_ = static_cast<T*>(::operator new (n * sizeof(T), std::align_val_t{alignment}));
  }
  void release() noexcept {
    if (data_) ::operator delete (data_, std::align_val_t{alignment});
    data_ = nullptr;
  }

  T* data_ = nullptr;
  Shape shape_{0};
};

/// Anything with data() and shape(): Tensor<T>, TensorView<T>.
template <class X>
concept TensorLike = requires(X& x) {
  typename std::remove_cvref_t<X>::value_type;
  x.data();
  x.shape();
};

template <TensorLike X>
using tensor_value_t = typename std::remove_cvref_t<X>::value_type;

/// A read-only view of a Tensor or TensorView.
template <TensorLike X>
[[nodiscard]] TensorView<const tensor_value_t<X>> cview(const X& x) {
  return {x.data(), x.shape()};
}
/// A mutable view of a non-const Tensor, or of a TensorView over mutable elements.
template <TensorLike X>
requires(!std::is_const_v<std::remove_pointer_t<decltype(std::declval<X&>().data())>>)
    [[nodiscard]] TensorView<tensor_value_t<X>> mview(X&& x) {
  return {x.data(), x.shape()};
}

/// True when two tensors/views have the same shape.
template <class A, class B>
[[nodiscard]] bool same_shape(const A& a, const B& b) {
  return a.shape() == b.shape();
}

/// Throws spikelm::Error naming `what` when `t` does not have shape `expected`.
template <class A>
void check_shape(const A& t, const Shape& expected, const char* what) {
  check(t.shape() == expected, what, ": expected shape ", expected, ", got ", t.shape());
}

SPIKELM_NAMESPACE_END

#endif // SPIKELM_CORE_TENSOR_HPP
