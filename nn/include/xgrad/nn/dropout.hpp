// Inverted dropout (Srivastava et al., JMLR 15, 2014): while training, every unit of the
// input or of a hidden layer's activations is kept with probability 1 - p and scaled by
// 1 / (1 - p), so its expected value is unchanged and prediction needs no rescaling.
// On the tape a mask is a constant: a = a ⊙ M, and the gradient flows through the kept
// units only (the mul rule), with no backward of its own.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "xgrad/tape.hpp"

namespace xgrad::nn {

/// Dropout rates for training: 0 switches a kind off.
struct Dropout {
  double input = 0;   // p for the network's input features
  double hidden = 0;  // p for every hidden layer's activations (not the output layer's)
  bool active() const { return input > 0 || hidden > 0; }
  /// Throws std::invalid_argument naming the rate unless 0 <= p < 1.
  void validate() const;
};

/// Draws the masks of successive training steps from one seeded stream and applies them.
/// A step draws the input mask first, then one mask per hidden layer in order, each
/// [rows, units] in row-major order, two units per 64-bit draw (low 32 bits first):
/// unit dropped when its 32-bit draw is below p·2³².
template <class T>
class DropoutMasks {
 public:
  DropoutMasks(const Dropout& rates, std::uint64_t seed);
  const Dropout& rates() const { return rates_; }
  /// a ⊙ M for a fresh mask M of rate p (a itself when p = 0); throws
  /// std::invalid_argument unless 0 <= p < 1.
  Tensor<T> apply(Tape<T>& tape, const Tensor<T>& a, double p);

 private:
  Dropout rates_;
  std::mt19937_64 rng_;
};

extern template class DropoutMasks<float>;
extern template class DropoutMasks<double>;

}  // namespace xgrad::nn
