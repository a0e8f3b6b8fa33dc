// Metrics on cases whose values are known by hand.
#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "message_of.hpp"

#include "xgrad/nn/metrics.hpp"

using xgrad::Matrix;
using namespace xgrad::nn;

TEST_CASE("mse is the mean of squared differences over all elements") {
  const Matrix<double> p{{1.0, 2.0}, {3.0, 4.0}};
  const Matrix<double> y{{1.0, 0.0}, {4.0, 4.0}};
  CHECK(mse(p, y) == doctest::Approx((0.0 + 4.0 + 1.0 + 0.0) / 4.0).epsilon(1e-15));
  CHECK(message_of([&] { mse(p, Matrix<double>{{1.0}}); }).find("2x2") != std::string::npos);
}

TEST_CASE("r2 is one minus residual over total sum of squares") {
  // y = [1, 2, 3, 4], mean 2.5, SS_tot = 5; p = [1, 2, 3, 5]: SS_res = 1 → R² = 0.8.
  const Matrix<float> y{{1.f}, {2.f}, {3.f}, {4.f}};
  const Matrix<float> p{{1.f}, {2.f}, {3.f}, {5.f}};
  CHECK(r2(p, y) == doctest::Approx(0.8).epsilon(1e-12));
  CHECK(r2(y, y) == 1.0);
  // Predicting the mean gives 0; two columns average (0.8 and 0).
  const Matrix<double> y2{{1, 1}, {2, 2}, {3, 3}, {4, 4}};
  const Matrix<double> p2{{1, 2.5}, {2, 2.5}, {3, 2.5}, {5, 2.5}};
  CHECK(r2(p2, y2) == doctest::Approx(0.4).epsilon(1e-12));
  // A constant target column: 1 when exact, else 0 (no division by zero).
  const Matrix<double> c{{2.0}, {2.0}, {2.0}};
  CHECK(r2(c, c) == 1.0);
  CHECK(r2(Matrix<double>{{2.0}, {2.0}, {2.5}}, c) == 0.0);
}

TEST_CASE("accuracy from argmax against one-hot, labels and binary probabilities") {
  const Matrix<double> scores{{0.1, 0.7, 0.2}, {0.5, 0.3, 0.2}, {0.2, 0.2, 0.6}, {0.0, 0.9, 0.1}};
  const Matrix<double> onehot{{0, 1, 0}, {0, 0, 1}, {0, 0, 1}, {0, 1, 0}};
  CHECK(accuracy(scores, onehot) == 0.75);
  const Matrix<double> labels{{1}, {2}, {2}, {1}};
  CHECK(accuracy(scores, labels) == 0.75);
  CHECK(accuracy(scores, std::vector<std::size_t>{1, 0, 2, 0}) == 0.75);
  CHECK(argmax_rows(scores) == std::vector<std::size_t>{1, 0, 2, 1});
  // Ties go to the first column.
  CHECK(argmax_rows(Matrix<double>{{0.5, 0.5}}) == std::vector<std::size_t>{0});
  const Matrix<float> prob{{0.9f}, {0.4f}, {0.5f}, {0.1f}};
  const Matrix<float> bin{{1.f}, {1.f}, {1.f}, {0.f}};
  CHECK(accuracy(prob, bin) == 0.75);
  CHECK(message_of([&] {
          accuracy(scores, Matrix<double>{{0, 1}, {1, 0}, {0, 1}, {1, 0}});
        }).find("neither labels") != std::string::npos);
  CHECK(message_of([&] {
          accuracy(scores, Matrix<double>{{0.5}, {1}, {2}, {1}});
        }).find("not a class label") != std::string::npos);
  // With a one-column prediction the target is still labels, not thresholded like the
  // prediction: a probability 0.7 as target is refused, not counted as class 1.
  CHECK(message_of([&] { accuracy(Matrix<double>{{0.9}}, Matrix<double>{{0.7}}); }) ==
        "labels_of: row 0 holds 0.7, not a class label");
  // A label the prediction has no column for is refused, as the confusion matrix does.
  CHECK(message_of([&] {
          accuracy(Matrix<double>{{0.1, 0.9}}, std::vector<std::size_t>{7});
        }) == "accuracy: label 7 at row 0 is not a class of a 1x2 prediction (0..1)");
  CHECK(message_of([&] {
          accuracy(prob, std::vector<std::size_t>{1, 1, 2, 0});
        }).find("label 2 at row 2") != std::string::npos);
  // A label too large for size_t once cast to class 0 and counted as right.
  CHECK(message_of([&] {
          accuracy(Matrix<double>{{0.9, 0.1}, {0.9, 0.1}}, Matrix<double>{{1e30}, {0x1p64}});
        }) == "labels_of: row 0 holds 1e+30, not a class label");
}

TEST_CASE("a NaN prediction has no class: accuracy and the confusion matrix refuse it") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  // [NaN, 0.9] used to be class 0 (NaN compares false), so a NaN model scored the share
  // of class 0 as its accuracy.
  const Matrix<double> scores{{0.8, 0.2}, {nan, 0.9}};
  CHECK(message_of([&] {
          accuracy(scores, std::vector<std::size_t>{0, 0});
        }) ==
        "argmax_rows: row 1 of the 2x2 predictions holds NaN, which is no class (are the "
        "model's parameters finite?)");
  CHECK(message_of([&] {
          argmax_rows(Matrix<double>{{0.1, nan}});
        }).find("row 0") != std::string::npos);
  CHECK(message_of([&] {
          confusion_matrix(scores, Matrix<double>{{0}, {1}});
        }).find("holds NaN") != std::string::npos);
  const Matrix<float> prob{{0.9f}, {std::numeric_limits<float>::quiet_NaN()}};
  CHECK(message_of([&] {
          accuracy(prob, Matrix<float>{{1.f}, {0.f}});
        }) ==
        "labels_of: row 1 of the 2x1 predictions holds NaN, which is no class (are the "
        "model's parameters finite?)");
  // Infinities are numbers: the larger wins.
  const double inf = std::numeric_limits<double>::infinity();
  CHECK(argmax_rows(Matrix<double>{{-inf, 2.0}, {inf, 1e300}}) == std::vector<std::size_t>{1, 0});
}

TEST_CASE("confusion matrix counts true against predicted") {
  const ConfusionMatrix cm({0, 0, 1, 1, 2, 2, 2}, {0, 1, 1, 1, 2, 0, 2}, 3);
  CHECK(cm(0, 0) == 1);
  CHECK(cm(0, 1) == 1);
  CHECK(cm(1, 1) == 2);
  CHECK(cm(2, 0) == 1);
  CHECK(cm(2, 2) == 2);
  CHECK(cm(1, 0) == 0);
  CHECK(cm.total() == 7);
  CHECK(cm.accuracy() == doctest::Approx(5.0 / 7.0).epsilon(1e-15));
  CHECK(cm.row_fraction(2, 0) == doctest::Approx(1.0 / 3.0).epsilon(1e-15));
  CHECK(cm.to_csv() == "true,pred_0,pred_1,pred_2\n0,1,1,0\n1,0,2,0\n2,1,0,2\n");
  CHECK(message_of([] {
          ConfusionMatrix({0, 3}, {0, 1}, 3);
        }).find("true class 3") != std::string::npos);
  const Matrix<double> scores{{0.9, 0.1}, {0.2, 0.8}, {0.6, 0.4}};
  const ConfusionMatrix m = confusion_matrix(scores, Matrix<double>{{0}, {1}, {1}});
  CHECK(m.classes() == 2);
  CHECK(m(1, 0) == 1);
  CHECK(m(1, 1) == 1);
  CHECK(m(0, 0) == 1);
}

TEST_CASE("confusion matrix of a one-column probability: classes 0 and 1 split at 0.5") {
  // Predictions 0.2, 0.7, 0.9 are classes 0, 1, 1; truth 0, 1, 0. sklearn's
  // confusion_matrix([0, 1, 0], [0, 1, 1]) is [[1, 1], [0, 1]].
  const ConfusionMatrix m =
      confusion_matrix(Matrix<double>{{0.2}, {0.7}, {0.9}}, Matrix<double>{{0}, {1}, {0}});
  CHECK(m.classes() == 2);
  CHECK(m(0, 0) == 1);
  CHECK(m(0, 1) == 1);
  CHECK(m(1, 0) == 0);
  CHECK(m(1, 1) == 1);
}

TEST_CASE("confusion matrix text: one row per true class, one column per predicted class") {
  // Rows are true labels (row header), columns predictions (column header), as the
  // "true\\pred" corner says; the same layout as to_csv(). The example is asymmetric
  // (true 0 predicted 1 once, true 1 predicted 0 never), so a transposed table differs.
  const ConfusionMatrix cm({0, 0, 1, 1, 2, 2, 2}, {0, 1, 1, 1, 2, 0, 2}, 3);
  CHECK(cm.to_string() ==
        "true\\pred       0       1       2\n"
        "        0       1       1       0\n"
        "        1       0       2       0\n"
        "        2       1       0       2\n");
}

TEST_CASE("metric names parse, and evaluate_metric gives the named metric (NaN for none)") {
  CHECK(parse_metric("none") == MetricKind::None);
  CHECK(parse_metric("mse") == MetricKind::Mse);
  CHECK(parse_metric("r2") == MetricKind::R2);
  CHECK(parse_metric("accuracy") == MetricKind::Accuracy);
  for (const MetricKind k :
       {MetricKind::None, MetricKind::Mse, MetricKind::R2, MetricKind::Accuracy}) {
    CHECK(parse_metric(metric_name(k)) == k);
  }
  CHECK(metric_higher_is_better(MetricKind::R2));
  CHECK(metric_higher_is_better(MetricKind::Accuracy));
  CHECK_FALSE(metric_higher_is_better(MetricKind::Mse));
  CHECK(
      std::isnan(evaluate_metric(MetricKind::None, Matrix<double>{{1.0}}, Matrix<double>{{1.0}})));
  CHECK(message_of([] { parse_metric("f1"); }).find("'f1'") != std::string::npos);
}

TEST_CASE_TEMPLATE("evaluate_metric mse, r2 and accuracy equal their hand-computed values", T,
                   float, double) {
  // mse: differences [0, 2; −1, 0] → (0 + 4 + 1 + 0) / 4 = 1.25.
  const Matrix<T> p{{T(1), T(2)}, {T(3), T(4)}};
  const Matrix<T> y{{T(1), T(0)}, {T(4), T(4)}};
  CHECK(evaluate_metric(MetricKind::Mse, p, y) == 1.25);
  // r2: y = [1, 2, 3, 4], mean 2.5, SS_tot = 5; p = [1, 2, 3, 5], SS_res = 1 → 1 − 1/5 = 0.8.
  const Matrix<T> ry{{T(1)}, {T(2)}, {T(3)}, {T(4)}};
  const Matrix<T> rp{{T(1)}, {T(2)}, {T(3)}, {T(5)}};
  CHECK(evaluate_metric(MetricKind::R2, rp, ry) == doctest::Approx(0.8).epsilon(1e-12));
  // accuracy: argmax rows [1, 0, 2, 1] against classes [1, 2, 2, 1] → 3 of 4.
  const Matrix<T> scores{{T(0.1), T(0.7), T(0.2)},
                         {T(0.5), T(0.3), T(0.2)},
                         {T(0.2), T(0.2), T(0.6)},
                         {T(0.0), T(0.9), T(0.1)}};
  const Matrix<T> onehot{
      {T(0), T(1), T(0)}, {T(0), T(0), T(1)}, {T(0), T(0), T(1)}, {T(0), T(1), T(0)}};
  CHECK(evaluate_metric(MetricKind::Accuracy, scores, onehot) == 0.75);
}
