// Metrics over raw buffers, accumulated in double.
#include "xgrad/nn/metrics.hpp"

#include <cmath>
#include <iomanip>
#include <limits>
#include <sstream>
#include <stdexcept>

#include "class_label.hpp"

namespace xgrad::nn {

namespace {

template <class T>
void require_same_shape(const char* what, const Matrix<T>& a, const Matrix<T>& b) {
  if (a.shape(0) != b.shape(0) || a.shape(1) != b.shape(1)) {
    throw std::invalid_argument(std::string(what) + ": prediction is " + shape_string(a) +
                                " but target is " + shape_string(b));
  }
}

}  // namespace

template <class T>
double mse(const Matrix<T>& prediction, const Matrix<T>& target) {
  require_same_shape("mse", prediction, target);
  if (prediction.size() == 0) throw std::invalid_argument("mse: empty matrices");
  const T* p = prediction.data();
  const T* y = target.data();
  double sum = 0;
  for (std::size_t i = 0; i < prediction.size(); ++i) {
    const double d = static_cast<double>(p[i]) - static_cast<double>(y[i]);
    sum += d * d;
  }
  return sum / static_cast<double>(prediction.size());
}

template <class T>
double r2(const Matrix<T>& prediction, const Matrix<T>& target) {
  require_same_shape("r2", prediction, target);
  const std::size_t n = target.shape(0), k = target.shape(1);
  if (n < 2 || k == 0) {
    throw std::invalid_argument("r2: needs at least 2 rows and 1 column, got " +
                                shape_string(target));
  }
  double total = 0;
  for (std::size_t c = 0; c < k; ++c) {
    double mean = 0;
    for (std::size_t r = 0; r < n; ++r)
      mean += static_cast<double>(target(r, c));
    mean /= static_cast<double>(n);
    double ss_res = 0, ss_tot = 0;
    for (std::size_t r = 0; r < n; ++r) {
      const double y = static_cast<double>(target(r, c));
      const double d = y - static_cast<double>(prediction(r, c));
      ss_res += d * d;
      ss_tot += (y - mean) * (y - mean);
    }
    if (ss_tot == 0.0) {
      total += ss_res == 0.0 ? 1.0 : 0.0;
    } else {
      total += 1.0 - ss_res / ss_tot;
    }
  }
  return total / static_cast<double>(k);
}

namespace {
template <class T>
std::string nan_row_message(const char* what, const Matrix<T>& m, std::size_t row) {
  return std::string(what) + ": row " + std::to_string(row) + " of the " + shape_string(m) +
         " predictions holds NaN, which is no class (are the model's parameters finite?)";
}
}  // namespace

template <class T>
std::vector<std::size_t> argmax_rows(const Matrix<T>& m) {
  const std::size_t n = m.shape(0), k = m.shape(1);
  if (k == 0)
    throw std::invalid_argument("argmax_rows: matrix " + shape_string(m) + " has no columns");
  std::vector<std::size_t> out(n);
  const T* p = m.data();
  for (std::size_t r = 0; r < n; ++r) {
    const T* row = p + r * k;
    std::size_t best = 0;
    bool nan = std::isnan(row[0]);
    for (std::size_t c = 1; c < k; ++c) {
      nan |= std::isnan(row[c]);
      if (row[c] > row[best]) best = c;
    }
    // NaN compares false with everything, so it would pass as a class: [NaN, 0.9] was
    // class 0, and a NaN model scored the class-0 share as its accuracy.
    if (nan) throw std::invalid_argument(nan_row_message("argmax_rows", m, r));
    out[r] = best;
  }
  return out;
}

template <class T>
std::vector<std::size_t> labels_of(const Matrix<T>& m, bool binary_threshold) {
  if (m.shape(1) > 1) return argmax_rows(m);
  const std::size_t n = m.shape(0);
  std::vector<std::size_t> out(n);
  for (std::size_t r = 0; r < n; ++r) {
    const double v = static_cast<double>(m(r, 0));
    if (binary_threshold) {
      if (std::isnan(v)) throw std::invalid_argument(nan_row_message("labels_of", m, r));
      out[r] = v >= 0.5 ? 1 : 0;
    } else {
      if (!detail::is_class_label(v)) {
        std::ostringstream msg;
        msg << "labels_of: row " << r << " holds " << v << ", not a class label";
        throw std::invalid_argument(msg.str());
      }
      out[r] = static_cast<std::size_t>(v);
    }
  }
  return out;
}

namespace {
// A one-column target with a one-column prediction is binary (0/1 labels against a
// probability); a one-column target with a wide prediction holds class labels.
template <class T>
std::vector<std::size_t> target_labels(const Matrix<T>& prediction, const Matrix<T>& target,
                                       const char* what) {
  if (prediction.shape(0) != target.shape(0)) {
    throw std::invalid_argument(std::string(what) + ": prediction is " + shape_string(prediction) +
                                " but target is " + shape_string(target) + " (row counts differ)");
  }
  if (target.shape(1) != 1 && target.shape(1) != prediction.shape(1)) {
    throw std::invalid_argument(std::string(what) + ": target " + shape_string(target) +
                                " is neither labels (one column) nor one-hot like the "
                                "prediction " +
                                shape_string(prediction));
  }
  return labels_of(target, false);
}
}  // namespace

template <class T>
double accuracy(const Matrix<T>& prediction, const Matrix<T>& target) {
  return accuracy(prediction, target_labels(prediction, target, "accuracy"));
}

template <class T>
double accuracy(const Matrix<T>& prediction, const std::vector<std::size_t>& labels) {
  if (prediction.shape(0) != labels.size()) {
    throw std::invalid_argument("accuracy: prediction is " + shape_string(prediction) + " but " +
                                std::to_string(labels.size()) + " labels were given");
  }
  if (labels.empty()) throw std::invalid_argument("accuracy: no rows");
  // One column is a binary probability (labels 0 and 1); C columns are C classes.
  const std::size_t classes = std::max<std::size_t>(2, prediction.shape(1));
  for (std::size_t i = 0; i < labels.size(); ++i) {
    if (labels[i] >= classes) {
      throw std::invalid_argument("accuracy: label " + std::to_string(labels[i]) + " at row " +
                                  std::to_string(i) + " is not a class of a " +
                                  shape_string(prediction) + " prediction (0.." +
                                  std::to_string(classes - 1) + ")");
    }
  }
  const std::vector<std::size_t> predicted = labels_of(prediction, true);
  std::size_t right = 0;
  for (std::size_t i = 0; i < labels.size(); ++i)
    right += predicted[i] == labels[i];
  return static_cast<double>(right) / static_cast<double>(labels.size());
}

ConfusionMatrix::ConfusionMatrix(const std::vector<std::size_t>& truth,
                                 const std::vector<std::size_t>& predicted, std::size_t classes)
    : classes_(classes), counts_(classes * classes, 0) {
  if (truth.size() != predicted.size()) {
    throw std::invalid_argument("confusion matrix: " + std::to_string(truth.size()) +
                                " true labels but " + std::to_string(predicted.size()) +
                                " predictions");
  }
  for (std::size_t i = 0; i < truth.size(); ++i) {
    if (truth[i] >= classes || predicted[i] >= classes) {
      throw std::invalid_argument("confusion matrix: sample " + std::to_string(i) +
                                  " has true class " + std::to_string(truth[i]) +
                                  " and predicted class " + std::to_string(predicted[i]) +
                                  ", but there are " + std::to_string(classes) + " classes");
    }
    ++counts_[truth[i] * classes + predicted[i]];
  }
  total_ = truth.size();
}

std::size_t ConfusionMatrix::operator()(std::size_t truth, std::size_t predicted) const {
  if (truth >= classes_ || predicted >= classes_) {
    throw std::out_of_range("confusion matrix: (" + std::to_string(truth) + ", " +
                            std::to_string(predicted) + ") outside " + std::to_string(classes_) +
                            " classes");
  }
  return counts_[truth * classes_ + predicted];
}

double ConfusionMatrix::accuracy() const {
  if (total_ == 0) return std::numeric_limits<double>::quiet_NaN();
  std::size_t diag = 0;
  for (std::size_t c = 0; c < classes_; ++c)
    diag += counts_[c * classes_ + c];
  return static_cast<double>(diag) / static_cast<double>(total_);
}

double ConfusionMatrix::row_fraction(std::size_t truth, std::size_t predicted) const {
  const std::size_t v = (*this)(truth, predicted);
  std::size_t row = 0;
  for (std::size_t c = 0; c < classes_; ++c)
    row += counts_[truth * classes_ + c];
  return row == 0 ? std::numeric_limits<double>::quiet_NaN()
                  : static_cast<double>(v) / static_cast<double>(row);
}

std::string ConfusionMatrix::to_string() const {
  std::ostringstream out;
  out << "true\\pred";
  for (std::size_t c = 0; c < classes_; ++c)
    out << std::setw(8) << c;
  out << '\n';
  for (std::size_t r = 0; r < classes_; ++r) {
    out << std::setw(9) << r;
    for (std::size_t c = 0; c < classes_; ++c)
      out << std::setw(8) << counts_[r * classes_ + c];
    out << '\n';
  }
  return out.str();
}

std::string ConfusionMatrix::to_csv() const {
  std::ostringstream out;
  out << "true";
  for (std::size_t c = 0; c < classes_; ++c)
    out << ",pred_" << c;
  out << '\n';
  for (std::size_t r = 0; r < classes_; ++r) {
    out << r;
    for (std::size_t c = 0; c < classes_; ++c)
      out << ',' << counts_[r * classes_ + c];
    out << '\n';
  }
  return out.str();
}

template <class T>
ConfusionMatrix confusion_matrix(const Matrix<T>& prediction, const Matrix<T>& target) {
  const std::vector<std::size_t> truth = target_labels(prediction, target, "confusion_matrix");
  const std::size_t classes = prediction.shape(1) > 1 ? prediction.shape(1) : 2;
  return ConfusionMatrix(truth, labels_of(prediction, true), classes);
}

MetricKind parse_metric(const std::string& text) {
  if (text == "none") return MetricKind::None;
  if (text == "mse") return MetricKind::Mse;
  if (text == "r2") return MetricKind::R2;
  if (text == "accuracy") return MetricKind::Accuracy;
  throw std::invalid_argument("metric: unknown name '" + text +
                              "' (expected none, mse, r2 or accuracy)");
}

const char* metric_name(MetricKind kind) {
  switch (kind) {
    case MetricKind::None:
      return "none";
    case MetricKind::Mse:
      return "mse";
    case MetricKind::R2:
      return "r2";
    case MetricKind::Accuracy:
      return "accuracy";
  }
  return "?";
}

bool metric_higher_is_better(MetricKind kind) {
  return kind == MetricKind::R2 || kind == MetricKind::Accuracy;
}

template <class T>
double evaluate_metric(MetricKind kind, const Matrix<T>& prediction, const Matrix<T>& target) {
  switch (kind) {
    case MetricKind::None:
      return std::numeric_limits<double>::quiet_NaN();
    case MetricKind::Mse:
      return mse(prediction, target);
    case MetricKind::R2:
      return r2(prediction, target);
    case MetricKind::Accuracy:
      return accuracy(prediction, target);
  }
  return std::numeric_limits<double>::quiet_NaN();
}

#define XGRAD_NN_METRICS(T)                                                      \
  template double mse(const Matrix<T>&, const Matrix<T>&);                       \
  template double r2(const Matrix<T>&, const Matrix<T>&);                        \
  template std::vector<std::size_t> argmax_rows(const Matrix<T>&);               \
  template std::vector<std::size_t> labels_of(const Matrix<T>&, bool);           \
  template double accuracy(const Matrix<T>&, const Matrix<T>&);                  \
  template double accuracy(const Matrix<T>&, const std::vector<std::size_t>&);   \
  template ConfusionMatrix confusion_matrix(const Matrix<T>&, const Matrix<T>&); \
  template double evaluate_metric(MetricKind, const Matrix<T>&, const Matrix<T>&);
XGRAD_NN_METRICS(float)
XGRAD_NN_METRICS(double)
#undef XGRAD_NN_METRICS

}  // namespace xgrad::nn
