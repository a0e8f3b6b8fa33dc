// Data utilities: seeded splits and resampling, scalers, one-hot, and minibatch
// iteration through an index permutation (the data set is never copied per epoch: a
// batch is gathered straight onto the tape with Tape::gather_rows).
//
// Every random choice draws from std::mt19937_64 through uniform_index() below, whose
// output is fixed by this file rather than by the standard library's distributions
// (those differ between implementations), so a seed means the same split everywhere.
#pragma once

#include <cstddef>
#include <cstdint>
#include <random>
#include <utility>
#include <vector>

#include "xgrad/tape.hpp"

namespace xgrad::nn {

/// Uniform integer in [0, n) from rng, unbiased (rejection), n >= 1.
std::size_t uniform_index(std::mt19937_64& rng, std::size_t n);
/// Fisher-Yates shuffle of `indices` in place.
void shuffle_indices(std::vector<std::size_t>& indices, std::mt19937_64& rng);
/// 0, 1, ..., n-1.
std::vector<std::size_t> iota_indices(std::size_t n);
/// A seeded random permutation of 0..n-1.
std::vector<std::size_t> permutation(std::size_t n, std::uint64_t seed);

/// Row indices of a split; disjoint, and together every row once.
struct IndexSplit {
  std::vector<std::size_t> train;
  std::vector<std::size_t> test;
};

/// Shuffles 0..n-1 with `seed` and puts round(test_fraction·n) rows in test (at least
/// one row on each side). Throws unless 0 < test_fraction < 1 and n >= 2.
IndexSplit train_test_indices(std::size_t n, double test_fraction, std::uint64_t seed);

/// k folds of 0..n-1: fold i's test rows are the i-th of k nearly equal contiguous
/// chunks of a seeded permutation (sizes differ by at most one), its train rows the
/// rest. Test sets are disjoint and cover every row once. shuffle = false keeps the
/// original order. Throws unless 2 <= k <= n.
std::vector<IndexSplit> kfold_indices(std::size_t n, std::size_t k, std::uint64_t seed,
                                      bool shuffle = true);

/// n draws with replacement from 0..n-1 (a bootstrap resample), and the out-of-bag rows
/// (never drawn) in increasing order.
struct Bootstrap {
  std::vector<std::size_t> sample;
  std::vector<std::size_t> out_of_bag;
};
Bootstrap bootstrap_indices(std::size_t n, std::mt19937_64& rng);
Bootstrap bootstrap_indices(std::size_t n, std::uint64_t seed);

/// The listed rows of x, in that order (a copy; for splits, not for minibatches).
template <class T>
Matrix<T> take_rows(const Matrix<T>& x, const std::vector<std::size_t>& rows);

template <class T>
struct DataSplit {
  Matrix<T> x_train, y_train, x_test, y_test;
};
/// train_test_indices applied to x and y (same row count, else std::invalid_argument).
template <class T>
DataSplit<T> train_test_split(const Matrix<T>& x, const Matrix<T>& y, double test_fraction,
                              std::uint64_t seed);

/// Per-column (x − mean) / std, std the population standard deviation (ddof = 0,
/// as scikit-learn). fit() on training data only; transform() then applies the same
/// mean and std to any data. A constant column has std 0; its scale is set to 1 so it
/// maps to 0 instead of dividing by zero (scikit-learn's convention).
template <class T>
class StandardScaler {
 public:
  StandardScaler& fit(const Matrix<T>& x);
  Matrix<T> transform(const Matrix<T>& x) const;
  Matrix<T> fit_transform(const Matrix<T>& x) { return fit(x).transform(x); }
  Matrix<T> inverse_transform(const Matrix<T>& z) const;
  bool fitted() const { return !mean_.empty(); }
  const std::vector<double>& mean() const { return mean_; }
  /// The divisor per column (std, or 1 for a constant column).
  const std::vector<double>& scale() const { return scale_; }

 private:
  void check(const Matrix<T>& x, const char* what) const;
  std::vector<double> mean_, scale_;
};

/// Per-column affine map of the training range [min, max] onto [lo, hi]. A constant
/// column (max = min) maps to lo. fit() on training data only.
template <class T>
class MinMaxScaler {
 public:
  explicit MinMaxScaler(double lo = 0.0, double hi = 1.0);
  MinMaxScaler& fit(const Matrix<T>& x);
  Matrix<T> transform(const Matrix<T>& x) const;
  Matrix<T> fit_transform(const Matrix<T>& x) { return fit(x).transform(x); }
  Matrix<T> inverse_transform(const Matrix<T>& z) const;
  bool fitted() const { return !min_.empty(); }
  const std::vector<double>& data_min() const { return min_; }
  const std::vector<double>& data_max() const { return max_; }

 private:
  void check(const Matrix<T>& x, const char* what) const;
  double lo_, hi_;
  std::vector<double> min_, max_;
};

/// [n, classes] with a 1 in column labels[i] of row i; throws naming the first label
/// >= classes.
template <class T>
Matrix<T> one_hot(const std::vector<std::size_t>& labels, std::size_t classes);
/// The same from a one-column matrix of integer labels.
template <class T>
Matrix<T> one_hot(const Matrix<T>& labels, std::size_t classes);

/// Minibatches over n rows through an index permutation that is reshuffled in place
/// each epoch (no allocation after construction). Batch b covers positions
/// [b·size, min((b+1)·size, n)) of order(); the last batch is smaller when size does
/// not divide n. Feed it to Tape::gather_rows(data, order(), begin, end).
class BatchSampler {
 public:
  /// batch_size 0 means one batch of all n rows.
  BatchSampler(std::size_t n, std::size_t batch_size, bool shuffle, std::uint64_t seed);
  /// Reshuffles the order (when shuffling) for the next epoch.
  void new_epoch();
  std::size_t rows() const { return order_.size(); }
  std::size_t batch_size() const { return batch_size_; }
  std::size_t batches() const;
  /// [begin, end) of batch b within order().
  std::pair<std::size_t, std::size_t> batch(std::size_t b) const;
  const std::vector<std::size_t>& order() const { return order_; }

 private:
  std::size_t batch_size_;
  bool shuffle_;
  std::mt19937_64 rng_;
  std::vector<std::size_t> order_;
};

}  // namespace xgrad::nn
