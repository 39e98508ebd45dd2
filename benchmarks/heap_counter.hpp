// Heap accounting for benchmarks: replaces the global operator new / delete of the binary that includes this
// header (include it in exactly one translation unit per benchmark binary) and keeps the bytes live
// (glibc's malloc_usable_size) and the peak. HeapPeak measures the largest growth above the bytes live when
// it was constructed.
#ifndef SPIKELM_BENCHMARKS_HEAP_COUNTER_HPP
#define SPIKELM_BENCHMARKS_HEAP_COUNTER_HPP

#include <atomic>
#include <cstdlib>
#include <malloc.h>
#include <new>

namespace spikelm_bench {
inline std::atomic<std::size_t> g_live{0}, g_peak{0};

inline void note_alloc(void* p) {
  if (!p) throw std::bad_alloc();
  const std::size_t now = g_live.fetch_add(malloc_usable_size(p)) + malloc_usable_size(p);
  std::size_t peak = g_peak.load();
  while (now > peak && !g_peak.compare_exchange_weak(peak, now)) {
  }
}
inline void note_free(void* p) noexcept {
  if (p) g_live.fetch_sub(malloc_usable_size(p));
}

/// The peak of live heap bytes above those live at construction (not thread-aware: one measurement at a
/// time).
class HeapPeak {
 public:
  HeapPeak() : base_(g_live.load()) { g_peak.store(base_); }
  [[nodiscard]] std::size_t bytes() const { return g_peak.load() - base_; }

 private:
  std::size_t base_;
};
} // namespace spikelm_bench

void* operator new(std::size_t n) {
  void* p = std::malloc(n == 0 ? 1 : n);
  spikelm_bench::note_alloc(p);
  return p;
}
void* operator new(std::size_t n, std::align_val_t a) {
  const std::size_t al = static_cast<std::size_t>(a);
  void* p = std::aligned_alloc(al, (n + al - 1) / al * al);
  spikelm_bench::note_alloc(p);
  return p;
}
void* operator new[](std::size_t n) {
  return operator new(n);
}
void* operator new[](std::size_t n, std::align_val_t a) {
  return operator new(n, a);
}
void operator delete(void* p) noexcept {
  spikelm_bench::note_free(p);
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
  operator delete(p);
}
void operator delete(void* p, std::align_val_t) noexcept {
  operator delete(p);
}
void operator delete(void* p, std::size_t, std::align_val_t) noexcept {
  operator delete(p);
}
void operator delete[](void* p) noexcept {
  operator delete(p);
}
void operator delete[](void* p, std::size_t) noexcept {
  operator delete(p);
}
void operator delete[](void* p, std::align_val_t) noexcept {
  operator delete(p);
}
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept {
  operator delete(p);
}

#endif // SPIKELM_BENCHMARKS_HEAP_COUNTER_HPP
