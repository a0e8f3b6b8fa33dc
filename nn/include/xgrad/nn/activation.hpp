// Per-layer activation functions f(z) of report 000 §II.B, applied through engine ops.
#pragma once

#include <string>

#include "xgrad/tape.hpp"

namespace xgrad::nn {

enum class ActivationKind { Identity, Sigmoid, Tanh, Relu, LeakyRelu, Elu, Softmax };

/// An activation and its parameter alpha (LeakyReLU slope, default 0.01; ELU
/// saturation, default 1; ignored by the others).
struct Activation {
  ActivationKind kind = ActivationKind::Sigmoid;
  double alpha = 0.0;  // 0 = the kind's default

  static Activation identity() { return {ActivationKind::Identity, 0.0}; }
  static Activation sigmoid() { return {ActivationKind::Sigmoid, 0.0}; }
  static Activation tanh() { return {ActivationKind::Tanh, 0.0}; }
  static Activation relu() { return {ActivationKind::Relu, 0.0}; }
  static Activation leaky_relu(double alpha = 0.01) { return {ActivationKind::LeakyRelu, alpha}; }
  static Activation elu(double alpha = 1.0) { return {ActivationKind::Elu, alpha}; }
  static Activation softmax() { return {ActivationKind::Softmax, 0.0}; }

  /// alpha with the kind's default filled in.
  double effective_alpha() const;
  /// "sigmoid", "leaky_relu(0.01)", ...
  std::string name() const;
  /// Parses "identity|linear", "sigmoid", "tanh", "relu", "leaky_relu[:alpha]",
  /// "elu[:alpha]", "softmax"; throws std::invalid_argument naming the text otherwise.
  static Activation parse(const std::string& text);
};

/// a = f(z) recorded on z's tape.
template <class T>
Tensor<T> activate(const Activation& f, const Tensor<T>& z);

}  // namespace xgrad::nn
