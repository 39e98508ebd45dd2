// spikelm: configuration, version macros and the versioned namespace.
//
// Every SPIKELM_DEFAULT_* knob may be overridden by defining it before the first spikelm include
// (or with -D on the command line).
#ifndef SPIKELM_CONFIG_HPP
#define SPIKELM_CONFIG_HPP

#define SPIKELM_VERSION_MAJOR 0
#define SPIKELM_VERSION_MINOR 1
#define SPIKELM_VERSION_PATCH 0
#define SPIKELM_VERSION_STRING "0.1.0"
#define SPIKELM_VERSION (SPIKELM_VERSION_MAJOR * 10000 + SPIKELM_VERSION_MINOR * 100 + SPIKELM_VERSION_PATCH)

#if !defined(__cplusplus) || __cplusplus < 202002L
#error "spikelm needs C++20 (compile with -std=c++20 or link spikelm::spikelm, which asks for it)"
#endif

// ---------------------------------------------------------------------------------------------------------
// Versioned inline namespace: objects built against different versions, or with and without the SIMD
// kernels, cannot link together silently (the mangled names differ).
#define SPIKELM_CONCAT_EX(a, b, c, d) a##b##_##c##d
#define SPIKELM_CONCAT(a, b, c, d) SPIKELM_CONCAT_EX(a, b, c, d)
#if defined(SPIKELM_DISABLE_SIMD)
#define SPIKELM_ABI_SUFFIX _scalar
#else
#define SPIKELM_ABI_SUFFIX
#endif
#define SPIKELM_ABI_NAMESPACE                                                                                \
  SPIKELM_CONCAT(v, SPIKELM_VERSION_MAJOR, SPIKELM_VERSION_MINOR, SPIKELM_ABI_SUFFIX)

#define SPIKELM_NAMESPACE_BEGIN                                                                              \
  namespace spikelm {                                                                                        \
  inline namespace SPIKELM_ABI_NAMESPACE {
#define SPIKELM_NAMESPACE_END                                                                                \
  }                                                                                                          \
  }

// ---------------------------------------------------------------------------------------------------------
// Defaults (override before including spikelm).

/// Alignment in bytes of every Tensor allocation (a cache line; enough for AVX-512 loads).
#ifndef SPIKELM_DEFAULT_ALIGNMENT
#define SPIKELM_DEFAULT_ALIGNMENT 64
#endif

/// Seed of a default-constructed Rng.
#ifndef SPIKELM_DEFAULT_SEED
#define SPIKELM_DEFAULT_SEED 0x5EED5EEDULL
#endif

/// Below this many scalar operations a kernel runs on one thread (OpenMP start-up costs more).
#ifndef SPIKELM_DEFAULT_PARALLEL_GRAIN
#define SPIKELM_DEFAULT_PARALLEL_GRAIN 32768
#endif

/// Energy per synaptic operation, picojoules (45 nm figures used across the SNN literature).
#ifndef SPIKELM_DEFAULT_ENERGY_AC_PJ
#define SPIKELM_DEFAULT_ENERGY_AC_PJ 0.9
#endif
#ifndef SPIKELM_DEFAULT_ENERGY_MAC_PJ
#define SPIKELM_DEFAULT_ENERGY_MAC_PJ 4.6
#endif

// ---------------------------------------------------------------------------------------------------------
// Feature switches.

#if defined(_OPENMP)
#define SPIKELM_HAS_OPENMP 1
#else
#define SPIKELM_HAS_OPENMP 0
#endif

#if defined(SPIKELM_DISABLE_SIMD)
#define SPIKELM_HAS_SIMD 0
#else
#define SPIKELM_HAS_SIMD 1
#endif

#define SPIKELM_STRINGIFY_EX(x) #x
#define SPIKELM_STRINGIFY(x) SPIKELM_STRINGIFY_EX(x)
#define SPIKELM_PRAGMA(x) _Pragma(#x)

#if SPIKELM_HAS_OPENMP
#define SPIKELM_OMP(directive) SPIKELM_PRAGMA(omp directive)
#else
#define SPIKELM_OMP(directive)
#endif

SPIKELM_NAMESPACE_BEGIN
/// Library version as a string, "major.minor.patch".
inline constexpr const char* version_string() noexcept {
  return SPIKELM_VERSION_STRING;
}
SPIKELM_NAMESPACE_END

#endif // SPIKELM_CONFIG_HPP
