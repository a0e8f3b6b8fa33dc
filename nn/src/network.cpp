// Feed-forward network: dense layers z^l = a^{l-1} W^l + b^l (report 000 eq. 2) followed
// by a^l = f^l(z^l) (eq. 3), recorded on the tape so the gradients come from the engine.
#include "xgrad/nn/network.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <stdexcept>
#include <string>

#include "wording.hpp"
#include "xgrad/nn/dropout.hpp"
#include "xgrad/ops.hpp"

namespace xgrad::nn {

namespace {

template <class T>
void check_layer(const Dense<T>& layer, std::size_t index) {
  const std::string where = "Network::add: layer " + std::to_string(index + 1);
  if (!layer.W.defined() || !layer.b.defined()) {
    throw std::invalid_argument(where + " has an undefined weight or bias parameter");
  }
  if (layer.W.value().dimension() != 2 || layer.W.rows() == 0 || layer.W.cols() == 0) {
    throw std::invalid_argument(where + ": weights are " + shape_string(layer.W.value()) +
                                ", need [in, out] with in, out >= 1");
  }
  if (layer.b.rows() != 1 || layer.b.cols() != layer.W.cols()) {
    throw std::invalid_argument(where + ": bias is " + shape_string(layer.b.value()) +
                                " but must be 1x" + std::to_string(layer.W.cols()) +
                                " for weights " + shape_string(layer.W.value()));
  }
  const ActivationKind k = layer.activation.kind;
  if (k < ActivationKind::Identity || k > ActivationKind::Softmax) {
    throw std::invalid_argument(where + ": unknown activation kind " +
                                std::to_string(static_cast<int>(k)));
  }
  // The file format (and Activation::parse) take no other: refused here, not at load.
  const double alpha = layer.activation.effective_alpha();  // what a model file holds
  if (!std::isfinite(alpha) || alpha < 0) {
    std::ostringstream msg;
    msg << where << ": " << layer.activation.name() << " has activation parameter " << alpha
        << "; it must be finite and >= 0 (0 = the kind's default)";
    throw std::invalid_argument(msg.str());
  }
}

}  // namespace

template <class T>
Network<T>::Network(const std::vector<std::size_t>& sizes,
                    const std::vector<Activation>& activations, const Initialiser& init,
                    std::mt19937_64& rng) {
  if (sizes.size() < 2) {
    throw std::invalid_argument("Network: sizes need at least an input and an output size, got " +
                                std::to_string(sizes.size()) + " size(s)");
  }
  if (activations.size() != sizes.size() - 1) {
    throw std::invalid_argument("Network: " + std::to_string(sizes.size()) + " sizes make " +
                                std::to_string(sizes.size() - 1) + " layer(s) but " +
                                std::to_string(activations.size()) + " activation(s) were given");
  }
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    if (sizes[i] == 0) {
      throw std::invalid_argument("Network: sizes[" + std::to_string(i) + "] is 0; every layer " +
                                  "needs at least one unit");
    }
  }
  layers_.reserve(activations.size());
  for (std::size_t l = 0; l < activations.size(); ++l) {
    // Weights then biases, layer by layer: the draw order fixes what a seed produces.
    Matrix<T> w = init_weights<T>(init, sizes[l], sizes[l + 1], rng);
    Matrix<T> b = init_biases<T>(init, sizes[l + 1], rng);
    const std::string n = std::to_string(l + 1);
    add(Dense<T>{Parameter<T>(std::move(w), "W" + n), Parameter<T>(std::move(b), "b" + n),
                 activations[l]});
  }
}

template <class T>
Network<T>& Network<T>::add(Dense<T> layer) {
  check_layer(layer, layers_.size());
  if (!layers_.empty() && layer.inputs() != layers_.back().outputs()) {
    throw std::invalid_argument("Network::add: layer " + std::to_string(layers_.size() + 1) +
                                " takes " + wording::count_of(layer.inputs(), "input") +
                                " but layer " + std::to_string(layers_.size()) + " gives " +
                                wording::count_of(layers_.back().outputs(), "output"));
  }
  for (const Dense<T>& other : layers_) {
    // parameters() must give each parameter once; a shared parameter would be counted
    // (and updated) twice.
    if (other.W.same_as(layer.W) || other.b.same_as(layer.b) || other.W.same_as(layer.b) ||
        other.b.same_as(layer.W)) {
      throw std::invalid_argument("Network::add: layer " + std::to_string(layers_.size() + 1) +
                                  " reuses a parameter of an earlier layer");
    }
  }
  if (layer.W.same_as(layer.b)) {
    throw std::invalid_argument("Network::add: weights and bias are the same parameter");
  }
  layers_.push_back(std::move(layer));
  return *this;
}

template <class T>
std::size_t Network<T>::inputs() const {
  if (layers_.empty()) throw std::logic_error("Network::inputs: the network has no layers");
  return layers_.front().inputs();
}

template <class T>
std::size_t Network<T>::outputs() const {
  if (layers_.empty()) throw std::logic_error("Network::outputs: the network has no layers");
  return layers_.back().outputs();
}

template <class T>
Tensor<T> Network<T>::logits(Tape<T>& tape, const Tensor<T>& x, DropoutMasks<T>* dropout) const {
  if (layers_.empty()) throw std::logic_error("Network::forward: the network has no layers");
  if (x.cols() != inputs()) {
    throw std::invalid_argument("Network::forward: input is " + shape_string(x.value()) +
                                " but the network takes " + std::to_string(inputs()) +
                                " features per row");
  }
  Tensor<T> a = dropout ? dropout->apply(tape, x, dropout->rates().input) : x;
  for (std::size_t l = 0; l < layers_.size(); ++l) {
    const Dense<T>& layer = layers_[l];
    // report 000 eq. 2: z = a W + b, the 1 x out bias broadcast over the batch rows.
    Tensor<T> z = linear(a, tape.parameter(layer.W), tape.parameter(layer.b));
    if (l + 1 == layers_.size()) return z;
    a = activate(layer.activation, z);  // eq. 3
    if (dropout) a = dropout->apply(tape, a, dropout->rates().hidden);
  }
  return a;  // not reached: the loop returns at the last layer
}

template <class T>
Tensor<T> Network<T>::forward(Tape<T>& tape, const Tensor<T>& x, DropoutMasks<T>* dropout) const {
  return activate(layers_.empty() ? Activation::identity() : layers_.back().activation,
                  logits(tape, x, dropout));
}

template <class T>
Matrix<T> Network<T>::predict(const Matrix<T>& x, std::size_t batch_size) const {
  if (batch_size == 0) throw std::invalid_argument("Network::predict: batch_size is 0");
  if (x.shape(1) != inputs()) {
    throw std::invalid_argument("Network::predict: input is " + shape_string(x) +
                                " but the network takes " + std::to_string(inputs()) +
                                " features per row");
  }
  const std::size_t n = x.shape(0), out = outputs();
  Matrix<T> result({n, out});
  Tape<T> tape;
  NoGradGuard<T> no_grad(tape);
  std::vector<std::size_t> rows(n);
  for (std::size_t i = 0; i < n; ++i)
    rows[i] = i;
  for (std::size_t begin = 0; begin < n; begin += batch_size) {
    const std::size_t end = std::min(n, begin + batch_size);
    tape.clear();
    const Matrix<T>& y = forward(tape, tape.gather_rows(x, rows, begin, end)).value();
    std::copy(y.data(), y.data() + y.size(), result.data() + begin * out);
  }
  return result;
}

template <class T>
std::vector<Parameter<T>> Network<T>::parameters() const {
  std::vector<Parameter<T>> p;
  p.reserve(2 * layers_.size());
  for (const Dense<T>& layer : layers_) {
    p.push_back(layer.W);
    p.push_back(layer.b);
  }
  return p;
}

template <class T>
Network<T> Network<T>::clone() const {
  Network copy;
  for (const Dense<T>& layer : layers_) {
    copy.layers_.push_back(Dense<T>{Parameter<T>(layer.W.value(), layer.W.name()),
                                    Parameter<T>(layer.b.value(), layer.b.name()),
                                    layer.activation});
  }
  return copy;
}

template <class T>
void Network<T>::copy_values_from(const Network& other) {
  if (other.layers_.size() != layers_.size()) {
    throw std::invalid_argument("Network::copy_values_from: source has " +
                                std::to_string(other.layers_.size()) + " layers, this network " +
                                std::to_string(layers_.size()));
  }
  // Every shape first, then the copies: a refused call changes nothing.
  for (std::size_t l = 0; l < layers_.size(); ++l) {
    const Dense<T>& src = other.layers_[l];
    const Dense<T>& dst = layers_[l];
    if (src.W.value().shape() != dst.W.value().shape() ||
        src.b.value().shape() != dst.b.value().shape()) {
      throw std::invalid_argument("Network::copy_values_from: layer " + std::to_string(l + 1) +
                                  " is W " + shape_string(src.W.value()) + ", b " +
                                  shape_string(src.b.value()) + " in the source but W " +
                                  shape_string(dst.W.value()) + ", b " +
                                  shape_string(dst.b.value()) + " here");
    }
  }
  for (std::size_t l = 0; l < layers_.size(); ++l) {
    const Dense<T>& src = other.layers_[l];
    Dense<T>& dst = layers_[l];
    if (src.W.same_as(dst.W)) continue;  // same storage: nothing to copy
    // Element copies into the existing buffers: handles held by an optimiser stay valid.
    std::copy(src.W.value().begin(), src.W.value().end(), dst.W.value().begin());
    std::copy(src.b.value().begin(), src.b.value().end(), dst.b.value().begin());
  }
}

template class Network<float>;
template class Network<double>;

}  // namespace xgrad::nn
