// spikelm: the library's exception type and checking helpers.
#ifndef SPIKELM_CORE_ERROR_HPP
#define SPIKELM_CORE_ERROR_HPP

#include "../config.hpp"

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

SPIKELM_NAMESPACE_BEGIN

/// Every error spikelm reports (bad shapes, bad configuration, malformed files, non-convergence) is thrown
/// as a spikelm::Error whose message names the function and the values involved.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

namespace detail {
template <class... Parts>
std::string concat(Parts&&... parts) {
  std::ostringstream os;
  (os << ... << std::forward<Parts>(parts));
  return os.str();
}
} // namespace detail

/// Throws spikelm::Error with the streamed parts as message.
template <class... Parts>
[[noreturn]] void fail(Parts&&... parts) {
  throw Error(detail::concat(std::forward<Parts>(parts)...));
}

/// Throws spikelm::Error with the streamed parts as message when `condition` is false.
template <class... Parts>
void check(bool condition, Parts&&... parts) {
  if (!condition) fail(std::forward<Parts>(parts)...);
}

SPIKELM_NAMESPACE_END

#endif // SPIKELM_CORE_ERROR_HPP
