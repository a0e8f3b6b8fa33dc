// The float64 exp and sigmoid kernels chosen at run time (engine/src/simd_dispatch.hpp):
// the AVX-512 set gives the bits of the build's own set wherever the fast path runs, and
// the choice follows the CPU and XGRAD_SIMD.
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "../../engine/src/simd_dispatch.hpp"
#include "engine_test_util.hpp"

namespace {

using xgrad::detail::BufferKernel;
using xgrad::detail::Float64Kernels;
using xgrad_test::ulp_distance;

std::vector<double> run_kernel(BufferKernel kernel, const std::vector<double>& x) {
  std::vector<double> y(x.size(), -1.0);
  kernel(x.data(), y.data(), x.size());
  return y;
}

/// The AVX-512 kernels, or nullptr with a message saying why they cannot be tested here.
const Float64Kernels* wide_kernels_or_skip() {
  const Float64Kernels* wide = xgrad::detail::float64_kernels_avx512();
  if (wide == nullptr) {
    MESSAGE("AVX-512 kernels not built in, or this CPU lacks AVX-512: comparison skipped");
  }
  return wide;
}

/// Bitwise equal, NaN lanes included (both kernels keep a NaN's payload alike).
[[maybe_unused]] bool same_bits(const std::vector<double>& a, const std::vector<double>& b) {
  return a.size() == b.size() &&
         (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0);
}

std::string simd_setting() {
  const char* v = std::getenv("XGRAD_SIMD");
  return v == nullptr ? "" : v;
}

}  // namespace

namespace {

/// True when the AVX-512 kernels cannot run here: their test cases are then skipped.
bool no_avx512() {
  return xgrad::detail::float64_kernels_avx512() == nullptr;
}

/// Same bits where the baseline has FMA too (x86-64-v3, the default). An SSE2 baseline
/// (-DXGRAD_ARCH_FLAGS=-march=x86-64) has none: xsimd's fma is a multiply and an add
/// there, two roundings, so the sets agree within the kernels' 2 ulp instead.
bool agree(const std::vector<double>& wide, const std::vector<double>& base) {
#if defined(__FMA__)
  return same_bits(wide, base);
#else
  if (wide.size() != base.size()) return false;
  for (std::size_t i = 0; i < wide.size(); ++i) {
    if (ulp_distance(wide[i], base[i]) > 4) return false;
  }
  return true;
#endif
}

}  // namespace

TEST_CASE("AVX-512 exp and sigmoid give the baseline's bits on the fast range, any length" *
          doctest::skip(no_avx512())) {
  const Float64Kernels* wide = wide_kernels_or_skip();
  if (wide == nullptr) return;
  const Float64Kernels& base = xgrad::detail::float64_kernels_baseline();
  std::mt19937_64 rng(5);
  std::uniform_real_distribution<double> u(-708.0, 708.0);
  std::normal_distribution<double> training(0.0, 4.0);
  // Every length up to 40 covers every tail of a 4- and an 8-lane batch.
  for (std::size_t n = 0; n <= 40; ++n) {
    std::vector<double> x(n);
    for (double& v : x)
      v = n % 2 == 0 ? u(rng) : training(rng);
    CHECK(agree(run_kernel(wide->exp, x), run_kernel(base.exp, x)));
    CHECK(agree(run_kernel(wide->sigmoid, x), run_kernel(base.sigmoid, x)));
  }
  std::vector<double> big(100003);
  for (double& v : big)
    v = training(rng);
  CHECK(agree(run_kernel(wide->exp, big), run_kernel(base.exp, big)));
  CHECK(agree(run_kernel(wide->sigmoid, big), run_kernel(base.sigmoid, big)));
}

TEST_CASE("AVX-512 kernels: batches with an edge lane give the baseline's bits too" *
          doctest::skip(no_avx512())) {
  const Float64Kernels* wide = wide_kernels_or_skip();
  if (wide == nullptr) return;
  const Float64Kernels& base = xgrad::detail::float64_kernels_baseline();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  // An out-of-range or NaN lane is computed by the scalar libm on its own, and its
  // neighbours as in any batch: an 8-lane batch holding more neighbours than a 4-lane
  // one changes nothing.
  const std::vector<double> x = {0.5, -1.0, 709.5, 2.0,  3.0,  -4.0, 5.0,  6.0,   -7.0, 8.0,
                                 nan, 1.5,  -2.5,  0.25, -800, 30.0, -inf, inf,   1e-3, -1e-3,
                                 0.0, -0.0, 100.0, -100, 745., -745, 0.75, -0.75, 12.0};
  CHECK(agree(run_kernel(wide->exp, x), run_kernel(base.exp, x)));
  CHECK(agree(run_kernel(wide->sigmoid, x), run_kernel(base.sigmoid, x)));
  const std::vector<double> e = run_kernel(base.exp, x);
  CHECK(e[2] == std::exp(709.5));  // finite: libm's overflow starts at 709.78
  CHECK(e[24] == inf);
}

TEST_CASE("float64_kernels follows XGRAD_SIMD and the CPU") {
  // ctest runs this case three times: XGRAD_SIMD unset, "baseline" and "bogus".
  const std::string setting = simd_setting();
  if (setting.empty() || setting == "auto") {
    const bool wide = xgrad::detail::float64_kernels_avx512() != nullptr;
    CHECK(std::strcmp(xgrad::detail::float64_kernels().isa, wide ? "avx512" : "baseline") == 0);
  } else if (setting == "baseline") {
    CHECK(std::strcmp(xgrad::detail::float64_kernels().isa, "baseline") == 0);
  } else {
    const std::string expected = "XGRAD_SIMD=" + setting;
    CHECK_THROWS_WITH_AS(xgrad::detail::float64_kernels(), doctest::Contains(expected.c_str()),
                         std::invalid_argument);
  }
}
