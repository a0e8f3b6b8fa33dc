// OpenBLAS calls: GEMM for matmul and its backward, and the thread setting.
//
// Degenerate and small products do not go to OpenBLAS as they are. Its GEMM has a fixed
// cost that dominates when an operand is a vector: in the 1-50-50-1 Runge network
// (240 rows, float64) the products with k = 1 (x W1, and the gradient through the
// 50 -> 1 layer) took 2.7-4.1 us each in dgemm against 1.3-1.5 us for the loops below,
// and cblas_dger / cblas_dgemv were no faster than dgemm (2.4-2.6 us). For n = 1 or
// m = 1 the loops win on small products (the batch-5 network: 0.03 against 0.07 us) and
// a vector times a matrix (1.25 against 1.35 us at 240 x 50); dot products of rows lose
// to OpenBLAS above ~2000 elements and go there. And OpenBLAS's "small matrix" kernel for
// op(B) = B^T is ~25% slower than its kernel for B: with B small, transposing it into a
// stack buffer first is cheaper (240x50 times (50x50)^T: 31 -> 24 us).
#include "blas.hpp"

#include <cblas.h>

#include <algorithm>
#include <stdexcept>
#include <string>

#include <xsimd/xsimd.hpp>

#include "xgrad/parallel.hpp"
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

// BLAS semantics for every path: beta = 0 means C is not read (it may hold garbage or
// NaN), otherwise C = alpha op(A) op(B) + beta C.
template <class T>
T combine(T alpha, T sum, T beta, const T& c) {
  return beta == T(0) ? alpha * sum : alpha * sum + beta * c;
}

/// C[i, j] = alpha a[i] b[j] + beta C[i, j], C m x n: a product with k = 1. Whether a or b
/// is "transposed" does not matter, a vector is stored the same either way.
template <class T>
void outer(std::size_t m, std::size_t n, T alpha, const T* a, const T* b, T beta, T* c) {
  using B = xsimd::batch<T>;
  constexpr std::size_t w = B::size;
  for (std::size_t i = 0; i < m; ++i) {
    const T ai = alpha * a[i];
    const B av(ai);
    T* ci = c + i * n;
    std::size_t j = 0;
    if (beta == T(0)) {
      for (; j + w <= n; j += w)
        (av * B::load_unaligned(b + j)).store_unaligned(ci + j);
      for (; j < n; ++j)
        ci[j] = ai * b[j];
    } else {
      const B bv(beta);
      for (; j + w <= n; j += w) {
        const B r = xsimd::fma(av, B::load_unaligned(b + j), bv * B::load_unaligned(ci + j));
        r.store_unaligned(ci + j);
      }
      for (; j < n; ++j)
        ci[j] = ai * b[j] + beta * ci[j];
    }
  }
}

/// out[i..i+G) = alpha <M[r, :], v> + beta out[r] for the G rows from i, M row-major with
/// k columns: G independent FMA chains, their sums reduced w at a time (haddp).
template <std::size_t G, class T>
void dot_row_group(std::size_t i, std::size_t k, T alpha, const T* mat, const T* v, T beta,
                   T* out) {
  using B = xsimd::batch<T>;
  constexpr std::size_t w = B::size;
  static_assert(G % w == 0, "a group is whole batches of rows");
  B acc[G];
  for (std::size_t r = 0; r < G; ++r)
    acc[r] = B(T(0));
  std::size_t p = 0;
  for (; p + w <= k; p += w) {
    const B vp = B::load_unaligned(v + p);
    for (std::size_t r = 0; r < G; ++r)
      acc[r] = xsimd::fma(B::load_unaligned(mat + (i + r) * k + p), vp, acc[r]);
  }
  for (std::size_t r = 0; r < G; ++r) {
    T s = xsimd::hadd(acc[r]);
    for (std::size_t q = p; q < k; ++q)
      s += mat[(i + r) * k + q] * v[q];
    out[i + r] = combine(alpha, s, beta, out[i + r]);
  }
}

/// out[i] = alpha <M[i, :], v> + beta out[i] for i < rows, M rows x k row-major.
/// Rows go 8 (or a batch width, if more) at a time: one FMA chain each, enough chains to
/// hide the FMA latency.
template <class T>
void dot_rows(std::size_t rows, std::size_t k, T alpha, const T* mat, const T* v, T beta, T* out) {
  using B = xsimd::batch<T>;
  constexpr std::size_t w = B::size;
  constexpr std::size_t g = w > 8 ? w : 8;
  std::size_t i = 0;
  for (; i + g <= rows; i += g)
    dot_row_group<g>(i, k, alpha, mat, v, beta, out);
  for (; i + w <= rows; i += w)
    dot_row_group<w>(i, k, alpha, mat, v, beta, out);
  for (; i < rows; ++i) {
    B acc(T(0));
    std::size_t p = 0;
    for (; p + w <= k; p += w)
      acc = xsimd::fma(B::load_unaligned(mat + i * k + p), B::load_unaligned(v + p), acc);
    T s = xsimd::hadd(acc);
    for (; p < k; ++p)
      s += mat[i * k + p] * v[p];
    out[i] = combine(alpha, s, beta, out[i]);
  }
}

/// sum[q] = sum_p v[p] M[p, j + q w .. j + q w + w) for q < NB: NB batches of columns over
/// all k rows of M (row-major, cols columns), even and odd rows in separate accumulators
/// so that 2 NB FMA chains are in flight. With Ones, v is all ones and not read: plain
/// column sums (a bias gradient).
template <std::size_t NB, bool Ones, class T>
void vec_mat_columns(std::size_t k, std::size_t cols, const T* v, const T* mat, std::size_t j,
                     xsimd::batch<T>* sum) {
  using B = xsimd::batch<T>;
  constexpr std::size_t w = B::size;
  // acc + v[p] M[p, ...], or acc + M[p, ...] when v is all ones.
  auto add_row = [&](std::size_t p, const B& acc, std::size_t q) {
    const B row = B::load_unaligned(mat + p * cols + j + q * w);
    if constexpr (Ones) {
      return acc + row;
    } else {
      return xsimd::fma(B(v[p]), row, acc);
    }
  };
  B even[NB], odd[NB];
  for (std::size_t q = 0; q < NB; ++q)
    even[q] = odd[q] = B(T(0));
  std::size_t p = 0;
  for (; p + 2 <= k; p += 2) {
    for (std::size_t q = 0; q < NB; ++q)
      even[q] = add_row(p, even[q], q);
    for (std::size_t q = 0; q < NB; ++q)
      odd[q] = add_row(p + 1, odd[q], q);
  }
  if (p < k) {
    for (std::size_t q = 0; q < NB; ++q)
      even[q] = add_row(p, even[q], q);
  }
  for (std::size_t q = 0; q < NB; ++q)
    sum[q] = even[q] + odd[q];
}

/// out[j] = alpha sum_p v[p] M[p, j] + beta out[j] for j < cols, M k x cols row-major:
/// a vector times a matrix, summed over the rows of M, 4 batches of columns at a time.
/// With Ones, v is all ones and not read (it may be null).
template <bool Ones, class T>
void vec_mat(std::size_t k, std::size_t cols, T alpha, const T* v, const T* mat, T beta, T* out) {
  using B = xsimd::batch<T>;
  constexpr std::size_t w = B::size;
  constexpr std::size_t nb = 4;
  auto store = [&](const B& sum, std::size_t j) {
    const B r = B(alpha) * sum;
    if (beta == T(0)) {
      r.store_unaligned(out + j);
    } else {
      xsimd::fma(B(beta), B::load_unaligned(out + j), r).store_unaligned(out + j);
    }
  };
  std::size_t j = 0;
  for (; j + nb * w <= cols; j += nb * w) {
    B sum[nb];
    vec_mat_columns<nb, Ones>(k, cols, v, mat, j, sum);
    for (std::size_t q = 0; q < nb; ++q)
      store(sum[q], j + q * w);
  }
  for (; j + w <= cols; j += w) {
    B sum[1];
    vec_mat_columns<1, Ones>(k, cols, v, mat, j, sum);
    store(sum[0], j);
  }
  if (j == cols) return;
  if (cols >= w) {
    // The last < w columns: one more batch, ending at the last column. Its first lanes
    // repeat columns already written and are dropped; out is written once per column.
    const std::size_t j0 = cols - w;
    B sum[1];
    vec_mat_columns<1, Ones>(k, cols, v, mat, j0, sum);
    alignas(64) T lanes[w];
    sum[0].store_aligned(lanes);
    for (; j < cols; ++j)
      out[j] = combine(alpha, lanes[j - j0], beta, out[j]);
    return;
  }
  for (; j < cols; ++j) {  // fewer columns than a batch
    T s = 0;
    for (std::size_t p = 0; p < k; ++p)
      s += (Ones ? T(1) : v[p]) * mat[p * cols + j];
    out[j] = combine(alpha, s, beta, out[j]);
  }
}

// Dot products of rows: faster than OpenBLAS up to ~2000-3000 elements of M, slower above
// (one thread, k = 50: m = 32 0.14 against 0.16 us, m = 64 0.29 against 0.27, m = 240 1.28
// against 0.95; float32 alike).
constexpr std::size_t kDotRowsMaxElements = 2048;
// vec_mat walks M column block by column block, each block over all k rows: fine while M
// stays in cache (L2 here is 1 MiB), so larger vector-matrix products go to OpenBLAS.
constexpr std::size_t kVecMatMaxElements = 1 << 16;
// B^T is copied into a stack buffer of this many elements (32 KiB in float64: L1) ...
constexpr std::size_t kPackMaxElements = 4096;
// ... when op(A) has at least this many rows to amortise the copy. Measured, one thread:
// 240x50 * (50x50)^T 31.5 -> 24.3 us, 128x256 * (256x10)^T float32 9.5 -> 7.6 us; but
// 5 rows 0.7 -> 2.0 us, and 128x128 * (128x128)^T (too big for the buffer) 69 -> 86 us.
constexpr std::size_t kPackMinRows = 32;

// Large products are computed in blocks of C's rows or columns, and the blocks depend on
// the shape alone: the same single-threaded OpenBLAS calls run whether one thread makes
// them all or several share them, so the result has the same bits at any thread count
// and whether or not the contention guard steps in. (Blocks chosen per thread count
// would not: OpenBLAS rounds some elements of a block's last columns according to where
// the block starts, e.g. 333 x 297 x 325 in float64.) A block keeps at least 2^23
// multiply-adds (a 256 x 256 x 128 product), which makes the extra calls cost 1-3 % on
// one thread; their count is a power of two up to 16, so 2 or 4 threads share them
// evenly.
constexpr std::size_t kBlockMinWork = std::size_t{1} << 23;
constexpr std::size_t kMaxBlocks = 16;
// Block edges on multiples of 16 rows or columns: whole SIMD registers of either type.
constexpr std::size_t kBlockAlign = 16;

/// The vector cases (k, n or m equal to 1) by the loops above; false if not one of them.
template <class T>
bool gemm_vector_case(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k,
                      T alpha, const T* a, const T* b, T beta, T* c) {
  if (k == 1) {
    outer(m, n, alpha, a, b, beta, c);
    return true;
  }
  if (n == 1) {  // op(B) is the vector b[0..k)
    if (!trans_a) {
      if (m * k > kDotRowsMaxElements) return false;
      dot_rows(m, k, alpha, a, b, beta, c);  // A stored m x k
      return true;
    }
    if (k * m <= kVecMatMaxElements) {
      vec_mat<false>(k, m, alpha, b, a, beta, c);  // A stored k x m
      return true;
    }
    return false;
  }
  if (m == 1) {  // op(A) is the vector a[0..k)
    if (trans_b) {
      if (n * k > kDotRowsMaxElements) return false;
      dot_rows(n, k, alpha, b, a, beta, c);  // B stored n x k
      return true;
    }
    if (k * n <= kVecMatMaxElements) {
      vec_mat<false>(k, n, alpha, a, b, beta, c);  // B stored k x n
      return true;
    }
  }
  return false;
}
}  // namespace

std::size_t gemm_blocks(std::size_t m, std::size_t n, std::size_t k) {
  const std::size_t limit =
      std::min({m * n * k / kBlockMinWork, std::max(m, n) / kBlockAlign, kMaxBlocks});
  std::size_t blocks = 1;
  while (2 * blocks <= limit)
    blocks *= 2;
  return blocks;
}

template <class T>
void gemm(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k, T alpha,
          const T* a, const T* b, T beta, T* c) {
  if (m == 0 || n == 0) return;
  if (k == 0 || alpha == T(0)) {  // A and B are not read (BLAS: they may be anything)
    // beta = 0 means "C is not read" (BLAS semantics): the buffer may hold garbage.
    for (std::size_t i = 0; i < m * n; ++i)
      c[i] = beta == T(0) ? T(0) : c[i] * beta;
    return;
  }
  if (gemm_vector_case(trans_a, trans_b, m, n, k, alpha, a, b, beta, c)) return;
  const OneBlasThread one_blas_thread;
  // Leading dimension of the stored (untransposed) row-major A.
  const auto lda = static_cast<blasint>(trans_a ? m : k);
  const auto ta = trans_a ? CblasTrans : CblasNoTrans;
  if (trans_b && n * k <= kPackMaxElements && m >= kPackMinRows) {
    alignas(64) T packed[kPackMaxElements];  // op(B) = B^T, k x n, from B stored n x k
    // Strided reads, contiguous writes: scattered stores cost ~3x more (50 x 50: 2 us of
    // a 110 us Runge step with the loops the other way round).
    for (std::size_t p = 0; p < k; ++p)
      for (std::size_t j = 0; j < n; ++j)
        packed[p * n + j] = b[j * k + p];
    cblas_gemm(ta, CblasNoTrans, static_cast<blasint>(m), static_cast<blasint>(n),
               static_cast<blasint>(k), alpha, a, lda, packed, static_cast<blasint>(n), beta, c,
               static_cast<blasint>(n));
    return;
  }
  const auto ldb = static_cast<blasint>(trans_b ? k : n);
  const auto tb = trans_b ? CblasTrans : CblasNoTrans;
  const auto ldc = static_cast<blasint>(n);
  const auto bk = static_cast<blasint>(k);
  // A large product in blocks along the longer of C's sides (above), shared out over the
  // pool. op(B)'s columns j start at b + j (B stored k x n) or b + j k (stored n x k);
  // op(A)'s rows i at a + i k (stored m x k) or a + i (stored k x m).
  const std::size_t blocks = gemm_blocks(m, n, k);
  const bool by_columns = n >= m;
  const std::size_t extent = by_columns ? n : m;
  const auto block = [&](std::size_t q) {
    const std::size_t e0 = chunk_edge(extent, q, blocks, kBlockAlign);
    const std::size_t e1 = chunk_edge(extent, q + 1, blocks, kBlockAlign);
    if (e0 == e1) return;
    if (by_columns) {
      cblas_gemm(ta, tb, static_cast<blasint>(m), static_cast<blasint>(e1 - e0), bk, alpha, a, lda,
                 b + (trans_b ? e0 * k : e0), ldb, beta, c + e0, ldc);
    } else {
      cblas_gemm(ta, tb, static_cast<blasint>(e1 - e0), static_cast<blasint>(n), bk, alpha,
                 a + (trans_a ? e0 : e0 * k), lda, b, ldb, beta, c + e0 * n, ldc);
    }
  };
  parallel_for(
      blocks, 1,
      [&](std::size_t q0, std::size_t q1) {
        for (std::size_t q = q0; q < q1; ++q)
          block(q);
      },
      1);
}
template void gemm<float>(bool, bool, std::size_t, std::size_t, std::size_t, float, const float*,
                          const float*, float, float*);
template void gemm<double>(bool, bool, std::size_t, std::size_t, std::size_t, double, const double*,
                           const double*, double, double*);

template <class T>
void outer_plus_row(std::size_t m, std::size_t n, const T* a, const T* b, const T* row, T* c) {
  using B = xsimd::batch<T>;
  constexpr std::size_t w = B::size;
  for (std::size_t i = 0; i < m; ++i) {
    const B av(a[i]);
    T* ci = c + i * n;
    std::size_t j = 0;
    for (; j + w <= n; j += w)
      xsimd::fma(av, B::load_unaligned(b + j), B::load_unaligned(row + j)).store_unaligned(ci + j);
    for (; j < n; ++j)
      ci[j] = a[i] * b[j] + row[j];
  }
}
template void outer_plus_row<float>(std::size_t, std::size_t, const float*, const float*,
                                    const float*, float*);
template void outer_plus_row<double>(std::size_t, std::size_t, const double*, const double*,
                                     const double*, double*);

template <class T>
void sum_rows(std::size_t rows, std::size_t cols, const T* m, T beta, T* out) {
  if (cols == 0) return;
  vec_mat<true>(rows, cols, T(1), static_cast<const T*>(nullptr), m, beta, out);
}
template void sum_rows<double>(std::size_t, std::size_t, const double*, double, double*);

}  // namespace detail

}  // namespace xgrad
