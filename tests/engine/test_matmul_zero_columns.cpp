// Specification: matmul of a constant whose columns are zero in every row (the blank
// border of a batch of digits) runs its GEMMs on the other columns only
// (engine/src/ops_matmul.cpp), and gives the product and gradient of the plain path:
// dropped columns contribute nothing, and the rows of dB they name get exactly zero.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include <xtensor/xview.hpp>

#include "engine_test_util.hpp"

using namespace xgrad_test;

namespace {

constexpr std::size_t kRows = 64, kInner = 128, kOut = 64;

/// A kRows x kInner matrix with columns 0-29, 50-89 and 120-127 zero in every row, and
/// column 100 zero in every row but row 17: kept are 30-49 and 90-119, 50 columns.
template <class T>
Matrix<T> digits_like_input(std::uint64_t seed) {
  Matrix<T> a = random_matrix<T>(kRows, kInner, seed);
  for (std::size_t r = 0; r < kRows; ++r) {
    for (std::size_t c = 0; c < kInner; ++c) {
      if (c < 30 || (c >= 50 && c < 90) || c >= 120) a(r, c) = T(0);
    }
    a(r, 100) = T(0);
  }
  a(17, 100) = T(0.5);
  return a;
}

}  // namespace

TEST_CASE_TEMPLATE("matmul drops the all-zero columns of a constant and keeps the plain result", T,
                   float, double) {
  const Matrix<T> a = digits_like_input<T>(1);
  const Matrix<T> seed = random_matrix<T>(kRows, kOut, 3);
  xgrad::Parameter<T> w(random_matrix<T>(kInner, kOut, 2), "W");

  xgrad::Tape<T> tape;
  const xgrad::Tensor<T> y = xgrad::matmul(tape.constant(a), tape.parameter(w));
  // The kept columns, as (first, count) runs: the compact path was taken.
  CHECK(tape.node(y.index()).column_runs == std::vector<std::uint32_t>{30, 20, 90, 30});
  tape.backward(y, seed);

  // The plain path: a variable left operand wants a gradient, so nothing is dropped.
  xgrad::Parameter<T> w_plain(w.value(), "W");
  xgrad::Tape<T> plain;
  const xgrad::Tensor<T> y_plain = xgrad::matmul(plain.variable(a), plain.parameter(w_plain));
  CHECK(plain.node(y_plain.index()).column_runs.empty());
  plain.backward(y_plain, seed);

  // Same sums of the same nonzero terms; only the GEMM's blocking (rounding) differs.
  const double tolerance = 8.0 * kInner * std::numeric_limits<T>::epsilon();
  CHECK(max_abs_diff(y.value(), y_plain.value()) <= tolerance);
  CHECK(max_abs_diff(w.grad(), w_plain.grad()) <= tolerance);
  // dW = Aᵀ G: the rows of the dropped columns are exactly zero.
  CHECK(rows_are_zero(w.grad(), 0, 30));
  CHECK(rows_are_zero(w.grad(), 50, 90));
  CHECK(rows_are_zero(w.grad(), 120, 128));
  CHECK_FALSE(rows_are_zero(w.grad(), 100, 101));  // one nonzero keeps a column

  SUBCASE("a parameter's gradient accumulates over backward passes") {
    const Matrix<T> once = w.grad();
    tape.clear();
    tape.backward(xgrad::matmul(tape.constant(a), tape.parameter(w)), seed);
    CHECK(max_abs_diff(w.grad(), Matrix<T>(T(2) * once)) == 0.0);
  }
}

TEST_CASE_TEMPLATE("a tape-owned right operand gets zeros, not stale values, in dropped rows", T,
                   float, double) {
  const Matrix<T> b = random_matrix<T>(kInner, kOut, 2);
  const Matrix<T> seed = random_matrix<T>(kRows, kOut, 3);
  xgrad::Tape<T> tape;
  // Step 1 with dense data fills every row of the variable's gradient buffer.
  {
    const xgrad::Tensor<T> v = tape.variable(b);
    tape.backward(xgrad::matmul(tape.constant(random_matrix<T>(kRows, kInner, 4)), v), seed);
    REQUIRE_FALSE(rows_are_zero(v.grad(), 0, 30));
  }
  // Step 2 reuses that buffer; the dropped columns' rows must be assigned zero.
  tape.clear();
  const xgrad::Tensor<T> v = tape.variable(b);
  const xgrad::Tensor<T> y = xgrad::matmul(tape.constant(digits_like_input<T>(1)), v);
  REQUIRE_FALSE(tape.node(y.index()).column_runs.empty());
  tape.backward(y, seed);
  CHECK(rows_are_zero(v.grad(), 0, 30));
  CHECK(rows_are_zero(v.grad(), 50, 90));
  CHECK(rows_are_zero(v.grad(), 120, 128));
}

TEST_CASE("dense data, an all-zero batch and small products take the plain path") {
  xgrad::Parameter<double> w(random_matrix<double>(kInner, kOut, 2), "W");
  xgrad::Tape<double> tape;
  const auto y_dense =
      xgrad::matmul(tape.constant(random_matrix<double>(kRows, kInner, 5)), tape.parameter(w));
  CHECK(tape.node(y_dense.index()).column_runs.empty());

  // Nothing to keep: the plain GEMM gives zeros.
  const Matrix<double> zeros = xt::zeros<double>({kRows, kInner});
  const auto y_zero = xgrad::matmul(tape.constant(zeros), tape.parameter(w));
  CHECK(tape.node(y_zero.index()).column_runs.empty());
  CHECK(rows_are_zero(y_zero.value(), 0, kRows));

  // 4 rows: the saving could never pay for the scan.
  const Matrix<double> few = xt::view(digits_like_input<double>(1), xt::range(0, 4), xt::all());
  const auto y_few = xgrad::matmul(tape.constant(few), tape.parameter(w));
  CHECK(tape.node(y_few.index()).column_runs.empty());
}

TEST_CASE("a NaN counts as nonzero: it keeps its column and reaches the product") {
  Matrix<double> a = digits_like_input<double>(1);
  a(5, 10) = std::numeric_limits<double>::quiet_NaN();  // column 10 is otherwise zero
  xgrad::Parameter<double> w(random_matrix<double>(kInner, kOut, 2), "W");
  xgrad::Tape<double> tape;
  const auto y = xgrad::matmul(tape.constant(a), tape.parameter(w));
  CHECK(tape.node(y.index()).column_runs == std::vector<std::uint32_t>{10, 1, 30, 20, 90, 30});
  CHECK(std::isnan(y.value()(5, 0)));
  CHECK_FALSE(std::isnan(y.value()(4, 0)));
}

TEST_CASE("without gradient recording the product drops the zero columns too") {
  const Matrix<double> a = digits_like_input<double>(1);
  xgrad::Parameter<double> w(random_matrix<double>(kInner, kOut, 2), "W");
  xgrad::Tape<double> tape, plain;
  Matrix<double> y;
  {
    xgrad::NoGradGuard<double> no_grad(tape);
    const auto t = xgrad::matmul(tape.constant(a), tape.parameter(w));
    CHECK_FALSE(tape.node(t.index()).column_runs.empty());
    y = t.value();
  }
  const auto y_plain = xgrad::matmul(plain.variable(a), plain.parameter(w));
  CHECK(max_abs_diff(y, y_plain.value()) <= 8.0 * kInner * 2.3e-16);
}

namespace {

/// matmul(constant a, W) against the plain path (a variable a), in value and in W's
/// gradient, for a that should keep exactly the columns `runs` lists as (first, count).
void check_runs_and_result(const Matrix<double>& a, const std::vector<std::uint32_t>& runs) {
  const std::size_t m = a.shape(0), k = a.shape(1), n = 256;
  xgrad::Parameter<double> w(random_matrix<double>(k, n, 7), "W"), w_plain(w.value(), "W");
  const Matrix<double> seed = random_matrix<double>(m, n, 8);
  xgrad::Tape<double> tape, plain;
  const auto y = xgrad::matmul(tape.constant(a), tape.parameter(w));
  CHECK(tape.node(y.index()).column_runs == runs);
  tape.backward(y, seed);
  const auto y_plain = xgrad::matmul(plain.variable(a), plain.parameter(w_plain));
  plain.backward(y_plain, seed);
  CHECK(max_abs_diff(y.value(), y_plain.value()) <= 1e-12 * static_cast<double>(k));
  CHECK(max_abs_diff(w.grad(), w_plain.grad()) <= 1e-12 * static_cast<double>(m));
}

/// A 64 x k matrix whose column c is random when keep(c) and zero otherwise.
template <class Keep>
Matrix<double> columns_where(std::size_t k, Keep keep) {
  Matrix<double> a = random_matrix<double>(64, k, 9);
  for (std::size_t r = 0; r < 64; ++r) {
    for (std::size_t c = 0; c < k; ++c) {
      if (!keep(c)) a(r, c) = 0.0;
    }
  }
  return a;
}

}  // namespace

TEST_CASE("the kept columns are found for every pattern of runs") {
  SUBCASE("column 0 alone, then a zero column: the run ends at column 1") {
    check_runs_and_result(columns_where(34, [](std::size_t c) { return c == 0; }), {0, 1});
  }
  SUBCASE("the first and the last column") {
    check_runs_and_result(columns_where(34, [](std::size_t c) { return c == 0 || c == 33; }),
                          {0, 1, 33, 1});
  }
  SUBCASE("every other column, odd width: the most runs a width allows") {
    std::vector<std::uint32_t> runs;
    for (std::uint32_t c = 0; c < 33; c += 2)
      runs.insert(runs.end(), {c, 1u});
    check_runs_and_result(columns_where(33, [](std::size_t c) { return c % 2 == 0; }), runs);
  }
  SUBCASE("the last column alone") {
    check_runs_and_result(columns_where(40, [](std::size_t c) { return c == 39; }), {39, 1});
  }
  SUBCASE("runs of two with gaps of one") {
    check_runs_and_result(
        columns_where(35, [](std::size_t c) { return c % 3 != 2; }),
        {0, 2, 3, 2, 6, 2, 9, 2, 12, 2, 15, 2, 18, 2, 21, 2, 24, 2, 27, 2, 30, 2, 33, 2});
  }
}

TEST_CASE("under check_finite a NaN in B reaches the product even where A is zero") {
  const Matrix<double> a = digits_like_input<double>(1);
  Matrix<double> b = random_matrix<double>(kInner, kOut, 2);
  b(3, 0) = std::numeric_limits<double>::quiet_NaN();  // column 3 of a is all zero
  xgrad::Parameter<double> w(b, "W");
  SUBCASE("with the check on, matmul runs the plain product and is named") {
    xgrad::Tape<double> tape;
    tape.set_check_finite(true);
    CHECK_THROWS_WITH_AS(xgrad::matmul(tape.constant(a), tape.parameter(w)),
                         doctest::Contains("matmul"), std::domain_error);
  }
  SUBCASE("with the check off, the dropped row does not reach Y (documented)") {
    xgrad::Tape<double> tape;
    const auto y = xgrad::matmul(tape.constant(a), tape.parameter(w));
    CHECK_FALSE(tape.node(y.index()).column_runs.empty());
    CHECK(std::isfinite(y.value()(0, 0)));
  }
}

TEST_CASE("a kept graph walked twice on the compact path doubles the parameter gradient") {
  const Matrix<double> a = digits_like_input<double>(1);
  const Matrix<double> seed = random_matrix<double>(kRows, kOut, 3);
  xgrad::Parameter<double> w(random_matrix<double>(kInner, kOut, 2), "W");
  xgrad::Tape<double> tape;
  const auto y = xgrad::matmul(tape.constant(a), tape.parameter(w));
  REQUIRE_FALSE(tape.node(y.index()).column_runs.empty());
  tape.backward(y, seed, xgrad::BackwardOptions{true});
  const Matrix<double> once = w.grad();
  tape.backward(y, seed);
  CHECK(max_abs_diff(w.grad(), Matrix<double>(2.0 * once)) == 0.0);
}

TEST_CASE("adding matrices with no columns gives an empty result") {
  xgrad::Tape<double> tape;
  const Matrix<double> empty = xt::zeros<double>({3, 0});
  const Matrix<double> empty_row = xt::zeros<double>({1, 0});
  const auto y = xgrad::add(tape.constant(empty), tape.constant(empty_row));
  CHECK(y.rows() == 3);
  CHECK(y.cols() == 0);
}
