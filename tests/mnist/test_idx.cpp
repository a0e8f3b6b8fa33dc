// The IDX reader: the regression corpus of bad files, and the real MNIST.
#include <doctest/doctest.h>

#include <sys/stat.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <numeric>
#include <sstream>
#include <stdexcept>
#include <string>

#include "idx.hpp"
#include "require_mnist.hpp"

using namespace xgrad::mnist;
using xgrad::mnist::testing::require_mnist;

namespace {

const TrainTest& mnist() {
  static const TrainTest data = load_dir(XGRAD_MNIST_DIR, "MNIST", "(test data)");
  return data;
}

// Reads a corpus file as the manifest says: "images" (MNIST images), "labels", or
// "any" (generic IDX). Returns "OK" or the error message.
std::string outcome(const std::string& file, const std::string& kind) {
  const std::string path = std::string(XGRAD_MNIST_CORPUS) + "/" + file;
  try {
    if (kind == "images") {
      read_images(path);
    } else if (kind == "labels") {
      read_labels(path);
    } else {
      read_idx(path, IdxExpect{});
    }
    return "OK";
  } catch (const std::runtime_error& e) {
    return e.what();
  }
}

}  // namespace

TEST_CASE("every file of the bad-IDX corpus gives its error, naming the file") {
  std::ifstream manifest(std::string(XGRAD_MNIST_CORPUS) + "/EXPECTED.tsv");
  REQUIRE(manifest);
  std::string line;
  int cases = 0, bad = 0;
  while (std::getline(manifest, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields(line);
    std::string file, kind, expected;
    std::getline(fields, file, '\t');
    std::getline(fields, kind, '\t');
    std::getline(fields, expected);
    CAPTURE(file);
    const std::string got = outcome(file, kind);
    if (expected == "OK") {
      CHECK(got == "OK");
    } else {
      ++bad;
      CHECK(got.find(expected) != std::string::npos);
      CHECK(got.find(file) != std::string::npos);  // the message names the file
    }
    ++cases;
  }
  CHECK(cases >= 29);
  CHECK(bad >= 25);
}

TEST_CASE("parse_idx reads raw and gzip bytes to the same array") {
  const std::uint8_t raw[] = {0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 4, 5, 6};
  const IdxArray a = parse_idx(raw, sizeof raw, "mem", IdxExpect{});
  CHECK(a.dims == std::vector<std::uint32_t>{2, 3});
  CHECK(a.data == std::vector<std::uint8_t>{1, 2, 3, 4, 5, 6});
  IdxExpect tight;
  tight.max_bytes = 5;
  CHECK_THROWS_WITH_AS(parse_idx(raw, sizeof raw, "mem", tight),
                       doctest::Contains("more than the limit of 5 bytes"), std::runtime_error);
}

TEST_CASE("a missing data set says how to get it") {
  CHECK_THROWS_WITH_AS(load_dir("/nonexistent/mnist", "MNIST", "Run download_mnist.sh."),
                       doctest::Contains("MNIST not found: /nonexistent/mnist/train-images"),
                       std::runtime_error);
  CHECK_THROWS_WITH_AS(read_images("/nonexistent/x.idx"), doctest::Contains("cannot open"),
                       std::runtime_error);
}

TEST_CASE("real MNIST: shapes, label counts and pixel mean") {
  require_mnist();
  const TrainTest& d = mnist();
  CHECK(d.train.size() == 60000);
  CHECK(d.test.size() == 10000);
  CHECK(d.train.images.rows == 28);
  CHECK(d.train.images.cols == 28);
  CHECK(d.train.images.pixels.size() == 60000u * 784u);
  CHECK(d.test.images.pixels.size() == 10000u * 784u);
  std::size_t counts[10] = {};
  for (auto l : d.train.labels)
    ++counts[l];
  const std::size_t expected[10] = {5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949};
  for (int k = 0; k < 10; ++k) {
    CAPTURE(k);
    CHECK(counts[k] == expected[k]);
  }
  std::size_t test_counts[10] = {};
  for (auto l : d.test.labels)
    ++test_counts[l];
  CHECK(test_counts[0] == 980);
  CHECK(test_counts[9] == 1009);
  // Sum in 64 bits: the uint8 sum overflows int (../shared/DESIGN.md §6).
  const double mean =
      double(std::accumulate(d.train.images.pixels.begin(), d.train.images.pixels.end(), 0ull)) /
      double(d.train.images.pixels.size());
  CHECK(mean == doctest::Approx(33.318).epsilon(1e-4));
  CHECK(d.train.labels[0] == 5);  // the famous first training digit
  CHECK(d.test.labels[0] == 7);
}

TEST_CASE("validation split: held-out training items replace the test set, disjoint and seeded") {
  // Ten 1x2 "images" whose pixels are their index: every item can be traced.
  TrainTest data;
  data.name = "toy";
  data.train.images.rows = 1;
  data.train.images.cols = 2;
  data.train.images.count = 10;
  for (std::uint8_t i = 0; i < 10; ++i) {
    data.train.images.pixels.insert(data.train.images.pixels.end(), {i, i});
    data.train.labels.push_back(std::uint8_t(i % 10));
  }
  data.test = data.train;  // must not survive: the split scores on held-out training items
  const TrainTest v = validation_split(data, 3, 42);
  CHECK(v.name == "toy (validation: 3 held-out training images)");
  REQUIRE(v.train.size() == 7);
  REQUIRE(v.test.size() == 3);
  std::vector<int> seen;
  for (const LabelledSet* s : {&v.train, &v.test})
    for (std::size_t k = 0; k < s->size(); ++k) {
      CHECK(s->images.pixels[2 * k] == s->labels[k]);  // pixels and label moved together
      seen.push_back(s->labels[k]);
    }
  std::sort(seen.begin(), seen.end());
  CHECK(seen == std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});        // a partition of the 10
  CHECK(std::is_sorted(v.train.labels.begin(), v.train.labels.end()));  // training keeps order
  CHECK(validation_split(data, 3, 42).test.labels == v.test.labels);
  CHECK(validation_split(data, 3, 43).test.labels != v.test.labels);
  CHECK_THROWS_WITH_AS(validation_split(data, 10, 42),
                       "--validation: 10 held-out images of 10 training images (need 1 to 9)",
                       std::invalid_argument);
}

TEST_CASE("pooled 80/20 split: sizes, seeded, a permutation of all 70,000") {
  require_mnist();
  const TrainTest p = pooled_split(mnist(), 0.2, 42);
  CHECK(p.train.size() == 56000);
  CHECK(p.test.size() == 14000);
  std::size_t counts[10] = {};
  for (auto l : p.train.labels)
    ++counts[l];
  for (auto l : p.test.labels)
    ++counts[l];
  CHECK(counts[0] == 5923 + 980);
  CHECK(counts[1] == 6742 + 1135);
  const TrainTest again = pooled_split(mnist(), 0.2, 42);
  CHECK(again.test.labels == p.test.labels);
  CHECK(again.train.images.pixels == p.train.images.pixels);
  const TrainTest other = pooled_split(mnist(), 0.2, 43);
  CHECK(other.test.labels != p.test.labels);
}

namespace {
/// n 1x1 "images" whose pixel and label are their index (n <= 10).
TrainTest toy_set(std::size_t n_train, std::size_t n_test) {
  TrainTest d;
  d.name = "toy";
  for (LabelledSet* s : {&d.train, &d.test}) {
    s->images.rows = s->images.cols = 1;
  }
  for (std::size_t i = 0; i < n_train + n_test; ++i) {
    LabelledSet& s = i < n_train ? d.train : d.test;
    s.images.pixels.push_back(std::uint8_t(i));
    s.labels.push_back(std::uint8_t(i));
    ++s.images.count;
  }
  return d;
}
}  // namespace

TEST_CASE("validation split: each training item is held out about equally often") {
  const TrainTest d = toy_set(3, 1);
  std::map<int, int> held;
  for (std::uint64_t seed = 0; seed < 3000; ++seed)
    ++held[validation_split(d, 1, seed).test.labels.at(0)];
  for (int i = 0; i < 3; ++i)
    CHECK(held[i] > 800);  // Fisher-Yates: each 1/3; a cyclic shuffle never picks item 0
}

TEST_CASE("pooled split: the test share is rounded to the nearest count") {
  const TrainTest d = toy_set(6, 4);
  CHECK(pooled_split(d, 0.25, 1).test.size() == 3);  // 2.5 rounds half up
  CHECK(pooled_split(d, 0.25, 1).train.size() == 7);
}
