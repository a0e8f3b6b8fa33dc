// Costs and regularisation as expressions on the tape (report 000 eqs. 6, 17, 21-23).
#pragma once

#include <string>

#include "xgrad/nn/network.hpp"
#include "xgrad/tape.hpp"

namespace xgrad::nn {

enum class CostKind {
  MeanSquaredError,    // 1/n sum (a - y)^2 (mean over all outputs)
  BinaryCrossEntropy,  // with a sigmoid output: fused with the logits
  CrossEntropy,        // with a softmax output: fused, gradient (ŷ - y)/n
};

enum class Penalty { None, L1, L2 };

/// Penalty lambda * sum |θ| (L1) or lambda * sum θ² (L2) over weights, and over biases
/// when include_biases (report 000 eq. 22). Report 001's lambda/(2n) convention is
/// lambda_001 / (2 n) passed as lambda here (docs/nn.md).
struct Regularisation {
  Penalty penalty = Penalty::None;
  double lambda = 0.0;
  bool include_biases = false;
  /// False for no penalty or lambda 0: the objective then records no penalty nodes.
  bool active() const { return penalty != Penalty::None && lambda != 0.0; }
};

struct CostSpec {
  CostKind cost = CostKind::MeanSquaredError;
  Regularisation regularisation;
  /// Parses "mse", "bce", "cross_entropy"; throws std::invalid_argument otherwise.
  static CostKind parse_cost(const std::string& text);
};

/// "mse", "bce", "cross_entropy": the name parse_cost reads back.
std::string cost_name(CostKind cost);
/// Throws std::invalid_argument naming both when `output` does not fit `cost`
/// (bce needs sigmoid, cross_entropy needs softmax; mse takes any).
void check_cost_fits(CostKind cost, const Activation& output);
/// Throws std::invalid_argument for a negative or non-finite lambda or an unknown penalty.
void check_regularisation(const Regularisation& reg);

/// The data cost C(a^L, y) of a batch, fused with the output activation where the
/// cost requires one (softmax + cross-entropy, sigmoid + BCE); throws
/// std::invalid_argument when the network's output activation does not fit the cost.
template <class T>
Tensor<T> data_cost(Tape<T>& tape, const Network<T>& net, const Tensor<T>& x, const Tensor<T>& y,
                    CostKind cost, DropoutMasks<T>* dropout = nullptr);

/// The regularisation penalty over the network's parameters (1x1; 0 for None).
template <class T>
Tensor<T> penalty(Tape<T>& tape, const Network<T>& net, const Regularisation& reg);

/// What training minimises: data_cost + penalty (no penalty nodes when lambda is 0), with
/// `dropout` masks in the forward pass when given (training).
template <class T>
Tensor<T> objective(Tape<T>& tape, const Network<T>& net, const Tensor<T>& x, const Tensor<T>& y,
                    const CostSpec& spec, DropoutMasks<T>* dropout = nullptr);

}  // namespace xgrad::nn
