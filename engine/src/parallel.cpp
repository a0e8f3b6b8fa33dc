// The one place where xgrad opens an OpenMP parallel region (see parallel.hpp).
#include "xgrad/parallel.hpp"

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <limits>

namespace xgrad {
namespace detail {

std::size_t chunk_edge(std::size_t n, std::size_t part, std::size_t parts, std::size_t align) {
  if (part >= parts) return n;
  const std::size_t even = n * part / parts;
  return std::min(n, (even + align / 2) / align * align);
}

namespace {
using Clock = std::chrono::steady_clock;

std::int64_t nanoseconds_since(Clock::time_point t0) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t0).count();
}

/// The contention guard (parallel.hpp): how many regions still run on one thread, the
/// next penalty, and whether the guard is on.
struct ContentionGuard {
  std::atomic<int> serial_left{0};
  std::atomic<unsigned> recent{0};  // bit i: the i-th last judged region was slow
  std::atomic<int> penalty{kFirstPenalty};
  std::atomic<bool> enabled{true};
  static constexpr int kFirstPenalty = 256;      // regions: ~10 MNIST steps
  static constexpr int kLongestPenalty = 65536;  // ~3 s of one-thread MNIST steps
};

ContentionGuard& guard() {
  static ContentionGuard g;
  return g;
}

/// True (and one region of the penalty used up) when this region should run serially.
bool serving_penalty() {
  ContentionGuard& g = guard();
  int left = g.serial_left.load(std::memory_order_relaxed);
  while (left > 0) {
    if (g.serial_left.compare_exchange_weak(left, left - 1, std::memory_order_relaxed)) {
      return true;
    }
  }
  return false;
}

}  // namespace

/// A region took `wall` ns and its fastest thread worked `fastest` ns. A thread that was
/// not running (descheduled for another process) shows as a wait of a time slice, i.e.
/// milliseconds; waking a sleeping worker costs tens of microseconds. Two among the last
/// eight regions that waited beyond 300 µs and beyond the fastest thread's own work count
/// as contention: the next regions run serially, for a penalty that quadruples while
/// contention persists and halves with each clean region.
void judge_region(std::int64_t wall, std::int64_t fastest) {
  ContentionGuard& g = guard();
  const std::int64_t wait = wall - fastest;
  if (wait > std::max<std::int64_t>(300'000, fastest)) {
    // One slow region alone is a hiccup (a page fault, the hypervisor taking a vCPU for a
    // moment): a few per run on a quiet machine. Two among the last eight is a neighbour.
    const unsigned seen = ((g.recent.load(std::memory_order_relaxed) << 1) | 1u) & 0xFFu;
    g.recent.store(seen, std::memory_order_relaxed);
    if (__builtin_popcount(seen) < 2) return;
    g.recent.store(0, std::memory_order_relaxed);
    const int p = g.penalty.load(std::memory_order_relaxed);
    g.serial_left.store(p, std::memory_order_relaxed);
    g.penalty.store(std::min(4 * p, ContentionGuard::kLongestPenalty), std::memory_order_relaxed);
  } else {
    g.recent.store((g.recent.load(std::memory_order_relaxed) << 1) & 0xFFu,
                   std::memory_order_relaxed);
    // Halved, not reset: under a neighbour that comes and goes, some regions run clean.
    const int p = g.penalty.load(std::memory_order_relaxed);
    g.penalty.store(std::max(p / 2, ContentionGuard::kFirstPenalty), std::memory_order_relaxed);
  }
}

int contention_serial_regions_left() {
  return guard().serial_left.load(std::memory_order_relaxed);
}

void set_contention_guard(bool on) {
  guard().enabled.store(on);
  guard().serial_left.store(0);
  guard().recent.store(0);
  guard().penalty.store(ContentionGuard::kFirstPenalty);
}

void parallel_ranges(std::size_t n, std::size_t min_chunk, std::size_t align, RangeBody body,
                     void* context) {
  const std::size_t most = std::max<std::size_t>(1, n / std::max<std::size_t>(1, min_chunk));
  const int team =
      static_cast<int>(std::min<std::size_t>(static_cast<std::size_t>(threads()), most));
  // Serial when nested, and when the OpenBLAS loaded is not its OpenMP build: a second
  // pool next to OpenBLAS's own would fight it (docs/engine.md §8).
  const bool guarded = guard().enabled.load(std::memory_order_relaxed);
  if (team <= 1 || omp_in_parallel() || !one_thread_pool() || (guarded && serving_penalty())) {
    body(context, 0, n);
    return;
  }
  align = std::max<std::size_t>(1, align);
  std::exception_ptr failure;  // the first exception of any chunk, rethrown after the region
  // The fastest thread's own work and the last thread's finish, in ns from t0.
  std::atomic<std::int64_t> fastest{std::numeric_limits<std::int64_t>::max()}, last_end{0};
  const Clock::time_point t0 = Clock::now();
#pragma omp parallel num_threads(team)
  {
    const std::int64_t start = nanoseconds_since(t0);
    const auto parts = static_cast<std::size_t>(omp_get_num_threads());
    const auto part = static_cast<std::size_t>(omp_get_thread_num());
    const std::size_t begin = chunk_edge(n, part, parts, align);
    const std::size_t end = chunk_edge(n, part + 1, parts, align);
    try {
      if (begin < end) body(context, begin, end);
    } catch (...) {
#pragma omp critical(xgrad_parallel_failure)
      if (!failure) failure = std::current_exception();
    }
    const std::int64_t finish = nanoseconds_since(t0);
    std::int64_t f = fastest.load(std::memory_order_relaxed);
    while (begin < end && finish - start < f && !fastest.compare_exchange_weak(f, finish - start)) {
    }
    std::int64_t l = last_end.load(std::memory_order_relaxed);
    while (finish > l && !last_end.compare_exchange_weak(l, finish)) {
    }
  }
  // A chunk that threw ended early: its time says nothing about the others.
  if (guarded && !failure && fastest.load() != std::numeric_limits<std::int64_t>::max()) {
    judge_region(last_end.load(), fastest.load());
  }
  if (failure) std::rethrow_exception(failure);
}

}  // namespace detail
}  // namespace xgrad
