// Data-parallel loops over [0, n) on xgrad's one thread pool: OpenMP's, which OpenBLAS
// (its OpenMP build) uses for the GEMMs too, so loops and GEMMs never fight over the
// cores. The thread count is xgrad::threads(). Each thread gets one contiguous chunk, so
// an elementwise loop computes the same numbers at any thread count. Use it only for
// loops whose iterations are independent (no reductions across chunks).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <type_traits>

#include "xgrad/threads.hpp"

namespace xgrad {
namespace detail {
using RangeBody = void (*)(void* context, std::size_t begin, std::size_t end);
/// Runs body on chunks of [0, n) in parallel (see parallel_for).
void parallel_ranges(std::size_t n, std::size_t min_chunk, std::size_t align, RangeBody body,
                     void* context);
/// Start of chunk `part` of `parts` over [0, n): n·part/parts rounded to the nearest
/// multiple of align, so the chunks are as even as the alignment allows (n for part >=
/// parts). parallel_for's chunks and gemm's product blocks are cut this way.
std::size_t chunk_edge(std::size_t n, std::size_t part, std::size_t parts, std::size_t align);
/// True when the OpenBLAS loaded is its OpenMP build, whose pool parallel_for shares.
/// With another build loaded (an installed binary without its RUNPATH, LD_LIBRARY_PATH)
/// parallel_for runs serially rather than start a second pool.
bool one_thread_pool();

/// The contention guard of parallel_for (below): regions still to run on one thread.
int contention_serial_regions_left();
/// Turns the guard on (the default) or off, and clears its state. For tests that need
/// every region to run in parallel whatever else the machine is doing.
void set_contention_guard(bool on);
/// The guard's verdict on a region that took `wall` ns, whose fastest thread worked
/// `fastest` ns (parallel_for calls it after each region; tests, with made-up times).
void judge_region(std::int64_t wall, std::int64_t fastest);
}  // namespace detail

/// Items (floats or doubles) below which a chunk is not worth a thread: opening a
/// parallel region costs ~1 µs, about what streaming 16K numbers through a core takes.
inline constexpr std::size_t kParallelItems = std::size_t{1} << 14;

/// Calls body(begin, end) on disjoint chunks covering [0, n), one per thread, on at most
/// n / min_chunk threads; with one thread, or when n < 2·min_chunk, it is a single call
/// body(0, n) on the calling thread. Chunk edges fall on multiples of `align` items: the
/// default 16 keeps every element of a SIMD loop in the same register lane position as
/// in a serial pass (and off another thread's cache line); loops over rows pass 1.
/// An exception thrown by body is rethrown here after every chunk has finished.
///
/// Contention guard: a region waits for its slowest thread, and when another process
/// shares the cores the OS deschedules one of ours for whole time slices (ms) while the
/// other waits. On 2 cores with one busy neighbour, two-thread MNIST epochs took 3.3 s
/// against 0.48 s on one thread. So every region is timed. Two among the last eight that
/// waited more than 300 µs and more than their fastest thread worked send the next 256
/// regions to one thread (the chunks' results do not depend on it), quadrupling up to
/// 65536 while contention persists and halving with each clean region. Bodies should be
/// even for this reason too.
template <class Body>
void parallel_for(std::size_t n, std::size_t min_chunk, Body&& body, std::size_t align = 16) {
  if (n < 2 * min_chunk || threads() == 1) {
    body(std::size_t{0}, n);
    return;
  }
  using Fn = std::remove_reference_t<Body>;  // may be const: cast it back as it was
  detail::parallel_ranges(
      n, min_chunk, align,
      [](void* context, std::size_t begin, std::size_t end) {
        (*static_cast<Fn*>(context))(begin, end);
      },
      const_cast<void*>(static_cast<const void*>(std::addressof(body))));
}

}  // namespace xgrad
