// Specification: after its first step a training loop allocates nothing at all — no
// tape node, no value or gradient buffer, no temporary in any forward or backward rule.
//
// This file counts heap allocations with tests/allocation_counter.hpp, which interposes
// every glibc allocation function for the whole test executable. Under AddressSanitizer,
// which owns the allocator, the counting tests are compiled out; the buffer-reuse test
// in test_tape_lifecycle.cpp still runs there.
#include <cstdlib>

#include <xtensor/xnoalias.hpp>

#include "engine_test_util.hpp"

#include "../allocation_counter.hpp"

using namespace xgrad_test;

#if defined(XGRAD_COUNT_ALLOCATIONS)
TEST_CASE_TEMPLATE("a training step allocates nothing after the first one", T, float, double) {
  using Param = xgrad::Parameter<T>;
  using Tens = xgrad::Tensor<T>;
  Param w1(random_matrix<T>(6, 8, 1), "w1"), b1(random_matrix<T>(1, 8, 2), "b1");
  Param w2(random_matrix<T>(8, 3, 3), "w2"), b2(random_matrix<T>(1, 3, 4), "b2");
  Param* params[] = {&w1, &b1, &w2, &b2};
  const Matrix<T> data = random_matrix<T>(20, 6, 5);
  const Matrix<T> labels = one_hot_rows<T>(20, 3, 6);
  const Matrix<T> targets = random_matrix<T>(20, 3, 7, Domain::Unit);
  std::vector<std::size_t> order(20);
  for (std::size_t i = 0; i < 20; ++i)
    order[i] = (7 * i) % 20;
  xgrad::Tape<T> tape;
  T seen = 0;  // keeps the results observable

  // Every built-in op of the engine takes part in one of the two losses (a custom op
  // allocates by design: its closure copy, its record and the matrices its rule returns).
  auto step = [&](std::size_t s) {
    tape.clear();
    const std::size_t begin = (s % 4) * 5;
    const Tens x = tape.gather_rows(data, order, begin, begin + 5);
    const Tens y = tape.gather_rows(labels, order, begin, begin + 5);
    const Tens t = tape.gather_rows(targets, order, begin, begin + 5);
    const Tens pre = xgrad::matmul(x, tape.parameter(w1)) + tape.parameter(b1);
    const Tens h = xgrad::elu(pre) * xgrad::sigmoid(pre) -
                   xgrad::leaky_relu(pre) / xgrad::exp(pre) + xgrad::relu(pre) + xgrad::tanh(-pre) +
                   xgrad::abs(pre * T(0.5) + T(1)) + xgrad::sin(pre) * xgrad::cos(pre);
    const Tens z = xgrad::matmul(h, tape.parameter(w2)) + tape.parameter(b2);
    const Tens positive = xgrad::square(z) + T(1);
    const Tens extra = xgrad::mean(xgrad::log(positive)) +
                       xgrad::sum(xgrad::sqrt(positive), xgrad::Axis::Rows) +
                       xgrad::sum(xgrad::pow(positive, T(1.5)), xgrad::Axis::Cols) * T(1e-3) +
                       xgrad::mean(xgrad::softmax(z) * xgrad::log_softmax(z)) +
                       xgrad::sum(T(1) / positive) + xgrad::sum(xgrad::transpose(z));
    const Tens loss = xgrad::softmax_cross_entropy(z, y) + xgrad::bce_with_logits(z, t) +
                      xgrad::mse_loss(xgrad::sigmoid(z), t) + xgrad::mean(extra);
    for (Param* p : params)
      p->zero_grad();
    tape.backward(loss);
    {
      xgrad::NoGradGuard<T> no_grad(tape);
      seen += xgrad::softmax(z).value()(0, 0);
    }
    // The update without a temporary: a plain `-=` in xtensor would evaluate into one.
    for (Param* p : params)
      xt::noalias(p->value()) -= T(0.01) * p->grad();
    seen += loss.item();
  };

  step(0);
  step(1);
  long allocations = 0;
  for (std::size_t s = 2; s < 12; ++s)
    allocations += allocations_during([&] { step(s); });
  CHECK(allocations == 0);
  CHECK(std::isfinite(static_cast<double>(seen)));
  // The finite check reads every value and gradient, and allocates nothing either.
  tape.set_check_finite(true);
  step(12);
  allocations = 0;
  for (std::size_t s = 13; s < 16; ++s)
    allocations += allocations_during([&] { step(s); });
  CHECK(allocations == 0);
  tape.set_check_finite(false);

  // An explicit seed gradient (backward from a non-scalar root) allocates nothing either.
  Param a(random_matrix<T>(4, 4, 8), "a"), b(random_matrix<T>(4, 4, 9), "b");
  const Matrix<T> seed = random_matrix<T>(4, 4, 10);
  xgrad::Tape<T> small;
  auto small_step = [&] {
    small.clear();
    small.backward(small.parameter(a) + small.parameter(b), seed);
  };
  small_step();
  CHECK(allocations_during([&] {
          for (int s = 0; s < 10; ++s)
            small_step();
        }) == 0);

  // The counter does count: a fresh tape's first step allocates its nodes and buffers.
  xgrad::Tape<T> fresh;
  const long first = allocations_during([&] {
    const Tens v = fresh.constant(data);
    seen += xgrad::sum(v).item();
  });
  CHECK(first > 0);
}

TEST_CASE("the counter sees every kind of allocation the engine can make") {
  // An xtensor buffer (xsimd's aligned allocator: posix_memalign), operator new, calloc.
  CHECK(allocations_during([] {
          xt::xtensor<float, 1> t;
          t.resize({1000});
        }) > 0);
  // The pointers escape through a volatile: clang at -O2 removes an allocation nobody
  // can observe (a vector never read, calloc straight into free), and the count with it.
  [[maybe_unused]] static void* volatile escaped = nullptr;
  CHECK(allocations_during([] {
          std::vector<int> v(1000);
          escaped = v.data();
        }) > 0);
  CHECK(allocations_during([] {
          void* p = std::calloc(10, 100);
          escaped = p;
          std::free(p);
        }) > 0);
}

TEST_CASE_TEMPLATE("steps whose inputs keep different columns allocate nothing after the first", T,
                   float, double) {
  // matmul drops the all-zero columns of a constant input (ops_matmul.cpp); its buffers
  // keep their full size, so a later batch keeping more columns than the first reuses them.
  constexpr std::size_t rows = 32, inputs = 128;
  const std::size_t kept_by_group[] = {10, 25, 40};  // the first step keeps the fewest
  Matrix<T> data = random_matrix<T>(3 * rows, inputs, 11);
  for (std::size_t r = 0; r < 3 * rows; ++r) {
    for (std::size_t c = kept_by_group[r / rows]; c < inputs; ++c)
      data(r, c) = T(0);
  }
  std::vector<std::size_t> order(3 * rows);
  for (std::size_t i = 0; i < order.size(); ++i)
    order[i] = i;
  xgrad::Parameter<T> w(random_matrix<T>(inputs, 64, 12), "W"), b(random_matrix<T>(1, 64, 13), "b");
  xgrad::Tape<T> tape;
  std::size_t compacted = 0;
  auto step = [&](std::size_t s) {
    tape.clear();
    const xgrad::Tensor<T> x = tape.gather_rows(data, order, (s % 3) * rows, (s % 3 + 1) * rows);
    const xgrad::Tensor<T> z = xgrad::matmul(x, tape.parameter(w));
    compacted += tape.node(z.index()).column_runs.empty() ? 0 : 1;
    w.zero_grad();
    b.zero_grad();
    tape.backward(xgrad::mean(xgrad::square(z + tape.parameter(b))));
    xt::noalias(w.value()) -= T(0.01) * w.grad();
  };
  step(0);
  long allocations = 0;
  for (std::size_t s = 1; s < 10; ++s)
    allocations += allocations_during([&] { step(s); });
  CHECK(allocations == 0);
  CHECK(compacted == 10);  // every step took the compact path
}
#endif
