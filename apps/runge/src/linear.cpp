// LAPACK through xtensor-blas lives in this translation unit only: xtensor-blas's
// headers and OpenBLAS's <cblas.h> cannot share one (DESIGN.md §3).
#include "linear.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include <xtensor-blas/xlinalg.hpp>
#include <xtensor/xview.hpp>

namespace runge {

Matrix polynomial_features(const Matrix& x, int degree) {
  if (degree < 1) throw std::invalid_argument("--degree must be at least 1");
  const std::size_t n = x.shape(0);
  const auto p = static_cast<std::size_t>(degree);
  if (x.shape(1) == 1) {
    Matrix out({n, p});
    for (std::size_t i = 0; i < n; ++i) {
      double v = 1;
      for (std::size_t k = 0; k < p; ++k)
        out(i, k) = v *= x(i, 0);
    }
    return out;
  }
  if (x.shape(1) != 2) throw std::invalid_argument("polynomial_features: 1 or 2 input columns");
  const std::size_t cols = (p + 1) * (p + 2) / 2 - 1;
  Matrix out({n, cols});
  for (std::size_t i = 0; i < n; ++i) {
    std::size_t c = 0;
    for (int total = 1; total <= degree; ++total)
      for (int j = 0; j <= total; ++j)
        out(i, c++) = std::pow(x(i, 0), total - j) * std::pow(x(i, 1), j);
  }
  return out;
}

static void check_rows(const Matrix& X, const Matrix& y, const char* who) {
  if (y.shape(0) != X.shape(0) || y.shape(1) != 1)
    throw std::invalid_argument(std::string(who) + ": y must be [" + std::to_string(X.shape(0)) +
                                ", 1]");
}

Vector ols_lstsq(const Matrix& X, const Matrix& y) {
  check_rows(X, y, "ols_lstsq");
  // dgelsd: SVD-based least squares, stable for the ill-conditioned Vandermonde columns
  // of a degree-12 polynomial where the normal equations would square the condition number.
  auto result = xt::linalg::lstsq(X, y);
  const auto& sol = std::get<0>(result);
  Vector b = xt::zeros<double>({X.shape(1)});
  for (std::size_t k = 0; k < X.shape(1); ++k)
    b(k) = sol(k, 0);
  return b;
}

Vector ridge_solve(const Matrix& X, const Matrix& y, double lambda) {
  check_rows(X, y, "ridge_solve");
  if (!(lambda >= 0)) throw std::invalid_argument("--lambda must be >= 0 for ridge");
  const std::size_t p = X.shape(1);
  Matrix A = xt::linalg::dot(xt::transpose(X), X);
  for (std::size_t k = 0; k < p; ++k)
    A(k, k) += lambda;
  Matrix rhs = xt::linalg::dot(xt::transpose(X), y);
  // A is symmetric positive definite for lambda > 0: a linear solve, no inverse formed.
  Matrix sol = xt::linalg::solve(A, rhs);
  Vector b = xt::zeros<double>({p});
  for (std::size_t k = 0; k < p; ++k)
    b(k) = sol(k, 0);
  return b;
}

LassoResult lasso_cd(const Matrix& X, const Matrix& y, double lambda, const LassoOptions& options) {
  check_rows(X, y, "lasso_cd");
  if (!(lambda >= 0)) throw std::invalid_argument("--lambda must be >= 0 for lasso");
  const std::size_t n = X.shape(0), p = X.shape(1);
  const double dn = double(n);
  LassoResult out;
  out.coef = xt::zeros<double>({p});
  std::vector<double> col_sq(p, 0.0), r(n);
  for (std::size_t i = 0; i < n; ++i)
    r[i] = y(i, 0);
  for (std::size_t k = 0; k < p; ++k)
    for (std::size_t i = 0; i < n; ++i)
      col_sq[k] += X(i, k) * X(i, k);
  for (int it = 1; it <= options.max_iterations; ++it) {
    double max_change = 0, max_coef = 0;
    for (std::size_t k = 0; k < p; ++k) {
      if (col_sq[k] == 0) continue;
      const double old = out.coef(k);
      // rho = x_k . (r + x_k b_k) / n: the partial residual's correlation with column k.
      double rho = 0;
      for (std::size_t i = 0; i < n; ++i)
        rho += X(i, k) * r[i];
      rho = rho / dn + old * col_sq[k] / dn;
      const double z = col_sq[k] / dn;
      const double updated = std::copysign(std::max(std::abs(rho) - lambda, 0.0), rho) / z;
      if (updated != old) {
        const double delta = updated - old;
        for (std::size_t i = 0; i < n; ++i)
          r[i] -= delta * X(i, k);
        out.coef(k) = updated;
      }
      max_change = std::max(max_change, std::abs(updated - old));
      max_coef = std::max(max_coef, std::abs(updated));
    }
    out.iterations = it;
    if (max_change <= options.tolerance * std::max(max_coef, 1e-300) || max_coef == 0) {
      out.converged = true;
      break;
    }
  }
  return out;
}

LinearMethod parse_linear_method(const std::string& text) {
  if (text == "ols") return LinearMethod::OLS;
  if (text == "ridge") return LinearMethod::Ridge;
  if (text == "lasso") return LinearMethod::Lasso;
  throw std::invalid_argument("--method: unknown method '" + text +
                              "' (expected ols, ridge or lasso)");
}

const char* linear_method_name(LinearMethod m) {
  switch (m) {
    case LinearMethod::OLS:
      return "ols";
    case LinearMethod::Ridge:
      return "ridge";
    case LinearMethod::Lasso:
      return "lasso";
  }
  return "?";
}

Matrix LinearModel::predict(const Matrix& x) const {
  const Matrix F = scaler.transform(polynomial_features(x, degree));
  Matrix out({x.shape(0), 1});
  for (std::size_t i = 0; i < F.shape(0); ++i) {
    double s = intercept;
    for (std::size_t k = 0; k < F.shape(1); ++k)
      s += F(i, k) * coef(k);
    out(i, 0) = s;
  }
  return out;
}

LinearModel fit_linear(const Dataset& train, LinearMethod method, int degree, double lambda,
                       const LassoOptions& lasso) {
  if (method != LinearMethod::OLS && !(lambda >= 0))
    throw std::invalid_argument("--lambda must be >= 0");
  LinearModel m;
  m.method = method;
  m.degree = degree;
  m.lambda = lambda;
  const Matrix F = polynomial_features(train.x, degree);
  m.scaler.fit(F);
  const Matrix Fs = m.scaler.transform(F);
  double ymean = 0;
  for (std::size_t i = 0; i < train.size(); ++i)
    ymean += train.y(i, 0);
  ymean /= double(train.size());
  Matrix yc = train.y - ymean;
  m.intercept = ymean;
  switch (method) {
    case LinearMethod::OLS:
      m.coef = ols_lstsq(Fs, yc);
      break;
    case LinearMethod::Ridge:
      m.coef = ridge_solve(Fs, yc, lambda);
      break;
    case LinearMethod::Lasso: {
      auto r = lasso_cd(Fs, yc, lambda, lasso);
      m.coef = r.coef;
      m.converged = r.converged;
      break;
    }
  }
  return m;
}

}  // namespace runge
