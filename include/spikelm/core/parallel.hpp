// spikelm: thread-count control and a deterministic parallel-for over OpenMP (serial without OpenMP).
#ifndef SPIKELM_CORE_PARALLEL_HPP
#define SPIKELM_CORE_PARALLEL_HPP

#include "../config.hpp"
#include "error.hpp"

#include <cstddef>
#include <cstdint>

#if SPIKELM_HAS_OPENMP
#include <omp.h>
#endif

SPIKELM_NAMESPACE_BEGIN

/// Threads the kernels may use (1 without OpenMP).
inline int max_threads() noexcept {
#if SPIKELM_HAS_OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

/// Sets the number of threads the kernels use from now on (no effect without OpenMP).
inline void set_num_threads(int n) {
  check(n >= 1, "set_num_threads: need at least one thread, got ", n);
#if SPIKELM_HAS_OPENMP
  omp_set_num_threads(n);
#endif
}

/// Sets the thread count for its lifetime and restores the previous one after.
class ScopedThreads {
 public:
  explicit ScopedThreads(int n) : previous_(max_threads()) { set_num_threads(n); }
  ~ScopedThreads() {
#if SPIKELM_HAS_OPENMP
    omp_set_num_threads(previous_);
#endif
  }
  ScopedThreads(const ScopedThreads&) = delete;
  ScopedThreads& operator=(const ScopedThreads&) = delete;

 private:
  int previous_;
};

/// Calls f(i) for i in [0, n), statically split over threads when `work` (a count of scalar operations for
/// the whole loop) exceeds SPIKELM_DEFAULT_PARALLEL_GRAIN. Each i runs exactly once, on one thread, so a body
/// that writes only to index-i state gives the same result whatever the thread count.
template <class F>
void parallel_for(std::size_t n, std::size_t work, F&& f) {
#if SPIKELM_HAS_OPENMP
  if (n > 1 && work > static_cast<std::size_t>(SPIKELM_DEFAULT_PARALLEL_GRAIN) && !omp_in_parallel() &&
      omp_get_max_threads() > 1) {
    const auto count = static_cast<std::int64_t>(n);
#pragma omp parallel for schedule(static)
    for (std::int64_t i = 0; i < count; ++i) f(static_cast<std::size_t>(i));
    return;
  }
#else
  (void)work;
#endif
  for (std::size_t i = 0; i < n; ++i) f(i);
}

SPIKELM_NAMESPACE_END

#endif // SPIKELM_CORE_PARALLEL_HPP
