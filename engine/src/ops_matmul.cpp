// matmul through OpenBLAS: forward and both backward products use the transpose
// flags on the stored buffers, so X^T dZ and dZ W^T cost no copy.
#include "blas.hpp"
#include "op_support.hpp"
#include "xgrad/ops.hpp"

namespace xgrad {
namespace detail {

// ---- matmul: Y = A B, A [m,k], B [k,n];  dA += G B^T, dB += A^T G  (GEMM with beta = 1)
template <class T>
void backward_matmul(Tape<T>& t, std::uint32_t i) {
  const Node<T>& n = t.node(i);
  const Matrix<T>& a = t.value_of(n.lhs);
  const Matrix<T>& b = t.value_of(n.rhs);
  const Matrix<T>& g = t.grad_of(i);
  const std::size_t m = a.shape(0), k = a.shape(1), cols = b.shape(1);
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
XGRAD_INSTANTIATE_BACKWARD(matmul)

}  // namespace detail

template <class T>
Tensor<T> matmul(const Tensor<T>& a, const Tensor<T>& b) {
  Tape<T>& tape = a.tape();
  const std::uint32_t ia = tape.index_of(a, "matmul");
  const std::uint32_t ib = tape.index_of(b, "matmul");
  const std::size_t m = tape.value_of(ia).shape(0), k = tape.value_of(ia).shape(1);
  const std::size_t k2 = tape.value_of(ib).shape(0), n = tape.value_of(ib).shape(1);
  if (k != k2) {
    throw std::invalid_argument("matmul: inner dimensions differ: " + shape_string(m, k) +
                                " times " + shape_string(k2, n));
  }
  const std::uint32_t i = tape.record(Op::MatMul, ia, ib, m, n);
  Matrix<T>& y = tape.node(i).value;
  // beta = 0: GEMM writes y without reading it (zeros for an empty k = 0 product).
  detail::gemm<T>(false, false, m, n, k, T(1), tape.value_of(ia).data(), tape.value_of(ib).data(),
                  T(0), y.data());
  return detail::finish(tape, i);
}

template Tensor<float> matmul(const Tensor<float>&, const Tensor<float>&);
template Tensor<double> matmul(const Tensor<double>&, const Tensor<double>&);

}  // namespace xgrad
