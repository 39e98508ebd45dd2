// Helpers shared by the example programs egru_lm and spikegpt: command-line options, the bundled corpus and
// its 90/5/5 split, comma-separated token lists, next-token sampling (temperature, top-p) and timing.
#ifndef SPIKELM_EXAMPLES_COMMON_HPP
#define SPIKELM_EXAMPLES_COMMON_HPP

#include <spikelm/spikelm.hpp>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <exception>
#include <functional>
#include <initializer_list>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace spikelm_examples {
using namespace spikelm;
using Clock = std::chrono::steady_clock;

/// Seconds since `t0`.
inline double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

/// The comma-separated items of `text`, unchanged ("3,1" -> {"3", "1"}; "" -> {""}).
inline std::vector<std::string_view> split_commas(std::string_view text) {
  std::vector<std::string_view> items;
  for (std::size_t pos = 0; pos <= text.size();) {
    const std::size_t end = std::min(text.find(',', pos), text.size());
    items.push_back(text.substr(pos, end - pos));
    pos = end + 1;
  }
  return items;
}

/// Options "--key value" and flags "--flag" of one command line. Malformed values throw spikelm::Error naming
/// the option (the programs print it after their name).
struct Args {
  std::map<std::string, std::string> kv;

  [[nodiscard]] bool has(const std::string& k) const { return kv.count(k) != 0; }
  [[nodiscard]] std::string get(const std::string& k, const std::string& def) const {
    auto it = kv.find(k);
    return it == kv.end() ? def : it->second;
  }
  /// The value of --k as a non-negative integer, or `def` when absent.
  [[nodiscard]] std::size_t size(const std::string& k, std::size_t def) const {
    if (!has(k)) return def;
    const std::string& s = kv.at(k);
    std::size_t v = 0;
    const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    check(ec == std::errc() && p == s.data() + s.size() && !s.empty(), "option --", k,
          " expects a non-negative integer, got '", s, "'");
    return v;
  }
  /// The value of --k as a number, or `def` when absent.
  [[nodiscard]] double real(const std::string& k, double def) const {
    return has(k) ? parse_real(k, kv.at(k)) : def;
  }
  /// The value of --k as comma-separated numbers ("0.2,0.2,0.05"); each item is checked as real() checks one.
  [[nodiscard]] std::vector<double> reals(const std::string& k) const {
    std::vector<double> out;
    for (std::string_view item : split_commas(get(k, ""))) out.push_back(parse_real(k, std::string(item)));
    return out;
  }
  /// s as a finite number, or an error naming option --k.
  static double parse_real(const std::string& k, const std::string& s) {
    std::size_t used = 0;
    double v = 0;
    try {
      v = std::stod(s, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    check(used == s.size() && !s.empty() && std::isfinite(v), "option --", k, " expects a number, got '", s,
          "'");
    return v;
  }
  /// Throws when an option is not one of `known` (a misspelt option would otherwise be ignored silently).
  void allow(std::initializer_list<std::string_view> known, const std::string& command) const {
    for (const auto& [k, v] : kv) {
      if (std::find(known.begin(), known.end(), k) != known.end()) continue;
      std::string list;
      for (std::string_view n : known) list.append(list.empty() ? "--" : ", --").append(n);
      fail(command, ": unknown option --", k, " (options: ", list, ")");
    }
  }
};

/// Parses argv[first..] as "--key value" pairs; the names in `flags` take no value.
inline Args parse_args(int argc, char** argv, int first, std::initializer_list<std::string_view> flags = {}) {
  Args a;
  for (int i = first; i < argc; ++i) {
    std::string k = argv[i];
    check(k.rfind("--", 0) == 0 && k.size() > 2, "expected an option (--name), got '", k, "'");
    k = k.substr(2);
    if (std::find(flags.begin(), flags.end(), k) != flags.end()) {
      a.kv[k] = "1";
      continue;
    }
    check(i + 1 < argc, "option --", k, " needs a value");
    a.kv[k] = argv[++i];
  }
  return a;
}

#ifdef SPIKELM_EXAMPLES_DATA_DIR
/// The bundled corpus: examples/data/kjv.txt (the King James Bible).
inline std::string default_data() {
  return std::string(SPIKELM_EXAMPLES_DATA_DIR) + "/kjv.txt";
}
#endif

/// A character-level corpus: its vocabulary and the 90/5/5 train/validation/test split of its characters.
struct Corpus {
  CharTokenizer vocab;
  TokenSplits splits;
};

/// Reads a UTF-8 text file and splits it 90/5/5. The vocabulary is the file's characters unless `vocab` is
/// given (then a character outside it is an error naming its byte offset).
inline Corpus load_corpus(const std::string& path, const CharTokenizer* vocab = nullptr) {
  const std::string text = read_text_file(path);
  Corpus c{vocab ? *vocab : CharTokenizer::from_text(text), {}};
  const auto ids = c.vocab.encode(text);
  c.splits = split_tokens(ids, 0.05, 0.05);
  return c;
}

/// Token ids from "3,1,4,1" (decimal, comma-separated, no spaces needed; spaces are ignored).
inline std::vector<TokenId> parse_token_list(std::string_view text) {
  std::vector<TokenId> ids;
  for (std::string_view item : split_commas(text)) {
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    TokenId v = 0;
    const auto [p, ec] = std::from_chars(item.data(), item.data() + item.size(), v);
    check(!item.empty() && ec == std::errc() && p == item.data() + item.size(),
          "--tokens expects comma-separated integer ids like 3,1,4,1; item ", ids.size(), " is '", item, "'");
    ids.push_back(v);
  }
  check(!ids.empty(), "--tokens is empty");
  return ids;
}

/// Draws the next token from unnormalised scores (logits or log-probabilities) `scores`, as RWKV's and
/// SpikeGPT's sample_logits: p = softmax(scores); with top_p < 1, only the most probable tokens whose
/// cumulative probability first reaches top_p are kept (ties with the cut-off too); then p is raised to
/// 1 / temperature and renormalised. Temperature 0 picks the most probable token. One uniform draw per call.
inline TokenId sample_token(std::span<const float> scores, double temperature, double top_p, Rng& rng) {
  check(!scores.empty(), "sample_token: no scores");
  check(temperature >= 0 && top_p > 0 && top_p <= 1,
        "sample_token: need temperature >= 0 and top-p in (0, 1], got ", temperature, " and ", top_p);
  const std::size_t V = scores.size();
  const auto best = static_cast<std::size_t>(std::max_element(scores.begin(), scores.end()) - scores.begin());
  const double u = rng.uniform<double>();
  if (temperature == 0) return static_cast<TokenId>(best);
  const double mx = scores[best];
  std::vector<double> p(V);
  double total = 0;
  for (std::size_t v = 0; v < V; ++v) total += p[v] = std::exp(static_cast<double>(scores[v]) - mx);
  for (double& x : p) x /= total;
  double cutoff = 0;
  if (top_p < 1) {
    std::vector<double> sorted(p);
    std::sort(sorted.begin(), sorted.end(), std::greater<>());
    double cum = 0;
    for (double x : sorted) {
      cum += x;
      cutoff = x;
      if (cum >= top_p) break;
    }
  }
  // p^(1/T) relative to the largest p, in the log domain: exp((s - max) / T), so nothing underflows to
  // all-zero.
  total = 0;
  std::size_t last = best;
  for (std::size_t v = 0; v < V; ++v) {
    p[v] = p[v] < cutoff ? 0.0 : std::exp((static_cast<double>(scores[v]) - mx) / temperature);
    total += p[v];
    if (p[v] > 0) last = v;
  }
  double left = u * total;
  for (std::size_t v = 0; v < V; ++v)
    if (p[v] > 0 && (left -= p[v]) <= 0) return static_cast<TokenId>(v);
  return static_cast<TokenId>(last);
}

} // namespace spikelm_examples

#endif // SPIKELM_EXAMPLES_COMMON_HPP
