// spikelm: the reverse-mode tape. A Tape records a Wengert list of nodes in recording order; backward()
// walks it in reverse, calling each node's backward function, which adds into its inputs' gradients
// (add-or-set: the first contribution is written, later ones are added, so no buffer is zero-filled).
// Var is a small handle (tape, index, generation); a Var used after its tape was cleared throws.
// Each backward() starts from fresh node gradients; Parameter gradients accumulate across backward calls.
#ifndef SPIKELM_AUTOGRAD_TAPE_HPP
#define SPIKELM_AUTOGRAD_TAPE_HPP

#include "../config.hpp"
#include "../core/error.hpp"
#include "../core/tensor.hpp"
#include "../simd/elementwise.hpp"
#include "parameter.hpp"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

SPIKELM_NAMESPACE_BEGIN

template <class T>
class Tape;

namespace detail {
inline bool& grad_mode_flag() noexcept {
  thread_local bool enabled = true;
  return enabled;
}
} // namespace detail

/// Whether ops record backward functions on this thread.
inline bool grad_enabled() noexcept {
  return detail::grad_mode_flag();
}

/// Inference scope: while alive, ops on this thread compute values but record no backward functions.
class NoGradGuard {
 public:
  NoGradGuard() noexcept : previous_(detail::grad_mode_flag()) { detail::grad_mode_flag() = false; }
  ~NoGradGuard() { detail::grad_mode_flag() = previous_; }
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

/// Handle to a value recorded on a Tape.
template <class T>
class Var {
 public:
  Var() = default;
  [[nodiscard]] bool valid() const noexcept;
  /// The recorded value (throws if the tape was cleared since this Var was made).
  [[nodiscard]] TensorView<const T> value() const;
  /// dL/d(this) after Tape::backward (empty if no gradient reached it).
  [[nodiscard]] TensorView<const T> grad() const;
  [[nodiscard]] Shape shape() const { return value().shape(); }
  [[nodiscard]] std::size_t index() const noexcept { return index_; }
  [[nodiscard]] Tape<T>& tape() const {
    check(tape_ != nullptr, "Var: not attached to a tape");
    return *tape_;
  }
  [[nodiscard]] bool requires_grad() const;

 private:
  friend class Tape<T>;
  Var(Tape<T>* tape, std::size_t index, std::uint64_t generation) noexcept
      : tape_(tape), index_(index), generation_(generation) {}
  Tape<T>* tape_ = nullptr;
  std::size_t index_ = 0;
  std::uint64_t generation_ = 0;
};

/// Where a backward function writes a gradient: `fresh` means the buffer holds garbage and must be
/// written (=), otherwise the gradient must be added (+=).
template <class T>
struct GradSlot {
  T* data;
  bool fresh;
  /// dst = fresh ? src : dst + src, elementwise over n values.
  void put(const T* src, std::size_t n) const {
    if (fresh)
      std::copy(src, src + n, data);
    else
      simd::add(data, src, data, n);
  }
};

template <class T>
class Tape {
 public:
  /// Signature of a node's backward function: it reads node(self).grad and adds into its inputs.
  using BackwardFn = std::function<void(Tape&, std::size_t self)>;

  Tape() = default;
  Tape(const Tape&) = delete;
  Tape& operator=(const Tape&) = delete;

  /// A value that needs no gradient (data, targets, masks).
  Var<T> constant(Tensor<T> value) { return push(std::move(value), {}, {}); }
  /// A leaf whose gradient is wanted (e.g. an input in gradcheck); read it with Var::grad() after backward.
  Var<T> leaf(Tensor<T> value) {
    Node n;
    n.owned = std::move(value);
    n.value = n.owned.cview();
    n.requires_grad = true;
    return append(std::move(n));
  }
  /// A parameter as a leaf: no copy of its value; backward adds its gradient into `p.grad` (never sets, so
  /// gradients accumulate across backward calls until ParameterSet::zero_grad).
  Var<T> param(Parameter<T>& p) {
    Node n;
    n.value = p.value.cview();
    n.param = &p;
    n.requires_grad = p.requires_grad;
    return append(std::move(n));
  }

  /// Records an op's result. `inputs` are the Vars it was computed from; `backward` is kept only when grad
  /// mode is on and some input requires a gradient.
  Var<T> push(Tensor<T> value, std::initializer_list<Var<T>> inputs, BackwardFn backward) {
    return push(std::move(value), std::span<const Var<T>>(inputs.begin(), inputs.size()),
                std::move(backward));
  }
  Var<T> push(Tensor<T> value, std::span<const Var<T>> inputs, BackwardFn backward) {
    Node n;
    n.owned = std::move(value);
    n.value = n.owned.cview();
    bool needs = false;
    for (const Var<T>& v : inputs) {
      check_var(v);
      needs = needs || nodes_[v.index_].requires_grad;
    }
    if (needs && grad_enabled() && backward) {
      n.requires_grad = true;
      n.backward = std::move(backward);
    }
    return append(std::move(n));
  }
  /// push() for a result that is a view of an input's value (reshape): no copy. `base` must be on this tape.
  Var<T> push_view(TensorView<const T> value, std::initializer_list<Var<T>> inputs, BackwardFn backward) {
    Var<T> v = push(Tensor<T>(), inputs, std::move(backward));
    nodes_[v.index_].value = value;
    return v;
  }

  /// Reverse pass from a scalar `root` (seed 1), or from any root with `seed` of its shape.
  void backward(const Var<T>& root, const Tensor<T>* seed = nullptr) {
    check_var(root);
    Node& r = nodes_[root.index_];
    if (seed) {
      check(seed->shape() == r.value.shape(), "Tape::backward: seed gradient shape ", seed->shape(),
            " does not match the root's shape ", r.value.shape());
    } else {
      check(r.value.size() == 1, "Tape::backward: the root has shape ", r.value.shape(),
            "; backward from a non-scalar needs a seed gradient");
    }
    check(r.requires_grad, "Tape::backward: the root does not depend on anything that requires a gradient");
    // Gradients of an earlier backward on this tape are forgotten, so only nodes the root depends on get
    // one (parameters keep accumulating into Parameter::grad until ParameterSet::zero_grad).
    for (std::size_t i = 0; i <= root.index_; ++i) nodes_[i].grad_set = false;
    const GradSlot<T> s = slot(root.index_);
    if (seed)
      s.put(seed->data(), seed->size());
    else if (s.fresh)
      s.data[0] = T(1);
    else
      s.data[0] += T(1);
    for (std::size_t i = root.index_ + 1; i-- > 0;) {
      Node& n = nodes_[i];
      if (n.backward && n.grad_set) n.backward(*this, i);
    }
  }

  /// Reverse pass over the nodes [first, root] only, seeded with `seed` at `root` (a vector-Jacobian product
  /// through that segment). With `isolate`, gradients leaving the segment (to nodes before `first`, or to
  /// parameters) are dropped; without, they are added as in backward(). Used by implicit differentiation.
  void backward_segment(std::size_t first, std::size_t root, TensorView<const T> seed, bool isolate) {
    check(first <= root && root < nodes_.size(), "Tape::backward_segment: bad range [", first, ", ", root,
          "]");
    check(seed.size() == nodes_[root].value.size(), "Tape::backward_segment: seed of ", seed.size(),
          " values for a root of shape ", nodes_[root].value.shape());
    forget(first, root);
    isolate_first_ = isolate ? first : 0;
    isolate_ = isolate;
    slot(root).put(seed.data(), seed.size());
    for (std::size_t i = root + 1; i-- > first;) {
      Node& n = nodes_[i];
      if (n.backward && n.grad_set) n.backward(*this, i);
    }
    isolate_ = false;
    scratch_.clear();
  }
  /// Marks nodes [first, last] as holding no gradient (a later backward pass skips them).
  void forget(std::size_t first, std::size_t last) noexcept {
    for (std::size_t i = first; i <= last && i < nodes_.size(); ++i) nodes_[i].grad_set = false;
  }
  /// Drops the nodes recorded after the first `size` ones (for evaluating a map repeatedly on a scratch
  /// tape; Vars of dropped nodes must not be used again).
  void truncate(std::size_t size) {
    check(size <= nodes_.size(), "Tape::truncate: size ", size, " exceeds ", nodes_.size(), " nodes");
    nodes_.resize(size);
  }
  /// Bytes held by the values and gradients recorded on the tape (views of parameters excluded).
  [[nodiscard]] std::size_t memory_bytes() const noexcept {
    std::size_t b = 0;
    for (const Node& n : nodes_) b += (n.owned.size() + n.grad.size()) * sizeof(T);
    return b;
  }

  /// Forgets every node (Vars made so far become invalid); keeps the node array's capacity.
  void clear() noexcept {
    nodes_.clear();
    ++generation_;
  }
  [[nodiscard]] std::size_t size() const noexcept { return nodes_.size(); }

  // ---- for op implementations ------------------------------------------------------------------------
  [[nodiscard]] TensorView<const T> value(std::size_t i) const { return nodes_.at(i).value; }
  /// The gradient of node i as written by backward so far (empty view if none yet).
  [[nodiscard]] TensorView<const T> grad(std::size_t i) const {
    const Node& n = nodes_.at(i);
    if (n.param) return n.param->grad;
    return n.grad_set ? n.grad.cview() : TensorView<const T>();
  }
  [[nodiscard]] bool requires_grad(std::size_t i) const { return nodes_.at(i).requires_grad; }
  /// Where to write node i's gradient (see GradSlot); allocates it on first use.
  GradSlot<T> slot(std::size_t i) {
    Node& n = nodes_.at(i);
    if (isolate_ && (i < isolate_first_ || n.param)) { // outside an isolated segment: write to scratch
      scratch_.push_back(std::make_unique<Tensor<T>>(n.value.shape(), uninitialized));
      return {scratch_.back()->data(), true};
    }
    if (n.param) return {n.param->grad.data(), false};
    if (n.grad_set) return {n.grad.data(), false};
    if (n.grad.shape() != n.value.shape() || n.grad.empty())
      n.grad = Tensor<T>(n.value.shape(), uninitialized);
    n.grad_set = true;
    return {n.grad.data(), true};
  }
  /// Adds g into node i's gradient (nothing if node i needs no gradient).
  void accumulate(std::size_t i, TensorView<const T> g) {
    if (!requires_grad(i)) return;
    check(g.size() == nodes_[i].value.size(), "Tape: gradient of ", g.size(), " values for a node of shape ",
          nodes_[i].value.shape());
    slot(i).put(g.data(), g.size());
  }
  void check_var(const Var<T>& v) const {
    check(v.tape_ == this, "Var belongs to another tape (or to none)");
    check(v.generation_ == generation_ && v.index_ < nodes_.size(),
          "Var used after its tape was cleared (it was recorded before Tape::clear())");
  }
  [[nodiscard]] std::uint64_t generation() const noexcept { return generation_; }

 private:
  friend class Var<T>;
  struct Node {
    Tensor<T> owned;
    TensorView<const T> value;
    Tensor<T> grad;
    bool grad_set = false;
    bool requires_grad = false;
    Parameter<T>* param = nullptr;
    BackwardFn backward;
  };
  Var<T> append(Node&& n) {
    nodes_.push_back(std::move(n));
    return Var<T>(this, nodes_.size() - 1, generation_);
  }

  std::vector<Node> nodes_;
  std::uint64_t generation_ = 1;
  bool isolate_ = false;
  std::size_t isolate_first_ = 0;
  std::vector<std::unique_ptr<Tensor<T>>> scratch_;
};

template <class T>
bool Var<T>::valid() const noexcept {
  return tape_ && generation_ == tape_->generation_ && index_ < tape_->nodes_.size();
}
template <class T>
TensorView<const T> Var<T>::value() const {
  tape().check_var(*this);
  return tape_->nodes_[index_].value;
}
template <class T>
TensorView<const T> Var<T>::grad() const {
  tape().check_var(*this);
  return tape_->grad(index_);
}
template <class T>
bool Var<T>::requires_grad() const {
  tape().check_var(*this);
  return tape_->nodes_[index_].requires_grad;
}

SPIKELM_NAMESPACE_END

#endif // SPIKELM_AUTOGRAD_TAPE_HPP
