// The one place where xgrad opens an OpenMP parallel region (see parallel.hpp).
#include "xgrad/parallel.hpp"

#include <omp.h>

#include <algorithm>

namespace xgrad {
namespace detail {

namespace {
// Chunk edges on multiples of 16 items: a 64-byte cache line of float, so two threads
// never write the same line (no false sharing) and SIMD loops keep their full width.
constexpr std::size_t kEdgeAlign = 16;

std::size_t chunk_edge(std::size_t n, int part, int parts) {
  if (part >= parts) return n;
  const std::size_t edge = n / static_cast<std::size_t>(parts) * static_cast<std::size_t>(part);
  return std::min(n, edge / kEdgeAlign * kEdgeAlign);
}
}  // namespace

void parallel_ranges(std::size_t n, std::size_t min_chunk, RangeBody body, void* context) {
  const std::size_t most = std::max<std::size_t>(1, n / std::max<std::size_t>(1, min_chunk));
  const int team =
      static_cast<int>(std::min<std::size_t>(static_cast<std::size_t>(threads()), most));
  if (team <= 1 || omp_in_parallel()) {
    body(context, 0, n);
    return;
  }
#pragma omp parallel num_threads(team)
  {
    const int parts = omp_get_num_threads();
    const int part = omp_get_thread_num();
    const std::size_t begin = chunk_edge(n, part, parts);
    const std::size_t end = chunk_edge(n, part + 1, parts);
    if (begin < end) body(context, begin, end);
  }
}

}  // namespace detail
}  // namespace xgrad
