// spikelm: the metrics report — per-layer firing rate, AC, MAC, dense-equivalent MAC and energy per token,
// with totals, as an aligned text table or as JSON (docs/metrics.md).
#ifndef SPIKELM_METRICS_REPORT_HPP
#define SPIKELM_METRICS_REPORT_HPP

#include "../config.hpp"
#include "../core/error.hpp"
#include "../io/json.hpp"
#include "energy.hpp"
#include "firing.hpp"
#include "ops.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

SPIKELM_NAMESPACE_BEGIN

/// One row of a report: a layer's operation totals and, when it has one, its output population's spikes.
struct ReportRow {
  std::string name;
  std::uint64_t ac = 0;
  std::uint64_t mac = 0;
  std::uint64_t dense_mac = 0;
  std::uint64_t spikes = 0;       ///< events of the layer's output population
  std::uint64_t neuron_steps = 0; ///< neuron-steps of that population (0: the layer has no population)

  [[nodiscard]] bool has_population() const noexcept { return neuron_steps > 0; }
  /// spikes / neuron_steps (0 without a population).
  [[nodiscard]] double firing_rate() const noexcept {
    return neuron_steps ? static_cast<double>(spikes) / static_cast<double>(neuron_steps) : 0.0;
  }
  [[nodiscard]] LayerOps ops() const { return LayerOps{name, ac, mac, dense_mac}; }
  [[nodiscard]] bool operator==(const ReportRow&) const = default;
};

/// Operation counts, firing rates and energy of a model over `tokens` tokens. Counts are stored as totals;
/// the per-token values are totals / tokens.
class MetricsReport {
 public:
  MetricsReport() = default;
  /// Throws spikelm::Error when tokens is 0, a row has more spikes than neuron-steps, two rows share a name
  /// or the energy model is invalid.
  MetricsReport(std::vector<ReportRow> rows, std::uint64_t tokens, EnergyModel energy = {})
      : rows_(std::move(rows)), tokens_(tokens), energy_(energy) {
    check(tokens_ > 0, "MetricsReport: the counts cover no tokens (tokens = 0)");
    energy_.validate();
    for (std::size_t i = 0; i < rows_.size(); ++i) {
      check(rows_[i].spikes <= rows_[i].neuron_steps, "MetricsReport: row '", rows_[i].name, "' has ",
            rows_[i].spikes, " spikes in only ", rows_[i].neuron_steps, " neuron-steps");
      for (std::size_t j = 0; j < i; ++j)
        check(rows_[j].name != rows_[i].name, "MetricsReport: two rows are named '", rows_[i].name, "'");
    }
  }

  [[nodiscard]] const std::vector<ReportRow>& rows() const noexcept { return rows_; }
  [[nodiscard]] std::uint64_t tokens() const noexcept { return tokens_; }
  [[nodiscard]] const EnergyModel& energy() const noexcept { return energy_; }

  /// Sum of all rows (named "total"); its spikes and neuron-steps are summed over the rows with a population,
  /// so its firing rate is the overall rate.
  [[nodiscard]] ReportRow total() const {
    ReportRow t;
    t.name = "total";
    for (const ReportRow& r : rows_) {
      t.ac = detail::add_count(t.ac, r.ac, "MetricsReport::total");
      t.mac = detail::add_count(t.mac, r.mac, "MetricsReport::total");
      t.dense_mac = detail::add_count(t.dense_mac, r.dense_mac, "MetricsReport::total");
      t.spikes = detail::add_count(t.spikes, r.spikes, "MetricsReport::total");
      t.neuron_steps = detail::add_count(t.neuron_steps, r.neuron_steps, "MetricsReport::total");
    }
    return t;
  }
  /// The row called `name`; throws spikelm::Error when there is none.
  [[nodiscard]] const ReportRow& row(const std::string& name) const {
    for (const ReportRow& r : rows_)
      if (r.name == name) return r;
    fail("MetricsReport: no row named '", name, "'");
  }

  /// count / tokens.
  [[nodiscard]] double per_token(std::uint64_t count) const {
    check(tokens_ > 0, "MetricsReport: empty report (tokens = 0)");
    return static_cast<double>(count) / static_cast<double>(tokens_);
  }
  /// Picojoules per token of the row's AC and MAC.
  [[nodiscard]] double energy_pj_per_token(const ReportRow& r) const {
    return energy_.picojoules(r.ops()) / static_cast<double>(tokens_);
  }
  /// Picojoules per token of the row's dense equivalent.
  [[nodiscard]] double dense_energy_pj_per_token(const ReportRow& r) const {
    return energy_.dense_picojoules(r.ops()) / static_cast<double>(tokens_);
  }
  /// Dense-equivalent energy over actual energy of the whole model (EnergyModel::dense_ratio of the total).
  [[nodiscard]] double dense_ratio() const { return energy_.dense_ratio(total().ops()); }

  /// The report as an aligned text table: one line per row, then the total; counts and energies per token.
  [[nodiscard]] std::string table() const {
    const std::vector<std::string> head{"layer",          "firing rate",     "AC/token",
                                        "MAC/token",      "dense MAC/token", "energy nJ/token",
                                        "dense nJ/token", "dense/actual"};
    std::vector<std::vector<std::string>> body;
    auto line = [&](const ReportRow& r) {
      body.push_back({r.name, r.has_population() ? fixed(r.firing_rate(), 3) : std::string("-"),
                      fixed(per_token(r.ac), 1), fixed(per_token(r.mac), 1), fixed(per_token(r.dense_mac), 1),
                      fixed(energy_pj_per_token(r) / 1e3, 3), fixed(dense_energy_pj_per_token(r) / 1e3, 3),
                      fixed(energy_.dense_ratio(r.ops()), 2)});
    };
    for (const ReportRow& r : rows_) line(r);
    line(total());
    std::vector<std::size_t> width(head.size());
    for (std::size_t c = 0; c < head.size(); ++c) {
      width[c] = head[c].size();
      for (const auto& b : body) width[c] = std::max(width[c], b[c].size());
    }
    std::string out = "synaptic operations and energy per token over " + std::to_string(tokens_) +
                      " tokens (" + fixed(energy_.pj_per_ac, 2) + " pJ/AC, " + fixed(energy_.pj_per_mac, 2) +
                      " pJ/MAC)\n";
    auto emit = [&](const std::vector<std::string>& cells) {
      for (std::size_t c = 0; c < cells.size(); ++c) {
        const std::string pad(width[c] - cells[c].size(), ' ');
        out += c == 0 ? cells[c] + pad : "  " + pad + cells[c];
      }
      out += '\n';
    };
    std::size_t total_width = 0;
    for (std::size_t c = 0; c < width.size(); ++c) total_width += width[c] + (c ? 2 : 0);
    const std::string rule(total_width, '-');
    emit(head);
    out += rule + '\n';
    for (std::size_t i = 0; i + 1 < body.size(); ++i) emit(body[i]);
    out += rule + '\n';
    emit(body.back());
    return out;
  }

  /// The report as JSON: "tokens", "pj_per_ac", "pj_per_mac", "layers" (one object per row) and "total". Each
  /// row object holds the totals (name, ac, mac, dense_mac, spikes, neuron_steps) and derived values
  /// (firing_rate or null, ac/mac/dense_mac_per_token, energy_nj_per_token, dense_energy_nj_per_token,
  /// dense_ratio or null when infinite); from_json reads back the totals only.
  [[nodiscard]] nlohmann::ordered_json to_json() const {
    nlohmann::ordered_json j;
    j["tokens"] = tokens_;
    j["pj_per_ac"] = energy_.pj_per_ac;
    j["pj_per_mac"] = energy_.pj_per_mac;
    j["layers"] = nlohmann::ordered_json::array();
    for (const ReportRow& r : rows_) j["layers"].push_back(row_json(r));
    j["total"] = row_json(total());
    return j;
  }
  /// Reads the totals written by to_json (derived values are ignored and recomputed). Throws spikelm::Error
  /// naming the field when one is missing or of the wrong type, and as the constructor.
  [[nodiscard]] static MetricsReport from_json(const nlohmann::json& j) { return from_json_impl(j); }
  [[nodiscard]] static MetricsReport from_json(const nlohmann::ordered_json& j) { return from_json_impl(j); }
  /// Parses JSON text (strictly: duplicate keys are errors) and reads it with from_json.
  [[nodiscard]] static MetricsReport parse(std::string_view text) {
    return from_json(parse_json_strict(text, "MetricsReport", 8));
  }

  [[nodiscard]] bool operator==(const MetricsReport&) const = default;

 private:
  static std::string fixed(double v, int precision) {
    if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
    if (std::isnan(v)) return "nan";
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f", precision, v);
    return buf;
  }

  [[nodiscard]] nlohmann::ordered_json row_json(const ReportRow& r) const {
    nlohmann::ordered_json o;
    o["name"] = r.name;
    o["ac"] = r.ac;
    o["mac"] = r.mac;
    o["dense_mac"] = r.dense_mac;
    o["spikes"] = r.spikes;
    o["neuron_steps"] = r.neuron_steps;
    o["firing_rate"] =
        r.has_population() ? nlohmann::ordered_json(r.firing_rate()) : nlohmann::ordered_json();
    o["ac_per_token"] = per_token(r.ac);
    o["mac_per_token"] = per_token(r.mac);
    o["dense_mac_per_token"] = per_token(r.dense_mac);
    o["energy_nj_per_token"] = energy_pj_per_token(r) / 1e3;
    o["dense_energy_nj_per_token"] = dense_energy_pj_per_token(r) / 1e3;
    const double ratio = energy_.dense_ratio(r.ops());
    o["dense_ratio"] = std::isfinite(ratio) ? nlohmann::ordered_json(ratio) : nlohmann::ordered_json();
    return o;
  }

  template <class Json>
  static const Json& field(const Json& j, const char* key, const std::string& where) {
    check(j.is_object() && j.contains(key), "MetricsReport::from_json: ", where, " has no field \"", key,
          "\"");
    return j[key];
  }
  template <class Json>
  static std::uint64_t count_field(const Json& j, const char* key, const std::string& where) {
    const Json& v = field(j, key, where);
    check(v.is_number_unsigned() || (v.is_number_integer() && v.template get<std::int64_t>() >= 0),
          "MetricsReport::from_json: ", where, ".", key, " must be a non-negative integer, got ", v.dump());
    return v.template get<std::uint64_t>();
  }
  template <class Json>
  static MetricsReport from_json_impl(const Json& j) {
    check(j.is_object(), "MetricsReport::from_json: expected an object, got ", j.type_name());
    EnergyModel e;
    auto number = [&](const char* key) {
      const Json& v = field(j, key, "the report");
      check(v.is_number(), "MetricsReport::from_json: ", key, " must be a number, got ", v.dump());
      return v.template get<double>();
    };
    e.pj_per_ac = number("pj_per_ac");
    e.pj_per_mac = number("pj_per_mac");
    const Json& layers = field(j, "layers", "the report");
    check(layers.is_array(), "MetricsReport::from_json: layers must be an array, got ", layers.type_name());
    std::vector<ReportRow> rows;
    for (std::size_t i = 0; i < layers.size(); ++i) {
      const Json& l = layers[i];
      const std::string where = "layers[" + std::to_string(i) + "]";
      const Json& name = field(l, "name", where);
      check(name.is_string(), "MetricsReport::from_json: ", where, ".name must be a string, got ",
            name.dump());
      rows.push_back(ReportRow{name.template get<std::string>(), count_field(l, "ac", where),
                               count_field(l, "mac", where), count_field(l, "dense_mac", where),
                               count_field(l, "spikes", where), count_field(l, "neuron_steps", where)});
    }
    return MetricsReport(std::move(rows), count_field(j, "tokens", "the report"), e);
  }

  std::vector<ReportRow> rows_;
  std::uint64_t tokens_ = 0;
  EnergyModel energy_{};
};

/// The report of `ops` (its layers in order and its token count) with the firing rates of the populations in
/// `rates` that share a layer's name; populations with no layer of that name are appended as rows without
/// operations. Throws spikelm::Error when the counter covers no tokens or the energy model is invalid.
[[nodiscard]] inline MetricsReport
make_report(const OpsCounter& ops, const FiringRateMonitor* rates = nullptr, const EnergyModel& energy = {}) {
  check(ops.tokens() > 0,
        "make_report: the operation counter covers no tokens (call OpsCounter::add_tokens)");
  std::vector<ReportRow> rows;
  for (const LayerOps& l : ops.layers()) {
    ReportRow r{l.name, l.ac, l.mac, l.dense_mac, 0, 0};
    if (rates && rates->contains(l.name)) {
      const PopulationRate& p = rates->population(l.name);
      r.spikes = p.spikes;
      r.neuron_steps = p.neuron_steps;
    }
    rows.push_back(std::move(r));
  }
  if (rates)
    for (const PopulationRate& p : rates->populations())
      if (!ops.contains(p.name)) rows.push_back(ReportRow{p.name, 0, 0, 0, p.spikes, p.neuron_steps});
  return MetricsReport(std::move(rows), ops.tokens(), energy);
}

SPIKELM_NAMESPACE_END

#endif // SPIKELM_METRICS_REPORT_HPP
