// matmul through OpenBLAS: forward and both backward products use the transpose
// flags on the stored buffers, so X^T dZ and dZ W^T cost no copy.
//
// A column of A that is zero in every row adds nothing to A B and leaves the matching
// row of dB = A^T G at zero. Inputs often have such columns across a whole minibatch
// (the blank border of handwritten digits: ~257 of MNIST's 784 pixels in a batch of
// 128), so when A is a constant (no gradient wanted) and enough columns are zero, both
// GEMMs run on the kept columns of A and the matching rows of B only. Only exact zeros
// of A are dropped (a NaN in A counts as nonzero), so for a finite B the product is the
// same up to rounding. A NaN or Inf in a dropped row of B no longer reaches Y as
// 0 x Inf = NaN; under Tape::check_finite the plain product runs so that it does.
#include <algorithm>

#include "blas.hpp"
#include "op_support.hpp"
#include "xgrad/ops.hpp"
#include "xgrad/parallel.hpp"

namespace xgrad {
namespace detail {
namespace {

/// Writes into `runs` the columns of row-major a [m,k] that hold a nonzero in some row,
/// as (first column, count) pairs. Returns false, leaving `runs` empty, as soon as
/// every column is seen to hold one (dense data is recognised after 16 rows).
template <class T>
bool find_nonzero_column_runs(const T* a, std::size_t m, std::size_t k,
                              std::vector<std::uint32_t>& runs) {
  // One buffer, two parts that never overlap: up to ceil(k/2) runs need k + 1 slots
  // [0, k], and one flag per column follows them at [k + 1, 2k + 1). It keeps its
  // capacity across steps.
  runs.assign(2 * k + 1, 0u);
  std::uint32_t* seen = runs.data() + k + 1;
  for (std::size_t r = 0; r < m; ++r) {
    const T* row = a + r * k;
    for (std::size_t j = 0; j < k; ++j)
      seen[j] |= static_cast<std::uint32_t>(row[j] != T(0));
    if (r % 16 == 15 && std::all_of(seen, seen + k, [](std::uint32_t s) { return s != 0; })) {
      runs.clear();
      return false;
    }
  }
  std::size_t pairs = 0;
  for (std::size_t j = 0; j < k;) {
    if (seen[j] == 0) {
      ++j;
      continue;
    }
    const std::size_t first = j;
    while (j < k && seen[j] != 0)
      ++j;
    runs[2 * pairs] = static_cast<std::uint32_t>(first);
    runs[2 * pairs + 1] = static_cast<std::uint32_t>(j - first);
    ++pairs;
  }
  runs.resize(2 * pairs);  // shrinking keeps the capacity
  return true;
}

/// Where B's kept rows start in Node::scratch, after A's kept columns [m,K]: rounded up
/// to 64 bytes, so both parts start aligned.
std::size_t kept_rows_offset(std::size_t m, std::size_t kept) {
  return (m * kept + 15) / 16 * 16;
}

/// Number of columns the runs keep.
std::size_t kept_columns(const std::vector<std::uint32_t>& runs) {
  std::size_t kept = 0;
  for (std::size_t i = 1; i < runs.size(); i += 2)
    kept += runs[i];
  return kept;
}

/// Whether running the GEMMs on `kept` of k columns saves more than the copies cost,
/// in rough cycles of one core: a GEMM does ~16 multiply-adds a cycle, gathering A's
/// kept columns ~1 element a cycle, copying whole rows of B (forward) and scattering
/// dB (backward) ~8 elements a cycle. Asks for twice the cost so as not to lose.
bool compaction_pays(std::size_t m, std::size_t n, std::size_t k, std::size_t kept) {
  const double saved = static_cast<double>(k - kept) * static_cast<double>(m * n) / 16.0;
  const double cost = static_cast<double>(m * kept) + 3.0 * static_cast<double>(k * n) / 8.0;
  return kept > 0 && saved > 2.0 * cost;
}

/// Too small for the saving to ever pay for a scan of A.
bool worth_scanning(std::size_t m, std::size_t n, std::size_t k) {
  return m >= 16 && n >= 8 && k >= 32;
}

/// a_kept [m,K] = the kept columns of a [m,k], row by row.
template <class T>
void gather_columns(const T* a, std::size_t m, std::size_t k,
                    const std::vector<std::uint32_t>& runs, std::size_t kept, T* a_kept) {
  const std::uint32_t* run = runs.data();
  const std::size_t pairs = runs.size() / 2;
  parallel_for(
      m, std::max<std::size_t>(1, kParallelItems / std::max<std::size_t>(1, kept)),
      [=](std::size_t first, std::size_t last) {
        for (std::size_t r = first; r < last; ++r) {
          const T* in = a + r * k;
          T* out = a_kept + r * kept;
          for (std::size_t p = 0; p < pairs; ++p) {
            out = std::copy(in + run[2 * p], in + run[2 * p] + run[2 * p + 1], out);
          }
        }
      },
      /*align=*/1);
}

/// b_kept [K,n] = the rows of b [k,n] named by the runs.
template <class T>
void gather_kept_rows(const T* b, std::size_t n, const std::vector<std::uint32_t>& runs,
                      T* b_kept) {
  for (std::size_t p = 0; p < runs.size(); p += 2) {
    b_kept = std::copy(b + runs[p] * n, b + (runs[p] + runs[p + 1]) * n, b_kept);
  }
}

/// db [k,n] (+)= g_kept [K,n] scattered to the rows named by the runs; the other rows
/// get nothing (assigned zero when db is fresh).
template <class T>
void scatter_kept_rows(const T* g_kept, std::size_t n, const std::vector<std::uint32_t>& runs,
                       bool fresh, Matrix<T>& db) {
  if (fresh) db.fill(T(0));
  for (std::size_t p = 0; p < runs.size(); p += 2) {
    T* out = db.data() + runs[p] * n;
    const std::size_t count = runs[p + 1] * n;
    for (std::size_t e = 0; e < count; ++e)
      out[e] += g_kept[e];
    g_kept += count;
  }
}

}  // namespace

/// The product's part of a backward rule: dA += G B^T, dB += A^T G (GEMM with beta = 1,
/// or 0 on a fresh gradient), A and B node i's lhs and rhs.
template <class T>
void backward_product(Tape<T>& t, std::uint32_t i) {
  Node<T>& n = t.node(i);
  const Matrix<T>& a = t.value_of(n.lhs);
  const Matrix<T>& b = t.value_of(n.rhs);
  const Matrix<T>& g = t.grad_of(i);
  const std::size_t m = a.shape(0), k = a.shape(1), cols = b.shape(1);
  if (!n.column_runs.empty()) {  // A was a constant with zero columns: dB on the kept rows
    if (t.node(n.rhs).requires_grad) {
      const std::size_t kept = kept_columns(n.column_runs);
      const T* a_kept = n.scratch.data();
      T* g_kept = n.scratch.data() + kept_rows_offset(m, kept);
      gemm<T>(true, false, kept, cols, m, T(1), a_kept, g.data(), T(0), g_kept);
      scatter_kept_rows(g_kept, cols, n.column_runs, grad_fresh(t.node(n.rhs)), t.grad_of(n.rhs));
      mark_written(t.node(n.rhs));
    }
    return;
  }
  // beta = 0 on a fresh (not yet written) tape-owned gradient: GEMM assigns.
  if (t.node(n.lhs).requires_grad) {
    const T beta = grad_fresh(t.node(n.lhs)) ? T(0) : T(1);
    gemm<T>(false, true, m, k, cols, T(1), g.data(), b.data(), beta, t.grad_of(n.lhs).data());
    mark_written(t.node(n.lhs));
  }
  if (t.node(n.rhs).requires_grad) {
    const T beta = grad_fresh(t.node(n.rhs)) ? T(0) : T(1);
    gemm<T>(true, false, k, cols, m, T(1), a.data(), g.data(), beta, t.grad_of(n.rhs).data());
    mark_written(t.node(n.rhs));
  }
}
// ---- matmul: Y = A B, A [m,k], B [k,n]
template <class T>
void backward_matmul(Tape<T>& t, std::uint32_t i) {
  backward_product(t, i);
}
XGRAD_INSTANTIATE_BACKWARD(matmul)

// ---- linear: Y = A W + b, b [1,n] on every row;  the product's rule, and db += column sums of G
template <class T>
void backward_linear(Tape<T>& t, std::uint32_t i) {
  backward_product(t, i);
  accumulate(t, t.node(i).third, t.grad_of(i), i);
}
XGRAD_INSTANTIATE_BACKWARD(linear)

/// node i's value (beta = 0: =, beta = 1: +=) A B for A = node ia, B = node ib; when A
/// is a constant with enough all-zero columns, on its kept columns only (file comment).
template <class T>
void forward_product(Tape<T>& tape, std::uint32_t i, std::uint32_t ia, std::uint32_t ib, T beta) {
  Node<T>& node = tape.node(i);
  const std::size_t m = tape.value_of(ia).shape(0), k = tape.value_of(ia).shape(1);
  const std::size_t n = tape.value_of(ib).shape(1);
  const T* a_data = tape.value_of(ia).data();
  const T* b_data = tape.value_of(ib).data();
  // Under check_finite the plain product runs: a NaN or Inf in a row of B whose column
  // of A is all zero must still reach Y (0 x Inf = NaN) for the check to name this op.
  if (!tape.node(ia).requires_grad && !tape.check_finite() && worth_scanning(m, n, k) &&
      find_nonzero_column_runs(a_data, m, k, node.column_runs)) {
    const std::size_t kept = kept_columns(node.column_runs);
    if (compaction_pays(m, n, k, kept)) {
      // Sized for any kept count and only ever grown: later steps, a smaller last batch
      // included, reuse it without allocating or zero-filling.
      const std::size_t full = kept_rows_offset(m, k) + k * n;
      if (node.scratch.size() < full) node.scratch.resize({full});
      T* a_kept = node.scratch.data();
      T* b_kept = a_kept + kept_rows_offset(m, kept);
      gather_columns(a_data, m, k, node.column_runs, kept, a_kept);
      gather_kept_rows(b_data, n, node.column_runs, b_kept);
      gemm<T>(false, false, m, n, kept, T(1), a_kept, b_kept, beta, node.value.data());
      return;
    }
    node.column_runs.clear();
  }
  // beta = 0: GEMM writes y without reading it (zeros for an empty k = 0 product).
  gemm<T>(false, false, m, n, k, T(1), a_data, b_data, beta, node.value.data());
}

/// Shape of A B, or an exception naming the op and both shapes.
template <class T>
std::pair<std::size_t, std::size_t> product_shape(const char* op, const Matrix<T>& a,
                                                  const Matrix<T>& b) {
  if (a.shape(1) != b.shape(0)) {
    throw std::invalid_argument(std::string(op) + ": inner dimensions differ: " + shape_string(a) +
                                " times " + shape_string(b));
  }
  return {a.shape(0), b.shape(1)};
}

}  // namespace detail

template <class T>
Tensor<T> matmul(const Tensor<T>& a, const Tensor<T>& b) {
  Tape<T>& tape = detail::tape_of(a, "matmul");
  const std::uint32_t ia = tape.index_of(a, "matmul");
  const std::uint32_t ib = tape.index_of(b, "matmul");
  const auto [m, n] = detail::product_shape("matmul", tape.value_of(ia), tape.value_of(ib));
  const std::uint32_t i = tape.record(Op::MatMul, ia, ib, m, n);
  detail::forward_product(tape, i, ia, ib, T(0));
  return detail::finish(tape, i);
}

template <class T>
Tensor<T> linear(const Tensor<T>& a, const Tensor<T>& w, const Tensor<T>& b) {
  Tape<T>& tape = detail::tape_of(a, "linear");
  const std::uint32_t ia = tape.index_of(a, "linear");
  const std::uint32_t iw = tape.index_of(w, "linear");
  const std::uint32_t ib = tape.index_of(b, "linear");
  const auto [m, n] = detail::product_shape("linear", tape.value_of(ia), tape.value_of(iw));
  const Matrix<T>& bias = tape.value_of(ib);
  if (bias.shape(0) != 1 || bias.shape(1) != n) {
    throw std::invalid_argument("linear: the bias is " + shape_string(bias) + " but must be 1x" +
                                std::to_string(n) + " for " + shape_string(tape.value_of(ia)) +
                                " times " + shape_string(tape.value_of(iw)));
  }
  const std::uint32_t i = tape.record(Op::Linear, ia, iw, m, n, ib);
  T* y = tape.node(i).value.data();
  if (tape.value_of(ia).shape(1) == 1) {  // one input feature (a 1-D regression): one pass
    detail::outer_plus_row(m, n, tape.value_of(ia).data(), tape.value_of(iw).data(), bias.data(),
                           y);
    return detail::finish(tape, i);
  }
  // Every row starts as b; the GEMM accumulates A W onto it (beta = 1). The rows are
  // filled by doubling copies (1, 2, 4, ... rows): log2(m) copies instead of m short ones.
  if (m > 0) std::copy(bias.data(), bias.data() + n, y);
  for (std::size_t filled = 1; filled < m;) {
    const std::size_t rows = std::min(filled, m - filled);
    std::copy(y, y + rows * n, y + filled * n);
    filled += rows;
  }
  detail::forward_product(tape, i, ia, iw, T(1));
  return detail::finish(tape, i);
}

template Tensor<float> matmul(const Tensor<float>&, const Tensor<float>&);
template Tensor<double> matmul(const Tensor<double>&, const Tensor<double>&);
template Tensor<float> linear(const Tensor<float>&, const Tensor<float>&, const Tensor<float>&);
template Tensor<double> linear(const Tensor<double>&, const Tensor<double>&, const Tensor<double>&);

}  // namespace xgrad
