// Costs and regularisation recorded on the tape (report 000 §II.E: eqs. 16, 18, 20, 22).
// Conventions, shared with the hand-derived backprop in reference_backprop.cpp:
//   MSE  = 1/(n·outputs) Σ (a − y)²           (mean over every element)
//   BCE  = 1/(n·outputs) Σ BCE(σ(z), y)        (mean over every element, from logits)
//   CE   = −1/n Σ_rows Σ_k y_k ln softmax(z)_k (mean over rows)
//   L1   = λ Σ|θ|,  L2 = λ Σθ²                 (report 000 eq. 22; biases optional)
#include "xgrad/nn/cost.hpp"

#include <cctype>
#include <cmath>
#include <stdexcept>

#include "wording.hpp"
#include "xgrad/ops.hpp"

namespace xgrad::nn {

std::string cost_name(CostKind cost) {
  switch (cost) {
    case CostKind::MeanSquaredError:
      return "mse";
    case CostKind::BinaryCrossEntropy:
      return "bce";
    case CostKind::CrossEntropy:
      return "cross_entropy";
  }
  return "unknown cost " + std::to_string(static_cast<int>(cost));
}

CostKind CostSpec::parse_cost(const std::string& text) {
  std::string t = text;
  for (char& c : t)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (t == "mse" || t == "mean_squared_error") return CostKind::MeanSquaredError;
  if (t == "bce" || t == "binary_cross_entropy") return CostKind::BinaryCrossEntropy;
  if (t == "cross_entropy" || t == "ce" || t == "categorical_cross_entropy") {
    return CostKind::CrossEntropy;
  }
  throw std::invalid_argument("unknown cost \"" + text + "\"; expected mse, bce or cross_entropy");
}

void check_cost_fits(CostKind cost, const Activation& output) {
  // BCE and CE are fused with their output activation (stable logs, report 000 eq. 21's
  // (ŷ − y)/n gradient); any other output activation would be silently ignored.
  if (cost == CostKind::BinaryCrossEntropy && output.kind != ActivationKind::Sigmoid) {
    throw std::invalid_argument(
        "cost bce needs a sigmoid output layer, the network's output "
        "activation is " +
        output.name());
  }
  if (cost == CostKind::CrossEntropy && output.kind != ActivationKind::Softmax) {
    throw std::invalid_argument(
        "cost cross_entropy needs a softmax output layer, the "
        "network's output activation is " +
        output.name());
  }
  if (cost != CostKind::MeanSquaredError && cost != CostKind::BinaryCrossEntropy &&
      cost != CostKind::CrossEntropy) {
    throw std::invalid_argument("unknown cost kind " + std::to_string(static_cast<int>(cost)));
  }
}

void check_regularisation(const Regularisation& reg) {
  if (reg.penalty != Penalty::None && reg.penalty != Penalty::L1 && reg.penalty != Penalty::L2) {
    throw std::invalid_argument("unknown penalty kind " +
                                std::to_string(static_cast<int>(reg.penalty)));
  }
  if (!(reg.lambda >= 0) || !std::isfinite(reg.lambda)) {
    throw std::invalid_argument("regularisation lambda must be finite and >= 0, got " +
                                wording::shown(reg.lambda));
  }
}

template <class T>
Tensor<T> data_cost(Tape<T>& tape, const Network<T>& net, const Tensor<T>& x, const Tensor<T>& y,
                    CostKind cost, DropoutMasks<T>* dropout) {
  if (net.layers().empty()) throw std::logic_error("data_cost: the network has no layers");
  check_cost_fits(cost, net.layers().back().activation);
  if (y.rows() != x.rows() || y.cols() != net.outputs()) {
    throw std::invalid_argument("data_cost (" + cost_name(cost) + "): targets are " +
                                shape_string(y.value()) + " but the network gives " +
                                shape_string(x.rows(), net.outputs()) + " outputs for input " +
                                shape_string(x.value()));
  }
  switch (cost) {
    case CostKind::MeanSquaredError:
      return mse_loss(net.forward(tape, x, dropout), y);  // eq. 16
    case CostKind::BinaryCrossEntropy:
      return bce_with_logits(net.logits(tape, x, dropout), y);  // eq. 18 from the logits
    case CostKind::CrossEntropy:
      return softmax_cross_entropy(net.logits(tape, x, dropout), y);  // eq. 20 from the logits
  }
  throw std::invalid_argument("unknown cost kind " + std::to_string(static_cast<int>(cost)));
}

template <class T>
Tensor<T> penalty(Tape<T>& tape, const Network<T>& net, const Regularisation& reg) {
  check_regularisation(reg);
  if (!reg.active() || net.layers().empty()) {
    Matrix<T> zero({std::size_t(1), std::size_t(1)});
    zero.fill(T(0));
    return tape.constant(zero);
  }
  // report 000 eq. 22: λ Σ_l (‖W^l‖ + ‖b^l‖), the norm the sum of |θ| (L1) or θ² (L2).
  Tensor<T> total;
  bool first = true;
  for (const Dense<T>& layer : net.layers()) {
    for (int which = 0; which < 2; ++which) {
      if (which == 1 && !reg.include_biases) continue;
      const Parameter<T>& p = which == 0 ? layer.W : layer.b;
      Tensor<T> theta = tape.parameter(p);
      Tensor<T> norm = reg.penalty == Penalty::L1 ? sum(abs(theta)) : sum(square(theta));
      total = first ? norm : add(total, norm);
      first = false;
    }
  }
  return total * static_cast<T>(reg.lambda);
}

template <class T>
Tensor<T> objective(Tape<T>& tape, const Network<T>& net, const Tensor<T>& x, const Tensor<T>& y,
                    const CostSpec& spec, DropoutMasks<T>* dropout) {
  check_regularisation(spec.regularisation);
  Tensor<T> c = data_cost(tape, net, x, y, spec.cost, dropout);
  if (!spec.regularisation.active()) return c;  // no penalty nodes on the tape at all
  return add(c, penalty(tape, net, spec.regularisation));
}

#define XGRAD_INSTANTIATE_COST(T)                                                               \
  template Tensor<T> data_cost(Tape<T>&, const Network<T>&, const Tensor<T>&, const Tensor<T>&, \
                               CostKind, DropoutMasks<T>*);                                     \
  template Tensor<T> penalty(Tape<T>&, const Network<T>&, const Regularisation&);               \
  template Tensor<T> objective(Tape<T>&, const Network<T>&, const Tensor<T>&, const Tensor<T>&, \
                               const CostSpec&, DropoutMasks<T>*);
XGRAD_INSTANTIATE_COST(float)
XGRAD_INSTANTIATE_COST(double)

}  // namespace xgrad::nn
