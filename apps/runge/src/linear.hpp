// The linear baselines of the reports: polynomial OLS, Ridge and Lasso.
//
// Conventions (those of scikit-learn, which reports 000 and 001 used for their baselines):
//   OLS    min ||y - X b||^2                               via LAPACK dgelsd (SVD), never an
//                                                          explicit inverse of X^T X
//   Ridge  min ||y - X b||^2 + lambda ||b||_2^2            via a linear solve of
//                                                          (X^T X + lambda I) b = X^T y
//   Lasso  min 1/(2n) ||y - X b||^2 + lambda ||b||_1       via cyclic coordinate descent,
//                                                          finished by an exact active-set
//                                                          search when it creeps; stopped
//                                                          by the KKT conditions
// The intercept is never penalised: fit_linear() standardises the feature columns on the
// training part, centres y and adds the training mean of y back as the intercept.
#pragma once

#include <string>

#include <xtensor/xtensor.hpp>

#include "data.hpp"

namespace runge {

using Vector = xt::xtensor<double, 1>;

/// Polynomial features without the constant column. 1-D input: x, x^2, ..., x^p.
/// 2-D input: x^i y^j for 1 <= i + j <= p, ordered by total degree, then by j.
Matrix polynomial_features(const Matrix& x, int degree);

/// Least squares through LAPACK dgelsd (minimum-norm solution when rank-deficient).
Vector ols_lstsq(const Matrix& X, const Matrix& y);
/// Ridge closed form through a symmetric positive definite solve.
Vector ridge_solve(const Matrix& X, const Matrix& y, double lambda);

struct LassoOptions {
  int max_iterations = 100000;  // full sweeps over the coordinates
  int check_every = 10;         // sweeps between KKT checks
  int exact_after = 100;        // sweeps before the exact active-set search takes over
  // Converged when the largest KKT violation (lasso_kkt_violation) is at most
  // tolerance * max(lambda, max_k |x_k . y| / n) and, when lambda > 0, at most
  // lambda / 1000 (so that a zero coefficient's |g_k| <= 1.001 lambda certifies it), but
  // never below a tenth of the first bound, which rounding can stop the search above.
  double tolerance = 1e-9;
};
struct LassoResult {
  Vector coef;
  int iterations = 0;   // coordinate-descent sweeps
  int exact_steps = 0;  // steps of the active-set search (0 when descent converged alone)
  bool converged = false;
  double kkt_violation = 0;  // of coef, as lasso_kkt_violation
};
/// Coordinate descent with soft-thresholding (Friedman, Hastie & Tibshirani 2010). If it
/// has not met the KKT conditions after `exact_after` sweeps (correlated columns make it
/// creep), feature-sign search (Lee et al. 2007), an active-set method, finishes from its
/// point at the exact minimum. `converged` is true only when the KKT conditions hold.
/// With more columns than rows (p > n), where the active set can outgrow the rank of its
/// columns, a step in their null space drops a column, so the search ends with at most
/// n nonzero coefficients. Should it still fail, descent goes on from the lowest point
/// the search reached, and the fit ends with `converged` false rather than claim a
/// minimum it has not reached.
LassoResult lasso_cd(const Matrix& X, const Matrix& y, double lambda,
                     const LassoOptions& options = {});
/// 1/(2n) ||y - X b||^2 + lambda ||b||_1.
double lasso_objective(const Matrix& X, const Matrix& y, const Vector& b, double lambda);
/// How far b is from the Lasso minimum: with g = X^T (y - X b) / n, the largest of
/// |g_k - lambda sign(b_k)| over b_k != 0 and |g_k| - lambda over b_k = 0 (0 at the minimum).
double lasso_kkt_violation(const Matrix& X, const Matrix& y, const Vector& b, double lambda);

enum class LinearMethod { OLS, Ridge, Lasso };
/// "ols", "ridge", "lasso"; throws std::invalid_argument naming --method otherwise.
LinearMethod parse_linear_method(const std::string& text);
const char* linear_method_name(LinearMethod m);

struct LinearModel {
  LinearMethod method = LinearMethod::OLS;
  int degree = 12;
  double lambda = 0.0;
  StandardScaler scaler;  // of the polynomial features, fitted on the training part
  double intercept = 0.0;
  Vector coef;            // in standardised-feature space
  bool converged = true;  // Lasso only

  Matrix predict(const Matrix& x) const;
};

/// Polynomial features of degree `degree`, scaled on `train`, then the chosen solver.
LinearModel fit_linear(const Dataset& train, LinearMethod method, int degree, double lambda,
                       const LassoOptions& lasso = {});

}  // namespace runge
