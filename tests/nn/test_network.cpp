// Network: construction from a spec or layer by layer, forward against hand-computed
// values, parameters(), predict, clone and copy_values_from, and seeding.
#include <doctest/doctest.h>

#include <xtensor/xmath.hpp>

#include "nn_model_test_util.hpp"

using namespace nn_test;
using xgrad::Parameter;
using xgrad::Tape;

namespace {

Matrix<double> manual_forward(const Network<double>& net, const Matrix<double>& x) {
  // z = a W + b, a = f(z) with plain loops (report 000 eqs. 2-3).
  Matrix<double> a = x;
  for (const auto& layer : net.layers()) {
    const auto& W = layer.W.value();
    const auto& b = layer.b.value();
    Matrix<double> z({a.shape(0), W.shape(1)});
    for (std::size_t i = 0; i < a.shape(0); ++i) {
      for (std::size_t j = 0; j < W.shape(1); ++j) {
        double s = b(0, j);
        for (std::size_t k = 0; k < W.shape(0); ++k)
          s += a(i, k) * W(k, j);
        z(i, j) = s;
      }
    }
    const double al = layer.activation.effective_alpha();
    for (std::size_t i = 0; i < z.shape(0); ++i) {
      double row_max = z(i, 0), row_sum = 0;
      for (std::size_t j = 0; j < z.shape(1); ++j)
        row_max = std::max(row_max, z(i, j));
      for (std::size_t j = 0; j < z.shape(1); ++j)
        row_sum += std::exp(z(i, j) - row_max);
      for (std::size_t j = 0; j < z.shape(1); ++j) {
        const double v = z(i, j);
        switch (layer.activation.kind) {
          case ActivationKind::Identity:
            break;
          case ActivationKind::Sigmoid:
            z(i, j) = 1 / (1 + std::exp(-v));
            break;
          case ActivationKind::Tanh:
            z(i, j) = std::tanh(v);
            break;
          case ActivationKind::Relu:
            z(i, j) = v > 0 ? v : 0;
            break;
          case ActivationKind::LeakyRelu:
            z(i, j) = v > 0 ? v : al * v;
            break;
          case ActivationKind::Elu:
            z(i, j) = v > 0 ? v : al * (std::exp(v) - 1);
            break;
          case ActivationKind::Softmax:
            z(i, j) = std::exp(v - row_max) / row_sum;
            break;
        }
      }
    }
    a = z;
  }
  return a;
}

double max_abs_diff(const Matrix<double>& a, const Matrix<double>& b) {
  REQUIRE(a.shape() == b.shape());
  return xt::amax(xt::abs(a - b))();
}

}  // namespace

TEST_CASE("network: spec construction gives the layers, shapes and names") {
  std::mt19937_64 rng(1);
  Network<double> net({1, 50, 50, 1},
                      {Activation::sigmoid(), Activation::sigmoid(), Activation::identity()},
                      Initialiser{}, rng);
  REQUIRE(net.layers().size() == 3);
  CHECK(net.inputs() == 1);
  CHECK(net.outputs() == 1);
  CHECK(net.layers()[0].W.value().shape() == std::array<std::size_t, 2>{1, 50});
  CHECK(net.layers()[1].W.value().shape() == std::array<std::size_t, 2>{50, 50});
  CHECK(net.layers()[2].W.value().shape() == std::array<std::size_t, 2>{50, 1});
  CHECK(net.layers()[1].b.value().shape() == std::array<std::size_t, 2>{1, 50});
  CHECK(net.layers()[2].W.name() == "W3");
  CHECK(net.layers()[2].b.name() == "b3");
  CHECK(net.layers()[1].activation.kind == ActivationKind::Sigmoid);
  // report 000 §II.F: biases start at 0.01.
  CHECK(xt::all(xt::equal(net.layers()[0].b.value(), 0.01)));
}

TEST_CASE("network: spec errors name the values") {
  std::mt19937_64 rng(1);
  const Initialiser init;
  CHECK_THROWS_WITH_AS(Network<double>({2, 3, 1}, {Activation::relu()}, init, rng),
                       "Network: 3 sizes make 2 layer(s) but 1 activation(s) were given",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(Network<double>({4}, {}, init, rng),
                       "Network: sizes need at least an input and an output size, got 1 size(s)",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(
      Network<double>({2, 0, 1}, {Activation::relu(), Activation::identity()}, init, rng),
      "Network: sizes[1] is 0; every layer needs at least one unit", std::invalid_argument);
}

TEST_CASE("network: layer-by-layer composition equals the spec network") {
  std::mt19937_64 rng_a(42), rng_b(42);
  const std::vector<std::size_t> sizes = {3, 4, 2};
  const std::vector<Activation> acts = {Activation::tanh(), Activation::softmax()};
  Network<double> spec(sizes, acts, Initialiser{}, rng_a);

  Network<double> composed;
  for (std::size_t l = 0; l < acts.size(); ++l) {
    Matrix<double> w = init_weights<double>(Initialiser{}, sizes[l], sizes[l + 1], rng_b);
    Matrix<double> b = init_biases<double>(Initialiser{}, sizes[l + 1], rng_b);
    composed.add({Parameter<double>(w), Parameter<double>(b), acts[l]});
  }
  const Matrix<double> x = normal_matrix(5, 3, 7);
  CHECK(spec.predict(x) == composed.predict(x));
  CHECK(max_abs_diff(spec.predict(x), manual_forward(spec, x)) < 1e-14);
}

TEST_CASE(
    "network: add refuses a layer whose shapes do not fit or that reuses a parameter, naming it") {
  Network<double> net;
  CHECK_THROWS_WITH_AS(net.inputs(), "Network::inputs: the network has no layers",
                       std::logic_error);
  net.add({Parameter<double>(xt::zeros<double>({3, 4})),
           Parameter<double>(xt::zeros<double>({1, 4})), Activation::relu()});
  CHECK_THROWS_WITH_AS(
      net.add({Parameter<double>(xt::zeros<double>({5, 2})),
               Parameter<double>(xt::zeros<double>({1, 2})), Activation::identity()}),
      "Network::add: layer 2 takes 5 inputs but layer 1 gives 4 outputs", std::invalid_argument);
  CHECK_THROWS_WITH_AS(
      net.add({Parameter<double>(xt::zeros<double>({4, 2})),
               Parameter<double>(xt::zeros<double>({1, 3})), Activation::identity()}),
      "Network::add: layer 2: bias is 1x3 but must be 1x2 for weights 4x2", std::invalid_argument);
  CHECK_THROWS_WITH_AS(net.add({Parameter<double>(), Parameter<double>(), Activation::identity()}),
                       "Network::add: layer 2 has an undefined weight or bias parameter",
                       std::invalid_argument);
  // Sharing a parameter between layers would list it twice in parameters().
  Parameter<double> shared(xt::zeros<double>({4, 4}));
  net.add({shared, Parameter<double>(xt::zeros<double>({1, 4})), Activation::relu()});
  CHECK_THROWS_WITH_AS(
      net.add({shared, Parameter<double>(xt::zeros<double>({1, 4})), Activation::relu()}),
      "Network::add: layer 3 reuses a parameter of an earlier layer", std::invalid_argument);
  CHECK(net.layers().size() == 2);
}

TEST_CASE("network: forward equals the hand-computed pass for every activation") {
  std::mt19937_64 rng(3);
  Network<double> net({4, 6, 5, 5, 5, 5, 3},
                      {Activation::sigmoid(), Activation::tanh(), Activation::relu(),
                       Activation::leaky_relu(0.2), Activation::elu(0.5), Activation::softmax()},
                      Initialiser::parse("glorot_normal"), rng);
  const Matrix<double> x = normal_matrix(7, 4, 8);
  Tape<double> tape;
  const Matrix<double> out = net.forward(tape, tape.constant(x)).value();
  CHECK(max_abs_diff(out, manual_forward(net, x)) < 1e-14);
  // logits() is the last layer before its softmax.
  tape.clear();
  const auto z = net.logits(tape, tape.constant(x));
  Matrix<double> p = xt::exp(z.value());
  for (std::size_t i = 0; i < p.shape(0); ++i) {
    double s = 0;
    for (std::size_t j = 0; j < p.shape(1); ++j)
      s += p(i, j);
    for (std::size_t j = 0; j < p.shape(1); ++j)
      p(i, j) /= s;
  }
  CHECK(max_abs_diff(p, out) < 1e-14);
  tape.clear();
  CHECK_THROWS_WITH_AS(net.forward(tape, tape.constant(normal_matrix(2, 3, 1))),
                       "Network::forward: input is 2x3 but the network takes 4 features per row",
                       std::invalid_argument);
}

TEST_CASE("network: parameters gives each parameter once, sharing storage") {
  std::mt19937_64 rng(4);
  Network<double> net({2, 3, 3, 1},
                      {Activation::relu(), Activation::relu(), Activation::identity()},
                      Initialiser{}, rng);
  auto params = net.parameters();
  REQUIRE(params.size() == 6);
  for (std::size_t i = 0; i < params.size(); ++i) {
    for (std::size_t j = i + 1; j < params.size(); ++j)
      CHECK_FALSE(params[i].same_as(params[j]));
  }
  CHECK(params[0].same_as(net.layers()[0].W));
  CHECK(params[1].same_as(net.layers()[0].b));
  CHECK(params[5].same_as(net.layers()[2].b));
  params[2].value()(0, 0) = 123.0;
  CHECK(net.layers()[1].W.value()(0, 0) == 123.0);
  // A tape backward fills each parameter's grad exactly once per use.
  Tape<double> tape;
  const auto x = tape.constant(normal_matrix(4, 2, 5));
  const auto c =
      data_cost(tape, net, x, tape.constant(normal_matrix(4, 1, 6)), CostKind::MeanSquaredError);
  tape.backward(c);
  CHECK(params[5].grad().shape() == std::array<std::size_t, 2>{1, 1});
}

TEST_CASE("network: predict equals forward in any batch size") {
  std::mt19937_64 rng(5);
  Network<double> net({3, 8, 2}, {Activation::elu(), Activation::sigmoid()}, Initialiser{}, rng);
  const Matrix<double> x = normal_matrix(10, 3, 9);
  Tape<double> tape;
  const Matrix<double> full = net.forward(tape, tape.constant(x)).value();
  for (std::size_t batch : {std::size_t(1), std::size_t(3), std::size_t(10), std::size_t(1024)}) {
    INFO("batch " << batch);
    CHECK(max_abs_diff(net.predict(x, batch), full) < 1e-15);
  }
  CHECK_THROWS_WITH_AS(net.predict(x, 0), "Network::predict: batch_size is 0",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(net.predict(normal_matrix(2, 4, 1)),
                       "Network::predict: input is 2x4 but the network takes 3 features per row",
                       std::invalid_argument);
}

TEST_CASE("network: clone is deep and copy_values_from keeps the storage") {
  std::mt19937_64 rng(6);
  Network<double> net({2, 4, 1}, {Activation::tanh(), Activation::identity()}, Initialiser{}, rng);
  Network<double> copy = net.clone();
  const Matrix<double> x = normal_matrix(3, 2, 2);
  CHECK(copy.predict(x) == net.predict(x));
  CHECK_FALSE(copy.parameters()[0].same_as(net.parameters()[0]));
  copy.layers()[0].W.value()(0, 0) += 1.0;
  CHECK(copy.predict(x) != net.predict(x));
  // The biases too: their own storage in the clone, and copied back below.
  CHECK_FALSE(copy.parameters()[1].same_as(net.parameters()[1]));
  const double bias = net.layers()[0].b.value()(0, 0);
  copy.layers()[0].b.value()(0, 0) += 1.0;
  CHECK(net.layers()[0].b.value()(0, 0) == bias);

  auto held = net.parameters()[0];  // e.g. an optimiser's handle
  net.copy_values_from(copy);
  CHECK(net.predict(x) == copy.predict(x));
  CHECK(held.same_as(net.parameters()[0]));
  CHECK(held.value()(0, 0) == copy.layers()[0].W.value()(0, 0));
  CHECK(net.layers()[0].b.value()(0, 0) == bias + 1.0);

  std::mt19937_64 rng2(6);
  Network<double> other({2, 5, 1}, {Activation::tanh(), Activation::identity()}, Initialiser{},
                        rng2);
  CHECK_THROWS_WITH_AS(net.copy_values_from(other),
                       "Network::copy_values_from: layer 1 is W 2x5, b 1x5 in the source but W "
                       "2x4, b 1x4 here",
                       std::invalid_argument);
}

TEST_CASE("network: a refused copy_values_from changes nothing, also when a later layer differs") {
  std::mt19937_64 rng(3);
  const std::vector<Activation> acts = {Activation::tanh(), Activation::identity()};
  Network<double> net({2, 3, 4}, acts, Initialiser{}, rng);
  Network<double> other({2, 3, 5}, acts, Initialiser{}, rng);  // layer 1 fits, layer 2 not
  const Matrix<double> before = net.layers()[0].W.value();
  CHECK_THROWS_WITH_AS(net.copy_values_from(other),
                       "Network::copy_values_from: layer 2 is W 3x5, b 1x5 in the source but W "
                       "3x4, b 1x4 here",
                       std::invalid_argument);
  CHECK(net.layers()[0].W.value() == before);
}

TEST_CASE("network: an activation parameter no model file can hold is refused when added") {
  std::mt19937_64 rng(1);
  CHECK_THROWS_WITH_AS(
      Network<double>({1, 2, 1}, {Activation::leaky_relu(-0.1), Activation::identity()},
                      Initialiser{}, rng),
      "Network::add: layer 1: leaky_relu(-0.1) has activation parameter -0.1; it "
      "must be finite and >= 0 (0 = the kind's default)",
      std::invalid_argument);
  Network<double> net;
  CHECK_THROWS_WITH_AS(
      net.add({Parameter<double>(xt::zeros<double>({3, 4})),
               Parameter<double>(xt::zeros<double>({1, 4})), Activation::elu(std::nan(""))}),
      doctest::Contains("has activation parameter nan"), std::invalid_argument);
  CHECK(net.layers().empty());
  // What counts is the parameter the file holds: a kind without one writes 0 whatever
  // its alpha field says.
  Network<double> relu;
  relu.add({Parameter<double>(xt::zeros<double>({3, 4})),
            Parameter<double>(xt::zeros<double>({1, 4})), Activation{ActivationKind::Relu, -1.0}});
  CHECK(relu.layers().size() == 1);
}

TEST_CASE("network: same seed gives the same parameters, another seed others") {
  const std::vector<std::size_t> sizes = {3, 16, 4};
  const std::vector<Activation> acts = {Activation::relu(), Activation::softmax()};
  for (const char* name : {"standard_normal", "glorot_uniform", "he_normal"}) {
    INFO(name);
    std::mt19937_64 a(2026), b(2026), c(2027);
    const Network<float> n1(sizes, acts, Initialiser::parse(name), a);
    const Network<float> n2(sizes, acts, Initialiser::parse(name), b);
    const Network<float> n3(sizes, acts, Initialiser::parse(name), c);
    for (std::size_t i = 0; i < n1.parameters().size(); ++i) {
      CHECK(n1.parameters()[i].value() == n2.parameters()[i].value());
    }
    CHECK(n1.parameters()[0].value() != n3.parameters()[0].value());
  }
}

TEST_CASE("network: float networks give the double results up to float rounding") {
  std::mt19937_64 a(8), b(8);
  const std::vector<std::size_t> sizes = {3, 5, 2};
  const std::vector<Activation> acts = {Activation::sigmoid(), Activation::identity()};
  Network<float> nf(sizes, acts, Initialiser{}, a);
  Network<double> nd(sizes, acts, Initialiser{}, b);
  const Matrix<double> xd = normal_matrix(4, 3, 3);
  const Matrix<float> xf = xt::cast<float>(xd);
  const Matrix<double> yf = xt::cast<double>(nf.predict(xf));
  CHECK(max_abs_diff(yf, nd.predict(xd)) < 1e-5);
}
