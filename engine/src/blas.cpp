// OpenBLAS calls: GEMM for matmul and its backward, and the thread setting.
#include "blas.hpp"

#include <cblas.h>

#include <stdexcept>
#include <string>

#include "xgrad/threads.hpp"

namespace xgrad {
namespace detail {

template <>
void gemm<float>(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k,
                 float alpha, const float* a, const float* b, float beta, float* c) {
  if (m == 0 || n == 0) return;
  if (k == 0) {  // an empty product: BLAS rejects zero leading dimensions
    // beta = 0 means "C is not read" (BLAS semantics): the buffer may hold garbage.
    for (std::size_t i = 0; i < m * n; ++i)
      c[i] = beta == 0.0f ? 0.0f : c[i] * beta;
    return;
  }
  // Leading dimensions of the stored (untransposed) row-major buffers.
  const auto lda = static_cast<blasint>(trans_a ? m : k);
  const auto ldb = static_cast<blasint>(trans_b ? k : n);
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
              trans_b ? CblasTrans : CblasNoTrans, static_cast<blasint>(m), static_cast<blasint>(n),
              static_cast<blasint>(k), alpha, a, lda, b, ldb, beta, c, static_cast<blasint>(n));
}

template <>
void gemm<double>(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k,
                  double alpha, const double* a, const double* b, double beta, double* c) {
  if (m == 0 || n == 0) return;
  if (k == 0) {  // an empty product: BLAS rejects zero leading dimensions
    for (std::size_t i = 0; i < m * n; ++i)
      c[i] = beta == 0.0 ? 0.0 : c[i] * beta;
    return;
  }
  const auto lda = static_cast<blasint>(trans_a ? m : k);
  const auto ldb = static_cast<blasint>(trans_b ? k : n);
  cblas_dgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
              trans_b ? CblasTrans : CblasNoTrans, static_cast<blasint>(m), static_cast<blasint>(n),
              static_cast<blasint>(k), alpha, a, lda, b, ldb, beta, c, static_cast<blasint>(n));
}

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
