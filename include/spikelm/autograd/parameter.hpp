// spikelm: named parameters (value + gradient) and the set that owns them.
#ifndef SPIKELM_AUTOGRAD_PARAMETER_HPP
#define SPIKELM_AUTOGRAD_PARAMETER_HPP

#include "../config.hpp"
#include "../core/error.hpp"
#include "../core/tensor.hpp"

#include <cstddef>
#include <map>
#include <memory>
#include <string>
#include <vector>

SPIKELM_NAMESPACE_BEGIN

/// A trainable tensor. Its gradient is a view into the owning ParameterSet's single gradient buffer, so
/// zero_grad() is one pass over one allocation and global-norm clipping reads one array.
template <class T>
struct Parameter {
  std::string name;
  Tensor<T> value;
  TensorView<T> grad;
  /// Whether optimizers apply weight decay to it (ParameterSet::add sets false for rank <= 1 tensors such
  /// as biases and norm gains; change it freely).
  bool decay = true;
  /// Frozen parameters get no gradient and are skipped by optimizers.
  bool requires_grad = true;
  [[nodiscard]] const Shape& shape() const noexcept { return value.shape(); }
  [[nodiscard]] std::size_t size() const noexcept { return value.size(); }
};

/// Parameters registered by unique name, in registration order.
template <class T>
class ParameterSet {
 public:
  ParameterSet() = default;
  ParameterSet(const ParameterSet&) = delete;
  ParameterSet& operator=(const ParameterSet&) = delete;
  ParameterSet(ParameterSet&&) noexcept = default;
  ParameterSet& operator=(ParameterSet&&) noexcept = default;

  /// Registers `value` under `name` (which must be new) and returns the parameter (its address is stable).
  Parameter<T>& add(const std::string& name, Tensor<T> value) {
    check(!name.empty(), "ParameterSet::add: empty parameter name");
    check(index_.find(name) == index_.end(), "ParameterSet::add: a parameter named '", name,
          "' already exists");
    auto p = std::make_unique<Parameter<T>>();
    p->name = name;
    p->value = std::move(value);
    p->decay = p->value.rank() >= 2;
    index_[name] = params_.size();
    params_.push_back(std::move(p));
    rebuild_grad_buffer();
    return *params_.back();
  }

  [[nodiscard]] bool contains(const std::string& name) const { return index_.find(name) != index_.end(); }
  [[nodiscard]] Parameter<T>& operator[](const std::string& name) { return *params_[find(name)]; }
  [[nodiscard]] const Parameter<T>& operator[](const std::string& name) const { return *params_[find(name)]; }
  [[nodiscard]] Parameter<T>& at(std::size_t i) { return *params_.at(i); }
  [[nodiscard]] const Parameter<T>& at(std::size_t i) const { return *params_.at(i); }
  [[nodiscard]] std::size_t size() const noexcept { return params_.size(); }
  /// Total number of scalar values.
  [[nodiscard]] std::size_t numel() const noexcept { return grads_.size(); }

  /// Sets every gradient to zero (one pass over the one gradient buffer).
  void zero_grad() noexcept { grads_.fill(T(0)); }
  /// All gradients, concatenated in registration order.
  [[nodiscard]] TensorView<T> flat_grad() noexcept { return grads_.view(); }
  [[nodiscard]] TensorView<const T> flat_grad() const noexcept { return grads_.cview(); }

  template <class F>
  void for_each(F&& f) {
    for (auto& p : params_) f(*p);
  }
  template <class F>
  void for_each(F&& f) const {
    for (const auto& p : params_) f(static_cast<const Parameter<T>&>(*p));
  }

 private:
  [[nodiscard]] std::size_t find(const std::string& name) const {
    auto it = index_.find(name);
    check(it != index_.end(), "ParameterSet: no parameter named '", name, "'");
    return it->second;
  }
  void rebuild_grad_buffer() {
    std::size_t total = 0;
    for (const auto& p : params_) total += p->value.size();
    Tensor<T> fresh({total});
    std::size_t off = 0;
    for (auto& p : params_) {
      const std::size_t n = p->value.size();
      TensorView<T> g(fresh.data() + off, p->value.shape());
      if (p->grad.size() == n && n > 0) g.copy_from(p->grad);
      p->grad = g;
      off += n;
    }
    grads_ = std::move(fresh);
  }

  std::vector<std::unique_ptr<Parameter<T>>> params_;
  std::map<std::string, std::size_t> index_;
  Tensor<T> grads_{Shape{0}};
};

SPIKELM_NAMESPACE_END

#endif // SPIKELM_AUTOGRAD_PARAMETER_HPP
