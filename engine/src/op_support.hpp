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

#include "blas.hpp"
#include "op_table.hpp"
#include "vector_exp.hpp"
#include "xgrad/parallel.hpp"
#include "xgrad/tape.hpp"

namespace xgrad::detail {

/// The tape of an op's first operand; for an empty handle an exception naming the op
/// (the handle's own tape() cannot know which op asked).
template <class T>
Tape<T>& tape_of(const Tensor<T>& a, const char* op) {
  if (!a.defined())
    throw std::invalid_argument(std::string(op) + ": tensor belongs to no tape (empty handle)");
  return a.tape();
}

template <class T>
void reshape_reuse(Matrix<T>& m, std::size_t rows, std::size_t cols);

/// Shape of a 2-D broadcast of a and b, or an exception naming op and both shapes.
template <class T>
std::pair<std::size_t, std::size_t> broadcast_shape(Op op, const Matrix<T>& a, const Matrix<T>& b) {
  auto dim = [&](std::size_t x, std::size_t y) {
    if (x == y || y == 1) return x;
    if (x == 1) return y;
    throw std::invalid_argument(std::string(op_name(op)) + ": shapes " + shape_string(a) + " and " +
                                shape_string(b) + " cannot be broadcast");
  };
  const std::size_t rows = dim(a.shape(0), b.shape(0));
  const std::size_t cols = dim(a.shape(1), b.shape(1));
  return {rows, cols};
}

/// Tape-owned gradients are not zero-filled before the reverse walk: the first rule that
/// reaches one in a backward pass assigns instead of adding, which saves a memset and a
/// read of every such buffer. A parameter's own grad() always accumulates.
template <class T>
bool grad_fresh(const Node<T>& n) {
  return !n.grad_touched && !n.grad_in_parameter();
}
/// Records that node n's gradient holds this backward's contribution.
template <class T>
void mark_written(Node<T>& n) {
  n.grad_touched = true;
  n.grad_ready = true;
}
/// The gradient buffer of node `target` for a rule that adds into it piece by piece:
/// zeroed first if fresh.
template <class T>
Matrix<T>& grad_for_add(Tape<T>& tape, std::uint32_t target) {
  Node<T>& n = tape.node(target);
  Matrix<T>& g = tape.grad_of(target);
  if (grad_fresh(n)) g.fill(T(0));
  mark_written(n);
  return g;
}

/// float64 bias rows up to this wide are summed column block by column block in registers.
inline constexpr std::size_t kRegisterSumMaxColumns = 64;

/// Gradient g (gr x gc, a Matrix<float> or an expression) summed down to an r x c
/// broadcast operand's shape and added into out (assigned when fresh), in double: a
/// float accumulator stops growing at 2^24 (the gradient of a 1x1 operand of 2^25 ones
/// came out 16777216) and drifts by ~n eps on the way (1000x1000 times a 1x1: 1.4e-4
/// relative, PyTorch's pairwise float sum 3e-8). Each sum is rounded to float once.
template <class E>
void sum_to_shape_in_double(const E& g, std::size_t r, std::size_t c, bool fresh, float* out) {
  const std::size_t gr = g.shape()[0], gc = g.shape()[1];
  auto at = [&](std::size_t i, std::size_t j) -> double {
    if constexpr (std::is_same_v<std::decay_t<E>, Matrix<float>>) {
      return g.data()[i * gc + j];
    } else {
      return g(i, j);
    }
  };
  auto put = [&](std::size_t k, double sum) {
    out[k] = static_cast<float>(fresh ? sum : out[k] + sum);
  };
  if (r == 1 && c == gc) {
    // Column sums (a bias row), a block of columns at a time over all rows, each row's
    // part contiguous; a block's double sums stay on the stack.
    constexpr std::size_t kBlock = 256;
    double sum[kBlock];
    for (std::size_t j0 = 0; j0 < gc; j0 += kBlock) {
      const std::size_t width = std::min(kBlock, gc - j0);
      std::fill(sum, sum + width, 0.0);
      for (std::size_t i = 0; i < gr; ++i) {
        for (std::size_t j = 0; j < width; ++j)
          sum[j] += at(i, j0 + j);
      }
      for (std::size_t j = 0; j < width; ++j)
        put(j0 + j, sum[j]);
    }
  } else if (c == 1 && r == gr) {
    for (std::size_t i = 0; i < gr; ++i) {  // row sums (a column operand)
      double sum = 0;
      for (std::size_t j = 0; j < gc; ++j)
        sum += at(i, j);
      put(i, sum);
    }
  } else {  // r == c == 1: everything
    double sum = 0;
    for (std::size_t i = 0; i < gr; ++i) {
      for (std::size_t j = 0; j < gc; ++j)
        sum += at(i, j);
    }
    put(0, sum);
  }
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
  const bool fresh = grad_fresh(n);
  const std::size_t r = dst.shape(0), c = dst.shape(1);
  const std::size_t gr = g.shape()[0], gc = g.shape()[1];
  if (gr == r && gc == c) {
    if constexpr (std::is_same_v<std::decay_t<E>, Matrix<T>>) {
      const T* src = g.data();
      T* out = dst.data();
      const std::size_t size = dst.size();
      if (fresh) {
        std::copy(src, src + size, out);
      } else {
        for (std::size_t k = 0; k < size; ++k)
          out[k] += src[k];
      }
    } else if (fresh) {
      xt::noalias(dst) = g;
    } else {
      xt::noalias(dst) += g;
    }
  } else if ((r == 1 || r == gr) && (c == 1 || c == gc)) {
    // Broadcast operand: sum the incoming gradient down to its shape.
    if constexpr (std::is_same_v<T, float>) {
      sum_to_shape_in_double(g, r, c, fresh, dst.data());
    } else if constexpr (std::is_same_v<std::decay_t<E>, Matrix<T>>) {
      const T* src = g.data();
      T* out = dst.data();
      if (r == 1 && c == gc && gc <= kRegisterSumMaxColumns) {
        // A narrow bias row 1xC: the column sums, held in registers over all rows
        // (blas.cpp; the Runge network's 240x50: 5 % of its step as the loop below).
        sum_rows(gr, gc, src, fresh ? T(0) : T(1), out);
      } else if (r == 1 && c == gc) {
        // A wide one: whole rows added in order, a contiguous loop the compiler
        // vectorises. Column blocks walked over all rows would stride by the row length
        // (128x512 float64: 3.7x slower that way, a 4 KiB stride).
        if (fresh) dst.fill(T(0));
        for (std::size_t i = 0; i < gr; ++i) {
          const T* row = src + i * gc;
          for (std::size_t j = 0; j < gc; ++j)
            out[j] += row[j];
        }
      } else {
        if (fresh) dst.fill(T(0));
        for (std::size_t i = 0; i < gr; ++i) {
          for (std::size_t j = 0; j < gc; ++j) {
            out[(r == 1 ? 0 : i) * c + (c == 1 ? 0 : j)] += src[i * gc + j];
          }
        }
      }
    } else {
      if (fresh) dst.fill(T(0));
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
  mark_written(n);
}

/// Adds f(k) into element k of the gradient of node `target`, for a unary op whose
/// output (node `from`) has the target's shape: a plain loop over the buffer, which the
/// compiler vectorises, instead of an xtensor expression.
template <class T, class F>
void accumulate_unary(Tape<T>& tape, std::uint32_t target, std::uint32_t from, F&& f) {
  if (target == kNoParent) return;
  Node<T>& n = tape.node(target);
  if (!n.requires_grad) return;
  Matrix<T>& dst = tape.grad_of(target);
  const Matrix<T>& g = tape.grad_of(from);
  if (dst.shape(0) != g.shape(0) || dst.shape(1) != g.shape(1)) {
    throw std::logic_error(std::string(op_name(tape.node(from).op)) + ": gradient of shape " +
                           shape_string(g) + " cannot flow into a tensor of shape " +
                           shape_string(dst));
  }
  T* out = dst.data();
  const bool fresh = grad_fresh(n);
  parallel_for(dst.size(), kParallelItems, [&](std::size_t b, std::size_t e) {
    if (fresh) {
      for (std::size_t k = b; k < e; ++k)
        out[k] = f(k);
    } else {
      for (std::size_t k = b; k < e; ++k)
        out[k] += f(k);
    }
  });
  mark_written(n);
}

/// log p = z - max - log sum_q e^(z_q - max) for each of `rows` rows of length cols
/// (contiguous, row-major) into log_p, which may not alias z: the stable log-softmax of
/// softmax, log_softmax and the fused cross-entropy. The exponentials of the whole block
/// are taken in one vectorised pass over log_p (a scalar std::exp per element cost ~1 %
/// of an MNIST step for the loss alone).
template <class T>
void log_softmax_rows(const T* z, T* log_p, std::size_t rows, std::size_t cols) {
  if (cols == 0) return;  // rows of nothing: no maximum to take, nothing to write
  const auto row_max = [&](std::size_t p) {
    return *std::max_element(z + p * cols, z + (p + 1) * cols);
  };
  for (std::size_t p = 0; p < rows; ++p) {
    const T m = row_max(p);
    for (std::size_t q = 0; q < cols; ++q)
      log_p[p * cols + q] = z[p * cols + q] - m;
  }
  vector_exp(log_p, log_p, rows * cols);
  for (std::size_t p = 0; p < rows; ++p) {
    T sum = 0;
    for (std::size_t q = 0; q < cols; ++q)
      sum += log_p[p * cols + q];
    const T m = row_max(p), lse = std::log(sum);
    for (std::size_t q = 0; q < cols; ++q)  // (z - m) first: exact near the max, where
      log_p[p * cols + q] = (z[p * cols + q] - m) - lse;  // m + lse would round off lse
  }
}

/// Calls f(k, e^x[k]) for k = 0 .. n-1 in order, the exponentials taken a block at a time
/// into a stack buffer (vectorised, no allocation): the backward rules that need e^(log p).
template <class T, class F>
void for_each_exp(const T* x, std::size_t n, F&& f) {
  constexpr std::size_t kBlock = 512;
  alignas(64) T e[kBlock];
  for (std::size_t b = 0; b < n; b += kBlock) {
    const std::size_t len = std::min(kBlock, n - b);
    vector_exp(x + b, e, len);
    for (std::size_t k = 0; k < len; ++k)
      f(b + k, e[k]);
  }
}

/// Opt-in NaN/Inf check after a forward op, then the handle.
template <class T>
Tensor<T> finish(Tape<T>& tape, std::uint32_t i) {
  if (tape.check_finite()) tape.check_node_finite(i, false);
  return tape.handle(i);
}

}  // namespace xgrad::detail
