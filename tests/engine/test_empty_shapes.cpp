// Specification: every op takes tensors with no rows or no columns (an empty minibatch,
// a layer of zero width) without crashing: the result has the empty shape the math
// gives and backward() runs through it. The losses, whose mean over nothing is
// undefined, refuse an empty input with a message naming the op and the shape.
#include <functional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "engine_test_util.hpp"

using namespace xgrad_test;

namespace {

struct EmptyCase {
  std::string name;
  std::function<Tensor(Tape&, const Tensor&, const Tensor&)> op;
  /// Expected output shape for an input of rows x cols.
  std::function<std::pair<std::size_t, std::size_t>(std::size_t, std::size_t)> shape;
};

std::pair<std::size_t, std::size_t> same(std::size_t r, std::size_t c) {
  return {r, c};
}

}  // namespace

TEST_CASE("every op takes tensors with no rows or no columns") {
  const std::vector<EmptyCase> cases = {
      {"matmul(a, aT)",
       [](Tape&, const Tensor& a, const Tensor&) { return xgrad::matmul(a, xgrad::transpose(a)); },
       [](std::size_t r, std::size_t) {
         return std::pair<std::size_t, std::size_t>{r, r};
       }},
      {"linear",
       [](Tape& t, const Tensor& a, const Tensor&) {
         return xgrad::linear(
             a, t.variable(Matrix<double>(xt::zeros<double>({a.cols(), std::size_t{2}}))),
             t.variable(Matrix<double>(xt::ones<double>({std::size_t{1}, std::size_t{2}}))));
       },
       [](std::size_t r, std::size_t) {
         return std::pair<std::size_t, std::size_t>{r, 2};
       }},
      {"add", [](Tape&, const Tensor& a, const Tensor& b) { return xgrad::add(a, b); }, same},
      {"sub", [](Tape&, const Tensor& a, const Tensor& b) { return xgrad::sub(a, b); }, same},
      {"mul", [](Tape&, const Tensor& a, const Tensor& b) { return xgrad::mul(a, b); }, same},
      {"div", [](Tape&, const Tensor& a, const Tensor& b) { return xgrad::div(a, b); }, same},
      {"neg", [](Tape&, const Tensor& a, const Tensor&) { return xgrad::neg(a); }, same},
      {"affine", [](Tape&, const Tensor& a, const Tensor&) { return xgrad::affine(a, 2.0, 1.0); },
       same},
      {"scalar_div",
       [](Tape&, const Tensor&, const Tensor& b) { return xgrad::scalar_div(2.0, b); }, same},
      {"pow", [](Tape&, const Tensor&, const Tensor& b) { return xgrad::pow(b, 1.5); }, same},
      {"square", [](Tape&, const Tensor& a, const Tensor&) { return xgrad::square(a); }, same},
      {"sqrt", [](Tape&, const Tensor&, const Tensor& b) { return xgrad::sqrt(b); }, same},
      {"exp", [](Tape&, const Tensor& a, const Tensor&) { return xgrad::exp(a); }, same},
      {"log", [](Tape&, const Tensor&, const Tensor& b) { return xgrad::log(b); }, same},
      {"abs", [](Tape&, const Tensor& a, const Tensor&) { return xgrad::abs(a); }, same},
      {"sum (rows)",
       [](Tape&, const Tensor& a, const Tensor&) { return xgrad::sum(a, xgrad::Axis::Rows); },
       [](std::size_t, std::size_t c) {
         return std::pair<std::size_t, std::size_t>{1, c};
       }},
      {"sum (cols)",
       [](Tape&, const Tensor& a, const Tensor&) { return xgrad::sum(a, xgrad::Axis::Cols); },
       [](std::size_t r, std::size_t) {
         return std::pair<std::size_t, std::size_t>{r, 1};
       }},
      {"transpose", [](Tape&, const Tensor& a, const Tensor&) { return xgrad::transpose(a); },
       [](std::size_t r, std::size_t c) {
         return std::pair<std::size_t, std::size_t>{c, r};
       }},
      {"sigmoid", [](Tape&, const Tensor& a, const Tensor&) { return xgrad::sigmoid(a); }, same},
      {"tanh", [](Tape&, const Tensor& a, const Tensor&) { return xgrad::tanh(a); }, same},
      {"relu", [](Tape&, const Tensor& a, const Tensor&) { return xgrad::relu(a); }, same},
      {"leaky_relu", [](Tape&, const Tensor& a, const Tensor&) { return xgrad::leaky_relu(a); },
       same},
      {"elu", [](Tape&, const Tensor& a, const Tensor&) { return xgrad::elu(a); }, same},
      {"softmax", [](Tape&, const Tensor& a, const Tensor&) { return xgrad::softmax(a); }, same},
      {"log_softmax", [](Tape&, const Tensor& a, const Tensor&) { return xgrad::log_softmax(a); },
       same},
  };
  const std::pair<std::size_t, std::size_t> shapes[] = {{0, 3}, {3, 0}, {0, 0}};
  for (const EmptyCase& c : cases) {
    for (const auto& shape : shapes) {
      // Plain variables, not a structured binding: INFO captures them in a lambda, which
      // C++17 allows for bindings only as a GCC extension (clang refuses).
      const std::size_t rows = shape.first, cols = shape.second;
      INFO(c.name << " on " << rows << "x" << cols);
      Tape tape;
      const Tensor a = tape.variable(Matrix<double>(xt::zeros<double>({rows, cols})));
      const Tensor b = tape.variable(Matrix<double>(xt::ones<double>({rows, cols})));
      const Tensor y = c.op(tape, a, b);
      const auto [want_rows, want_cols] = c.shape(rows, cols);
      CHECK(y.rows() == want_rows);
      CHECK(y.cols() == want_cols);
      tape.backward(xgrad::sum(y));  // the sum of nothing is 0; its gradient flows back
      CHECK(a.grad().shape(0) == rows);
      CHECK(a.grad().shape(1) == cols);
    }
  }
}

TEST_CASE("linear with no inputs gives the bias on every row, and db counts the rows") {
  // k = 0: a [3,0] input times a [0,2] weight is a zero product, so y is b on each row.
  Tape tape;
  const Tensor a = tape.variable(Matrix<double>(xt::zeros<double>({3, 0})));
  const Tensor w = tape.variable(Matrix<double>(xt::zeros<double>({0, 2})));
  const Tensor b = tape.variable(Matrix<double>{{1.5, -2.0}});
  const Tensor y = xgrad::linear(a, w, b);
  REQUIRE(y.rows() == 3);
  for (std::size_t r = 0; r < 3; ++r) {
    CHECK(y.value()(r, 0) == 1.5);
    CHECK(y.value()(r, 1) == -2.0);
  }
  tape.backward(xgrad::sum(y));
  CHECK(b.grad()(0, 0) == 3.0);  // d sum / db = number of rows
  CHECK(b.grad()(0, 1) == 3.0);
  // No rows: nothing to add, db = 0.
  Tape empty;
  const Tensor b2 = empty.variable(Matrix<double>{{1.5, -2.0}});
  const Tensor y2 = xgrad::linear(empty.variable(Matrix<double>(xt::zeros<double>({0, 3}))),
                                  empty.variable(Matrix<double>(xt::zeros<double>({3, 2}))), b2);
  CHECK(y2.rows() == 0);
  empty.backward(xgrad::sum(y2));
  CHECK(b2.grad()(0, 0) == 0.0);
  CHECK(b2.grad()(0, 1) == 0.0);
}

TEST_CASE("mean refuses to divide by zero elements, but gives an empty result") {
  // Over no elements the mean is 0/0: refused by name, as the losses do, not NaN.
  for (const auto& test :
       {std::tuple<std::size_t, std::size_t, xgrad::Axis, bool>{0, 3, xgrad::Axis::Rows, true},
        {3, 0, xgrad::Axis::Cols, true},
        {0, 3, xgrad::Axis::All, true},
        {0, 0, xgrad::Axis::All, true},
        {3, 0, xgrad::Axis::Rows, false},  // 1x0: nothing to divide
        {0, 3, xgrad::Axis::Cols, false},  // 0x1
        {0, 0, xgrad::Axis::Rows, false}}) {
    const auto [rows, cols, axis, refused] = test;
    const std::string case_name = std::to_string(rows) + "x" + std::to_string(cols) +
                                  " along axis " + std::to_string(static_cast<int>(axis));
    INFO(case_name);  // INFO's lambda may not capture the bindings themselves in C++17
    Tape tape;
    const Tensor a = tape.variable(Matrix<double>(xt::zeros<double>({rows, cols})));
    if (refused) {
      const std::string shape = std::to_string(rows) + "x" + std::to_string(cols);
      CHECK_THROWS_WITH_AS(
          xgrad::mean(a, axis),
          ("mean: empty input " + shape + " has no mean along the reduced axis").c_str(),
          std::invalid_argument);
    } else {
      const Tensor y = xgrad::mean(a, axis);
      CHECK(y.value().size() == 0);
      tape.backward(xgrad::sum(y));
      CHECK(a.grad().size() == 0);
    }
  }
}

TEST_CASE("the losses refuse an empty input and name it") {
  for (const auto& [rows, cols] : {std::pair<std::size_t, std::size_t>{0, 3}, {3, 0}}) {
    Tape tape;
    const Tensor a = tape.variable(Matrix<double>(xt::zeros<double>({rows, cols})));
    const Tensor b = tape.constant(Matrix<double>(xt::zeros<double>({rows, cols})));
    const std::string shape = std::to_string(rows) + "x" + std::to_string(cols);
    CHECK_THROWS_WITH_AS(xgrad::mse_loss(a, b), ("mse_loss: empty input " + shape).c_str(),
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(xgrad::bce_with_logits(a, b),
                         ("bce_with_logits: empty input " + shape).c_str(), std::invalid_argument);
    CHECK_THROWS_WITH_AS(xgrad::softmax_cross_entropy(a, b),
                         ("softmax_cross_entropy: empty input " + shape).c_str(),
                         std::invalid_argument);
  }
}
