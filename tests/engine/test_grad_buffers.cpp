// Tape-owned gradient buffers are not zero-filled before a backward pass: the first rule
// that reaches one assigns. These cases reuse buffers that hold the previous step's
// numbers and check that none of them leaks into this step's gradients.
#include <cmath>
#include <limits>

#include <xtensor/xbuilder.hpp>

#include <doctest/doctest.h>

#include "engine_test_util.hpp"

using xgrad::Matrix;

TEST_CASE("reused gradient buffers: the first write of a backward assigns, later ones add") {
  xgrad::Tape<double> tape;
  const Matrix<double> a{{1.0, -2.0, 0.5}, {3.0, 0.25, -1.0}};
  const Matrix<double> b{{0.5, 1.5, -2.0}};
  {
    // Step 1 fills every buffer with something large.
    const auto x = tape.variable(Matrix<double>(a * 100.0));
    const auto y = tape.variable(Matrix<double>(b * 100.0));
    const auto h = xgrad::matmul(x, xgrad::transpose(x)) + xgrad::sum(y);
    tape.backward(xgrad::sum(xgrad::sigmoid(h) * h, xgrad::Axis::All));
    CHECK(x.grad()(0, 0) != 0.0);
  }
  tape.clear();
  // Step 2, same shapes, so the same buffers: y is recorded but feeds nothing, x is
  // used twice (by a broadcasting add and a matmul), h's gradient comes from the seed.
  const auto x = tape.variable(a);
  const auto y = tape.variable(b);
  const auto w = tape.variable(Matrix<double>{{2.0}, {-1.0}, {0.5}});
  const auto h = x + tape.constant(Matrix<double>{{1.0, 1.0, 1.0}});
  const auto z = xgrad::matmul(h, w) + xgrad::matmul(x, w);
  const auto loss = xgrad::sum(z, xgrad::Axis::All);
  tape.backward(loss);
  // d loss / dx = 2 * (w^T in every row); d loss / dw = column sums of h + x.
  for (std::size_t p = 0; p < 2; ++p) {
    CHECK(x.grad()(p, 0) == 4.0);
    CHECK(x.grad()(p, 1) == -2.0);
    CHECK(x.grad()(p, 2) == 1.0);
  }
  CHECK(w.grad()(0, 0) == (a(0, 0) + 1 + a(0, 0)) + (a(1, 0) + 1 + a(1, 0)));
  CHECK(w.grad()(1, 0) == (a(0, 1) + 1 + a(0, 1)) + (a(1, 1) + 1 + a(1, 1)));
  for (const double g : y.grad())
    CHECK(g == 0.0);  // reached by nothing: zeros
  for (const double g : z.grad())
    CHECK(g == 1.0);
}

TEST_CASE("reused gradient buffers with NaN garbage: never read by a pass") {
  xgrad::Tape<double> tape;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  {
    // Step 1 leaves NaN in the gradients of x, of the matmul and of the sigmoid.
    const auto x = tape.variable(Matrix<double>{{nan, 1.0}, {2.0, nan}});
    const auto w = tape.variable(Matrix<double>{{1.0, 2.0}, {3.0, 4.0}});
    const auto s = xgrad::sigmoid(xgrad::matmul(x, w));
    tape.backward(xgrad::sum(s * s, xgrad::Axis::All));
    CHECK(std::isnan(w.grad()(0, 0)));
  }
  tape.clear();
  tape.set_check_finite(true);  // would throw on any NaN read back from a buffer
  const auto x = tape.variable(Matrix<double>{{0.5, 1.0}, {2.0, -1.0}});
  const auto w = tape.variable(Matrix<double>{{1.0, 2.0}, {3.0, 4.0}});
  const auto s = xgrad::sigmoid(xgrad::matmul(x, w));
  tape.backward(xgrad::sum(s * s, xgrad::Axis::All));
  for (const double g : x.grad())
    CHECK(std::isfinite(g));
  for (const double g : w.grad())
    CHECK(std::isfinite(g));
  // Against the same computation on a fresh tape.
  xgrad::Tape<double> fresh;
  const auto x2 = fresh.variable(x.value());
  const auto w2 = fresh.variable(w.value());
  const auto s2 = xgrad::sigmoid(xgrad::matmul(x2, w2));
  fresh.backward(xgrad::sum(s2 * s2, xgrad::Axis::All));
  CHECK(xgrad_test::max_abs_diff(x.grad(), x2.grad()) == 0.0);
  CHECK(xgrad_test::max_abs_diff(w.grad(), w2.grad()) == 0.0);
}

TEST_CASE("parameters keep accumulating across backward passes") {
  xgrad::Parameter<double> p(Matrix<double>{{1.0, 2.0}});
  xgrad::Tape<double> tape;
  for (int step = 1; step <= 3; ++step) {
    tape.clear();
    const auto v = tape.parameter(p);
    tape.backward(xgrad::sum(v * 3.0, xgrad::Axis::All));
    CHECK(p.grad()(0, 0) == 3.0 * step);
    CHECK(p.grad()(0, 1) == 3.0 * step);
  }
}

TEST_CASE("an empty (k = 0) matmul writes zeros into a reused output buffer") {
  xgrad::Tape<double> tape;
  {
    const auto y = xgrad::matmul(tape.constant(Matrix<double>{{1.0}, {2.0}, {3.0}}),
                                 tape.constant(Matrix<double>{{4.0, 5.0}}));
    CHECK(y.value()(2, 1) == 15.0);
  }
  tape.clear();
  const auto a = tape.variable(Matrix<double>(xt::zeros<double>({3, 0})));
  const auto b = tape.variable(Matrix<double>(xt::zeros<double>({0, 2})));
  const auto y = xgrad::matmul(a, b);  // same 3x2 buffer as step 1's product
  REQUIRE(y.value().shape(0) == 3);
  REQUIRE(y.value().shape(1) == 2);
  for (const double v : y.value())
    CHECK(v == 0.0);
  tape.backward(xgrad::sum(y, xgrad::Axis::All));
  CHECK(a.grad().size() == 0);
  CHECK(b.grad().size() == 0);
}

TEST_CASE("a node after the root of a later backward reads zeros, not its earlier gradient") {
  // b = a * a walked first, then a walk rooted at a: b took no part in the second walk.
  xgrad::Tape<double> tape;
  const auto a = tape.variable(xgrad::Matrix<double>{{3.0}});
  const auto b = a * a;
  tape.backward(b, xgrad::BackwardOptions{true});
  CHECK(a.grad()(0, 0) == 6.0);
  CHECK(b.grad()(0, 0) == 1.0);
  tape.backward(a, xgrad::BackwardOptions{true});
  CHECK(a.grad()(0, 0) == 1.0);
  CHECK(b.grad()(0, 0) == 0.0);
}
