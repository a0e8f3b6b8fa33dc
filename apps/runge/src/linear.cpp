// LAPACK through xtensor-blas lives in this translation unit only: xtensor-blas's
// headers and OpenBLAS's <cblas.h> cannot share one (../shared/DESIGN.md §3).
#include "linear.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <string>
#include <tuple>

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
  // lambda = 0 is OLS: least squares through dgelsd, whose minimum-norm solution stays
  // finite where X^T X is singular (degree 30 on 20 points: test MSE 212 by a plain
  // solve, 20.5 this way).
  if (lambda == 0) return ols_lstsq(X, y);
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

namespace {

/// g = X^T (y - X b) / n, the correlation of each column with the residual.
std::vector<double> residual_correlations(const Matrix& X, const Matrix& y, const Vector& b) {
  const std::size_t n = X.shape(0), p = X.shape(1);
  std::vector<double> r(n), g(p, 0.0);
  for (std::size_t i = 0; i < n; ++i) {
    double fit = 0;
    for (std::size_t k = 0; k < p; ++k)
      fit += X(i, k) * b(k);
    r[i] = y(i, 0) - fit;
  }
  for (std::size_t k = 0; k < p; ++k) {
    for (std::size_t i = 0; i < n; ++i)
      g[k] += X(i, k) * r[i];
    g[k] /= double(n);
  }
  return g;
}

double sign_of(double v) {
  return v > 0 ? 1.0 : v < 0 ? -1.0 : 0.0;
}

/// With more active columns than X_A has rank (p > n), the problem with the active signs
/// fixed has no minimum when theta_A leans into null(X_A): along v = -P_null theta_A the fit
/// X b stays the same while lambda theta . b falls, linearly, until an active coefficient
/// reaches zero and leaves the set. Moves b there and returns true; returns false, b
/// untouched, when X_A has full rank, theta_A is orthogonal to its null space, or the
/// step does not lower the objective.
bool null_space_step(const Matrix& X, const Matrix& y, double lambda,
                     const std::vector<std::size_t>& A, const std::vector<double>& theta,
                     Vector& b) {
  const std::size_t n = X.shape(0), m = A.size();
  Matrix XA({n, m});
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t a = 0; a < m; ++a)
      XA(i, a) = X(i, A[a]);
  xt::xtensor<double, 1> s;
  Matrix Vt;
  try {
    std::tie(std::ignore, s, Vt) = xt::linalg::svd(XA, true, true);
  } catch (const std::runtime_error&) {
    return false;  // no SVD (LAPACK did not converge): leave it to coordinate descent
  }
  // numpy's matrix_rank rule: singular values below s_max * max(n, m) * eps are zero.
  const double cutoff =
      (s.size() ? s(0) : 0.0) * double(std::max(n, m)) * std::numeric_limits<double>::epsilon();
  std::size_t rank = 0;
  while (rank < s.size() && s(rank) > cutoff)
    ++rank;
  if (rank == m) return false;
  std::vector<double> v(m, 0.0);  // -P_null theta_A, P_null from the last m - rank rows of Vt
  for (std::size_t r = rank; r < m; ++r) {
    double along = 0;
    for (std::size_t a = 0; a < m; ++a)
      along += Vt(r, a) * theta[A[a]];
    for (std::size_t a = 0; a < m; ++a)
      v[a] -= along * Vt(r, a);
  }
  double t = std::numeric_limits<double>::infinity();  // the first zero crossing
  std::size_t leaving = m;
  for (std::size_t a = 0; a < m; ++a) {
    const double bk = b(A[a]);
    if (bk != 0 && v[a] != 0 && sign_of(v[a]) != sign_of(bk) && -bk / v[a] < t) {
      t = -bk / v[a];
      leaving = a;
    }
  }
  if (leaving == m) return false;
  Vector point = b;
  for (std::size_t a = 0; a < m; ++a)
    point(A[a]) += t * v[a];
  point(A[leaving]) = 0;
  if (!(lasso_objective(X, y, point, lambda) < lasso_objective(X, y, b, lambda))) return false;
  b = point;
  return true;
}

/// Feature-sign search (Lee, Battle, Raina & Ng 2007) from b: an active-set method that
/// ends at the exact minimum in finitely many steps. Each step solves the problem on the
/// active set with its signs fixed, then moves to the best point of the segment from b
/// to that solution at which the objective can change form (the end or a zero crossing);
/// a zero coefficient whose |g| exceeds lambda joins the set. Returns true when the KKT
/// conditions hold within `tolerance`.
bool feature_sign_search(const Matrix& X, const Matrix& y, double lambda, double tolerance,
                         int max_steps, Vector& b, int& steps) {
  const std::size_t p = X.shape(1);
  const double dn = double(X.shape(0));
  // G = X^T X / n and c = X^T y / n, as ridge_solve forms them.
  const Matrix G = xt::linalg::dot(xt::transpose(X), X) / dn;
  const Matrix c = xt::linalg::dot(xt::transpose(X), y) / dn;
  std::vector<double> theta(p);  // the sign of each active coefficient; 0 = inactive
  for (std::size_t k = 0; k < p; ++k)
    theta[k] = sign_of(b(k));
  const auto correlations = [&](const Vector& v) {  // g = c - G v
    std::vector<double> g(p);
    for (std::size_t k = 0; k < p; ++k) {
      g[k] = c(k, 0);
      for (std::size_t e = 0; e < p; ++e)
        g[k] -= G(k, e) * v(e);
    }
    return g;
  };
  for (steps = 0; steps < max_steps; ++steps) {
    const std::vector<double> g = correlations(b);
    double active_gap = 0;
    for (std::size_t k = 0; k < p; ++k)
      if (theta[k] != 0) active_gap = std::max(active_gap, std::abs(g[k] - lambda * theta[k]));
    if (active_gap <= tolerance) {
      std::size_t j = p;
      for (std::size_t k = 0; k < p; ++k)
        if (theta[k] == 0 && (j == p || std::abs(g[k]) > std::abs(g[j]))) j = k;
      if (j == p || std::abs(g[j]) <= lambda + tolerance) return true;
      theta[j] = sign_of(g[j]);  // b_j is still 0; the step below moves it
    }
    // The solution on the active set with its signs: G_AA b_A = c_A - lambda theta_A.
    std::vector<std::size_t> A;
    for (std::size_t k = 0; k < p; ++k)
      if (theta[k] != 0) A.push_back(k);
    const std::size_t m = A.size();
    Matrix GA({m, m}), rhs({m, std::size_t(1)});
    for (std::size_t a = 0; a < m; ++a) {
      rhs(a, 0) = c(A[a], 0) - lambda * theta[A[a]];
      for (std::size_t e = 0; e < m; ++e)
        GA(a, e) = G(A[a], A[e]);
    }
    Matrix sol;
    try {
      // SVD least squares (LAPACK dgelsd): with more active columns than rows (p > n)
      // the system is singular. Where it is consistent, its minimum-norm solution is a
      // valid target for the line search; where it is not, the target does not lower
      // the objective and null_space_step takes over below.
      sol = std::get<0>(xt::linalg::lstsq(GA, rhs));
    } catch (const std::runtime_error&) {
      return false;  // no solution computed: leave it to coordinate descent
    }
    Vector target = xt::zeros<double>({p});
    for (std::size_t a = 0; a < m; ++a)
      target(A[a]) = sol(a, 0);
    // The discrete line search: the objective is a different quadratic on each side of a
    // zero crossing, so its minimum over the segment is at the end or at a crossing.
    Vector best = target;
    double best_f = lasso_objective(X, y, target, lambda);
    for (const std::size_t k : A) {
      if (b(k) == 0 || sign_of(target(k)) == sign_of(b(k))) continue;
      const double t = b(k) / (b(k) - target(k));
      Vector point = b + t * (target - b);
      point(k) = 0;
      const double f = lasso_objective(X, y, point, lambda);
      if (f < best_f) {
        best_f = f;
        best = point;
      }
    }
    // Each step must lower the objective; one that does not (a near-singular system on
    // this set returns a huge, wrong solution instead of failing) would cycle. With
    // p > n the system may have no solution at all: then a step in the null space of
    // X_A drops a column instead.
    if (best_f < lasso_objective(X, y, b, lambda)) {
      b = best;
    } else if (!null_space_step(X, y, lambda, A, theta, b)) {
      return false;
    }
    for (std::size_t k = 0; k < p; ++k)
      theta[k] = sign_of(b(k));
  }
  return false;
}

}  // namespace

double lasso_objective(const Matrix& X, const Matrix& y, const Vector& b, double lambda) {
  const std::size_t n = X.shape(0), p = X.shape(1);
  double squares = 0, l1 = 0;
  for (std::size_t i = 0; i < n; ++i) {
    double r = y(i, 0);
    for (std::size_t k = 0; k < p; ++k)
      r -= X(i, k) * b(k);
    squares += r * r;
  }
  for (std::size_t k = 0; k < p; ++k)
    l1 += std::abs(b(k));
  return squares / (2.0 * double(n)) + lambda * l1;
}

double lasso_kkt_violation(const Matrix& X, const Matrix& y, const Vector& b, double lambda) {
  const std::vector<double> g = residual_correlations(X, y, b);
  double worst = 0;
  for (std::size_t k = 0; k < g.size(); ++k) {
    const double v = b(k) != 0 ? std::abs(g[k] - lambda * sign_of(b(k)))
                               : std::max(std::abs(g[k]) - lambda, 0.0);
    if (!(v <= worst)) worst = v;  // a NaN violation is the worst, never skipped
  }
  return worst;
}

LassoResult lasso_cd(const Matrix& X, const Matrix& y, double lambda, const LassoOptions& options) {
  check_rows(X, y, "lasso_cd");
  if (!(lambda >= 0)) throw std::invalid_argument("--lambda must be >= 0 for lasso");
  if (options.max_iterations < 1 || options.check_every < 1 || !(options.tolerance > 0)) {
    throw std::invalid_argument(
        "lasso_cd: max_iterations " + std::to_string(options.max_iterations) + " and check_every " +
        std::to_string(options.check_every) + " must be >= 1 and the tolerance > 0");
  }
  const std::size_t n = X.shape(0), p = X.shape(1);
  if (n == 0) throw std::invalid_argument("lasso_cd: no rows");
  for (const double v : X)
    if (!std::isfinite(v)) throw std::invalid_argument("lasso_cd: X holds a non-finite value");
  for (const double v : y)
    if (!std::isfinite(v)) throw std::invalid_argument("lasso_cd: y holds a non-finite value");
  const double dn = double(n);
  LassoResult out;
  out.coef = xt::zeros<double>({p});
  std::vector<double> col_sq(p, 0.0), r(n);
  for (std::size_t i = 0; i < n; ++i)
    r[i] = y(i, 0);
  for (std::size_t k = 0; k < p; ++k)
    for (std::size_t i = 0; i < n; ++i)
      col_sq[k] += X(i, k) * X(i, k);
  // Sums of squares that overflow, or lose their digits below DBL_MIN, would end the fit
  // in NaN or b = 0; such data are refused with the scale that breaks them (underflow
  // only where b = 0 is not already the answer).
  double y_sq = 0;
  for (const double v : y)
    y_sq += v * v;
  const auto refuse_scale = [&](const std::string& what, const auto& values) {
    double largest = 0;
    for (const double v : values)
      largest = std::max(largest, std::abs(v));
    std::ostringstream msg;
    msg << "lasso_cd: the sum of squares of " << what << " is "
        << (largest > 1 ? "too large" : "too small") << " for double (largest |value| " << largest
        << "); rescale the data";
    throw std::invalid_argument(msg.str());
  };
  const auto column = [&](std::size_t k) { return xt::eval(xt::col(X, k)); };
  if (!std::isfinite(y_sq)) refuse_scale("y", y);
  for (std::size_t k = 0; k < p; ++k)
    if (!std::isfinite(col_sq[k])) refuse_scale("column " + std::to_string(k) + " of X", column(k));
  // The KKT conditions certify the minimum; their scale is that of g at b = 0.
  double scale = lambda;
  for (const double g0 : residual_correlations(X, y, out.coef))
    scale = std::max(scale, std::abs(g0));
  // Also at most lambda / 1000: with a tolerance above lambda, |g_k| <= lambda + tolerance
  // would certify nothing about the zeros (lambda = 1e-10 "converged" with 40 of 40
  // coefficients nonzero). But never below a tenth of the first bound: rounding stops the
  // exact search at 1e-14 to 1.5e-13 on standardised degree-8 to 15 polynomial columns,
  // and a lambda of 1e-12 there ended unconverged at a worse point.
  double tolerance = options.tolerance * std::max(scale, 1e-300);
  if (lambda > 0) tolerance = std::min(tolerance, std::max(1e-3 * lambda, 0.1 * tolerance));
  out.kkt_violation = lasso_kkt_violation(X, y, out.coef, lambda);
  if (out.kkt_violation <= tolerance) {
    out.converged = true;  // lambda >= max |x_k . y| / n: every coefficient is 0
    return out;
  }
  if (y_sq < std::numeric_limits<double>::min() && !xt::all(xt::equal(y, 0.0)))
    refuse_scale("y", y);
  for (std::size_t k = 0; k < p; ++k) {
    const bool zero_column = col_sq[k] == 0 && xt::all(xt::equal(xt::col(X, k), 0.0));
    if (!zero_column && col_sq[k] < std::numeric_limits<double>::min())
      refuse_scale("column " + std::to_string(k) + " of X", column(k));
  }
  bool tried_exact = false;
  for (int it = 1; it <= options.max_iterations; ++it) {
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
    }
    out.iterations = it;
    if (it % options.check_every != 0 && it != options.max_iterations) continue;
    out.kkt_violation = lasso_kkt_violation(X, y, out.coef, lambda);
    if (out.kkt_violation <= tolerance) {
      out.converged = true;
      return out;
    }
    // On correlated columns (standardised powers of x) coordinate descent creeps: after
    // 10^5 sweeps a degree-10 fit of 18 points was still 3 % above the minimum. Past
    // `exact_after` sweeps the active-set search finishes the job exactly, once.
    if (!tried_exact && it >= options.exact_after) {
      tried_exact = true;
      // From the descent's point first; if that fails (a support the search cannot
      // leave downhill), from b = 0, where it adds one column at a time.
      // Each search step lowers the objective, so a failed search still ends lower than
      // it started: the lowest point seen is where descent goes on if none is certified.
      Vector lowest = out.coef;
      double lowest_f = lasso_objective(X, y, lowest, lambda);
      const auto note = [&](const Vector& point) {
        const double f = lasso_objective(X, y, point, lambda);
        if (f < lowest_f) lowest = point, lowest_f = f;
      };
      Vector b = out.coef;
      const int max_steps = 50 * int(p) + 100;
      bool found = feature_sign_search(X, y, lambda, tolerance, max_steps, b, out.exact_steps);
      if (!found) {
        note(b);
        int more = 0;
        b = xt::zeros<double>({p});
        found = feature_sign_search(X, y, lambda, tolerance, max_steps, b, more);
        out.exact_steps += more;
      }
      if (found) {  // kept only when the direct KKT test agrees; else descent goes on
        const double v = lasso_kkt_violation(X, y, b, lambda);
        if (v <= tolerance) {
          out.coef = b;
          out.kkt_violation = v;
          out.converged = true;
          return out;
        }
      }
      note(b);
      out.coef = lowest;
      for (std::size_t i = 0; i < n; ++i) {
        r[i] = y(i, 0);
        for (std::size_t k = 0; k < p; ++k)
          r[i] -= X(i, k) * out.coef(k);
      }
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
