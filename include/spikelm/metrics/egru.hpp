// spikelm: synaptic operations and firing rates of the EGRU language model (models/egru_lm.hpp) from the
// activity counts of its forward passes (EgruLM::activity(): per layer, unit-steps T*B*H and events y != 0).
//
// For N = T * B token positions and layer l with input width I, width H and gates G = 3H (docs/metrics.md):
//   input product x W     layer 0: MAC = N * I * G (the embedding is real-valued: dense)
//                         layer l >= 1: MAC = events(l - 1) * G (its input is the previous layer's graded
//                         events y: one multiply-add per non-zero input and gate output)
//   recurrent y_{t-1} R   MAC = events(l) * G (only the rows of R of units that emitted an event)
//   dense equivalent      dense MAC = N * (I + H) * G (a GRU computing both products in full)
//   decoder y E^T         MAC = dense MAC = N * E * V (tied to the embedding, counted dense)
// The EGRU's events are graded (y = c where the unit fires), so every event costs multiplies: all counts are
// MACs, none ACs. events(l) counts y_t != 0 for t = 1..T, while the recurrent product at step t reads y_{t-1}
// (t = 1..T): the exact count swaps the last step's events for those of the initial state y_0. Over a stream
// of windows that carry the state (y_T of one window is y_0 of the next) the two agree except at the two
// ends. The counts are what an event-driven implementation needs; spikelm's layer computes x W as a dense
// GEMM (and everything dense in EgruMode::Dense), so these are not the library's own arithmetic but the
// model's.
#ifndef SPIKELM_METRICS_EGRU_HPP
#define SPIKELM_METRICS_EGRU_HPP

#include "../config.hpp"
#include "../core/error.hpp"
#include "../models/egru_layer.hpp"
#include "../models/egru_lm.hpp"
#include "firing.hpp"
#include "ops.hpp"

#include <cstdint>
#include <span>
#include <string>
#include <vector>

SPIKELM_NAMESPACE_BEGIN

/// Name of EGRU layer l in operation counts and firing-rate monitors: "rnns.l", as its parameters.
[[nodiscard]] inline std::string egru_layer_name(std::size_t l) {
  return "rnns." + std::to_string(l);
}

/// Token positions (T * B) the activity counts cover: layer 0's unit-steps over its width. Throws
/// spikelm::Error when there is not one entry per layer or the layers' unit-steps disagree with their widths.
[[nodiscard]] inline std::uint64_t egru_lm_tokens(const EgruLmConfig& cfg,
                                                  std::span<const EgruActivity> activity) {
  cfg.validate();
  check(activity.size() == cfg.layers, "egru_lm_tokens: ", activity.size(), " activity entries for ",
        cfg.layers, " layers");
  const std::uint64_t n = activity[0].unit_steps / cfg.width(0);
  for (std::size_t l = 0; l < cfg.layers; ++l) {
    const EgruActivity& a = activity[l];
    check(a.unit_steps == n * cfg.width(l), "egru_lm_tokens: layer ", l, " has ", a.unit_steps,
          " unit-steps, expected ", n, " tokens x ", cfg.width(l), " units = ", n * cfg.width(l));
    check(a.events <= a.unit_steps, "egru_lm_tokens: layer ", l, " has ", a.events, " events in ",
          a.unit_steps, " unit-steps");
  }
  return n;
}

/// Per-layer operations ("rnns.0" .. "rnns.{L-1}", then "decoder") of the forward passes `activity` counts
/// (EgruLM::activity() after one forward, or entry-wise sums over several). Throws spikelm::Error as
/// egru_lm_tokens.
[[nodiscard]] inline std::vector<LayerOps> egru_lm_ops(const EgruLmConfig& cfg,
                                                       std::span<const EgruActivity> activity) {
  const std::uint64_t n = egru_lm_tokens(cfg, activity);
  std::vector<LayerOps> ops;
  ops.reserve(cfg.layers + 1);
  for (std::size_t l = 0; l < cfg.layers; ++l) {
    const std::uint64_t in = cfg.input_width(l), h = cfg.width(l), g = 3 * h;
    const std::uint64_t input_mac =
        l == 0 ? detail::mul_count(detail::mul_count(n, in, "egru_lm_ops"), g, "egru_lm_ops")
               : detail::mul_count(activity[l - 1].events, g, "egru_lm_ops");
    const std::uint64_t recurrent_mac = detail::mul_count(activity[l].events, g, "egru_lm_ops");
    LayerOps o{egru_layer_name(l), 0, detail::add_count(input_mac, recurrent_mac, "egru_lm_ops"), 0};
    o.dense_mac = detail::mul_count(detail::mul_count(n, in + h, "egru_lm_ops"), g, "egru_lm_ops");
    ops.push_back(std::move(o));
  }
  ops.push_back(dense_linear_ops(n, cfg.embedding, cfg.vocab, "decoder"));
  return ops;
}

/// Adds the last forward of `lm` to `ops` (per-layer operations and its T * B tokens) and, when given, each
/// layer's events and unit-steps to `rates` (population "rnns.l": firing rate = 1 - activity sparsity).
template <class T>
void record_egru_lm(const EgruLM<T>& lm, OpsCounter& ops, FiringRateMonitor* rates = nullptr) {
  const auto& act = lm.activity();
  const std::uint64_t tokens = egru_lm_tokens(lm.config(), act);
  ops.add(egru_lm_ops(lm.config(), act));
  ops.add_tokens(tokens);
  if (rates)
    for (std::size_t l = 0; l < act.size(); ++l)
      rates->record(egru_layer_name(l), act[l].events, act[l].unit_steps);
}

SPIKELM_NAMESPACE_END

#endif // SPIKELM_METRICS_EGRU_HPP
