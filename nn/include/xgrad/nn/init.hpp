// Seeded initialisers for weights and biases (report 000 §II.F; Glorot as in report 003;
// He et al. 2015).
#pragma once

#include <random>
#include <string>

#include "xgrad/tape.hpp"

namespace xgrad::nn {

enum class WeightInit {
  StandardNormal,  // N(0, 1): report 000's default
  Normal,          // N(0, sigma)
  GlorotUniform,   // U(-r, r), r = sqrt(6 / (in + out))
  GlorotNormal,    // N(0, sqrt(2 / (in + out)))
  HeNormal,        // N(0, sqrt(2 / in))
  HeUniform,       // U(-r, r), r = sqrt(6 / in)
};
enum class BiasInit { Constant, Normal };

struct Initialiser {
  WeightInit weights = WeightInit::StandardNormal;
  double weight_sigma = 1.0;  // for WeightInit::Normal
  BiasInit biases = BiasInit::Constant;
  double bias_value = 0.01;  // report 000's constant
  double bias_sigma = 1.0;   // for BiasInit::Normal
  /// Parses "standard_normal", "normal:SIGMA", "glorot_uniform", "glorot_normal",
  /// "he_normal", "he_uniform" (weights only); throws std::invalid_argument otherwise.
  static Initialiser parse(const std::string& weights);
};

template <class T>
Matrix<T> init_weights(const Initialiser& init, std::size_t in, std::size_t out,
                       std::mt19937_64& rng);
template <class T>
Matrix<T> init_biases(const Initialiser& init, std::size_t out, std::mt19937_64& rng);

}  // namespace xgrad::nn
