// The one thread setting (threads.hpp). xgrad keeps the count itself: OpenBLAS's OpenMP
// build re-reads its count from the *calling* thread's OpenMP setting on every call, so a
// GEMM on a thread that never saw set_threads (a std::thread of the user's) would reset
// the count for the whole process. Every BLAS call goes through
// use_thread_setting_here() first, which puts this thread's OpenMP setting in line.
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
  openblas_set_num_threads(n);
  omp_set_num_threads(n);
}

int threads() {
  return thread_count().load(std::memory_order_relaxed);
}

namespace detail {

void use_thread_setting_here() {
  const int n = threads();
  if (omp_get_max_threads() != n) omp_set_num_threads(n);
  if (openblas_get_num_threads() != n) openblas_set_num_threads(n);
}

bool one_thread_pool() {
  // openblas_get_parallel(): 0 sequential build, 1 pthreads, 2 OpenMP.
  static const bool openmp = openblas_get_parallel() == 2;
  return openmp;
}

}  // namespace detail
}  // namespace xgrad
