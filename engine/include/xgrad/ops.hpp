// The differentiable operations. Each is recorded on the tape of its inputs; the
// forward and backward rules are side by side in engine/src/ops_*.cpp and listed
// in math in docs/engine.md.
//
// Binary elementwise ops broadcast in 2-D: each operand may be the full shape, a row
// vector 1xC (a bias), a column vector Rx1, or a scalar 1x1. Shapes that do not
// broadcast throw std::invalid_argument naming the op and both shapes.
#pragma once

#include "xgrad/tape.hpp"

namespace xgrad {

/// A scalar argument of an op: not used to deduce T, so `t * 2.0` works for float tensors.
template <class T>
struct scalar_of {
  using type = T;
};
template <class T>
using Scalar = typename scalar_of<T>::type;

/// Axis argument of sum and mean.
enum class Axis : int {
  All = -1,  // -> 1x1
  Rows = 0,  // reduce over rows    -> 1xC
  Cols = 1,  // reduce over columns -> Rx1
};

// ---- linear algebra ----
/// a [m,k] · b [k,n] -> [m,n] through OpenBLAS; backward uses the transpose flags, no copy.
template <class T>
Tensor<T> matmul(const Tensor<T>& a, const Tensor<T>& b);
/// a [m,k] · w [k,n] + b [1,n] (b added to every row): a dense layer's z = a W + b in one
/// node. The same values and gradients as add(matmul(a, w), b), with one pass less each
/// way: the GEMM accumulates onto rows prefilled with b, and dz is not copied.
template <class T>
Tensor<T> linear(const Tensor<T>& a, const Tensor<T>& w, const Tensor<T>& b);
template <class T>
Tensor<T> transpose(const Tensor<T>& a);

// ---- broadcasting arithmetic ----
template <class T>
Tensor<T> add(const Tensor<T>& a, const Tensor<T>& b);
template <class T>
Tensor<T> sub(const Tensor<T>& a, const Tensor<T>& b);
template <class T>
Tensor<T> mul(const Tensor<T>& a, const Tensor<T>& b);
template <class T>
Tensor<T> div(const Tensor<T>& a, const Tensor<T>& b);
template <class T>
Tensor<T> neg(const Tensor<T>& a);
/// scale * a + shift, one node for every op with a scalar.
template <class T>
Tensor<T> affine(const Tensor<T>& a, Scalar<T> scale, Scalar<T> shift);
/// numerator / a
template <class T>
Tensor<T> scalar_div(Scalar<T> numerator, const Tensor<T>& a);

// ---- elementwise functions ----
template <class T>
Tensor<T> pow(const Tensor<T>& a, Scalar<T> exponent);
template <class T>
Tensor<T> square(const Tensor<T>& a);
template <class T>
Tensor<T> sqrt(const Tensor<T>& a);
template <class T>
Tensor<T> exp(const Tensor<T>& a);
template <class T>
Tensor<T> log(const Tensor<T>& a);
template <class T>
Tensor<T> abs(const Tensor<T>& a);
/// libm's sine and cosine element by element (periodic inputs, Fourier features).
template <class T>
Tensor<T> sin(const Tensor<T>& a);
template <class T>
Tensor<T> cos(const Tensor<T>& a);

// ---- reductions ----
template <class T>
Tensor<T> sum(const Tensor<T>& a, Axis axis = Axis::All);
template <class T>
Tensor<T> mean(const Tensor<T>& a, Axis axis = Axis::All);

// ---- activations ----
template <class T>
Tensor<T> sigmoid(const Tensor<T>& a);
template <class T>
Tensor<T> tanh(const Tensor<T>& a);
template <class T>
Tensor<T> relu(const Tensor<T>& a);
template <class T>
Tensor<T> leaky_relu(const Tensor<T>& a, Scalar<T> alpha = T(0.01));
template <class T>
Tensor<T> elu(const Tensor<T>& a, Scalar<T> alpha = T(1));
/// Row-wise softmax (row max subtracted first).
template <class T>
Tensor<T> softmax(const Tensor<T>& a);
template <class T>
Tensor<T> log_softmax(const Tensor<T>& a);

// ---- fused, numerically stable losses (1x1 results) ----
/// mean over all elements of (prediction - target)^2.
template <class T>
Tensor<T> mse_loss(const Tensor<T>& prediction, const Tensor<T>& target);
/// Binary cross-entropy of sigmoid(logits) against targets in [0,1], mean over elements.
template <class T>
Tensor<T> bce_with_logits(const Tensor<T>& logits, const Tensor<T>& target);
/// Cross-entropy of softmax(logits) against one-hot (or probability) rows, mean over
/// rows; gradient (softmax(z) - y) / n.
template <class T>
Tensor<T> softmax_cross_entropy(const Tensor<T>& logits, const Tensor<T>& target);

// ---- operators ----
template <class T>
Tensor<T> operator+(const Tensor<T>& a, const Tensor<T>& b) {
  return add(a, b);
}
template <class T>
Tensor<T> operator-(const Tensor<T>& a, const Tensor<T>& b) {
  return sub(a, b);
}
template <class T>
Tensor<T> operator*(const Tensor<T>& a, const Tensor<T>& b) {
  return mul(a, b);
}
template <class T>
Tensor<T> operator/(const Tensor<T>& a, const Tensor<T>& b) {
  return div(a, b);
}
template <class T>
Tensor<T> operator-(const Tensor<T>& a) {
  return neg(a);
}
template <class T>
Tensor<T> operator+(const Tensor<T>& a, Scalar<T> s) {
  return affine(a, T(1), s);
}
template <class T>
Tensor<T> operator+(Scalar<T> s, const Tensor<T>& a) {
  return affine(a, T(1), s);
}
template <class T>
Tensor<T> operator-(const Tensor<T>& a, Scalar<T> s) {
  return affine(a, T(1), -s);
}
template <class T>
Tensor<T> operator-(Scalar<T> s, const Tensor<T>& a) {
  return affine(a, T(-1), s);
}
template <class T>
Tensor<T> operator*(const Tensor<T>& a, Scalar<T> s) {
  return affine(a, s, T(0));
}
template <class T>
Tensor<T> operator*(Scalar<T> s, const Tensor<T>& a) {
  return affine(a, s, T(0));
}
/// a * (1/s): one node and a multiply; it may differ from a true division by 1 ulp, and a
/// tiny s (below 1 / max, 5.6e-309 in double), whose reciprocal overflows, gives inf.
template <class T>
Tensor<T> operator/(const Tensor<T>& a, Scalar<T> s) {
  return affine(a, T(1) / s, T(0));
}
template <class T>
Tensor<T> operator/(Scalar<T> s, const Tensor<T>& a) {
  return scalar_div(s, a);
}

}  // namespace xgrad
