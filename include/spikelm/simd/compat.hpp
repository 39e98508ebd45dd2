// spikelm: the one place that knows which xsimd is installed (Debian 12 ships 8.1.0; 9+ renamed some calls).
#ifndef SPIKELM_SIMD_COMPAT_HPP
#define SPIKELM_SIMD_COMPAT_HPP

#include "../config.hpp"

#include <xsimd/xsimd.hpp>

#include <algorithm>
#include <array>
#include <cstddef>
#include <type_traits>

#if !defined(XSIMD_VERSION_MAJOR) || XSIMD_VERSION_MAJOR < 8
#error "spikelm needs xsimd >= 8.1"
#endif

SPIKELM_NAMESPACE_BEGIN
namespace simd {

/// The instruction set the kernels use unless told otherwise: xsimd's best for the compile flags.
using default_arch = xsimd::default_arch;

/// An architecture tag that makes any kernel run its plain scalar loop (the fallback; also a reference in
/// tests): `simd::add<simd::scalar_arch>(...)`.
struct scalar_arch {};

namespace detail {
template <class T, class Arch>
constexpr std::size_t lanes_of() noexcept {
  if constexpr (std::is_same_v<Arch, scalar_arch> || !SPIKELM_HAS_SIMD)
    return 0;
  else
    return xsimd::batch<T, Arch>::size;
}
} // namespace detail

/// SIMD lanes for T on Arch, or 0 for scalar_arch and when the SIMD kernels are disabled
/// (SPIKELM_DISABLE_SIMD), in which case every kernel runs its scalar loop.
template <class T, class Arch>
inline constexpr std::size_t lanes = detail::lanes_of<T, Arch>();

namespace compat {
/// Sum of the lanes (xsimd 8: hadd; 9+: reduce_add).
template <class T, class A>
T reduce_add(const xsimd::batch<T, A>& b) noexcept {
#if XSIMD_VERSION_MAJOR >= 9
  return xsimd::reduce_add(b);
#else
  return xsimd::hadd(b);
#endif
}

/// Largest lane (xsimd 8 has no horizontal max).
template <class T, class A>
T reduce_max(const xsimd::batch<T, A>& b) noexcept {
#if XSIMD_VERSION_MAJOR >= 9
  return xsimd::reduce_max(b);
#else
  alignas(64) std::array<T, xsimd::batch<T, A>::size> tmp;
  b.store_aligned(tmp.data());
  return *std::max_element(tmp.begin(), tmp.end());
#endif
}
} // namespace compat
} // namespace simd
SPIKELM_NAMESPACE_END

#endif // SPIKELM_SIMD_COMPAT_HPP
