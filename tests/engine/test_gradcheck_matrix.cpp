// Specification: matmul, linear, transpose, the reductions and the row-wise softmax family
// differentiate correctly (gradcheck in float64) on every shape class.
#include "engine_test_util.hpp"

using namespace xgrad_test;

TEST_CASE("matmul differentiates correctly for matrices and vectors") {
  struct Dims {
    std::size_t m, k, n;
  };
  // Full product, inner product (1xK . Kx1), outer product (Mx1 . 1xN), scalar times row,
  // matrix times column.
  const Dims dims[] = {{3, 4, 5}, {1, 4, 1}, {4, 1, 3}, {1, 1, 3}, {5, 3, 1}, {2, 7, 2}};
  std::uint64_t seed = 10;
  for (const Dims& d : dims) {
    check_op_gradients("matmul", [](const Inputs& x) { return xgrad::matmul(x[0], x[1]); },
                       {random_matrix(d.m, d.k, seed), random_matrix(d.k, d.n, seed + 1)});
    seed += 2;
  }
}

TEST_CASE("matmul of a tensor with itself gets both contributions") {
  check_op_gradients("matmul(a, a)", [](const Inputs& x) { return xgrad::matmul(x[0], x[0]); },
                     {random_matrix(3, 3, 20)});
  check_op_gradients("matmul(a, a^T)",
                     [](const Inputs& x) { return xgrad::matmul(x[0], xgrad::transpose(x[0])); },
                     {random_matrix(3, 5, 21)});
}

TEST_CASE("linear differentiates correctly in all three inputs") {
  struct Dims {
    std::size_t m, k, n;
  };
  // Full product, one row, one input column (k = 1: the Runge network's first layer),
  // one output column, a single element, and biases wider than the 64 columns whose
  // gradient is summed in registers.
  const Dims dims[] = {{3, 4, 5}, {1, 4, 3},  {6, 1, 4},  {5, 3, 1},
                       {1, 1, 1}, {4, 3, 65}, {3, 2, 130}};
  std::uint64_t seed = 40;
  for (const Dims& d : dims) {
    check_op_gradients("linear", [](const Inputs& x) { return xgrad::linear(x[0], x[1], x[2]); },
                       {random_matrix(d.m, d.k, seed), random_matrix(d.k, d.n, seed + 1),
                        random_matrix(1, d.n, seed + 2)});
    seed += 3;
  }
}

TEST_CASE("linear gives add(matmul(a, w), b) in value and gradient") {
  // A constant input whose first 80 of 128 columns are zero, with 256 outputs: big
  // enough that matmul's dropped-column path pays and is taken (checked below); and a
  // dense input, which takes the plain path.
  Matrix<double> digits = random_matrix(64, 128, 50);
  for (std::size_t r = 0; r < 64; ++r) {
    for (std::size_t c = 0; c < 80; ++c)
      digits(r, c) = 0.0;
  }
  for (const bool sparse : {true, false}) {
    const Matrix<double> a = sparse ? digits : random_matrix(64, 128, 51);
    xgrad::Parameter<double> w(random_matrix(128, 256, 52), "W"), b(random_matrix(1, 256, 53), "b");
    xgrad::Parameter<double> w2(w.value(), "W"), b2(b.value(), "b");
    const Matrix<double> seed = random_matrix(64, 256, 54);
    Tape fused, separate;
    const Tensor y = xgrad::linear(fused.constant(a), fused.parameter(w), fused.parameter(b));
    const Tensor y2 = xgrad::add(xgrad::matmul(separate.constant(a), separate.parameter(w2)),
                                 separate.parameter(b2));
    CHECK(fused.node(y.index()).column_runs.empty() == !sparse);
    fused.backward(y, seed);
    separate.backward(y2, seed);
    // b + (A W) against (A W) + b: the same terms, summed in another order.
    CHECK(max_abs_diff(y.value(), y2.value()) <= 1e-12);
    CHECK(max_abs_diff(w.grad(), w2.grad()) == 0.0);
    CHECK(max_abs_diff(b.grad(), b2.grad()) == 0.0);
    if (sparse) CHECK(rows_are_zero(w.grad(), 0, 80));  // dW's rows for the dropped columns
  }
  // A variable input: its gradient G Wᵀ too.
  const Matrix<double> a = random_matrix(16, 12, 55), w = random_matrix(12, 8, 56);
  const Matrix<double> b = random_matrix(1, 8, 57), seed = random_matrix(16, 8, 58);
  Tape fused, separate;
  const Tensor va = fused.variable(a), va2 = separate.variable(a);
  fused.backward(xgrad::linear(va, fused.constant(w), fused.constant(b)), seed);
  separate.backward(xgrad::add(xgrad::matmul(va2, separate.constant(w)), separate.constant(b)),
                    seed);
  CHECK(max_abs_diff(va.grad(), va2.grad()) == 0.0);
  // One input column (k = 1, the Runge network's first layer): z = a w + b in one pass.
  const Matrix<double> x = random_matrix(240, 1, 59), w1 = random_matrix(1, 50, 60);
  const Matrix<double> b1 = random_matrix(1, 50, 61), seed1 = random_matrix(240, 50, 62);
  Tape one_pass, two_ops;
  const Tensor vx = one_pass.variable(x), vx2 = two_ops.variable(x);
  const Tensor z = xgrad::linear(vx, one_pass.constant(w1), one_pass.constant(b1));
  const Tensor z2 = xgrad::add(xgrad::matmul(vx2, two_ops.constant(w1)), two_ops.constant(b1));
  CHECK(max_abs_diff(z.value(), z2.value()) <= 1e-12);
  one_pass.backward(z, seed1);
  two_ops.backward(z2, seed1);
  CHECK(max_abs_diff(vx.grad(), vx2.grad()) == 0.0);
}

TEST_CASE("linear refuses a bias that is not one row of the output's width") {
  Tape tape;
  const Tensor a = tape.constant(random_matrix(3, 4, 1)), w = tape.constant(random_matrix(4, 5, 2));
  CHECK_THROWS_WITH_AS(xgrad::linear(a, w, tape.constant(random_matrix(3, 5, 3))),
                       "linear: the bias is 3x5 but must be 1x5 for 3x4 times 4x5",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(xgrad::linear(a, w, tape.constant(random_matrix(1, 4, 3))),
                       "linear: the bias is 1x4 but must be 1x5 for 3x4 times 4x5",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(xgrad::linear(a, tape.constant(random_matrix(3, 5, 4)),
                                     tape.constant(random_matrix(1, 5, 3))),
                       "linear: inner dimensions differ: 3x4 times 3x5", std::invalid_argument);
}

TEST_CASE("matmul computes the product") {
  Tape tape;
  const Matrix<double> av = random_matrix(3, 4, 1), bv = random_matrix(4, 2, 2);
  const Tensor y = xgrad::matmul(tape.constant(av), tape.constant(bv));
  REQUIRE(y.rows() == 3);
  REQUIRE(y.cols() == 2);
  for (std::size_t i = 0; i < 3; ++i) {
    for (std::size_t j = 0; j < 2; ++j) {
      double s = 0;
      for (std::size_t q = 0; q < 4; ++q)
        s += av(i, q) * bv(q, j);
      CHECK(y.value()(i, j) == doctest::Approx(s).epsilon(1e-14));
    }
  }
}

TEST_CASE("transpose differentiates correctly") {
  std::uint64_t seed = 30;
  for (const auto& [r, c] : {std::pair<std::size_t, std::size_t>{1, 1}, {1, 5}, {4, 1}, {3, 4}}) {
    check_op_gradients("transpose", [](const Inputs& x) { return xgrad::transpose(x[0]); },
                       {random_matrix(r, c, seed++)});
  }
}

TEST_CASE("sum and mean differentiate correctly over everything and along each axis") {
  const std::pair<std::size_t, std::size_t> shapes[] = {{1, 1}, {1, 5}, {4, 1}, {3, 4}};
  const std::pair<xgrad::Axis, const char*> axes[] = {
      {xgrad::Axis::All, "all"}, {xgrad::Axis::Rows, "rows"}, {xgrad::Axis::Cols, "cols"}};
  std::uint64_t seed = 40;
  for (const auto& [r, c] : shapes) {
    for (const auto& [axis, axis_name] : axes) {
      const xgrad::Axis ax = axis;
      check_op_gradients(std::string("sum over ") + axis_name,
                         [ax](const Inputs& x) { return xgrad::sum(x[0], ax); },
                         {random_matrix(r, c, seed++)});
      check_op_gradients(std::string("mean over ") + axis_name,
                         [ax](const Inputs& x) { return xgrad::mean(x[0], ax); },
                         {random_matrix(r, c, seed++)});
    }
  }
}

TEST_CASE("sum and mean have the reduced shape and value") {
  Tape tape;
  const Matrix<double> v = random_matrix(3, 4, 50);
  const Tensor x = tape.constant(v);
  const Tensor all = xgrad::sum(x), rows = xgrad::sum(x, xgrad::Axis::Rows),
               cols = xgrad::mean(x, xgrad::Axis::Cols), avg = xgrad::mean(x);
  CHECK(all.rows() == 1);
  CHECK(all.cols() == 1);
  CHECK(rows.rows() == 1);
  CHECK(rows.cols() == 4);
  CHECK(cols.rows() == 3);
  CHECK(cols.cols() == 1);
  double total = 0;
  for (std::size_t i = 0; i < 3; ++i) {
    double row_total = 0;
    for (std::size_t j = 0; j < 4; ++j)
      row_total += v(i, j);
    CHECK(cols.value()(i, 0) == doctest::Approx(row_total / 4));
    total += row_total;
  }
  for (std::size_t j = 0; j < 4; ++j) {
    CHECK(rows.value()(0, j) == doctest::Approx(v(0, j) + v(1, j) + v(2, j)));
  }
  CHECK(all.item() == doctest::Approx(total));
  CHECK(avg.item() == doctest::Approx(total / 12));
}

TEST_CASE("softmax and log_softmax differentiate correctly on every shape") {
  const std::pair<std::size_t, std::size_t> shapes[] = {{1, 1}, {1, 5}, {4, 1}, {3, 4}};
  std::uint64_t seed = 60;
  for (const auto& [r, c] : shapes) {
    check_op_gradients("softmax", [](const Inputs& x) { return xgrad::softmax(x[0]); },
                       {random_matrix(r, c, seed++)});
    check_op_gradients("log_softmax", [](const Inputs& x) { return xgrad::log_softmax(x[0]); },
                       {random_matrix(r, c, seed++)});
  }
}

TEST_CASE("softmax rows sum to one and survive logits of 1000") {
  Tape tape;
  Matrix<double> z = random_matrix(3, 4, 70);
  z(0, 1) = 1000;
  z(1, 2) = -1000;
  z(2, 0) = 1000;
  z(2, 3) = 1000;
  const Tensor x = tape.variable(z);
  const Tensor p = xgrad::softmax(x);
  const Tensor lp = xgrad::log_softmax(x);
  for (std::size_t i = 0; i < 3; ++i) {
    double row = 0;
    for (std::size_t j = 0; j < 4; ++j) {
      CHECK(std::isfinite(p.value()(i, j)));
      CHECK(std::isfinite(lp.value()(i, j)));
      if (p.value()(i, j) > 1e-200) {
        CHECK(lp.value()(i, j) == doctest::Approx(std::log(p.value()(i, j))));
      } else {
        // p underflowed to 0, log_softmax still holds the finite, very negative log.
        CHECK(lp.value()(i, j) < -900);
      }
      row += p.value()(i, j);
    }
    CHECK(row == doctest::Approx(1.0));
  }
  CHECK(p.value()(0, 1) == doctest::Approx(1.0));
  CHECK(p.value()(2, 0) == doctest::Approx(0.5));
  CHECK(p.value()(2, 3) == doctest::Approx(0.5));
}

TEST_CASE("softmax family is stable when the one huge logit is in the last column") {
  xgrad::Tape<double> tape;
  const Matrix<double> zv = {{0.0, 0.0, 1000.0}, {1000.0, 0.0, 0.0}};
  const auto z = tape.variable(zv);
  const auto p = xgrad::softmax(z);
  const auto lp = xgrad::log_softmax(z);
  // Row 0: z - max = (-1000, -1000, 0): log p = (-1000, -1000, 0), p = (0, 0, 1)
  // (e^-1000 underflows to 0); row 1 is its mirror image.
  CHECK(p.value()(0, 2) == 1.0);
  CHECK(p.value()(0, 0) == 0.0);
  CHECK(lp.value()(0, 2) == 0.0);
  CHECK(lp.value()(0, 0) == -1000.0);
  CHECK(lp.value()(0, 1) == -1000.0);
  CHECK(p.value()(1, 0) == 1.0);
  const Matrix<double> labels = {{0.0, 0.0, 1.0}, {0.0, 1.0, 0.0}};
  const auto loss = xgrad::softmax_cross_entropy(z, tape.constant(labels));
  // Row losses 0 and 1000: mean 500. dz = (p - y) / 2.
  CHECK(loss.item() == 500.0);
  tape.backward(loss);
  CHECK(z.grad()(0, 2) == 0.0);
  CHECK(z.grad()(0, 0) == 0.0);
  CHECK(z.grad()(1, 0) == 0.5);
  CHECK(z.grad()(1, 1) == -0.5);
}

namespace {
/// rows x cols of distinct values (an alternating ramp along each row).
Matrix<double> ramp(std::size_t rows, std::size_t cols) {
  Matrix<double> m({rows, cols});
  for (std::size_t i = 0; i < rows; ++i)
    for (std::size_t j = 0; j < cols; ++j)
      m(i, j) = 0.25 * double(i + 1) + 0.01 * double(j) * (j % 2 ? -1.0 : 1.0);
  return m;
}
}  // namespace

TEST_CASE("sum and mean over rows are right for more than 64 columns") {
  Tape tape;
  const std::size_t rows = 3, cols = 70;
  const Matrix<double> v = ramp(rows, cols);
  const auto x = tape.constant(v);
  const auto s = xgrad::sum(x, xgrad::Axis::Rows);
  const auto m = xgrad::mean(x, xgrad::Axis::Rows);
  REQUIRE(s.cols() == cols);
  for (std::size_t j = 0; j < cols; ++j) {
    double want = 0;  // the column sum by a plain loop
    for (std::size_t i = 0; i < rows; ++i)
      want += v(i, j);
    CAPTURE(j);
    CHECK(s.value()(0, j) == doctest::Approx(want).epsilon(1e-14));
    CHECK(m.value()(0, j) == doctest::Approx(want / 3.0).epsilon(1e-14));
  }
}
