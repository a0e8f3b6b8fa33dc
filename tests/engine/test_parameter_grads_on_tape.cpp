// Parameter gradients kept on the tape (Tape::set_parameter_grads_on_tape), the engine
// side of data-parallel shards: several tapes run backward() on the same parameters at
// once, each into its own buffers, and add_parameter_grads() adds them in afterwards.
#include <thread>

#include <xtensor/xview.hpp>

#include <doctest/doctest.h>

#include "engine_test_util.hpp"

using xgrad::Matrix;
using xgrad::Parameter;
using xgrad::Tape;

namespace {

// loss = sum(sigmoid(x W) * c) for a 4x2 x, W 2x3, c 1x3; returns the W node.
xgrad::Tensor<double> record_loss(Tape<double>& tape, const Parameter<double>& w,
                                  const Matrix<double>& x, xgrad::Tensor<double>& loss) {
  const auto W = tape.parameter(w);
  const auto h = xgrad::sigmoid(xgrad::matmul(tape.constant(x), W));
  loss = xgrad::sum(h * tape.constant(Matrix<double>{{1.0, -2.0, 0.5}}));
  return W;
}

const Matrix<double> kX{{1.0, -0.5}, {0.25, 2.0}, {-1.5, 0.75}, {0.5, 0.5}};
const Matrix<double> kW{{0.3, -0.2, 0.1}, {0.05, 0.4, -0.6}};

// dloss/dW on a plain tape, accumulated into a fresh parameter's grad().
Matrix<double> reference_gradient(const Matrix<double>& x) {
  Parameter<double> w(kW);
  Tape<double> tape;
  xgrad::Tensor<double> loss;
  record_loss(tape, w, x, loss);
  tape.backward(loss);
  return w.grad();
}

}  // namespace

TEST_CASE("with parameter grads on the tape, backward leaves parameter.grad() alone") {
  Parameter<double> w(kW);
  Tape<double> tape;
  tape.set_parameter_grads_on_tape(true);
  CHECK(tape.parameter_grads_on_tape());
  xgrad::Tensor<double> loss;
  const auto W = record_loss(tape, w, kX, loss);
  tape.backward(loss);
  const Matrix<double> expected = reference_gradient(kX);
  CHECK(xgrad_test::max_abs_diff(w.grad(), Matrix<double>(xt::zeros<double>({2, 3}))) == 0.0);
  CHECK(xgrad_test::max_abs_diff(W.grad(), expected) == 0.0);  // the node's own buffer

  // add_parameter_grads adds (not assigns) into whatever grad() holds.
  w.grad().fill(1.0);
  tape.add_parameter_grads();
  CHECK(xgrad_test::max_abs_diff(w.grad(), Matrix<double>(expected + 1.0)) == 0.0);
}

TEST_CASE("the on-tape gradient of a reused tape is this step's, not the sum over steps") {
  Parameter<double> w(kW);
  Tape<double> tape;
  tape.set_parameter_grads_on_tape(true);
  for (int step = 0; step < 3; ++step) {
    tape.clear();
    xgrad::Tensor<double> loss;
    const auto W = record_loss(tape, w, kX, loss);
    tape.backward(loss);
    CHECK(xgrad_test::max_abs_diff(W.grad(), reference_gradient(kX)) == 0.0);
  }
  tape.add_parameter_grads();  // only the last backward's gradient
  CHECK(xgrad_test::max_abs_diff(w.grad(), reference_gradient(kX)) == 0.0);
}

TEST_CASE("a parameter recorded twice on the tape adds the gradient of both uses") {
  Parameter<double> w(Matrix<double>{{2.0, -1.0}});
  Tape<double> tape;
  tape.set_parameter_grads_on_tape(true);
  // loss = sum(3 w) + sum(w * w): dloss/dw = 3 + 2w, one part through each node.
  const auto a = tape.parameter(w);
  const auto b = tape.parameter(w);
  tape.backward(xgrad::sum(a * 3.0) + xgrad::sum(b * b));
  tape.add_parameter_grads();
  CHECK(w.grad()(0, 0) == 7.0);
  CHECK(w.grad()(0, 1) == 1.0);
}

TEST_CASE("a parameter the backward pass did not reach adds nothing") {
  Parameter<double> used(Matrix<double>{{1.5}});
  Parameter<double> unused(Matrix<double>{{4.0}});
  Tape<double> tape;
  tape.set_parameter_grads_on_tape(true);
  const auto u = tape.parameter(used);
  const auto loss = xgrad::sum(u * u);
  const auto late = tape.parameter(unused);  // recorded after the root
  tape.backward(loss);
  CHECK(late.grad()(0, 0) == 0.0);
  unused.grad().fill(5.0);
  tape.add_parameter_grads();
  CHECK(used.grad()(0, 0) == 3.0);
  CHECK(unused.grad()(0, 0) == 5.0);
}

TEST_CASE("the setting applies to parameters recorded after it, a plain tape adds directly") {
  Parameter<double> w(kW);
  Tape<double> tape;
  xgrad::Tensor<double> loss;
  record_loss(tape, w, kX, loss);  // recorded while off
  tape.set_parameter_grads_on_tape(true);
  tape.backward(loss);
  CHECK(xgrad_test::max_abs_diff(w.grad(), reference_gradient(kX)) == 0.0);
  tape.add_parameter_grads();  // nothing on the tape to add
  CHECK(xgrad_test::max_abs_diff(w.grad(), reference_gradient(kX)) == 0.0);
}

TEST_CASE("two tapes run backward on the same parameters at once and sum to the whole batch") {
  // Rows 0-1 on one tape and rows 2-3 on another, each on its own thread, the second
  // keeping its gradient on the tape: the sum is the gradient of the 4-row loss.
  const Matrix<double> top = xt::view(kX, xt::range(0, 2), xt::all());
  const Matrix<double> bottom = xt::view(kX, xt::range(2, 4), xt::all());
  Parameter<double> w(kW);
  for (int round = 0; round < 20; ++round) {
    w.zero_grad();
    Tape<double> first, second;
    second.set_parameter_grads_on_tape(true);
    std::thread other([&] {
      xgrad::Tensor<double> loss;
      record_loss(second, w, bottom, loss);
      second.backward(loss);
    });
    xgrad::Tensor<double> loss;
    record_loss(first, w, top, loss);
    first.backward(loss);
    other.join();
    second.add_parameter_grads();
    CHECK(xgrad_test::max_abs_diff(w.grad(), reference_gradient(kX)) < 1e-15);
  }
}
