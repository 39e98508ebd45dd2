// spikelm: synaptic operations of a SpikingBERT simulation (models/spiking_bert.hpp), from the spike counts
// of its populations, against the MACs of the same-shaped (non-spiking) BERT run once.
//
// Per layer, over the whole run (T steps, R = B x L tokens), with S_x the spikes of population x:
//   query / key / value (d -> d each), fed by the layer's input spikes S_in (E or the previous O):
//       AC = 3 x S_in x d
//   scores Q s_K^T: each K spike (key j, channel c) adds Q[i, c] into the scores of every query i of its
//       sequence:  AC = S_K x L
//   context P s_V: each V spike (key j, channel c) adds P[h, i, j] into every query i: AC = S_V x L
//   attention.output (d -> d) fed by A:  AC = S_A x d;  intermediate (d -> f) by SO: AC = S_SO x f;
//   output (f -> d) by IM: AC = S_IM x d
//   feedback W_s (d -> d, only in a model with feedback) fed by the last layer's O spikes of steps
//       0..T-2:  AC = S_fb x d, reported as "feedback" with no dense counterpart (BERT has none)
//   The residual additions, LayerNorms, GELU and softmax are not synaptic operations and are not counted.
// Dense equivalent (BERT, once per token): 4 R d^2 + 2 R d f + 2 B L^2 d MACs per layer.
// Head (classifier on the CLS rates, real-valued): MAC = B x d x labels, also in the dense count.
#ifndef SPIKELM_METRICS_SPIKING_BERT_HPP
#define SPIKELM_METRICS_SPIKING_BERT_HPP

#include "../config.hpp"
#include "../core/error.hpp"
#include "../models/spiking_bert.hpp"
#include "ops.hpp"

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

SPIKELM_NAMESPACE_BEGIN

/// Operations per layer ("layer.{i}"), of the feedback ("feedback", when it carried spikes) and of the head
/// ("classifier", when the model has labels) of the run `run` of a model of configuration `cfg` on B
/// sequences of L tokens. The counts cover the whole run (all T steps); dense_mac is the BERT of the same
/// shape run once.
template <class T>
[[nodiscard]] std::vector<LayerOps> spiking_bert_ops(const BertConfig& cfg, const SpikingBertRun<T>& run,
                                                     std::size_t batch, std::size_t length) {
  check(run.spikes.size() == cfg.layers, "spiking_bert_ops: the run has ", run.spikes.size(),
        " layers, the configuration ", cfg.layers);
  const auto u = [](double v) { return static_cast<std::uint64_t>(std::llround(v)); };
  const std::uint64_t R = batch * length, d = cfg.hidden, f = cfg.intermediate, L = length;
  std::vector<LayerOps> out;
  double s_in = run.embedding_spikes;
  for (std::size_t l = 0; l < cfg.layers; ++l) {
    const auto& s = run.spikes[l];
    LayerOps o{"layer." + std::to_string(l), 0, 0, 0};
    o.ac = 3 * u(s_in) * d + u(s[0]) * L + u(s[1]) * L + u(s[2]) * d + u(s[3]) * f + u(s[4]) * d;
    o.dense_mac = 4 * R * d * d + 2 * R * d * f + 2 * batch * L * L * d;
    out.push_back(o);
    s_in = s[5];
  }
  if (run.feedback_spikes > 0) out.push_back(LayerOps{"feedback", u(run.feedback_spikes) * d, 0, 0});
  if (cfg.labels > 0) out.push_back(dense_linear_ops(batch, d, cfg.labels, "classifier"));
  return out;
}

SPIKELM_NAMESPACE_END

#endif // SPIKELM_METRICS_SPIKING_BERT_HPP
