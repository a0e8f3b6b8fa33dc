// The backward rule of every op, looked up by Op (engine/src/op_table.cpp).
#pragma once

#include <cstdint>

#include "xgrad/tape.hpp"

namespace xgrad::detail {

template <class T>
using BackwardRule = void (*)(Tape<T>& tape, std::uint32_t node);

/// The rule that adds node's output gradient into its parents' gradients.
template <class T>
BackwardRule<T> backward_rule(Op op);

// Each rule is defined next to its forward in ops_*.cpp.
#define XGRAD_DECLARE_BACKWARD(name) \
  template <class T>                 \
  void backward_##name(Tape<T>& tape, std::uint32_t node);
XGRAD_DECLARE_BACKWARD(matmul)
XGRAD_DECLARE_BACKWARD(add)
XGRAD_DECLARE_BACKWARD(sub)
XGRAD_DECLARE_BACKWARD(mul)
XGRAD_DECLARE_BACKWARD(div)
XGRAD_DECLARE_BACKWARD(neg)
XGRAD_DECLARE_BACKWARD(affine)
XGRAD_DECLARE_BACKWARD(scalar_div)
XGRAD_DECLARE_BACKWARD(pow)
XGRAD_DECLARE_BACKWARD(square)
XGRAD_DECLARE_BACKWARD(sqrt)
XGRAD_DECLARE_BACKWARD(exp)
XGRAD_DECLARE_BACKWARD(log)
XGRAD_DECLARE_BACKWARD(abs)
XGRAD_DECLARE_BACKWARD(sum)
XGRAD_DECLARE_BACKWARD(mean)
XGRAD_DECLARE_BACKWARD(transpose)
XGRAD_DECLARE_BACKWARD(sigmoid)
XGRAD_DECLARE_BACKWARD(tanh)
XGRAD_DECLARE_BACKWARD(relu)
XGRAD_DECLARE_BACKWARD(leaky_relu)
XGRAD_DECLARE_BACKWARD(elu)
XGRAD_DECLARE_BACKWARD(softmax)
XGRAD_DECLARE_BACKWARD(log_softmax)
XGRAD_DECLARE_BACKWARD(mse_loss)
XGRAD_DECLARE_BACKWARD(bce_with_logits)
XGRAD_DECLARE_BACKWARD(softmax_cross_entropy)
XGRAD_DECLARE_BACKWARD(linear)
XGRAD_DECLARE_BACKWARD(sin)
XGRAD_DECLARE_BACKWARD(cos)
XGRAD_DECLARE_BACKWARD(custom)
#undef XGRAD_DECLARE_BACKWARD

/// Explicit float and double instantiation of one backward rule.
#define XGRAD_INSTANTIATE_BACKWARD(name)                                        \
  template void backward_##name<float>(Tape<float> & tape, std::uint32_t node); \
  template void backward_##name<double>(Tape<double> & tape, std::uint32_t node);

}  // namespace xgrad::detail
