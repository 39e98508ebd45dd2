// spikelm: the EGRU layer (event-based GRU, EvNN) with an event-driven forward and a sparse backward.
//
// ../shared/SPEC.md §4. Weights W [in, 3H], R [H, 3H], biases bx, br [3H], gate order [u | r | g],
// per-unit threshold theta [H]:
//   a = x_t W + bx;  b = y_{t-1} R + br
//   u = sigmoid(a_u + b_u);  r = sigmoid(a_r + b_r);  g = tanh(a_g + r * b_g)
//   c = u h_{t-1} + (1 - u) g            (zoneout, when on, mixes c with h_{t-1})
//   o = H(c - theta) (strict);  y = o c;  h = c - o theta;  trace_t = 0.9 trace_{t-1} + 0.1 y_t
// Backward: dH/dc is the triangle pseudo-derivative gamma max(0, 1 - s |c - theta|); theta gets
// -(dL/do p + o dL/dh).
//
// Event-driven work (EgruMode::EventDriven): y_{t-1} R adds the rows of R of the units that emitted an event
// (y != 0), scaled by y (EgruKernel::Rows streams whole rows, EgruKernel::Panels sums column panels in
// registers); dR gets rows only where y != 0; dL/dy_{t-1} = dq R^T is computed only for units whose dL/dy
// is used at t-1 — those that fired or lie inside the pseudo-derivative's support.
// EgruMode::Dense computes the same quantities with dense products (for tests and comparison).
#ifndef SPIKELM_MODELS_EGRU_LAYER_HPP
#define SPIKELM_MODELS_EGRU_LAYER_HPP

#include "../autograd/parameter.hpp"
#include "../autograd/tape.hpp"
#include "../config.hpp"
#include "../core/error.hpp"
#include "../core/linalg.hpp"
#include "../core/parallel.hpp"
#include "../core/rng.hpp"
#include "../core/tensor.hpp"
#include "../simd/elementwise.hpp"
#include "../simd/reduce.hpp"
#include "../spike/accumulate.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

SPIKELM_NAMESPACE_BEGIN

enum class EgruMode { EventDriven, Dense };

/// How the event-driven forward sums the rows of R for y_{t-1} R (docs/models/egru.md#performance).
enum class EgruKernel {
  /// Default: every batch row adds its events' whole rows, four at a time, into its output block
  /// (detail::weighted_sum_rows_streamed); the hardware prefetcher follows the row streams.
  Rows,
  /// Column panels held in registers (detail::weighted_sum_rows), each panel of R shared by the batch;
  /// steps with at least H events read a contiguous panel-major copy of R made once per forward call.
  Panels
};

/// Hyper-parameters of one EGRU layer (defaults as EvNN's EGRU).
struct EgruOptions {
  double dampening = 0.7;   ///< gamma, the pseudo-derivative's height
  double support = 1.0;     ///< s: the pseudo-derivative is non-zero for |c - theta| < 1 / s
  double zoneout = 0.0;     ///< zoneout probability (0: off)
  double dropconnect = 0.0; ///< DropConnect probability on R during training (0: off)
  /// EvNN's activity regularisation (its LM's `gamma`): the backward adds the gradient of
  /// activity_penalty * mean(o) over the T x B x H unit-steps (o through the pseudo-derivative). The term is
  /// not part of any loss value (EvNN also reports the loss without it).
  double activity_penalty = 0.0;
  /// A plain GRU (the dense baseline): every unit emits y = h = c at every step, theta is unused.
  bool gru = false;
  EgruMode mode = EgruMode::EventDriven;
  EgruKernel kernel = EgruKernel::Rows; ///< event-driven recurrent product (unused in EgruMode::Dense)
};

/// Counts of one forward/backward, for activity and backward sparsity.
struct EgruActivity {
  std::size_t unit_steps = 0;      ///< T * B * H
  std::size_t events = 0;          ///< outputs with y != 0
  std::size_t backward_active = 0; ///< unit-steps whose dL/dy was needed (fired or inside the support)
  [[nodiscard]] double activity() const noexcept {
    return unit_steps ? static_cast<double>(events) / static_cast<double>(unit_steps) : 0.0;
  }
  /// Fraction of unit-steps with y = 0 (EvNN's activity sparsity).
  [[nodiscard]] double sparsity() const noexcept { return unit_steps ? 1.0 - activity() : 0.0; }
  /// Fraction of unit-steps whose recurrent gradient was skipped.
  [[nodiscard]] double backward_sparsity() const noexcept {
    return unit_steps ? 1.0 - static_cast<double>(backward_active) / static_cast<double>(unit_steps) : 0.0;
  }
};

/// Everything the backward pass needs from a forward pass over T steps.
template <class T>
struct EgruCache {
  std::size_t steps = 0, batch = 0, input = 0, hidden = 0;
  bool training = true;
  Tensor<T> x;      ///< [T, B, in]
  Tensor<T> y;      ///< [T + 1, B, H], y[0] = y0
  Tensor<T> h;      ///< [T + 1, B, H], h[0] = h0
  Tensor<T> c;      ///< [T, B, H], c before the threshold (after zoneout)
  Tensor<T> gates;  ///< [T, B, 3H]: u, r, g
  Tensor<T> qg;     ///< [T, B, H]: (y_{t-1} R + br)_g
  Tensor<T> r_used; ///< R after DropConnect (empty when off)
  Tensor<T> r_mask; ///< DropConnect scale mask (0 or 1 / (1 - p)), empty when off
  Tensor<T> z_mask; ///< zoneout mask [T, B, H] (1 = take the new value), empty when off
  /// events[t * B + b]: indices i with y[t][b][i] != 0, for t = 0..T (t = 0 is y0).
  std::vector<std::vector<std::uint32_t>> events;
};

/// Gradients of one layer (same shapes as the weights).
template <class T>
struct EgruGrads {
  Tensor<T> kernel, recurrent_kernel, bias, recurrent_bias, thr, x, y0, h0;
};

/// One EGRU layer: parameters registered in a ParameterSet under `prefix` with EvNN's names (kernel,
/// recurrent_kernel, bias, recurrent_bias, thr).
template <class T>
class EgruLayer {
 public:
  EgruLayer() = default;
  // opt by reference: g++ 12 at -O2 -march=native (AVX-512) miscompiled the by-value copy of this
  // 56-byte struct (a broadcast store of `support` into `zoneout`), tested in tests/unit/egru.cpp
  EgruLayer(ParameterSet<T>& ps, const std::string& prefix, std::size_t input, std::size_t hidden,
            const EgruOptions& opt = {})
      : input_(input), hidden_(hidden), opt_(opt) {
    check(input > 0 && hidden > 0, "EgruLayer: sizes must be positive, got input ", input, ", hidden ",
          hidden);
    validate_options(opt);
    kernel_ = &ps.add(prefix + "kernel", Tensor<T>({input, 3 * hidden}));
    recurrent_kernel_ = &ps.add(prefix + "recurrent_kernel", Tensor<T>({hidden, 3 * hidden}));
    bias_ = &ps.add(prefix + "bias", Tensor<T>({3 * hidden}));
    recurrent_bias_ = &ps.add(prefix + "recurrent_bias", Tensor<T>({3 * hidden}));
    thr_ = &ps.add(prefix + "thr", Tensor<T>({hidden}));
  }

  /// EvNN's initialisation: Xavier-normal W and R (gain 1), zero biases, thresholds from Beta(a, 3) with
  /// mean thr_mean (a = 3 thr_mean / (1 - thr_mean)).
  void reset_parameters(Rng& rng, double thr_mean = 0.3) {
    check(thr_mean > 0.0 && thr_mean < 1.0, "EgruLayer: thr_mean must be in (0, 1), got ", thr_mean);
    auto xavier = [&](Tensor<T>& w) {
      const double sd = std::sqrt(2.0 / static_cast<double>(w.dim(0) + w.dim(1)));
      rng.fill_normal(w.span(), T(0), static_cast<T>(sd));
    };
    xavier(kernel_->value);
    xavier(recurrent_kernel_->value);
    bias_->value.fill(T(0));
    recurrent_bias_->value.fill(T(0));
    const double a = 3.0 * thr_mean / (1.0 - thr_mean);
    for (T& t : thr_->value) t = static_cast<T>(sample_beta(rng, a, 3.0));
  }

  [[nodiscard]] std::size_t input_size() const noexcept { return input_; }
  [[nodiscard]] std::size_t hidden_size() const noexcept { return hidden_; }
  [[nodiscard]] const EgruOptions& options() const noexcept { return opt_; }
  void set_options(const EgruOptions& o) {
    validate_options(o);
    opt_ = o;
  }
  Parameter<T>& kernel() const { return *kernel_; }
  Parameter<T>& recurrent_kernel() const { return *recurrent_kernel_; }
  Parameter<T>& bias() const { return *bias_; }
  Parameter<T>& recurrent_bias() const { return *recurrent_bias_; }
  Parameter<T>& thr() const { return *thr_; }

  /// Keeps thresholds in [0, 1] (EvNN clamps them before every forward pass).
  void clamp_thresholds() const {
    for (T& t : thr_->value) t = std::clamp(t, T(0), T(1));
  }

  /// Runs x [T, B, in] from y0, h0 [B, H] (empty views: zeros). Writes y, h and trace [T, B, H] (h and trace
  /// may be empty views). Fills `cache` for backward when given. `rng` draws the DropConnect and zoneout
  /// masks when training (needed only when those are on).
  void forward(TensorView<const T> x, TensorView<const T> y0, TensorView<const T> h0, TensorView<T> y_out,
               TensorView<T> h_out, TensorView<T> trace_out, bool training, Rng* rng, EgruCache<T>* cache,
               EgruActivity* activity = nullptr) const {
    check(x.rank() == 3 && x.dim(2) == input_, "EgruLayer::forward: input must be [T, B, ", input_, "], got ",
          x.shape());
    const std::size_t T_ = x.dim(0), B = x.dim(1), H = hidden_, G = 3 * H;
    const Shape state{B, H}, seq{T_, B, H};
    check(y0.empty() || y0.shape() == state, "EgruLayer::forward: y0 must be ", state, ", got ", y0.shape());
    check(h0.empty() || h0.shape() == state, "EgruLayer::forward: h0 must be ", state, ", got ", h0.shape());
    check(y_out.shape() == seq, "EgruLayer::forward: y must be ", seq, ", got ", y_out.shape());
    check(h_out.empty() || h_out.shape() == seq, "EgruLayer::forward: h must be ", seq, ", got ",
          h_out.shape());
    check(trace_out.empty() || trace_out.shape() == seq, "EgruLayer::forward: trace must be ", seq, ", got ",
          trace_out.shape());
    const bool masks = training && (opt_.dropconnect > 0.0 || opt_.zoneout > 0.0);
    check(!masks || rng != nullptr, "EgruLayer::forward: DropConnect/zoneout in training need an Rng");

    EgruCache<T> local;
    EgruCache<T>& cc = cache ? *cache : local;
    const bool keep = cache != nullptr;
    cc.steps = T_;
    cc.batch = B;
    cc.input = input_;
    cc.hidden = H;
    cc.training = training;
    // DropConnect on R (inverted dropout of the weights, one mask per forward as F.dropout in EvNN)
    const T* R = recurrent_kernel_->value.data();
    cc.r_used = Tensor<T>();
    cc.r_mask = Tensor<T>();
    if (rng && training && opt_.dropconnect > 0.0) {
      cc.r_mask = Tensor<T>({H, G}, uninitialized);
      rng->fill_bernoulli(cc.r_mask.span(), 1.0 - opt_.dropconnect);
      const T keep_scale = static_cast<T>(1.0 / (1.0 - opt_.dropconnect));
      for (T& m : cc.r_mask) m *= keep_scale;
      cc.r_used = Tensor<T>({H, G}, uninitialized);
      simd::mul(R, cc.r_mask.data(), cc.r_used.data(), H * G);
      R = cc.r_used.data();
    }
    cc.z_mask = Tensor<T>();
    if (rng && training && opt_.zoneout > 0.0) {
      cc.z_mask = Tensor<T>(seq, uninitialized);
      rng->fill_bernoulli(cc.z_mask.span(), 1.0 - opt_.zoneout);
    }
    // a = x W + bx for all steps at once
    Tensor<T> a({T_ * B, G}, uninitialized);
    matmul(x.reshape({T_ * B, input_}), kernel_->value, a);
    for (std::size_t r = 0; r < T_ * B; ++r)
      simd::add(a.data() + r * G, bias_->value.data(), a.data() + r * G, G);

    cc.x = keep ? Tensor<T>(x) : Tensor<T>();
    cc.y = Tensor<T>({T_ + 1, B, H});
    cc.h = Tensor<T>({T_ + 1, B, H});
    if (!y0.empty()) std::copy(y0.begin(), y0.end(), cc.y.data());
    if (!h0.empty()) std::copy(h0.begin(), h0.end(), cc.h.data());
    cc.c = Tensor<T>(seq, uninitialized);
    cc.gates = Tensor<T>({T_, B, G}, uninitialized);
    cc.qg = Tensor<T>(seq, uninitialized);
    cc.events.assign((T_ + 1) * B, {});
    for (std::size_t b = 0; b < B; ++b) collect_events(cc.y.data() + b * H, H, cc.events[b]);

    std::vector<T> packed; // R in panel-major order, made by the first step that needs it
    Tensor<T> rh({B, G}, uninitialized);
    std::vector<T> trace(B * H, T(0));
    const T* thr = thr_->value.data();
    const T p_zone = static_cast<T>(opt_.zoneout);
    const bool gru = opt_.gru;
    std::size_t events = 0;
    for (std::size_t t = 0; t < T_; ++t) {
      const T* yprev = cc.y.data() + t * B * H;
      recurrent_product(R, yprev, cc.events.data() + t * B, B, rh, packed);
      const T* at = a.data() + t * B * G;
      for (std::size_t b = 0; b < B; ++b) {
        const T* ab = at + b * G;
        const T* rb = rh.data() + b * G;
        const T* hprev = cc.h.data() + (t * B + b) * H;
        T* gt = cc.gates.data() + (t * B + b) * G;
        T* ct = cc.c.data() + (t * B + b) * H;
        T* qt = cc.qg.data() + (t * B + b) * H;
        T* ynew = cc.y.data() + ((t + 1) * B + b) * H;
        T* hnew = cc.h.data() + ((t + 1) * B + b) * H;
        const T* zm = cc.z_mask.empty() ? nullptr : cc.z_mask.data() + (t * B + b) * H;
        // the cell, on SIMD batches of units and then one unit at a time (V = batch or T)
        const auto cell = [&](auto proto, std::size_t j) {
          using V = decltype(proto);
          using simd::detail::vload, simd::detail::vstore;
          const V u = simd::detail::vsigmoid(vload<V>(ab + j) + vload<V>(rb + j));
          const V r = simd::detail::vsigmoid(vload<V>(ab + H + j) + vload<V>(rb + H + j));
          const V q = vload<V>(rb + 2 * H + j);
          const V g = simd::detail::vtanh(vload<V>(ab + 2 * H + j) + r * q);
          const V hp = vload<V>(hprev + j);
          V cv = u * hp + (V(T(1)) - u) * g;
          if (zm)
            cv = (cv - hp) * vload<V>(zm + j) + hp;
          else if (!training && p_zone > T(0))
            cv = V(p_zone) * hp + V(T(1) - p_zone) * cv;
          vstore(gt + j, u);
          vstore(gt + H + j, r);
          vstore(gt + 2 * H + j, g);
          vstore(qt + j, q);
          vstore(ct + j, cv);
          if (gru) { // every unit emits its c; h = c
            vstore(ynew + j, cv);
            vstore(hnew + j, cv);
          } else {
            const V th = vload<V>(thr + j);
            vstore(ynew + j, simd::detail::where_greater(cv, th, cv, V(T(0))));
            vstore(hnew + j, simd::detail::where_greater(cv, th, cv - th, cv));
          }
        };
        std::size_t j = 0;
        if constexpr (simd::lanes < T, simd::default_arch >> 0) {
          using Batch = xsimd::batch<T, simd::default_arch>;
          for (; j + Batch::size <= H; j += Batch::size) cell(Batch(T(0)), j);
        }
        for (; j < H; ++j) cell(T(0), j);
        collect_events(ynew, H, cc.events[(t + 1) * B + b]);
        events += cc.events[(t + 1) * B + b].size();
        T* tr = trace.data() + b * H;
        for (std::size_t j = 0; j < H; ++j) tr[j] = T(0.9) * tr[j] + T(0.1) * ynew[j];
        if (!trace_out.empty()) std::copy(tr, tr + H, trace_out.data() + (t * B + b) * H);
      }
    }
    std::copy(cc.y.data() + B * H, cc.y.data() + (T_ + 1) * B * H, y_out.data());
    if (!h_out.empty()) std::copy(cc.h.data() + B * H, cc.h.data() + (T_ + 1) * B * H, h_out.data());
    if (activity) {
      activity->unit_steps += T_ * B * H;
      activity->events += events;
    }
  }

  /// Backpropagates dL/dy, dL/dh, dL/dtrace [T, B, H] (empty views: zero) through the cached forward. Adds
  /// the weight gradients into `g` (allocated and zeroed on first use) and writes g.x, g.y0, g.h0.
  void backward(const EgruCache<T>& cc, TensorView<const T> dy, TensorView<const T> dh,
                TensorView<const T> dtr, EgruGrads<T>& g, EgruActivity* activity = nullptr) const {
    check(!cc.x.empty() || cc.steps == 0, "EgruLayer::backward: the forward pass kept no cache");
    check(cc.training, "EgruLayer::backward: the forward pass ran in inference mode");
    const std::size_t T_ = cc.steps, B = cc.batch, H = hidden_, G = 3 * H, I = input_;
    const Shape seq{T_, B, H};
    check(cc.hidden == H && cc.input == I, "EgruLayer::backward: cache is from a layer of another size");
    check(dy.empty() || dy.shape() == seq, "EgruLayer::backward: dy must be ", seq, ", got ", dy.shape());
    check(dh.empty() || dh.shape() == seq, "EgruLayer::backward: dh must be ", seq, ", got ", dh.shape());
    check(dtr.empty() || dtr.shape() == seq, "EgruLayer::backward: dtrace must be ", seq, ", got ",
          dtr.shape());
    auto ensure = [](Tensor<T>& t, const Shape& s) {
      if (t.shape() != s) t = Tensor<T>(s);
    };
    ensure(g.kernel, {I, G});
    ensure(g.recurrent_kernel, {H, G});
    ensure(g.bias, {G});
    ensure(g.recurrent_bias, {G});
    ensure(g.thr, {H});
    g.x = Tensor<T>({T_, B, I});
    g.y0 = Tensor<T>({B, H});
    g.h0 = Tensor<T>({B, H});

    const T* R = cc.r_used.empty() ? recurrent_kernel_->value.data() : cc.r_used.data();
    const T* thr = thr_->value.data();
    const T gamma = static_cast<T>(opt_.dampening), s = static_cast<T>(opt_.support);
    const T p_zone = static_cast<T>(opt_.zoneout);
    const bool gru = opt_.gru;
    const bool dense = opt_.mode == EgruMode::Dense;
    Tensor<T> dp({T_ * B, G}, uninitialized), dq({B, G}, uninitialized);
    Tensor<T> dr_used({H, G});
    std::vector<T> dy_carry(B * H, T(0)), dh_carry(B * H, T(0)), dtr_carry(B * H, T(0));
    std::vector<std::uint8_t> needed(B * H);
    UnitGroups groups;
    std::size_t active = 0;
    const T ar = gru || T_ * B * H == 0 ? T(0) : static_cast<T>(opt_.activity_penalty / double(T_ * B * H));
    for (std::size_t tt = T_; tt-- > 0;) {
      for (std::size_t b = 0; b < B; ++b) {
        const std::size_t row = tt * B + b;
        const T* gt = cc.gates.data() + row * G;
        const T* ct = cc.c.data() + row * H;
        const T* qt = cc.qg.data() + row * H;
        const T* hprev = cc.h.data() + row * H; // h[t] in the [T+1] layout is h_{t-1}
        const T* zm = cc.z_mask.empty() ? nullptr : cc.z_mask.data() + row * H;
        T* dpr = dp.data() + row * G;
        T* dqr = dq.data() + b * G;
        T* dyc = dy_carry.data() + b * H;
        T* dhc = dh_carry.data() + b * H;
        T* dtc = dtr_carry.data() + b * H;
        for (std::size_t j = 0; j < H; ++j) {
          const T dtr_total = (dtr.empty() ? T(0) : dtr.data()[row * H + j]) + dtc[j];
          dtc[j] = T(0.9) * dtr_total;
          const T dy_total = (dy.empty() ? T(0) : dy.data()[row * H + j]) + dyc[j] + T(0.1) * dtr_total;
          const T dh_total = (dh.empty() ? T(0) : dh.data()[row * H + j]) + dhc[j];
          const T cv = ct[j], th = gru ? T(0) : thr[j];
          const T o = (gru || cv > th) ? T(1) : T(0);
          const T pd = gru ? T(0) : gamma * std::max(T(0), T(1) - s * std::abs(cv - th));
          const T d_heavi = pd * (cv * dy_total - th * dh_total + ar);
          if (!gru) g.thr.data()[j] -= d_heavi + o * dh_total;
          T dc = o * dy_total + dh_total + d_heavi;
          T dh_prev;
          if (zm) {
            dh_prev = (T(1) - zm[j]) * dc;
            dc *= zm[j];
          } else if (!cc.training && p_zone > T(0)) {
            dh_prev = p_zone * dc;
            dc *= T(1) - p_zone;
          } else {
            dh_prev = T(0);
          }
          const T u = gt[j], r = gt[H + j], gg = gt[2 * H + j];
          dhc[j] = dh_prev + u * dc;
          const T dpg = (T(1) - gg * gg) * (T(1) - u) * dc;
          const T dpr_ = r * (T(1) - r) * dpg * qt[j];
          const T dpu = u * (T(1) - u) * (hprev[j] - gg) * dc;
          dpr[j] = dpu;
          dpr[H + j] = dpr_;
          dpr[2 * H + j] = dpg;
          dqr[j] = dpu;
          dqr[H + j] = dpr_;
          dqr[2 * H + j] = dpg * r;
        }
        simd::add(g.recurrent_bias.data(), dqr, g.recurrent_bias.data(), G);
        simd::add(g.bias.data(), dpr, g.bias.data(), G);
      }
      // Which units' dL/dy_{t-1} will be used: at t = 0 all (it is dL/dy0); otherwise those that fired at
      // t-1 or whose c_{t-1} lies inside the pseudo-derivative's support.
      for (std::size_t b = 0; b < B; ++b)
        for (std::size_t i = 0; i < H; ++i) {
          bool need = true;
          if (tt > 0 && !dense && !gru) {
            const T cv = cc.c.data()[((tt - 1) * B + b) * H + i];
            need = cv > thr[i] || s * std::abs(cv - thr[i]) < T(1);
          }
          needed[b * H + i] = need ? 1 : 0;
          active += need ? 1 : 0;
        }
      const T* yprev = cc.y.data() + tt * B * H;
      if (dense) {
        // dR += y_{t-1}^T dq ; dy_{t-1} = dq R^T
        matmul(TensorView<const T>(yprev, {B, H}), TensorView<const T>(dq.data(), {B, G}), dr_used,
               Trans::Yes, Trans::No, T(1), T(1));
        Tensor<T> dyp({B, H}, uninitialized);
        matmul(TensorView<const T>(dq.data(), {B, G}), TensorView<const T>(R, {H, G}), dyp, Trans::No,
               Trans::Yes);
        std::copy(dyp.begin(), dyp.end(), dy_carry.begin());
      } else {
        // dR[i, :] += sum over batch rows b with y_{t-1}[b, i] != 0 of y_{t-1}[b, i] dq[b, :]: each touched
        // row of dR is loaded and stored once per four events of its unit (weighted_sum_rows_streamed),
        // column block by column block (one thread per block)
        group_by_unit(cc.events.data() + tt * B, yprev, B, groups);
        // (block edges on multiples of 16 columns: every column takes the same SIMD or scalar path whatever
        // the thread count)
        static_assert(16 % std::max<std::size_t>(simd::lanes<T, simd::default_arch>, 1) == 0);
        const std::size_t nb = column_blocks(B, G);
        const std::size_t bw = ((G + nb - 1) / nb + 15) / 16 * 16;
        parallel_for(nb, groups.batch.size() * G, [&](std::size_t k) {
          const std::size_t c0 = std::min(G, k * bw), c1 = std::min(G, c0 + bw);
          for (std::uint32_t i : groups.units) {
            const std::uint32_t e0 = groups.offsets[i];
            detail::weighted_sum_rows_streamed<simd::default_arch, true>(
                dq.data(), G, groups.batch.data() + e0, groups.offsets[i + 1] - e0, groups.value.data() + e0,
                dr_used.data() + std::size_t(i) * G, c0, c1);
          }
        });
        // dL/dy_{t-1}[b, i] = dq[b, :] . R[i, :] only where it will be used; row i of R is read once per
        // four such batch rows (detail::dot_rows)
        std::vector<std::uint32_t> need_units;
        need_units.reserve(H);
        for (std::size_t i = 0; i < H; ++i) {
          bool any = false;
          for (std::size_t b = 0; b < B && !any; ++b) any = needed[b * H + i] != 0;
          if (any) need_units.push_back(static_cast<std::uint32_t>(i));
        }
        std::fill(dy_carry.begin(), dy_carry.end(), T(0));
        parallel_for(need_units.size(), need_units.size() * B * G, [&](std::size_t k) {
          const std::size_t i = need_units[k];
          std::uint32_t rows[kMaxDotBatch];
          T dots[kMaxDotBatch];
          for (std::size_t b0 = 0; b0 < B; b0 += kMaxDotBatch) {
            std::size_t n = 0;
            for (std::size_t b = b0; b < std::min(B, b0 + kMaxDotBatch); ++b)
              if (needed[b * H + i]) rows[n++] = static_cast<std::uint32_t>(b);
            detail::dot_rows<simd::default_arch>(R + i * G, dq.data(), G, rows, n, G, dots);
            for (std::size_t m = 0; m < n; ++m) dy_carry[rows[m] * H + i] = dots[m];
          }
        });
      }
    }
    std::copy(dy_carry.begin(), dy_carry.end(), g.y0.data());
    std::copy(dh_carry.begin(), dh_carry.end(), g.h0.data());
    // DropConnect: R_used = R * mask, so dR = dR_used * mask
    if (!cc.r_mask.empty()) simd::mul(dr_used.data(), cc.r_mask.data(), dr_used.data(), H * G);
    simd::add(g.recurrent_kernel.data(), dr_used.data(), g.recurrent_kernel.data(), H * G);
    // dW += x^T dp ; dx = dp W^T
    matmul(cc.x.cview().reshape({T_ * B, I}), dp, g.kernel, Trans::Yes, Trans::No, T(1), T(1));
    matmul(dp, kernel_->value, g.x.reshape({T_ * B, I}), Trans::No, Trans::Yes);
    if (activity) activity->backward_active += active;
  }

 private:
  static void collect_events(const T* y, std::size_t n, std::vector<std::uint32_t>& out) {
    out.clear();
    for (std::size_t i = 0; i < n; ++i)
      if (y[i] != T(0)) out.push_back(static_cast<std::uint32_t>(i));
  }

  /// With EgruKernel::Panels, a step reads R from contiguous panels when its batch has at least kPackEvents
  /// events per unit: then streaming all of R once (and packing it once per forward call) costs less than
  /// reading the scattered row segments of the events from the row-major R, whose panels do not stay in
  /// cache.
  static constexpr std::size_t kPackEvents = 1;

  /// rh[b, :] = br + y_{t-1}[b, :] R: rows of R for the events of each batch row, or a dense product.
  void recurrent_product(const T* R, const T* yprev, const std::vector<std::uint32_t>* events, std::size_t B,
                         Tensor<T>& rh, std::vector<T>& pp) const {
    const std::size_t H = hidden_, G = 3 * H;
    const T* br = recurrent_bias_->value.data();
    if (opt_.mode == EgruMode::Dense) {
      matmul(TensorView<const T>(yprev, {B, H}), TensorView<const T>(R, {H, G}), rh);
      for (std::size_t b = 0; b < B; ++b) simd::add(rh.data() + b * G, br, rh.data() + b * G, G);
      return;
    }
    for (std::size_t b = 0; b < B; ++b) std::copy(br, br + G, rh.data() + b * G);
    std::size_t n_events = 0;
    for (std::size_t b = 0; b < B; ++b) n_events += events[b].size();
    if (opt_.kernel == EgruKernel::Rows) {
      // Each batch row adds its events' rows, four at a time, over blocks of kRowBlock columns (the block of
      // rh stays in L1; the four row segments stream). Blocks are fixed, so results do not depend on threads.
      parallel_for((G + kRowBlock - 1) / kRowBlock, (n_events + B) * G, [&](std::size_t p) {
        const std::size_t c0 = p * kRowBlock, c1 = std::min(G, c0 + kRowBlock);
        for (std::size_t b = 0; b < B; ++b)
          detail::weighted_sum_rows_streamed<simd::default_arch>(R, G, events[b].data(), events[b].size(),
                                                                 yprev + b * H, rh.data() + b * G, c0, c1);
      });
      return;
    }
    // EgruKernel::Panels. Column panels of kPanel columns: for each panel, every batch row sums the panel
    // segments of its events' rows in registers (detail::weighted_sum_rows), so that a panel of R is read
    // from memory once per step and reused from cache by the batch. R's rows are 3H values apart (a multiple
    // of the page size when H is a multiple of 1024 floats), so the row segments of one panel fall on a few
    // cache sets and a row-major panel does not stay in cache: for steps with many events (kPackEvents), R is
    // copied once per forward call into contiguous panels (detail::pack_column_panels) and those are read
    // instead, while the next panel is prefetched.
    const bool use_packed = n_events >= kPackEvents * H;
    if (use_packed && pp.empty()) {
      pp.resize((G + kPanel - 1) / kPanel * H * kPanel);
      detail::pack_column_panels(R, H, G, G, kPanel, pp.data());
    }
    const T* packed = use_packed ? pp.data() : nullptr;
    parallel_for((G + kPanel - 1) / kPanel, (n_events + B) * G, [&](std::size_t p) {
      const std::size_t c0 = p * kPanel, c1 = std::min(G, c0 + kPanel);
      // with packed panels, the batch rows share out the cache lines of the next panel and prefetch one per
      // event, so that panel streams in from memory while this one is summed
      constexpr std::size_t kLine = 64 / sizeof(T);
      const std::size_t lines = H * kPanel / kLine, share = (lines + B - 1) / B;
      const T* next = packed && c1 < G ? packed + (p + 1) * H * kPanel : nullptr;
      for (std::size_t b = 0; b < B; ++b) {
        const std::size_t l0 = std::min(lines, b * share), nl = next ? std::min(lines, l0 + share) - l0 : 0;
        if (packed)
          detail::weighted_sum_rows<simd::default_arch>(
              packed + p * H * kPanel, kPanel, events[b].data(), events[b].size(), yprev + b * H,
              rh.data() + b * G + c0, 0, c1 - c0, next ? next + l0 * kLine : nullptr, nl);
        else
          detail::weighted_sum_rows<simd::default_arch>(R, G, events[b].data(), events[b].size(),
                                                        yprev + b * H, rh.data() + b * G, c0, c1);
      }
    });
  }

  /// Columns per panel of EgruKernel::Panels: what weighted_sum_rows holds in registers.
  static constexpr std::size_t kPanel = detail::weighted_sum_panel<T, simd::default_arch>;
  /// Batch rows whose dL/dy of one unit the sparse backward gathers at a time.
  static constexpr std::size_t kMaxDotBatch = 64;
  /// Columns per task of EgruKernel::Rows (a multiple of every SIMD width).
  static constexpr std::size_t kRowBlock = 512;
  static_assert(kRowBlock % std::max<std::size_t>(simd::lanes<T, simd::default_arch>, 1) == 0);

  /// Events of one step grouped by unit: for unit i, entries offsets[i] .. offsets[i + 1] list the batch
  /// rows with y[b, i] != 0 and the values; `units` lists the units with at least one event.
  struct UnitGroups {
    std::vector<std::uint32_t> units, offsets, batch;
    std::vector<T> value;
  };
  void group_by_unit(const std::vector<std::uint32_t>* events, const T* y, std::size_t B,
                     UnitGroups& g) const {
    const std::size_t H = hidden_;
    g.offsets.assign(H + 1, 0);
    for (std::size_t b = 0; b < B; ++b)
      for (std::uint32_t i : events[b]) ++g.offsets[i + 1];
    g.units.clear();
    for (std::size_t i = 0; i < H; ++i) {
      if (g.offsets[i + 1] != 0) g.units.push_back(static_cast<std::uint32_t>(i));
      g.offsets[i + 1] += g.offsets[i];
    }
    g.batch.resize(g.offsets[H]);
    g.value.resize(g.offsets[H]);
    std::vector<std::uint32_t> fill(g.offsets.begin(), g.offsets.end() - 1);
    for (std::size_t b = 0; b < B; ++b)
      for (std::uint32_t i : events[b]) {
        const std::uint32_t e = fill[i]++;
        g.batch[e] = static_cast<std::uint32_t>(b);
        g.value[e] = y[b * H + i];
      }
  }
  /// Column blocks for the grouped kernels: the outputs of all batch rows in one block fit in about 64 KiB,
  /// and there are at least as many blocks as threads (when the rows are long enough).
  static std::size_t column_blocks(std::size_t B, std::size_t G) {
    const std::size_t fit = std::max<std::size_t>(256, (16384 / std::max<std::size_t>(B, 1)) / 16 * 16);
    std::size_t nb = (G + fit - 1) / fit;
    const std::size_t threads = static_cast<std::size_t>(max_threads());
    if (nb < threads) nb = std::min(threads, std::max<std::size_t>(1, G / 256));
    return std::max<std::size_t>(nb, 1);
  }

  static double sample_gamma(Rng& rng, double shape) {
    // Marsaglia and Tsang; shape < 1 by the boost U^(1/shape)
    if (shape < 1.0)
      return sample_gamma(rng, shape + 1.0) * std::pow(rng.uniform<double>() + 1e-300, 1.0 / shape);
    const double d = shape - 1.0 / 3.0, c = 1.0 / std::sqrt(9.0 * d);
    for (;;) {
      double x = 0, v = 0;
      do {
        x = rng.normal<double>();
        v = 1.0 + c * x;
      } while (v <= 0.0);
      v = v * v * v;
      const double u = rng.uniform<double>();
      if (u < 1.0 - 0.0331 * x * x * x * x) return d * v;
      if (std::log(u + 1e-300) < 0.5 * x * x + d * (1.0 - v + std::log(v))) return d * v;
    }
  }
  static double sample_beta(Rng& rng, double a, double b) {
    const double x = sample_gamma(rng, a), y = sample_gamma(rng, b);
    return x / (x + y);
  }

  static void validate_options(const EgruOptions& o) {
    check(o.dampening >= 0.0 && o.support > 0.0, "EgruOptions: dampening must be >= 0 and support > 0, got ",
          o.dampening, " and ", o.support);
    check(o.zoneout >= 0.0 && o.zoneout < 1.0, "EgruOptions: zoneout must be in [0, 1), got ", o.zoneout);
    check(o.dropconnect >= 0.0 && o.dropconnect < 1.0, "EgruOptions: dropconnect must be in [0, 1), got ",
          o.dropconnect);
    check(std::isfinite(o.activity_penalty), "EgruOptions: activity_penalty must be finite, got ",
          o.activity_penalty);
    check(o.mode == EgruMode::EventDriven || o.mode == EgruMode::Dense, "EgruOptions: unknown mode ",
          static_cast<int>(o.mode));
    check(o.kernel == EgruKernel::Rows || o.kernel == EgruKernel::Panels, "EgruOptions: unknown kernel ",
          static_cast<int>(o.kernel));
  }

  std::size_t input_ = 0, hidden_ = 0;
  EgruOptions opt_{};
  Parameter<T>* kernel_ = nullptr;
  Parameter<T>* recurrent_kernel_ = nullptr;
  Parameter<T>* bias_ = nullptr;
  Parameter<T>* recurrent_bias_ = nullptr;
  Parameter<T>* thr_ = nullptr;
};

/// The EGRU layer as a tape op: x [T, B, in] -> y [T, B, H] from state y0 and h0 ([B, H]; empty: zeros —
/// EvNN's layer forward takes y0 and starts h from zero). `last_h` receives h after the last step when given
/// (for streaming). Gradients reach x and the layer's parameters. With training = false (or grad mode off)
/// no cache is kept.
template <class T>
Var<T> egru(const EgruLayer<T>& layer, const Var<T>& x, TensorView<const T> y0, bool training,
            Rng* rng = nullptr, EgruActivity* activity = nullptr, TensorView<const T> h0 = {},
            Tensor<T>* last_h = nullptr) {
  Tape<T>& tape = x.tape();
  const auto xv = x.value();
  check(xv.rank() == 3, "egru: input must be [T, B, in], got ", xv.shape());
  const std::size_t T_ = xv.dim(0), B = xv.dim(1), H = layer.hidden_size();
  Tensor<T> y({T_, B, H}, uninitialized);
  Tensor<T> hseq = last_h ? Tensor<T>({T_, B, H}, uninitialized) : Tensor<T>();
  const Var<T> w = tape.param(layer.kernel()), r = tape.param(layer.recurrent_kernel()),
               bx = tape.param(layer.bias()), br = tape.param(layer.recurrent_bias()),
               th = tape.param(layer.thr());
  const bool record = training && grad_enabled();
  auto cache = record ? std::make_shared<EgruCache<T>>() : nullptr;
  layer.forward(xv, y0, h0, y.view(), hseq.view(), {}, training, rng, cache.get(), activity);
  if (last_h) {
    *last_h = Tensor<T>({B, H}, uninitialized);
    if (T_ > 0)
      std::copy(hseq.data() + (T_ - 1) * B * H, hseq.data() + T_ * B * H, last_h->data());
    else if (!h0.empty())
      std::copy(h0.begin(), h0.end(), last_h->data());
    else
      last_h->fill(T(0));
  }
  if (!record) return tape.constant(std::move(y));
  const std::size_t xi = x.index(), wi = w.index(), ri = r.index(), bxi = bx.index(), bri = br.index(),
                    thi = th.index();
  const EgruLayer<T>* lp = &layer;
  return tape.push(std::move(y), {x, w, r, bx, br, th}, [=](Tape<T>& tp, std::size_t self) {
    EgruGrads<T> g;
    lp->backward(*cache, tp.grad(self), {}, {}, g, activity);
    auto put = [&](std::size_t i, const Tensor<T>& v) {
      if (tp.requires_grad(i)) tp.slot(i).put(v.data(), v.size());
    };
    put(xi, g.x);
    put(wi, g.kernel);
    put(ri, g.recurrent_kernel);
    put(bxi, g.bias);
    put(bri, g.recurrent_bias);
    put(thi, g.thr);
  });
}

SPIKELM_NAMESPACE_END

#endif // SPIKELM_MODELS_EGRU_LAYER_HPP
