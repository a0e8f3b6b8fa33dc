// Initialisers: seeded, and with the distributions they name (report 000 §II.F; report
// 003's Glorot/Xavier and He). Tolerances are several standard errors of the estimates
// from 120,000 draws, so a wrong scale (even sqrt(2) off) fails.
#include <doctest/doctest.h>

#include <xtensor/xmath.hpp>

#include "nn_model_test_util.hpp"

using namespace nn_test;

namespace {

struct Moments {
  double mean = 0, std = 0, max_abs = 0;
};

Moments moments(const Matrix<double>& w) {
  Moments m;
  for (double v : w)
    m.mean += v;
  m.mean /= static_cast<double>(w.size());
  for (double v : w) {
    m.std += (v - m.mean) * (v - m.mean);
    m.max_abs = std::max(m.max_abs, std::abs(v));
  }
  m.std = std::sqrt(m.std / static_cast<double>(w.size() - 1));
  return m;
}

constexpr std::size_t kIn = 400, kOut = 300;  // 120,000 draws

Moments draw(const std::string& name) {
  std::mt19937_64 rng(99);
  return moments(init_weights<double>(Initialiser::parse(name), kIn, kOut, rng));
}

}  // namespace

TEST_CASE("init: standard normal and N(0, sigma)") {
  const Moments s = draw("standard_normal");
  // Standard error of the mean 1/sqrt(N) = 0.0029, of the std 1/sqrt(2N) = 0.002.
  CHECK(std::abs(s.mean) < 0.015);
  CHECK(std::abs(s.std - 1.0) < 0.01);
  const Moments n = draw("normal:0.25");
  CHECK(std::abs(n.std - 0.25) < 0.0025);
}

TEST_CASE("init: Glorot uniform stays inside its bound and fills it") {
  const double r = std::sqrt(6.0 / (kIn + kOut));
  const Moments m = draw("glorot_uniform");
  CHECK(m.max_abs <= r);
  CHECK(m.max_abs > 0.999 * r);
  CHECK(std::abs(m.std - r / std::sqrt(3.0)) < 0.01 * r / std::sqrt(3.0));
  CHECK(std::abs(m.mean) < 0.015 * r);
}

TEST_CASE("init: Glorot normal, He normal and He uniform scales") {
  const Moments g = draw("glorot_normal");
  CHECK(std::abs(g.std - std::sqrt(2.0 / (kIn + kOut))) < 0.01 * std::sqrt(2.0 / (kIn + kOut)));
  const Moments h = draw("he_normal");
  const double he = std::sqrt(2.0 / kIn);
  CHECK(std::abs(h.std - he) < 0.01 * he);
  CHECK(std::abs(h.mean) < 0.015 * he);
  const Moments u = draw("he_uniform");
  const double r = std::sqrt(6.0 / kIn);
  CHECK(u.max_abs <= r);
  CHECK(u.max_abs > 0.999 * r);
  CHECK(std::abs(u.std - r / std::sqrt(3.0)) < 0.01 * r / std::sqrt(3.0));
}

TEST_CASE("init: biases constant 0.01, 0, or N(0, sigma)") {
  std::mt19937_64 rng(1);
  Initialiser init;
  const Matrix<double> b = init_biases<double>(init, 7, rng);
  CHECK(b.shape() == std::array<std::size_t, 2>{1, 7});
  CHECK(xt::all(xt::equal(b, 0.01)));
  init.bias_value = 0.0;
  CHECK(xt::all(xt::equal(init_biases<double>(init, 3, rng), 0.0)));
  init.biases = BiasInit::Normal;
  init.bias_sigma = 0.5;
  const Moments m = moments(init_biases<double>(init, 100000, rng));
  CHECK(std::abs(m.std - 0.5) < 0.005);
  init.bias_sigma = -1;
  CHECK_THROWS_WITH_AS(init_biases<double>(init, 3, rng),
                       "initialiser: bias_sigma must be positive and finite, got -1",
                       std::invalid_argument);
}

TEST_CASE("init: the same seed draws the same numbers in float and double") {
  for (const char* name : {"standard_normal", "normal:2", "glorot_uniform", "glorot_normal",
                           "he_normal", "he_uniform"}) {
    INFO(name);
    std::mt19937_64 a(7), b(7), c(8);
    const Matrix<double> w1 = init_weights<double>(Initialiser::parse(name), 5, 6, a);
    const Matrix<double> w2 = init_weights<double>(Initialiser::parse(name), 5, 6, b);
    const Matrix<double> w3 = init_weights<double>(Initialiser::parse(name), 5, 6, c);
    CHECK(w1 == w2);
    CHECK(w1 != w3);
    std::mt19937_64 d(7);
    const Matrix<float> wf = init_weights<float>(Initialiser::parse(name), 5, 6, d);
    CHECK(wf == xt::cast<float>(w1));
  }
}

TEST_CASE("init: parse accepts the names and rejects others by name") {
  CHECK(Initialiser::parse("He_Normal").weights == WeightInit::HeNormal);
  CHECK(Initialiser::parse("xavier_uniform").weights == WeightInit::GlorotUniform);
  const Initialiser n = Initialiser::parse("normal:0.1");
  CHECK(n.weights == WeightInit::Normal);
  CHECK(n.weight_sigma == 0.1);
  CHECK(n.bias_value == 0.01);  // parse sets weights only
  CHECK_THROWS_WITH_AS(Initialiser::parse("lecun"),
                       "unknown weight initialiser \"lecun\"; expected standard_normal, "
                       "normal:SIGMA, glorot_uniform, glorot_normal, he_normal or he_uniform",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(Initialiser::parse("normal:abc"),
                       "initialiser \"normal:abc\": sigma \"abc\" is not a positive number",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(Initialiser::parse("normal:-2"),
                       "initialiser \"normal:-2\": sigma \"-2\" is not a positive number",
                       std::invalid_argument);
  // Decimal only: std::stod read "0x1" as 1.
  CHECK_THROWS_WITH_AS(Initialiser::parse("normal:0x1"),
                       "initialiser \"normal:0x1\": sigma \"0x1\" is not a positive number",
                       std::invalid_argument);
  std::mt19937_64 rng(1);
  CHECK_THROWS_WITH_AS(init_weights<double>(Initialiser{}, 0, 3, rng),
                       "init_weights: layer of 0 inputs and 3 outputs has no weights",
                       std::invalid_argument);
}
