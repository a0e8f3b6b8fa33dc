// The one thread setting (threads.hpp), and OpenBLAS kept to one thread per call.
//
// xgrad keeps the count itself and never lets OpenBLAS thread xgrad's own products: large
// products are computed in blocks shared out over xgrad's pool (blas.cpp), each block a
// single-threaded OpenBLAS call. OpenBLAS's OpenMP build takes its count from the
// *calling* thread's OpenMP setting on every call (one thread inside a parallel region),
// so OneBlasThread sets that to 1 around a call made outside a region and restores it.
// With another OpenBLAS build (an installed binary that lost its RUNPATH) parallel_for
// runs serially and OpenBLAS threads the products with set_threads' count, as before.
#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <stdexcept>
#include <string>

#include "blas.hpp"
#include "xgrad/parallel.hpp"
#include "xgrad/threads.hpp"

namespace xgrad {

namespace {
std::atomic<int>& thread_count() {
  // Until set_threads: what OpenBLAS chose (OPENBLAS_NUM_THREADS, OMP_NUM_THREADS or cores).
  static std::atomic<int> count{std::max(1, openblas_get_num_threads())};
  return count;
}
}  // namespace

void set_threads(int n) {
  if (n < 1) {
    throw std::invalid_argument("set_threads: thread count must be at least 1, got " +
                                std::to_string(n));
  }
  thread_count().store(n);
  // For code that calls BLAS or LAPACK itself (xtensor-blas, the benchmarks' bare GEMMs,
  // a user's own cblas call): OpenBLAS follows the calling thread's OpenMP setting (its
  // OpenMP build) or its own count (any other build). xgrad's own calls run at one
  // thread whatever these say (OneBlasThread).
  openblas_set_num_threads(n);
  omp_set_num_threads(n);
}

int threads() {
  return thread_count().load(std::memory_order_relaxed);
}

namespace detail {

OneBlasThread::OneBlasThread() {
  if (omp_in_parallel()) return;  // OpenBLAS runs one thread in a region already
  const int here = omp_get_max_threads();
  if (here != 1) {
    saved_ = here;
    omp_set_num_threads(1);
  }
}

OneBlasThread::~OneBlasThread() {
  if (saved_ > 0) omp_set_num_threads(saved_);
}

bool one_thread_pool() {
  // openblas_get_parallel(): 0 sequential build, 1 pthreads, 2 OpenMP.
  static const bool openmp = openblas_get_parallel() == 2;
  return openmp;
}

}  // namespace detail
}  // namespace xgrad
