// Specification: add, sub, mul and div broadcast in 2-D (scalar 1x1, row vector 1xC,
// column vector Rx1, on either side) and their backward sums the gradient back down to
// each operand's shape (sum_to), so gradcheck passes in every case.
#include "engine_test_util.hpp"

using namespace xgrad_test;

namespace {

struct Case {
  const char* name;
  std::size_t ar, ac, br, bc;  // shapes of a and b
  std::size_t rows, cols;      // expected shape of the result
};

// Every way two 2-D operands may broadcast, plus the plain same-shape cases.
const Case kCases[] = {
    {"same shape", 3, 4, 3, 4, 3, 4},
    {"same shape 1xN", 1, 5, 1, 5, 1, 5},
    {"same shape Nx1", 4, 1, 4, 1, 4, 1},
    {"scalar right", 3, 4, 1, 1, 3, 4},
    {"scalar left", 1, 1, 3, 4, 3, 4},
    {"row vector right (bias)", 3, 4, 1, 4, 3, 4},
    {"row vector left", 1, 4, 3, 4, 3, 4},
    {"column vector right", 3, 4, 3, 1, 3, 4},
    {"column vector left", 3, 1, 3, 4, 3, 4},
    {"column times row (outer)", 3, 1, 1, 4, 3, 4},
    {"row times column (outer)", 1, 4, 3, 1, 3, 4},
    {"scalar and row vector", 1, 1, 1, 5, 1, 5},
    {"column vector and scalar", 4, 1, 1, 1, 4, 1},
    {"scalar and scalar", 1, 1, 1, 1, 1, 1},
};

void check_all_cases(const std::string& op_name, const OpUnderTest& op) {
  std::uint64_t seed = 100;
  for (const Case& c : kCases) {
    const std::vector<Matrix<double>> inputs = {random_matrix(c.ar, c.ac, seed),
                                                random_matrix(c.br, c.bc, seed + 1)};
    seed += 2;
    check_op_gradients(op_name + ", " + c.name, op, inputs);
  }
}

}  // namespace

TEST_CASE("broadcast results have the broadcast shape and the right values") {
  for (const Case& c : kCases) {
    INFO(c.name);
    Tape tape;
    const Matrix<double> av = random_matrix(c.ar, c.ac, 1);
    const Matrix<double> bv = random_matrix(c.br, c.bc, 2);
    const Tensor a = tape.constant(av);
    const Tensor b = tape.constant(bv);
    const Tensor sum = a + b, diff = a - b, prod = a * b, quot = a / b;
    for (const Tensor& y : {sum, diff, prod, quot}) {
      CHECK(y.rows() == c.rows);
      CHECK(y.cols() == c.cols);
    }
    for (std::size_t i = 0; i < c.rows; ++i) {
      for (std::size_t j = 0; j < c.cols; ++j) {
        // The operand element that meets (i, j): row/column 0 where it was broadcast.
        const double x = av(c.ar == 1 ? 0 : i, c.ac == 1 ? 0 : j);
        const double z = bv(c.br == 1 ? 0 : i, c.bc == 1 ? 0 : j);
        CHECK(sum.value()(i, j) == doctest::Approx(x + z));
        CHECK(diff.value()(i, j) == doctest::Approx(x - z));
        CHECK(prod.value()(i, j) == doctest::Approx(x * z));
        CHECK(quot.value()(i, j) == doctest::Approx(x / z));
      }
    }
  }
}

TEST_CASE("add differentiates correctly in every broadcast case") {
  check_all_cases("add", [](const Inputs& x) { return x[0] + x[1]; });
}

TEST_CASE("sub differentiates correctly in every broadcast case") {
  check_all_cases("sub", [](const Inputs& x) { return x[0] - x[1]; });
}

TEST_CASE("mul differentiates correctly in every broadcast case") {
  check_all_cases("mul", [](const Inputs& x) { return x[0] * x[1]; });
}

TEST_CASE("div differentiates correctly in every broadcast case") {
  check_all_cases("div", [](const Inputs& x) { return x[0] / x[1]; });
}

TEST_CASE("the gradient of a bias of any width is the column sum of the upstream gradient") {
  // db_j = sum_i G_ij for y = x + b. Widths up to 64 sum in registers, wider ones row by
  // row (op_support.hpp): 3 and 64 take the first path, 65 and 512 (MNIST's hidden
  // layers) the second. b is used twice, so its second contribution adds to the first.
  for (const std::size_t width :
       {std::size_t{3}, std::size_t{64}, std::size_t{65}, std::size_t{130}, std::size_t{512}}) {
    INFO("bias width " << width);
    Tape tape;
    const Tensor x = tape.variable(random_matrix(7, width, 30));
    const Tensor b = tape.variable(random_matrix(1, width, 31));
    const Tensor y = (x + b) + (x + b);
    const Matrix<double> g = random_matrix(7, width, 32);
    tape.backward(y, g);
    REQUIRE(b.grad().shape(1) == width);
    double worst = 0;
    for (std::size_t j = 0; j < width; ++j) {
      double column = 0;
      for (std::size_t i = 0; i < 7; ++i)
        column += g(i, j);
      worst = std::max(worst, std::abs(b.grad()(0, j) - 2 * column));
    }
    CHECK(worst <= 1e-14);                 // sums of 14 terms of size ~1, in another order
    const Matrix<double> twice = 2.0 * g;  // x's two contributions: g + g
    CHECK(max_abs_diff(x.grad(), twice) == 0.0);
  }
  std::uint64_t seed = 40;
  for (const std::size_t width : {std::size_t{65}, std::size_t{130}}) {
    check_op_gradients("add, bias of width " + std::to_string(width),
                       [](const Inputs& x) { return x[0] + x[1]; },
                       {random_matrix(4, width, seed), random_matrix(1, width, seed + 1)});
    seed += 2;
  }
}
