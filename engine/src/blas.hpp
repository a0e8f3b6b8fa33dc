// The only door to OpenBLAS. <cblas.h> cannot share a translation unit with
// xtensor-blas headers (duplicate CBLAS_ORDER), so the calls live in blas.cpp alone.
#pragma once

#include <cstddef>

namespace xgrad::detail {
/// C = alpha op(A) op(B) + beta C on row-major buffers; op(X) = X^T when trans_x.
/// op(A) is m x k, op(B) is k x n, C is m x n. BLAS semantics: beta = 0 means C is not
/// read, alpha = 0 or k = 0 means A and B are not read. The path depends on the shape
/// (blas.cpp): own loops when k, n or m is 1, OpenBLAS otherwise; rounding may differ
/// between paths, the meaning does not. A large product is computed in blocks of rows or
/// columns fixed by its shape and shared out over the pool: the same bits at any thread
/// count (tests/engine/test_gemm.cpp).
template <class T>
void gemm(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k, T alpha,
          const T* a, const T* b, T beta, T* c);

/// C[i, j] = a[i] b[j] + row[j] for C m x n: a product with k = 1 plus a bias row, in
/// one pass (gemm's k = 1 path on a C prefilled with the row gives the same bits).
template <class T>
void outer_plus_row(std::size_t m, std::size_t n, const T* a, const T* b, const T* row, T* c);

/// out[j] = sum_i M[i, j] + beta out[j] for j < cols, M rows x cols row-major: the
/// product of a row of ones and M (a bias gradient), 4 SIMD batches of columns in
/// registers over all rows. beta = 0 means out is not read. float64 only: float sums
/// go through double (op_support.hpp, sum_to_shape_in_double).
template <class T>
void sum_rows(std::size_t rows, std::size_t cols, const T* m, T beta, T* out);

/// The blocks of C's rows or columns gemm computes an m x n x k product in (1: one call),
/// from the shape alone, so that any thread count makes the same calls. For the tests.
std::size_t gemm_blocks(std::size_t m, std::size_t n, std::size_t k);

/// While alive, OpenBLAS calls made on this thread run single-threaded: the calling
/// thread's OpenMP setting is 1, and its previous value comes back at the end (threads.cpp
/// says why). Inside a parallel region it does nothing.
class OneBlasThread {
 public:
  OneBlasThread();
  ~OneBlasThread();
  OneBlasThread(const OneBlasThread&) = delete;
  OneBlasThread& operator=(const OneBlasThread&) = delete;

 private:
  int saved_ = 0;  // the setting to restore, 0 if it was left alone
};
}  // namespace xgrad::detail
