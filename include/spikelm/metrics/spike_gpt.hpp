// spikelm: synaptic operations and firing rates of SpikeGPT (models/spike_gpt.hpp) from the spike counts of
// its forward passes: the binary embedding's bits and the LIF1 / LIF2 spikes of every layer.
//
// In SpikeGPT every projection reads a LayerNorm output, which is real-valued, so computed as written every
// projection is a dense product (MACs). The residual stream that the LayerNorms read is, outside training
// (no dropout), x = LN0(b) + S with b the binary embedding and S a sum of LIF spikes (non-negative integers
// per channel). Per token the LayerNorms are affine maps with per-token scalars (mean, 1/std), and the token
// shift mixes x_t and x_{t-1} with per-channel coefficients, so a projection W of LN1(x) after the shift is
//     W xk = sum over the two sources t, t-1 of  (1/s) [ (1/s0) W' b + W'' S ] + (per-token scalars) x (fixed
//     vectors),
// with W', W'' the weights with the per-channel factors folded in: the products over b and S are additions
// of weight columns, one per active bit and one per spike (a channel holding k spikes adds its column k
// times), and the per-token scalars cost 4 multiplies per output and source. That event-driven form is what
// this header counts (docs/metrics.md):
//   att.key / value / receptance (d -> d), ffn.key (d -> 4d), ffn.receptance (d -> d):
//       AC  = 2 * E * out         E: bits + spikes in the residual stream the layer reads, over all tokens;
//                                 the factor 2 counts the shifted source x_{t-1} as the same total (exact
//                                 over a stream that carries the state; one token's events too many for a
//                                 single window started from zero)
//       MAC = 2 * 4 * N * out     the per-token LayerNorm scalars
//   att.output (r * wkv), ffn.value (ReLU(k)^2): real-valued inputs, MAC = N * in * out
//   head (LN_out(x), no shift): AC = E * V, MAC = 4 * N * V
//   dense equivalent: every projection as a full product, N * in * out.
// E for layer l's TimeMix: bits + sum over j < l of (LIF1_j + LIF2_j) spikes; for its ChannelMix add LIF1_l;
// for the head the whole stream. spikelm itself computes the projections densely (GEMM); these counts are
// the model's event-driven cost, not the library's arithmetic. During training dropout rescales the
// stream, which is then no longer integer-valued: count evaluation passes only.
#ifndef SPIKELM_METRICS_SPIKE_GPT_HPP
#define SPIKELM_METRICS_SPIKE_GPT_HPP

#include "../config.hpp"
#include "../core/error.hpp"
#include "../models/spike_gpt.hpp"
#include "firing.hpp"
#include "ops.hpp"

#include <array>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

SPIKELM_NAMESPACE_BEGIN

/// Spike counts of SpikeGPT forward passes over `tokens` token positions (T * B).
struct SpikeGptActivity {
  std::uint64_t tokens = 0;
  std::uint64_t embedding_bits = 0;                 ///< ones of H(E[token]) over all tokens
  std::vector<std::array<std::uint64_t, 2>> spikes; ///< {LIF1, LIF2} spikes per layer over all tokens

  /// Adds another pass's counts (same number of layers). Throws spikelm::Error otherwise or on overflow.
  SpikeGptActivity& operator+=(const SpikeGptActivity& o) {
    if (spikes.empty()) spikes.assign(o.spikes.size(), {0, 0});
    check(spikes.size() == o.spikes.size(), "SpikeGptActivity: adding ", o.spikes.size(), " layers to ",
          spikes.size());
    tokens = detail::add_count(tokens, o.tokens, "SpikeGptActivity");
    embedding_bits = detail::add_count(embedding_bits, o.embedding_bits, "SpikeGptActivity");
    for (std::size_t l = 0; l < spikes.size(); ++l)
      for (int p = 0; p < 2; ++p)
        spikes[l][p] = detail::add_count(spikes[l][p], o.spikes[l][p], "SpikeGptActivity");
    return *this;
  }
};

/// Population names in firing-rate monitors: "blocks.l.lif1", "blocks.l.lif2"; the embedding is "emb".
[[nodiscard]] inline std::string spike_gpt_population(std::size_t layer, int which) {
  return "blocks." + std::to_string(layer) + (which == 0 ? ".lif1" : ".lif2");
}

/// The counts of the last logits() or step() call of `model`, which covered `tokens` token positions (T * B
/// for logits(), B for step()). The model keeps rates; counts are rate x tokens x d, rounded.
template <class T>
[[nodiscard]] SpikeGptActivity spike_gpt_activity(const SpikeGPT<T>& model, std::uint64_t tokens) {
  const SpikeGptConfig& cfg = model.config();
  const std::uint64_t cells = detail::mul_count(tokens, cfg.d_model, "spike_gpt_activity");
  auto count = [&](double rate) {
    check(rate >= 0.0 && rate <= 1.0, "spike_gpt_activity: rate ", rate, " outside [0, 1]");
    return static_cast<std::uint64_t>(std::llround(rate * static_cast<double>(cells)));
  };
  SpikeGptActivity a;
  a.tokens = tokens;
  a.embedding_bits = count(model.embedding_rate());
  check(model.firing_rates().size() == cfg.layers, "spike_gpt_activity: the model has no rates for its ",
        cfg.layers, " layers");
  for (const auto& r : model.firing_rates()) a.spikes.push_back({count(r[0]), count(r[1])});
  return a;
}

/// Per-projection operations ("blocks.l.att", "blocks.l.ffn" per layer, then "head") of the passes `a`
/// counts, in the event-driven form described at the top of this header. Throws spikelm::Error when `a`
/// does not fit `cfg` (layers, counts above tokens x d).
[[nodiscard]] inline std::vector<LayerOps> spike_gpt_ops(const SpikeGptConfig& cfg,
                                                         const SpikeGptActivity& a) {
  cfg.validate();
  const char* what = "spike_gpt_ops";
  check(a.spikes.size() == cfg.layers, what, ": activity of ", a.spikes.size(), " layers for a model of ",
        cfg.layers);
  const std::uint64_t n = a.tokens, d = cfg.d_model, h = cfg.ffn_hidden(), v = cfg.vocab;
  const std::uint64_t cells = detail::mul_count(n, d, what);
  check(a.embedding_bits <= cells, what, ": ", a.embedding_bits, " embedding bits in ", cells, " cells");
  auto mul = [&](std::uint64_t x, std::uint64_t y) { return detail::mul_count(x, y, what); };
  auto add = [&](std::uint64_t x, std::uint64_t y) { return detail::add_count(x, y, what); };
  // A projection of the (shifted) residual stream holding `events` bits and spikes, d -> out.
  auto stream = [&](std::uint64_t events, std::uint64_t out, LayerOps& o) {
    o.ac = add(o.ac, mul(mul(2, events), out));
    o.mac = add(o.mac, mul(mul(8, n), out));
    o.dense_mac = add(o.dense_mac, mul(mul(n, d), out));
  };
  auto real = [&](std::uint64_t in, std::uint64_t out, LayerOps& o) {
    o.mac = add(o.mac, mul(mul(n, in), out));
    o.dense_mac = add(o.dense_mac, mul(mul(n, in), out));
  };
  std::vector<LayerOps> ops;
  std::uint64_t e = a.embedding_bits;
  for (std::size_t l = 0; l < cfg.layers; ++l) {
    check(a.spikes[l][0] <= cells && a.spikes[l][1] <= cells, what, ": layer ", l, " has ", a.spikes[l][0],
          " / ", a.spikes[l][1], " spikes in ", cells, " neuron-steps");
    const std::string pre = "blocks." + std::to_string(l);
    LayerOps att{pre + ".att", 0, 0, 0};
    for (int i = 0; i < 3; ++i) stream(e, d, att); // key, value, receptance
    real(d, d, att);                               // output
    e = add(e, a.spikes[l][0]);
    LayerOps ffn{pre + ".ffn", 0, 0, 0};
    stream(e, h, ffn); // key
    stream(e, d, ffn); // receptance
    real(h, d, ffn);   // value
    e = add(e, a.spikes[l][1]);
    ops.push_back(std::move(att));
    ops.push_back(std::move(ffn));
  }
  ops.push_back(LayerOps{"head", mul(e, v), mul(mul(4, n), v), mul(mul(n, d), v)});
  return ops;
}

/// Adds the passes `a` counts to `ops` (operations and tokens) and, when given, the firing rates of the
/// embedding bits ("emb") and every LIF population to `rates`.
inline void record_spike_gpt(const SpikeGptConfig& cfg, const SpikeGptActivity& a, OpsCounter& ops,
                             FiringRateMonitor* rates = nullptr) {
  ops.add(spike_gpt_ops(cfg, a));
  ops.add_tokens(a.tokens);
  if (rates) {
    const std::uint64_t cells = detail::mul_count(a.tokens, cfg.d_model, "record_spike_gpt");
    rates->record("emb", a.embedding_bits, cells);
    for (std::size_t l = 0; l < a.spikes.size(); ++l)
      for (int p = 0; p < 2; ++p) rates->record(spike_gpt_population(l, p), a.spikes[l][p], cells);
  }
}

SPIKELM_NAMESPACE_END

#endif // SPIKELM_METRICS_SPIKE_GPT_HPP
