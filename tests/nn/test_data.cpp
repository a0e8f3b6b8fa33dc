// Data utilities: split, k-fold and bootstrap properties, scalers, one-hot, batches.
#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "message_of.hpp"

#include "xgrad/nn/data.hpp"

using xgrad::Matrix;
using namespace xgrad::nn;

namespace {

std::vector<std::size_t> sorted(std::vector<std::size_t> v) {
  std::sort(v.begin(), v.end());
  return v;
}
}  // namespace

TEST_CASE("permutation is seeded and a permutation") {
  const auto a = permutation(1000, 42);
  CHECK(a == permutation(1000, 42));
  CHECK(a != permutation(1000, 43));
  CHECK(sorted(a) == iota_indices(1000));
  CHECK(a != iota_indices(1000));
}

TEST_CASE("uniform_index covers its range evenly") {
  std::mt19937_64 rng(5);
  std::vector<int> counts(7, 0);
  for (int i = 0; i < 70000; ++i)
    ++counts[uniform_index(rng, 7)];
  // Each count ~ Binomial(70000, 1/7): mean 10000, sd ~93; 6 sd is far outside chance.
  for (int c : counts)
    CHECK(std::abs(c - 10000) < 560);
}

TEST_CASE("train test split is disjoint, covers every row and is seeded") {
  const IndexSplit s = train_test_indices(300, 0.2, 44);
  CHECK(s.test.size() == 60);
  CHECK(s.train.size() == 240);
  std::vector<std::size_t> all = s.train;
  all.insert(all.end(), s.test.begin(), s.test.end());
  CHECK(sorted(all) == iota_indices(300));
  const IndexSplit again = train_test_indices(300, 0.2, 44);
  CHECK(again.train == s.train);
  CHECK(again.test == s.test);
  CHECK(train_test_indices(300, 0.2, 45).test != s.test);
  CHECK(message_of([] { train_test_indices(10, 1.0, 1); }).find("test fraction 1") !=
        std::string::npos);
  // The test set has round(fraction·n) rows: 0.25·10 = 2.5 → 3 and 0.3·9 = 2.7 → 3 (a
  // truncation would give 2; sklearn's ceil gives 3 for both as well).
  CHECK(train_test_indices(10, 0.25, 1).test.size() == 3);
  CHECK(train_test_indices(9, 0.3, 1).test.size() == 3);
  CHECK(train_test_indices(9, 0.3, 1).train.size() == 6);

  Matrix<double> x({10, 2}), y({10, 1});
  for (std::size_t i = 0; i < 10; ++i) {
    x(i, 0) = double(i);
    x(i, 1) = 10.0 * double(i);
    y(i, 0) = -double(i);
  }
  const DataSplit<double> d = train_test_split(x, y, 0.3, 1);
  CHECK(d.x_test.shape(0) == 3);
  CHECK(d.x_train.shape(0) == 7);
  for (std::size_t i = 0; i < 3; ++i) {
    // Rows stay paired: x and y of a sample travel together.
    CHECK(d.y_test(i, 0) == -d.x_test(i, 0));
    CHECK(d.x_test(i, 1) == 10.0 * d.x_test(i, 0));
  }
}

TEST_CASE("k-fold test sets are disjoint, cover every row, and train is the rest") {
  const auto folds = kfold_indices(23, 5, 9);
  REQUIRE(folds.size() == 5);
  std::vector<std::size_t> all_test;
  for (std::size_t f = 0; f < 5; ++f) {
    CHECK(folds[f].test.size() == (f < 3 ? 5u : 4u));  // 23 = 5+5+5+4+4
    std::vector<std::size_t> both = folds[f].train;
    both.insert(both.end(), folds[f].test.begin(), folds[f].test.end());
    CHECK(sorted(both) == iota_indices(23));
    all_test.insert(all_test.end(), folds[f].test.begin(), folds[f].test.end());
  }
  CHECK(sorted(all_test) == iota_indices(23));
  const auto again = kfold_indices(23, 5, 9);
  for (std::size_t f = 0; f < 5; ++f)
    CHECK(again[f].test == folds[f].test);
  CHECK(kfold_indices(23, 5, 10)[0].test != folds[0].test);
  const auto ordered = kfold_indices(6, 3, 0, false);
  CHECK(ordered[1].test == std::vector<std::size_t>{2, 3});
  CHECK(message_of([] { kfold_indices(3, 4, 0); }).find("k = 4") != std::string::npos);
}

TEST_CASE("bootstrap draws n with replacement and lists the out-of-bag rows") {
  const Bootstrap b = bootstrap_indices(1000, std::uint64_t(3));
  CHECK(b.sample.size() == 1000);
  const std::set<std::size_t> distinct(b.sample.begin(), b.sample.end());
  // A resample of n holds ~63.2% distinct rows (1 − 1/e); it must repeat some.
  CHECK(distinct.size() > 580);
  CHECK(distinct.size() < 690);
  CHECK(distinct.size() + b.out_of_bag.size() == 1000);
  for (std::size_t i : b.out_of_bag)
    CHECK(distinct.count(i) == 0);
  CHECK(std::is_sorted(b.out_of_bag.begin(), b.out_of_bag.end()));
  CHECK(bootstrap_indices(1000, std::uint64_t(3)).sample == b.sample);
  CHECK(bootstrap_indices(1000, std::uint64_t(4)).sample != b.sample);
}

TEST_CASE("standard scaler is fitted on training data only and handles constant columns") {
  const Matrix<double> train{{1.0, 5.0, 3.0}, {3.0, 5.0, 5.0}};
  const Matrix<double> test{{5.0, 7.0, 4.0}};
  StandardScaler<double> s;
  const Matrix<double> z = s.fit_transform(train);
  // Column 0: mean 2, std 1; column 1 constant (std 0 → scale 1); column 2: mean 4, std 1.
  CHECK(z(0, 0) == -1.0);
  CHECK(z(1, 0) == 1.0);
  CHECK(z(0, 1) == 0.0);
  CHECK(z(1, 1) == 0.0);
  CHECK(s.scale()[1] == 1.0);
  const Matrix<double> zt = s.transform(test);
  // The test row uses the training mean and std, not its own.
  CHECK(zt(0, 0) == 3.0);
  CHECK(zt(0, 1) == 2.0);
  CHECK(zt(0, 2) == 0.0);
  const Matrix<double> back = s.inverse_transform(zt);
  for (std::size_t c = 0; c < 3; ++c)
    CHECK(back(0, c) == test(0, c));
  StandardScaler<double> unfitted;
  CHECK(message_of([&] { unfitted.transform(test); }).find("before fit") != std::string::npos);
  CHECK(message_of([&] {
          s.transform(Matrix<double>{{1.0, 2.0}});
        }).find("3 columns") != std::string::npos);
}

TEST_CASE("a constant column whose mean rounds is still constant: scale 1, values near 0") {
  // The mean of ten 0.1s is not 0.1 in double: the deviations leave sd 1.4e-17, which a
  // plain sd > 0 test took for a real spread (training values ±1, 0.2 became 7e15).
  Matrix<double> x({10, 1});
  x.fill(0.1);
  StandardScaler<double> s;
  const Matrix<double> z = s.fit_transform(x);
  CHECK(s.scale()[0] == 1.0);
  for (const double v : z)
    CHECK(std::abs(v) < 1e-15);
  CHECK(s.transform(Matrix<double>{{0.2}})(0, 0) == doctest::Approx(0.1));
  // A real spread far below the mean's size is kept (scikit-learn's rule, not a fixed
  // tolerance): 1 ± 1e-9.
  StandardScaler<double> fine;
  fine.fit(Matrix<double>{{1.0 - 1e-9}, {1.0 + 1e-9}});
  CHECK(fine.scale()[0] == doctest::Approx(1e-9).epsilon(1e-6));
}

TEST_CASE("scalers refuse NaN and inf in the data they are fitted on, naming the cell") {
  const double nan = std::nan("");
  StandardScaler<double> s;
  CHECK(message_of([&] {
          s.fit(Matrix<double>{{1.0, 2.0}, {3.0, nan}});
        }) ==
        "StandardScaler::fit: x holds nan at row 1, column 1; a scaler is fitted on finite "
        "data only");
  CHECK_FALSE(s.fitted());
  MinMaxScaler<float> m;
  CHECK(message_of([&] {
          m.fit(Matrix<float>{{1.f}, {INFINITY}});
        }).find("MinMaxScaler::fit: x holds inf at row 1, column 0") != std::string::npos);
}

TEST_CASE("min-max scaler maps the training range onto the target range") {
  const Matrix<float> train{{0.f, 2.f, 1.f}, {10.f, 2.f, 3.f}};
  MinMaxScaler<float> s(-1.0, 1.0);
  const Matrix<float> z = s.fit_transform(train);
  CHECK(z(0, 0) == -1.f);
  CHECK(z(1, 0) == 1.f);
  CHECK(z(0, 1) == -1.f);  // constant column → lo
  const Matrix<float> t = s.transform(Matrix<float>{{5.f, 9.f, 5.f}});
  // −1 + 5·(2/10): exact in reals; with FMA contraction the double result is 5.6e-17.
  CHECK(std::abs(t(0, 0)) < 1e-15f);
  CHECK(t(0, 2) == 3.f);  // outside the training range stays outside: no clipping
  CHECK(message_of([] { MinMaxScaler<float>(1.0, 1.0); }).find("[1, 1]") != std::string::npos);
  // inverse_transform maps [-1, 1] back onto the training range [0, 10]: x = 0 + (z + 1)·5.
  MinMaxScaler<double> d(-1.0, 1.0);
  d.fit(Matrix<double>{{0.0}, {10.0}});
  const Matrix<double> back = d.inverse_transform(Matrix<double>{{-1.0}, {0.0}, {1.0}});
  CHECK(back(0, 0) == 0.0);
  CHECK(back(1, 0) == 5.0);
  CHECK(back(2, 0) == 10.0);
}

TEST_CASE("one-hot puts a one in each label's column") {
  const Matrix<float> h = one_hot<float>(std::vector<std::size_t>{2, 0, 1}, 3);
  CHECK(h.shape(0) == 3);
  CHECK(h(0, 2) == 1.f);
  CHECK(h(1, 0) == 1.f);
  CHECK(h(2, 1) == 1.f);
  float total = 0;
  for (float v : h)
    total += v;
  CHECK(total == 3.f);
  CHECK(one_hot<double>(Matrix<double>{{1.0}, {0.0}}, 2)(0, 1) == 1.0);
  CHECK(message_of([] {
          one_hot<float>(std::vector<std::size_t>{0, 4}, 3);
        }).find("label 4 of row 1") != std::string::npos);
  // A value no size_t holds (the cast was undefined and gave class 0) is refused too.
  CHECK(message_of([] {
          one_hot<double>(Matrix<double>{{0.0}, {1e30}}, 3);
        }) == "one_hot: row 1 holds 1e+30, not a non-negative integer label");
}

TEST_CASE("batch sampler reshuffles one index list in place and covers every row") {
  BatchSampler s(10, 4, true, 123);
  CHECK(s.batches() == 3);
  CHECK(s.batch(2) == std::pair<std::size_t, std::size_t>{8, 10});
  s.new_epoch();
  const std::size_t* storage = s.order().data();
  const std::vector<std::size_t> first = s.order();
  CHECK(sorted(first) == iota_indices(10));
  s.new_epoch();
  CHECK(s.order().data() == storage);  // no new buffer per epoch
  CHECK(s.order() != first);
  CHECK(sorted(s.order()) == iota_indices(10));
  BatchSampler same(10, 4, true, 123);
  same.new_epoch();
  CHECK(same.order() == first);
  BatchSampler whole(10, 0, false, 0);
  CHECK(whole.batches() == 1);
  CHECK(whole.batch_size() == 10);
  CHECK(BatchSampler(5, 10, false, 0).batch_size() == 5);  // a batch larger than n is n
  whole.new_epoch();
  CHECK(whole.order() == iota_indices(10));
}

TEST_CASE("permutation draws every ordering of three rows about equally often") {
  std::map<std::vector<std::size_t>, int> count;
  for (std::uint64_t seed = 0; seed < 6000; ++seed)
    ++count[permutation(3, seed)];
  CHECK(count.size() == 6);  // Fisher-Yates reaches all 3! orderings, the identity too
  for (const auto& [order, c] : count)
    CHECK(c > 800);
}
