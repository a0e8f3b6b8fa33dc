// Evaluation metrics on plain matrices (no tape): MSE, R², accuracy, confusion matrix.
// Every function checks shapes and throws std::invalid_argument naming both.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "xgrad/tape.hpp"

namespace xgrad::nn {

/// Mean over all elements of (prediction − target)², in double.
template <class T>
double mse(const Matrix<T>& prediction, const Matrix<T>& target);

/// Coefficient of determination 1 − SS_res / SS_tot per output column, averaged over
/// the columns (scikit-learn's r2_score, multioutput="uniform_average"). A column whose
/// target is constant scores 1 when predicted exactly and 0 otherwise (scikit-learn's
/// force_finite convention), instead of dividing by zero.
template <class T>
double r2(const Matrix<T>& prediction, const Matrix<T>& target);

/// Index of the largest element of each row (the first one on ties; +-inf count as
/// numbers). A row with a NaN has no largest element: std::invalid_argument names it, so
/// accuracy and the confusion matrix refuse non-finite predictions too.
template <class T>
std::vector<std::size_t> argmax_rows(const Matrix<T>& m);

/// Class labels of predictions or targets: the row argmax of an [n, K > 1] matrix
/// (probabilities, logits or one-hot), or for one column [n, 1] the label itself when
/// `binary_threshold` is false, else 1 when the value is >= 0.5 (a sigmoid output).
template <class T>
std::vector<std::size_t> labels_of(const Matrix<T>& m, bool binary_threshold);

/// Fraction of rows whose predicted class equals the target class. `prediction` is
/// [n, K] scores (argmax) or [n, 1] probabilities (threshold 0.5); `target` is one-hot
/// [n, K] or labels [n, 1].
template <class T>
double accuracy(const Matrix<T>& prediction, const Matrix<T>& target);
/// The same against a label vector.
template <class T>
double accuracy(const Matrix<T>& prediction, const std::vector<std::size_t>& labels);

/// Counts of (true class, predicted class): row = true, column = predicted.
class ConfusionMatrix {
 public:
  ConfusionMatrix(const std::vector<std::size_t>& truth, const std::vector<std::size_t>& predicted,
                  std::size_t classes);
  std::size_t classes() const { return classes_; }
  std::size_t operator()(std::size_t truth, std::size_t predicted) const;
  std::size_t total() const { return total_; }
  /// Sum of the diagonal over the total.
  double accuracy() const;
  /// Entry as a fraction of its true class's row (report 000 Figure 10 in percent).
  double row_fraction(std::size_t truth, std::size_t predicted) const;
  /// A text table, counts, with row and column headers.
  std::string to_string() const;
  /// CSV: header "true,pred_0,...,pred_{K-1}", one row per true class.
  std::string to_csv() const;

 private:
  std::size_t classes_;
  std::size_t total_ = 0;
  std::vector<std::size_t> counts_;
};

/// Confusion matrix of predictions against targets (both as in accuracy()); the number
/// of classes is the prediction's width, or 2 for a single column.
template <class T>
ConfusionMatrix confusion_matrix(const Matrix<T>& prediction, const Matrix<T>& target);

/// The metric a trainer reports next to the loss each epoch.
enum class MetricKind { None, Mse, R2, Accuracy };
/// "none", "mse", "r2", "accuracy"; throws std::invalid_argument otherwise.
MetricKind parse_metric(const std::string& text);
const char* metric_name(MetricKind kind);
/// True when larger is better (R², accuracy).
bool metric_higher_is_better(MetricKind kind);
/// The metric's value; NaN for MetricKind::None.
template <class T>
double evaluate_metric(MetricKind kind, const Matrix<T>& prediction, const Matrix<T>& target);

}  // namespace xgrad::nn
