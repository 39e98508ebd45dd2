// spikelm: SpikeTensor — bit-packed binary spikes with per-row event lists.
#ifndef SPIKELM_SPIKE_SPIKE_TENSOR_HPP
#define SPIKELM_SPIKE_SPIKE_TENSOR_HPP

#include "../config.hpp"
#include "../core/error.hpp"
#include "../core/parallel.hpp"
#include "../core/tensor.hpp"

#include <bit>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <vector>

SPIKELM_NAMESPACE_BEGIN

/// Binary spikes over [steps, rows, neurons] (steps = 1 for a single time step). A "row" is one
/// (step, batch-row) pair; rows are numbered step-major, row(t, b) = t * rows + b.
///
/// Storage: one bit per neuron-step (rows padded to 64-bit words) plus, per row, the sorted indices of its
/// active neurons (the event list) as 32-bit integers and one offset per row. Kernels driven by spikes walk
/// the event lists; `test()` reads the bits.
class SpikeTensor {
 public:
  using word_type = std::uint64_t;
  using index_type = std::uint32_t;
  static constexpr std::size_t word_bits = 64;

  SpikeTensor() = default;
  /// All-silent spikes of the given extents.
  SpikeTensor(std::size_t steps, std::size_t rows, std::size_t neurons)
      : steps_(steps), rows_(rows), neurons_(neurons), words_per_row_((neurons + word_bits - 1) / word_bits) {
    check(neurons <= std::numeric_limits<index_type>::max(), "SpikeTensor: ", neurons,
          " neurons exceed the 32-bit event index");
    bits_.assign(total_rows() * words_per_row_, 0);
    offsets_.assign(total_rows() + 1, 0);
  }
  /// [rows, neurons] spikes for a single step.
  SpikeTensor(std::size_t rows, std::size_t neurons) : SpikeTensor(1, rows, neurons) {}

  /// Spikes where `dense >= threshold`. A rank-2 dense tensor [rows, neurons] gives steps = 1; rank 3 is
  /// [steps, rows, neurons].
  template <TensorLike X>
  static SpikeTensor from_dense(const X& dense, tensor_value_t<X> threshold = tensor_value_t<X>(0.5)) {
    const auto v = cview(dense);
    check(v.rank() == 2 || v.rank() == 3, "SpikeTensor::from_dense: needs rank 2 [rows, neurons] or 3 ",
          "[steps, rows, neurons], got shape ", v.shape());
    const std::size_t steps = v.rank() == 3 ? v.dim(0) : 1;
    SpikeTensor s(steps, v.dim(-2), v.dim(-1));
    const std::size_t n = s.neurons_;
    parallel_for(s.total_rows(), s.total_rows() * n, [&](std::size_t r) {
      const auto* src = v.data() + r * n;
      word_type* w = s.row_words(r);
      for (std::size_t i = 0; i < n; ++i)
        if (src[i] >= threshold) w[i / word_bits] |= word_type{1} << (i % word_bits);
    });
    s.rebuild_events();
    return s;
  }

  [[nodiscard]] std::size_t steps() const noexcept { return steps_; }
  /// Rows per step (the batch).
  [[nodiscard]] std::size_t rows() const noexcept { return rows_; }
  [[nodiscard]] std::size_t neurons() const noexcept { return neurons_; }
  /// steps * rows.
  [[nodiscard]] std::size_t total_rows() const noexcept { return steps_ * rows_; }
  [[nodiscard]] std::size_t words_per_row() const noexcept { return words_per_row_; }
  [[nodiscard]] std::size_t row_index(std::size_t step, std::size_t row) const {
    check(step < steps_ && row < rows_, "SpikeTensor: (step ", step, ", row ", row, ") out of range for ",
          steps_, " steps x ", rows_, " rows");
    return step * rows_ + row;
  }

  /// Whether neuron `n` of global row `r` spiked.
  [[nodiscard]] bool test(std::size_t r, std::size_t n) const {
    check_index(r, n);
    return (bits_[r * words_per_row_ + n / word_bits] >> (n % word_bits)) & 1u;
  }
  [[nodiscard]] bool test(std::size_t step, std::size_t row, std::size_t n) const {
    return test(row_index(step, row), n);
  }

  /// Sets or clears one spike. Event lists become stale until rebuild_events() is called.
  void set(std::size_t r, std::size_t n, bool spike = true) {
    check_index(r, n);
    word_type& w = bits_[r * words_per_row_ + n / word_bits];
    const word_type m = word_type{1} << (n % word_bits);
    w = spike ? (w | m) : (w & ~m);
    events_valid_ = false;
  }

  /// Writes row `r` from a dense row of `neurons()` values: spike where value >= threshold. Event lists
  /// become stale until rebuild_events().
  template <class T>
  void set_row(std::size_t r, const T* values, T threshold = T(0.5)) {
    check(r < total_rows(), "SpikeTensor::set_row: row ", r, " out of range (", total_rows(), " rows)");
    word_type* w = row_words(r);
    for (std::size_t k = 0; k < words_per_row_; ++k) w[k] = 0;
    for (std::size_t i = 0; i < neurons_; ++i)
      if (values[i] >= threshold) w[i / word_bits] |= word_type{1} << (i % word_bits);
    events_valid_ = false;
  }

  /// Rebuilds every event list from the bits (parallel over rows; the result does not depend on threads).
  void rebuild_events() {
    const std::size_t R = total_rows();
    offsets_.assign(R + 1, 0);
    parallel_for(R, R * words_per_row_, [&](std::size_t r) {
      std::size_t c = 0;
      const word_type* w = row_words(r);
      for (std::size_t k = 0; k < words_per_row_; ++k) c += static_cast<std::size_t>(std::popcount(w[k]));
      offsets_[r + 1] = c;
    });
    for (std::size_t r = 0; r < R; ++r) offsets_[r + 1] += offsets_[r];
    indices_.resize(offsets_[R]);
    parallel_for(R, R * words_per_row_ * 2, [&](std::size_t r) {
      index_type* out = indices_.data() + offsets_[r];
      const word_type* w = row_words(r);
      for (std::size_t k = 0; k < words_per_row_; ++k) {
        word_type bits = w[k];
        while (bits) {
          *out++ = static_cast<index_type>(k * word_bits + static_cast<std::size_t>(std::countr_zero(bits)));
          bits &= bits - 1;
        }
      }
    });
    events_valid_ = true;
  }

  /// Active neuron indices of global row `r`, ascending.
  [[nodiscard]] std::span<const index_type> events(std::size_t r) const {
    check(r < total_rows(), "SpikeTensor::events: row ", r, " out of range (", total_rows(), " rows)");
    check_events();
    return {indices_.data() + offsets_[r], offsets_[r + 1] - offsets_[r]};
  }
  [[nodiscard]] std::span<const index_type> events(std::size_t step, std::size_t row) const {
    return events(row_index(step, row));
  }
  /// Spikes in global row `r`.
  [[nodiscard]] std::size_t count(std::size_t r) const { return events(r).size(); }
  /// All spikes.
  [[nodiscard]] std::size_t count() const {
    check_events();
    return offsets_.back();
  }
  /// Fraction of neuron-steps that spiked (0 for an empty tensor).
  [[nodiscard]] double rate() const {
    const std::size_t n = total_rows() * neurons_;
    return n == 0 ? 0.0 : static_cast<double>(count()) / static_cast<double>(n);
  }
  /// Per-neuron firing rate over every step and row.
  [[nodiscard]] std::vector<double> rate_per_neuron() const {
    check_events();
    std::vector<double> r(neurons_, 0.0);
    for (index_type i : indices_) r[i] += 1.0;
    const auto rows = static_cast<double>(total_rows());
    if (rows > 0)
      for (double& x : r) x /= rows;
    return r;
  }
  [[nodiscard]] bool events_valid() const noexcept { return events_valid_; }

  /// Dense 0/1 tensor, [rows, neurons] when steps == 1 and `keep_steps` is false, else [steps, rows,
  /// neurons].
  template <class T = float>
  [[nodiscard]] Tensor<T> to_dense(bool keep_steps = false) const {
    Tensor<T> out(steps_ == 1 && !keep_steps ? Shape{rows_, neurons_} : Shape{steps_, rows_, neurons_});
    parallel_for(total_rows(), total_rows() * neurons_, [&](std::size_t r) {
      T* dst = out.data() + r * neurons_;
      const word_type* w = row_words(r);
      for (std::size_t i = 0; i < neurons_; ++i)
        dst[i] = ((w[i / word_bits] >> (i % word_bits)) & 1u) ? T(1) : T(0);
    });
    return out;
  }

  /// Raw words of global row `r` (bit i of the row is bit i % 64 of word i / 64).
  [[nodiscard]] const word_type* row_words(std::size_t r) const noexcept {
    return bits_.data() + r * words_per_row_;
  }
  /// Bytes held (bits, offsets and events).
  [[nodiscard]] std::size_t memory_bytes() const noexcept {
    return bits_.size() * sizeof(word_type) + offsets_.size() * sizeof(std::size_t) +
           indices_.size() * sizeof(index_type);
  }

 private:
  word_type* row_words(std::size_t r) noexcept { return bits_.data() + r * words_per_row_; }
  void check_index(std::size_t r, std::size_t n) const {
    check(r < total_rows() && n < neurons_, "SpikeTensor: (row ", r, ", neuron ", n, ") out of range for ",
          total_rows(), " rows x ", neurons_, " neurons");
  }
  void check_events() const {
    check(events_valid_, "SpikeTensor: event lists are stale after set()/set_row(); call rebuild_events()");
  }

  std::size_t steps_ = 0, rows_ = 0, neurons_ = 0, words_per_row_ = 0;
  std::vector<word_type> bits_;
  std::vector<std::size_t> offsets_{0};
  std::vector<index_type> indices_;
  bool events_valid_ = true;
};

SPIKELM_NAMESPACE_END

#endif // SPIKELM_SPIKE_SPIKE_TENSOR_HPP
