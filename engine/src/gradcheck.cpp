// Central finite differences against the tape (the torch.autograd.gradcheck idea,
// reporting only the worst element instead of whole Jacobians).
#include "xgrad/gradcheck.hpp"

#include <cmath>
#include <iomanip>
#include <limits>
#include <random>
#include <sstream>

#include <xtensor/xmath.hpp>

#include "xgrad/ops.hpp"

namespace xgrad {
namespace {

using Build = std::function<Tensor<double>(Tape<double>&)>;
using Analytic = std::function<std::vector<Matrix<double>>(Tape<double>&, const Tensor<double>&,
                                                           const Matrix<double>&)>;

Matrix<double> random_upstream(std::size_t rows, std::size_t cols, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0.5, 1.5);
  std::bernoulli_distribution sign(0.5);
  Matrix<double> g({rows, cols});
  for (double& x : g)
    x = sign(rng) ? u(rng) : -u(rng);
  return g;
}

// sum(y . G) of one evaluation of the function on a fresh step of the tape.
double evaluate(Tape<double>& tape, const Build& build, const Matrix<double>& upstream) {
  tape.clear();
  NoGradGuard<double> no_grad(tape);
  const Matrix<double>& y = build(tape).value();
  return xt::sum(y * upstream)();
}

GradcheckResult check(const Build& build, const Analytic& analytic,
                      const std::vector<Matrix<double>*>& points, const GradcheckOptions& o) {
  Tape<double> tape;
  Tensor<double> out = build(tape);
  const Matrix<double> upstream = random_upstream(out.rows(), out.cols(), o.seed);
  const std::vector<Matrix<double>> grads = analytic(tape, out, upstream);

  GradcheckResult r;
  double worst_excess = -std::numeric_limits<double>::infinity();
  for (std::size_t in = 0; in < points.size(); ++in) {
    Matrix<double>& x = *points[in];
    for (std::size_t k = 0; k < x.size(); ++k) {
      // The element gets its value back also when f throws at a perturbed point.
      struct RestoreElement {
        double& slot;
        const double saved;
        ~RestoreElement() { slot = saved; }
      } restore{x.data()[k], x.data()[k]};
      const double saved = restore.saved;
      const double h = o.eps * std::max(1.0, std::abs(saved));
      x.data()[k] = saved + h;
      const double f_plus = evaluate(tape, build, upstream);
      x.data()[k] = saved - h;
      const double f_minus = evaluate(tape, build, upstream);
      x.data()[k] = saved;
      const double numeric = (f_plus - f_minus) / (2 * h);
      // Evaluating f in double moves each value by a few eps |f| (about 1 eps |f| for a
      // sum of 10^4 squares), the quotient by that times (|f+| + |f-|) / 2h; no finite
      // difference can see an error below it. Allowed: 2 eps per evaluation.
      const double rounding = 2 * std::numeric_limits<double>::epsilon() *
                              (std::abs(f_plus) + std::abs(f_minus)) / (2 * h);
      const double a = grads[in].data()[k];
      const double abs_error = std::abs(a - numeric);
      const double allowed = o.atol + o.rtol * std::abs(numeric) + rounding;
      const double excess = abs_error - allowed;
      ++r.elements_checked;
      if (excess > worst_excess || std::isnan(a) || std::isnan(numeric)) {
        worst_excess = std::isnan(excess) ? std::numeric_limits<double>::infinity() : excess;
        r.input = in;
        r.row = k / x.shape(1);
        r.col = k % x.shape(1);
        r.analytic = a;
        r.numeric = numeric;
        r.abs_error = abs_error;
        r.allowed = allowed;
        // Relative to the larger magnitude: a numeric gradient of exactly 0 next to an
        // analytic 1e-17 is a rel error of 1, not 1e283.
        // NaN stays NaN (std::max would drop it and report 0).
        const double scale = std::max(std::abs(numeric), std::abs(a));
        r.rel_error = std::isnan(abs_error) ? abs_error : scale > 0 ? abs_error / scale : 0.0;
      }
      if (!(excess <= 0)) r.passed = false;
    }
  }
  return r;
}

}  // namespace

std::string GradcheckResult::message() const {
  std::ostringstream s;
  s << std::setprecision(6);
  if (passed) {
    // The two values too: where the true gradient is ~0, rel error 1 from rounding noise
    // would otherwise look alarming.
    s << "gradcheck passed: " << elements_checked << " elements, worst at input " << input << " ("
      << row << ", " << col << "): analytic " << analytic << ", numeric " << numeric
      << ", abs error " << abs_error << " (allowed " << allowed << "), rel error " << rel_error;
  } else {
    s << "gradcheck FAILED at input " << input << " (" << row << ", " << col << "): analytic "
      << std::setprecision(12) << analytic << ", numeric " << numeric << std::setprecision(6)
      << ", abs error " << abs_error << " (allowed " << allowed << "), rel error " << rel_error
      << " (" << elements_checked << " elements checked)";
  }
  return s.str();
}

GradcheckResult gradcheck(const GradcheckFunction& f, const std::vector<Matrix<double>>& inputs,
                          const GradcheckOptions& options) {
  std::vector<Matrix<double>> xs = inputs;
  std::vector<Matrix<double>*> points;
  for (auto& x : xs)
    points.push_back(&x);
  const Build build = [&](Tape<double>& tape) {
    std::vector<Tensor<double>> vars;
    for (const auto& x : xs)
      vars.push_back(tape.variable(x));
    return f(tape, vars);
  };
  const Analytic analytic = [&](Tape<double>& tape, const Tensor<double>& out,
                                const Matrix<double>& upstream) {
    tape.backward(out, upstream);
    std::vector<Matrix<double>> grads;
    // The inputs are the first xs.size() nodes of the tape, in order.
    for (std::uint32_t i = 0; i < xs.size(); ++i)
      grads.push_back(tape.handle(i).grad());
    return grads;
  };
  return check(build, analytic, points, options);
}

GradcheckResult gradcheck(const GradcheckParameterFunction& f,
                          std::vector<Parameter<double>> parameters,
                          const GradcheckOptions& options) {
  std::vector<Matrix<double>*> points;
  for (auto& p : parameters)
    points.push_back(&p.value());
  // The check's backward passes overwrite the gradients: the ones the caller had
  // accumulated come back afterwards, also when f throws.
  struct RestoreGrads {
    std::vector<Parameter<double>>& params;
    std::vector<Matrix<double>> saved;
    ~RestoreGrads() {
      for (std::size_t i = 0; i < params.size(); ++i)
        params[i].grad() = saved[i];
    }
  } restore{parameters, {}};
  for (auto& p : parameters)
    restore.saved.push_back(p.grad());
  const Analytic analytic = [&](Tape<double>& tape, const Tensor<double>& out,
                                const Matrix<double>& upstream) {
    for (auto& p : parameters)
      p.zero_grad();
    tape.backward(out, upstream);
    std::vector<Matrix<double>> grads;
    for (auto& p : parameters)
      grads.push_back(p.grad());
    return grads;
  };
  return check(f, analytic, points, options);
}

}  // namespace xgrad
