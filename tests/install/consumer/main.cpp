// Differentiates f(a, b) = sum(a * b + a^2) with the installed engine and prints the
// gradients, which tests/install/run_install_test.cmake compares with the exact values;
// it also says so if the OpenBLAS it runs on is not the OpenMP build xgrad needs.
#include <cstdio>

#include <xgrad/ops.hpp>
#include <xgrad/parallel.hpp>
#include <xgrad/tape.hpp>

int main() {
  xgrad::Tape<double> tape;
  const xgrad::Tensor<double> a = tape.variable(xgrad::Matrix<double>{{3.0, -1.0}});
  const xgrad::Tensor<double> b = tape.variable(xgrad::Matrix<double>{{4.0, 2.0}});
  const xgrad::Tensor<double> f = xgrad::sum(a * b + xgrad::square(a));
  tape.backward(f);
  std::printf("df/da = %g %g\n", a.grad()(0, 0), a.grad()(0, 1));
  std::printf("df/db = %g %g\n", b.grad()(0, 0), b.grad()(0, 1));
  // The installed config must link OpenBLAS's OpenMP build (one thread pool).
  if (!xgrad::detail::one_thread_pool()) std::printf("OpenBLAS is not its OpenMP build\n");
  return 0;
}
