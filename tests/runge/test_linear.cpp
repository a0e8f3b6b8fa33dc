// The linear baselines of apps/runge against facts that hold exactly.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <random>
#include <utility>
#include <vector>

#include "data.hpp"
#include "linear.hpp"

using runge::Matrix;

namespace {
Matrix random_design(std::size_t n, std::size_t p, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> g(0.0, 1.0);
  Matrix X({n, p});
  for (auto& v : X)
    v = g(rng);
  return X;
}
/// The bound of LassoOptions::tolerance (default 1e-9): relative to the scale of g at
/// b = 0, and at most lambda / 1000.
double kkt_bound(const Matrix& X, const Matrix& y, double lambda) {
  double scale = lambda;
  for (std::size_t k = 0; k < X.shape(1); ++k) {
    double g0 = 0;
    for (std::size_t i = 0; i < X.shape(0); ++i)
      g0 += X(i, k) * y(i, 0) / double(X.shape(0));
    scale = std::max(scale, std::abs(g0));
  }
  return lambda > 0 ? std::min(1e-9 * scale, std::max(1e-3 * lambda, 1e-10 * scale)) : 1e-9 * scale;
}
Matrix times(const Matrix& X, const std::vector<double>& b) {
  Matrix y = xt::zeros<double>({X.shape(0), std::size_t(1)});
  for (std::size_t i = 0; i < X.shape(0); ++i)
    for (std::size_t k = 0; k < b.size(); ++k)
      y(i, 0) += X(i, k) * b[k];
  return y;
}
}  // namespace

TEST_CASE("polynomial features: 1-D powers and 2-D monomials up to total degree") {
  Matrix x = {{2.0}, {-1.0}};
  Matrix F = runge::polynomial_features(x, 3);
  REQUIRE(F.shape(1) == 3);
  CHECK(F(0, 0) == 2.0);
  CHECK(F(0, 2) == 8.0);
  CHECK(F(1, 1) == 1.0);
  Matrix xy = {{2.0, 3.0}};
  Matrix G = runge::polynomial_features(xy, 2);
  REQUIRE(G.shape(1) == 5);  // x, y, x^2, xy, y^2
  CHECK(G(0, 0) == 2.0);
  CHECK(G(0, 1) == 3.0);
  CHECK(G(0, 2) == 4.0);
  CHECK(G(0, 3) == 6.0);
  CHECK(G(0, 4) == 9.0);
}

TEST_CASE("OLS through dgelsd recovers the coefficients of noiseless polynomial data") {
  // y = 0.5 - 2x + 3x^2 + x^5 on 50 points, fitted with a degree-5 model: exact.
  runge::Dataset d;
  d.x = Matrix({50, 1});
  d.y = Matrix({50, 1});
  for (std::size_t i = 0; i < 50; ++i) {
    const double x = -1.0 + 2.0 * double(i) / 49.0;
    d.x(i, 0) = x;
    d.y(i, 0) = 0.5 - 2 * x + 3 * x * x + std::pow(x, 5);
  }
  // fit_linear standardises the features and carries the intercept separately.
  auto m = runge::fit_linear(d, runge::LinearMethod::OLS, 5, 0.0);
  // Back to raw coefficients: c_k = b_k / scale_k, intercept - sum b_k mean_k / scale_k.
  std::vector<double> raw(5);
  double c0 = m.intercept;
  for (std::size_t k = 0; k < 5; ++k) {
    raw[k] = m.coef(k) / m.scaler.scale(k);
    c0 -= m.coef(k) * m.scaler.mean(k) / m.scaler.scale(k);
  }
  CHECK(c0 == doctest::Approx(0.5).epsilon(1e-9));
  CHECK(raw[0] == doctest::Approx(-2.0).epsilon(1e-9));
  CHECK(raw[1] == doctest::Approx(3.0).epsilon(1e-9));
  CHECK(std::abs(raw[2]) < 1e-8);
  CHECK(std::abs(raw[3]) < 1e-8);
  CHECK(raw[4] == doctest::Approx(1.0).epsilon(1e-9));
  CHECK(runge::mse(m.predict(d.x), d.y) < 1e-20);
  // The raw solver on [1, x, ..., x^5] gives the coefficients directly.
  Matrix F({50, 6});
  for (std::size_t i = 0; i < 50; ++i) {
    F(i, 0) = 1.0;
    for (std::size_t k = 1; k < 6; ++k)
      F(i, k) = std::pow(d.x(i, 0), double(k));
  }
  const runge::Vector b = runge::ols_lstsq(F, d.y);
  const double want[6] = {0.5, -2.0, 3.0, 0.0, 0.0, 1.0};
  for (std::size_t k = 0; k < 6; ++k)
    CHECK(b(k) == doctest::Approx(want[k]).epsilon(1e-9));
}

TEST_CASE("OLS through dgelsd stays accurate where the normal equations lose digits") {
  // Degree-12 monomials on [0,1]: cond(X) ~ 1e9, cond(X^T X) ~ 1e18.
  Matrix x({200, 1});
  for (std::size_t i = 0; i < 200; ++i)
    x(i, 0) = double(i) / 199.0;
  Matrix X = runge::polynomial_features(x, 12);
  std::vector<double> truth(12);
  for (std::size_t k = 0; k < 12; ++k)
    truth[k] = (k % 2 ? -1.0 : 1.0) * double(k + 1) / 4.0;
  const Matrix y = times(X, truth);
  const runge::Vector b = runge::ols_lstsq(X, y);
  for (std::size_t k = 0; k < 12; ++k)
    CHECK(b(k) == doctest::Approx(truth[k]).epsilon(1e-4));
}

TEST_CASE("Ridge matches its closed form and shrinks towards zero") {
  const Matrix X = random_design(40, 4, 7);
  const Matrix y = times(X, {1.0, -2.0, 0.5, 3.0});
  const double lambda = 2.5;
  const runge::Vector b = runge::ridge_solve(X, y, lambda);
  // Closed form means the gradient X^T (X b - y) + lambda b vanishes.
  for (std::size_t k = 0; k < 4; ++k) {
    double g = lambda * b(k);
    for (std::size_t i = 0; i < 40; ++i) {
      double r = -y(i, 0);
      for (std::size_t j = 0; j < 4; ++j)
        r += X(i, j) * b(j);
      g += X(i, k) * r;
    }
    CHECK(std::abs(g) < 1e-10);
  }
  // Orthonormal-column case by hand: X^T X = I gives b = X^T y / (1 + lambda).
  Matrix Q = xt::zeros<double>({std::size_t(4), std::size_t(2)});
  Q(0, 0) = 1;
  Q(1, 1) = 1;
  Matrix yq = {{3.0}, {-6.0}, {1.0}, {1.0}};
  const runge::Vector bq = runge::ridge_solve(Q, yq, 2.0);
  CHECK(bq(0) == doctest::Approx(1.0));
  CHECK(bq(1) == doctest::Approx(-2.0));
  // lambda = 0 is OLS.
  const runge::Vector b0 = runge::ridge_solve(X, y, 0.0);
  CHECK(b0(1) == doctest::Approx(-2.0).epsilon(1e-10));
  // Also where X^T X is singular (more columns than rows): OLS's minimum-norm solution,
  // not whatever a plain solve of a singular system gives.
  const Matrix wide = random_design(3, 6, 11);
  const Matrix yw = {{1.0}, {-1.0}, {2.0}};
  const runge::Vector r0 = runge::ridge_solve(wide, yw, 0.0);
  const runge::Vector o0 = runge::ols_lstsq(wide, yw);
  for (std::size_t k = 0; k < 6; ++k)
    CHECK(r0(k) == o0(k));
}

TEST_CASE("Lasso by coordinate descent finds the zeros of a known sparse problem") {
  const Matrix X = random_design(200, 10, 11);
  const std::vector<double> truth = {3.0, 0, 0, -2.0, 0, 0, 0, 1.5, 0, 0};
  Matrix y = times(X, truth);
  std::mt19937_64 rng(3);
  std::normal_distribution<double> g(0.0, 0.1);
  for (auto& v : y)
    v += g(rng);
  const double lambda = 0.1;
  const auto r = runge::lasso_cd(X, y, lambda);
  REQUIRE(r.converged);
  CHECK(r.exact_steps == 0);  // well-conditioned: coordinate descent converges alone
  for (std::size_t k = 0; k < 10; ++k) {
    CAPTURE(k);
    if (truth[k] == 0) {
      CHECK(r.coef(k) == 0.0);
    } else {
      CHECK(r.coef(k) != 0.0);
      // Shrunk by about lambda towards zero (orthogonal-design intuition).
      CHECK(std::abs(r.coef(k) - truth[k]) < 3 * lambda);
    }
  }
  // KKT: |x_k . r| / n <= lambda for zeros, = lambda sign(b_k) for the others.
  for (std::size_t k = 0; k < 10; ++k) {
    double c = 0;
    for (std::size_t i = 0; i < 200; ++i) {
      double res = y(i, 0);
      for (std::size_t j = 0; j < 10; ++j)
        res -= X(i, j) * r.coef(j);
      c += X(i, k) * res;
    }
    c /= 200.0;
    if (r.coef(k) == 0)
      CHECK(std::abs(c) <= lambda + 1e-8);
    else
      CHECK(c == doctest::Approx(lambda * (r.coef(k) > 0 ? 1 : -1)).epsilon(1e-6));
  }
  // A lambda above max |x_k . y| / n zeroes everything.
  const auto all_zero = runge::lasso_cd(X, y, 100.0);
  CHECK(xt::amax(xt::abs(all_zero.coef))() == 0.0);
}

namespace {
/// The sparse study's Lasso problem: standardised powers of x up to `degree` on one draw
/// of 18 points (sigma = 0.1), y centred, as fit_linear builds it.
struct SparseLasso {
  Matrix F, yc;
};
/// Standardised polynomial columns of degree `degree` and the centred y of data d.
SparseLasso polynomial_lasso_problem(const runge::DataSpec& d, int degree) {
  const runge::Dataset full = runge::generate(d);
  const Matrix P = runge::polynomial_features(full.x, degree);
  runge::StandardScaler scaler;
  scaler.fit(P);
  double mean = 0;
  for (const double v : full.y)
    mean += v / double(full.size());
  return {scaler.transform(P), full.y - mean};
}
/// Report 001's sparse protocol: 18 points, noise 0.1, seed `draw`.
SparseLasso sparse_lasso_problem(std::uint64_t draw, int degree) {
  runge::DataSpec d;
  d.n = 18;
  d.noise = 0.1;
  d.seed = draw;
  return polynomial_lasso_problem(d, degree);
}
}  // namespace

TEST_CASE("Lasso reaches the exact minimum on correlated polynomial columns") {
  // Draw 110, degree 10, lambda 1e-5: coordinate descent alone was still 3 % above the
  // minimum after 10^5 sweeps. The minimum is scikit-learn's LassoLars solution
  // (PolynomialFeatures, StandardScaler, LassoLars(alpha=1e-5, fit_intercept=False) on the
  // centred y of the same 18 points): objective 0.004800607179347341.
  const SparseLasso q = sparse_lasso_problem(110, 10);
  const auto r = runge::lasso_cd(q.F, q.yc, 1e-5);
  REQUIRE(r.converged);
  CHECK(r.exact_steps > 0);  // the active-set search finished it
  CHECK(r.kkt_violation <= 1e-12);
  CHECK(runge::lasso_objective(q.F, q.yc, r.coef, 1e-5) ==
        doctest::Approx(0.004800607179347341).epsilon(1e-12));
  // Coordinate descent alone stops at its cap, not converged, and says so.
  runge::LassoOptions descent_only;
  descent_only.max_iterations = 2000;
  descent_only.exact_after = 1 << 30;
  const auto slow = runge::lasso_cd(q.F, q.yc, 1e-5, descent_only);
  CHECK_FALSE(slow.converged);
  CHECK(runge::lasso_objective(q.F, q.yc, slow.coef, 1e-5) > 1.01 * 0.004800607179347341);
}

TEST_CASE("every Lasso fit of the sparse study's grid meets the KKT conditions") {
  // Degrees 1-12 x the study's five lambdas on three draws: each fit converges, and the
  // KKT conditions hold to 1e-9 of their scale, as `converged` promises.
  for (const std::uint64_t draw : {101u, 110u, 117u})
    for (int degree = 1; degree <= 12; ++degree)
      for (const double lambda : {1e-5, 1e-4, 1e-3, 1e-2, 1e-1}) {
        CAPTURE(draw);
        CAPTURE(degree);
        CAPTURE(lambda);
        const SparseLasso q = sparse_lasso_problem(draw, degree);
        const auto r = runge::lasso_cd(q.F, q.yc, lambda);
        CHECK(r.converged);
        CHECK(runge::lasso_kkt_violation(q.F, q.yc, r.coef, lambda) <= 1e-9);
      }
}

TEST_CASE("Lasso with more columns than rows reaches the minimum, with at most n nonzeros") {
  // 10 rows, 40 columns: the active set outgrows the rank of X_A, where the system with
  // the signs fixed has no solution; a step in the null space of X_A drops a column. The
  // objectives are scikit-learn 1.2's LassoLars (fit_intercept=False, alpha=lambda) on the
  // same X and y; at 1e-8 our minimum is lower than LassoLars's 1.252146748036739e-08.
  const Matrix X = random_design(10, 40, 21);
  Matrix y({10, 1});
  std::mt19937_64 rng(5);
  std::normal_distribution<double> g(0.0, 1.0);
  for (auto& v : y)
    v = g(rng);
  const std::vector<std::pair<double, double>> lambda_objective = {{1e-3, 0.0012481828581707745},
                                                                   {1e-4, 0.00012517437722316943},
                                                                   {1e-6, 1.2521427182787052e-06},
                                                                   {1e-8, 1.2521467077391756e-08}};
  for (const auto& test : lambda_objective) {
    const auto& [lambda, sklearn_objective] = test;
    CAPTURE(test.first);  // not the binding: clang refuses a lambda capture of one in C++17
    const auto fit = runge::lasso_cd(X, y, lambda);
    CHECK(fit.converged);
    CHECK(runge::lasso_kkt_violation(X, y, fit.coef, lambda) <= kkt_bound(X, y, lambda));
    CHECK(runge::lasso_objective(X, y, fit.coef, lambda) ==
          doctest::Approx(sklearn_objective).epsilon(1e-12));
    std::size_t nonzero = 0;
    for (const double c : fit.coef)
      nonzero += c != 0;
    CHECK(nonzero <= 10);
  }
  // Below the default tolerance's scale (1e-9), lambda still decides: at 1e-10 a fit
  // once "converged" with all 40 coefficients nonzero, at 2.2 times the minimum.
  const auto tiny = runge::lasso_cd(X, y, 1e-10);
  CHECK(tiny.converged);
  CHECK(tiny.kkt_violation <= kkt_bound(X, y, 1e-10));
  std::size_t tiny_nonzero = 0;
  for (const double c : tiny.coef)
    tiny_nonzero += c != 0;
  CHECK(tiny_nonzero <= 10);
  // Over many wide designs (p = 2n and 4n) and penalties, every fit is certified.
  for (const std::size_t n : {5, 20})
    for (const std::size_t p : {2 * n, 4 * n})
      for (std::uint64_t seed = 0; seed < 3; ++seed)
        for (const double lambda : {1e-1, 1e-3, 1e-5, 1e-8}) {
          CAPTURE(n);
          CAPTURE(p);
          CAPTURE(seed);
          CAPTURE(lambda);
          const Matrix Xw = random_design(n, p, 1000 + seed);
          const Matrix yw = random_design(n, 1, 2000 + seed);
          const auto fit = runge::lasso_cd(Xw, yw, lambda);
          CHECK(fit.converged);
          CHECK(fit.kkt_violation == runge::lasso_kkt_violation(Xw, yw, fit.coef, lambda));
          CHECK(fit.kkt_violation <= kkt_bound(Xw, yw, lambda));
        }

  runge::DataSpec d;
  d.n = 8;
  d.noise = 0.1;
  d.seed = 3;
  const auto [F, yc] = polynomial_lasso_problem(d, 15);
  const auto high = runge::lasso_cd(F, yc, 1e-6);
  CHECK(high.converged);
  CHECK(runge::lasso_kkt_violation(F, yc, high.coef, 1e-6) <= 1e-8);
}

TEST_CASE("Lasso at a tiny lambda on degree-15 polynomial columns converges") {
  // Rounding stops the exact search at KKT ~1e-13 here: a tolerance of lambda / 1000
  // alone (1e-15 at lambda = 1e-12) left these fits unconverged at a worse point.
  const auto [F, yc] = polynomial_lasso_problem(runge::DataSpec{}, 15);
  for (const double lambda : {1e-10, 1e-12, 1e-14}) {
    CAPTURE(lambda);
    const auto fit = runge::lasso_cd(F, yc, lambda);
    CHECK(fit.converged);
    CHECK(fit.kkt_violation <= kkt_bound(F, yc, lambda));
  }
}

TEST_CASE("Lasso descent goes on from the exact search's point when that is lower") {
  // A tolerance no fit can meet: the search is never certified, but its point (the
  // minimum, up to rounding) is where descent continues, not the descent's own point.
  const auto [F, yc] = polynomial_lasso_problem(runge::DataSpec{}, 15);
  const double lambda = 1e-12;
  const double minimum = runge::lasso_objective(F, yc, runge::lasso_cd(F, yc, lambda).coef, lambda);
  runge::LassoOptions unreachable;
  unreachable.tolerance = 1e-30;
  unreachable.max_iterations = 200;
  const auto fit = runge::lasso_cd(F, yc, lambda, unreachable);
  CHECK_FALSE(fit.converged);
  CHECK(fit.exact_steps > 0);
  // Descent alone stays 70 % above the minimum here (0.00245 against 0.00145).
  CHECK(runge::lasso_objective(F, yc, fit.coef, lambda) <= minimum * (1 + 1e-6));
}

TEST_CASE("Lasso refuses non-finite data, data out of double's range and no rows") {
  Matrix X = random_design(6, 2, 1);
  Matrix y = times(X, {1.0, -1.0});
  y(2, 0) = std::numeric_limits<double>::quiet_NaN();
  CHECK_THROWS_WITH_AS(runge::lasso_cd(X, y, 0.1), "lasso_cd: y holds a non-finite value",
                       std::invalid_argument);
  y(2, 0) = 0.0;
  X(1, 1) = std::numeric_limits<double>::infinity();
  CHECK_THROWS_WITH_AS(runge::lasso_cd(X, y, 0.1), "lasso_cd: X holds a non-finite value",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(runge::lasso_cd(Matrix({0, 2}), Matrix({0, 1}), 0.1), "lasso_cd: no rows",
                       std::invalid_argument);
  // Data whose sums of squares overflow or underflow double are refused by scale.
  Matrix big = {{1.0, 2e160}, {-1.0, 1e160}, {0.5, 0.0}};
  const Matrix y3 = {{1.0}, {0.0}, {-1.0}};
  CHECK_THROWS_WITH_AS(runge::lasso_cd(big, y3, 0.1),
                       "lasso_cd: the sum of squares of column 1 of X is too large for double "
                       "(largest |value| 2e+160); rescale the data",
                       std::invalid_argument);
  big(0, 1) = 3e-170, big(1, 1) = 0;
  CHECK_THROWS_WITH_AS(runge::lasso_cd(big, y3, 0.1),
                       "lasso_cd: the sum of squares of column 1 of X is too small for double "
                       "(largest |value| 3e-170); rescale the data",
                       std::invalid_argument);
  const Matrix huge_y = y3 * 1e200;
  CHECK_THROWS_WITH_AS(runge::lasso_cd(big, huge_y, 0.1),
                       "lasso_cd: the sum of squares of y is too large for double (largest "
                       "|value| 1e+200); rescale the data",
                       std::invalid_argument);
  // Where b = 0 is the answer (lambda above every |x_k . y| / n), a tiny y is no problem.
  const Matrix tiny_y = y3 * 1e-170;
  const Matrix unit = {{1.0, 0.5}, {-1.0, 0.25}, {0.5, 2.0}};
  const auto zero_fit = runge::lasso_cd(unit, tiny_y, 0.1);
  CHECK(zero_fit.converged);
  CHECK(zero_fit.coef(0) == 0.0);
  CHECK_THROWS_WITH_AS(runge::lasso_cd(unit, tiny_y, 1e-200),
                       "lasso_cd: the sum of squares of y is too small for double (largest "
                       "|value| 1e-170); rescale the data",
                       std::invalid_argument);
  big(0, 1) = 0;  // a column of zeros is fine: its coefficient stays 0
  const auto zero_column = runge::lasso_cd(big, y3, 0.1);
  CHECK(zero_column.converged);
  CHECK(zero_column.coef(1) == 0.0);
  // A NaN violation is never taken for a met condition.
  const Matrix X2 = random_design(6, 2, 1);
  runge::Vector b = {std::numeric_limits<double>::quiet_NaN(), 0.0};
  CHECK(std::isnan(runge::lasso_kkt_violation(X2, times(X2, {1.0, 0.0}), b, 0.1)));
}

TEST_CASE("Lasso options out of range are refused") {
  const SparseLasso q = sparse_lasso_problem(101, 3);
  runge::LassoOptions o;
  o.check_every = 0;
  CHECK_THROWS_WITH_AS(runge::lasso_cd(q.F, q.yc, 1e-3, o),
                       "lasso_cd: max_iterations 100000 and check_every 0 must be >= 1 and the "
                       "tolerance > 0",
                       std::invalid_argument);
}

TEST_CASE("baselines on the Runge data: OLS degree 12 beats degree 2, R2 in range") {
  runge::DataSpec spec;
  auto split = runge::train_test_split(runge::generate(spec), 0.2, 44);
  auto m12 = runge::fit_linear(split.train, runge::LinearMethod::OLS, 12, 0.0);
  auto m2 = runge::fit_linear(split.train, runge::LinearMethod::OLS, 2, 0.0);
  const double e12 = runge::mse(m12.predict(split.test.x), split.test.y);
  const double e2 = runge::mse(m2.predict(split.test.x), split.test.y);
  CHECK(e12 < e2);
  CHECK(e12 > 1e-3);  // noise sigma 0.05: no model gets far below 2.5e-3
  CHECK(runge::r2(m12.predict(split.test.x), split.test.y) > 0.9);
  auto lasso = runge::fit_linear(split.train, runge::LinearMethod::Lasso, 12, 1e-4);
  CHECK(runge::r2(lasso.predict(split.test.x), split.test.y) > 0.8);
}
