// spikelm: synaptic-operation counts — accumulates (AC) for spike-driven inputs, multiply-accumulates (MAC)
// for real-valued inputs, and the MACs of the equivalent dense (non-spiking) network — per layer, from the
// activity a forward pass actually had (../shared/SPEC.md §5; docs/metrics.md).
//
// A linear map x W with W [in, out] (input-major, as spike_matmul) over `rows` input rows:
//   spikes (binary) in:     AC  = (active inputs) x out        one addition of a weight row per spike
//   graded events in:       MAC = (non-zero inputs) x out      one multiply-add per non-zero input and output
//   real-valued (dense) in: MAC = rows x in x out
//   dense equivalent:       dense MAC = rows x in x out        always, whatever the input
// Biases, normalisations and element-wise non-linearities are not synaptic operations and are not counted.
#ifndef SPIKELM_METRICS_OPS_HPP
#define SPIKELM_METRICS_OPS_HPP

#include "../config.hpp"
#include "../core/error.hpp"
#include "../core/tensor.hpp"
#include "../spike/spike_tensor.hpp"

#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <utility>
#include <vector>

SPIKELM_NAMESPACE_BEGIN

namespace detail {
/// a * b; throws spikelm::Error naming `what` when the product does not fit in 64 bits.
inline std::uint64_t mul_count(std::uint64_t a, std::uint64_t b, const char* what) {
  check(a == 0 || b <= std::numeric_limits<std::uint64_t>::max() / a, what, ": operation count ", a, " x ", b,
        " overflows 64 bits");
  return a * b;
}
/// a + b; throws spikelm::Error naming `what` when the sum does not fit in 64 bits.
inline std::uint64_t add_count(std::uint64_t a, std::uint64_t b, const char* what) {
  check(b <= std::numeric_limits<std::uint64_t>::max() - a, what, ": operation count ", a, " + ", b,
        " overflows 64 bits");
  return a + b;
}
} // namespace detail

/// Synaptic operations of one layer (or any named group of synapses), summed over whatever span of steps and
/// tokens it was counted on.
struct LayerOps {
  std::string name;
  std::uint64_t ac = 0;        ///< accumulates: one per (active binary input, output) pair actually added
  std::uint64_t mac = 0;       ///< multiply-accumulates: one per (non-zero real-valued input, output) pair
  std::uint64_t dense_mac = 0; ///< MACs of the same layer in the equivalent dense network (every input)

  /// Adds the counts of `o` (the names are not compared). Throws spikelm::Error on 64-bit overflow.
  LayerOps& operator+=(const LayerOps& o) {
    ac = detail::add_count(ac, o.ac, "LayerOps");
    mac = detail::add_count(mac, o.mac, "LayerOps");
    dense_mac = detail::add_count(dense_mac, o.dense_mac, "LayerOps");
    return *this;
  }
  [[nodiscard]] bool operator==(const LayerOps&) const = default;
};

/// What drives a linear layer's inputs: binary spikes (each active input costs an accumulate per output) or
/// graded events (real values that are mostly zero: each non-zero input costs a multiply-accumulate per
/// output).
enum class InputKind { Spikes, GradedEvents };

/// Operations of a linear layer [in -> out] over `rows` input rows of which `active_inputs` input values were
/// non-zero: AC (Spikes) or MAC (GradedEvents) = active_inputs x out, dense MAC = rows x in x out. Throws
/// spikelm::Error when active_inputs exceeds rows x in.
[[nodiscard]] inline LayerOps event_linear_ops(std::uint64_t active_inputs, std::uint64_t rows,
                                               std::uint64_t in, std::uint64_t out, InputKind kind,
                                               std::string name = {}) {
  const std::uint64_t slots = detail::mul_count(rows, in, "event_linear_ops");
  check(active_inputs <= slots, "event_linear_ops", name.empty() ? "" : " (", name, name.empty() ? "" : ")",
        ": ", active_inputs, " active inputs but only ", rows, " rows x ", in, " inputs = ", slots);
  LayerOps ops{std::move(name), 0, 0, 0};
  const std::uint64_t n = detail::mul_count(active_inputs, out, "event_linear_ops");
  (kind == InputKind::Spikes ? ops.ac : ops.mac) = n;
  ops.dense_mac = detail::mul_count(slots, out, "event_linear_ops");
  return ops;
}

/// A linear layer [in -> out] fed by the spikes `in` ([steps, rows, in] or [rows, in]): AC = spikes x out
/// (from the event lists), dense MAC = steps x rows x in x out. The event lists must be current.
[[nodiscard]] inline LayerOps spike_linear_ops(const SpikeTensor& in, std::size_t out,
                                               std::string name = {}) {
  return event_linear_ops(in.count(), in.total_rows(), in.neurons(), out, InputKind::Spikes, std::move(name));
}

/// As spike_linear_ops(in, out) with out = weight.dim(1) of the weight W [in, out]; throws spikelm::Error
/// when W is not rank 2 or its first dimension is not in.neurons().
template <TensorLike W>
[[nodiscard]] LayerOps spike_linear_ops(const SpikeTensor& in, const W& weight, std::string name = {}) {
  const auto w = cview(weight);
  check(w.rank() == 2 && w.dim(0) == in.neurons(), "spike_linear_ops: weight must be [", in.neurons(),
        ", out] for ", in.neurons(), " input neurons, got ", w.shape());
  return spike_linear_ops(in, w.dim(1), std::move(name));
}

/// A dense linear layer [in -> out] over `rows` real-valued input rows: MAC = dense MAC = rows x in x out.
[[nodiscard]] inline LayerOps dense_linear_ops(std::uint64_t rows, std::uint64_t in, std::uint64_t out,
                                               std::string name = {}) {
  const std::uint64_t n =
      detail::mul_count(detail::mul_count(rows, in, "dense_linear_ops"), out, "dense_linear_ops");
  return LayerOps{std::move(name), 0, n, n};
}

/// A dense linear layer applied to x [..., in] with the weight W [in, out]: rows = x.size() / in. Throws
/// spikelm::Error when the shapes do not match.
template <TensorLike X, TensorLike W>
[[nodiscard]] LayerOps dense_linear_ops(const X& x, const W& weight, std::string name = {}) {
  const auto xv = cview(x);
  const auto w = cview(weight);
  check(w.rank() == 2 && xv.rank() >= 1 && xv.dim(-1) == w.dim(0), "dense_linear_ops: input ", xv.shape(),
        " does not match the weight ", w.shape(), " (expected [..., in] and [in, out])");
  return dense_linear_ops(xv.size() / w.dim(0), w.dim(0), w.dim(1), std::move(name));
}

/// Number of non-zero elements of x.
template <TensorLike X>
[[nodiscard]] std::uint64_t count_nonzero(const X& x) {
  using T = tensor_value_t<X>;
  std::uint64_t n = 0;
  for (const T& v : cview(x)) n += v != T(0) ? 1 : 0;
  return n;
}

/// A linear layer fed by graded events x [..., in] (real values, mostly zero) with the weight W [in, out]:
/// MAC = (non-zero elements of x) x out, dense MAC = rows x in x out. Throws spikelm::Error when the shapes
/// do not match.
template <TensorLike X, TensorLike W>
[[nodiscard]] LayerOps graded_linear_ops(const X& x, const W& weight, std::string name = {}) {
  const auto xv = cview(x);
  const auto w = cview(weight);
  check(w.rank() == 2 && xv.rank() >= 1 && xv.dim(-1) == w.dim(0), "graded_linear_ops: input ", xv.shape(),
        " does not match the weight ", w.shape(), " (expected [..., in] and [in, out])");
  return event_linear_ops(count_nonzero(xv), xv.size() / w.dim(0), w.dim(0), w.dim(1),
                          InputKind::GradedEvents, std::move(name));
}

/// Per-layer operation totals over many forward passes, and the number of tokens they cover (so that counts
/// per token are totals / tokens). Layers are kept in the order their names first appear.
class OpsCounter {
 public:
  /// Adds `ops` to the layer of the same name (a new name appends a layer).
  void add(const LayerOps& ops) {
    for (LayerOps& l : layers_)
      if (l.name == ops.name) {
        l += ops;
        return;
      }
    layers_.push_back(ops);
  }
  /// Adds every entry of `ops`.
  void add(std::span<const LayerOps> ops) {
    for (const LayerOps& o : ops) add(o);
  }
  /// Adds `n` tokens to the count the totals cover.
  void add_tokens(std::uint64_t n) { tokens_ = detail::add_count(tokens_, n, "OpsCounter::add_tokens"); }

  [[nodiscard]] std::uint64_t tokens() const noexcept { return tokens_; }
  [[nodiscard]] const std::vector<LayerOps>& layers() const noexcept { return layers_; }
  [[nodiscard]] bool contains(const std::string& name) const noexcept {
    for (const LayerOps& l : layers_)
      if (l.name == name) return true;
    return false;
  }
  /// The layer called `name`; throws spikelm::Error when there is none.
  [[nodiscard]] const LayerOps& layer(const std::string& name) const {
    for (const LayerOps& l : layers_)
      if (l.name == name) return l;
    fail("OpsCounter: no layer named '", name, "' (", layers_.size(), " layers)");
  }
  /// Sum over all layers, named "total".
  [[nodiscard]] LayerOps total() const {
    LayerOps t{"total", 0, 0, 0};
    for (const LayerOps& l : layers_) t += l;
    return t;
  }
  void clear() noexcept {
    layers_.clear();
    tokens_ = 0;
  }

 private:
  std::vector<LayerOps> layers_;
  std::uint64_t tokens_ = 0;
};

SPIKELM_NAMESPACE_END

#endif // SPIKELM_METRICS_OPS_HPP
