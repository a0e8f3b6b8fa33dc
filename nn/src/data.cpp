// Splits, resampling, scalers, one-hot and the minibatch sampler.
#include "xgrad/nn/data.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <sstream>
#include <stdexcept>

#include "class_label.hpp"

namespace xgrad::nn {

std::size_t uniform_index(std::mt19937_64& rng, std::size_t n) {
  if (n == 0) throw std::invalid_argument("uniform_index: empty range");
  // Rejection keeps the draw unbiased: accept only values below the largest multiple
  // of n that fits in 64 bits.
  const std::uint64_t range = static_cast<std::uint64_t>(n);
  const std::uint64_t limit =
      std::numeric_limits<std::uint64_t>::max() - std::numeric_limits<std::uint64_t>::max() % range;
  std::uint64_t x = rng();
  while (x >= limit)
    x = rng();
  return static_cast<std::size_t>(x % range);
}

void shuffle_indices(std::vector<std::size_t>& indices, std::mt19937_64& rng) {
  for (std::size_t i = indices.size(); i > 1; --i) {
    std::swap(indices[i - 1], indices[uniform_index(rng, i)]);
  }
}

std::vector<std::size_t> iota_indices(std::size_t n) {
  std::vector<std::size_t> v(n);
  std::iota(v.begin(), v.end(), std::size_t(0));
  return v;
}

std::vector<std::size_t> permutation(std::size_t n, std::uint64_t seed) {
  std::vector<std::size_t> v = iota_indices(n);
  std::mt19937_64 rng(seed);
  shuffle_indices(v, rng);
  return v;
}

IndexSplit train_test_indices(std::size_t n, double test_fraction, std::uint64_t seed) {
  if (!(test_fraction > 0.0 && test_fraction < 1.0)) {
    std::ostringstream msg;
    msg << "train_test_split: test fraction " << test_fraction << " is outside (0, 1)";
    throw std::invalid_argument(msg.str());
  }
  if (n < 2) {
    throw std::invalid_argument("train_test_split: needs at least 2 rows, got " +
                                std::to_string(n));
  }
  std::size_t n_test = static_cast<std::size_t>(std::llround(test_fraction * double(n)));
  n_test = std::clamp<std::size_t>(n_test, 1, n - 1);
  const std::vector<std::size_t> p = permutation(n, seed);
  IndexSplit s;
  s.test.assign(p.begin(), p.begin() + static_cast<std::ptrdiff_t>(n_test));
  s.train.assign(p.begin() + static_cast<std::ptrdiff_t>(n_test), p.end());
  return s;
}

std::vector<IndexSplit> kfold_indices(std::size_t n, std::size_t k, std::uint64_t seed,
                                      bool shuffle) {
  if (k < 2 || k > n) {
    throw std::invalid_argument("kfold: k = " + std::to_string(k) + " folds for " +
                                std::to_string(n) + " rows (need 2 <= k <= rows)");
  }
  const std::vector<std::size_t> p = shuffle ? permutation(n, seed) : iota_indices(n);
  std::vector<IndexSplit> folds(k);
  // The first n % k folds get one extra row (scikit-learn's KFold layout).
  std::size_t begin = 0;
  for (std::size_t f = 0; f < k; ++f) {
    const std::size_t size = n / k + (f < n % k ? 1 : 0);
    const std::size_t end = begin + size;
    folds[f].test.assign(p.begin() + static_cast<std::ptrdiff_t>(begin),
                         p.begin() + static_cast<std::ptrdiff_t>(end));
    folds[f].train.reserve(n - size);
    folds[f].train.insert(folds[f].train.end(), p.begin(),
                          p.begin() + static_cast<std::ptrdiff_t>(begin));
    folds[f].train.insert(folds[f].train.end(), p.begin() + static_cast<std::ptrdiff_t>(end),
                          p.end());
    begin = end;
  }
  return folds;
}

Bootstrap bootstrap_indices(std::size_t n, std::mt19937_64& rng) {
  if (n == 0) throw std::invalid_argument("bootstrap: no rows");
  Bootstrap b;
  b.sample.resize(n);
  std::vector<char> drawn(n, 0);
  for (std::size_t i = 0; i < n; ++i) {
    b.sample[i] = uniform_index(rng, n);
    drawn[b.sample[i]] = 1;
  }
  for (std::size_t i = 0; i < n; ++i) {
    if (!drawn[i]) b.out_of_bag.push_back(i);
  }
  return b;
}

Bootstrap bootstrap_indices(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  return bootstrap_indices(n, rng);
}

template <class T>
Matrix<T> take_rows(const Matrix<T>& x, const std::vector<std::size_t>& rows) {
  const std::size_t cols = x.shape(1);
  Matrix<T> out({rows.size(), cols});
  const T* in = x.data();
  T* o = out.data();
  for (std::size_t r = 0; r < rows.size(); ++r) {
    if (rows[r] >= x.shape(0)) {
      throw std::out_of_range("take_rows: row index " + std::to_string(rows[r]) +
                              " outside data with " + std::to_string(x.shape(0)) + " rows");
    }
    std::copy(in + rows[r] * cols, in + (rows[r] + 1) * cols, o + r * cols);
  }
  return out;
}

template <class T>
DataSplit<T> train_test_split(const Matrix<T>& x, const Matrix<T>& y, double test_fraction,
                              std::uint64_t seed) {
  if (x.shape(0) != y.shape(0)) {
    throw std::invalid_argument("train_test_split: x is " + shape_string(x) + " but y is " +
                                shape_string(y) + " (row counts differ)");
  }
  const IndexSplit s = train_test_indices(x.shape(0), test_fraction, seed);
  return {take_rows(x, s.train), take_rows(y, s.train), take_rows(x, s.test), take_rows(y, s.test)};
}

// ---------------------------------------------------------------- scalers
namespace {
/// A NaN would make a column's statistics NaN (or be skipped by min/max): refused.
template <class T>
void check_finite_for_fit(const Matrix<T>& x, const char* who) {
  for (std::size_t r = 0; r < x.shape(0); ++r) {
    for (std::size_t c = 0; c < x.shape(1); ++c) {
      if (!std::isfinite(x(r, c))) {
        std::ostringstream msg;
        msg << who << ": x holds " << x(r, c) << " at row " << r << ", column " << c
            << "; a scaler is fitted on finite data only";
        throw std::invalid_argument(msg.str());
      }
    }
  }
}
}  // namespace

template <class T>
StandardScaler<T>& StandardScaler<T>::fit(const Matrix<T>& x) {
  const std::size_t n = x.shape(0), k = x.shape(1);
  if (n == 0) throw std::invalid_argument("StandardScaler::fit: no rows");
  check_finite_for_fit(x, "StandardScaler::fit");
  std::vector<double> mean(k, 0.0), var(k, 0.0);
  for (std::size_t r = 0; r < n; ++r) {
    for (std::size_t c = 0; c < k; ++c)
      mean[c] += static_cast<double>(x(r, c));
  }
  for (double& m : mean)
    m /= static_cast<double>(n);
  // Two passes: the variance from deviations, not E[x²] − E[x]², which cancels badly.
  for (std::size_t r = 0; r < n; ++r) {
    for (std::size_t c = 0; c < k; ++c) {
      const double d = static_cast<double>(x(r, c)) - mean[c];
      var[c] += d * d;
    }
  }
  std::vector<double> scale(k);
  for (std::size_t c = 0; c < k; ++c) {
    const double v = var[c] / static_cast<double>(n);
    // The mean of n equal doubles is not always exact, which leaves a variance of about
    // (n·eps·|mean|)² for a constant column (0.1 ten times: sd 1.4e-17). Below that
    // bound the column counts as constant (scikit-learn's rule), else it would be blown
    // up to ±1 and unseen values to ~1e16.
    const double eps = std::numeric_limits<double>::epsilon();
    const double rounding = static_cast<double>(n) * eps * mean[c];
    scale[c] = v > static_cast<double>(n) * eps * v + rounding * rounding ? std::sqrt(v) : 1.0;
  }
  mean_ = std::move(mean);
  scale_ = std::move(scale);
  return *this;
}

template <class T>
void StandardScaler<T>::check(const Matrix<T>& x, const char* what) const {
  if (!fitted()) throw std::logic_error(std::string("StandardScaler::") + what + " before fit()");
  if (x.shape(1) != mean_.size()) {
    throw std::invalid_argument(std::string("StandardScaler::") + what + ": data is " +
                                shape_string(x) + " but the scaler was fitted on " +
                                std::to_string(mean_.size()) + " columns");
  }
}

template <class T>
Matrix<T> StandardScaler<T>::transform(const Matrix<T>& x) const {
  check(x, "transform");
  Matrix<T> out(x.shape());
  for (std::size_t r = 0; r < x.shape(0); ++r) {
    for (std::size_t c = 0; c < x.shape(1); ++c) {
      out(r, c) = static_cast<T>((static_cast<double>(x(r, c)) - mean_[c]) / scale_[c]);
    }
  }
  return out;
}

template <class T>
Matrix<T> StandardScaler<T>::inverse_transform(const Matrix<T>& z) const {
  check(z, "inverse_transform");
  Matrix<T> out(z.shape());
  for (std::size_t r = 0; r < z.shape(0); ++r) {
    for (std::size_t c = 0; c < z.shape(1); ++c) {
      out(r, c) = static_cast<T>(static_cast<double>(z(r, c)) * scale_[c] + mean_[c]);
    }
  }
  return out;
}

// ---------------------------------------------------------------- MinMaxScaler
template <class T>
MinMaxScaler<T>::MinMaxScaler(double lo, double hi) : lo_(lo), hi_(hi) {
  if (!(lo < hi) || !std::isfinite(lo) || !std::isfinite(hi)) {
    std::ostringstream msg;
    msg << "MinMaxScaler: range [" << lo << ", " << hi << "] is empty or not finite";
    throw std::invalid_argument(msg.str());
  }
}

template <class T>
MinMaxScaler<T>& MinMaxScaler<T>::fit(const Matrix<T>& x) {
  const std::size_t n = x.shape(0), k = x.shape(1);
  if (n == 0) throw std::invalid_argument("MinMaxScaler::fit: no rows");
  check_finite_for_fit(x, "MinMaxScaler::fit");
  std::vector<double> mn(k), mx(k);
  for (std::size_t c = 0; c < k; ++c)
    mn[c] = mx[c] = static_cast<double>(x(0, c));
  for (std::size_t r = 1; r < n; ++r) {
    for (std::size_t c = 0; c < k; ++c) {
      const double v = static_cast<double>(x(r, c));
      mn[c] = std::min(mn[c], v);
      mx[c] = std::max(mx[c], v);
    }
  }
  min_ = std::move(mn);
  max_ = std::move(mx);
  return *this;
}

template <class T>
void MinMaxScaler<T>::check(const Matrix<T>& x, const char* what) const {
  if (!fitted()) throw std::logic_error(std::string("MinMaxScaler::") + what + " before fit()");
  if (x.shape(1) != min_.size()) {
    throw std::invalid_argument(std::string("MinMaxScaler::") + what + ": data is " +
                                shape_string(x) + " but the scaler was fitted on " +
                                std::to_string(min_.size()) + " columns");
  }
}

template <class T>
Matrix<T> MinMaxScaler<T>::transform(const Matrix<T>& x) const {
  check(x, "transform");
  Matrix<T> out(x.shape());
  for (std::size_t c = 0; c < x.shape(1); ++c) {
    const double range = max_[c] - min_[c];
    // A constant column maps to lo (scale 0), not to a division by zero.
    const double s = range > 0.0 ? (hi_ - lo_) / range : 0.0;
    for (std::size_t r = 0; r < x.shape(0); ++r) {
      out(r, c) = static_cast<T>(lo_ + (static_cast<double>(x(r, c)) - min_[c]) * s);
    }
  }
  return out;
}

template <class T>
Matrix<T> MinMaxScaler<T>::inverse_transform(const Matrix<T>& z) const {
  check(z, "inverse_transform");
  Matrix<T> out(z.shape());
  for (std::size_t c = 0; c < z.shape(1); ++c) {
    const double range = max_[c] - min_[c];
    const double s = range / (hi_ - lo_);
    for (std::size_t r = 0; r < z.shape(0); ++r) {
      out(r, c) = static_cast<T>(min_[c] + (static_cast<double>(z(r, c)) - lo_) * s);
    }
  }
  return out;
}

// ---------------------------------------------------------------- one-hot
template <class T>
Matrix<T> one_hot(const std::vector<std::size_t>& labels, std::size_t classes) {
  if (classes == 0) throw std::invalid_argument("one_hot: 0 classes");
  Matrix<T> out = xt::zeros<T>({labels.size(), classes});
  for (std::size_t i = 0; i < labels.size(); ++i) {
    if (labels[i] >= classes) {
      throw std::invalid_argument("one_hot: label " + std::to_string(labels[i]) + " of row " +
                                  std::to_string(i) + " is not below " + std::to_string(classes) +
                                  " classes");
    }
    out(i, labels[i]) = T(1);
  }
  return out;
}

template <class T>
Matrix<T> one_hot(const Matrix<T>& labels, std::size_t classes) {
  if (labels.shape(1) != 1) {
    throw std::invalid_argument("one_hot: labels are " + shape_string(labels) +
                                ", expected one column");
  }
  std::vector<std::size_t> v(labels.shape(0));
  for (std::size_t i = 0; i < v.size(); ++i) {
    const double x = static_cast<double>(labels(i, 0));
    // one_hot<T>(v, classes) then refuses a label >= classes by its value.
    if (!detail::is_class_label(x)) {
      std::ostringstream msg;
      msg << "one_hot: row " << i << " holds " << x << ", not a non-negative integer label";
      throw std::invalid_argument(msg.str());
    }
    v[i] = static_cast<std::size_t>(x);
  }
  return one_hot<T>(v, classes);
}

// ---------------------------------------------------------------- BatchSampler
BatchSampler::BatchSampler(std::size_t n, std::size_t batch_size, bool shuffle, std::uint64_t seed)
    : batch_size_(batch_size == 0 || batch_size > n ? n : batch_size),
      shuffle_(shuffle),
      rng_(seed),
      order_(iota_indices(n)) {
  if (n == 0) throw std::invalid_argument("BatchSampler: no rows");
}

void BatchSampler::new_epoch() {
  if (shuffle_) shuffle_indices(order_, rng_);
}

std::size_t BatchSampler::batches() const {
  return (order_.size() + batch_size_ - 1) / batch_size_;
}

std::pair<std::size_t, std::size_t> BatchSampler::batch(std::size_t b) const {
  if (b >= batches()) {
    throw std::out_of_range("BatchSampler: batch " + std::to_string(b) + " of " +
                            std::to_string(batches()));
  }
  const std::size_t begin = b * batch_size_;
  return {begin, std::min(begin + batch_size_, order_.size())};
}

#define XGRAD_NN_DATA(T)                                                             \
  template Matrix<T> take_rows(const Matrix<T>&, const std::vector<std::size_t>&);   \
  template DataSplit<T> train_test_split(const Matrix<T>&, const Matrix<T>&, double, \
                                         std::uint64_t);                             \
  template class StandardScaler<T>;                                                  \
  template class MinMaxScaler<T>;                                                    \
  template Matrix<T> one_hot(const std::vector<std::size_t>&, std::size_t);          \
  template Matrix<T> one_hot(const Matrix<T>&, std::size_t);
XGRAD_NN_DATA(float)
XGRAD_NN_DATA(double)
#undef XGRAD_NN_DATA

}  // namespace xgrad::nn
