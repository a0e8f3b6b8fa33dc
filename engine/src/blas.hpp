// The only door to OpenBLAS. <cblas.h> cannot share a translation unit with
// xtensor-blas headers (duplicate CBLAS_ORDER), so the calls live in blas.cpp alone.
#pragma once

#include <cstddef>

namespace xgrad::detail {
/// C = alpha op(A) op(B) + beta C on row-major buffers; op(X) = X^T when trans_x.
/// op(A) is m x k, op(B) is k x n, C is m x n.
template <class T>
void gemm(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k, T alpha,
          const T* a, const T* b, T beta, T* c);
}  // namespace xgrad::detail
