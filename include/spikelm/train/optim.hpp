// spikelm: optimizers (SGD with momentum/Nesterov, Adam, AdamW), learning-rate schedules and global-norm
// gradient clipping, following torch.optim's update rules step for step.
#ifndef SPIKELM_TRAIN_OPTIM_HPP
#define SPIKELM_TRAIN_OPTIM_HPP

#include "../autograd/parameter.hpp"
#include "../config.hpp"
#include "../core/error.hpp"
#include "../core/tensor.hpp"
#include "../simd/reduce.hpp"

#include <cmath>
#include <cstddef>
#include <functional>
#include <numbers>
#include <string>
#include <vector>

SPIKELM_NAMESPACE_BEGIN

/// A learning-rate schedule: the factor applied to the base rate at step s (0-based).
using Schedule = std::function<double(std::size_t)>;

namespace schedule {
/// Factor 1 at every step.
inline Schedule constant() {
  return [](std::size_t) { return 1.0; };
}
/// Linear warm-up: min(1, (s + 1) / warmup_steps).
inline Schedule linear_warmup(std::size_t warmup_steps) {
  check(warmup_steps > 0, "schedule::linear_warmup: warmup_steps must be positive");
  return [warmup_steps](std::size_t s) {
    return std::min(1.0, static_cast<double>(s + 1) / static_cast<double>(warmup_steps));
  };
}
/// Linear warm-up over `warmup_steps` ((s + 1) / warmup), then cosine decay from 1 to `min_factor` at
/// `total_steps`: min + (1 - min) * 0.5 (1 + cos(pi (s - warmup) / (total - warmup))). Constant after total.
inline Schedule warmup_cosine(std::size_t warmup_steps, std::size_t total_steps, double min_factor = 0.0) {
  check(total_steps > warmup_steps, "schedule::warmup_cosine: total_steps (", total_steps,
        ") must exceed warmup_steps (", warmup_steps, ")");
  return [=](std::size_t s) {
    if (s < warmup_steps) return static_cast<double>(s + 1) / static_cast<double>(warmup_steps);
    const double progress = std::min(1.0, static_cast<double>(s - warmup_steps) /
                                              static_cast<double>(total_steps - warmup_steps));
    return min_factor + (1.0 - min_factor) * 0.5 * (1.0 + std::cos(std::numbers::pi * progress));
  };
}
} // namespace schedule

/// Scales all gradients so that their global L2 norm is at most max_norm (torch's clip_grad_norm_: the
/// factor is min(1, max_norm / (norm + 1e-6))). Returns the norm before clipping.
template <class T>
double clip_grad_norm(ParameterSet<T>& params, double max_norm) {
  check(max_norm > 0, "clip_grad_norm: max_norm must be positive, got ", max_norm);
  auto g = params.flat_grad();
  const double norm = std::sqrt(static_cast<double>(simd::sum_sq(g.data(), g.size())));
  const double coef = std::min(1.0, max_norm / (norm + 1e-6));
  if (coef < 1.0) simd::scale(static_cast<T>(coef), g.data(), g.data(), g.size());
  return norm;
}

/// Common state of the optimizers: the base learning rate, the schedule and the step counter.
template <class T>
class OptimizerBase {
 public:
  explicit OptimizerBase(ParameterSet<T>& params, double lr) : params_(&params), lr_(lr) {
    check(lr >= 0 && std::isfinite(lr), "optimizer: learning rate must be finite and >= 0, got ", lr);
  }
  /// The base learning rate (the schedule multiplies it).
  [[nodiscard]] double base_lr() const noexcept { return lr_; }
  void set_base_lr(double lr) { lr_ = lr; }
  void set_schedule(Schedule s) { schedule_ = std::move(s); }
  /// The rate the next step() uses.
  [[nodiscard]] double lr() const { return lr_ * (schedule_ ? schedule_(steps_) : 1.0); }
  /// Steps taken so far.
  [[nodiscard]] std::size_t steps() const noexcept { return steps_; }
  void set_steps(std::size_t s) noexcept { steps_ = s; }

 protected:
  /// Calls f(param, offset into the flat gradient/state arrays) for every trainable parameter.
  template <class F>
  void for_each_trainable(F&& f) {
    std::size_t off = 0;
    params_->for_each([&](Parameter<T>& p) {
      if (p.requires_grad) f(p, off);
      off += p.size();
    });
  }
  void ensure_state(std::vector<T>& buf) {
    if (buf.size() != params_->numel()) buf.assign(params_->numel(), T(0));
  }
  ParameterSet<T>* params_;
  double lr_;
  Schedule schedule_;
  std::size_t steps_ = 0;
};

/// SGD as torch.optim.SGD: d = g + wd p; with momentum, buf = m buf + (1 - dampening) d (buf = d at the first
/// step), d = nesterov ? d + m buf : buf; p -= lr d. Weight decay applies to parameters with decay = true.
template <class T>
class SGD : public OptimizerBase<T> {
 public:
  struct Options {
    double lr = 0.01;
    double momentum = 0;
    double dampening = 0;
    double weight_decay = 0;
    bool nesterov = false;
  };
  SGD(ParameterSet<T>& params, Options o) : OptimizerBase<T>(params, o.lr), opt_(o) {
    check(o.momentum >= 0 && o.weight_decay >= 0, "SGD: momentum and weight decay must be >= 0");
    check(!o.nesterov || (o.momentum > 0 && o.dampening == 0),
          "SGD: Nesterov needs momentum > 0 and dampening 0");
  }
  void step() {
    const double lr = this->lr();
    if (opt_.momentum != 0) this->ensure_state(momentum_);
    const bool first = this->steps_ == 0;
    this->for_each_trainable([&](Parameter<T>& p, std::size_t off) {
      const double wd = p.decay ? opt_.weight_decay : 0.0;
      T* v = p.value.data();
      const T* g = p.grad.data();
      for (std::size_t i = 0; i < p.size(); ++i) {
        T d = g[i];
        if (wd != 0) d = d + static_cast<T>(wd) * v[i];
        if (opt_.momentum != 0) {
          T& buf = momentum_[off + i];
          buf = first ? d : static_cast<T>(opt_.momentum) * buf + static_cast<T>(1 - opt_.dampening) * d;
          d = opt_.nesterov ? d + static_cast<T>(opt_.momentum) * buf : buf;
        }
        v[i] -= static_cast<T>(lr) * d;
      }
    });
    ++this->steps_;
  }
  /// Momentum buffers, flat in parameter order (empty before the first step or without momentum).
  [[nodiscard]] std::vector<T>& momentum_buffer() noexcept { return momentum_; }
  [[nodiscard]] const std::vector<T>& momentum_buffer() const noexcept { return momentum_; }
  [[nodiscard]] const Options& options() const noexcept { return opt_; }

 private:
  Options opt_;
  std::vector<T> momentum_;
};

/// Adam and AdamW as torch.optim: m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
/// p -= (lr / (1 - b1^t)) m / (sqrt(v) / sqrt(1 - b2^t) + eps). Adam adds wd p to g (L2); AdamW
/// (decoupled = true) first multiplies p by (1 - lr wd). Weight decay applies to parameters with decay =
/// true.
template <class T>
class Adam : public OptimizerBase<T> {
 public:
  struct Options {
    double lr = 1e-3;
    double beta1 = 0.9;
    double beta2 = 0.999;
    double eps = 1e-8;
    double weight_decay = 0;
    bool decoupled = false; ///< true: AdamW
  };
  Adam(ParameterSet<T>& params, Options o) : OptimizerBase<T>(params, o.lr), opt_(o) {
    check(o.beta1 >= 0 && o.beta1 < 1 && o.beta2 >= 0 && o.beta2 < 1, "Adam: betas must be in [0, 1), got (",
          o.beta1, ", ", o.beta2, ")");
    check(o.eps >= 0 && o.weight_decay >= 0, "Adam: eps and weight decay must be >= 0");
  }
  void step() {
    const double lr = this->lr();
    this->ensure_state(m_);
    this->ensure_state(v_);
    const double t = static_cast<double>(this->steps_ + 1);
    const double bc1 = 1 - std::pow(opt_.beta1, t), bc2_sqrt = std::sqrt(1 - std::pow(opt_.beta2, t));
    const T step_size = static_cast<T>(lr / bc1);
    const T b1 = static_cast<T>(opt_.beta1), b2 = static_cast<T>(opt_.beta2), eps = static_cast<T>(opt_.eps);
    this->for_each_trainable([&](Parameter<T>& p, std::size_t off) {
      const double wd = p.decay ? opt_.weight_decay : 0.0;
      T* v = p.value.data();
      const T* g = p.grad.data();
      T* m = m_.data() + off;
      T* s = v_.data() + off;
      if (opt_.decoupled && wd != 0) {
        const T shrink = static_cast<T>(1 - lr * wd);
        for (std::size_t i = 0; i < p.size(); ++i) v[i] *= shrink;
      }
      for (std::size_t i = 0; i < p.size(); ++i) {
        T gi = g[i];
        if (!opt_.decoupled && wd != 0) gi = gi + static_cast<T>(wd) * v[i];
        m[i] = m[i] + (T(1) - b1) * (gi - m[i]); // torch: exp_avg.lerp_(grad, 1 - beta1)
        s[i] = s[i] * b2 + (T(1) - b2) * gi * gi;
        const T denom = std::sqrt(s[i]) / static_cast<T>(bc2_sqrt) + eps;
        v[i] -= step_size * m[i] / denom;
      }
    });
    ++this->steps_;
  }
  /// First and second moments, flat in parameter order.
  [[nodiscard]] std::vector<T>& first_moment() noexcept { return m_; }
  [[nodiscard]] std::vector<T>& second_moment() noexcept { return v_; }
  [[nodiscard]] const std::vector<T>& first_moment() const noexcept { return m_; }
  [[nodiscard]] const std::vector<T>& second_moment() const noexcept { return v_; }
  [[nodiscard]] const Options& options() const noexcept { return opt_; }

 private:
  Options opt_;
  std::vector<T> m_, v_;
};

/// AdamW: Adam with decoupled weight decay (default 0.01, as torch.optim.AdamW).
template <class T>
class AdamW : public Adam<T> {
 public:
  struct Options {
    double lr = 1e-3;
    double beta1 = 0.9;
    double beta2 = 0.999;
    double eps = 1e-8;
    double weight_decay = 0.01;
  };
  AdamW(ParameterSet<T>& params, Options o)
      : Adam<T>(params, {o.lr, o.beta1, o.beta2, o.eps, o.weight_decay, true}) {}
};

SPIKELM_NAMESPACE_END

#endif // SPIKELM_TRAIN_OPTIM_HPP
