// Counts heap allocations in a test executable by interposing every glibc entry point
// that allocates: malloc (where operator new ends), calloc, realloc, and the aligned
// ones. xsimd's aligned allocator, behind every xtensor buffer, calls posix_memalign,
// which does not go through malloc, so hooking malloc alone misses every xtensor buffer.
//
// Include this header in exactly one .cpp file of an executable: it defines the
// extern "C" functions. Under AddressSanitizer or ThreadSanitizer, which own the
// allocator, it defines nothing and XGRAD_COUNT_ALLOCATIONS stays undefined.
#pragma once

// GCC names the sanitizers by macro; clang (some versions only) by __has_feature.
#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define XGRAD_SANITIZER_OWNS_MALLOC 1
#endif
#endif
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__) && \
    !defined(XGRAD_SANITIZER_OWNS_MALLOC)
#define XGRAD_COUNT_ALLOCATIONS 1

#include <atomic>
#include <cerrno>
#include <cstddef>

namespace xgrad_test {
/// Allocations made so far by the whole process.
inline std::atomic<long> g_allocations{0};

/// Allocations made while running f.
template <class F>
long allocations_during(F&& f) {
  const long before = g_allocations.load();
  f();
  return g_allocations.load() - before;
}
}  // namespace xgrad_test

extern "C" void* __libc_malloc(std::size_t size);
extern "C" void* __libc_calloc(std::size_t count, std::size_t size);
extern "C" void* __libc_realloc(void* p, std::size_t size);
extern "C" void* __libc_memalign(std::size_t alignment, std::size_t size);

extern "C" void* malloc(std::size_t size) noexcept {
  xgrad_test::g_allocations.fetch_add(1, std::memory_order_relaxed);
  return __libc_malloc(size);
}
extern "C" void* calloc(std::size_t count, std::size_t size) noexcept {
  xgrad_test::g_allocations.fetch_add(1, std::memory_order_relaxed);
  return __libc_calloc(count, size);
}
extern "C" void* realloc(void* p, std::size_t size) noexcept {
  xgrad_test::g_allocations.fetch_add(1, std::memory_order_relaxed);
  return __libc_realloc(p, size);
}
extern "C" void* memalign(std::size_t alignment, std::size_t size) noexcept {
  xgrad_test::g_allocations.fetch_add(1, std::memory_order_relaxed);
  return __libc_memalign(alignment, size);
}
extern "C" void* aligned_alloc(std::size_t alignment, std::size_t size) noexcept {
  xgrad_test::g_allocations.fetch_add(1, std::memory_order_relaxed);
  return __libc_memalign(alignment, size);
}
extern "C" int posix_memalign(void** out, std::size_t alignment, std::size_t size) noexcept {
  xgrad_test::g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (alignment < sizeof(void*) || (alignment & (alignment - 1)) != 0) return EINVAL;
  void* p = __libc_memalign(alignment, size);
  if (p == nullptr) return ENOMEM;
  *out = p;
  return 0;
}

#endif
