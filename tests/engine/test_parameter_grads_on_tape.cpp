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

TEST_CASE("a walk from an earlier root leaves nothing of a later root's walk to add") {
  // keep_graph: walk from root2 (reaches W), then from root1 recorded before W. The
  // second walk does not reach W, so W's gradient of the first walk must not be added.
  Parameter<double> a(Matrix<double>{{3.0}});
  Parameter<double> w(Matrix<double>{{2.0}});
  Tape<double> tape;
  tape.set_parameter_grads_on_tape(true);
  const auto A = tape.parameter(a);
  const auto root1 = xgrad::sum(A * A);
  const auto W = tape.parameter(w);
  const auto root2 = xgrad::sum(W * W);
  tape.backward(root2, xgrad::BackwardOptions{true});
  tape.backward(root1);
  tape.add_parameter_grads();
  CHECK(a.grad()(0, 0) == 6.0);
  CHECK(w.grad()(0, 0) == 0.0);
}

TEST_CASE("a parameter whose value changed shape gets a gradient of the new shape") {
  Parameter<double> w(Matrix<double>{{1.0, 2.0}});
  w.value() = Matrix<double>{{1.0, 2.0, 3.0}};  // the user replaced it: grad is still 1x2
  Tape<double> tape;
  tape.set_parameter_grads_on_tape(true);
  const auto W = tape.parameter(w);
  CHECK(w.grad().shape(1) == 2);  // left alone while other tapes may use it
  tape.backward(xgrad::sum(W * 2.0));
  tape.add_parameter_grads();
  REQUIRE(w.grad().shape(1) == 3);
  CHECK(w.grad()(0, 2) == 2.0);
}

TEST_CASE("two tapes run backward on the same parameters at once, as they would in turn") {
  // Rows 0-1 on a plain tape and rows 2-3 on an on-tape one, each on its own thread,
  // then the second added in: bit for bit the result of running them one after the
  // other, and the gradient of the 4-row loss up to the grouping of the sums.
  const Matrix<double> top = xt::view(kX, xt::range(0, 2), xt::all());
  const Matrix<double> bottom = xt::view(kX, xt::range(2, 4), xt::all());
  Parameter<double> w(kW);
  auto step = [&](bool at_once) {
    w.zero_grad();
    Tape<double> first, second;
    second.set_parameter_grads_on_tape(true);
    auto run_second = [&] {
      xgrad::Tensor<double> loss;
      record_loss(second, w, bottom, loss);
      second.backward(loss);
    };
    std::thread other;
    if (at_once) other = std::thread(run_second);
    xgrad::Tensor<double> loss;
    record_loss(first, w, top, loss);
    first.backward(loss);
    if (at_once)
      other.join();
    else
      run_second();
    second.add_parameter_grads();
    return Matrix<double>(w.grad());
  };
  const Matrix<double> in_turn = step(false);
  CHECK(xgrad_test::max_abs_diff(in_turn, reference_gradient(kX)) < 1e-15);
  for (int round = 0; round < 20; ++round) {
    CAPTURE(round);
    CHECK(xgrad_test::max_abs_diff(step(true), in_turn) == 0.0);
  }
}
