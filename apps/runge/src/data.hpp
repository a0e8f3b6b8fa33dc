// Data of the regression study: the Runge function of reports 000-002, the Franke
// function of report 003, seeded noise, splits, scaling and resampling indices.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include <xtensor/xtensor.hpp>

namespace runge {

using Matrix = xt::xtensor<double, 2>;

enum class Function { Runge, Franke };

/// "runge" or "franke"; throws std::invalid_argument naming the text otherwise.
Function parse_function(const std::string& text);
const char* function_name(Function f);

/// f(x) = 1 / (1 + 25 x^2) (reports 000-002).
double runge_function(double x);
/// Franke's test function on [0,1]^2 (report 003, Franke 1979).
double franke_function(double x, double y);

struct DataSpec {
  Function function = Function::Runge;
  std::size_t n = 300;      // report 000: 300 points
  double noise = 0.05;      // sigma of the Gaussian noise (report 000: 0.05)
  std::uint64_t seed = 44;  // report 000 used random_state 44 for its split
  bool equispaced = false;  // grid instead of uniform draws (Runge only: n points on [-1,1])
};

/// x [n, d] (d = 1 for Runge on [-1,1], 2 for Franke on [0,1]^2) and y [n, 1].
struct Dataset {
  Matrix x;
  Matrix y;
  std::size_t size() const { return x.shape(0); }
};

/// Throws std::invalid_argument naming the option for impossible values
/// (--noise negative, --points < 2).
void validate(const DataSpec& spec);
Dataset generate(const DataSpec& spec);
/// The noiseless target at the inputs x (for the fresh test sets of the noise floor).
Matrix true_function(Function f, const Matrix& x);

/// Rows `rows` of d, in that order.
Dataset subset(const Dataset& d, const std::vector<std::size_t>& rows);

struct Split {
  Dataset train;
  Dataset test;
};
/// A seeded shuffle, then the last round(test_fraction * n) rows are the test part.
/// test_fraction must lie in (0, 1) and leave at least one point on each side.
Split train_test_split(const Dataset& d, double test_fraction, std::uint64_t seed);

/// k folds of a seeded permutation of 0..n-1; fold i is the validation part of round i.
std::vector<std::vector<std::size_t>> kfold_indices(std::size_t n, std::size_t k,
                                                    std::uint64_t seed);
/// n indices drawn with replacement (one bootstrap resample).
std::vector<std::size_t> bootstrap_indices(std::size_t n, std::mt19937_64& rng);
/// The indices 0..n-1 not in `chosen` (out-of-bag rows of a bootstrap resample).
std::vector<std::size_t> complement(std::size_t n, const std::vector<std::size_t>& chosen);

/// Column-wise standard scaling, fitted on the training part only. A constant column
/// keeps scale 1 so that transform() never divides by zero.
struct StandardScaler {
  xt::xtensor<double, 1> mean;
  xt::xtensor<double, 1> scale;
  bool with_std = true;  // false: centre only (report 003 subtracts the training mean)

  void fit(const Matrix& m);
  Matrix transform(const Matrix& m) const;
  Matrix inverse_transform(const Matrix& m) const;
  bool fitted() const { return mean.size() > 0; }
};

// ---- metrics (report 000 eq. 16; R^2 as in sklearn's r2_score) ----
/// xgrad::nn::mse.
double mse(const Matrix& prediction, const Matrix& target);
/// xgrad::nn::r2: 1 - SS_res / SS_tot, SS_tot about the target's own mean; a constant
/// target scores 1 when predicted exactly, else 0 (never inf or NaN). NaN for one row.
double r2(const Matrix& prediction, const Matrix& target);

}  // namespace runge
