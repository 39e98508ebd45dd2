// spikelm: the EGRU language model (AWD-style, as EvNN's LM benchmark).
//
// tokens -> embedding (embedding dropout: whole rows of the table dropped) -> variational dropout ->
// L EGRU layers (the last as wide as the embedding; variational dropout between layers) -> variational
// dropout -> decoder tied to the embedding (logits = y E^T + b) -> log-softmax.
// Parameter names are those of EvNN's LanguageModel state dict: embeddings.weight, rnns.{l}.kernel,
// rnns.{l}.recurrent_kernel, rnns.{l}.bias, rnns.{l}.recurrent_bias, rnns.{l}.thr, decoder.decoder.bias
// (decoder.decoder.weight is the embedding itself).
//
// Layout: internally time-major. forward() takes tokens [B, T] (batch-major, as the reference) and returns
// log-probabilities with rows in time-major order (row t * B + b); for B = 1 that is simply [T, V].
// Variational dropout uses the reference's mask shape: one mask per (time, feature), shared by the batch
// (EvNN's VariationalDropout draws [1, x.size(1), x.size(2)] on batch-first tensors).
#ifndef SPIKELM_MODELS_EGRU_LM_HPP
#define SPIKELM_MODELS_EGRU_LM_HPP

#include "../autograd/ops.hpp"
#include "../autograd/parameter.hpp"
#include "../autograd/tape.hpp"
#include "../config.hpp"
#include "../core/error.hpp"
#include "../core/rng.hpp"
#include "egru_layer.hpp"

#include <cstdint>
#include <span>
#include <string>
#include <vector>

SPIKELM_NAMESPACE_BEGIN

struct EgruLmConfig {
  std::size_t vocab = 0;
  std::size_t embedding = 64; ///< also the last layer's width (tied decoder)
  std::size_t hidden = 128;   ///< width of the other layers
  std::size_t layers = 3;
  double dropout_words = 0.0;     ///< embedding dropout (rows of the table)
  double dropout_embedding = 0.0; ///< variational dropout on the embedded input
  double dropout_forward = 0.0;   ///< variational dropout between layers
  double dropout_output = 0.5;    ///< variational dropout before the decoder (fixed at 0.5 in the reference)
  double thr_mean = 0.3;          ///< mean of the Beta initialisation of the thresholds
  std::vector<double> layer_thr_mean; ///< per-layer means (empty: thr_mean for every layer)
  EgruOptions cell{}; ///< dampening, support, zoneout, dropconnect (DropConnect on R), mode, kernel, ...

  [[nodiscard]] std::size_t width(std::size_t l) const noexcept {
    return l + 1 == layers ? embedding : hidden;
  }
  [[nodiscard]] std::size_t input_width(std::size_t l) const noexcept { return l == 0 ? embedding : hidden; }
  void validate() const {
    check(vocab > 0 && embedding > 0 && hidden > 0 && layers > 0,
          "EgruLmConfig: vocab, embedding, hidden and ", "layers must be positive (got ", vocab, ", ",
          embedding, ", ", hidden, ", ", layers, ")");
    check(layer_thr_mean.empty() || layer_thr_mean.size() == layers, "EgruLmConfig: ", layer_thr_mean.size(),
          " per-layer threshold means for ", layers, " layers");
    for (double p : {dropout_words, dropout_embedding, dropout_forward, dropout_output})
      check(p >= 0.0 && p < 1.0, "EgruLmConfig: dropout probabilities must be in [0, 1), got ", p);
  }
};

/// Recurrent state carried between calls: per layer, the last event output y and internal state h ([B, H]).
template <class T>
struct EgruLmState {
  std::vector<Tensor<T>> y, h;
  [[nodiscard]] bool empty() const noexcept { return y.empty(); }
};

template <class T>
class EgruLM {
 public:
  explicit EgruLM(EgruLmConfig cfg) : cfg_(cfg) {
    cfg_.validate();
    embedding_ = &params_.add("embeddings.weight", Tensor<T>({cfg_.vocab, cfg_.embedding}));
    layers_.reserve(cfg_.layers);
    for (std::size_t l = 0; l < cfg_.layers; ++l)
      layers_.emplace_back(params_, "rnns." + std::to_string(l) + ".", cfg_.input_width(l), cfg_.width(l),
                           cfg_.cell);
    decoder_bias_ = &params_.add("decoder.decoder.bias", Tensor<T>({cfg_.vocab}));
  }
  EgruLM(const EgruLM&) = delete;
  EgruLM& operator=(const EgruLM&) = delete;

  /// The reference initialisation: embedding U(-0.1, 0.1), EGRU layers as EvNN, decoder bias 0.
  void reset_parameters(Rng& rng) {
    rng.fill_uniform(embedding_->value.span(), T(-0.1), T(0.1));
    for (std::size_t l = 0; l < layers_.size(); ++l)
      layers_[l].reset_parameters(rng, cfg_.layer_thr_mean.empty() ? cfg_.thr_mean : cfg_.layer_thr_mean[l]);
    decoder_bias_->value.fill(T(0));
  }

  [[nodiscard]] const EgruLmConfig& config() const noexcept { return cfg_; }
  [[nodiscard]] ParameterSet<T>& parameters() noexcept { return params_; }
  [[nodiscard]] const ParameterSet<T>& parameters() const noexcept { return params_; }
  [[nodiscard]] const EgruLayer<T>& layer(std::size_t l) const { return layers_.at(l); }
  [[nodiscard]] std::size_t num_layers() const noexcept { return layers_.size(); }
  /// Activity counts of the last forward (and backward) per layer.
  [[nodiscard]] const std::vector<EgruActivity>& activity() const noexcept { return activity_; }

  /// Sets the cell mode (event-driven or dense) of every layer.
  void set_mode(EgruMode mode) {
    for (auto& l : layers_) {
      EgruOptions o = l.options();
      o.mode = mode;
      l.set_options(o);
    }
    cfg_.cell.mode = mode;
  }

  /// Log-probabilities [T * B, V] (time-major rows) of the next token for tokens [B, T] given as a flat
  /// batch-major array. `state` (may be empty) gives each layer's y0 (and h0 if carry_h); it receives the
  /// final states. Thresholds are clamped to [0, 1] first, as EvNN does.
  Var<T> forward(Tape<T>& tape, std::span<const std::int64_t> tokens, std::size_t batch, bool training,
                 Rng* rng = nullptr, EgruLmState<T>* state = nullptr, bool carry_h = false) {
    return log_softmax(logits(tape, tokens, batch, training, rng, state, carry_h));
  }

  /// Mean negative log-likelihood of `targets` (same layout as tokens, batch-major [B, T]).
  Var<T> loss(Tape<T>& tape, std::span<const std::int64_t> tokens, std::span<const std::int64_t> targets,
              std::size_t batch, bool training, Rng* rng = nullptr, EgruLmState<T>* state = nullptr) {
    check(targets.size() == tokens.size(), "EgruLM::loss: ", targets.size(), " targets for ", tokens.size(),
          " tokens");
    const std::size_t steps = tokens.size() / batch;
    std::vector<std::int64_t> tm(targets.size());
    for (std::size_t b = 0; b < batch; ++b)
      for (std::size_t t = 0; t < steps; ++t) tm[t * batch + b] = targets[b * steps + t];
    return cross_entropy(logits(tape, tokens, batch, training, rng, state, false),
                         std::span<const std::int64_t>(tm));
  }

  /// Unnormalised decoder outputs [T * B, V] (time-major rows).
  Var<T> logits(Tape<T>& tape, std::span<const std::int64_t> tokens, std::size_t batch, bool training,
                Rng* rng, EgruLmState<T>* state, bool carry_h) {
    check(batch > 0 && tokens.size() % batch == 0, "EgruLM: ", tokens.size(),
          " tokens do not split into batch ", batch);
    const std::size_t steps = tokens.size() / batch;
    for (std::size_t i = 0; i < tokens.size(); ++i)
      check(tokens[i] >= 0 && static_cast<std::size_t>(tokens[i]) < cfg_.vocab, "EgruLM: token id ",
            tokens[i], " at position ", i, " is outside the vocabulary [0, ", cfg_.vocab, ")");
    const bool dropping =
        training && (cfg_.dropout_words > 0 || cfg_.dropout_embedding > 0 || cfg_.dropout_forward > 0 ||
                     cfg_.dropout_output > 0 || cfg_.cell.dropconnect > 0 || cfg_.cell.zoneout > 0);
    check(!dropping || rng != nullptr, "EgruLM: training with dropout needs an Rng");
    if (state && !state->empty()) {
      check(state->y.size() == layers_.size(), "EgruLM: state has ", state->y.size(), " layers, the model ",
            layers_.size());
      for (std::size_t l = 0; l < layers_.size(); ++l)
        check(state->y[l].shape() == Shape{batch, cfg_.width(l)}, "EgruLM: state of layer ", l, " is ",
              state->y[l].shape(), ", expected ", Shape{batch, cfg_.width(l)});
    }
    for (auto& l : layers_) l.clamp_thresholds();
    activity_.assign(layers_.size(), EgruActivity{});

    std::vector<std::int64_t> ids(tokens.size());
    for (std::size_t b = 0; b < batch; ++b)
      for (std::size_t t = 0; t < steps; ++t) ids[t * batch + b] = tokens[b * steps + t];
    Var<T> table = tape.param(*embedding_);
    Var<T> emb_table = table;
    if (training && cfg_.dropout_words > 0) {
      Tensor<T> mask({cfg_.vocab, 1}, uninitialized);
      rng->fill_bernoulli(mask.span(), 1.0 - cfg_.dropout_words);
      for (T& m : mask) m *= static_cast<T>(1.0 / (1.0 - cfg_.dropout_words));
      emb_table = mul(table, tape.constant(std::move(mask)));
    }
    Var<T> h =
        reshape(embedding(emb_table, std::span<const std::int64_t>(ids)), {steps, batch, cfg_.embedding});
    h = variational_dropout(tape, h, cfg_.dropout_embedding, training, rng);
    EgruLmState<T> next;
    next.y.resize(layers_.size());
    next.h.resize(layers_.size());
    for (std::size_t l = 0; l < layers_.size(); ++l) {
      TensorView<const T> y0, h0;
      if (state && !state->empty()) {
        y0 = state->y[l].cview();
        if (carry_h && l < state->h.size() && !state->h[l].empty()) h0 = state->h[l].cview();
      }
      h = egru(layers_[l], h, y0, training, rng, &activity_[l], h0, &next.h[l]);
      const std::size_t H = cfg_.width(l);
      next.y[l] = Tensor<T>({batch, H}, uninitialized);
      if (steps > 0) {
        const auto yv = h.value();
        std::copy(yv.data() + (steps - 1) * batch * H, yv.data() + steps * batch * H, next.y[l].data());
      } else if (!y0.empty()) {
        std::copy(y0.begin(), y0.end(), next.y[l].data());
      }
      if (l + 1 != layers_.size()) h = variational_dropout(tape, h, cfg_.dropout_forward, training, rng);
    }
    h = variational_dropout(tape, h, cfg_.dropout_output, training, rng);
    if (state) *state = std::move(next);
    return linear(reshape(h, {steps * batch, cfg_.embedding}), table, tape.param(*decoder_bias_));
  }

 private:
  /// x [T, B, D] times a mask [T, 1, D] scaled by 1 / (1 - p) (the reference's shape: shared over the batch).
  static Var<T> variational_dropout(Tape<T>& tape, const Var<T>& x, double p, bool training, Rng* rng) {
    if (!training || p <= 0.0) return x;
    const auto s = x.value().shape();
    Tensor<T> mask({s[0], 1, s[2]}, uninitialized);
    rng->fill_bernoulli(mask.span(), 1.0 - p);
    for (T& m : mask) m *= static_cast<T>(1.0 / (1.0 - p));
    return mul(x, tape.constant(std::move(mask)));
  }

  EgruLmConfig cfg_;
  ParameterSet<T> params_;
  Parameter<T>* embedding_ = nullptr;
  std::vector<EgruLayer<T>> layers_;
  Parameter<T>* decoder_bias_ = nullptr;
  std::vector<EgruActivity> activity_;
};

SPIKELM_NAMESPACE_END

#endif // SPIKELM_MODELS_EGRU_LM_HPP
