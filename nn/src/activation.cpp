// Activations of report 000 §II.D (eqs. 9-15), applied through engine ops so that their
// derivatives come from the tape (the hand-derived ones live in reference_backprop.cpp).
#include "xgrad/nn/activation.hpp"

#include <cctype>
#include <cmath>
#include <sstream>
#include <stdexcept>

#include "number_text.hpp"
#include "xgrad/ops.hpp"

namespace xgrad::nn {

double Activation::effective_alpha() const {
  switch (kind) {
    case ActivationKind::LeakyRelu:
      return alpha == 0.0 ? 0.01 : alpha;  // report 000 eq. 11: "a typical value is 0.01"
    case ActivationKind::Elu:
      return alpha == 0.0 ? 1.0 : alpha;
    default:
      return 0.0;
  }
}

std::string Activation::name() const {
  std::ostringstream s;
  switch (kind) {
    case ActivationKind::Identity:
      return "identity";
    case ActivationKind::Sigmoid:
      return "sigmoid";
    case ActivationKind::Tanh:
      return "tanh";
    case ActivationKind::Relu:
      return "relu";
    case ActivationKind::Softmax:
      return "softmax";
    case ActivationKind::LeakyRelu:
      s << "leaky_relu(" << effective_alpha() << ")";
      return s.str();
    case ActivationKind::Elu:
      s << "elu(" << effective_alpha() << ")";
      return s.str();
  }
  return "unknown activation " + std::to_string(static_cast<int>(kind));
}

namespace {

std::string lower(std::string s) {
  for (char& c : s)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

const char* kAccepted =
    "identity (or linear), sigmoid, tanh, relu, leaky_relu[:alpha], elu[:alpha], softmax";

double parse_alpha(const std::string& text, const std::string& number) {
  const detail::NumberText read = detail::read_number(number);  // decimal only
  const double value = read.value;
  if (!read.whole || !std::isfinite(value) || value <= 0) {
    throw std::invalid_argument("activation \"" + text + "\": alpha \"" + number +
                                "\" is not a positive number");
  }
  return value;
}

}  // namespace

Activation Activation::parse(const std::string& text) {
  const std::string t = lower(text);
  // Accepts both "leaky_relu:0.1" (command lines) and "leaky_relu(0.1)" (what name() prints).
  std::string head = t, arg;
  if (const auto colon = t.find(':'); colon != std::string::npos) {
    head = t.substr(0, colon);
    arg = t.substr(colon + 1);
    if (arg.empty()) {
      throw std::invalid_argument("activation \"" + text + "\": nothing after ':'");
    }
  } else if (const auto open = t.find('('); open != std::string::npos) {
    if (t.back() != ')') {
      throw std::invalid_argument("activation \"" + text + "\": missing ')'");
    }
    head = t.substr(0, open);
    arg = t.substr(open + 1, t.size() - open - 2);
    if (arg.empty()) {
      throw std::invalid_argument("activation \"" + text + "\": nothing between '(' and ')'");
    }
  }
  Activation a;
  if (head == "identity" || head == "linear") {
    a = identity();
  } else if (head == "sigmoid" || head == "logistic") {
    a = sigmoid();
  } else if (head == "tanh") {
    a = tanh();
  } else if (head == "relu") {
    a = relu();
  } else if (head == "leaky_relu" || head == "leakyrelu") {
    a = leaky_relu();
  } else if (head == "elu") {
    a = elu();
  } else if (head == "softmax") {
    a = softmax();
  } else {
    throw std::invalid_argument("unknown activation \"" + text + "\"; expected one of " +
                                kAccepted);
  }
  if (!arg.empty()) {
    if (a.kind != ActivationKind::LeakyRelu && a.kind != ActivationKind::Elu) {
      throw std::invalid_argument("activation \"" + text + "\": " + head +
                                  " takes no parameter (only leaky_relu and elu do)");
    }
    a.alpha = parse_alpha(text, arg);
  }
  return a;
}

template <class T>
Tensor<T> activate(const Activation& f, const Tensor<T>& z) {
  switch (f.kind) {
    case ActivationKind::Identity:
      return z;  // no node: the identity needs no backward rule
    case ActivationKind::Sigmoid:
      return sigmoid(z);
    case ActivationKind::Tanh:
      return tanh(z);
    case ActivationKind::Relu:
      return relu(z);
    case ActivationKind::LeakyRelu:
      return leaky_relu(z, static_cast<T>(f.effective_alpha()));
    case ActivationKind::Elu:
      return elu(z, static_cast<T>(f.effective_alpha()));
    case ActivationKind::Softmax:
      return softmax(z);
  }
  throw std::invalid_argument("activate: unknown activation kind " +
                              std::to_string(static_cast<int>(f.kind)));
}

template Tensor<float> activate(const Activation&, const Tensor<float>&);
template Tensor<double> activate(const Activation&, const Tensor<double>&);

}  // namespace xgrad::nn
