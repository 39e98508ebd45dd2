// spikelm: the energy model — picojoules per accumulate (AC) and per multiply-accumulate (MAC), by default
// the 45 nm figures of ../shared/SPEC.md §5 (0.9 pJ per 32-bit float add, 4.6 pJ per 32-bit float
// multiply-add; Horowitz, ISSCC 2014, as used by the spiking-LM papers). Memory traffic is not modelled
// (docs/metrics.md).
#ifndef SPIKELM_METRICS_ENERGY_HPP
#define SPIKELM_METRICS_ENERGY_HPP

#include "../config.hpp"
#include "../core/error.hpp"
#include "ops.hpp"

#include <cmath>
#include <cstdint>
#include <limits>

SPIKELM_NAMESPACE_BEGIN

/// Energy per synaptic operation, in picojoules.
struct EnergyModel {
  static constexpr double default_pj_per_ac = 0.9;  ///< 32-bit float add, 45 nm
  static constexpr double default_pj_per_mac = 4.6; ///< 32-bit float multiply + add, 45 nm

  double pj_per_ac = default_pj_per_ac;
  double pj_per_mac = default_pj_per_mac;

  /// Throws spikelm::Error when an energy is negative, NaN or infinite.
  void validate() const {
    check(std::isfinite(pj_per_ac) && pj_per_ac >= 0.0 && std::isfinite(pj_per_mac) && pj_per_mac >= 0.0,
          "EnergyModel: energies per operation must be finite and >= 0, got ", pj_per_ac, " pJ per AC and ",
          pj_per_mac, " pJ per MAC");
  }
  /// Picojoules of `ac` accumulates and `mac` multiply-accumulates.
  [[nodiscard]] double picojoules(std::uint64_t ac, std::uint64_t mac) const {
    validate();
    return static_cast<double>(ac) * pj_per_ac + static_cast<double>(mac) * pj_per_mac;
  }
  /// Picojoules of the operations the layer performed (AC and MAC).
  [[nodiscard]] double picojoules(const LayerOps& ops) const { return picojoules(ops.ac, ops.mac); }
  /// Picojoules of the equivalent dense layer (dense MACs).
  [[nodiscard]] double dense_picojoules(const LayerOps& ops) const { return picojoules(0, ops.dense_mac); }
  /// Dense energy over actual energy (how many times less the layer spends than its dense equivalent); +inf
  /// when the layer spent nothing but its dense equivalent would have, 1 when both are zero.
  [[nodiscard]] double dense_ratio(const LayerOps& ops) const {
    const double e = picojoules(ops), d = dense_picojoules(ops);
    if (e == 0.0) return d == 0.0 ? 1.0 : std::numeric_limits<double>::infinity();
    return d / e;
  }
  [[nodiscard]] bool operator==(const EnergyModel&) const = default;
};

SPIKELM_NAMESPACE_END

#endif // SPIKELM_METRICS_ENERGY_HPP
