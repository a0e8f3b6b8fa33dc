// Specification of the tape's life cycle: gradients of reused tensors add up, a kept
// graph can be walked twice, a released one cannot, parameters accumulate until
// zero_grad, clear() invalidates handles but keeps every buffer, and a training loop
// stops growing the tape after its first step.
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include <memory>

#include "engine_test_util.hpp"

using namespace xgrad_test;

namespace {
Matrix<double> scalar(double v) {
  Matrix<double> m({1, 1});
  m(0, 0) = v;
  return m;
}
}  // namespace

TEST_CASE("a tensor used several times gets the sum of its gradients") {
  Tape tape;
  SUBCASE("micrograd's b = a + a and c = b + b") {
    const Tensor a = tape.variable(scalar(-3.0));
    const Tensor b = a + a;
    const Tensor c = b + b;
    tape.backward(c);
    CHECK(c.item() == -12.0);
    CHECK(b.grad()(0, 0) == 2.0);
    CHECK(a.grad()(0, 0) == 4.0);
  }
  SUBCASE("a * a on a matrix gives 2a") {
    const Matrix<double> v = random_matrix(2, 3, 1);
    const Tensor a = tape.variable(v);
    tape.backward(xgrad::sum(a * a));
    for (std::size_t k = 0; k < v.size(); ++k)
      CHECK(a.grad().data()[k] == 2 * v.data()[k]);
  }
  SUBCASE("a parameter used in two places") {
    xgrad::Parameter<double> w(scalar(5.0), "w");
    const Tensor x = tape.parameter(w);
    const Tensor y = x * 3.0 + xgrad::square(x);  // dy/dw = 3 + 2w = 13
    tape.backward(y);
    CHECK(w.grad()(0, 0) == doctest::Approx(13.0));
  }
  SUBCASE("the same parameter recorded twice on one tape") {
    xgrad::Parameter<double> w(scalar(2.0), "w");
    const Tensor y = tape.parameter(w) * tape.parameter(w);  // d(w^2)/dw = 4
    tape.backward(y);
    CHECK(w.grad()(0, 0) == doctest::Approx(4.0));
  }
}

TEST_CASE("backward twice on a kept graph gives the same result") {
  Tape tape;
  xgrad::Parameter<double> w(random_matrix(4, 3, 2), "w");
  xgrad::Parameter<double> b(random_matrix(1, 3, 3), "b");
  const Tensor x = tape.variable(random_matrix(5, 4, 4));
  const Tensor loss = xgrad::softmax_cross_entropy(
      xgrad::tanh(xgrad::matmul(x, tape.parameter(w)) + tape.parameter(b)),
      tape.constant(one_hot_rows(5, 3, 5)));

  tape.backward(loss, xgrad::BackwardOptions{true});
  const Matrix<double> x_grad = x.grad();
  const Matrix<double> w_grad = w.grad();
  const Matrix<double> b_grad = b.grad();

  tape.backward(loss, xgrad::BackwardOptions{true});
  // Tape tensors' gradients are recomputed: identical.
  CHECK(max_abs_diff(x.grad(), x_grad) == 0.0);
  // Parameters accumulate across backward calls (like torch): twice as much, up to the
  // rounding of adding the bias's five row contributions onto a non-zero sum.
  for (std::size_t k = 0; k < w_grad.size(); ++k) {
    CHECK(w.grad().data()[k] == doctest::Approx(2 * w_grad.data()[k]).epsilon(1e-14));
  }
  for (std::size_t k = 0; k < b_grad.size(); ++k) {
    CHECK(b.grad().data()[k] == doctest::Approx(2 * b_grad.data()[k]).epsilon(1e-14));
  }

  // After zero_grad a third walk reproduces the first one exactly.
  w.zero_grad();
  b.zero_grad();
  tape.backward(loss);
  CHECK(max_abs_diff(w.grad(), w_grad) == 0.0);
  CHECK(max_abs_diff(b.grad(), b_grad) == 0.0);
  CHECK(max_abs_diff(x.grad(), x_grad) == 0.0);
}

TEST_CASE("without keep_graph the graph is released and a second backward throws") {
  Tape tape;
  const Tensor x = tape.variable(random_matrix(2, 2, 6));
  const Tensor loss = xgrad::sum(xgrad::exp(x));
  tape.backward(loss);
  CHECK_THROWS_WITH_AS(tape.backward(loss), doctest::Contains("already released"),
                       std::logic_error);
  // Recording the next step before clear() is a bug in the caller's loop, said plainly.
  CHECK_THROWS_WITH_AS(xgrad::exp(x),
                       "exp: the tape's graph was released by backward(); call tape.clear() "
                       "before recording the next step",
                       std::logic_error);
  // Leaves too, each named as itself (variable() was reported as "constant").
  const std::vector<std::size_t> rows = {0, 1};
  for (const auto& leaf : std::vector<std::pair<std::string, std::function<void()>>>{
           {"constant", [&] { tape.constant(random_matrix(2, 2, 1)); }},
           {"variable", [&] { tape.variable(random_matrix(2, 2, 1)); }},
           {"parameter", [&] { tape.parameter(xgrad::Parameter<double>(random_matrix(2, 2, 1))); }},
           {"gather_rows", [&] { tape.gather_rows(random_matrix(2, 2, 1), rows, 0, 2); }}}) {
    const std::string& name = leaf.first;  // not a structured binding: clang's CAPTURE
    CAPTURE(name);
    CHECK_THROWS_WITH_AS(leaf.second(),
                         (name + ": the tape's graph was released by backward(); call "
                                 "tape.clear() before recording the next step")
                             .c_str(),
                         std::logic_error);
  }
  {
    // Evaluating the step's outputs after backward records values only: allowed.
    xgrad::NoGradGuard<double> no_grad(tape);
    CHECK(xgrad::exp(loss).item() == doctest::Approx(std::exp(loss.item())));
  }
  // clear() starts the next step.
  tape.clear();
  const Tensor y = tape.variable(random_matrix(2, 2, 6));
  CHECK_NOTHROW(tape.backward(xgrad::sum(y)));
}

TEST_CASE("parameter gradients accumulate over steps until zero_grad") {
  xgrad::Parameter<double> w(random_matrix(3, 2, 7), "w");
  const Matrix<double> x = random_matrix(4, 3, 8);
  Tape tape;
  auto step = [&] {
    tape.clear();
    tape.backward(xgrad::sum(xgrad::matmul(tape.constant(x), tape.parameter(w))));
  };
  step();
  const Matrix<double> once = w.grad();
  step();
  step();
  for (std::size_t k = 0; k < once.size(); ++k) {
    CHECK(w.grad().data()[k] == doctest::Approx(3 * once.data()[k]));
  }
  w.zero_grad();
  for (const double g : w.grad())
    CHECK(g == 0.0);
  step();
  CHECK(max_abs_diff(w.grad(), once) == 0.0);
}

TEST_CASE("a handle from a cleared tape throws instead of reading reused memory") {
  Tape tape;
  const Tensor old = tape.variable(random_matrix(2, 2, 9));
  const Tensor old_sum = xgrad::sum(old);
  tape.backward(old_sum);
  tape.clear();
  // The new step reuses the same node slots and buffers.
  const Tensor fresh = tape.variable(random_matrix(2, 2, 10));
  CHECK(fresh.index() == old.index());

  const std::string msg =
      "tensor #0 is from a cleared tape (generation 1, tape is at generation 2)";
  CHECK_THROWS_WITH_AS(old.value(), ("value: " + msg).c_str(), std::logic_error);
  CHECK_THROWS_WITH_AS(old.grad(), ("grad: " + msg).c_str(), std::logic_error);
  CHECK_THROWS_WITH_AS(old.requires_grad(), ("requires_grad: " + msg).c_str(), std::logic_error);
  CHECK_THROWS_WITH_AS(xgrad::add(old, fresh), ("add: " + msg).c_str(), std::logic_error);
  CHECK_THROWS_WITH_AS(xgrad::matmul(fresh, old), ("matmul: " + msg).c_str(), std::logic_error);
  CHECK_THROWS_WITH_AS(tape.backward(old_sum), doctest::Contains("is from a cleared tape"),
                       std::logic_error);
  CHECK_NOTHROW(fresh.value());
}

TEST_CASE("a handle from another tape or an empty handle throws") {
  Tape one, two;
  const Tensor a = one.variable(random_matrix(2, 2, 11));
  const Tensor b = two.variable(random_matrix(2, 2, 12));
  // The message names the op and the tensor (#0 of its own tape).
  CHECK_THROWS_WITH_AS(a + b, "add: tensor #0 belongs to another tape", std::invalid_argument);
  CHECK_THROWS_WITH_AS(two.backward(xgrad::sum(a)), "backward: tensor #1 belongs to another tape",
                       std::invalid_argument);
  const Tensor empty;
  CHECK_FALSE(empty.defined());
  CHECK(a.defined());
  CHECK_THROWS_WITH_AS(empty.value(), "xgrad::Tensor::value: empty handle (default-constructed)",
                       std::logic_error);
  CHECK_THROWS_WITH_AS(empty.item(), "xgrad::Tensor::item: empty handle (default-constructed)",
                       std::logic_error);
  CHECK_THROWS_WITH_AS(empty.grad(), "xgrad::Tensor::grad: empty handle (default-constructed)",
                       std::logic_error);
  CHECK_THROWS_WITH_AS(empty.requires_grad(),
                       "xgrad::Tensor::requires_grad: empty handle (default-constructed)",
                       std::logic_error);
  CHECK_THROWS_WITH_AS(empty.tape(), "xgrad::Tensor: empty handle (default-constructed)",
                       std::logic_error);
  // An op names itself whichever side the empty handle is on.
  CHECK_THROWS_WITH_AS(empty + a, "add: tensor belongs to no tape (empty handle)",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(a + empty, "add: tensor belongs to no tape (empty handle)",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(xgrad::matmul(empty, a), "matmul: tensor belongs to no tape (empty handle)",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(xgrad::mse_loss(empty, a),
                       "mse_loss: tensor belongs to no tape (empty handle)", std::invalid_argument);
}

TEST_CASE("item() on a handle of a cleared tape names item") {
  Tape tape;
  const Tensor x = tape.variable(Matrix<double>{{2.0}});
  tape.clear();
  CHECK_THROWS_WITH_AS(x.item(),
                       "item: tensor #0 is from a cleared tape (generation 1, tape is at "
                       "generation 2)",
                       std::logic_error);
}

TEST_CASE("gradients are zero where nothing flowed, never a previous step's values") {
  Tape tape;
  const Matrix<double> v = random_matrix(2, 3, 13);
  {
    const Tensor x = tape.variable(v);
    const Tensor unused = tape.variable(v);
    const Tensor loss = xgrad::sum(xgrad::exp(x));
    const Tensor after_root = xgrad::exp(x);  // recorded after the root: no gradient
    tape.backward(loss);
    for (const double g : unused.grad())
      CHECK(g == 0.0);
    for (const double g : after_root.grad())
      CHECK(g == 0.0);
    for (const double g : x.grad())
      CHECK(g != 0.0);
  }
  tape.clear();
  // Same ops on the same slots, but no backward in this step: grad() must not show the
  // gradient the reused buffers held in the previous step.
  const Tensor x = tape.variable(v);
  const Tensor y = xgrad::exp(x);
  for (const double g : x.grad())
    CHECK(g == 0.0);
  for (const double g : y.grad())
    CHECK(g == 0.0);
  const Tensor c = tape.constant(v);
  CHECK_THROWS_WITH_AS(c.grad(),
                       "xgrad::Tensor::grad: tensor #2 (constant) does not require a gradient",
                       std::logic_error);
}

TEST_CASE("the tape does not grow across repeated training steps and reuses its buffers") {
  // A two-layer classifier trained by plain SGD: the same shapes every step.
  xgrad::Parameter<double> w1(random_matrix(6, 8, 14), "w1"), b1(random_matrix(1, 8, 15), "b1");
  xgrad::Parameter<double> w2(random_matrix(8, 3, 16), "w2"), b2(random_matrix(1, 3, 17), "b2");
  std::vector<xgrad::Parameter<double>> params = {w1, b1, w2, b2};
  const Matrix<double> data = random_matrix(20, 6, 18);
  const Matrix<double> labels = one_hot_rows(20, 3, 19);
  std::vector<std::size_t> order(20);
  for (std::size_t i = 0; i < 20; ++i)
    order[i] = (7 * i) % 20;

  Tape tape;
  std::vector<Tensor> handles;
  auto step = [&](std::size_t s) {
    tape.clear();
    const std::size_t begin = (s % 4) * 5;
    const Tensor x = tape.gather_rows(data, order, begin, begin + 5);
    const Tensor y = tape.gather_rows(labels, order, begin, begin + 5);
    const Tensor h = xgrad::relu(xgrad::matmul(x, tape.parameter(w1)) + tape.parameter(b1));
    const Tensor z = xgrad::matmul(h, tape.parameter(w2)) + tape.parameter(b2);
    const Tensor loss = xgrad::softmax_cross_entropy(z, y);
    for (auto& p : params)
      p.zero_grad();
    tape.backward(loss);
    {
      // Evaluation and the update record nothing that needs a gradient.
      xgrad::NoGradGuard<double> no_grad(tape);
      const Tensor probabilities = xgrad::softmax(z);
      CHECK(probabilities.rows() == 5);
    }
    for (auto& p : params)
      p.value() -= 0.1 * p.grad();
    handles = {x, y, h, z, loss};
    return loss.item();
  };

  const double first_loss = step(0);
  const std::size_t size = tape.size(), capacity = tape.capacity();
  std::vector<const double*> values, grads;
  for (const Tensor& t : handles) {
    values.push_back(t.value().data());
    grads.push_back(t.requires_grad() ? t.grad().data() : nullptr);
  }
  double last_loss = first_loss;
  for (std::size_t s = 1; s < 40; ++s) {
    last_loss = step(s);
    REQUIRE(tape.size() == size);
    REQUIRE(tape.capacity() == capacity);
    for (std::size_t k = 0; k < handles.size(); ++k) {
      CHECK(handles[k].value().data() == values[k]);
      if (grads[k] != nullptr) CHECK(handles[k].grad().data() == grads[k]);
    }
  }
  CHECK(capacity == size);        // nothing was recorded beyond the one step's ops
  CHECK(last_loss < first_loss);  // and the loop did train
}

TEST_CASE("a graph of 100000 ops walks backward without recursion") {
  Tape tape;
  const Tensor x = tape.variable(scalar(0.5));
  Tensor y = x;
  for (int i = 0; i < 100000; ++i)
    y = y + 1e-6;
  tape.backward(y);
  CHECK(y.item() == doctest::Approx(0.6));
  CHECK(x.grad()(0, 0) == 1.0);
}

TEST_CASE("gather_rows copies the selected rows in order") {
  Tape tape;
  const Matrix<double> data = random_matrix(6, 3, 20);
  const std::vector<std::size_t> order = {5, 0, 3, 3, 1};
  const Tensor x = tape.gather_rows(data, order, 1, 4);  // rows 0, 3, 3
  REQUIRE(x.rows() == 3);
  REQUIRE(x.cols() == 3);
  for (std::size_t j = 0; j < 3; ++j) {
    CHECK(x.value()(0, j) == data(0, j));
    CHECK(x.value()(1, j) == data(3, j));
    CHECK(x.value()(2, j) == data(3, j));
  }
  CHECK_FALSE(x.requires_grad());
  CHECK_THROWS_WITH_AS(tape.gather_rows(data, order, 3, 6),
                       "gather_rows: range [3, 6) outside an index list of 5", std::out_of_range);
  const std::vector<std::size_t> bad = {1, 6};
  CHECK_THROWS_WITH_AS(tape.gather_rows(data, bad, 0, 2),
                       "gather_rows: row index 6 outside data with 6 rows", std::out_of_range);
  // Refused calls record nothing (a bad index once left a node of garbage behind).
  CHECK(tape.size() == 1);
}

TEST_CASE("a tape's own values can be recorded again while the tape grows") {
  // tape.constant(t.value()) detaches t; recording it appends a node, which must not
  // move t's storage away from under the reference (it did once: use after free).
  Tape tape;
  const Matrix<double> v = random_matrix(3, 4, 21);
  Tensor t = tape.variable(v);
  for (int i = 0; i < 200; ++i) {
    const Tensor c = tape.constant(t.value());
    t = tape.variable(c.value());
    const std::vector<std::size_t> rows = {2, 0};
    const Tensor g = tape.gather_rows(t.value(), rows, 0, 2);
    REQUIRE(g.value()(1, 3) == v(0, 3));
  }
  CHECK(max_abs_diff(t.value(), v) == 0.0);
}

TEST_CASE(
    "a constant filled in place holds what fill wrote, needs no gradient, reuses its buffer") {
  Tape tape;
  const double* buffer = nullptr;
  for (int step = 0; step < 2; ++step) {
    tape.clear();
    const Tensor c = tape.constant(2, 3, [](double* data, std::size_t n) {
      for (std::size_t k = 0; k < n; ++k)
        data[k] = 0.5 * double(k);
    });
    REQUIRE(c.rows() == 2);
    REQUIRE(c.cols() == 3);
    for (std::size_t k = 0; k < 6; ++k)
      CHECK(c.value().data()[k] == 0.5 * double(k));  // row-major
    const Tensor a = tape.variable(random_matrix(2, 3, 5));
    tape.backward(xgrad::sum(a * c));
    CHECK(max_abs_diff(a.grad(), c.value()) == 0.0);  // the gradient flows past it
    if (step == 0)
      buffer = c.value().data();
    else
      CHECK(c.value().data() == buffer);  // the second step writes the same buffer
  }
}

TEST_CASE("a parameter given another shape between recording and backward is refused") {
  xgrad::Parameter<double> w(Matrix<double>{{2.0, 1.0}}, "w");
  xgrad::Tape<double> tape;
  const auto loss = xgrad::sum(xgrad::square(tape.parameter(w)));
  w.value() = Matrix<double>{{1.0, 2.0, 3.0}};  // the square's buffers are 1x2
  CHECK_THROWS_WITH_AS(tape.backward(loss),
                       "backward: parameter 'w' was 1x2 when recorded and is 1x3 now; record "
                       "the step again after changing a parameter's shape",
                       std::logic_error);
  // Recorded again, the new shape is used.
  tape.clear();
  w.zero_grad();
  tape.backward(xgrad::sum(xgrad::square(tape.parameter(w))));
  CHECK(w.grad() == Matrix<double>{{2.0, 4.0, 6.0}});
}

TEST_CASE("a parameter whose value was replaced by another shape gets a gradient of that shape") {
  xgrad::Parameter<double> p(Matrix<double>{{1.0, 2.0}, {3.0, 4.0}}, "p");
  p.value() = Matrix<double>{{1.0}, {-2.0}, {0.5}};  // a new 3x1 value; grad() is still 2x2
  xgrad::Tape<double> tape;
  const auto x = tape.parameter(p);
  const auto loss = xgrad::sum(xgrad::square(x));
  CHECK_NOTHROW(tape.backward(loss));
  // d/dp sum(p^2) = 2 p.
  REQUIRE(p.grad().shape(0) == 3);
  REQUIRE(p.grad().shape(1) == 1);
  CHECK(p.grad() == Matrix<double>{{2.0}, {-4.0}, {1.0}});
}

TEST_CASE("clear() releases the parameters, so a dropped network is freed") {
  xgrad::Tape<double> tape;
  std::weak_ptr<xgrad::Parameter<double>::Data> storage;
  {
    xgrad::Parameter<double> p(Matrix<double>{{1.0, 2.0}}, "w");
    const auto y = xgrad::sum(tape.parameter(p) * 2.0);
    tape.backward(y);
    storage = tape.node(0).param;  // the tape's own handle on p's storage
    REQUIRE_FALSE(storage.expired());
  }
  // p is gone; only the tape can still hold its storage, until clear().
  tape.clear();
  CHECK(storage.expired());
}

TEST_CASE("a seeded backward from a parameter's own tensor adds to its gradient") {
  xgrad::Parameter<double> p(Matrix<double>{{1.0, 2.0}}, "w");
  const Matrix<double> seed = {{0.5, -1.5}};
  xgrad::Tape<double> tape;
  tape.backward(tape.parameter(p), seed);
  tape.clear();
  tape.backward(tape.parameter(p), seed);
  // Parameters accumulate until zero_grad(): two walks give twice the seed.
  CHECK(p.grad() == Matrix<double>{{1.0, -3.0}});
}
