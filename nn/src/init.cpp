// Seeded initialisers (report 000 §II.F: standard normal weights, biases 0.01; report
// 003: Glorot uniform; He et al. 2015 for ReLU layers). Every draw comes from the caller's
// generator, so the same seed gives the same parameters.
#include "xgrad/nn/init.hpp"

#include <cctype>
#include <cmath>
#include <stdexcept>

#include "number_text.hpp"
#include "wording.hpp"

namespace xgrad::nn {

namespace {

void check_positive(const char* what, double sigma) {
  if (!(sigma > 0) || !std::isfinite(sigma)) {
    throw std::invalid_argument(std::string("initialiser: ") + what +
                                " must be positive and finite, got " + wording::shown(sigma));
  }
}

template <class T, class Dist>
Matrix<T> draw(std::size_t rows, std::size_t cols, Dist dist, std::mt19937_64& rng) {
  Matrix<T> m({rows, cols});
  // Row-major order, drawn in double and rounded: a float and a double network from the
  // same seed hold the same numbers up to rounding.
  for (auto& v : m)
    v = static_cast<T>(dist(rng));
  return m;
}

}  // namespace

Initialiser Initialiser::parse(const std::string& weights) {
  std::string t = weights;
  for (char& c : t)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  Initialiser init;
  if (t == "standard_normal") {
    init.weights = WeightInit::StandardNormal;
  } else if (t.rfind("normal:", 0) == 0) {
    init.weights = WeightInit::Normal;
    const std::string number = t.substr(7);
    const detail::NumberText read = detail::read_number(number);  // decimal only
    init.weight_sigma = read.value;
    if (!read.whole || !(init.weight_sigma > 0) || !std::isfinite(init.weight_sigma)) {
      throw std::invalid_argument("initialiser \"" + weights + "\": sigma \"" + number +
                                  "\" is not a positive number");
    }
  } else if (t == "glorot_uniform" || t == "xavier_uniform") {
    init.weights = WeightInit::GlorotUniform;
  } else if (t == "glorot_normal" || t == "xavier_normal") {
    init.weights = WeightInit::GlorotNormal;
  } else if (t == "he_normal") {
    init.weights = WeightInit::HeNormal;
  } else if (t == "he_uniform") {
    init.weights = WeightInit::HeUniform;
  } else {
    throw std::invalid_argument(
        "unknown weight initialiser \"" + weights +
        "\"; expected standard_normal, normal:SIGMA, glorot_uniform, glorot_normal, "
        "he_normal or he_uniform");
  }
  return init;
}

template <class T>
Matrix<T> init_weights(const Initialiser& init, std::size_t in, std::size_t out,
                       std::mt19937_64& rng) {
  if (in == 0 || out == 0) {
    throw std::invalid_argument("init_weights: layer of " + std::to_string(in) + " inputs and " +
                                std::to_string(out) + " outputs has no weights");
  }
  const double fan_sum = static_cast<double>(in + out);
  const double fan_in = static_cast<double>(in);
  switch (init.weights) {
    case WeightInit::StandardNormal:
      return draw<T>(in, out, std::normal_distribution<double>(0.0, 1.0), rng);
    case WeightInit::Normal:
      check_positive("weight_sigma", init.weight_sigma);
      return draw<T>(in, out, std::normal_distribution<double>(0.0, init.weight_sigma), rng);
    case WeightInit::GlorotUniform: {
      const double r = std::sqrt(6.0 / fan_sum);
      return draw<T>(in, out, std::uniform_real_distribution<double>(-r, r), rng);
    }
    case WeightInit::GlorotNormal:
      return draw<T>(in, out, std::normal_distribution<double>(0.0, std::sqrt(2.0 / fan_sum)), rng);
    case WeightInit::HeNormal:
      return draw<T>(in, out, std::normal_distribution<double>(0.0, std::sqrt(2.0 / fan_in)), rng);
    case WeightInit::HeUniform: {
      const double r = std::sqrt(6.0 / fan_in);
      return draw<T>(in, out, std::uniform_real_distribution<double>(-r, r), rng);
    }
  }
  throw std::invalid_argument("init_weights: unknown weight initialiser " +
                              std::to_string(static_cast<int>(init.weights)));
}

template <class T>
Matrix<T> init_biases(const Initialiser& init, std::size_t out, std::mt19937_64& rng) {
  if (out == 0) throw std::invalid_argument("init_biases: a layer needs at least one output");
  switch (init.biases) {
    case BiasInit::Constant: {
      Matrix<T> b({std::size_t(1), out});
      b.fill(static_cast<T>(init.bias_value));
      return b;
    }
    case BiasInit::Normal:
      check_positive("bias_sigma", init.bias_sigma);
      return draw<T>(1, out, std::normal_distribution<double>(0.0, init.bias_sigma), rng);
  }
  throw std::invalid_argument("init_biases: unknown bias initialiser " +
                              std::to_string(static_cast<int>(init.biases)));
}

template Matrix<float> init_weights<float>(const Initialiser&, std::size_t, std::size_t,
                                           std::mt19937_64&);
template Matrix<double> init_weights<double>(const Initialiser&, std::size_t, std::size_t,
                                             std::mt19937_64&);
template Matrix<float> init_biases<float>(const Initialiser&, std::size_t, std::mt19937_64&);
template Matrix<double> init_biases<double>(const Initialiser&, std::size_t, std::mt19937_64&);

}  // namespace xgrad::nn
