// Activation parsing, names and defaults, and the values activate() records.
#include <doctest/doctest.h>

#include <xtensor/xmath.hpp>

#include "nn_model_test_util.hpp"

using namespace nn_test;

TEST_CASE("activation: parse every name, alias and parameter form") {
  CHECK(Activation::parse("identity").kind == ActivationKind::Identity);
  CHECK(Activation::parse("linear").kind == ActivationKind::Identity);
  CHECK(Activation::parse("Sigmoid").kind == ActivationKind::Sigmoid);
  CHECK(Activation::parse("tanh").kind == ActivationKind::Tanh);
  CHECK(Activation::parse("RELU").kind == ActivationKind::Relu);
  CHECK(Activation::parse("softmax").kind == ActivationKind::Softmax);
  const Activation l = Activation::parse("leaky_relu");
  CHECK(l.kind == ActivationKind::LeakyRelu);
  CHECK(l.effective_alpha() == 0.01);  // report 000's α
  CHECK(Activation::parse("leaky_relu:0.2").effective_alpha() == 0.2);
  CHECK(Activation::parse("elu").effective_alpha() == 1.0);
  CHECK(Activation::parse("elu(0.5)").effective_alpha() == 0.5);
  CHECK(Activation::sigmoid().effective_alpha() == 0.0);
}

TEST_CASE("activation: alpha 0 means the kind's default, in activate too") {
  // A default-constructed Activation{kind} has alpha 0: leaky_relu then uses 0.01 and
  // elu 1, so at z = -1 they give -0.01 and expm1(-1), not 0.
  const Activation leaky{ActivationKind::LeakyRelu, 0.0};
  const Activation elu{ActivationKind::Elu, 0.0};
  CHECK(leaky.effective_alpha() == 0.01);
  CHECK(elu.effective_alpha() == 1.0);
  xgrad::Tape<double> tape;
  const auto z = tape.constant(Matrix<double>{{-1.0}});
  CHECK(activate(leaky, z).value()(0, 0) == doctest::Approx(-0.01).epsilon(1e-15));
  CHECK(activate(elu, z).value()(0, 0) == doctest::Approx(std::expm1(-1.0)).epsilon(1e-15));
}

TEST_CASE("activation: name round-trips through parse") {
  for (const Activation& a :
       {Activation::identity(), Activation::sigmoid(), Activation::tanh(), Activation::relu(),
        Activation::leaky_relu(0.3), Activation::elu(2.5), Activation::softmax()}) {
    const Activation b = Activation::parse(a.name());
    CHECK(b.kind == a.kind);
    CHECK(b.effective_alpha() == a.effective_alpha());
  }
  CHECK(Activation::leaky_relu().name() == "leaky_relu(0.01)");
}

TEST_CASE("activation: parse errors name the text") {
  CHECK_THROWS_WITH_AS(Activation::parse("swish"),
                       "unknown activation \"swish\"; expected one of identity (or linear), "
                       "sigmoid, tanh, relu, leaky_relu[:alpha], elu[:alpha], softmax",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(Activation::parse("relu:0.1"),
                       "activation \"relu:0.1\": relu takes no parameter (only leaky_relu and "
                       "elu do)",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(Activation::parse("leaky_relu:x"),
                       "activation \"leaky_relu:x\": alpha \"x\" is not a positive number",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(Activation::parse("elu:-1"),
                       "activation \"elu:-1\": alpha \"-1\" is not a positive number",
                       std::invalid_argument);
  // Decimal only: std::stod read "0x10" as a slope of 16.
  CHECK_THROWS_WITH_AS(Activation::parse("leaky_relu:0x10"),
                       "activation \"leaky_relu:0x10\": alpha \"0x10\" is not a positive number",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(Activation::parse("elu:"), "activation \"elu:\": nothing after ':'",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(Activation::parse("elu(0.5"), "activation \"elu(0.5\": missing ')'",
                       std::invalid_argument);
  // An empty "()" is refused like an empty "elu:", not read as if it were absent.
  for (const char* text : {"relu()", "sigmoid()", "leaky_relu()", "ELU()"}) {
    CAPTURE(text);
    CHECK_THROWS_WITH_AS(
        Activation::parse(text),
        ("activation \"" + std::string(text) + "\": nothing between '(' and ')'").c_str(),
        std::invalid_argument);
  }
}

TEST_CASE("activation: activate records the report's formulas") {
  xgrad::Tape<double> tape;
  const Matrix<double> z = {{-2.0, -0.5, 0.25, 3.0}};
  const auto t = tape.constant(z);
  const auto near = [](const Matrix<double>& a, const Matrix<double>& b) {
    return xt::amax(xt::abs(a - b))() < 1e-15;
  };
  CHECK(near(activate(Activation::identity(), t).value(), z));
  CHECK(near(activate(Activation::sigmoid(), t).value(), 1.0 / (1.0 + xt::exp(-z))));
  CHECK(near(activate(Activation::tanh(), t).value(), xt::tanh(z)));
  CHECK(near(activate(Activation::relu(), t).value(), Matrix<double>{{0, 0, 0.25, 3.0}}));
  CHECK(near(activate(Activation::leaky_relu(0.1), t).value(),
             Matrix<double>{{-0.2, -0.05, 0.25, 3.0}}));
  CHECK(near(activate(Activation::elu(2.0), t).value(),
             Matrix<double>{{2 * std::expm1(-2.0), 2 * std::expm1(-0.5), 0.25, 3.0}}));
  const Matrix<double> e = xt::exp(z);
  CHECK(near(activate(Activation::softmax(), t).value(), e / xt::sum(e)()));
}
