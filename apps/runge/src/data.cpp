#include "data.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <stdexcept>

#include <xgrad/nn/metrics.hpp>

namespace runge {

Function parse_function(const std::string& text) {
  if (text == "runge") return Function::Runge;
  if (text == "franke") return Function::Franke;
  throw std::invalid_argument("--function: unknown function '" + text +
                              "' (expected runge or franke)");
}

const char* function_name(Function f) {
  return f == Function::Runge ? "runge" : "franke";
}

double runge_function(double x) {
  return 1.0 / (1.0 + 25.0 * x * x);
}

double franke_function(double x, double y) {
  const double a = 0.75 * std::exp(-std::pow(9 * x - 2, 2) / 4.0 - std::pow(9 * y - 2, 2) / 4.0);
  const double b = 0.75 * std::exp(-std::pow(9 * x + 1, 2) / 49.0 - (9 * y + 1) / 10.0);
  const double c = 0.5 * std::exp(-std::pow(9 * x - 7, 2) / 4.0 - std::pow(9 * y - 3, 2) / 4.0);
  const double d = -0.2 * std::exp(-std::pow(9 * x - 4, 2) - std::pow(9 * y - 7, 2));
  return a + b + c + d;
}

void validate(const DataSpec& spec) {
  if (!(spec.noise >= 0.0) || !std::isfinite(spec.noise))
    throw std::invalid_argument("--noise must be a finite number >= 0, got " +
                                std::to_string(spec.noise));
  if (spec.n < 2) throw std::invalid_argument("--points must be at least 2");
  if (spec.equispaced && spec.function == Function::Franke)
    throw std::invalid_argument("--equispaced applies to --function runge only");
}

Matrix true_function(Function f, const Matrix& x) {
  Matrix y({x.shape(0), 1});
  for (std::size_t i = 0; i < x.shape(0); ++i)
    y(i, 0) = f == Function::Runge ? runge_function(x(i, 0)) : franke_function(x(i, 0), x(i, 1));
  return y;
}

Dataset generate(const DataSpec& spec) {
  validate(spec);
  std::mt19937_64 rng(spec.seed);
  const std::size_t d = spec.function == Function::Runge ? 1 : 2;
  Dataset out;
  out.x = Matrix({spec.n, d});
  if (spec.function == Function::Runge) {
    std::uniform_real_distribution<double> u(-1.0, 1.0);
    for (std::size_t i = 0; i < spec.n; ++i)
      out.x(i, 0) = spec.equispaced ? -1.0 + 2.0 * double(i) / double(spec.n - 1) : u(rng);
  } else {
    std::uniform_real_distribution<double> u(0.0, 1.0);
    for (std::size_t i = 0; i < spec.n; ++i) {
      out.x(i, 0) = u(rng);
      out.x(i, 1) = u(rng);
    }
  }
  out.y = true_function(spec.function, out.x);
  // Noise is drawn after every input so that the inputs of a seed do not depend on sigma.
  std::normal_distribution<double> noise(0.0, 1.0);
  for (std::size_t i = 0; i < spec.n; ++i)
    out.y(i, 0) += spec.noise * noise(rng);
  return out;
}

Dataset subset(const Dataset& d, const std::vector<std::size_t>& rows) {
  Dataset out;
  out.x = Matrix({rows.size(), d.x.shape(1)});
  out.y = Matrix({rows.size(), d.y.shape(1)});
  for (std::size_t r = 0; r < rows.size(); ++r) {
    if (rows[r] >= d.size()) throw std::out_of_range("subset: row index out of range");
    for (std::size_t c = 0; c < d.x.shape(1); ++c)
      out.x(r, c) = d.x(rows[r], c);
    for (std::size_t c = 0; c < d.y.shape(1); ++c)
      out.y(r, c) = d.y(rows[r], c);
  }
  return out;
}

// Separate from nn::permutation: that one draws with rejection sampling (another random
// stream), so the published splits, folds and results would change.
static std::vector<std::size_t> permutation(std::size_t n, std::uint64_t seed) {
  std::vector<std::size_t> idx(n);
  std::iota(idx.begin(), idx.end(), std::size_t(0));
  std::mt19937_64 rng(seed);
  // Fisher-Yates with our own index draw: std::shuffle's use of the engine is
  // implementation-defined, this is the same on every standard library.
  for (std::size_t i = n; i > 1; --i) {
    const std::size_t j = static_cast<std::size_t>(rng() % i);
    std::swap(idx[i - 1], idx[j]);
  }
  return idx;
}

// Separate from nn::train_test_split: other draws (see permutation) and the test part is
// the tail of the permutation here, the head there; reusing it would change every split.
Split train_test_split(const Dataset& d, double test_fraction, std::uint64_t seed) {
  if (!(test_fraction > 0.0 && test_fraction < 1.0))
    throw std::invalid_argument("--test-fraction must lie strictly between 0 and 1, got " +
                                std::to_string(test_fraction));
  const std::size_t n = d.size();
  const auto n_test = static_cast<std::size_t>(std::llround(test_fraction * double(n)));
  if (n_test < 1 || n_test >= n)
    throw std::invalid_argument("--test-fraction " + std::to_string(test_fraction) + " of " +
                                std::to_string(n) + " points leaves an empty train or test part");
  const auto idx = permutation(n, seed);
  std::vector<std::size_t> train(idx.begin(), idx.end() - static_cast<std::ptrdiff_t>(n_test));
  std::vector<std::size_t> test(idx.end() - static_cast<std::ptrdiff_t>(n_test), idx.end());
  return {subset(d, train), subset(d, test)};
}

// Separate from nn::kfold_indices: other permutation draws (see permutation), so the
// published cross-validation folds would change.
std::vector<std::vector<std::size_t>> kfold_indices(std::size_t n, std::size_t k,
                                                    std::uint64_t seed) {
  if (k < 2 || k > n)
    throw std::invalid_argument("--folds must lie in [2, number of points], got " +
                                std::to_string(k));
  const auto idx = permutation(n, seed);
  std::vector<std::vector<std::size_t>> folds(k);
  // The first n % k folds get one extra row, as sklearn's KFold does.
  std::size_t start = 0;
  for (std::size_t f = 0; f < k; ++f) {
    const std::size_t len = n / k + (f < n % k ? 1 : 0);
    folds[f].assign(idx.begin() + static_cast<std::ptrdiff_t>(start),
                    idx.begin() + static_cast<std::ptrdiff_t>(start + len));
    start += len;
  }
  return folds;
}

// Separate from nn::bootstrap_indices: rng() % n here, rejection sampling there (other
// draws, so the published bootstrap numbers would change).
std::vector<std::size_t> bootstrap_indices(std::size_t n, std::mt19937_64& rng) {
  std::vector<std::size_t> out(n);
  for (auto& i : out)
    i = static_cast<std::size_t>(rng() % n);
  return out;
}

std::vector<std::size_t> complement(std::size_t n, const std::vector<std::size_t>& chosen) {
  std::vector<char> in(n, 0);
  for (auto i : chosen)
    in.at(i) = 1;
  std::vector<std::size_t> out;
  for (std::size_t i = 0; i < n; ++i)
    if (!in[i]) out.push_back(i);
  return out;
}

// Separate from nn::StandardScaler: it has the centre-only mode (with_std = false) of
// report 003 and xtensor members the linear baselines use; nn's has neither.
void StandardScaler::fit(const Matrix& m) {
  const std::size_t n = m.shape(0), c = m.shape(1);
  if (n == 0) throw std::invalid_argument("StandardScaler::fit: no rows");
  mean = xt::zeros<double>({c});
  scale = xt::ones<double>({c});
  for (std::size_t j = 0; j < c; ++j) {
    double s = 0;
    for (std::size_t i = 0; i < n; ++i)
      s += m(i, j);
    mean(j) = s / double(n);
    if (!with_std) continue;
    double v = 0;
    for (std::size_t i = 0; i < n; ++i)
      v += (m(i, j) - mean(j)) * (m(i, j) - mean(j));
    // Population standard deviation, as sklearn's StandardScaler.
    const double sd = std::sqrt(v / double(n));
    scale(j) = sd > 1e-300 ? sd : 1.0;
  }
}

Matrix StandardScaler::transform(const Matrix& m) const {
  if (m.shape(1) != mean.size())
    throw std::invalid_argument("StandardScaler::transform: column count differs from fit");
  Matrix out(m.shape());
  for (std::size_t i = 0; i < m.shape(0); ++i)
    for (std::size_t j = 0; j < m.shape(1); ++j)
      out(i, j) = (m(i, j) - mean(j)) / scale(j);
  return out;
}

Matrix StandardScaler::inverse_transform(const Matrix& m) const {
  if (m.shape(1) != mean.size())
    throw std::invalid_argument("StandardScaler::inverse_transform: column count differs");
  Matrix out(m.shape());
  for (std::size_t i = 0; i < m.shape(0); ++i)
    for (std::size_t j = 0; j < m.shape(1); ++j)
      out(i, j) = m(i, j) * scale(j) + mean(j);
  return out;
}

double mse(const Matrix& prediction, const Matrix& target) {
  return xgrad::nn::mse(prediction, target);
}

double r2(const Matrix& prediction, const Matrix& target) {
  // R^2 of a single row is undefined (scikit-learn warns and gives NaN); nn::r2 throws.
  if (target.shape(0) < 2 && prediction.shape() == target.shape())
    return std::numeric_limits<double>::quiet_NaN();
  return xgrad::nn::r2(prediction, target);
}

}  // namespace runge
