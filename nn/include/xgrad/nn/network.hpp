// A feed-forward network: dense layers z = a W + b (report 000 eqs. 2-3), W [in,out],
// b [1,out], each followed by its activation.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "xgrad/nn/activation.hpp"
#include "xgrad/nn/init.hpp"
#include "xgrad/tape.hpp"

namespace xgrad::nn {

template <class T>
class DropoutMasks;  // dropout.hpp

template <class T>
struct Dense {
  Parameter<T> W;  // [in, out]
  Parameter<T> b;  // [1, out]
  Activation activation;
  std::size_t inputs() const { return W.rows(); }
  std::size_t outputs() const { return W.cols(); }
};

template <class T>
class Network {
 public:
  Network() = default;
  /// From a spec: sizes {1, 50, 50, 1} with activations {sigmoid, sigmoid, identity}
  /// (one per layer, sizes.size() - 1 of them), parameters drawn from `init` with `rng`.
  Network(const std::vector<std::size_t>& sizes, const std::vector<Activation>& activations,
          const Initialiser& init, std::mt19937_64& rng);
  /// Appends a layer; its input size must equal the previous layer's output size.
  Network& add(Dense<T> layer);

  /// The output activations a^L for a batch x [n, in] (dropout as in logits()).
  Tensor<T> forward(Tape<T>& tape, const Tensor<T>& x, DropoutMasks<T>* dropout = nullptr) const;
  /// z^L, the last layer before its activation (fused losses take logits). With
  /// `dropout` (training), the input and every hidden layer's activations are multiplied
  /// by fresh masks of its rates (dropout.hpp).
  Tensor<T> logits(Tape<T>& tape, const Tensor<T>& x, DropoutMasks<T>* dropout = nullptr) const;
  /// forward() on a whole data set without recording gradients, in batches.
  Matrix<T> predict(const Matrix<T>& x, std::size_t batch_size = 1024) const;

  /// Every parameter once: W^1, b^1, W^2, b^2, ... (handles sharing the storage).
  std::vector<Parameter<T>> parameters() const;
  const std::vector<Dense<T>>& layers() const { return layers_; }
  std::vector<Dense<T>>& layers() { return layers_; }
  std::size_t inputs() const;
  std::size_t outputs() const;
  /// A deep copy (new parameter storage), e.g. the best parameters of early stopping.
  Network clone() const;
  /// Copies parameter values from another network of the same architecture.
  void copy_values_from(const Network& other);

 private:
  std::vector<Dense<T>> layers_;
};

extern template class Network<float>;
extern template class Network<double>;

}  // namespace xgrad::nn
