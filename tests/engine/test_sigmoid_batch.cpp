// The float64 sigmoid kernel (engine/src/vector_exp.hpp, sigmoid_batch): within 2 ulp of
// the logistic function rounded once, and outside |x| <= 708 (or for NaN) the scalar
// formula 1 / (1 + std::exp(-x)), lane by lane.
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

/// The formula of the edge lanes: outside |x| <= 708 and NaN.
double edge_sigmoid(double x) {
  return 1.0 / (1.0 + std::exp(-x));
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
  // becomes small next to P(-r). Beyond |x| = 708 the scalar formula takes over (the
  // edge case below checks it).
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

TEST_CASE("sigmoid kernel: exact values, and the scalar formula at the edges") {
  const std::vector<double> exact = {0.0, -0.0, 100.0, 708.0, -0.0};
  const std::vector<double> y = fast_sigmoid(exact);
  CHECK(y[0] == 0.5);
  CHECK(y[1] == 0.5);
  CHECK(y[2] == 1.0);
  CHECK(y[3] == 1.0);
  // Outside |x| <= 708, infinities and NaN: 1 / (1 + std::exp(-x)), exactly. So
  // sigmoid(-709) is e^-709 = 1.2e-308, not 0.
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (double v :
       {708.5, 709.0, 745.0, 1000.0, kInf, -708.5, -709.0, -740.0, -745.2, -1000.0, -kInf, nan}) {
    CAPTURE(v);
    const double got = fast_sigmoid({v})[0];
    CHECK(ulp_distance(got, edge_sigmoid(v)) == 0);
  }
  CHECK(fast_sigmoid({-kInf})[0] == 0.0);
  CHECK(fast_sigmoid({kInf})[0] == 1.0);
  CHECK(std::isnan(fast_sigmoid({nan})[0]));
  CHECK(ulp_distance(fast_sigmoid({-709.0})[0], reference(-709.0)) <= 1);
  // The fast range's negative end is a normal number near e^-708, not 0.
  CHECK(ulp_distance(fast_sigmoid({-708.0})[0], reference(-708.0)) <= 2);
}

TEST_CASE("sigmoid kernel: an edge lane takes the scalar formula alone, neighbours keep theirs") {
  const std::size_t w = B::size;
  std::vector<double> x(3 * w);
  for (std::size_t i = 0; i < x.size(); ++i)
    x[i] = 0.61 * static_cast<double>(i) - 4.3;
  x[w + 1] = 900.0;  // the second batch only
  const std::vector<double> y = fast_sigmoid(x);
  CHECK(y[w + 1] == 1.0);
  // Every other lane, in that batch too, has the value it has in a batch of its own.
  for (std::size_t j = 0; j < x.size(); ++j) {
    if (j == w + 1) continue;
    CAPTURE(j);
    CHECK(ulp_distance(y[j], fast_sigmoid({x[j]})[0]) == 0);
    CHECK(ulp_distance(y[j], reference(x[j])) <= 2);
  }
}
