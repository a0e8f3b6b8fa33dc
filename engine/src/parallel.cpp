// The one place where xgrad opens an OpenMP parallel region (see parallel.hpp).
#include "xgrad/parallel.hpp"

#include <omp.h>

#include <algorithm>
#include <exception>

namespace xgrad {
namespace detail {

namespace {
/// Start of chunk `part` of `parts` over [0, n): n·part/parts rounded to the nearest
/// multiple of align, so the chunks are as even as the alignment allows.
std::size_t chunk_edge(std::size_t n, int part, int parts, std::size_t align) {
  if (part >= parts) return n;
  const std::size_t even = n * static_cast<std::size_t>(part) / static_cast<std::size_t>(parts);
  return std::min(n, (even + align / 2) / align * align);
}
}  // namespace

void parallel_ranges(std::size_t n, std::size_t min_chunk, std::size_t align, RangeBody body,
                     void* context) {
  const std::size_t most = std::max<std::size_t>(1, n / std::max<std::size_t>(1, min_chunk));
  const int team =
      static_cast<int>(std::min<std::size_t>(static_cast<std::size_t>(threads()), most));
  // Serial when nested, and when the OpenBLAS loaded is not its OpenMP build: a second
  // pool next to OpenBLAS's own would fight it (docs/engine.md §8).
  if (team <= 1 || omp_in_parallel() || !one_thread_pool()) {
    body(context, 0, n);
    return;
  }
  align = std::max<std::size_t>(1, align);
  std::exception_ptr failure;  // the first exception of any chunk, rethrown after the region
#pragma omp parallel num_threads(team)
  {
    const int parts = omp_get_num_threads();
    const int part = omp_get_thread_num();
    const std::size_t begin = chunk_edge(n, part, parts, align);
    const std::size_t end = chunk_edge(n, part + 1, parts, align);
    try {
      if (begin < end) body(context, begin, end);
    } catch (...) {
#pragma omp critical(xgrad_parallel_failure)
      if (!failure) failure = std::current_exception();
    }
  }
  if (failure) std::rethrow_exception(failure);
}

}  // namespace detail
}  // namespace xgrad
