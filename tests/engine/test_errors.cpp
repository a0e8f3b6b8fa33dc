// Specification of the engine's errors: each one is tested by its message, which names
// the op and the shapes (or the element) involved, so a user can act on it.
#include "engine_test_util.hpp"

using namespace xgrad_test;

TEST_CASE("ops on shapes that do not broadcast name the op and both shapes") {
  Tape tape;
  const Tensor a = tape.variable(random_matrix(2, 3, 1));
  const Tensor b = tape.variable(random_matrix(4, 3, 2));
  const Tensor c = tape.variable(random_matrix(2, 5, 3));
  CHECK_THROWS_WITH_AS(a + b, "add: shapes 2x3 and 4x3 cannot be broadcast", std::invalid_argument);
  CHECK_THROWS_WITH_AS(b - a, "sub: shapes 4x3 and 2x3 cannot be broadcast", std::invalid_argument);
  CHECK_THROWS_WITH_AS(a * c, "mul: shapes 2x3 and 2x5 cannot be broadcast", std::invalid_argument);
  CHECK_THROWS_WITH_AS(c / a, "div: shapes 2x5 and 2x3 cannot be broadcast", std::invalid_argument);
  // A row vector of the wrong width is not silently stretched (xtensor would resize).
  const Tensor bias = tape.variable(random_matrix(1, 4, 4));
  CHECK_THROWS_WITH_AS(a + bias, "add: shapes 2x3 and 1x4 cannot be broadcast",
                       std::invalid_argument);
}

TEST_CASE("matmul with different inner dimensions names both shapes") {
  Tape tape;
  const Tensor a = tape.variable(random_matrix(2, 3, 5));
  const Tensor b = tape.variable(random_matrix(4, 5, 6));
  CHECK_THROWS_WITH_AS(xgrad::matmul(a, b), "matmul: inner dimensions differ: 2x3 times 4x5",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(xgrad::matmul(a, a), "matmul: inner dimensions differ: 2x3 times 2x3",
                       std::invalid_argument);
}

TEST_CASE("losses with prediction and target of different shapes name the loss and both shapes") {
  Tape tape;
  const Tensor p = tape.variable(random_matrix(2, 3, 7));
  const Tensor t = tape.constant(random_matrix(3, 2, 8));
  CHECK_THROWS_WITH_AS(xgrad::mse_loss(p, t), "mse_loss: prediction is 2x3 but target is 3x2",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(xgrad::bce_with_logits(p, t),
                       "bce_with_logits: logits are 2x3 but target is 3x2", std::invalid_argument);
  CHECK_THROWS_WITH_AS(xgrad::softmax_cross_entropy(p, t),
                       "softmax_cross_entropy: logits are 2x3 but target is 3x2",
                       std::invalid_argument);
}

TEST_CASE("backward on a non-scalar needs a seed gradient of the root's shape") {
  Tape tape;
  const Tensor x = tape.variable(random_matrix(2, 3, 9));
  const Tensor y = xgrad::exp(x);
  CHECK_THROWS_WITH_AS(tape.backward(y),
                       "backward: root is 2x3, not a scalar; pass a seed gradient of that shape",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(tape.backward(y, random_matrix(1, 3, 10)),
                       "backward: seed gradient is 1x3 but the root is 2x3", std::invalid_argument);
  // With a seed of the right shape it works: the gradient is seed * exp(x).
  const Matrix<double> seed = random_matrix(2, 3, 11);
  tape.backward(y, seed);
  for (std::size_t k = 0; k < seed.size(); ++k) {
    CHECK(x.grad().data()[k] == doctest::Approx(seed.data()[k] * y.value().data()[k]));
  }
}

TEST_CASE("backward from a root that needs no gradient says so") {
  Tape tape;
  const Tensor c = tape.constant(random_matrix(1, 1, 12));
  const std::string why =
      "does not depend on anything that requires a gradient (only constants, or recorded "
      "under a NoGradGuard)";
  CHECK_THROWS_WITH_AS(tape.backward(xgrad::exp(c)), ("backward: root (exp) " + why).c_str(),
                       std::invalid_argument);
  // The same for a root recorded under a guard, even from a variable.
  const Tensor v = tape.variable(random_matrix(1, 1, 13));
  Tensor root;
  {
    xgrad::NoGradGuard<double> no_grad(tape);
    root = xgrad::sqrt(xgrad::exp(v));
  }
  CHECK_THROWS_WITH_AS(tape.backward(root), ("backward: root (sqrt) " + why).c_str(),
                       std::invalid_argument);
}

TEST_CASE("the opt-in finite check names the op that produced NaN or Inf") {
  Tape tape;
  Matrix<double> v({1, 2});
  v(0, 0) = 1.0;
  v(0, 1) = 0.0;

  SUBCASE("off by default: the Inf simply propagates") {
    CHECK_FALSE(tape.check_finite());
    const Tensor y = xgrad::log(tape.variable(v));
    CHECK(std::isinf(y.value()(0, 1)));
  }
  SUBCASE("log(0) in the forward pass") {
    tape.set_check_finite(true);
    const Tensor x = tape.variable(v);
    CHECK_THROWS_WITH_AS(xgrad::log(x), "log (tensor #1, 1x2) produced Inf in its output at (0, 1)",
                         std::domain_error);
  }
  SUBCASE("sqrt(-1) in the forward pass") {
    tape.set_check_finite(true);
    const Tensor x = tape.variable(v);
    CHECK_THROWS_WITH_AS(xgrad::sqrt(x - 1.0),
                         "sqrt (tensor #2, 1x2) produced NaN in its output at (0, 1)",
                         std::domain_error);
  }
  SUBCASE("division by zero in the forward pass") {
    tape.set_check_finite(true);
    const Tensor x = tape.variable(v);
    CHECK_THROWS_WITH_AS(x / x, "div (tensor #1, 1x2) produced NaN in its output at (0, 1)",
                         std::domain_error);
    CHECK_THROWS_WITH_AS(1.0 / x,
                         "scalar_div (tensor #2, 1x2) produced Inf in its output at (0, 1)",
                         std::domain_error);
  }
  SUBCASE("sqrt at 0 is finite forward but its backward produces Inf") {
    tape.set_check_finite(true);
    const Tensor x = tape.variable(v);
    const Tensor loss = xgrad::sum(xgrad::sqrt(x));  // sqrt(0) = 0 is fine
    CHECK(loss.item() == 1.0);
    // The message blames sqrt's backward, not the leaf the Inf lands in.
    CHECK_THROWS_WITH_AS(tape.backward(loss),
                         "sqrt (tensor #1) backward produced Inf in the gradient of its input "
                         "tensor #0 (variable, 1x2) at (0, 1)",
                         std::domain_error);
  }
  SUBCASE("a non-finite seed gradient") {
    tape.set_check_finite(true);
    const Tensor y = xgrad::exp(tape.variable(v));
    Matrix<double> seed({1, 2});
    seed(0, 0) = 1.0;
    seed(0, 1) = std::numeric_limits<double>::quiet_NaN();
    CHECK_THROWS_WITH_AS(tape.backward(y, seed), "backward: the seed gradient has NaN at (0, 1)",
                         std::domain_error);
  }
}

TEST_CASE("item() of a non-scalar, an unset Parameter and 0 threads throw an error naming them") {
  Tape tape;
  const Tensor m = tape.variable(random_matrix(2, 3, 13));
  CHECK_THROWS_WITH_AS(m.item(), "xgrad::Tensor::item: tensor is 2x3, item() needs 1x1",
                       std::invalid_argument);
  xgrad::Parameter<double> unset;
  CHECK_FALSE(unset.defined());
  CHECK_THROWS_WITH_AS(tape.parameter(unset), "xgrad::Parameter: used before it was given a value",
                       std::logic_error);
  CHECK_THROWS_WITH_AS(xgrad::set_threads(0), "set_threads: thread count must be at least 1, got 0",
                       std::invalid_argument);
}
