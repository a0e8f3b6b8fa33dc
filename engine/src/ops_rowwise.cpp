// Reductions, transpose and the row-wise softmax family.
#include <algorithm>
#include <array>
#include <cmath>
#include <numeric>

#include <xtensor/xmanipulation.hpp>

#include "op_support.hpp"
#include "xgrad/ops.hpp"

namespace xgrad {
namespace detail {
namespace {

std::pair<std::size_t, std::size_t> reduced_shape(std::size_t rows, std::size_t cols, int axis) {
  if (axis == 0) return {1, cols};
  if (axis == 1) return {rows, 1};
  return {1, 1};
}

template <class T>
Tensor<T> reduce(Op op, const Tensor<T>& a, Axis axis, T scale_by_count) {
  Tape<T>& tape = tape_of(a, op_name(op));
  const std::uint32_t ia = tape.index_of(a, op_name(op));
  const std::size_t rows = tape.value_of(ia).shape(0), cols = tape.value_of(ia).shape(1);
  const int ax = static_cast<int>(axis);
  const auto [r, c] = reduced_shape(rows, cols, ax);
  const std::uint32_t i = tape.record(op, ia, kNoParent, r, c);
  Node<T>& n = tape.node(i);
  n.axis = ax;
  // mean = sum / count; count is the number of elements summed into each output.
  const T count = static_cast<T>(ax == 0 ? rows : ax == 1 ? cols : rows * cols);
  n.alpha = scale_by_count != T(0) ? T(1) / count : T(1);
  // Sums accumulate in double, also for float, whose 24 bits stop a sum of ones at 2^24
  // (the mean of 2^25 float ones came out 0.5). Each output adds its inputs in row
  // order, as a plain loop does.
  const Matrix<T>& x = tape.value_of(ia);
  const double scale = scale_by_count != T(0) ? 1.0 / static_cast<double>(count) : 1.0;
  if (ax == 0) {
    constexpr std::size_t kBlock = 64;  // columns summed at once, row-major friendly
    for (std::size_t q0 = 0; q0 < cols; q0 += kBlock) {
      const std::size_t width = std::min(kBlock, cols - q0);
      std::array<double, kBlock> sums{};
      for (std::size_t p = 0; p < rows; ++p) {
        const T* row = x.data() + p * cols + q0;  // a raw pointer: x(p, q) did not vectorise
        for (std::size_t j = 0; j < width; ++j)
          sums[j] += row[j];
      }
      for (std::size_t j = 0; j < width; ++j)
        n.value(0, q0 + j) = static_cast<T>(sums[j] * scale);
    }
  } else {  // axis 1: each row; all (-1): the whole row-major buffer as one row
    const std::size_t groups = ax == 1 ? rows : 1, length = ax == 1 ? cols : rows * cols;
    for (std::size_t p = 0; p < groups; ++p) {
      const T* first = x.data() + p * length;
      n.value(p, 0) = static_cast<T>(std::accumulate(first, first + length, 0.0) * scale);
    }
  }
  return finish(tape, i);
}

template <class T>
Tensor<T> rowwise(Op op, const Tensor<T>& a) {
  Tape<T>& tape = tape_of(a, op_name(op));
  const std::uint32_t ia = tape.index_of(a, op_name(op));
  const std::size_t rows = tape.value_of(ia).shape(0), cols = tape.value_of(ia).shape(1);
  const std::uint32_t i = tape.record(op, ia, kNoParent, rows, cols);
  T* y = tape.node(i).value.data();
  log_softmax_rows(tape.value_of(ia).data(), y, rows, cols);
  if (op == Op::Softmax) vector_exp(y, y, rows * cols);
  return finish(tape, i);
}

}  // namespace

// ---- sum (axis): y = sum of a over the axis;  da = g broadcast back
template <class T>
void backward_sum(Tape<T>& t, std::uint32_t i) {
  const Node<T>& n = t.node(i);
  if (!t.node(n.lhs).requires_grad) return;
  Matrix<T>& da = grad_for_add(t, n.lhs);
  const Matrix<T>& g = t.grad_of(i);
  const T scale = n.alpha;
  if (n.axis == -1) {
    da += scale * g(0, 0);
  } else {
    xt::noalias(da) += scale * g;  // 1xC or Rx1 broadcasts over da
  }
}
// ---- mean (axis): y = sum / count;  da = g / count broadcast back (alpha holds 1/count)
template <class T>
void backward_mean(Tape<T>& t, std::uint32_t i) {
  backward_sum(t, i);
}
// ---- transpose: y = a^T;  da = g^T
template <class T>
void backward_transpose(Tape<T>& t, std::uint32_t i) {
  accumulate(t, t.node(i).lhs, xt::transpose(t.grad_of(i)), i);
}
// ---- softmax (rows): y_j = e^{a_j} / sum_k e^{a_k};  da = y (g - sum_k g_k y_k)
template <class T>
void backward_softmax(Tape<T>& t, std::uint32_t i) {
  const Node<T>& n = t.node(i);
  if (!t.node(n.lhs).requires_grad) return;
  const Matrix<T>& y = t.value_of(i);
  const Matrix<T>& g = t.grad_of(i);
  Matrix<T>& da = grad_for_add(t, n.lhs);
  const std::size_t rows = y.shape(0), cols = y.shape(1);
  for (std::size_t p = 0; p < rows; ++p) {
    T dot = 0;
    for (std::size_t q = 0; q < cols; ++q)
      dot += g(p, q) * y(p, q);
    for (std::size_t q = 0; q < cols; ++q)
      da(p, q) += y(p, q) * (g(p, q) - dot);
  }
}
// ---- log_softmax (rows): y = a - max - log sum e^{a - max};  da = g - e^y sum_k g_k
template <class T>
void backward_log_softmax(Tape<T>& t, std::uint32_t i) {
  const Node<T>& n = t.node(i);
  if (!t.node(n.lhs).requires_grad) return;
  const Matrix<T>& y = t.value_of(i);
  const Matrix<T>& g = t.grad_of(i);
  Matrix<T>& da = grad_for_add(t, n.lhs);
  const std::size_t cols = y.shape(1);
  const T* gp = g.data();
  T* dp = da.data();
  std::size_t col = cols;  // at the start of a row, g's row total is taken
  T total = 0;
  for_each_exp(y.data(), y.size(), [&](std::size_t k, T prob) {
    if (col == cols) {
      col = 0;
      total = std::accumulate(gp + k, gp + k + cols, T(0));
    }
    ++col;
    dp[k] += gp[k] - prob * total;
  });
}

XGRAD_INSTANTIATE_BACKWARD(sum)
XGRAD_INSTANTIATE_BACKWARD(mean)
XGRAD_INSTANTIATE_BACKWARD(transpose)
XGRAD_INSTANTIATE_BACKWARD(softmax)
XGRAD_INSTANTIATE_BACKWARD(log_softmax)

}  // namespace detail

template <class T>
Tensor<T> sum(const Tensor<T>& a, Axis axis) {
  return detail::reduce(Op::Sum, a, axis, T(0));
}
template <class T>
Tensor<T> mean(const Tensor<T>& a, Axis axis) {
  // A mean over no elements is 0/0: refused like the losses' empty inputs instead of
  // results of NaN. An empty result (the mean over rows of a 3x0) has nothing to divide.
  Tape<T>& tape = detail::tape_of(a, "mean");
  const Matrix<T>& v = tape.value_of(tape.index_of(a, "mean"));
  const std::size_t count = axis == Axis::All    ? v.size()
                            : axis == Axis::Rows ? v.shape(0)
                                                 : v.shape(1);
  const std::size_t results = axis == Axis::All ? 1 : axis == Axis::Rows ? v.shape(1) : v.shape(0);
  if (count == 0 && results > 0) {
    throw std::invalid_argument("mean: empty input " + shape_string(v) +
                                " has no mean along the reduced axis");
  }
  return detail::reduce(Op::Mean, a, axis, T(1));
}
template <class T>
Tensor<T> transpose(const Tensor<T>& a) {
  Tape<T>& tape = detail::tape_of(a, "transpose");
  const std::uint32_t ia = tape.index_of(a, "transpose");
  const std::size_t rows = tape.value_of(ia).shape(0), cols = tape.value_of(ia).shape(1);
  const std::uint32_t i = tape.record(Op::Transpose, ia, detail::kNoParent, cols, rows);
  // Distinct buffers: the noalias(d) = transpose(d) trap of xtensor cannot occur.
  xt::noalias(tape.node(i).value) = xt::transpose(tape.value_of(ia));
  return detail::finish(tape, i);
}
template <class T>
Tensor<T> softmax(const Tensor<T>& a) {
  return detail::rowwise(Op::Softmax, a);
}
template <class T>
Tensor<T> log_softmax(const Tensor<T>& a) {
  return detail::rowwise(Op::LogSoftmax, a);
}

#define XGRAD_INSTANTIATE_ROWWISE(T)               \
  template Tensor<T> sum(const Tensor<T>&, Axis);  \
  template Tensor<T> mean(const Tensor<T>&, Axis); \
  template Tensor<T> transpose(const Tensor<T>&);  \
  template Tensor<T> softmax(const Tensor<T>&);    \
  template Tensor<T> log_softmax(const Tensor<T>&);
XGRAD_INSTANTIATE_ROWWISE(float)
XGRAD_INSTANTIATE_ROWWISE(double)

}  // namespace xgrad
