// The sparse study's averaged network (docs/results-runge.md §6): its cross-validation
// score and the one-standard-error rule that decides which candidates it averages.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "experiments.hpp"

TEST_CASE("cv_score: mean squared error and its standard error") {
  // Errors 1, 2, 3, 6: mean 3, population variance (4 + 1 + 0 + 9) / 4 = 3.5, SE sqrt(3.5/4).
  const runge::CvScore s = runge::cv_score({1.0, 2.0, 3.0, 6.0});
  CHECK(s.mse == doctest::Approx(3.0));
  CHECK(s.se == doctest::Approx(std::sqrt(3.5 / 4.0)));
  const runge::CvScore same = runge::cv_score({0.5, 0.5, 0.5});
  CHECK(same.mse == doctest::Approx(0.5));
  CHECK(same.se == 0.0);
  CHECK(std::isnan(runge::cv_score({}).mse));
}

TEST_CASE("within_one_se keeps the candidates within one SE of the lowest CV MSE") {
  using runge::CvScore;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  // Lowest is index 2 (0.010, SE 0.002): the limit is 0.012.
  const std::vector<CvScore> s = {{0.0125, 0.001}, {0.0118, 0.010}, {0.010, 0.002},
                                  {0.0119, 0.0},   {nan, nan},      {0.5, 1.0}};
  CHECK(runge::within_one_se(s) == std::vector<std::size_t>{1, 2, 3});
  // The SE that counts is the best one's, not each candidate's own.
  CHECK(runge::within_one_se({{0.02, 0.0}, {0.011, 5.0}, {0.010, 0.0}}) ==
        std::vector<std::size_t>{2});
  CHECK(runge::within_one_se({{0.02, 0.001}}) == std::vector<std::size_t>{0});
  CHECK(runge::within_one_se({{nan, 0.1}, {0.1, nan}}).empty());
  CHECK(runge::within_one_se({}).empty());
}
