// Specification: float32 and float64 share one API and one implementation, so every op
// computed in float32 matches float64 on the same inputs within float32's precision.
//
// Stated tolerance: |v32 - v64| <= 1e-5 * max(1, |v64|) for values and for gradients.
// float32 carries 24 significant bits (epsilon 1.2e-7); 1e-5 is ~80 epsilon, room for the
// few roundings each op makes plus sums of up to 12 terms, while a float32 path that
// silently dropped to lower precision (e.g. half-precision or an approximate exp) or
// mixed up an operand would miss it by orders of magnitude.
#include <array>
#include <string>

#include "engine_test_util.hpp"

using namespace xgrad_test;

namespace {

constexpr double kTolerance = 1e-5;

struct Case {
  const char* op;
  std::vector<std::pair<std::size_t, std::size_t>> shapes;
  Domain domain;
};

// Every differentiable op (the table of engine/src/op_table.cpp, in its order).
const Case kCases[] = {
    {"matmul", {{3, 4}, {4, 5}}, Domain::AwayFromZero},
    {"linear", {{3, 4}, {4, 5}, {1, 5}}, Domain::AwayFromZero},
    // k = 1 (the outer-product loop, 9 columns: a float batch of 8 and a tail) and a
    // bias wider than 64 columns (its gradient summed row by row).
    {"linear", {{12, 1}, {1, 9}, {1, 9}}, Domain::AwayFromZero},
    {"linear", {{5, 3}, {3, 70}, {1, 70}}, Domain::AwayFromZero},
    {"add", {{3, 4}, {1, 4}}, Domain::AwayFromZero},
    {"sub", {{3, 1}, {3, 4}}, Domain::AwayFromZero},
    {"mul", {{3, 4}, {1, 1}}, Domain::AwayFromZero},
    {"div", {{3, 4}, {3, 4}}, Domain::AwayFromZero},
    {"neg", {{3, 4}}, Domain::AwayFromZero},
    {"affine", {{3, 4}}, Domain::AwayFromZero},
    {"scalar_div", {{3, 4}}, Domain::AwayFromZero},
    {"pow", {{3, 4}}, Domain::Positive},
    {"square", {{3, 4}}, Domain::AwayFromZero},
    {"sqrt", {{3, 4}}, Domain::Positive},
    {"exp", {{3, 4}}, Domain::AwayFromZero},
    {"log", {{3, 4}}, Domain::Positive},
    {"abs", {{3, 4}}, Domain::AwayFromZero},
    {"sum", {{3, 4}}, Domain::AwayFromZero},
    {"sum rows", {{3, 4}}, Domain::AwayFromZero},
    {"mean cols", {{3, 4}}, Domain::AwayFromZero},
    {"transpose", {{3, 4}}, Domain::AwayFromZero},
    {"sigmoid", {{3, 4}}, Domain::AwayFromZero},
    {"tanh", {{3, 4}}, Domain::AwayFromZero},
    {"sin", {{3, 4}}, Domain::AwayFromZero},
    {"cos", {{3, 4}}, Domain::AwayFromZero},
    {"relu", {{3, 4}}, Domain::AwayFromZero},
    {"leaky_relu", {{3, 4}}, Domain::AwayFromZero},
    {"elu", {{3, 4}}, Domain::AwayFromZero},
    {"softmax", {{3, 4}}, Domain::AwayFromZero},
    {"log_softmax", {{3, 4}}, Domain::AwayFromZero},
    {"mse_loss", {{3, 4}, {3, 4}}, Domain::AwayFromZero},
    {"bce_with_logits", {{3, 4}, {3, 4}}, Domain::AwayFromZero},
    {"softmax_cross_entropy", {{3, 4}, {3, 4}}, Domain::AwayFromZero},
};

template <class T>
xgrad::Tensor<T> apply_op(const std::string& op, const std::vector<xgrad::Tensor<T>>& x) {
  using xgrad::Axis;
  if (op == "matmul") return xgrad::matmul(x[0], x[1]);
  if (op == "linear") return xgrad::linear(x[0], x[1], x[2]);
  if (op == "add") return x[0] + x[1];
  if (op == "sub") return x[0] - x[1];
  if (op == "mul") return x[0] * x[1];
  if (op == "div") return x[0] / x[1];
  if (op == "neg") return -x[0];
  if (op == "affine") return xgrad::affine(x[0], T(-1.7), T(0.3));
  if (op == "scalar_div") return T(2.5) / x[0];
  if (op == "pow") return xgrad::pow(x[0], T(1.5));
  if (op == "square") return xgrad::square(x[0]);
  if (op == "sqrt") return xgrad::sqrt(x[0]);
  if (op == "exp") return xgrad::exp(x[0]);
  if (op == "log") return xgrad::log(x[0]);
  if (op == "abs") return xgrad::abs(x[0]);
  if (op == "sum") return xgrad::sum(x[0]);
  if (op == "sum rows") return xgrad::sum(x[0], Axis::Rows);
  if (op == "mean cols") return xgrad::mean(x[0], Axis::Cols);
  if (op == "transpose") return xgrad::transpose(x[0]);
  if (op == "sigmoid") return xgrad::sigmoid(x[0]);
  if (op == "tanh") return xgrad::tanh(x[0]);
  if (op == "sin") return xgrad::sin(x[0]);
  if (op == "cos") return xgrad::cos(x[0]);
  if (op == "relu") return xgrad::relu(x[0]);
  if (op == "leaky_relu") return xgrad::leaky_relu(x[0], T(0.2));
  if (op == "elu") return xgrad::elu(x[0], T(0.8));
  if (op == "softmax") return xgrad::softmax(x[0]);
  if (op == "log_softmax") return xgrad::log_softmax(x[0]);
  if (op == "mse_loss") return xgrad::mse_loss(x[0], x[1]);
  if (op == "bce_with_logits") return xgrad::bce_with_logits(x[0], xgrad::sigmoid(x[1]));
  if (op == "softmax_cross_entropy")
    return xgrad::softmax_cross_entropy(x[0], xgrad::softmax(x[1]));
  throw std::logic_error("test_precision: unknown op " + op);
}

template <class T, class S>
Matrix<T> to(const Matrix<S>& m) {
  Matrix<T> out({m.shape(0), m.shape(1)});
  for (std::size_t k = 0; k < m.size(); ++k)
    out.data()[k] = static_cast<T>(m.data()[k]);
  return out;
}

/// The op's value followed by the gradient of every input, all widened to double.
template <class T>
std::vector<Matrix<double>> run(const std::string& op, const std::vector<Matrix<double>>& inputs,
                                std::uint64_t seed) {
  xgrad::Tape<T> tape;
  std::vector<xgrad::Tensor<T>> x;
  for (const auto& m : inputs)
    x.push_back(tape.variable(to<T>(m)));
  const xgrad::Tensor<T> y = apply_op(op, x);
  tape.backward(y, to<T>(random_matrix(y.rows(), y.cols(), seed)));
  std::vector<Matrix<double>> out;
  out.push_back(to<double>(y.value()));
  for (const auto& v : x)
    out.push_back(to<double>(v.grad()));
  return out;
}

}  // namespace

TEST_CASE("float32 values and gradients match float64 within 1e-5 relative") {
  std::uint64_t seed = 1000;
  for (const Case& c : kCases) {
    std::vector<Matrix<double>> inputs;
    for (const auto& [r, k] : c.shapes) {
      // Rounded to float first, so both precisions start from identical inputs.
      inputs.push_back(to<double>(to<float>(random_matrix(r, k, seed++, c.domain))));
    }
    const std::vector<Matrix<double>> single = run<float>(c.op, inputs, seed);
    const std::vector<Matrix<double>> reference = run<double>(c.op, inputs, seed);
    REQUIRE(single.size() == reference.size());
    for (std::size_t part = 0; part < single.size(); ++part) {
      INFO(c.op << (part == 0 ? " value" : " gradient of input " + std::to_string(part - 1)));
      REQUIRE(single[part].shape() == reference[part].shape());
      double worst = 0;
      for (std::size_t k = 0; k < single[part].size(); ++k) {
        const double v64 = reference[part].data()[k];
        worst =
            std::max(worst, std::abs(single[part].data()[k] - v64) / std::max(1.0, std::abs(v64)));
      }
      CHECK(worst <= kTolerance);
      // Not trivially equal either: float32 really ran in float32.
      if (part == 0 && std::string(c.op) == "exp") CHECK(worst > 0);
    }
  }
}

TEST_CASE("float32 gradients of broadcast operands add up in double") {
  // The incoming gradient holds one 2^24 and ones elsewhere: in float, 2^24 + 1 rounds
  // back to 2^24, so a float accumulator loses the ones (the gradient of a 1x1 operand of
  // 2^25 ones stopped at 16777216). Expected: the double sum, rounded to float once.
  const double big = 16777216.0;  // 2^24
  using F = xgrad::Tensor<float>;
  auto upstream = [&](std::size_t rows, std::size_t cols) {
    Matrix<float> g(std::array<std::size_t, 2>{rows, cols}, 1.0f);
    for (std::size_t j = 0; j < cols; ++j)
      g(0, j) = float(big);  // every column's sum: 2^24 + rows - 1
    return g;
  };
  const std::size_t n = 1001;
  const float column_sum = float(big + double(n - 1));
  // A 1x1 operand through add (a plain matrix gradient) and mul (an expression).
  for (const char* op : {"add", "mul"}) {
    CAPTURE(op);
    xgrad::Tape<float> tape;
    const F x = tape.constant(Matrix<float>(std::array<std::size_t, 2>{n, 1}, 1.0f));
    const F s = tape.variable(Matrix<float>{{1.0f}});
    const F y = std::string(op) == "add" ? x + s : x * s;
    tape.backward(y, upstream(n, 1));
    CHECK(s.grad()(0, 0) == column_sum);
  }
  // Bias rows narrower and wider than the register-held column sums (64), through linear.
  for (const std::size_t width : {9, 70}) {
    CAPTURE(width);
    xgrad::Tape<float> tape;
    const F a = tape.constant(Matrix<float>(std::array<std::size_t, 2>{n, 1}, 0.0f));
    const F W = tape.variable(Matrix<float>(std::array<std::size_t, 2>{1, width}, 1.0f));
    const F b = tape.variable(Matrix<float>(std::array<std::size_t, 2>{1, width}, 0.0f));
    tape.backward(xgrad::linear(a, W, b), upstream(n, width));
    for (const float v : b.grad())
      CHECK(v == column_sum);
  }
  // A column operand (row sums) of a 2 x n product, added to the gradient sum(c) gave it
  // first (the walk reaches the later record first).
  xgrad::Tape<float> tape;
  const F x = tape.constant(Matrix<float>(std::array<std::size_t, 2>{2, n}, 1.0f));
  const F c = tape.variable(Matrix<float>(std::array<std::size_t, 2>{2, 1}, 1.0f));
  const F y = x * c;
  const F also = xgrad::sum(c);
  Matrix<float> g(std::array<std::size_t, 2>{2, n}, 1.0f);
  g(0, 0) = g(1, 0) = float(big);
  tape.backward(xgrad::sum(y * tape.constant(g)) + also);
  CHECK(c.grad()(0, 0) == float(1.0 + big + double(n - 1)));
  CHECK(c.grad()(1, 0) == float(1.0 + big + double(n - 1)));
}
