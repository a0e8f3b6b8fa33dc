// The only door to OpenBLAS. <cblas.h> cannot share a translation unit with
// xtensor-blas headers (duplicate CBLAS_ORDER), so the calls live in blas.cpp alone.
#pragma once

#include <cstddef>

namespace xgrad::detail {
/// C = alpha op(A) op(B) + beta C on row-major buffers; op(X) = X^T when trans_x.
/// op(A) is m x k, op(B) is k x n, C is m x n. BLAS semantics: beta = 0 means C is not
/// read, alpha = 0 or k = 0 means A and B are not read. The path depends on the shape
/// (blas.cpp): own loops when k, n or m is 1, OpenBLAS otherwise; rounding may differ
/// between paths, the meaning does not.
template <class T>
void gemm(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k, T alpha,
          const T* a, const T* b, T beta, T* c);

/// Puts the calling thread's OpenMP thread count in line with xgrad::threads() before a
/// BLAS call (threads.cpp says why).
void use_thread_setting_here();
}  // namespace xgrad::detail
