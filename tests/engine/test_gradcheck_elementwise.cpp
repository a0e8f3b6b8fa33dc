// Specification: the backward rule of every elementwise op and every op with a scalar
// matches central finite differences in float64, on 1x1, 1xN, Nx1 and RxC inputs.
#include <array>
#include <cmath>
#include <limits>

#include "engine_test_util.hpp"

using namespace xgrad_test;

namespace {

struct Shape {
  std::size_t rows, cols;
};
// A scalar, a row vector, a column vector and a full matrix.
const Shape kShapes[] = {{1, 1}, {1, 5}, {4, 1}, {3, 4}};

void check_unary(const std::string& name, Domain domain, const OpUnderTest& op) {
  std::uint64_t seed = 1;
  for (const Shape& s : kShapes) {
    check_op_gradients(name, op, {random_matrix(s.rows, s.cols, seed++, domain)});
  }
}

}  // namespace

TEST_CASE("neg, exp, square and tanh differentiate correctly on every shape") {
  check_unary("neg", Domain::AwayFromZero, [](const Inputs& x) { return xgrad::neg(x[0]); });
  check_unary("unary minus", Domain::AwayFromZero, [](const Inputs& x) { return -x[0]; });
  check_unary("exp", Domain::AwayFromZero, [](const Inputs& x) { return xgrad::exp(x[0]); });
  check_unary("square", Domain::AwayFromZero, [](const Inputs& x) { return xgrad::square(x[0]); });
  check_unary("tanh", Domain::AwayFromZero, [](const Inputs& x) { return xgrad::tanh(x[0]); });
}

TEST_CASE("log and sqrt differentiate correctly inside their domain") {
  check_unary("log", Domain::Positive, [](const Inputs& x) { return xgrad::log(x[0]); });
  check_unary("sqrt", Domain::Positive, [](const Inputs& x) { return xgrad::sqrt(x[0]); });
}

TEST_CASE("pow differentiates correctly for integer, fractional and negative exponents") {
  check_unary("pow 2", Domain::AwayFromZero, [](const Inputs& x) { return xgrad::pow(x[0], 2.0); });
  check_unary("pow 3", Domain::AwayFromZero, [](const Inputs& x) { return xgrad::pow(x[0], 3.0); });
  check_unary("pow 0.5", Domain::Positive, [](const Inputs& x) { return xgrad::pow(x[0], 0.5); });
  check_unary("pow -1.5", Domain::Positive, [](const Inputs& x) { return xgrad::pow(x[0], -1.5); });
}

template <class T>
void check_pow_at_edges() {
  // 17 equal values: two float batches of 8 (or four double batches of 4) and a scalar
  // tail, so a position-dependent kernel would show. Expected: std::pow, and the rule
  // alpha a^(alpha-1), 0 for alpha = 0.
  const T inf = std::numeric_limits<T>::infinity();
  for (const T a : {T(0), -T(0), T(2), inf, -inf, T(1e-30)})
    for (const T alpha : {T(0), T(1), T(2), T(-1), T(0.5), T(-0.5), T(3)}) {
      CAPTURE(a);
      CAPTURE(alpha);
      xgrad::Tape<T> tape;
      const xgrad::Tensor<T> x =
          tape.variable(xgrad::Matrix<T>(std::array<std::size_t, 2>{1, 17}, a));
      const xgrad::Tensor<T> y = xgrad::pow(x, alpha);
      tape.backward(y, xgrad::Matrix<T>(std::array<std::size_t, 2>{1, 17}, T(1)));
      const T want = std::pow(a, alpha);
      const T want_grad = alpha == T(0) ? T(0) : alpha * std::pow(a, alpha - T(1));
      for (std::size_t k = 0; k < 17; ++k) {
        CAPTURE(k);
        CHECK(((y.value()(0, k) == want) || (std::isnan(want) && std::isnan(y.value()(0, k)))));
        CHECK(((x.grad()(0, k) == want_grad) ||
               (std::isnan(want_grad) && std::isnan(x.grad()(0, k)))));
      }
    }
}

TEST_CASE("pow equals std::pow in every position, at 0, at infinity and for exponent 0") {
  check_pow_at_edges<double>();
  check_pow_at_edges<float>();
  Tape tape;  // a zero row normalised by pow(sum of squares, -0.5) gives inf, not 0
  const Tensor x = tape.variable(Matrix<double>{{1, 2}, {3, 4}, {0, 0}, {5, 6}});
  const Tensor inv = xgrad::pow(xgrad::sum(xgrad::square(x), xgrad::Axis::Cols), -0.5);
  CHECK(std::isinf(inv.value()(2, 0)));
  CHECK(inv.value()(0, 0) == doctest::Approx(1 / std::sqrt(5.0)));
}

template <class T, class Op>
void check_equals_libm_in_every_position(T a, Op op, T want) {
  CAPTURE(a);
  xgrad::Tape<T> tape;
  const xgrad::Tensor<T> x = tape.constant(xgrad::Matrix<T>(std::array<std::size_t, 2>{1, 17}, a));
  const xgrad::Tensor<T> y = op(x);
  for (std::size_t k = 0; k < 17; ++k) {
    CAPTURE(k);
    CHECK(y.value()(0, k) == want);
  }
}

TEST_CASE("exp and log equal libm where xsimd's batch functions are wrong") {
  // float exp: xsimd overflowed from 88.38 and flushed to 0 below -87.68.
  const auto exp_f = [](const xgrad::Tensor<float>& x) { return xgrad::exp(x); };
  for (const float a : {88.5f, 88.7f, 88.8f, -87.9f, -100.0f, -104.0f})
    check_equals_libm_in_every_position(a, exp_f, std::exp(a));
  // double log of subnormals: xsimd gave log(1e-310) = -746.5 for -713.8.
  const auto log_d = [](const xgrad::Tensor<double>& x) { return xgrad::log(x); };
  for (const double a : {1e-310, 4.9e-324, 2.2e-308, 1e-300})
    check_equals_libm_in_every_position(a, log_d, std::log(a));
  const auto log_f = [](const xgrad::Tensor<float>& x) { return xgrad::log(x); };
  for (const float a : {1e-40f, 1e-45f, 1e-30f})
    check_equals_libm_in_every_position(a, log_f, std::log(a));
}

TEST_CASE("float sigmoid keeps its subnormal values far below 0") {
  // xsimd's float exp(-a) overflowed from a = -88.38, which made y = 0 where the exact
  // y is a subnormal (sigmoid(-88.5) = 3.67e-39, as PyTorch gives; sigmoid(-100) = 3.8e-44).
  const auto sigmoid_f = [](const xgrad::Tensor<float>& x) { return xgrad::sigmoid(x); };
  for (const float a : {-87.5f, -88.5f, -88.7f, -95.0f, -100.0f, -103.0f, -110.0f}) {
    const float want = float(1.0 / (1.0 + std::exp(-double(a))));
    check_equals_libm_in_every_position(a, sigmoid_f, want);
  }
  // In range, every position (the batches and the tail) gets the same bits.
  for (const float a : {-3.7f, 0.3f, 12.0f}) {
    xgrad::Tape<float> tape;
    const auto x = tape.constant(xgrad::Matrix<float>(std::array<std::size_t, 2>{1, 17}, a));
    const float first = xgrad::sigmoid(x).value()(0, 0);
    CHECK(first == doctest::Approx(1 / (1 + std::exp(-a))).epsilon(1e-6));
    check_equals_libm_in_every_position(a, sigmoid_f, first);
  }
  // bce_with_logits' gradient, (sigmoid(z) - y) / N, uses the same values: at z = -95
  // with y = 0 it is sigmoid(-95) / 2, a subnormal, not 0.
  xgrad::Tape<float> tape;
  const auto z = tape.variable(xgrad::Matrix<float>{{-95.0f, 3.0f}});
  tape.backward(xgrad::bce_with_logits(z, tape.constant(xgrad::Matrix<float>{{0.0f, 1.0f}})));
  CHECK(z.grad()(0, 0) == float(1.0 / (1.0 + std::exp(95.0))) / 2.0f);
  CHECK(z.grad()(0, 0) > 0.0f);
}

TEST_CASE("relu passes a NaN on, as PyTorch does, and clamps everything below 0") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  Tape tape;
  const Tensor x =
      tape.variable(Matrix<double>{{nan, -3.0, 0.0, 2.5, nan, -1e-300, 7.0, nan, 1.0}});
  const Tensor y = xgrad::relu(x);
  const double want[] = {nan, 0.0, 0.0, 2.5, nan, 0.0, 7.0, nan, 1.0};
  for (std::size_t k = 0; k < 9; ++k) {
    CAPTURE(k);
    CHECK(((y.value()(0, k) == want[k]) || (std::isnan(want[k]) && std::isnan(y.value()(0, k)))));
  }
}

TEST_CASE("abs and the piecewise activations differentiate correctly away from their kink") {
  // Inputs of both signs, at least 0.2 from the kink at 0, so both branches are checked.
  check_unary("abs", Domain::AwayFromZero, [](const Inputs& x) { return xgrad::abs(x[0]); });
  check_unary("relu", Domain::AwayFromZero, [](const Inputs& x) { return xgrad::relu(x[0]); });
  check_unary("leaky_relu default slope", Domain::AwayFromZero,
              [](const Inputs& x) { return xgrad::leaky_relu(x[0]); });
  check_unary("leaky_relu slope 0.3", Domain::AwayFromZero,
              [](const Inputs& x) { return xgrad::leaky_relu(x[0], 0.3); });
  check_unary("elu default alpha", Domain::AwayFromZero,
              [](const Inputs& x) { return xgrad::elu(x[0]); });
  check_unary("elu alpha 0.7", Domain::AwayFromZero,
              [](const Inputs& x) { return xgrad::elu(x[0], 0.7); });
}

TEST_CASE("at the kink a = 0, relu, leaky_relu and elu take their a <= 0 branch and abs gives 0") {
  // docs/engine.md's table: relu da = g [a > 0], leaky_relu alpha g and elu g (y + alpha)
  // for a <= 0 (y = 0 there), abs g sgn(a). Finite differences cannot check a kink.
  const double g = 1.5;
  struct Kink {
    const char* name;
    std::function<Tensor(const Tensor&)> op;
    double gradient;
  };
  const Kink kinks[] = {
      {"relu", [](const Tensor& a) { return xgrad::relu(a); }, 0.0},
      {"leaky_relu 0.3", [](const Tensor& a) { return xgrad::leaky_relu(a, 0.3); }, 0.3 * g},
      {"elu 0.7", [](const Tensor& a) { return xgrad::elu(a, 0.7); }, 0.7 * g},
      {"abs", [](const Tensor& a) { return xgrad::abs(a); }, 0.0},
  };
  for (const Kink& k : kinks) {
    INFO(k.name);
    Tape tape;
    const Tensor a = tape.variable(Matrix<double>{{0.0, 0.0}});
    const Tensor y = k.op(a);
    tape.backward(y, Matrix<double>{{g, g}});
    CHECK(y.value()(0, 0) == 0.0);
    CHECK(a.grad()(0, 0) == k.gradient);
    CHECK(a.grad()(0, 1) == k.gradient);
  }
}

TEST_CASE("sigmoid differentiates correctly, also in its saturated tails") {
  check_unary("sigmoid", Domain::AwayFromZero,
              [](const Inputs& x) { return xgrad::sigmoid(x[0]); });
  // Scaled inputs reach +-12, where y(1-y) is about 6e-6: the rule must stay accurate there.
  check_unary("sigmoid of 8x", Domain::AwayFromZero,
              [](const Inputs& x) { return xgrad::sigmoid(x[0] * 8.0); });
}

TEST_CASE("every op with a scalar operand differentiates correctly") {
  check_unary("x + 2", Domain::AwayFromZero, [](const Inputs& x) { return x[0] + 2.0; });
  check_unary("2 + x", Domain::AwayFromZero, [](const Inputs& x) { return 2.0 + x[0]; });
  check_unary("x - 2", Domain::AwayFromZero, [](const Inputs& x) { return x[0] - 2.0; });
  check_unary("2 - x", Domain::AwayFromZero, [](const Inputs& x) { return 2.0 - x[0]; });
  check_unary("x * 3", Domain::AwayFromZero, [](const Inputs& x) { return x[0] * 3.0; });
  check_unary("3 * x", Domain::AwayFromZero, [](const Inputs& x) { return 3.0 * x[0]; });
  check_unary("x / 4", Domain::AwayFromZero, [](const Inputs& x) { return x[0] / 4.0; });
  check_unary("4 / x", Domain::AwayFromZero, [](const Inputs& x) { return 4.0 / x[0]; });
  check_unary("affine -1.5 x + 0.25", Domain::AwayFromZero,
              [](const Inputs& x) { return xgrad::affine(x[0], -1.5, 0.25); });
  check_unary("scalar_div -2 / x", Domain::AwayFromZero,
              [](const Inputs& x) { return xgrad::scalar_div(-2.0, x[0]); });
}

TEST_CASE("scalar operators compute the values they promise") {
  Tape tape;
  const Matrix<double> a = random_matrix(2, 3, 7);
  const Tensor x = tape.constant(a);
  for (std::size_t k = 0; k < a.size(); ++k) {
    const double v = a.data()[k];
    CHECK((x + 2.0).value().data()[k] == doctest::Approx(v + 2));
    CHECK((2.0 - x).value().data()[k] == doctest::Approx(2 - v));
    CHECK((x - 2.0).value().data()[k] == doctest::Approx(v - 2));
    CHECK((3.0 * x).value().data()[k] == doctest::Approx(3 * v));
    CHECK((x / 4.0).value().data()[k] == doctest::Approx(v / 4));
    CHECK((4.0 / x).value().data()[k] == doctest::Approx(4 / v));
    CHECK(xgrad::elu(x, 0.5).value().data()[k] == doctest::Approx(v > 0 ? v : 0.5 * std::expm1(v)));
    CHECK(xgrad::leaky_relu(x, 0.1).value().data()[k] == doctest::Approx(v > 0 ? v : 0.1 * v));
    CHECK(xgrad::sigmoid(x).value().data()[k] == doctest::Approx(1 / (1 + std::exp(-v))));
  }
}

TEST_CASE("a chain of elementwise ops differentiates correctly as a whole") {
  // tanh(exp(x) * x - 1) / (1 + x^2): several rules composed on one input.
  check_op_gradients("composite",
                     [](const Inputs& x) {
                       const Tensor num = xgrad::tanh(xgrad::exp(x[0]) * x[0] - 1.0);
                       return num / (xgrad::square(x[0]) + 1.0);
                     },
                     {random_matrix(3, 4, 11)});
}

TEST_CASE("float sigmoid keeps a subnormal result when the far-negative input is in the tail") {
  // Only the last element is far below 0; every other is 0 (sigmoid 0.5). Lengths that
  // leave 1, 5 or 1 element(s) in a partial SIMD batch at widths 4, 8 and 16.
  const float a = -100.0f;
  const float want = float(1.0 / (1.0 + std::exp(-double(a))));  // 3.7e-44, subnormal
  REQUIRE(want > 0.0f);
  for (const std::size_t n : {std::size_t{1}, std::size_t{5}, std::size_t{17}, std::size_t{33}}) {
    CAPTURE(n);
    xgrad::Matrix<float> v(std::array<std::size_t, 2>{1, n}, 0.0f);
    v(0, n - 1) = a;
    xgrad::Tape<float> tape;
    const auto y = xgrad::sigmoid(tape.constant(v));
    CHECK(y.value()(0, n - 1) == want);
    if (n > 1) CHECK(y.value()(0, 0) == 0.5f);
  }
}
