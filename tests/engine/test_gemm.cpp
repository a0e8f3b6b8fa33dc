// The engine's GEMM wrapper (engine/src/blas.cpp) against a plain triple loop, for every
// path it chooses by shape: the vector cases (k = 1, n = 1, m = 1) computed by its own
// loops, B^T copied into a buffer before OpenBLAS, and OpenBLAS as it is. Each shape runs
// with all four transpose combinations, in float and double, for beta = 0 (C is not read:
// it starts as NaN), beta = 1 (accumulate, as backward does) and a general alpha and beta.
// Large products split into blocks for the thread pool give the bits of one call.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <doctest/doctest.h>
#include <omp.h>

#include "../../engine/src/blas.hpp"
#include "engine_test_util.hpp"
#include "xgrad/parallel.hpp"
#include "xgrad/threads.hpp"

namespace {

struct Shape {
  std::size_t m, n, k;
};

template <class T>
std::vector<T> random_vector(std::size_t size, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  std::vector<T> v(size);
  for (T& x : v)
    x = static_cast<T>(u(rng));
  return v;
}

/// Worst |C - reference| / tolerance over C after gemm; <= 1 passes. The reference sums
/// in long double; the tolerance scales with k and with the size of the terms summed.
template <class T>
double worst_error(const Shape& s, bool ta, bool tb, T alpha, T beta, std::uint64_t seed) {
  const std::vector<T> a = random_vector<T>(s.m * s.k, seed);
  const std::vector<T> b = random_vector<T>(s.k * s.n, seed + 1);
  std::vector<T> c = random_vector<T>(s.m * s.n, seed + 2);
  const std::vector<T> c0 = c;
  // beta = 0: BLAS does not read C, so NaN there must not reach the result.
  if (beta == T(0)) c.assign(c.size(), std::numeric_limits<T>::quiet_NaN());
  xgrad::detail::gemm<T>(ta, tb, s.m, s.n, s.k, alpha, a.data(), b.data(), beta, c.data());
  const double eps = std::numeric_limits<T>::epsilon();
  double worst = 0;
  for (std::size_t i = 0; i < s.m; ++i) {
    for (std::size_t j = 0; j < s.n; ++j) {
      long double sum = 0, size = 0;
      for (std::size_t p = 0; p < s.k; ++p) {
        const long double x = ta ? a[p * s.m + i] : a[i * s.k + p];
        const long double y = tb ? b[j * s.k + p] : b[p * s.n + j];
        sum += x * y;
        size += std::fabs(x * y);
      }
      long double ref = static_cast<long double>(alpha) * sum;
      long double scale = std::fabs(static_cast<long double>(alpha)) * size;
      if (beta != T(0)) {
        ref += static_cast<long double>(beta) * c0[i * s.n + j];
        scale += std::fabs(static_cast<long double>(beta) * c0[i * s.n + j]);
      }
      const double tol = double(4 * (s.k + 2) * eps * scale) + 1e-30;
      const double err = std::fabs(double(c[i * s.n + j] - ref));
      if (!(err <= tol))
        return std::isnan(err) ? std::numeric_limits<double>::infinity() : err / tol;
      worst = std::max(worst, err / tol);
    }
  }
  return worst;
}

template <class T>
void check_shape(const Shape& s) {
  struct Scale {
    T alpha, beta;
  };
  const Scale scales[] = {{T(1), T(0)}, {T(1), T(1)}, {T(-1.5), T(0.25)}};
  std::uint64_t seed = 10 * (s.m * 10007 + s.n * 101 + s.k);
  for (bool ta : {false, true}) {
    for (bool tb : {false, true}) {
      for (const Scale& sc : scales) {
        std::ostringstream what;
        what << s.m << "x" << s.k << (ta ? "^T" : "") << " times " << s.k << "x" << s.n
             << (tb ? "^T" : "") << ", alpha " << sc.alpha << ", beta " << sc.beta;
        CAPTURE(what.str());
        CHECK(worst_error<T>(s, ta, tb, sc.alpha, sc.beta, seed++) <= 1.0);
      }
    }
  }
}

}  // namespace

TEST_CASE_TEMPLATE(
    "gemm with k = 1 (outer products) equals the reference product, transposed or not", T, float,
    double) {
  // n below, at and above a batch width, with a remainder; m = 1 and n = 1 included.
  for (Shape s : {Shape{7, 13, 1}, Shape{240, 50, 1}, Shape{5, 50, 1}, Shape{1, 9, 1},
                  Shape{9, 1, 1}, Shape{1, 1, 1}, Shape{3, 32, 1}}) {
    check_shape<T>(s);
  }
}

TEST_CASE_TEMPLATE(
    "gemm with n = 1 (dot products of rows, or a vector times a matrix) equals the reference", T,
    float, double) {
  // Rows in groups of 8, of a batch width and single, k with and without a remainder,
  // columns in blocks, single batches and a last partial batch, odd and even k. Above the
  // limits (OpenBLAS): 240 x 50 rows times a vector (> 2048 elements), and
  // (300 x 300)^T times a vector.
  for (Shape s :
       {Shape{240, 1, 50}, Shape{9, 1, 19}, Shape{3, 1, 2}, Shape{17, 1, 8}, Shape{13, 1, 7},
        Shape{50, 1, 240}, Shape{21, 1, 11}, Shape{64, 1, 5}, Shape{300, 1, 300}}) {
    check_shape<T>(s);
  }
}

TEST_CASE_TEMPLATE(
    "gemm with m = 1 (a vector times a matrix, or dot products) equals the reference", T, float,
    double) {
  for (Shape s : {Shape{1, 50, 240}, Shape{1, 17, 23}, Shape{1, 13, 7}, Shape{1, 37, 9},
                  Shape{1, 3, 2}, Shape{1, 64, 5}, Shape{1, 300, 300}}) {
    check_shape<T>(s);
  }
}

TEST_CASE_TEMPLATE("gemm equals the reference product whether B^T is copied before OpenBLAS or not",
                   T, float, double) {
  // 240x50 (50x50)^T and 128x256 (256x10)^T are copied (op(A) has >= 32 rows, B <= 4096
  // elements); 31 rows, and a B of 70x60, are not; small general shapes go to OpenBLAS.
  for (Shape s : {Shape{240, 50, 50}, Shape{128, 256, 10}, Shape{32, 13, 7}, Shape{31, 13, 7},
                  Shape{40, 70, 60}, Shape{5, 6, 7}, Shape{2, 2, 2}, Shape{5, 50, 50}}) {
    check_shape<T>(s);
  }
}

TEST_CASE_TEMPLATE("gemm edge cases: empty products and alpha = 0 do not read A and B", T, float,
                   double) {
  const T nan = std::numeric_limits<T>::quiet_NaN();
  std::vector<T> a(12, nan), b(12, nan);
  std::vector<T> c = {T(1), T(2), T(3), T(4), T(5), T(6)};
  // alpha = 0: C = beta C whatever A and B hold (BLAS semantics).
  xgrad::detail::gemm<T>(false, true, 2, 3, 4, T(0), a.data(), b.data(), T(2), c.data());
  CHECK(c == std::vector<T>{T(2), T(4), T(6), T(8), T(10), T(12)});
  // k = 0 with beta = 0: zeros, even over NaN.
  c.assign(6, nan);
  xgrad::detail::gemm<T>(false, false, 2, 3, 0, T(1), a.data(), b.data(), T(0), c.data());
  CHECK(c == std::vector<T>(6, T(0)));
  // k = 0 with beta = 1: C unchanged.
  c = {T(1), T(2), T(3), T(4), T(5), T(6)};
  xgrad::detail::gemm<T>(true, true, 2, 3, 0, T(1), a.data(), b.data(), T(1), c.data());
  CHECK(c == std::vector<T>{T(1), T(2), T(3), T(4), T(5), T(6)});
}

namespace {

/// C after gemm at the given thread count, from the same A, B and C every time.
template <class T>
std::vector<T> product_at(int threads, const Shape& s, bool ta, bool tb, T beta) {
  const xgrad_test::ThreadsFor pool(threads);
  const std::vector<T> a = random_vector<T>(s.m * s.k, 7), b = random_vector<T>(s.k * s.n, 8);
  std::vector<T> c = random_vector<T>(s.m * s.n, 9);
  xgrad::detail::gemm<T>(ta, tb, s.m, s.n, s.k, T(1), a.data(), b.data(), beta, c.data());
  return c;
}

}  // namespace

TEST_CASE("OneBlasThread sets the caller's OpenMP count to 1 for OpenBLAS, then restores it") {
  std::thread user([] {
    omp_set_num_threads(3);
    {
      const xgrad::detail::OneBlasThread one;
      CHECK(omp_get_max_threads() == 1);
    }
    CHECK(omp_get_max_threads() == 3);
  });
  user.join();
}

TEST_CASE_TEMPLATE("gemm in blocks for the pool: right, and the same bits at any thread count", T,
                   float, double) {
  // MNIST's products (784-256-10, batch 128: forward, dW, dA of a hidden layer, and the
  // 527 pixels a batch keeps; and a hidden layer of 300, whose float64 products once
  // differed between one call and two blocks), a square one, shapes whose blocks start
  // off the kernels' tiles (333 x 297 x 325), split by columns and by rows, and one below
  // the split (one call at any thread count).
  struct Case {
    Shape s;
    std::size_t blocks;
  };
  for (const Case& c :
       {Case{{128, 256, 784}, 2}, Case{{784, 256, 128}, 2}, Case{{128, 784, 256}, 2},
        Case{{128, 256, 527}, 2}, Case{{527, 256, 128}, 2}, Case{{128, 300, 784}, 2},
        Case{{784, 300, 128}, 2}, Case{{256, 256, 256}, 2}, Case{{333, 297, 325}, 2},
        Case{{300, 517, 160}, 2}, Case{{2000, 37, 300}, 2}, Case{{512, 512, 512}, 16},
        Case{{129, 333, 64}, 1}}) {
    const Shape& s = c.s;
    CAPTURE(s.m);
    CAPTURE(s.n);
    CAPTURE(s.k);
    CHECK(xgrad::detail::gemm_blocks(s.m, s.n, s.k) == c.blocks);
    {
      const xgrad_test::ThreadsFor pool(2);
      check_shape<T>(s);  // against the long double reference, in blocks
    }
    for (bool ta : {false, true}) {
      for (bool tb : {false, true}) {
        for (T beta : {T(0), T(1)}) {
          CAPTURE(ta);
          CAPTURE(tb);
          const std::vector<T> one = product_at<T>(1, s, ta, tb, beta);
          CHECK(product_at<T>(2, s, ta, tb, beta) == one);
          CHECK(product_at<T>(3, s, ta, tb, beta) == one);
        }
      }
    }
  }
}
