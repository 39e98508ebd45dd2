// spikelm: SpikingBERT, the spiking BERT encoder of SPEC §2 (IF populations K, V, A, SO, IM, O per layer),
// its T-step event-driven simulation, its training graph (the clamp network at equilibrium) and the
// TinyBERT-style distillation losses against a BERT teacher.
#ifndef SPIKELM_MODELS_SPIKING_BERT_HPP
#define SPIKELM_MODELS_SPIKING_BERT_HPP

#include "../autograd/ops.hpp"
#include "../config.hpp"
#include "../core/error.hpp"
#include "../core/linalg.hpp"
#include "../core/tensor.hpp"
#include "../equilibrium/implicit.hpp"
#include "../neuron/neurons.hpp"
#include "../simd/elementwise.hpp"
#include "../simd/rowwise.hpp"
#include "../spike/accumulate.hpp"
#include "../spike/spike_tensor.hpp"
#include "bert.hpp"

#include <array>
#include <cmath>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

SPIKELM_NAMESPACE_BEGIN

/// The six IF populations of a SpikingBERT layer, in simulation order.
enum class BertPopulation : std::size_t { K = 0, V, A, SO, IM, O };
inline constexpr std::size_t bert_population_count = 6;
inline constexpr std::array<const char*, bert_population_count> bert_population_names{"K",  "V",  "A",
                                                                                      "SO", "IM", "O"};

/// How SpikingBert::simulate computes the inputs of spike-fed layers: adding the weight rows of active
/// inputs (EventDriven) or dense products with the 0/1 spike matrix (Dense, the baseline).
enum class SpikeCompute { EventDriven, Dense };

/// Result of a T-step simulation.
template <class T>
struct SpikingBertRun {
  std::size_t steps = 0;
  Tensor<T> embedding_rates; ///< [B, L, d] rates of the embedding population E
  /// rates[layer][population] [B, L, width] (width d, except IM: intermediate)
  std::vector<std::array<Tensor<T>, bert_population_count>> rates;
  Tensor<T> logits; ///< [B, labels] classifier(ReLU(a_O[:, 0])) of the last layer (empty without labels)
  /// Spikes emitted over the run by E and per layer and population (the synaptic events).
  double embedding_spikes = 0.0;
  std::vector<std::array<double, bert_population_count>> spikes;
  /// With feedback: the last layer's O spikes fed back into E through W_s (those of steps 0..T-2).
  double feedback_spikes = 0.0;

  /// The rates of the last layer's output population O, [B, L, d].
  [[nodiscard]] const Tensor<T>& output_rates() const { return rates.back()[5]; }
  /// Mean rate of population p of layer l.
  [[nodiscard]] double mean_rate(std::size_t l, BertPopulation p) const {
    const Tensor<T>& r = rates.at(l)[static_cast<std::size_t>(p)];
    double s = 0.0;
    for (T v : r.span()) s += static_cast<double>(v);
    return r.size() ? s / static_cast<double>(r.size()) : 0.0;
  }
};

/// What SpikingBert::forward_train records on the tape.
template <class T>
struct SpikingBertTrainOutputs {
  /// [B, L, d] for E and every layer's O: the simulated rates as values; gradients flow into the clamp
  /// network (SPEC §2's straight-through gradient at equilibrium, as in the released model).
  std::vector<Var<T>> reps;
  /// [B, heads, L, L] per layer: the masked pre-softmax scores of the clamp network.
  std::vector<Var<T>> scores;
  Var<T> logits; ///< [B, labels] classifier(ReLU(reps.back()[:, 0]))
  SpikingBertRun<T> run;
};

/// Where SpikingBert::forward_train takes the equilibrium of a model with feedback from.
enum class EquilibriumSource {
  /// The simulated rates of the last layer's O (the released method: the forward pass is the spiking
  /// network; the clamp network only carries gradients).
  Simulation,
  /// The fixed point of the clamp network, solved with the options' forward solver (no spikes in the
  /// training graph: useful to check the implicit gradient against unrolling).
  ClampFixedPoint,
};

/// Options of a SpikingBert beyond its BERT shape.
struct SpikingBertOptions {
  double threshold = 1.0; ///< vth of every IF population
  /// Feedback W_s from the last layer's O spikes to the embedding population E (SPEC §2's general case):
  /// E receives LayerNorm(embedding) + W_s s_O(t - 1). The released SpikingBERT has none.
  bool feedback = false;
  /// Solvers of the implicit gradient (and of the forward solve with EquilibriumSource::ClampFixedPoint),
  /// used only with feedback. Backward: Broyden with 30 iterations, as the released training.
  EquilibriumOptions equilibrium{Solver::Anderson, {}, Solver::Broyden, SolverOptions{.max_iterations = 30}};
};

/// The spiking student: a BERT-shaped encoder whose every population is an IF neuron (threshold vth,
/// subtract reset, no leak), driven T steps by the embedding as a constant current (SPEC §2). Parameter
/// names are Hugging Face BERT names (no pooler) plus classifier.{weight,bias} and fit_dense.{weight,bias}
/// (W_fit of the hidden-state distillation), so a teacher of the same shape initialises it.
template <class T>
class SpikingBert {
 public:
  using Neuron = SpikingBertIF<T>;

  explicit SpikingBert(BertConfig cfg, SpikingBertOptions opt = {})
      : cfg_(cfg), opt_(opt), p_(cfg, BertParts{false, cfg.labels > 0, true, opt.feedback}),
        neuron_(static_cast<T>(opt.threshold)) {}
  SpikingBert(const SpikingBert&) = delete;
  SpikingBert& operator=(const SpikingBert&) = delete;

  [[nodiscard]] const BertConfig& config() const noexcept { return cfg_; }
  [[nodiscard]] T threshold() const noexcept { return neuron_.theta; }
  [[nodiscard]] const SpikingBertOptions& options() const noexcept { return opt_; }
  /// The forward and backward solves of the last forward_train / backward with feedback.
  [[nodiscard]] const EquilibriumStats& equilibrium_stats() const noexcept { return *stats_; }
  [[nodiscard]] ParameterSet<T>& parameters() noexcept { return p_.set(); }
  [[nodiscard]] const ParameterSet<T>& parameters() const noexcept { return p_.set(); }
  void reset_parameters(Rng& rng, double std = 0.02) { p_.reset(rng, std); }
  void set_parameter(const std::string& name, TensorView<const T> value) {
    p_.set(name, value, "SpikingBert::set_parameter");
  }
  /// Copies every parameter the teacher has under the same name and shape (embeddings, and the encoder
  /// layers 0..L_student-1); returns how many were copied.
  std::size_t init_from(const ParameterSet<T>& teacher) {
    std::size_t n = 0;
    p_.set().for_each([&](Parameter<T>& p) {
      if (teacher.contains(p.name) && teacher[p.name].shape() == p.shape()) {
        p.value.copy_from(teacher[p.name].value);
        ++n;
      }
    });
    return n;
  }

  /// Simulates `steps` time steps on `batch` (no tape) and returns the rates of every population and the
  /// logits. Each step runs E, then per layer K, V, A, SO, IM, O, each fed by the spikes of the same step.
  [[nodiscard]] SpikingBertRun<T> simulate(const BertBatch& batch, std::size_t steps,
                                           SpikeCompute mode = SpikeCompute::EventDriven) const {
    batch.validate(cfg_);
    check(steps > 0, "SpikingBert::simulate: needs at least one time step");
    const std::size_t R = batch.batch * batch.length, d = cfg_.hidden, f = cfg_.intermediate;
    const T eps = static_cast<T>(cfg_.layer_norm_eps);
    // the embedding current, computed once
    Tensor<T> x_e({R, d}, uninitialized);
    {
      const std::vector<std::int64_t> pos = batch.positions(), types = batch.type_ids();
      for (std::size_t r = 0; r < R; ++r) {
        T* dst = x_e.data() + r * d;
        const T* w = p_.word->value.data() + static_cast<std::size_t>(batch.ids[r]) * d;
        const T* ps = p_.position->value.data() + static_cast<std::size_t>(pos[r]) * d;
        const T* ty = p_.token_type->value.data() + static_cast<std::size_t>(types[r]) * d;
        for (std::size_t c = 0; c < d; ++c) dst[c] = w[c] + ps[c] + ty[c];
      }
      simd::layernorm_rows(x_e.data(), p_.emb_norm.g->value.data(), p_.emb_norm.b->value.data(), x_e.data(),
                           static_cast<T*>(nullptr), static_cast<T*>(nullptr), R, d, eps);
    }
    const std::vector<T> bias = batch.key_bias<T>();
    // input-major copies of the weights fed by spikes (spike_matmul adds rows of W^T)
    struct LayerWeights {
      Tensor<T> q, k, v, ao, im, o;
    };
    std::vector<LayerWeights> wt(cfg_.layers);
    for (std::size_t l = 0; l < cfg_.layers; ++l) {
      const detail::BertLayer<T>& L = p_.layers[l];
      wt[l] = {transposed(L.query.w->value),    transposed(L.key.w->value),   transposed(L.value.w->value),
               transposed(L.attn_out.w->value), transposed(L.inter.w->value), transposed(L.out.w->value)};
    }
    // state
    SpikingBertRun<T> run;
    run.steps = steps;
    run.embedding_rates = Tensor<T>({batch.batch, batch.length, d});
    run.rates.resize(cfg_.layers);
    run.spikes.assign(cfg_.layers, {});
    typename Neuron::State u_e = neuron_.initial_state(R * d);
    std::vector<std::array<typename Neuron::State, bert_population_count>> u(cfg_.layers);
    std::vector<std::array<Tensor<T>, bert_population_count>> s(cfg_.layers);
    for (std::size_t l = 0; l < cfg_.layers; ++l)
      for (std::size_t p = 0; p < bert_population_count; ++p) {
        const std::size_t w = p == 4 ? f : d;
        u[l][p] = neuron_.initial_state(R * w);
        s[l][p] = Tensor<T>({R, w});
        run.rates[l][p] = Tensor<T>({batch.batch, batch.length, w});
      }
    Tensor<T> s_e({R, d}), cur_d({R, d}, uninitialized), cur_f({R, f}, uninitialized),
        q({R, d}, uninitialized);
    Tensor<T> probs({batch.batch, cfg_.heads, batch.length, batch.length}, uninitialized);
    Tensor<T> fb_t, cur_e;
    if (opt_.feedback) {
      fb_t = transposed(p_.feedback->value);
      cur_e = Tensor<T>({R, d}, uninitialized);
    }

    for (std::size_t t = 0; t < steps; ++t) {
      if (opt_.feedback && t > 0) { // E += W_s s_O(t - 1): the last layer's spikes of the previous step
        const Tensor<T>& s_o = s[cfg_.layers - 1][5];
        run.feedback_spikes += static_cast<double>(simd::sum(s_o.data(), s_o.size()));
        if (mode == SpikeCompute::EventDriven)
          spike_matmul(SpikeTensor::from_dense(s_o.cview()), fb_t, cur_e);
        else
          matmul(s_o, fb_t, cur_e);
        simd::add(cur_e.data(), x_e.data(), cur_e.data(), R * d);
        neuron_.step(cur_e.data(), u_e, s_e.data());
      } else {
        neuron_.step(x_e.data(), u_e, s_e.data());
      }
      accumulate_rates(s_e, run.embedding_rates, run.embedding_spikes);
      const Tensor<T>* s_in = &s_e;
      for (std::size_t l = 0; l < cfg_.layers; ++l) {
        const detail::BertLayer<T>& L = p_.layers[l];
        auto& sl = s[l];
        const SpikeTensor in_events = SpikeTensor::from_dense(s_in->cview());
        auto fire = [&](std::size_t p, const Tensor<T>& current) {
          neuron_.step(current.data(), u[l][p], sl[p].data());
          accumulate_rates(sl[p], run.rates[l][p], run.spikes[l][p]);
        };
        // K and V
        spike_linear_into(in_events, *s_in, wt[l].k, *L.key.b, cur_d, mode);
        fire(0, cur_d);
        spike_linear_into(in_events, *s_in, wt[l].v, *L.value.b, cur_d, mode);
        fire(1, cur_d);
        // A: real Q, spike K and V
        spike_linear_into(in_events, *s_in, wt[l].q, *L.query.b, q, mode);
        spiking_attention(q, sl[0], sl[1], bias, batch.batch, batch.length, probs, cur_d, mode);
        fire(2, cur_d);
        // SO = LayerNorm(W s_A + b + s_in)
        spike_linear_into(SpikeTensor::from_dense(sl[2].cview()), sl[2], wt[l].ao, *L.attn_out.b, cur_d,
                          mode);
        simd::add(cur_d.data(), s_in->data(), cur_d.data(), R * d);
        norm_rows(cur_d, L.attn_norm, eps);
        fire(3, cur_d);
        // IM = GELU(W s_SO + b)
        spike_linear_into(SpikeTensor::from_dense(sl[3].cview()), sl[3], wt[l].im, *L.inter.b, cur_f, mode);
        simd::gelu(cur_f.data(), cur_f.data(), R * f);
        fire(4, cur_f);
        // O = LayerNorm(W s_IM + b + s_SO)
        spike_linear_into(SpikeTensor::from_dense(sl[4].cview()), sl[4], wt[l].o, *L.out.b, cur_d, mode);
        simd::add(cur_d.data(), sl[3].data(), cur_d.data(), R * d);
        norm_rows(cur_d, L.out_norm, eps);
        fire(5, cur_d);
        s_in = &sl[5];
      }
    }
    const T inv = T(1) / static_cast<T>(steps);
    simd::scale(inv, run.embedding_rates.data(), run.embedding_rates.data(), run.embedding_rates.size());
    for (auto& layer : run.rates)
      for (Tensor<T>& r : layer) simd::scale(inv, r.data(), r.data(), r.size());
    if (cfg_.labels > 0) run.logits = classify(run.output_rates());
    return run;
  }

  /// classifier(ReLU(rates[:, 0])) for output rates [B, L, d] (plain math, no tape).
  [[nodiscard]] Tensor<T> classify(const Tensor<T>& rates) const {
    check(cfg_.labels > 0, "SpikingBert::classify: the model has no classifier (labels = 0)");
    const std::size_t B = rates.dim(0), L = rates.dim(1), d = cfg_.hidden, C = cfg_.labels;
    Tensor<T> out({B, C}, uninitialized);
    const T* w = p_.classifier.w->value.data();
    const T* b = p_.classifier.b->value.data();
    for (std::size_t i = 0; i < B; ++i)
      for (std::size_t c = 0; c < C; ++c) {
        T acc = b[c];
        const T* x = rates.data() + i * L * d;
        for (std::size_t j = 0; j < d; ++j) acc += w[c * d + j] * std::max(x[j], T(0));
        out.data()[i * C + c] = acc;
      }
    return out;
  }

  /// Training forward. Simulates `steps` steps, then records the clamp network a = clamp(f(a_prev) / vth,
  /// 0, 1) from the embedding on the tape and replaces the values of E and every layer's O by the simulated
  /// rates (their gradient goes to the clamp network unchanged; SPEC §2's straight-through gradient, exact
  /// when there is no feedback). With feedback, the last layer's O is the equilibrium a* of the map
  /// a -> chain(clamp((W_s a + E) / vth)); its gradient is found by implicit differentiation (the adjoint
  /// fixed point, solved with options().equilibrium; memory does not grow with T or the iterations). With
  /// EquilibriumSource::ClampFixedPoint, a* is the clamp network's own fixed point and no value is replaced.
  SpikingBertTrainOutputs<T> forward_train(Tape<T>& tape, const BertBatch& batch, std::size_t steps,
                                           EquilibriumSource source = EquilibriumSource::Simulation) {
    SpikingBertTrainOutputs<T> o;
    const bool simulated = source == EquilibriumSource::Simulation;
    if (simulated) o.run = simulate(batch, steps);
    const T eps = static_cast<T>(cfg_.layer_norm_eps);
    const std::size_t B = batch.batch, Lq = batch.length, d = cfg_.hidden;
    const std::vector<T> bias = batch.key_bias<T>();
    const Var<T> emb = p_.embed(tape, batch, eps);
    // E is population -1, layer l's O is l (the run holds no rates without simulation)
    auto replace = [&](const Var<T>& v, std::ptrdiff_t l) {
      if (!simulated) return v;
      return straight_through(v, l < 0 ? o.run.embedding_rates : o.run.rates[static_cast<std::size_t>(l)][5]);
    };
    Var<T> a_e;
    if (!opt_.feedback) {
      a_e = clamp_rate(emb);
    } else {
      const EquilibriumMap<T> f = [this, &bias](Tape<T>& tp, const Var<T>& z, std::span<const Var<T>> in) {
        return chain(clamp_rate(add(linear(z, tp.param(*p_.feedback)), in[0])), bias, nullptr, nullptr);
      };
      const std::array<Var<T>, 1> inputs{emb};
      Var<T> z;
      if (simulated) {
        z = implicit_at<T>(f, inputs, o.run.output_rates(), opt_.equilibrium, stats_, &o.run.output_rates());
      } else {
        z = equilibrium<T>(f, inputs, Tensor<T>(Shape{B, Lq, d}), opt_.equilibrium, stats_);
      }
      a_e = clamp_rate(add(linear(z, tape.param(*p_.feedback)), emb));
    }
    o.reps.push_back(replace(a_e, -1));
    std::vector<Var<T>> outs;
    chain(a_e, bias, &outs, &o.scores);
    for (std::size_t l = 0; l < cfg_.layers; ++l)
      o.reps.push_back(replace(outs[l], static_cast<std::ptrdiff_t>(l)));
    if (cfg_.labels > 0) {
      const Var<T> cls = reshape(slice(reshape(o.reps.back(), {B, Lq * d}), 1, 0, d), {B, d});
      o.logits = p_.lin(relu(cls), p_.classifier);
    }
    return o;
  }

  /// fit_dense(rep): W_fit maps a student representation [.., d] to the teacher's width.
  Var<T> fit(const Var<T>& rep) { return p_.lin(rep, p_.fit_dense); }

 private:
  static Tensor<T> transposed(const Tensor<T>& w) {
    Tensor<T> t({w.dim(1), w.dim(0)}, uninitialized);
    as_matrix(t) = as_matrix(w).transpose();
    return t;
  }
  /// clamp(x / vth, 0, 1): the rate of an IF population driven by the constant current x.
  Var<T> clamp_rate(const Var<T>& x) const {
    const T inv = T(1) / neuron_.theta;
    return clamp(inv == T(1) ? x : scale(x, inv), T(0), T(1));
  }
  /// The clamp network of every layer from the embedding rates a_e; returns the last layer's O and, when
  /// asked, every layer's O and scores.
  Var<T> chain(Var<T> a_in, const std::vector<T>& bias, std::vector<Var<T>>* outs,
               std::vector<Var<T>>* scores) {
    const T eps = static_cast<T>(cfg_.layer_norm_eps);
    const T scale = T(1) / std::sqrt(static_cast<T>(cfg_.head_dim()));
    for (std::size_t l = 0; l < cfg_.layers; ++l) {
      const detail::BertLayer<T>& L = p_.layers[l];
      const Var<T> a_k = clamp_rate(p_.lin(a_in, L.key)), a_v = clamp_rate(p_.lin(a_in, L.value));
      const Var<T> sc =
          attention_scores(p_.lin(a_in, L.query), a_k, cfg_.heads, scale, std::span<const T>(bias));
      if (scores) scores->push_back(sc);
      const Var<T> a_a = clamp_rate(attention_context(softmax(sc), a_v, cfg_.heads));
      const Var<T> a_so = clamp_rate(p_.norm(add(p_.lin(a_a, L.attn_out), a_in), L.attn_norm, eps));
      const Var<T> a_im = clamp_rate(gelu(p_.lin(a_so, L.inter)));
      a_in = clamp_rate(p_.norm(add(p_.lin(a_im, L.out), a_so), L.out_norm, eps));
      if (outs) outs->push_back(a_in);
    }
    return a_in;
  }
  /// A node whose value is `value` and whose gradient passes to `surrogate` unchanged.
  static Var<T> straight_through(const Var<T>& surrogate, const Tensor<T>& value) {
    check(surrogate.value().size() == value.size(), "straight_through: ", surrogate.value().shape(), " vs ",
          value.shape());
    Tensor<T> v(surrogate.value().shape(), uninitialized);
    std::copy(value.data(), value.data() + value.size(), v.data());
    const std::size_t si = surrogate.index();
    return surrogate.tape().push(std::move(v), {surrogate},
                                 [si](Tape<T>& tp, std::size_t self) { tp.accumulate(si, tp.grad(self)); });
  }
  static void accumulate_rates(const Tensor<T>& s, Tensor<T>& acc, double& count) {
    simd::add(acc.data(), s.data(), acc.data(), s.size());
    count += static_cast<double>(simd::sum(s.data(), s.size()));
  }
  void norm_rows(Tensor<T>& x, const detail::BertNorm<T>& n, T eps) const {
    simd::layernorm_rows(x.data(), n.g->value.data(), n.b->value.data(), x.data(), static_cast<T*>(nullptr),
                         static_cast<T*>(nullptr), x.dim(0), x.dim(1), eps);
  }
  /// out = s W^T + b with s the 0/1 spikes [R, n_in] and wt = W^T [n_in, n_out].
  static void spike_linear_into(const SpikeTensor& events, const Tensor<T>& dense, const Tensor<T>& wt,
                                const Parameter<T>& b, Tensor<T>& out, SpikeCompute mode) {
    const std::size_t R = dense.dim(0), n = wt.dim(1);
    if (mode == SpikeCompute::EventDriven)
      spike_matmul(events, wt, out);
    else
      matmul(dense, wt, out);
    for (std::size_t r = 0; r < R; ++r) simd::add(out.data() + r * n, b.value.data(), out.data() + r * n, n);
  }
  /// I_A = concat_h softmax(Q_h s_K,h^T / sqrt(d_head) + bias) s_V,h for q [R, d] real and s_k, s_v 0/1.
  void spiking_attention(const Tensor<T>& q, const Tensor<T>& s_k, const Tensor<T>& s_v,
                         const std::vector<T>& bias, std::size_t B, std::size_t L, Tensor<T>& probs,
                         Tensor<T>& out, SpikeCompute mode) const {
    const std::size_t H = cfg_.heads, d = cfg_.hidden, dh = cfg_.head_dim();
    const T scale = T(1) / std::sqrt(static_cast<T>(dh));
    if (mode == SpikeCompute::Dense) {
      for (std::size_t b = 0; b < B; ++b)
        for (std::size_t h = 0; h < H; ++h) {
          MatrixMap<T> S(probs.data() + (b * H + h) * L * L, static_cast<Eigen::Index>(L),
                         static_cast<Eigen::Index>(L));
          S.noalias() = scale * detail::head_of(q.data() + b * L * d + h * dh, L, dh, d) *
                        detail::head_of(s_k.data() + b * L * d + h * dh, L, dh, d).transpose();
        }
    } else {
      probs.fill(T(0));
      const SpikeTensor kev = SpikeTensor::from_dense(s_k.cview());
      for (std::size_t b = 0; b < B; ++b)
        for (std::size_t k = 0; k < L; ++k)
          for (const auto c : kev.events(b * L + k)) {
            const std::size_t h = c / dh;
            T* col = probs.data() + (b * H + h) * L * L + k;
            const T* qc = q.data() + b * L * d + c;
            for (std::size_t i = 0; i < L; ++i) col[i * L] += qc[i * d];
          }
      simd::scale(scale, probs.data(), probs.data(), probs.size());
    }
    for (std::size_t bh = 0; bh < B * H; ++bh)
      for (std::size_t i = 0; i < L; ++i) {
        T* row = probs.data() + (bh * L + i) * L;
        simd::add(row, bias.data() + (bh / H) * L, row, L);
      }
    simd::softmax_rows(probs.data(), probs.data(), B * H * L, L);
    if (mode == SpikeCompute::Dense) {
      for (std::size_t b = 0; b < B; ++b)
        for (std::size_t h = 0; h < H; ++h)
          detail::head_of(out.data() + b * L * d + h * dh, L, dh, d).noalias() =
              MatrixMap<const T>(probs.data() + (b * H + h) * L * L, static_cast<Eigen::Index>(L),
                                 static_cast<Eigen::Index>(L)) *
              detail::head_of(s_v.data() + b * L * d + h * dh, L, dh, d);
      return;
    }
    out.fill(T(0));
    const SpikeTensor vev = SpikeTensor::from_dense(s_v.cview());
    for (std::size_t b = 0; b < B; ++b)
      for (std::size_t k = 0; k < L; ++k)
        for (const auto c : vev.events(b * L + k)) {
          const std::size_t h = c / dh;
          const T* pcol = probs.data() + (b * H + h) * L * L + k;
          T* oc = out.data() + b * L * d + c;
          for (std::size_t i = 0; i < L; ++i) oc[i * d] += pcol[i * L];
        }
  }

  BertConfig cfg_;
  SpikingBertOptions opt_;
  detail::BertParameters<T> p_;
  Neuron neuron_;
  std::shared_ptr<EquilibriumStats> stats_ = std::make_shared<EquilibriumStats>();
};

// ---- distillation (TinyBERT's losses, SPEC §2)
// -------------------------------------------------------------

/// The teacher layer that student layer k (0 = embedding) learns from: k x teacher_layers / student_layers.
/// The teacher's depth must be a multiple of the student's.
inline std::size_t bert_teacher_layer(std::size_t k, std::size_t student_layers, std::size_t teacher_layers) {
  check(student_layers > 0 && teacher_layers % student_layers == 0, "distillation: the teacher's ",
        teacher_layers, " layers are not a multiple of the student's ", student_layers);
  return k * (teacher_layers / student_layers);
}

/// Hidden-state loss: sum over k = 0..Ls of MSE(fitted[k], teacher_hidden[k r]) (fitted = W_fit a_k).
template <class T>
Var<T> distill_hidden_loss(std::span<const Var<T>> fitted, std::span<const Tensor<T>> teacher_hidden) {
  check(!fitted.empty() && teacher_hidden.size() >= 2, "distill_hidden_loss: needs the embedding and ",
        "at least one layer on both sides");
  const std::size_t Ls = fitted.size() - 1, Lt = teacher_hidden.size() - 1;
  Tape<T>& tape = fitted[0].tape();
  Var<T> loss;
  for (std::size_t k = 0; k <= Ls; ++k) {
    const Var<T> term =
        mse_loss(fitted[k], tape.constant(Tensor<T>(teacher_hidden[bert_teacher_layer(k, Ls, Lt)].cview())));
    loss = k == 0 ? term : add(loss, term);
  }
  return loss;
}

/// x where x > -100, else 0 (TinyBERT zeroes the masked attention scores before comparing them).
template <class T>
Var<T> zero_masked_scores(const Var<T>& x) {
  return detail::unary(
      x,
      [](const T* in, T* out, std::size_t n) {
        for (std::size_t i = 0; i < n; ++i) out[i] = in[i] <= T(-100) ? T(0) : in[i];
      },
      [](const T* xin, const T*, const T* dy, T* dx, std::size_t n) {
        for (std::size_t i = 0; i < n; ++i) dx[i] = xin[i] <= T(-100) ? T(0) : dy[i];
      });
}

/// Attention loss: sum over student layers k = 1..Ls of MSE(S_student^k, S_teacher^{k r}) on masked
/// pre-softmax scores with entries <= -100 set to 0 on both sides.
template <class T>
Var<T> distill_attention_loss(std::span<const Var<T>> student_scores,
                              std::span<const Tensor<T>> teacher_scores) {
  check(!student_scores.empty() && !teacher_scores.empty(), "distill_attention_loss: no layers");
  const std::size_t Ls = student_scores.size(), Lt = teacher_scores.size();
  Tape<T>& tape = student_scores[0].tape();
  Var<T> loss;
  for (std::size_t k = 1; k <= Ls; ++k) {
    Tensor<T> t(teacher_scores[bert_teacher_layer(k, Ls, Lt) - 1].cview());
    for (T& v : t.span())
      if (v <= T(-100)) v = T(0);
    const Var<T> term = mse_loss(zero_masked_scores(student_scores[k - 1]), tape.constant(std::move(t)));
    loss = k == 1 ? term : add(loss, term);
  }
  return loss;
}

SPIKELM_NAMESPACE_END

#endif // SPIKELM_MODELS_SPIKING_BERT_HPP
