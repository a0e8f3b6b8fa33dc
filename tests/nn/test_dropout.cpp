// Specification of inverted dropout (dropout.hpp): each unit is kept with probability
// 1 - p and scaled by 1/(1 - p); the masks come from one seeded stream in a documented
// order; the gradient flows through the kept units only; the Trainer drops units in
// training steps and never when evaluating.
#include <cmath>
#include <cstdint>
#include <optional>
#include <random>
#include <vector>

#include <doctest/doctest.h>

#include "message_of.hpp"
#include "xgrad/gradcheck.hpp"
#include "xgrad/nn/dropout.hpp"
#include "xgrad/nn/trainer.hpp"
#include "xgrad/ops.hpp"

using namespace xgrad;
using namespace xgrad::nn;

namespace {

/// The mask the documented stream gives for `count` units: two units per 64-bit draw,
/// low 32 bits first, a unit dropped when its draw is below p·2³².
std::vector<double> documented_mask(std::mt19937_64& rng, std::size_t count, double p) {
  const auto threshold = static_cast<std::uint64_t>(p * 4294967296.0);
  std::vector<double> m(count);
  for (std::size_t i = 0; i < count; i += 2) {
    const std::uint64_t r = rng();
    m[i] = (r & 0xFFFFFFFFu) < threshold ? 0.0 : 1.0 / (1.0 - p);
    if (i + 1 < count) m[i + 1] = (r >> 32) < threshold ? 0.0 : 1.0 / (1.0 - p);
  }
  return m;
}

Matrix<double> ones(std::size_t rows, std::size_t cols) {
  Matrix<double> m({rows, cols});
  m.fill(1.0);
  return m;
}

}  // namespace

TEST_CASE("a dropout mask drops a fraction p of the units and scales the rest by 1/(1 - p)") {
  DropoutMasks<double> masks(Dropout{0.3, 0.3}, 11);
  Tape<double> tape;
  // 199 x 501 = 99,699 units, an odd count: the last unit takes half of one more draw.
  const Tensor<double> a = tape.constant(ones(199, 501));
  const Matrix<double> m = masks.apply(tape, a, 0.3).value();
  std::size_t dropped = 0, kept_unscaled = 0;
  for (const double v : m) {
    if (v == 0.0)
      ++dropped;
    else if (v != 1.0 / 0.7)
      ++kept_unscaled;
  }
  CHECK(kept_unscaled == 0);
  // The fraction's standard deviation is sqrt(0.3 · 0.7 / 99,699) = 0.00145; 0.01 is
  // 6.9 of them.
  CHECK(std::abs(double(dropped) / double(m.size()) - 0.3) < 0.01);
}

TEST_CASE("masks follow the documented stream: input first, then each hidden layer") {
  const std::uint64_t seed = 5;
  std::mt19937_64 init_rng(3);
  const Network<double> net({3, 4, 5, 2},
                            {Activation::tanh(), Activation::sigmoid(), Activation::identity()},
                            Initialiser::parse("glorot_uniform"), init_rng);
  const Matrix<double> x{{0.5, -1.0, 2.0}, {1.5, 0.25, -0.75}};
  DropoutMasks<double> masks(Dropout{0.2, 0.5}, seed);
  Tape<double> tape;
  const Matrix<double> got = net.logits(tape, tape.constant(x), &masks).value();

  // The same forward pass by hand, with masks drawn from the documented stream.
  std::mt19937_64 rng(seed);
  std::vector<double> a(x.begin(), x.end());
  std::size_t width = 3;
  const std::vector<double> input_mask = documented_mask(rng, a.size(), 0.2);
  for (std::size_t k = 0; k < a.size(); ++k)
    a[k] *= input_mask[k];
  for (std::size_t l = 0; l < 3; ++l) {
    const auto& layer = net.layers()[l];
    const std::size_t out = layer.outputs();
    std::vector<double> z(2 * out);
    for (std::size_t i = 0; i < 2; ++i) {
      for (std::size_t j = 0; j < out; ++j) {
        double s = layer.b.value()(0, j);
        for (std::size_t k = 0; k < width; ++k)
          s += a[i * width + k] * layer.W.value()(k, j);
        z[i * out + j] = s;
      }
    }
    if (l == 2) {
      for (std::size_t k = 0; k < z.size(); ++k)
        CHECK(got.data()[k] == doctest::Approx(z[k]).epsilon(1e-12));
      break;
    }
    for (double& v : z)
      v = l == 0 ? std::tanh(v) : 1.0 / (1.0 + std::exp(-v));
    const std::vector<double> hidden_mask = documented_mask(rng, z.size(), 0.5);
    for (std::size_t k = 0; k < z.size(); ++k)
      z[k] *= hidden_mask[k];
    a = z;
    width = out;
  }
}

TEST_CASE("an odd unit count draws its last unit from the low half of one more draw") {
  // 1x3 units: units 0 and 1 share a draw, unit 2 takes the low 32 bits of the next;
  // 50 masks in a row keep the stream in step only if each mask takes two draws.
  DropoutMasks<double> masks(Dropout{0.5, 0.5}, 7);
  std::mt19937_64 rng(7);
  for (int t = 0; t < 50; ++t) {
    CAPTURE(t);
    Tape<double> tape;
    const Matrix<double> m = masks.apply(tape, tape.constant(ones(1, 3)), 0.5).value();
    const std::vector<double> want = documented_mask(rng, 3, 0.5);
    for (std::size_t k = 0; k < 3; ++k)
      CHECK(m(0, k) == want[k]);
  }
}

TEST_CASE("the gradient through a dropout mask is the mask: kept units only, scaled") {
  DropoutMasks<double> masks(Dropout{0.0, 0.4}, 21);
  Tape<double> tape;
  const Tensor<double> a = tape.variable(ones(6, 7));
  const Tensor<double> y = masks.apply(tape, a, 0.4);
  tape.backward(xgrad::sum(y));
  for (std::size_t k = 0; k < y.value().size(); ++k)
    CHECK(a.grad().data()[k] == y.value().data()[k]);  // d sum(a ⊙ M)/da = M, and a = 1
}

TEST_CASE("a network's gradients with fixed dropout masks pass gradcheck") {
  // The same seed for every evaluation: the function gradcheck differentiates is then
  // one fixed masked network.
  std::mt19937_64 init_rng(8);
  Network<double> net({4, 6, 5, 3}, {Activation::relu(), Activation::tanh(), Activation::softmax()},
                      Initialiser::parse("glorot_uniform"), init_rng);
  std::mt19937_64 data_rng(9);
  std::normal_distribution<double> normal;
  Matrix<double> x({5, 4});
  for (double& v : x)
    v = normal(data_rng);
  const Matrix<double> y{{1, 0, 0}, {0, 1, 0}, {0, 0, 1}, {1, 0, 0}, {0, 1, 0}};
  CostSpec cost;
  cost.cost = CostKind::CrossEntropy;
  const GradcheckResult r = gradcheck(
      [&](Tape<double>& tape) {
        DropoutMasks<double> masks(Dropout{0.25, 0.5}, 77);
        return objective(tape, net, tape.constant(x), tape.constant(y), cost, &masks);
      },
      net.parameters());
  CHECK_MESSAGE(r.passed, r.message());
}

TEST_CASE("dropout rates outside 0 <= p < 1 are refused, naming the rate") {
  CHECK(message_of([] {
          DropoutMasks<double>(Dropout{1.0, 0.0}, 0);
        }) == "dropout: the input rate must be in [0, 1), got 1");
  CHECK(message_of([] {
          DropoutMasks<float>(Dropout{0.0, -0.1}, 0);
        }) == "dropout: the hidden rate must be in [0, 1), got -0.1");
  CHECK(message_of([] {
          DropoutMasks<double>(Dropout{-1e-9, 0.0}, 0);
        }) == "dropout: the input rate must be in [0, 1), got -1e-09");
  Tape<double> tape;
  DropoutMasks<double> masks(Dropout{}, 0);
  CHECK(message_of([&] { masks.apply(tape, tape.constant(ones(2, 2)), 1.0); }) ==
        "dropout: the rate must be in [0, 1), got 1");
  TrainerOptions o;
  o.dropout.hidden = 1.5;
  CHECK(message_of([&] { o.validate(); }) == "dropout: the hidden rate must be in [0, 1), got 1.5");
}

TEST_CASE("the trainer drops units in training steps only, reproducibly for a dropout seed") {
  std::mt19937_64 data_rng(4);
  std::uniform_real_distribution<double> u(-1, 1);
  Matrix<double> x({60, 2}), y({60, 1});
  for (std::size_t i = 0; i < 60; ++i) {
    x(i, 0) = u(data_rng);
    x(i, 1) = u(data_rng);
    y(i, 0) = x(i, 0) * x(i, 1);
  }
  auto train = [&](const Dropout& d, std::optional<std::uint64_t> dropout_seed,
                   Network<double>& net) {
    std::mt19937_64 init_rng(6);
    net = Network<double>({2, 16, 1}, {Activation::tanh(), Activation::identity()},
                          Initialiser::parse("glorot_uniform"), init_rng);
    auto opt = make_optimiser<double>("adam", net.parameters());
    TrainerOptions o;
    o.epochs = 3;
    o.batch_size = 20;
    o.seed = 1;
    o.progress = false;
    o.dropout = d;
    o.dropout_seed = dropout_seed;
    CostSpec cost;
    Trainer<double> trainer(net, *opt, cost, o);
    const History h = trainer.fit(x, y);
    // Evaluation never drops: two evaluations agree to the bit.
    CHECK(trainer.evaluate(x, y).loss == trainer.evaluate(x, y).loss);
    return h.epochs.back().train_loss;
  };
  Network<double> plain, dropped, again, other;
  const double without = train(Dropout{}, 2, plain);
  const double with = train(Dropout{0.0, 0.5}, 2, dropped);
  CHECK(with != without);
  CHECK(train(Dropout{0.0, 0.5}, 2, again) == with);  // the same masks
  CHECK(train(Dropout{0.0, 0.5}, 3, other) != with);  // other masks
  // Unset, the dropout seed derives from the shuffling seed: still reproducible.
  const double derived = train(Dropout{0.0, 0.5}, std::nullopt, other);
  CHECK(train(Dropout{0.0, 0.5}, std::nullopt, again) == derived);
  // But not equal to the shuffling seed (1): the masks would then be drawn from a copy of
  // the stream that shuffles the rows.
  CHECK(train(Dropout{0.0, 0.5}, 1, other) != derived);
}
