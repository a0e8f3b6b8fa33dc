// Data generation, splits, scaling and resampling of apps/runge.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <set>
#include <stdexcept>

#include "data.hpp"

TEST_CASE("Runge data: seeded, in [-1,1], noise of the requested sigma") {
  runge::DataSpec spec;
  spec.n = 20000;
  spec.noise = 0.05;
  const auto a = runge::generate(spec);
  const auto b = runge::generate(spec);
  CHECK(a.x == b.x);
  CHECK(a.y == b.y);
  CHECK(xt::amin(a.x)() >= -1.0);
  CHECK(xt::amax(a.x)() <= 1.0);
  const auto f = runge::true_function(runge::Function::Runge, a.x);
  const double var = runge::mse(a.y, f);
  CHECK(var == doctest::Approx(0.0025).epsilon(0.05));
  spec.seed = 45;
  CHECK(runge::generate(spec).x != a.x);
  CHECK(runge::runge_function(0.2) == doctest::Approx(0.5));
}

TEST_CASE("equispaced Runge grid and Franke inputs") {
  runge::DataSpec spec;
  spec.n = 5;
  spec.noise = 0;
  spec.equispaced = true;
  const auto d = runge::generate(spec);
  CHECK(d.x(0, 0) == -1.0);
  CHECK(d.x(2, 0) == 0.0);
  CHECK(d.x(4, 0) == 1.0);
  CHECK(d.y(2, 0) == 1.0);
  spec.equispaced = false;
  spec.function = runge::Function::Franke;
  spec.n = 100;
  const auto f = runge::generate(spec);
  REQUIRE(f.x.shape(1) == 2);
  CHECK(xt::amin(f.x)() >= 0.0);
  CHECK(xt::amax(f.x)() <= 1.0);
  // A known value of Franke's function.
  CHECK(runge::franke_function(0.0, 0.0) == doctest::Approx(0.7664206).epsilon(1e-6));
}

TEST_CASE("bad data options are refused with the option's name") {
  runge::DataSpec spec;
  spec.noise = -0.1;
  CHECK_THROWS_WITH_AS(runge::generate(spec), doctest::Contains("--noise"), std::invalid_argument);
  const auto d = runge::generate(runge::DataSpec{});
  CHECK_THROWS_WITH_AS(runge::train_test_split(d, 1.0, 1), doctest::Contains("--test-fraction"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(runge::train_test_split(d, 0.0, 1), doctest::Contains("--test-fraction"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(runge::parse_function("sine"), doctest::Contains("--function"),
                       std::invalid_argument);
}

TEST_CASE("train/test split: sizes, disjoint, seeded") {
  runge::DataSpec spec;
  const auto d = runge::generate(spec);
  const auto s = runge::train_test_split(d, 0.2, 44);
  CHECK(s.train.size() == 240);
  CHECK(s.test.size() == 60);
  std::set<double> train(s.train.x.begin(), s.train.x.end());
  for (double v : s.test.x)
    CHECK(train.count(v) == 0);
  CHECK(runge::train_test_split(d, 0.2, 44).test.x == s.test.x);
  CHECK(runge::train_test_split(d, 0.2, 45).test.x != s.test.x);
}

TEST_CASE("k-fold indices partition the rows, bootstrap draws with replacement") {
  const auto folds = runge::kfold_indices(23, 5, 1);
  REQUIRE(folds.size() == 5);
  std::vector<std::size_t> all;
  for (const auto& f : folds) {
    CHECK((f.size() == 4 || f.size() == 5));
    all.insert(all.end(), f.begin(), f.end());
  }
  std::sort(all.begin(), all.end());
  for (std::size_t i = 0; i < 23; ++i)
    CHECK(all[i] == i);
  CHECK_THROWS_AS(runge::kfold_indices(10, 1, 1), std::invalid_argument);
  std::mt19937_64 rng(5);
  const auto boot = runge::bootstrap_indices(100, rng);
  std::set<std::size_t> unique(boot.begin(), boot.end());
  CHECK(unique.size() < 100);  // ~63 expected
  CHECK(runge::complement(100, boot).size() == 100 - unique.size());
}

TEST_CASE("standard scaler: fitted on one part, applied to another, inverted") {
  runge::Matrix train = {{1.0, 5.0}, {3.0, 5.0}};
  runge::Matrix test = {{2.0, 7.0}};
  runge::StandardScaler s;
  s.fit(train);
  const auto t = s.transform(test);
  CHECK(t(0, 0) == doctest::Approx(0.0));
  CHECK(t(0, 1) == doctest::Approx(2.0));  // constant column keeps scale 1
  const auto back = s.inverse_transform(t);
  CHECK(back(0, 0) == doctest::Approx(2.0));
  CHECK(back(0, 1) == doctest::Approx(7.0));
  const auto tt = s.transform(train);
  CHECK(tt(0, 0) == doctest::Approx(-1.0));
  CHECK(tt(1, 0) == doctest::Approx(1.0));
}

TEST_CASE("metrics: MSE and R2 of a hand-computed example, R2 = 1 for an exact fit") {
  runge::Matrix y = {{1.0}, {2.0}, {3.0}};
  runge::Matrix p = {{1.0}, {2.0}, {4.0}};
  CHECK(runge::mse(p, y) == doctest::Approx(1.0 / 3.0));
  CHECK(runge::r2(p, y) == doctest::Approx(0.5));
  CHECK(runge::r2(y, y) == 1.0);
}

TEST_CASE("metrics: R2 of a constant target is finite (nn::r2's convention)") {
  // SS_tot = 0: the old runge copy gave 1 - x/0 = -inf, or NaN for an exact fit.
  const runge::Matrix y = {{2.0}, {2.0}, {2.0}};
  const runge::Matrix p = {{1.0}, {2.0}, {3.0}};
  CHECK(runge::r2(y, y) == 1.0);
  CHECK(runge::r2(p, y) == 0.0);
  CHECK(std::isfinite(runge::r2(p, y)));
  // One row: R^2 is undefined, NaN (not an exception, not inf).
  const runge::Matrix one = {{1.0}};
  const runge::Matrix two = {{3.0}};
  CHECK(std::isnan(runge::r2(two, one)));
  CHECK_THROWS_AS(runge::r2(p, one), std::invalid_argument);
  CHECK_THROWS_AS(runge::mse(p, one), std::invalid_argument);
}

TEST_CASE("k-fold gives the extra rows to the first folds, as scikit-learn's KFold") {
  const auto folds = runge::kfold_indices(10, 3, 1);
  REQUIRE(folds.size() == 3);
  CHECK(folds[0].size() == 4);
  CHECK(folds[1].size() == 3);
  CHECK(folds[2].size() == 3);
}
