// Helpers of the nn model tests (test_backprop_check*, test_network, test_serialize...):
// reproducible data, networks, and the tape's gradients of an objective.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "xgrad/nn/cost.hpp"
#include "xgrad/nn/network.hpp"
#include "xgrad/ops.hpp"

namespace nn_test {

using xgrad::Matrix;
using namespace xgrad::nn;

/// rows x cols drawn from N(0, sigma) with a fixed seed.
template <class T = double>
Matrix<T> normal_matrix(std::size_t rows, std::size_t cols, std::uint64_t seed, double sigma = 1) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> d(0.0, sigma);
  Matrix<T> m({rows, cols});
  for (auto& v : m)
    v = static_cast<T>(d(rng));
  return m;
}

/// Targets that fit the cost: N(0,1) for MSE, probabilities in (0,1) for BCE (soft
/// targets exercise y between the classes), one-hot rows for cross-entropy.
template <class T = double>
Matrix<T> targets_for(CostKind cost, std::size_t rows, std::size_t cols, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  Matrix<T> y({rows, cols});
  y.fill(T(0));
  if (cost == CostKind::MeanSquaredError) return normal_matrix<T>(rows, cols, seed);
  if (cost == CostKind::BinaryCrossEntropy) {
    std::uniform_real_distribution<double> u(0.05, 0.95);
    for (auto& v : y)
      v = static_cast<T>(u(rng));
    return y;
  }
  std::uniform_int_distribution<std::size_t> k(0, cols - 1);
  for (std::size_t i = 0; i < rows; ++i)
    y(i, k(rng)) = T(1);
  return y;
}

/// The tape's gradient of the objective with respect to every parameter, in
/// Network::parameters() order, and the objective value.
template <class T>
std::vector<Matrix<T>> tape_gradients(const Network<T>& net, const Matrix<T>& x, const Matrix<T>& y,
                                      const CostSpec& spec, T* value = nullptr) {
  auto params = net.parameters();
  for (auto& p : params)
    p.zero_grad();
  xgrad::Tape<T> tape;
  const xgrad::Tensor<T> c = objective(tape, net, tape.constant(x), tape.constant(y), spec);
  if (value != nullptr) *value = c.item();
  tape.backward(c);
  std::vector<Matrix<T>> grads;
  for (auto& p : params) {
    grads.push_back(p.grad());
    p.zero_grad();
  }
  return grads;
}

/// max|a − b| / max(max|b|, tiny): the error of a relative to the scale of the whole
/// parameter's gradient b (an element-wise ratio would blow up where b is nearly 0).
inline double relative_error(const Matrix<double>& a, const Matrix<double>& b) {
  double diff = 0, scale = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    diff = std::max(diff, std::abs(a.data()[i] - b.data()[i]));
    scale = std::max(scale, std::abs(b.data()[i]));
  }
  return diff / std::max(scale, 1e-300);
}

/// The what() of the E that f throws, or "<no exception>" / "<other exception: ...>":
/// lets a test check that a message names the values without matching it whole.
template <class E, class F>
std::string thrown_message(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  } catch (const std::exception& e) {
    return std::string("<other exception: ") + e.what() + ">";
  }
  return "<no exception>";
}

inline bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace nn_test
