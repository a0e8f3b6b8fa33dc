// Costs and penalties: parsing, the conventions (what is averaged over what), the
// cost/output-activation fit, and the two regularisation conventions of the reports.
#include <doctest/doctest.h>

#include <xtensor/xmath.hpp>

#include "nn_model_test_util.hpp"

using namespace nn_test;
using xgrad::Parameter;
using xgrad::Tape;

namespace {

/// A one-layer network with given W and b: the cost tests control a^L exactly.
Network<double> single_layer(const Matrix<double>& W, const Matrix<double>& b, Activation f) {
  Network<double> net;
  net.add({Parameter<double>(W), Parameter<double>(b), f});
  return net;
}

}  // namespace

TEST_CASE(
    "cost: parse_cost reads every name and alias, round-trips cost_name, and names an unknown "
    "cost") {
  CHECK(CostSpec::parse_cost("mse") == CostKind::MeanSquaredError);
  CHECK(CostSpec::parse_cost("BCE") == CostKind::BinaryCrossEntropy);
  CHECK(CostSpec::parse_cost("cross_entropy") == CostKind::CrossEntropy);
  CHECK(CostSpec::parse_cost("ce") == CostKind::CrossEntropy);
  for (CostKind k :
       {CostKind::MeanSquaredError, CostKind::BinaryCrossEntropy, CostKind::CrossEntropy}) {
    CHECK(CostSpec::parse_cost(cost_name(k)) == k);
  }
  CHECK_THROWS_WITH_AS(CostSpec::parse_cost("hinge"),
                       "unknown cost \"hinge\"; expected mse, bce or cross_entropy",
                       std::invalid_argument);
}

TEST_CASE("cost: MSE is the mean over every element (n x outputs)") {
  // Identity output with W = I, b = 0: a^L = x.
  const Matrix<double> x = {{1.0, 2.0}, {3.0, 4.0}, {5.0, 6.0}};
  const Matrix<double> y = {{0.0, 2.0}, {3.0, 1.0}, {5.0, 8.0}};
  auto net = single_layer(xt::eye<double>(2), xt::zeros<double>({1, 2}), Activation::identity());
  Tape<double> tape;
  const double c =
      data_cost(tape, net, tape.constant(x), tape.constant(y), CostKind::MeanSquaredError).item();
  CHECK(c == doctest::Approx((1.0 + 9.0 + 4.0) / 6.0).epsilon(1e-15));
}

TEST_CASE("cost: BCE is the mean over elements of the logits' cross-entropy") {
  const Matrix<double> z = {{0.3, -1.2}, {2.0, 0.0}};
  const Matrix<double> y = {{1.0, 0.0}, {0.25, 1.0}};
  auto net = single_layer(xt::eye<double>(2), xt::zeros<double>({1, 2}), Activation::sigmoid());
  double expected = 0;
  for (std::size_t i = 0; i < z.size(); ++i) {
    const double p = 1 / (1 + std::exp(-z.data()[i]));
    expected -= y.data()[i] * std::log(p) + (1 - y.data()[i]) * std::log(1 - p);  // eq. 18
  }
  expected /= 4;
  Tape<double> tape;
  const double c =
      data_cost(tape, net, tape.constant(z), tape.constant(y), CostKind::BinaryCrossEntropy).item();
  CHECK(c == doctest::Approx(expected).epsilon(1e-14));
}

TEST_CASE("cost: cross-entropy is the mean over rows") {
  const Matrix<double> z = {{1.0, 2.0, 0.5}, {0.0, -1.0, 3.0}};
  const Matrix<double> y = {{0, 1, 0}, {1, 0, 0}};
  auto net = single_layer(xt::eye<double>(3), xt::zeros<double>({1, 3}), Activation::softmax());
  double expected = 0;
  for (std::size_t i = 0; i < 2; ++i) {
    double s = 0;
    for (std::size_t j = 0; j < 3; ++j)
      s += std::exp(z(i, j));
    for (std::size_t j = 0; j < 3; ++j)
      expected -= y(i, j) * std::log(std::exp(z(i, j)) / s);
  }
  expected /= 2;  // eq. 20: divided by n, not by n x classes
  Tape<double> tape;
  const double c =
      data_cost(tape, net, tape.constant(z), tape.constant(y), CostKind::CrossEntropy).item();
  CHECK(c == doctest::Approx(expected).epsilon(1e-14));
}

TEST_CASE("cost: output activation must fit the cost") {
  std::mt19937_64 rng(1);
  Network<double> lin({2, 3, 2}, {Activation::relu(), Activation::identity()}, Initialiser{}, rng);
  Network<double> sig({2, 3, 2}, {Activation::relu(), Activation::sigmoid()}, Initialiser{}, rng);
  Tape<double> tape;
  const auto x = tape.constant(normal_matrix(3, 2, 1));
  const auto y = tape.constant(targets_for(CostKind::CrossEntropy, 3, 2, 2));
  CHECK_THROWS_WITH_AS(data_cost(tape, lin, x, y, CostKind::BinaryCrossEntropy),
                       "cost bce needs a sigmoid output layer, the network's output activation "
                       "is identity",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(data_cost(tape, sig, x, y, CostKind::CrossEntropy),
                       "cost cross_entropy needs a softmax output layer, the network's output "
                       "activation is sigmoid",
                       std::invalid_argument);
  CHECK_NOTHROW(data_cost(tape, sig, x, y, CostKind::MeanSquaredError));
  CHECK_THROWS_WITH_AS(
      data_cost(tape, sig, x, tape.constant(normal_matrix(3, 4, 3)), CostKind::MeanSquaredError),
      "data_cost (mse): targets are 3x4 but the network gives 3x2 outputs for input 3x2",
      std::invalid_argument);
}

TEST_CASE("cost: L1 and L2 penalties with and without biases (report 000 eq. 22)") {
  const Matrix<double> W = {{1.0, -2.0}, {0.5, 0.0}};
  const Matrix<double> b = {{-3.0, 0.25}};
  auto net = single_layer(W, b, Activation::identity());
  Tape<double> tape;
  auto pen = [&](Penalty p, double lambda, bool biases) {
    tape.clear();
    return penalty(tape, net, Regularisation{p, lambda, biases}).item();
  };
  CHECK(pen(Penalty::None, 0.5, true) == 0.0);
  CHECK(pen(Penalty::L1, 0.5, false) == doctest::Approx(0.5 * 3.5).epsilon(1e-15));
  CHECK(pen(Penalty::L1, 0.5, true) == doctest::Approx(0.5 * (3.5 + 3.25)).epsilon(1e-15));
  CHECK(pen(Penalty::L2, 0.5, false) == doctest::Approx(0.5 * 5.25).epsilon(1e-15));
  CHECK(pen(Penalty::L2, 0.5, true) == doctest::Approx(0.5 * (5.25 + 9.0625)).epsilon(1e-15));
  CHECK_THROWS_WITH_AS(pen(Penalty::L2, -1.0, false),
                       "regularisation lambda must be finite and >= 0, got -1",
                       std::invalid_argument);
  // A tiny negative lambda is shown as it is, not rounded to "-0.000000".
  CHECK_THROWS_WITH_AS(pen(Penalty::L1, -1e-9, false),
                       "regularisation lambda must be finite and >= 0, got -1e-09",
                       std::invalid_argument);
}

TEST_CASE("cost: report 001's lambda/(2n) convention through the coefficient") {
  // Report 001 writes the L2 term as λ/(2n) ‖W‖²; the same objective is ours with
  // λ = λ_001 / (2 n) (docs/nn.md).
  const Matrix<double> W = {{1.0, -2.0}, {0.5, 0.0}};
  auto net = single_layer(W, xt::zeros<double>({1, 2}), Activation::identity());
  const double lambda_001 = 0.3;
  const std::size_t n = 8;
  Tape<double> tape;
  const double ours =
      penalty(tape, net, Regularisation{Penalty::L2, lambda_001 / (2.0 * n), false}).item();
  CHECK(ours == doctest::Approx(lambda_001 / (2.0 * n) * 5.25).epsilon(1e-15));
}

TEST_CASE("cost: objective adds the penalty and records nothing extra without one") {
  std::mt19937_64 rng(2);
  Network<double> net({2, 3, 1}, {Activation::tanh(), Activation::identity()}, Initialiser{}, rng);
  const Matrix<double> x = normal_matrix(4, 2, 5), y = normal_matrix(4, 1, 6);
  Tape<double> tape;
  const double data =
      data_cost(tape, net, tape.constant(x), tape.constant(y), CostKind::MeanSquaredError).item();
  const std::size_t nodes = tape.size();
  tape.clear();
  CostSpec spec{CostKind::MeanSquaredError, {Penalty::None, 0.0, false}};
  CHECK(objective(tape, net, tape.constant(x), tape.constant(y), spec).item() == data);
  CHECK(tape.size() == nodes);
  tape.clear();
  spec.regularisation = {Penalty::L2, 0.1, true};
  const double pen = penalty(tape, net, spec.regularisation).item();
  tape.clear();
  CHECK(objective(tape, net, tape.constant(x), tape.constant(y), spec).item() ==
        doctest::Approx(data + pen).epsilon(1e-15));
}
