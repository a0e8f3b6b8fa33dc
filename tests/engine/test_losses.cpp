// Specification: the fused losses (mse, binary cross-entropy from logits, softmax
// cross-entropy) compute the textbook value, differentiate correctly with respect to
// both arguments, and stay finite for logits of +-1000 in float32 and float64.
#include <array>
#include <cmath>
#include <limits>

#include "engine_test_util.hpp"

using namespace xgrad_test;

namespace {
const std::pair<std::size_t, std::size_t> kShapes[] = {{1, 1}, {1, 5}, {4, 1}, {3, 4}};
}

TEST_CASE("mse_loss differentiates correctly in prediction and target") {
  std::uint64_t seed = 200;
  for (const auto& [r, c] : kShapes) {
    check_op_gradients("mse_loss", [](const Inputs& x) { return xgrad::mse_loss(x[0], x[1]); },
                       {random_matrix(r, c, seed), random_matrix(r, c, seed + 1)});
    seed += 2;
  }
}

TEST_CASE("bce_with_logits differentiates correctly in logits and target") {
  std::uint64_t seed = 300;
  for (const auto& [r, c] : kShapes) {
    check_op_gradients("bce_with_logits",
                       [](const Inputs& x) { return xgrad::bce_with_logits(x[0], x[1]); },
                       {random_matrix(r, c, seed), random_matrix(r, c, seed + 1, Domain::Unit)});
    seed += 2;
  }
}

TEST_CASE("softmax_cross_entropy differentiates correctly for one-hot and soft targets") {
  std::uint64_t seed = 400;
  for (const auto& [r, c] : kShapes) {
    check_op_gradients("softmax_cross_entropy, one-hot target",
                       [](const Inputs& x) { return xgrad::softmax_cross_entropy(x[0], x[1]); },
                       {random_matrix(r, c, seed), one_hot_rows(r, c, seed + 1)});
    // Rows that do not sum to one exercise the p * sum(y) term of the rule.
    check_op_gradients(
        "softmax_cross_entropy, soft target",
        [](const Inputs& x) { return xgrad::softmax_cross_entropy(x[0], x[1]); },
        {random_matrix(r, c, seed + 2), random_matrix(r, c, seed + 3, Domain::Unit)});
    seed += 4;
  }
}

TEST_CASE("the losses compute their textbook values") {
  Tape tape;
  const Matrix<double> zv = random_matrix(3, 4, 500);
  const Matrix<double> yv = random_matrix(3, 4, 501, Domain::Unit);
  const Matrix<double> labels = one_hot_rows(3, 4, 502);
  const Tensor z = tape.constant(zv), y = tape.constant(yv), onehot = tape.constant(labels);

  double mse = 0, bce = 0, ce = 0;
  for (std::size_t i = 0; i < 3; ++i) {
    double norm = 0;
    for (std::size_t j = 0; j < 4; ++j)
      norm += std::exp(zv(i, j));
    for (std::size_t j = 0; j < 4; ++j) {
      const double s = 1 / (1 + std::exp(-zv(i, j)));
      mse += (zv(i, j) - yv(i, j)) * (zv(i, j) - yv(i, j));
      bce -= yv(i, j) * std::log(s) + (1 - yv(i, j)) * std::log(1 - s);
      ce -= labels(i, j) * std::log(std::exp(zv(i, j)) / norm);
    }
  }
  CHECK(xgrad::mse_loss(z, y).item() == doctest::Approx(mse / 12).epsilon(1e-12));
  CHECK(xgrad::bce_with_logits(z, y).item() == doctest::Approx(bce / 12).epsilon(1e-12));
  CHECK(xgrad::softmax_cross_entropy(z, onehot).item() == doctest::Approx(ce / 3).epsilon(1e-12));
}

TEST_CASE_TEMPLATE("softmax_cross_entropy ignores a -inf logit whose target is 0", T, float,
                   double) {
  // p = 0 for that class and log p = -inf; its target 0 contributes nothing (not 0 * -inf).
  xgrad::Tape<T> tape;
  const T inf = std::numeric_limits<T>::infinity();
  const xgrad::Tensor<T> z = tape.variable(Matrix<T>{{T(0), T(0), -inf}});
  const xgrad::Tensor<T> loss =
      xgrad::softmax_cross_entropy(z, tape.constant(Matrix<T>{{1, 0, 0}}));
  CHECK(loss.item() == doctest::Approx(std::log(2.0)));
  tape.backward(loss);
  CHECK(z.grad()(0, 0) == doctest::Approx(-0.5));
  CHECK(z.grad()(0, 1) == doctest::Approx(0.5));
  CHECK(z.grad()(0, 2) == T(0));
}

TEST_CASE_TEMPLATE("fused losses give finite loss and gradient for logits of +-1000", T, float,
                   double) {
  xgrad::Tape<T> tape;
  // Rows: confidently right, confidently wrong, a tie between two huge logits.
  Matrix<T> zv({3, 3});
  zv(0, 0) = 1000, zv(0, 1) = -1000, zv(0, 2) = 0;
  zv(1, 0) = -1000, zv(1, 1) = 1000, zv(1, 2) = 0;
  zv(2, 0) = 1000, zv(2, 1) = 1000, zv(2, 2) = -1000;
  Matrix<T> labels({3, 3});
  labels.fill(T(0));
  labels(0, 0) = 1, labels(1, 0) = 1, labels(2, 1) = 1;

  SUBCASE("softmax_cross_entropy") {
    const xgrad::Tensor<T> z = tape.variable(zv);
    const xgrad::Tensor<T> loss = xgrad::softmax_cross_entropy(z, tape.constant(labels));
    // Row losses 0, 2000 and log 2; the mean over rows:
    CHECK(loss.item() == doctest::Approx((2000 + std::log(2.0)) / 3).epsilon(1e-6));
    tape.backward(loss);
    // (p - y) / n: p is one-hot at the max except the tie row (1/2, 1/2, 0).
    const T expected[3][3] = {{0, 0, 0}, {-1, 1, 0}, {0.5, -0.5, 0}};
    for (std::size_t i = 0; i < 3; ++i) {
      for (std::size_t j = 0; j < 3; ++j) {
        REQUIRE(std::isfinite(z.grad()(i, j)));
        CHECK(z.grad()(i, j) == doctest::Approx(expected[i][j] / 3).epsilon(1e-6));
      }
    }
  }
  SUBCASE("bce_with_logits") {
    const xgrad::Tensor<T> z = tape.variable(zv);
    const xgrad::Tensor<T> loss = xgrad::bce_with_logits(z, tape.constant(labels));
    // Per element: 0 when the sign of z agrees with the label, |z| = 1000 when it
    // disagrees, log 2 at z = 0 whatever the label.
    double total = 0;
    for (std::size_t i = 0; i < 3; ++i) {
      for (std::size_t j = 0; j < 3; ++j) {
        const double zz = zv(i, j), yy = labels(i, j);
        total += zz == 0 ? std::log(2.0) : ((zz > 0) == (yy > 0) ? 0.0 : 1000.0);
      }
    }
    CHECK(loss.item() == doctest::Approx(total / 9).epsilon(1e-6));
    tape.backward(loss);
    for (std::size_t i = 0; i < 3; ++i) {
      for (std::size_t j = 0; j < 3; ++j) {
        REQUIRE(std::isfinite(z.grad()(i, j)));
        const double s = zv(i, j) > 0 ? 1.0 : zv(i, j) < 0 ? 0.0 : 0.5;
        CHECK(z.grad()(i, j) == doctest::Approx((s - labels(i, j)) / 9).epsilon(1e-6));
      }
    }
  }
  SUBCASE("mse_loss of huge predictions is finite too") {
    const xgrad::Tensor<T> z = tape.variable(zv);
    const xgrad::Tensor<T> loss = xgrad::mse_loss(z, tape.constant(labels));
    tape.backward(loss);
    CHECK(std::isfinite(loss.item()));
    for (const T g : z.grad())
      CHECK(std::isfinite(g));
  }
}

TEST_CASE("float32 sums, means and loss values add up in double") {
  // One term of 2^24 and 1000 small ones: in float, 2^24 + 1 rounds back to 2^24, so a
  // float accumulator loses every small term. Expected: the double sum, rounded once.
  using F = xgrad::Tensor<float>;
  const std::size_t n = 1001;
  const double big = 16777216.0;  // 2^24
  xgrad::Tape<float> tape;
  xgrad::Matrix<float> ones(std::array<std::size_t, 2>{n, 1}, 1.0f);
  ones(0, 0) = float(big);
  const F column = tape.constant(ones);
  const F row = xgrad::transpose(column);
  const float sum = float(big + 1000.0), mean = float((big + 1000.0) / double(n));
  CHECK(xgrad::sum(column).item() == sum);
  CHECK(xgrad::sum(column, xgrad::Axis::Rows).item() == sum);
  CHECK(xgrad::sum(row, xgrad::Axis::Cols).item() == sum);
  CHECK(xgrad::mean(column).item() == mean);
  CHECK(xgrad::mean(row, xgrad::Axis::Cols).item() == mean);

  xgrad::Matrix<float> prediction(std::array<std::size_t, 2>{n, 1}, 1.0f);
  prediction(0, 0) = 4096.0f;  // squared: 2^24
  const F zeros = tape.constant(xgrad::Matrix<float>(std::array<std::size_t, 2>{n, 1}, 0.0f));
  CHECK(xgrad::mse_loss(tape.constant(prediction), zeros).item() == mean);

  // bce of logit 2^24 and target 0 is 2^24; of logit 0, ln 2.
  xgrad::Matrix<float> logits(std::array<std::size_t, 2>{n, 1}, 0.0f);
  logits(0, 0) = float(big);
  const double bce = (big + 1000.0 * std::log(2.0)) / double(n);
  CHECK(xgrad::bce_with_logits(tape.constant(logits), zeros).item() ==
        doctest::Approx(bce).epsilon(1e-7));

  // Cross-entropy: one row with -log p = 2^24, 1000 rows with ln 2.
  xgrad::Matrix<float> z(std::array<std::size_t, 2>{n, 2}, 0.0f), y(z.shape(), 0.0f);
  z(0, 1) = -float(big);
  y(0, 1) = 1.0f;
  for (std::size_t r = 1; r < n; ++r)
    y(r, 0) = 1.0f;
  CHECK(xgrad::softmax_cross_entropy(tape.constant(z), tape.constant(y)).item() ==
        doctest::Approx(bce).epsilon(1e-7));
}
