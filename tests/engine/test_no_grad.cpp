// Specification of the RAII no-grad scope: inside it ops still compute values but record
// no backward information, so nothing inside can receive or pass a gradient.
#include "engine_test_util.hpp"

using namespace xgrad_test;

TEST_CASE("inside a no-grad scope results do not require a gradient") {
  Tape tape;
  xgrad::Parameter<double> w(random_matrix(3, 2, 1), "w");
  const Matrix<double> xv = random_matrix(4, 3, 2);
  const Tensor outside = tape.variable(xv);
  CHECK(tape.grad_enabled());
  {
    xgrad::NoGradGuard<double> no_grad(tape);
    CHECK_FALSE(tape.grad_enabled());
    const Tensor p = tape.parameter(w);
    const Tensor v = tape.variable(xv);
    const Tensor y = xgrad::sigmoid(xgrad::matmul(outside, p)) + 1.0;
    const Tensor loss = xgrad::sum(y * y) + xgrad::mean(v);
    CHECK_FALSE(p.requires_grad());
    CHECK_FALSE(v.requires_grad());
    CHECK_FALSE(y.requires_grad());
    CHECK_FALSE(loss.requires_grad());
    // Values are still computed.
    CHECK(std::isfinite(loss.item()));
    CHECK(loss.item() > 0);
    // Nothing to walk back from.
    CHECK_THROWS_WITH_AS(tape.backward(loss),
                         "backward: root (add) does not depend on anything that requires a "
                         "gradient (only constants, or recorded under a NoGradGuard)",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(y.grad(), doctest::Contains("does not require a gradient"),
                         std::logic_error);
  }
  CHECK(tape.grad_enabled());
  // The parameter got no gradient from anything recorded inside the scope.
  for (const double g : w.grad())
    CHECK(g == 0.0);
}

TEST_CASE("a no-grad scope cuts the graph: gradients flow only through recorded ops") {
  Tape tape;
  const Matrix<double> v = random_matrix(2, 3, 3);
  const Tensor x = tape.variable(v);
  Tensor detached;
  {
    xgrad::NoGradGuard<double> no_grad(tape);
    detached = xgrad::exp(x);  // treated as a constant afterwards
  }
  // loss = sum(x * exp(x)) where exp(x) was computed without grad: d/dx = exp(x) only.
  tape.backward(xgrad::sum(x * detached));
  for (std::size_t k = 0; k < v.size(); ++k) {
    CHECK(x.grad().data()[k] == doctest::Approx(std::exp(v.data()[k])));
  }
}

TEST_CASE("no-grad scopes nest and restore the previous state") {
  Tape tape;
  {
    xgrad::NoGradGuard<double> outer(tape);
    {
      xgrad::NoGradGuard<double> inner(tape);
      CHECK_FALSE(tape.grad_enabled());
    }
    CHECK_FALSE(tape.grad_enabled());  // still inside the outer scope
  }
  CHECK(tape.grad_enabled());
  const Tensor x = tape.variable(random_matrix(1, 1, 4));
  CHECK(x.requires_grad());
  CHECK(xgrad::square(x).requires_grad());
}

TEST_CASE("a no-grad scope restores recording when the scope is left by an exception") {
  Tape tape;
  const Tensor a = tape.variable(random_matrix(2, 3, 5));
  const Tensor b = tape.variable(random_matrix(3, 2, 6));
  try {
    xgrad::NoGradGuard<double> no_grad(tape);
    (void)(a + b);  // 2x3 and 3x2 do not broadcast
  } catch (const std::invalid_argument&) {
  }
  CHECK(tape.grad_enabled());
  CHECK(xgrad::matmul(a, b).requires_grad());
}
