// OpenBLAS calls: GEMM for matmul and its backward, and the thread setting.
#include "blas.hpp"

#include <cblas.h>

#include <stdexcept>
#include <string>

#include "xgrad/threads.hpp"

namespace xgrad {
namespace detail {

namespace {
// The two BLAS entry points under one name, so gemm<T> below is written once.
void cblas_gemm(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, blasint m, blasint n, blasint k,
                float alpha, const float* a, blasint lda, const float* b, blasint ldb, float beta,
                float* c, blasint ldc) {
  cblas_sgemm(CblasRowMajor, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
void cblas_gemm(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, blasint m, blasint n, blasint k,
                double alpha, const double* a, blasint lda, const double* b, blasint ldb,
                double beta, double* c, blasint ldc) {
  cblas_dgemm(CblasRowMajor, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
}  // namespace

template <class T>
void gemm(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k, T alpha,
          const T* a, const T* b, T beta, T* c) {
  if (m == 0 || n == 0) return;
  if (k == 0) {  // an empty product: BLAS rejects zero leading dimensions
    // beta = 0 means "C is not read" (BLAS semantics): the buffer may hold garbage.
    for (std::size_t i = 0; i < m * n; ++i)
      c[i] = beta == T(0) ? T(0) : c[i] * beta;
    return;
  }
  // Leading dimensions of the stored (untransposed) row-major buffers.
  const auto lda = static_cast<blasint>(trans_a ? m : k);
  const auto ldb = static_cast<blasint>(trans_b ? k : n);
  cblas_gemm(trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
             static_cast<blasint>(m), static_cast<blasint>(n), static_cast<blasint>(k), alpha, a,
             lda, b, ldb, beta, c, static_cast<blasint>(n));
}
template void gemm<float>(bool, bool, std::size_t, std::size_t, std::size_t, float, const float*,
                          const float*, float, float*);
template void gemm<double>(bool, bool, std::size_t, std::size_t, std::size_t, double, const double*,
                           const double*, double, double*);

}  // namespace detail

void set_threads(int n) {
  if (n < 1) {
    throw std::invalid_argument("set_threads: thread count must be at least 1, got " +
                                std::to_string(n));
  }
  openblas_set_num_threads(n);
}

int threads() {
  return openblas_get_num_threads();
}

}  // namespace xgrad
