// Specification of xgrad::gradcheck itself: it passes on correct gradients, FAILS on
// wrong ones, reports the worst element (input, index, analytic, numeric, errors),
// honours its tolerances, and works on parameters as well as on tape inputs.
//
// A wrong analytic gradient is built from correct ops by hiding a dependency from the
// tape: tape.constant(x.value()) has the value of x but no gradient path, so the
// tape differentiates x * c as if c were fixed while the finite differences see x^2.
#include <cmath>

#include "engine_test_util.hpp"

using namespace xgrad_test;

TEST_CASE("gradcheck passes on a correct gradient and checks every element") {
  const xgrad::GradcheckResult r = xgrad::gradcheck(
      [](Tape&, const Inputs& x) { return xgrad::tanh(xgrad::matmul(x[0], x[1])); },
      {random_matrix(3, 4, 1), random_matrix(4, 2, 2)});
  CHECK_MESSAGE(r.passed, r.message());
  CHECK(r.elements_checked == 12 + 8);
  CHECK(r.message().rfind("gradcheck passed: 20 elements, worst at input ", 0) == 0);
}

TEST_CASE("gradcheck fails on a wrong gradient and names the worst element") {
  // Input 1 hides its own dependency at element (1, 2) only: there the tape says
  // d(x * c)/dx = c = x while the true derivative of x^2 is 2x. Everywhere else c = 1.
  const Matrix<double> first = random_matrix(2, 3, 3);
  const Matrix<double> second = random_matrix(2, 3, 4);
  const double x12 = second(1, 2);
  const xgrad::GradcheckResult r = xgrad::gradcheck(
      [](Tape& tape, const Inputs& x) {
        Matrix<double> c({2, 3});
        c.fill(1.0);
        c(1, 2) = x[1].value()(1, 2);
        return x[0] * x[1] * tape.constant(c);
      },
      {first, second});
  REQUIRE_FALSE(r.passed);
  CHECK(r.input == 1);
  CHECK(r.row == 1);
  CHECK(r.col == 2);
  // The upstream gradient G is random, so compare through the ratio: analytic is
  // x0 * x12 * G and numeric 2 x0 * x12 * G at that element.
  CHECK(r.numeric == doctest::Approx(2 * r.analytic).epsilon(1e-6));
  CHECK(r.abs_error == doctest::Approx(std::abs(r.analytic)).epsilon(1e-6));
  CHECK(r.rel_error == doctest::Approx(0.5).epsilon(1e-6));
  CHECK(std::abs(r.analytic) > 0);
  CHECK(x12 != 0);
  const std::string msg = r.message();
  CHECK(msg.rfind("gradcheck FAILED at input 1 (1, 2): analytic ", 0) == 0);
  CHECK(msg.find(", numeric ") != std::string::npos);
  CHECK(msg.find(", abs error ") != std::string::npos);
  // The bound it missed: atol + rtol |numeric| + the rounding of f, about 1e-7 here.
  CHECK(r.allowed > 1e-7);
  CHECK(r.allowed < 1e-7 + 1e-5 * std::abs(r.numeric) + 1e-8);
  CHECK(msg.find(" (allowed ") != std::string::npos);
  CHECK(msg.find(", rel error 0.5 (12 elements checked)") != std::string::npos);
}

TEST_CASE("gradcheck reports a NaN gradient as NaN, not as a small relative error") {
  // sqrt at 0: the analytic gradient is inf, the central difference reads sqrt(-h) = NaN.
  const xgrad::GradcheckResult r = xgrad::gradcheck(
      [](Tape&, const Inputs& x) { return xgrad::sqrt(x[0]); }, {Matrix<double>{{0.0}}});
  CHECK_FALSE(r.passed);
  CHECK(std::isnan(r.abs_error));
  CHECK(std::isnan(r.rel_error));
  CHECK(r.message().find("rel error nan") != std::string::npos);
}

TEST_CASE("gradcheck of parameters leaves their values and accumulated gradients as they were") {
  xgrad::Parameter<double> w(random_matrix(2, 3, 21));
  const Matrix<double> value = w.value();
  Matrix<double> accumulated({2, 3});
  accumulated.fill(0.25);
  w.grad() = accumulated;
  const xgrad::GradcheckResult r =
      xgrad::gradcheck([&](Tape& tape) { return xgrad::sum(xgrad::tanh(tape.parameter(w))); }, {w});
  CHECK_MESSAGE(r.passed, r.message());
  CHECK(w.value() == value);
  CHECK(w.grad() == accumulated);
  // Also when the function throws half way, after the analytic pass wrote the gradient.
  int calls = 0;
  CHECK_THROWS_AS(xgrad::gradcheck(
                      [&](Tape& tape) {
                        if (++calls == 3) throw std::runtime_error("f fails on its third call");
                        return xgrad::sum(xgrad::tanh(tape.parameter(w)));
                      },
                      {w}),
                  std::runtime_error);
  CHECK(calls == 3);  // the third call evaluates f at w(0, 0) - h
  CHECK(w.grad() == accumulated);
  CHECK(w.value() == value);
}

TEST_CASE("gradcheck allows for the rounding of large function values") {
  // f = sum(x^2) over 10^4 elements is ~1e4: rounding f moves the central difference by
  // up to ~1e-6 at h = 1e-6 (8.2e-7 measured here), which atol = 1e-7 alone reported as
  // a failure near x = 0, where the gradient 2x is small and rtol allows next to nothing.
  Matrix<double> x = random_matrix(100, 100, 31);
  for (std::size_t k = 0; k < 100; ++k)
    x(k, k) = 1e-4 * double(k + 1);
  const auto sum_of_squares = [](Tape&, const Inputs& v) {
    return xgrad::sum(xgrad::square(v[0]));
  };
  const xgrad::GradcheckResult r = xgrad::gradcheck(sum_of_squares, {x});
  CHECK_MESSAGE(r.passed, r.message());
  // A gradient wrong by 5e-5 relative (the analytic 2.0001 x against the true 2.0002 x)
  // is still caught at that size: the allowance for rounding here is ~4e-6 (f ~ 9e3).
  const auto wrong = [](Tape& tape, const Inputs& v) {
    return xgrad::sum(xgrad::square(v[0]) + 1e-4 * v[0] * tape.constant(v[0].value()));
  };
  CHECK_FALSE(xgrad::gradcheck(wrong, {x}).passed);
}

TEST_CASE("gradcheck honours atol and rtol") {
  // A gradient off by 1e-4 * x: fails the default rtol 1e-5, passes rtol 1e-3.
  const auto f = [](Tape& tape, const Inputs& x) {
    return x[0] + 1e-4 * x[0] * tape.constant(x[0].value());
  };
  const Matrix<double> input = random_matrix(2, 2, 5);
  const xgrad::GradcheckResult strict = xgrad::gradcheck(f, {input});
  CHECK_FALSE(strict.passed);
  xgrad::GradcheckOptions loose;
  loose.rtol = 1e-3;
  const xgrad::GradcheckResult relaxed = xgrad::gradcheck(f, {input}, loose);
  CHECK_MESSAGE(relaxed.passed, relaxed.message());
  // An absolute tolerance above every error passes it as well.
  xgrad::GradcheckOptions absolute;
  absolute.atol = 1e-3;
  CHECK(xgrad::gradcheck(f, {input}, absolute).passed);
}

TEST_CASE("gradcheck fails when a gradient or a difference is NaN") {
  // sqrt at 0: the tape's gradient is Inf, the central difference reads sqrt(-h) = NaN.
  Matrix<double> x = random_matrix(1, 3, 6, Domain::Positive);
  x(0, 1) = 0.0;
  const xgrad::GradcheckResult r =
      xgrad::gradcheck([](Tape&, const Inputs& v) { return xgrad::sqrt(v[0]); }, {x});
  CHECK_FALSE(r.passed);
  CHECK(r.row == 0);
  CHECK(r.col == 1);
  CHECK(r.message().rfind("gradcheck FAILED at input 0 (0, 1)", 0) == 0);
}

TEST_CASE("gradcheck checks parameter gradients and leaves the parameters as they were") {
  xgrad::Parameter<double> w(random_matrix(4, 3, 7), "w");
  xgrad::Parameter<double> b(random_matrix(1, 3, 8), "b");
  const Matrix<double> x = random_matrix(5, 4, 9);
  const Matrix<double> y = random_matrix(5, 3, 10);
  const Matrix<double> w_before = w.value();
  const Matrix<double> b_before = b.value();
  const auto layer = [&](Tape& tape) {
    const Tensor z = xgrad::matmul(tape.constant(x), tape.parameter(w)) + tape.parameter(b);
    return xgrad::mse_loss(xgrad::sigmoid(z), tape.constant(y));
  };
  const xgrad::GradcheckResult r = xgrad::gradcheck(layer, {w, b});
  CHECK_MESSAGE(r.passed, r.message());
  CHECK(r.elements_checked == 12 + 3);
  CHECK(max_abs_diff(w.value(), w_before) == 0.0);
  CHECK(max_abs_diff(b.value(), b_before) == 0.0);
  for (const double g : w.grad())
    CHECK(g == 0.0);
  for (const double g : b.grad())
    CHECK(g == 0.0);
}

TEST_CASE("gradcheck on parameters fails when a parameter's dependency is hidden") {
  xgrad::Parameter<double> w(random_matrix(2, 2, 11), "w");
  xgrad::Parameter<double> v(random_matrix(2, 2, 12), "v");
  // v enters twice, once visibly and once as a constant copy of its value.
  const auto f = [&](Tape& tape) {
    return xgrad::sum(tape.parameter(w) * tape.parameter(v) * tape.constant(v.value()));
  };
  const xgrad::GradcheckResult r = xgrad::gradcheck(f, {w, v});
  CHECK_FALSE(r.passed);
  CHECK(r.input == 1);  // w's gradient is right, v's is half of the truth
  CHECK(r.numeric == doctest::Approx(2 * r.analytic).epsilon(1e-6));
  CHECK(r.message().rfind("gradcheck FAILED at input 1 (", 0) == 0);
}

TEST_CASE("gradcheck's relative tolerance is relative to the numeric gradient") {
  // y = 1.9 x - 0.9 c with c a constant copy of x: the tape's gradient is 1.9 G, while
  // the finite difference (c follows x in every evaluation) sees y = x, i.e. G. The error
  // 0.9 |G| exceeds rtol |numeric| = 0.5 |G| but not rtol |analytic| = 0.95 |G|.
  const auto f = [](xgrad::Tape<double>& tape, const std::vector<xgrad::Tensor<double>>& x) {
    return 1.9 * x[0] - 0.9 * tape.constant(x[0].value());
  };
  xgrad::GradcheckOptions o;
  o.atol = 0;
  o.rtol = 0.5;
  const Matrix<double> input = {{0.3, -1.2}, {2.0, 0.7}};
  const xgrad::GradcheckResult r = xgrad::gradcheck(f, {input}, o);
  CHECK_FALSE(r.passed);
  // allowed = atol + rtol |numeric| + a rounding term ~1e-10 here.
  CHECK(r.allowed == doctest::Approx(0.5 * std::abs(r.numeric)).epsilon(1e-6));
  CHECK(r.analytic == doctest::Approx(1.9 * r.numeric).epsilon(1e-6));
}

TEST_CASE("gradcheck's step grows with |x|, so large inputs pass a correct gradient") {
  // y = 3 (x - 1e8) near x = 1e8: a step of 1e-6 is only ~67 ulps of x there, so x + h
  // rounds and the difference is off by ~0.2 %; h = 1e-6 * |x| = 100 is exact.
  const auto f = [](xgrad::Tape<double>& tape, const std::vector<xgrad::Tensor<double>>& x) {
    return 3.0 * (x[0] - tape.constant(Matrix<double>{{1e8, 1e8}}));
  };
  const xgrad::GradcheckResult r = xgrad::gradcheck(f, {Matrix<double>{{1e8 + 0.5, 1e8 - 0.25}}});
  CHECK_MESSAGE(r.passed, r.message());
  CHECK(r.elements_checked == 2);
}
