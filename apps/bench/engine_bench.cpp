// engine_bench: the two figures of issue 2, printed with their goals.
//
//  (a) overhead of one small op: add on 4x4 float with gradients, forward + backward,
//      tape.clear() each step, in ns (goal: under 1 us; PyTorch ~11 us, LibTorch ~8 us
//      on this machine);
//  (b) matmul forward + backward at [128,784]x[784,256], float32 and float64, at 1 and 2
//      threads, in GFLOP/s next to bare cblas_?gemm doing the same three products on the
//      same buffers in the same run (goal: the tape within 10% of bare BLAS);
//  (c) the sigmoid op's forward on a 240x50 activation (the hidden layer of the Runge
//      1-50-50-1 network), float32 and float64, in ns per element, next to the plain
//      xtensor expression 1 / (1 + exp(-x)) it replaced (xsimd's exp; for float64 the op
//      uses engine/src/vector_exp.hpp), both after the same tape.constant copy.
//
// Every figure is the median of several repeats. Usage: engine_bench [--quick]
//
// <cblas.h> is included here directly (the engine's BLAS wrapper is internal); that is
// safe because this file does not include xtensor-blas (../shared/DESIGN.md §6).
#include <cblas.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <xtensor/xmath.hpp>
#include <xtensor/xnoalias.hpp>

#include "xgrad/xgrad.hpp"

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

template <class T>
xgrad::Matrix<T> random_matrix(std::size_t rows, std::size_t cols, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  xgrad::Matrix<T> m({rows, cols});
  for (T& x : m)
    x = static_cast<T>(normal(rng));
  return m;
}

// ---------------------------------------------------------------- (a) small-op overhead
// One training-like step: clear, record two 4x4 parameters, add, backward with a 4x4
// seed. Everything the tape does for one op, including its own bookkeeping.
double small_op_step_ns(int repeats, int steps) {
  xgrad::Parameter<float> a(random_matrix<float>(4, 4, 1), "a");
  xgrad::Parameter<float> b(random_matrix<float>(4, 4, 2), "b");
  const xgrad::Matrix<float> seed = random_matrix<float>(4, 4, 3);
  xgrad::Tape<float> tape;
  std::vector<double> ns;
  for (int r = 0; r < repeats + 1; ++r) {  // the first repeat warms up and is dropped
    const Clock::time_point start = Clock::now();
    for (int s = 0; s < steps; ++s) {
      tape.clear();
      const xgrad::Tensor<float> y = tape.parameter(a) + tape.parameter(b);
      tape.backward(y, seed);
    }
    if (r > 0) ns.push_back(seconds_since(start) * 1e9 / steps);
  }
  // Keep the result observable so nothing is optimised away.
  if (!(a.grad()(0, 0) == a.grad()(0, 0))) std::puts("NaN");
  return median(ns);
}

// The marginal cost of one more add in a chain of `chain` adds (forward + backward),
// with the fixed per-step costs (clear, leaves, backward setup) amortised.
double chained_add_ns(int repeats, int steps, int chain) {
  xgrad::Parameter<float> a(random_matrix<float>(4, 4, 4), "a");
  xgrad::Parameter<float> b(random_matrix<float>(4, 4, 5), "b");
  const xgrad::Matrix<float> seed = random_matrix<float>(4, 4, 6);
  xgrad::Tape<float> tape;
  std::vector<double> ns;
  for (int r = 0; r < repeats + 1; ++r) {
    const Clock::time_point start = Clock::now();
    for (int s = 0; s < steps; ++s) {
      tape.clear();
      const xgrad::Tensor<float> bb = tape.parameter(b);
      xgrad::Tensor<float> y = tape.parameter(a);
      for (int k = 0; k < chain; ++k)
        y = y + bb;
      tape.backward(y, seed);
    }
    if (r > 0) ns.push_back(seconds_since(start) * 1e9 / (double(steps) * chain));
  }
  return median(ns);
}

// ---------------------------------------------------------------- (b) matmul vs bare BLAS
void gemm(bool ta, bool tb, int m, int n, int k, const float* a, const float* b, float beta,
          float* c) {
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n,
              k, 1.0f, a, ta ? m : k, b, tb ? k : n, beta, c, n);
}
void gemm(bool ta, bool tb, int m, int n, int k, const double* a, const double* b, double beta,
          double* c) {
  cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n,
              k, 1.0, a, ta ? m : k, b, tb ? k : n, beta, c, n);
}

struct MatmulFigures {
  double tape_s, bare_s;  // median seconds per forward + backward
};

// Y = X W, dX += G W^T, dW += X^T G: both through the tape and as three bare GEMMs on the
// very same buffers (the tape's X, W, Y, seed, dX, dW), alternating in one run so both
// see the same machine state.
template <class T>
MatmulFigures matmul_figures(int repeats, int steps) {
  const int m = 128, k = 784, n = 256;
  xgrad::Parameter<T> x(random_matrix<T>(m, k, 7), "x");
  xgrad::Parameter<T> w(random_matrix<T>(k, n, 8), "w");
  const xgrad::Matrix<T> seed = random_matrix<T>(m, n, 9);
  xgrad::Tape<T> tape;
  // The forward's output node: its buffer is reused by every later step (tested in
  // tests/engine/test_tape_lifecycle.cpp), so the bare GEMMs write into it too.
  const std::uint32_t y_node = xgrad::matmul(tape.parameter(x), tape.parameter(w)).index();
  T* y = tape.value_of(y_node).data();
  std::vector<double> tape_s, bare_s;
  for (int r = 0; r < repeats + 1; ++r) {
    Clock::time_point start = Clock::now();
    for (int s = 0; s < steps; ++s) {
      tape.clear();
      const xgrad::Tensor<T> out = xgrad::matmul(tape.parameter(x), tape.parameter(w));
      tape.backward(out, seed);
    }
    const double t = seconds_since(start) / steps;
    start = Clock::now();
    for (int s = 0; s < steps; ++s) {
      gemm(false, false, m, n, k, x.value().data(), w.value().data(), T(0), y);
      gemm(false, true, m, k, n, seed.data(), w.value().data(), T(1), x.grad().data());
      gemm(true, false, k, n, m, x.value().data(), seed.data(), T(1), w.grad().data());
    }
    const double b = seconds_since(start) / steps;
    if (r > 0) {
      tape_s.push_back(t);
      bare_s.push_back(b);
    }
  }
  return {median(tape_s), median(bare_s)};
}

// ---------------------------------------------------------------- (c) sigmoid forward
struct SigmoidFigures {
  double op_ns, xsimd_ns;  // median ns per element
};

template <class T>
SigmoidFigures sigmoid_figures(int repeats, int iters) {
  const std::size_t rows = 240, cols = 50;
  const xgrad::Matrix<T> x = random_matrix<T>(rows, cols, 5);  // N(0, 1) pre-activations
  xgrad::Matrix<T> out({rows, cols});
  xgrad::Tape<T> tape;
  std::vector<double> op_ns, xsimd_ns;
  double sink = 0;
  const double elements = static_cast<double>(rows * cols) * iters;
  for (int r = 0; r < repeats + 1; ++r) {  // the first repeat warms up and is dropped
    Clock::time_point start = Clock::now();
    for (int i = 0; i < iters; ++i) {
      tape.clear();
      const auto s = xgrad::sigmoid(tape.constant(x));
      sink += static_cast<double>(s.value()(0, 0));
    }
    const double op = seconds_since(start) * 1e9 / elements;
    start = Clock::now();
    for (int i = 0; i < iters; ++i) {
      tape.clear();
      const auto c = tape.constant(x);
      xt::noalias(out) = T(1) / (T(1) + xt::exp(-c.value()));
      sink += static_cast<double>(out(0, 0));
    }
    const double plain = seconds_since(start) * 1e9 / elements;
    if (r > 0) {
      op_ns.push_back(op);
      xsimd_ns.push_back(plain);
    }
  }
  if (sink == 42.0) std::printf(" ");  // keeps the loops
  return {median(op_ns), median(xsimd_ns)};
}

}  // namespace

int main(int argc, char** argv) {
  const bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
  const int repeats = quick ? 3 : 11;

  std::printf("engine_bench: xgrad reverse-mode tape, medians of %d repeats\n\n", repeats);

  xgrad::set_threads(1);
  std::printf("(a) small-op overhead, float32 4x4 add with gradients, %d BLAS thread\n",
              xgrad::threads());
  const double step_ns = small_op_step_ns(repeats, quick ? 20000 : 200000);
  const double chain_ns = chained_add_ns(repeats, quick ? 2000 : 20000, 64);
  const bool step_ok = step_ns < 1000.0;
  std::printf(
      "    one step (clear, 2 leaves, add, backward with 4x4 seed): %8.1f ns   goal < 1000 ns: "
      "%s\n",
      step_ns, step_ok ? "PASS" : "MISS");
  std::printf("    one more add in a chain of 64 (forward + backward):      %8.1f ns\n\n",
              chain_ns);

  std::printf("(b) matmul [128,784]x[784,256] forward + backward = 3 GEMMs, %.1f MFLOP\n",
              3 * 2.0 * 128 * 784 * 256 / 1e6);
  std::printf("    %-7s %7s %11s %11s %11s %11s %8s  %s\n", "dtype", "threads", "tape ms",
              "bare ms", "tape GF/s", "bare GF/s", "tape/bare", "goal <= 1.10");
  const double flops = 3 * 2.0 * 128 * 784 * 256;
  const int steps = quick ? 5 : 20;
  bool all_ok = true;
  for (const int threads : {1, 2}) {
    xgrad::set_threads(threads);
    for (const bool single : {true, false}) {
      const MatmulFigures f =
          single ? matmul_figures<float>(repeats, steps) : matmul_figures<double>(repeats, steps);
      const double ratio = f.tape_s / f.bare_s;
      const bool ok = ratio <= 1.10;
      all_ok = all_ok && ok;
      std::printf("    %-7s %7d %11.3f %11.3f %11.1f %11.1f %8.3f  %s\n",
                  single ? "float32" : "float64", xgrad::threads(), f.tape_s * 1e3, f.bare_s * 1e3,
                  flops / f.tape_s / 1e9, flops / f.bare_s / 1e9, ratio, ok ? "PASS" : "MISS");
    }
  }

  xgrad::set_threads(1);
  std::printf("\n(c) sigmoid forward on 240x50 N(0,1), ns per element (incl. the input copy)\n");
  std::printf("    %-7s %14s %24s %8s\n", "dtype", "sigmoid op", "1/(1+xt::exp(-x)) xsimd",
              "speedup");
  for (const bool single : {true, false}) {
    const int iters = quick ? 200 : 2000;
    const SigmoidFigures f =
        single ? sigmoid_figures<float>(repeats, iters) : sigmoid_figures<double>(repeats, iters);
    std::printf("    %-7s %14.3f %24.3f %8.2f\n", single ? "float32" : "float64", f.op_ns,
                f.xsimd_ns, f.xsimd_ns / f.op_ns);
  }

  std::printf("\nsummary: small op %s, matmul %s\n", step_ok ? "PASS" : "MISS",
              all_ok ? "PASS" : "MISS");
  return 0;
}
