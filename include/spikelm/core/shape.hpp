// spikelm: tensor shapes (rank 0..4, row-major).
#ifndef SPIKELM_CORE_SHAPE_HPP
#define SPIKELM_CORE_SHAPE_HPP

#include "../config.hpp"
#include "error.hpp"

#include <array>
#include <cstddef>
#include <initializer_list>
#include <limits>
#include <ostream>
#include <string>

SPIKELM_NAMESPACE_BEGIN

/// Largest rank a Tensor can have.
inline constexpr std::size_t max_rank = 4;

/// The extents of a row-major tensor. Rank 0 is a scalar (one element).
class Shape {
 public:
  constexpr Shape() noexcept = default;
  Shape(std::initializer_list<std::size_t> dims) {
    check(dims.size() <= max_rank, "Shape: rank ", dims.size(), " exceeds the maximum rank ", max_rank);
    for (std::size_t d : dims) dims_[rank_++] = d;
    validate();
  }
  template <class It>
  Shape(It first, It last) {
    for (; first != last; ++first) {
      check(rank_ < max_rank, "Shape: rank exceeds the maximum rank ", max_rank);
      dims_[rank_++] = static_cast<std::size_t>(*first);
    }
    validate();
  }

  [[nodiscard]] constexpr std::size_t rank() const noexcept { return rank_; }
  /// Extent of axis `axis`; negative axes count from the back (-1 is the last).
  [[nodiscard]] std::size_t operator[](std::ptrdiff_t axis) const { return dims_[normalize(axis)]; }
  [[nodiscard]] std::size_t dim(std::ptrdiff_t axis) const { return (*this)[axis]; }
  /// Number of elements (1 for rank 0).
  [[nodiscard]] constexpr std::size_t numel() const noexcept {
    std::size_t n = 1;
    for (std::size_t i = 0; i < rank_; ++i) n *= dims_[i];
    return n;
  }
  /// Elements between consecutive indices of `axis`.
  [[nodiscard]] std::size_t stride(std::ptrdiff_t axis) const {
    std::size_t s = 1;
    for (std::size_t i = normalize(axis) + 1; i < rank_; ++i) s *= dims_[i];
    return s;
  }
  /// Shape without its first axis.
  [[nodiscard]] Shape drop_front() const {
    check(rank_ > 0, "Shape::drop_front on a rank-0 shape");
    Shape s;
    for (std::size_t i = 1; i < rank_; ++i) s.dims_[s.rank_++] = dims_[i];
    return s;
  }
  /// Same shape with axis 0 replaced by `extent`.
  [[nodiscard]] Shape with_front(std::size_t extent) const {
    check(rank_ > 0, "Shape::with_front on a rank-0 shape");
    Shape s = *this;
    s.dims_[0] = extent;
    return s;
  }
  [[nodiscard]] const std::size_t* begin() const noexcept { return dims_.data(); }
  [[nodiscard]] const std::size_t* end() const noexcept { return dims_.data() + rank_; }

  friend bool operator==(const Shape& a, const Shape& b) noexcept {
    if (a.rank_ != b.rank_) return false;
    for (std::size_t i = 0; i < a.rank_; ++i)
      if (a.dims_[i] != b.dims_[i]) return false;
    return true;
  }

  [[nodiscard]] std::string str() const {
    std::string s = "[";
    for (std::size_t i = 0; i < rank_; ++i) {
      if (i) s += ", ";
      s += std::to_string(dims_[i]);
    }
    return s + "]";
  }
  friend std::ostream& operator<<(std::ostream& os, const Shape& s) { return os << s.str(); }

 private:
  [[nodiscard]] std::size_t normalize(std::ptrdiff_t axis) const {
    const auto r = static_cast<std::ptrdiff_t>(rank_);
    const std::ptrdiff_t a = axis < 0 ? axis + r : axis;
    check(a >= 0 && a < r, "Shape: axis ", axis, " out of range for shape ", str());
    return static_cast<std::size_t>(a);
  }
  void validate() const {
    std::size_t n = 1;
    for (std::size_t i = 0; i < rank_; ++i) {
      check(dims_[i] == 0 || n <= std::numeric_limits<std::size_t>::max() / 8 / dims_[i], "Shape ", str(),
            " has too many elements");
      n *= dims_[i];
    }
  }

  std::array<std::size_t, max_rank> dims_{};
  std::size_t rank_ = 0;
};

SPIKELM_NAMESPACE_END

#endif // SPIKELM_CORE_SHAPE_HPP
