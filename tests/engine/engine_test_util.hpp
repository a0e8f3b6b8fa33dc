// Shared helpers of the engine tests: reproducible random inputs, the one gradient
// check every op goes through (tests/engine/test_gradcheck_*.cpp, test_broadcast.cpp),
// and a scoped thread count.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "xgrad/parallel.hpp"
#include "xgrad/threads.hpp"
#include "xgrad/xgrad.hpp"

namespace xgrad_test {

using xgrad::Matrix;
using Tape = xgrad::Tape<double>;
using Tensor = xgrad::Tensor<double>;
using Inputs = std::vector<Tensor>;

/// Sets the thread count for one test and restores the previous one after it. The
/// contention guard is off meanwhile, so that a busy machine cannot turn a region this
/// test expects in parallel into a serial one.
struct ThreadsFor {
  explicit ThreadsFor(int n) : before(xgrad::threads()) {
    xgrad::set_threads(n);
    xgrad::detail::set_contention_guard(false);
  }
  ~ThreadsFor() {
    xgrad::set_threads(before);
    xgrad::detail::set_contention_guard(true);
  }
  ThreadsFor(const ThreadsFor&) = delete;
  ThreadsFor& operator=(const ThreadsFor&) = delete;
  int before;
};

/// Where random test values are drawn from.
enum class Domain {
  /// +-[0.2, 1.5] with a random sign: finite differences with h = 1e-6 never cross the
  /// kinks of abs/relu/leaky_relu/elu at 0 and never come near the pole of div.
  AwayFromZero,
  /// [0.5, 2]: inside the domain of log, sqrt and non-integer powers.
  Positive,
  /// [0, 1]: targets of binary cross-entropy.
  Unit,
};

/// Distance in units in the last place between two doubles of the same sign (0 if equal,
/// also for two NaNs).
inline std::uint64_t ulp_distance(double a, double b) {
  if (a == b || (std::isnan(a) && std::isnan(b))) return 0;
  if (std::isnan(a) || std::isnan(b) || std::signbit(a) != std::signbit(b)) {
    return std::numeric_limits<std::uint64_t>::max();
  }
  std::uint64_t ia, ib;
  std::memcpy(&ia, &a, sizeof a);
  std::memcpy(&ib, &b, sizeof b);
  return ia > ib ? ia - ib : ib - ia;
}

/// A reproducible random rows x cols matrix (same seed, same numbers).
template <class T = double>
Matrix<T> random_matrix(std::size_t rows, std::size_t cols, std::uint64_t seed,
                        Domain domain = Domain::AwayFromZero) {
  std::mt19937_64 rng(seed);
  Matrix<T> m({rows, cols});
  std::uniform_real_distribution<double> magnitude(0.2, 1.5), positive(0.5, 2.0), unit(0.0, 1.0);
  std::bernoulli_distribution negative(0.5);
  for (T& x : m) {
    switch (domain) {
      case Domain::AwayFromZero:
        x = static_cast<T>(negative(rng) ? -magnitude(rng) : magnitude(rng));
        break;
      case Domain::Positive:
        x = static_cast<T>(positive(rng));
        break;
      case Domain::Unit:
        x = static_cast<T>(unit(rng));
        break;
    }
  }
  return m;
}

/// Rows that each hold one 1 at a random column (class labels for cross-entropy).
template <class T = double>
Matrix<T> one_hot_rows(std::size_t rows, std::size_t cols, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<std::size_t> pick(0, cols - 1);
  Matrix<T> m({rows, cols});
  m.fill(T(0));
  for (std::size_t r = 0; r < rows; ++r)
    m(r, pick(rng)) = T(1);
  return m;
}

inline std::string shape_of(const Matrix<double>& m) {
  return xgrad::shape_string(m);
}

/// Largest |a - b| over two matrices of the same shape (infinity if shapes differ).
template <class T>
double max_abs_diff(const Matrix<T>& a, const Matrix<T>& b) {
  if (a.shape() != b.shape()) return std::numeric_limits<double>::infinity();
  double worst = 0;
  for (std::size_t k = 0; k < a.size(); ++k) {
    worst = std::max(worst, std::abs(double(a.data()[k]) - double(b.data()[k])));
  }
  return worst;
}

/// Every element of rows [first, last) of m is exactly zero.
template <class T>
bool rows_are_zero(const Matrix<T>& m, std::size_t first, std::size_t last) {
  for (std::size_t r = first; r < last; ++r) {
    for (std::size_t c = 0; c < m.shape(1); ++c) {
      if (m(r, c) != T(0)) return false;
    }
  }
  return true;
}

/// An op under test, applied to tape variables made from the inputs.
using OpUnderTest = std::function<Tensor(const Inputs& x)>;

/// The three properties every op's backward must have, checked in float64:
///  1. gradcheck passes: the tape's gradient of sum(op(x) . G), G a random upstream
///     gradient, matches central differences in every element of every input;
///  2. it still passes when every input also feeds a second consumer recorded *after*
///     the op: the reverse walk then reaches the op with the inputs' gradients already
///     non-zero, so a rule that assigned (=) instead of adding (+=) would fail;
///  3. walking a kept graph twice gives bit-identical gradients.
inline void check_op_gradients(const std::string& what, const OpUnderTest& op,
                               const std::vector<Matrix<double>>& inputs) {
  std::string shapes;
  std::size_t elements = 0;
  for (const auto& m : inputs) {
    shapes += (shapes.empty() ? "" : ", ") + shape_of(m);
    elements += m.size();
  }
  INFO(what << " on " << shapes);

  const xgrad::GradcheckResult plain =
      xgrad::gradcheck([&](Tape&, const Inputs& x) { return op(x); }, inputs);
  CHECK_MESSAGE(plain.passed, plain.message());
  CHECK(plain.elements_checked == elements);

  const xgrad::GradcheckResult accumulated = xgrad::gradcheck(
      [&](Tape&, const Inputs& x) {
        const Tensor y = op(x);
        Tensor extra = xgrad::sum(xgrad::square(x[0]));
        for (std::size_t k = 1; k < x.size(); ++k)
          extra = extra + xgrad::sum(xgrad::square(x[k]));
        // extra is 1x1, broadcast over y. Divided by y's size, so that a wide y does not
        // add hundreds of copies of it to the checked function: their rounding, divided
        // by the step, swamped the central difference (linear 3x2 by 2x130: 1e-4).
        return y + extra * (1.0 / static_cast<double>(y.rows() * y.cols()));
      },
      inputs);
  CHECK_MESSAGE(accumulated.passed, "with a second consumer: " << accumulated.message());

  Tape tape;
  Inputs x;
  for (const auto& m : inputs)
    x.push_back(tape.variable(m));
  const Tensor y = op(x);
  const Matrix<double> upstream = random_matrix(y.rows(), y.cols(), 99);
  tape.backward(y, upstream, xgrad::BackwardOptions{true});
  std::vector<Matrix<double>> first;
  for (const auto& v : x)
    first.push_back(v.grad());
  tape.backward(y, upstream, xgrad::BackwardOptions{true});
  for (std::size_t k = 0; k < x.size(); ++k) {
    CHECK_MESSAGE(max_abs_diff(first[k], x[k].grad()) == 0.0,
                  "second backward on a kept graph changed the gradient of input " << k);
  }
}

}  // namespace xgrad_test
