// spikelm: firing-rate monitors — spikes (or non-zero outputs) and neuron-steps per named population, summed
// over as many steps, tokens and forward passes as are recorded (docs/metrics.md).
#ifndef SPIKELM_METRICS_FIRING_HPP
#define SPIKELM_METRICS_FIRING_HPP

#include "../config.hpp"
#include "../core/error.hpp"
#include "../core/tensor.hpp"
#include "../spike/spike_tensor.hpp"
#include "ops.hpp"

#include <cstdint>
#include <span>
#include <string>
#include <vector>

SPIKELM_NAMESPACE_BEGIN

/// Spike count of one population: `spikes` events over `neuron_steps` (neurons x steps x batch rows) chances
/// to fire.
struct PopulationRate {
  std::string name;
  std::uint64_t spikes = 0;
  std::uint64_t neuron_steps = 0;
  /// spikes / neuron_steps (0 when nothing was recorded).
  [[nodiscard]] double rate() const noexcept {
    return neuron_steps ? static_cast<double>(spikes) / static_cast<double>(neuron_steps) : 0.0;
  }
  [[nodiscard]] bool operator==(const PopulationRate&) const = default;
};

/// Accumulates spikes per named population. Populations are kept in the order their names first appear.
class FiringRateMonitor {
 public:
  /// Adds `spikes` events over `neuron_steps` neuron-steps to population `name`. Throws spikelm::Error when
  /// spikes > neuron_steps.
  void record(const std::string& name, std::uint64_t spikes, std::uint64_t neuron_steps) {
    check(spikes <= neuron_steps, "FiringRateMonitor::record: population '", name, "' has ", spikes,
          " spikes in only ", neuron_steps, " neuron-steps");
    PopulationRate& p = find_or_add(name);
    p.spikes = detail::add_count(p.spikes, spikes, "FiringRateMonitor::record");
    p.neuron_steps = detail::add_count(p.neuron_steps, neuron_steps, "FiringRateMonitor::record");
  }
  /// Adds the spikes of `s` (every step and row; the event lists must be current).
  void record(const std::string& name, const SpikeTensor& s) {
    record(name, s.count(), detail::mul_count(s.total_rows(), s.neurons(), "FiringRateMonitor::record"));
  }
  /// Adds the outputs of `x` (any shape): every non-zero element is an event (binary spikes or graded events
  /// such as the EGRU's y), every element a neuron-step.
  template <TensorLike X>
  void record(const std::string& name, const X& x) {
    record(name, count_nonzero(x), cview(x).size());
  }

  [[nodiscard]] bool contains(const std::string& name) const noexcept { return find(name) != nullptr; }
  /// The population called `name`; throws spikelm::Error when there is none.
  [[nodiscard]] const PopulationRate& population(const std::string& name) const {
    const PopulationRate* p = find(name);
    check(p != nullptr, "FiringRateMonitor: no population named '", name, "' (", pops_.size(),
          " populations)");
    return *p;
  }
  /// Mean firing rate of population `name` (spikes / neuron-steps).
  [[nodiscard]] double rate(const std::string& name) const { return population(name).rate(); }
  /// All spikes over all neuron-steps (populations weighted by their size).
  [[nodiscard]] double overall_rate() const noexcept {
    std::uint64_t s = 0, n = 0;
    for (const auto& p : pops_) {
      s += p.spikes;
      n += p.neuron_steps;
    }
    return n ? static_cast<double>(s) / static_cast<double>(n) : 0.0;
  }
  /// Unweighted mean of the populations' rates (0 with no populations).
  [[nodiscard]] double mean_rate() const noexcept {
    double r = 0.0;
    for (const auto& p : pops_) r += p.rate();
    return pops_.empty() ? 0.0 : r / static_cast<double>(pops_.size());
  }
  [[nodiscard]] std::span<const PopulationRate> populations() const noexcept { return pops_; }
  void clear() noexcept { pops_.clear(); }

 private:
  [[nodiscard]] const PopulationRate* find(const std::string& name) const noexcept {
    for (const auto& p : pops_)
      if (p.name == name) return &p;
    return nullptr;
  }
  PopulationRate& find_or_add(const std::string& name) {
    for (auto& p : pops_)
      if (p.name == name) return p;
    pops_.push_back(PopulationRate{name, 0, 0});
    return pops_.back();
  }

  std::vector<PopulationRate> pops_;
};

SPIKELM_NAMESPACE_END

#endif // SPIKELM_METRICS_FIRING_HPP
