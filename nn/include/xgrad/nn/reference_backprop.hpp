// The hand-derived backpropagation of report 000 §II.C (eqs. 5, 7, 8), report 002
// Algorithm 2: an independent code path over the same parameters as a Network, sharing
// none of the tape's code. It exists to check the tape's gradients for every activation x
// cost x regulariser, and as the speed baseline of a training step through the tape.
//
// Cost conventions are exactly those of cost.hpp: MSE and BCE are means over every
// element (n * outputs), cross-entropy a mean over rows; the penalty is lambda * sum|θ|
// (L1) or lambda * sum θ² (L2) over the weights, and over the biases when asked.
#pragma once

#include <vector>

#include "xgrad/nn/cost.hpp"
#include "xgrad/nn/network.hpp"

namespace xgrad::nn {

template <class T>
class ReferenceBackprop {
 public:
  /// Keeps a copy of the network's layer list: the parameter handles share storage with
  /// `net`, so later changes to the parameter values are seen; added layers are not.
  explicit ReferenceBackprop(const Network<T>& net);

  /// Forward pass storing z^l and a^l, then the backward pass. Returns the objective
  /// (data cost + penalty) and leaves dC/dθ in gradients(), in the order of
  /// Network::parameters(): W^1, b^1, W^2, b^2, ... Buffers are reused between calls
  /// of the same batch size, so a training loop does not allocate after its first step.
  T compute(const Matrix<T>& x, const Matrix<T>& y, const CostSpec& spec);
  /// The same on the minibatch rows[begin, end) of x and y, gathered into reused buffers.
  T compute(const Matrix<T>& x, const Matrix<T>& y, const std::vector<std::size_t>& rows,
            std::size_t begin, std::size_t end, const CostSpec& spec);

  /// compute() that adds dC/dθ straight into each Parameter::grad() (the weight
  /// gradient by a GEMM with beta = 1), as tape.backward() does, instead of filling
  /// gradients(): the form a training loop steps an optimiser on, with no extra pass
  /// over the gradients. gradients() keeps the last compute()'s values.
  T accumulate(const Matrix<T>& x, const Matrix<T>& y, const CostSpec& spec);
  T accumulate(const Matrix<T>& x, const Matrix<T>& y, const std::vector<std::size_t>& rows,
               std::size_t begin, std::size_t end, const CostSpec& spec);

  /// dC/dW^1, dC/db^1, ... of the last compute().
  const std::vector<Matrix<T>>& gradients() const { return grads_; }
  /// Adds gradients() into each Parameter::grad() (what tape.backward() does), so an
  /// optimiser can step on them (accumulate() does the same without the extra pass).
  void add_to_parameter_grads() const;
  /// z^l and a^l of the last forward pass (l = 1..L, index l-1); a^L is the output.
  const std::vector<Matrix<T>>& z() const { return z_; }
  const std::vector<Matrix<T>>& a() const { return a_; }

 private:
  T run(const Matrix<T>& x, const Matrix<T>& y, const CostSpec& spec, bool into_parameters);
  void gather(const Matrix<T>& x, const Matrix<T>& y, const std::vector<std::size_t>& rows,
              std::size_t begin, std::size_t end);
  /// Where gradient i (Network::parameters() order) goes: gradients()[i] or the
  /// parameter's own grad().
  Matrix<T>& target(std::size_t i, bool into_parameters);
  std::vector<Dense<T>> layers_;
  std::vector<Matrix<T>> z_, a_, delta_, grads_;
  Matrix<T> xb_, yb_;  // gathered minibatch
};

/// One-shot form: the gradients, in Network::parameters() order, of the objective.
template <class T>
std::vector<Matrix<T>> reference_gradients(const Network<T>& net, const Matrix<T>& x,
                                           const Matrix<T>& y, const CostSpec& spec,
                                           T* objective_value = nullptr);

extern template class ReferenceBackprop<float>;
extern template class ReferenceBackprop<double>;

}  // namespace xgrad::nn
