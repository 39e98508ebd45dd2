// spikelm: training checkpoints. One safetensors file holds the parameters ("model/<name>"), the optimizer's
// state buffers ("optimizer/<buffer>/<name>", one tensor per parameter, in the parameter's shape and dtype),
// and in its string metadata the step, the optimizer's kind, options, base rate and step count, the states of
// named Rng streams and the caller's own metadata. The file is replaced atomically (temporary file, fsync,
// rename), so an interrupted save leaves the previous checkpoint intact, and resuming from a checkpoint
// continues the run bit for bit.
#ifndef SPIKELM_IO_CHECKPOINT_HPP
#define SPIKELM_IO_CHECKPOINT_HPP

#include "../autograd/parameter.hpp"
#include "../config.hpp"
#include "../core/error.hpp"
#include "../core/rng.hpp"
#include "../train/optim.hpp"
#include "safetensors.hpp"

#include <nlohmann/json.hpp>

#include <charconv>
#include <cstdint>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

SPIKELM_NAMESPACE_BEGIN

/// What a checkpoint holds besides the parameters and the optimizer: the training step, named Rng streams
/// (e.g. {"data", rng}) and free-form string metadata (keys must not start with "spikelm.").
struct CheckpointState {
  std::uint64_t step = 0;
  std::map<std::string, Rng> rngs{};
  std::map<std::string, std::string> metadata{};
};

/// Options of load_checkpoint.
struct CheckpointLoadOptions {
  /// The optimizer's options (learning rate, betas, ...) are recorded in the checkpoint; by default loading
  /// into an optimizer constructed with different options is an error (the run would not continue as it
  /// was). Set to true to resume with changed hyper-parameters on purpose.
  bool allow_optimizer_changes = false;
};

namespace detail {
inline constexpr std::string_view ckpt_prefix = "spikelm.";
inline constexpr std::string_view ckpt_format = "spikelm-checkpoint";
inline constexpr int ckpt_format_version = 1;

// The state of each supported optimizer: its kind, its options as JSON and its buffers by (torch's) name.
template <class T>
std::string optimizer_kind(const SGD<T>&) {
  return "sgd";
}
template <class T>
std::string optimizer_kind(const Adam<T>& o) {
  return o.options().decoupled ? "adamw" : "adam";
}
template <class T>
nlohmann::ordered_json optimizer_options(const SGD<T>& o) {
  const auto& p = o.options();
  return {{"lr", p.lr},
          {"momentum", p.momentum},
          {"dampening", p.dampening},
          {"weight_decay", p.weight_decay},
          {"nesterov", p.nesterov}};
}
template <class T>
nlohmann::ordered_json optimizer_options(const Adam<T>& o) {
  const auto& p = o.options();
  return {{"lr", p.lr},
          {"beta1", p.beta1},
          {"beta2", p.beta2},
          {"eps", p.eps},
          {"weight_decay", p.weight_decay},
          {"decoupled", p.decoupled}};
}
template <class T>
std::vector<std::pair<std::string, const std::vector<T>*>> optimizer_buffers(const SGD<T>& o) {
  return {{"momentum_buffer", &o.momentum_buffer()}};
}
template <class T>
std::vector<std::pair<std::string, std::vector<T>*>> optimizer_buffers(SGD<T>& o) {
  return {{"momentum_buffer", &o.momentum_buffer()}};
}
template <class T>
std::vector<std::pair<std::string, const std::vector<T>*>> optimizer_buffers(const Adam<T>& o) {
  return {{"exp_avg", &o.first_moment()}, {"exp_avg_sq", &o.second_moment()}};
}
template <class T>
std::vector<std::pair<std::string, std::vector<T>*>> optimizer_buffers(Adam<T>& o) {
  return {{"exp_avg", &o.first_moment()}, {"exp_avg_sq", &o.second_moment()}};
}

inline std::string u64_string(std::uint64_t v) {
  return std::to_string(v);
}
inline std::uint64_t parse_u64(const std::map<std::string, std::string>& meta, const std::string& key,
                               const std::string& where) {
  const auto it = meta.find(key);
  check(it != meta.end(), where, ": metadata \"", key, "\" is missing");
  std::uint64_t v = 0;
  const char* b = it->second.data();
  const char* e = b + it->second.size();
  const auto [p, ec] = std::from_chars(b, e, v);
  check(ec == std::errc() && p == e && !it->second.empty(), where, ": metadata \"", key, "\" = \"",
        it->second, "\" is not an unsigned 64-bit integer");
  return v;
}
/// Shortest decimal that reads back as the same double.
inline std::string double_string(double v) {
  char buf[64];
  const auto [p, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  return std::string(buf, p);
}
inline double parse_double(const std::map<std::string, std::string>& meta, const std::string& key,
                           const std::string& where) {
  const auto it = meta.find(key);
  check(it != meta.end(), where, ": metadata \"", key, "\" is missing");
  double v = 0;
  const char* b = it->second.data();
  const char* e = b + it->second.size();
  const auto [p, ec] = std::from_chars(b, e, v);
  check(ec == std::errc() && p == e && !it->second.empty(), where, ": metadata \"", key, "\" = \"",
        it->second, "\" is not a number");
  return v;
}

inline CheckpointState checkpoint_state_from(const SafetensorsReader& r, const std::string& where) {
  const auto& meta = r.metadata();
  const auto fmt = meta.find("spikelm.format");
  check(fmt != meta.end() && fmt->second == ckpt_format, where, ": not a spikelm checkpoint (metadata ",
        "\"spikelm.format\" is not \"", ckpt_format, "\")");
  const auto version = parse_u64(meta, "spikelm.format_version", where);
  check(version == ckpt_format_version, where, ": checkpoint format version ", version,
        " is not supported (this spikelm reads version ", ckpt_format_version, ")");
  CheckpointState s;
  s.step = parse_u64(meta, "spikelm.step", where);
  const std::string rng_prefix = "spikelm.rng.";
  for (const auto& [k, v] : meta) {
    if (k.starts_with(rng_prefix) && k.ends_with(".seed")) {
      const std::string name = k.substr(rng_prefix.size(), k.size() - rng_prefix.size() - 5);
      const auto seed = parse_u64(meta, k, where);
      const auto counter = parse_u64(meta, rng_prefix + name + ".counter", where);
      s.rngs.emplace(name, Rng(seed, counter));
    } else if (!k.starts_with(ckpt_prefix)) {
      s.metadata.emplace(k, v);
    }
  }
  return s;
}
} // namespace detail

/// Writes a checkpoint of `params`, `optimizer` (SGD, Adam or AdamW over the same parameter set) and `state`
/// to `path`, atomically. Parameters and buffers are stored in T's own dtype, so nothing is rounded.
template <class T, class Optimizer>
void save_checkpoint(const std::filesystem::path& path, const ParameterSet<T>& params,
                     const Optimizer& optimizer, const CheckpointState& state = {}) {
  SafetensorsWriter w;
  for (const auto& [k, v] : state.metadata) {
    check(!k.starts_with(detail::ckpt_prefix), "save_checkpoint: metadata key \"", k,
          "\" uses the reserved prefix \"spikelm.\"");
    w.set_metadata(k, v);
  }
  w.set_metadata("spikelm.format", std::string(detail::ckpt_format));
  w.set_metadata("spikelm.format_version", std::to_string(detail::ckpt_format_version));
  w.set_metadata("spikelm.version", SPIKELM_VERSION_STRING);
  w.set_metadata("spikelm.step", detail::u64_string(state.step));
  for (const auto& [name, rng] : state.rngs) {
    check(!name.empty(), "save_checkpoint: an Rng has an empty name");
    w.set_metadata(detail::concat("spikelm.rng.", name, ".seed"), detail::u64_string(rng.seed()));
    w.set_metadata(detail::concat("spikelm.rng.", name, ".counter"), detail::u64_string(rng.counter()));
  }
  w.set_metadata("spikelm.optimizer", detail::optimizer_kind(optimizer));
  w.set_metadata("spikelm.optimizer.options", detail::optimizer_options(optimizer).dump());
  w.set_metadata("spikelm.optimizer.steps", detail::u64_string(optimizer.steps()));
  w.set_metadata("spikelm.optimizer.base_lr", detail::double_string(optimizer.base_lr()));

  add_parameters(w, params, "model/");
  std::string present;
  for (const auto& entry : detail::optimizer_buffers(optimizer)) {
    const std::string& bname = entry.first;
    const std::vector<T>* buf = entry.second;
    if (buf->empty()) continue; // not allocated yet (before the first step, or SGD without momentum)
    check(buf->size() == params.numel(), "save_checkpoint: optimizer buffer '", bname, "' holds ",
          buf->size(), " values but the parameter set has ", params.numel(),
          " (is the optimizer over another parameter set?)");
    present += (present.empty() ? "" : ",") + bname;
    std::size_t off = 0;
    params.for_each([&](const Parameter<T>& p) {
      w.add(detail::concat("optimizer/", bname, "/", p.name),
            TensorView<const T>(buf->data() + off, p.value.shape()));
      off += p.size();
    });
  }
  w.set_metadata("spikelm.optimizer.buffers", present);
  w.save(path);
}

/// The step, Rng streams and user metadata of a checkpoint, without loading anything.
inline CheckpointState read_checkpoint_state(const std::filesystem::path& path) {
  return detail::checkpoint_state_from(SafetensorsReader::open(path),
                                       detail::concat("checkpoint '", path.string(), "'"));
}

/// Restores `params` and `optimizer` from a checkpoint written by save_checkpoint and returns its step, Rng
/// streams and metadata. The parameter set must match exactly (names, shapes), the optimizer must be of the
/// same kind (and, unless options.allow_optimizer_changes, have the same options). Everything is read and
/// checked before anything is modified, so a failed load throws spikelm::Error and changes nothing.
template <class T, class Optimizer>
CheckpointState load_checkpoint(const std::filesystem::path& path, ParameterSet<T>& params,
                                Optimizer& optimizer, const CheckpointLoadOptions& options = {}) {
  const std::string where = detail::concat("checkpoint '", path.string(), "'");
  const SafetensorsReader r = SafetensorsReader::open(path);
  CheckpointState state = detail::checkpoint_state_from(r, where);
  const auto& meta = r.metadata();

  const auto kind = meta.find("spikelm.optimizer");
  check(kind != meta.end(), where, ": metadata \"spikelm.optimizer\" is missing");
  check(kind->second == detail::optimizer_kind(optimizer), where, ": it holds the state of a '", kind->second,
        "' optimizer, not of a '", detail::optimizer_kind(optimizer), "'");
  const auto opts = meta.find("spikelm.optimizer.options");
  check(opts != meta.end(), where, ": metadata \"spikelm.optimizer.options\" is missing");
  const std::string current = detail::optimizer_options(optimizer).dump();
  check(options.allow_optimizer_changes || opts->second == current, where, ": the optimizer's options ",
        current, " differ from the checkpoint's ", opts->second,
        " (set CheckpointLoadOptions::allow_optimizer_changes to resume with new options)");
  const std::uint64_t opt_steps = detail::parse_u64(meta, "spikelm.optimizer.steps", where);
  const double base_lr = detail::parse_double(meta, "spikelm.optimizer.base_lr", where);
  const auto dtype_ok = [&](const TensorInfo& t) {
    check(t.dtype == dtype_of<T>(), where, ": tensor '", t.name, "' has dtype ", t.dtype, ", expected ",
          dtype_of<T>(), " (the parameter set's type)");
  };

  // Parameters: all of them, exactly; nothing else under "model/".
  for (const auto& t : r.tensors())
    if (t.name.starts_with("model/")) dtype_ok(t);

  // Optimizer buffers: read and checked into temporaries.
  std::set<std::string> listed;
  {
    const auto b = meta.find("spikelm.optimizer.buffers");
    check(b != meta.end(), where, ": metadata \"spikelm.optimizer.buffers\" is missing");
    std::string_view s = b->second;
    while (!s.empty()) {
      const auto comma = s.find(',');
      listed.insert(std::string(s.substr(0, comma)));
      s = comma == std::string_view::npos ? std::string_view() : s.substr(comma + 1);
    }
  }
  auto buffers = detail::optimizer_buffers(optimizer);
  std::set<std::string> known;
  std::vector<std::vector<T>> staged(buffers.size());
  for (std::size_t k = 0; k < buffers.size(); ++k) {
    const std::string& bname = buffers[k].first;
    known.insert(bname);
    if (listed.count(bname) == 0) continue;
    staged[k].resize(params.numel());
    std::size_t off = 0;
    params.for_each([&](Parameter<T>& p) {
      const std::string tname = detail::concat("optimizer/", bname, "/", p.name);
      check(r.contains(tname), where, ": optimizer buffer tensor '", tname, "' is missing");
      dtype_ok(r.info(tname));
      r.read_into(tname, TensorView<T>(staged[k].data() + off, p.value.shape()));
      off += p.size();
    });
  }
  for (const auto& name : listed)
    check(known.count(name) != 0, where, ": unknown optimizer buffer '", name, "' for a '", kind->second,
          "' optimizer");
  for (const auto& t : r.tensors()) {
    if (!t.name.starts_with("optimizer/")) {
      check(t.name.starts_with("model/"), where, ": unexpected tensor '", t.name, "'");
      continue;
    }
    const auto rest = std::string_view(t.name).substr(10);
    const auto slash = rest.find('/');
    check(slash != std::string_view::npos && listed.count(std::string(rest.substr(0, slash))) != 0 &&
              params.contains(std::string(rest.substr(slash + 1))),
          where, ": unexpected tensor '", t.name, "'");
  }

  // Parameters last: load_parameters validates everything before it assigns anything.
  load_parameters(params, r, ParameterIoOptions{"model/", false, false});
  for (std::size_t k = 0; k < buffers.size(); ++k) *buffers[k].second = std::move(staged[k]);
  optimizer.set_steps(static_cast<std::size_t>(opt_steps));
  optimizer.set_base_lr(base_lr);
  return state;
}

SPIKELM_NAMESPACE_END

#endif // SPIKELM_IO_CHECKPOINT_HPP
