// Shared machinery of the op implementations: shape checks, the one place where
// broadcasting is undone (accumulate = PyTorch's sum_to), and the finite check.
#pragma once

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

#include <xtensor/xnoalias.hpp>
#include <xtensor/xtensor.hpp>

#include "op_table.hpp"
#include "xgrad/tape.hpp"

namespace xgrad::detail {

template <class T>
void reshape_reuse(Matrix<T>& m, std::size_t rows, std::size_t cols);

/// Shape of a 2-D broadcast of a and b, or an exception naming op and both shapes.
template <class T>
std::pair<std::size_t, std::size_t> broadcast_shape(Op op, const Matrix<T>& a,
                                                    const Matrix<T>& b) {
  auto dim = [&](std::size_t x, std::size_t y) {
    if (x == y || y == 1) return x;
    if (x == 1) return y;
    throw std::invalid_argument(std::string(op_name(op)) + ": shapes " + shape_string(a) +
                                " and " + shape_string(b) + " cannot be broadcast");
  };
  const std::size_t rows = dim(a.shape(0), b.shape(0));
  const std::size_t cols = dim(a.shape(1), b.shape(1));
  return {rows, cols};
}

/// Adds gradient `g` (an expression of the op's output shape) into the gradient of
/// node `target`, summing over the axes along which `target` was broadcast.
/// Every gradient goes through here, so its shape is checked in one place.
template <class T, class E>
void accumulate(Tape<T>& tape, std::uint32_t target, const E& g, std::uint32_t from) {
  if (target == kNoParent) return;
  Node<T>& n = tape.node(target);
  if (!n.requires_grad) return;
  Matrix<T>& dst = tape.grad_of(target);
  const std::size_t r = dst.shape(0), c = dst.shape(1);
  const std::size_t gr = g.shape()[0], gc = g.shape()[1];
  if (gr == r && gc == c) {
    xt::noalias(dst) += g;
  } else if ((r == 1 || r == gr) && (c == 1 || c == gc)) {
    // Broadcast operand: sum the incoming gradient down to its shape.
    if constexpr (std::is_same_v<std::decay_t<E>, Matrix<T>>) {
      const T* src = g.data();
      T* out = dst.data();
      for (std::size_t i = 0; i < gr; ++i) {
        for (std::size_t j = 0; j < gc; ++j) {
          out[(r == 1 ? 0 : i) * c + (c == 1 ? 0 : j)] += src[i * gc + j];
        }
      }
    } else {
      for (std::size_t i = 0; i < gr; ++i) {
        for (std::size_t j = 0; j < gc; ++j) {
          dst(r == 1 ? 0 : i, c == 1 ? 0 : j) += g(i, j);
        }
      }
    }
  } else {
    throw std::logic_error(std::string(op_name(tape.node(from).op)) + ": gradient of shape " +
                           shape_string(gr, gc) + " cannot flow into a tensor of shape " +
                           shape_string(r, c));
  }
  n.grad_touched = true;
}

/// log sum_q exp(x_q - max) of one row of length cols, with the row max in row_max:
/// the stable log-normaliser of softmax, log_softmax and the fused cross-entropy.
template <class T>
inline T row_log_normaliser(const T* x, std::size_t cols, T& row_max) {
  row_max = *std::max_element(x, x + cols);
  T s = 0;
  for (std::size_t q = 0; q < cols; ++q) s += std::exp(x[q] - row_max);
  return std::log(s);
}

/// Opt-in NaN/Inf check after a forward op, then the handle.
template <class T>
Tensor<T> finish(Tape<T>& tape, std::uint32_t i) {
  if (tape.check_finite()) tape.check_node_finite(i, false);
  return tape.handle(i);
}

}  // namespace xgrad::detail
