// The float64 sigmoid kernel (engine/src/vector_exp.hpp, sigmoid_batch): within 2 ulp of
// the logistic function rounded once, edges as the formula 1 / (1 + exp_batch(-x)) it
// replaces, and a batch with one bad lane computed whole by that formula.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include <doctest/doctest.h>

#include "../../engine/src/vector_exp.hpp"
#include "engine_test_util.hpp"

namespace {

using B = xsimd::batch<double>;
using xgrad_test::ulp_distance;

std::vector<double> fast_sigmoid(const std::vector<double>& x) {
  std::vector<double> y(x.size());
  xgrad::detail::map_batches(x.data(), y.data(), x.size(),
                             [](const B& v) { return xgrad::detail::sigmoid_batch(v); });
  return y;
}

/// The formula sigmoid_batch replaced, kept for the batches it falls back on.
double old_sigmoid(double x) {
  return (B(1.0) / (B(1.0) + xgrad::detail::exp_batch(-B(x)))).get(0);
}

/// 1 / (1 + e^-x) in long double, rounded once to double.
double reference(double x) {
  return static_cast<double>(1.0L / (1.0L + std::exp(-static_cast<long double>(x))));
}

constexpr double kInf = std::numeric_limits<double>::infinity();

}  // namespace

TEST_CASE("sigmoid kernel: within 2 ulp on [-708, 708]") {
  std::mt19937_64 rng(11);
  // Where training lives, the whole fast range and its ends, near 0, and where 2^k P(r)
  // becomes small next to P(-r). Below -708.39 the result is 0 where the exact value is
  // subnormal, as with the old formula (the edge case below checks that behaviour).
  const double ranges[][2] = {{-40.0, 40.0},    {-708.0, 708.0}, {700.0, 708.0},
                              {-708.0, -700.0}, {-1e-3, 1e-3},   {-37.0, -30.0}};
  for (const auto& range : ranges) {
    std::uniform_real_distribution<double> u(range[0], range[1]);
    std::vector<double> x(200000);
    for (double& v : x)
      v = u(rng);
    const std::vector<double> y = fast_sigmoid(x);
    std::uint64_t worst = 0;
    double at = 0;
    for (std::size_t i = 0; i < x.size(); ++i) {
      const std::uint64_t e = ulp_distance(y[i], reference(x[i]));
      if (e > worst) {
        worst = e;
        at = x[i];
      }
    }
    CAPTURE(range[0]);
    CAPTURE(range[1]);
    CAPTURE(at);
    CHECK(worst <= 2);
  }
}

TEST_CASE("sigmoid kernel: exact values and edges as the formula it replaced") {
  const std::vector<double> exact = {0.0, -0.0, 100.0, 708.0, -0.0};
  const std::vector<double> y = fast_sigmoid(exact);
  CHECK(y[0] == 0.5);
  CHECK(y[1] == 0.5);
  CHECK(y[2] == 1.0);
  CHECK(y[3] == 1.0);
  // Outside |x| <= 708, infinities and NaN: the old formula, exactly.
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (double v :
       {708.5, 709.0, 745.0, 1000.0, kInf, -708.5, -709.0, -740.0, -745.2, -1000.0, -kInf, nan}) {
    CAPTURE(v);
    const double got = fast_sigmoid({v})[0];
    CHECK(ulp_distance(got, old_sigmoid(v)) == 0);
  }
  CHECK(fast_sigmoid({-kInf})[0] == 0.0);
  CHECK(fast_sigmoid({kInf})[0] == 1.0);
  CHECK(std::isnan(fast_sigmoid({nan})[0]));
  // The fast range's negative end is a normal number near e^-708, not 0.
  CHECK(ulp_distance(fast_sigmoid({-708.0})[0], reference(-708.0)) <= 2);
}

TEST_CASE("sigmoid kernel: one bad lane sends its batch to the old formula, other batches not") {
  const std::size_t w = B::size;
  std::vector<double> x(3 * w);
  for (std::size_t i = 0; i < x.size(); ++i)
    x[i] = 0.61 * static_cast<double>(i) - 4.3;
  x[w + 1] = 900.0;  // the second batch only
  const std::vector<double> y = fast_sigmoid(x);
  for (std::size_t j = 0; j < w; ++j) {
    CAPTURE(j);
    CHECK(ulp_distance(y[w + j], old_sigmoid(x[w + j])) == 0);
  }
  const std::vector<double> first = fast_sigmoid(std::vector<double>(x.begin(), x.begin() + w));
  for (std::size_t j = 0; j < w; ++j)
    CHECK(ulp_distance(y[j], first[j]) == 0);
  for (std::size_t j = 2 * w; j < 3 * w; ++j)
    CHECK(ulp_distance(y[j], reference(x[j])) <= 2);
}
