// spikelm: language-model quality from the negative log-likelihood in nats — perplexity and bits per token
// (bits per character for a character-level model).
#ifndef SPIKELM_METRICS_PERPLEXITY_HPP
#define SPIKELM_METRICS_PERPLEXITY_HPP

#include "../config.hpp"
#include "../core/error.hpp"

#include <cmath>
#include <cstdint>
#include <numbers>

SPIKELM_NAMESPACE_BEGIN

namespace detail {
/// NLL is non-negative; tiny negative values from float rounding (a near-certain prediction) are accepted.
inline void check_nll(double nll, const char* what) {
  check(std::isfinite(nll) && nll >= -1e-6, what,
        ": the negative log-likelihood must be finite and >= 0, got ", nll);
}
} // namespace detail

/// Mean NLL per token from a sum over `count` tokens. Throws spikelm::Error when count is 0 or the sum is not
/// finite or negative.
[[nodiscard]] inline double mean_nll(double sum_nll, std::uint64_t count) {
  check(count > 0, "mean_nll: no tokens (count 0) for a summed NLL of ", sum_nll);
  detail::check_nll(sum_nll, "mean_nll");
  return sum_nll / static_cast<double>(count);
}

/// exp(mean NLL in nats).
[[nodiscard]] inline double perplexity(double mean_nll_nats) {
  detail::check_nll(mean_nll_nats, "perplexity");
  return std::exp(mean_nll_nats);
}
/// Perplexity from a summed NLL over `count` tokens.
[[nodiscard]] inline double perplexity(double sum_nll_nats, std::uint64_t count) {
  return perplexity(mean_nll(sum_nll_nats, count));
}

/// Mean NLL in bits: nats / ln 2.
[[nodiscard]] inline double bits_per_token(double mean_nll_nats) {
  detail::check_nll(mean_nll_nats, "bits_per_token");
  return mean_nll_nats / std::numbers::ln2;
}
/// Bits per token from a summed NLL over `count` tokens.
[[nodiscard]] inline double bits_per_token(double sum_nll_nats, std::uint64_t count) {
  return bits_per_token(mean_nll(sum_nll_nats, count));
}
/// Bits per character: bits_per_token for a model whose tokens are characters.
[[nodiscard]] inline double bits_per_char(double mean_nll_nats) {
  return bits_per_token(mean_nll_nats);
}
/// Bits per character from a summed NLL over `count` characters.
[[nodiscard]] inline double bits_per_char(double sum_nll_nats, std::uint64_t count) {
  return bits_per_token(sum_nll_nats, count);
}

SPIKELM_NAMESPACE_END

#endif // SPIKELM_METRICS_PERPLEXITY_HPP
