// Fused, numerically stable losses. Each returns a 1x1 mean; logits of +-1000 give a
// finite loss and gradient (tests/engine/test_losses.cpp).
#include <algorithm>
#include <cmath>
#include <numeric>
#include <type_traits>

#include <xtensor/xmath.hpp>

#include "op_support.hpp"
#include "vector_exp.hpp"
#include "xgrad/ops.hpp"

namespace xgrad {
namespace detail {
namespace {

template <class T>
std::uint32_t record_loss(Op op, const Tensor<T>& a, const Tensor<T>& b, bool same_shape) {
  Tape<T>& tape = tape_of(a, op_name(op));
  const std::uint32_t ia = tape.index_of(a, op_name(op));
  const std::uint32_t ib = tape.index_of(b, op_name(op));
  const Matrix<T>& va = tape.value_of(ia);
  const Matrix<T>& vb = tape.value_of(ib);
  if (same_shape && va.shape() != vb.shape()) {
    throw std::invalid_argument(std::string(op_name(op)) +
                                (op == Op::MseLoss ? ": prediction is " : ": logits are ") +
                                shape_string(va) + " but target is " + shape_string(vb));
  }
  if (va.size() == 0) {
    throw std::invalid_argument(std::string(op_name(op)) + ": empty input " + shape_string(va));
  }
  return tape.record(op, ia, ib, 1, 1);
}

}  // namespace

// ---- mse_loss: L = 1/N sum (a - b)^2;  da = 2 g (a - b) / N, db = -da
template <class T>
void backward_mse_loss(Tape<T>& t, std::uint32_t i) {
  const Node<T>& n = t.node(i);
  const Matrix<T>& a = t.value_of(n.lhs);
  const Matrix<T>& b = t.value_of(n.rhs);
  const T k = T(2) * t.grad_of(i)(0, 0) / static_cast<T>(a.size());
  accumulate(t, n.lhs, k * (a - b), i);
  accumulate(t, n.rhs, k * (b - a), i);
}
// ---- bce_with_logits: L = 1/N sum max(z,0) - z y + log(1 + e^-|z|)
//      dz = g (sigmoid(z) - y) / N,  dy = -g z / N
template <class T>
void backward_bce_with_logits(Tape<T>& t, std::uint32_t i) {
  const Node<T>& n = t.node(i);
  const Matrix<T>& z = t.value_of(n.lhs);
  const Matrix<T>& y = t.value_of(n.rhs);
  const T k = t.grad_of(i)(0, 0) / static_cast<T>(z.size());
  // sigmoid(z) by the sigmoid op's kernels (vector_exp.hpp), into the node's spare buffer.
  Matrix<T>& s = t.node(i).saved;
  reshape_reuse(s, z.shape(0), z.shape(1));
  if constexpr (std::is_same_v<T, double>) {
    float64_kernels().sigmoid(z.data(), s.data(), z.size());
  } else {
    sigmoid_float_buffer(z.data(), s.data(), z.size());
  }
  accumulate(t, n.lhs, k * (s - y), i);
  accumulate(t, n.rhs, -k * z, i);
}
// ---- softmax_cross_entropy: L = -1/n sum_rows sum_k y_k log p_k, p = softmax(z)
//      dz = g (p sum_k y_k - y) / n  (= (p - y)/n for one-hot rows),  dy = -g log p / n
//      `saved` holds log p from the forward pass.
template <class T>
void backward_softmax_cross_entropy(Tape<T>& t, std::uint32_t i) {
  const Node<T>& n = t.node(i);
  const Matrix<T>& log_p = n.saved;
  const Matrix<T>& y = t.value_of(n.rhs);
  const std::size_t rows = y.shape(0), cols = y.shape(1);
  const T k = t.grad_of(i)(0, 0) / static_cast<T>(rows);
  if (t.node(n.lhs).requires_grad) {
    T* dz = grad_for_add(t, n.lhs).data();
    const T* yp = y.data();
    std::size_t col = cols;  // at the start of a row, y's row total is taken
    T y_total = 0;
    for_each_exp(log_p.data(), rows * cols, [&](std::size_t e, T prob) {
      if (col == cols) {
        col = 0;
        y_total = std::accumulate(yp + e, yp + e + cols, T(0));
      }
      ++col;
      dz[e] += k * (prob * y_total - yp[e]);
    });
  }
  accumulate(t, n.rhs, -k * log_p, i);
}

XGRAD_INSTANTIATE_BACKWARD(mse_loss)
XGRAD_INSTANTIATE_BACKWARD(bce_with_logits)
XGRAD_INSTANTIATE_BACKWARD(softmax_cross_entropy)

}  // namespace detail

template <class T>
Tensor<T> mse_loss(const Tensor<T>& prediction, const Tensor<T>& target) {
  Tape<T>& tape = detail::tape_of(prediction, "mse_loss");
  const std::uint32_t i = detail::record_loss(Op::MseLoss, prediction, target, true);
  const Matrix<T>& a = tape.value_of(prediction.index());
  const Matrix<T>& b = tape.value_of(target.index());
  if constexpr (std::is_same_v<T, float>) {
    // float adds up in double: float's 24 bits lose a sum over millions of elements.
    const float* pa = a.data();
    const float* pb = b.data();
    double total = 0;
    for (std::size_t k = 0; k < a.size(); ++k) {
      const float d = pa[k] - pb[k];
      total += double(d) * double(d);
    }
    tape.node(i).value(0, 0) = static_cast<float>(total / static_cast<double>(a.size()));
  } else {
    tape.node(i).value(0, 0) = xt::sum(xt::square(a - b))() / static_cast<T>(a.size());
  }
  return detail::finish(tape, i);
}

template <class T>
Tensor<T> bce_with_logits(const Tensor<T>& logits, const Tensor<T>& target) {
  Tape<T>& tape = detail::tape_of(logits, "bce_with_logits");
  const std::uint32_t i = detail::record_loss(Op::BceWithLogitsLoss, logits, target, true);
  const Matrix<T>& z = tape.value_of(logits.index());
  const Matrix<T>& y = tape.value_of(target.index());
  if constexpr (std::is_same_v<T, float>) {  // summed in double, as in mse_loss
    const float* pz = z.data();
    const float* py = y.data();
    double total = 0;
    for (std::size_t k = 0; k < z.size(); ++k)
      total += std::max(pz[k], 0.0f) - pz[k] * py[k] + std::log1p(std::exp(-std::abs(pz[k])));
    tape.node(i).value(0, 0) = static_cast<float>(total / static_cast<double>(z.size()));
  } else {
    tape.node(i).value(0, 0) =
        xt::sum(xt::maximum(z, T(0)) - z * y + xt::log1p(xt::exp(-xt::abs(z))))() /
        static_cast<T>(z.size());
  }
  return detail::finish(tape, i);
}

template <class T>
Tensor<T> softmax_cross_entropy(const Tensor<T>& logits, const Tensor<T>& target) {
  Tape<T>& tape = detail::tape_of(logits, "softmax_cross_entropy");
  const std::uint32_t i = detail::record_loss(Op::SoftmaxCrossEntropy, logits, target, true);
  const Matrix<T>& z = tape.value_of(logits.index());
  const Matrix<T>& y = tape.value_of(target.index());
  const std::size_t rows = z.shape(0), cols = z.shape(1);
  detail::Node<T>& n = tape.node(i);
  detail::reshape_reuse(n.saved, rows, cols);
  detail::log_softmax_rows(z.data(), n.saved.data(), rows, cols);
  double total = 0;  // in double also for float, as in mse_loss
  const T* log_p = n.saved.data();
  const T* yp = y.data();
  // A class with target 0 adds nothing, also when its log p is -inf (a -inf logit):
  // 0 * -inf would make the loss NaN while its gradient stays finite.
  for (std::size_t k = 0; k < rows * cols; ++k)
    if (yp[k] != T(0)) total -= yp[k] * log_p[k];
  n.value(0, 0) = static_cast<T>(total / static_cast<double>(rows));
  return detail::finish(tape, i);
}

#define XGRAD_INSTANTIATE_LOSS(T)                                         \
  template Tensor<T> mse_loss(const Tensor<T>&, const Tensor<T>&);        \
  template Tensor<T> bce_with_logits(const Tensor<T>&, const Tensor<T>&); \
  template Tensor<T> softmax_cross_entropy(const Tensor<T>&, const Tensor<T>&);
XGRAD_INSTANTIATE_LOSS(float)
XGRAD_INSTANTIATE_LOSS(double)

}  // namespace xgrad
