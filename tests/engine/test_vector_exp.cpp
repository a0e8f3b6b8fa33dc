// The engine's vectorised exp (engine/src/vector_exp.hpp), for doubles and floats:
// accuracy against std::exp, edges computed by std::exp itself, and the ops that use it.
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

std::vector<double> fast_exp(const std::vector<double>& x) {
  std::vector<double> y(x.size());
  xgrad::detail::map_batches(x.data(), y.data(), x.size(),
                             [](const B& v) { return xgrad::detail::exp_batch(v); });
  return y;
}

constexpr double kInf = std::numeric_limits<double>::infinity();

}  // namespace

TEST_CASE("vector exp: within 1 ulp of std::exp on [-708, 708]") {
  std::mt19937_64 rng(20261122);
  std::vector<double> x;
  std::uniform_real_distribution<double> wide(-708.0, 708.0), unit(-1.0, 1.0);
  for (int i = 0; i < 400000; ++i)
    x.push_back(wide(rng));
  for (int i = 0; i < 400000; ++i)
    x.push_back(unit(rng));
  // Reduced arguments near +-ln2/2 (the polynomial's worst case), tiny and subnormal
  // inputs, and the ends of the fast range.
  for (int k = -1022; k <= 1022; k += 7) {
    for (const double d : {-0.3465735902799727, 0.3465735902799727, 0.0}) {
      const double v = k * 0.6931471805599453 + d;
      if (std::fabs(v) <= 708.0) x.push_back(v);
    }
  }
  for (const double v : {0.0, -0.0, 1e-300, -1e-300, 4.9e-324, -4.9e-324, 1e-17, -1e-17, 700.0,
                         -700.0, 708.0, -708.0, 707.9999999999999, -707.9999999999999}) {
    x.push_back(v);
  }
  const std::vector<double> y = fast_exp(x);
  std::uint64_t worst = 0;
  double worst_x = 0;
  std::size_t exact = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    const std::uint64_t d = ulp_distance(y[i], std::exp(x[i]));
    if (d == 0) ++exact;
    if (d > worst) {
      worst = d;
      worst_x = x[i];
    }
  }
  MESSAGE("vector exp: " << x.size() << " points, max error " << worst << " ulp (at x = " << worst_x
                         << "), " << exact << " equal to std::exp");
  CHECK(worst <= 1);
  // Most results are the correctly rounded one: the error bound is not met by luck.
  CHECK(static_cast<double>(exact) >= 0.85 * static_cast<double>(x.size()));
}

TEST_CASE("vector exp: outside |x| <= 708 and for NaN it is std::exp, exactly") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const std::vector<double> x = {708.5,  709.0,  709.5,   709.78, 709.79, 710.0,  745.0,
                                 1000.0, kInf,   -708.5,  -709.0, -720.0, -740.0, -745.0,
                                 -745.2, -746.0, -1000.0, -kInf,  nan};
  const std::vector<double> y = fast_exp(x);
  for (std::size_t i = 0; i < x.size(); ++i) {
    CAPTURE(x[i]);
    const double want = std::exp(x[i]);
    CHECK(((ulp_distance(y[i], want) == 0) || (std::isnan(want) && std::isnan(y[i]))));
    if (!std::isnan(want)) CHECK(std::signbit(y[i]) == std::signbit(want));
  }
  // What that is: finite up to ln(DBL_MAX) = 709.7827 (xsimd::exp, used here before,
  // overflowed from 709.44), subnormal down to -745.13, then 0; NaN for NaN.
  CHECK(std::isfinite(fast_exp({709.78})[0]));
  CHECK(fast_exp({709.79})[0] == kInf);
  CHECK(fast_exp({kInf})[0] == kInf);
  CHECK(fast_exp({-745.0})[0] == std::numeric_limits<double>::denorm_min());
  CHECK(fast_exp({-1000.0})[0] == 0.0);
  CHECK(fast_exp({-kInf})[0] == 0.0);
  CHECK(std::isnan(fast_exp({nan})[0]));
}

TEST_CASE("vector exp: an edge lane takes std::exp alone, its neighbours keep their values") {
  const std::size_t w = B::size;
  std::vector<double> x(3 * w);
  for (std::size_t i = 0; i < x.size(); ++i)
    x[i] = 0.37 * static_cast<double>(i) - 3.1;
  x[w + 1] = std::numeric_limits<double>::quiet_NaN();  // the second batch only
  x[w + 2] = 709.5;
  const std::vector<double> y = fast_exp(x);
  CHECK(std::isnan(y[w + 1]));
  CHECK(ulp_distance(y[w + 2], std::exp(709.5)) == 0);
  // Every other lane, in that batch too, has the value it has in a batch of its own:
  // results do not depend on the neighbours, so not on the batch width either.
  for (std::size_t j = 0; j < x.size(); ++j) {
    if (j == w + 1 || j == w + 2) continue;
    CAPTURE(j);
    CHECK(ulp_distance(y[j], fast_exp({x[j]})[0]) == 0);
    CHECK(ulp_distance(y[j], std::exp(x[j])) <= 1);
  }
}

TEST_CASE("vector exp: a tail shorter than a batch gives the same values as a full batch") {
  for (std::size_t n = 1; n <= 2 * B::size + 1; ++n) {
    CAPTURE(n);
    std::vector<double> x(n);
    for (std::size_t i = 0; i < n; ++i)
      x[i] = 1.7 * static_cast<double>(i) - 2.0;
    const std::vector<double> y = fast_exp(x);
    for (std::size_t i = 0; i < n; ++i) {
      CAPTURE(i);
      CHECK(ulp_distance(y[i], fast_exp({x[i]})[0]) == 0);
      CHECK(ulp_distance(y[i], std::exp(x[i])) <= 1);
    }
  }
  // In place (x and y the same buffer).
  std::vector<double> z = {0.5, -0.25, 3.0, 11.0, -7.5};
  const std::vector<double> want = fast_exp(z);
  xgrad::detail::map_batches(z.data(), z.data(), z.size(),
                             [](const B& v) { return xgrad::detail::exp_batch(v); });
  for (std::size_t i = 0; i < z.size(); ++i)
    CHECK(ulp_distance(z[i], want[i]) == 0);
}

TEST_CASE("exp and sigmoid in float64 use it: accurate, and saturate without NaN") {
  xgrad::Tape<double> tape;
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> u(-40.0, 40.0);
  xgrad::Matrix<double> a({37, 13});  // 481 elements: not a multiple of any batch width
  for (auto& v : a)
    v = u(rng);
  a(0, 0) = 1000.0;
  a(0, 1) = -1000.0;
  a(0, 2) = 0.0;
  const auto x = tape.variable(a);
  const auto e = xgrad::exp(x);
  const auto s = xgrad::sigmoid(x);
  std::uint64_t worst_exp = 0, worst_sigmoid = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const double v = a.data()[i];
    worst_exp = std::max(worst_exp, ulp_distance(e.value().data()[i], std::exp(v)));
    // Reference in long double, rounded once.
    const double ref = static_cast<double>(1.0L / (1.0L + std::exp(-static_cast<long double>(v))));
    worst_sigmoid = std::max(worst_sigmoid, ulp_distance(s.value().data()[i], ref));
  }
  MESSAGE("float64 exp op: max " << worst_exp << " ulp, sigmoid op: max " << worst_sigmoid
                                 << " ulp");
  CHECK(worst_exp <= 1);
  CHECK(worst_sigmoid <= 2);
  CHECK(e.value()(0, 0) == kInf);
  CHECK(e.value()(0, 1) == 0.0);
  CHECK(s.value()(0, 0) == 1.0);
  CHECK(s.value()(0, 1) == 0.0);
  CHECK(s.value()(0, 2) == 0.5);
  // The backward rules read these values: gradients stay finite at the saturated ends.
  const auto loss = xgrad::sum(s, xgrad::Axis::All);
  tape.backward(loss);
  for (const double g : x.grad())
    CHECK(std::isfinite(g));
  CHECK(x.grad()(0, 0) == 0.0);
  CHECK(x.grad()(0, 2) == 0.25);
}

TEST_CASE("float exp: libm beyond 88 and below -87, the batch's value in every other lane") {
  // xsimd's float exp overflowed from 88.38 (libm: 88.72) and flushed to 0 below -87.68,
  // where libm has subnormals down to -103.97.
  using F = xsimd::batch<float>;
  const std::size_t w = F::size;
  std::vector<float> x(3 * w);
  for (std::size_t i = 0; i < x.size(); ++i)
    x[i] = 0.37f * static_cast<float>(i) - 3.1f;
  const float edges[] = {88.5f, -95.0f, -103.0f, 89.0f};
  for (std::size_t k = 0; k < 4; ++k)
    x[w + k] = edges[k];  // the second batch only
  std::vector<float> y(x.size());
  const auto exp_f = [](const F& v) { return xgrad::detail::exp_float_batch(v); };
  xgrad::detail::map_batches(x.data(), y.data(), x.size(), exp_f);
  for (std::size_t k = 0; k < 4; ++k) {
    CAPTURE(edges[k]);
    CHECK(y[w + k] == std::exp(edges[k]));
  }
  CHECK(y[w] > 2.7e38f);   // e^88.5, finite, where xsimd gave inf
  CHECK(y[w + 1] > 0.0f);  // subnormal, where xsimd gave 0
  CHECK(std::isinf(y[w + 3]));
  for (std::size_t j = 0; j < x.size(); ++j) {
    if (j >= w && j < w + 4) continue;
    CAPTURE(j);
    float alone = 0;
    xgrad::detail::map_batches(&x[j], &alone, 1, exp_f);
    CHECK(y[j] == alone);
  }
}

TEST_CASE("float softmax keeps probabilities far below the row's maximum as subnormals") {
  // A logit 95 below the others: e^-95 = 5.5e-42, a float subnormal, was flushed to 0.
  xgrad::Tape<float> tape;
  const xgrad::Tensor<float> z = tape.constant(xgrad::Matrix<float>{{0.0f, -95.0f, 0.0f}});
  const auto p = xgrad::softmax(z);
  CHECK(p.value()(0, 1) == std::exp(-95.0f) / 2.0f);
  CHECK(p.value()(0, 1) > 0.0f);
  CHECK(p.value()(0, 0) == 0.5f);
}
