// custom: a user's forward and backward rule on the tape (xgrad/custom_op.hpp).
#include "xgrad/custom_op.hpp"

#include <stdexcept>
#include <string>

#include "custom_record.hpp"
#include "op_support.hpp"

namespace xgrad {
namespace detail {

namespace {

std::string prefix(const std::string& name) {
  return "custom op '" + name + "': ";
}

template <class T>
CustomInputs<T> values_of(Tape<T>& tape, const std::vector<std::uint32_t>& inputs) {
  std::vector<const Matrix<T>*> values;
  values.reserve(inputs.size());
  for (const std::uint32_t k : inputs)
    values.push_back(&tape.value_of(k));
  return CustomInputs<T>(std::move(values));
}

}  // namespace

// ---- custom: y = forward(inputs);  d input_k += backward(inputs, y, g)[k]
//      (an empty returned matrix adds nothing)
template <class T>
void backward_custom(Tape<T>& t, std::uint32_t i) {
  const CustomRecord<T>& record = *t.node(i).custom;
  const CustomInputs<T> inputs = values_of(t, record.inputs);
  const std::vector<Matrix<T>> grads = record.backward(inputs, t.value_of(i), t.grad_of(i));
  if (grads.size() != record.inputs.size()) {
    throw std::invalid_argument(prefix(record.name) + "backward returned " +
                                std::to_string(grads.size()) + " gradients for " +
                                std::to_string(record.inputs.size()) + " inputs");
  }
  // Every shape first, so that a wrong one leaves the inputs' gradients untouched.
  for (std::size_t k = 0; k < grads.size(); ++k) {
    if (grads[k].size() != 0 && grads[k].shape() != inputs[k].shape()) {
      throw std::invalid_argument(prefix(record.name) + "backward returned a gradient of " +
                                  shape_string(grads[k]) + " for input " + std::to_string(k) +
                                  ", which is " + shape_string(inputs[k]));
    }
  }
  for (std::size_t k = 0; k < grads.size(); ++k) {
    if (grads[k].size() != 0) accumulate(t, record.inputs[k], grads[k], i);
  }
}
XGRAD_INSTANTIATE_BACKWARD(custom)

}  // namespace detail

template <class T>
const Matrix<T>& CustomInputs<T>::operator[](std::size_t i) const {
  if (i >= values_.size()) {
    throw std::out_of_range("custom op: input " + std::to_string(i) + " asked for, but it has " +
                            std::to_string(values_.size()));
  }
  return *values_[i];
}

template <class T>
Tensor<T> custom(const CustomOp<T>& op, const std::vector<Tensor<T>>& inputs) {
  const std::string context = "custom op '" + op.name + "'";
  if (inputs.empty()) {
    throw std::invalid_argument(context + ": needs at least one input tensor (its tape is theirs)");
  }
  if (!op.forward) throw std::invalid_argument(context + ": has no forward function");
  Tape<T>& tape = detail::tape_of(inputs.front(), context.c_str());
  std::vector<std::uint32_t> indices;
  indices.reserve(inputs.size());
  bool needs_grad = false;
  for (const Tensor<T>& input : inputs) {
    // index_of refuses an empty, cleared or other tape's handle, naming the op.
    if (!input.defined() || &input.tape() != &tape) {
      throw std::invalid_argument(context + ": input " + std::to_string(indices.size()) +
                                  (input.defined() ? " is on another tape than input 0"
                                                   : " belongs to no tape (empty handle)"));
    }
    indices.push_back(tape.index_of(input, context.c_str()));
    needs_grad = needs_grad || tape.node(indices.back()).requires_grad;
  }
  needs_grad = needs_grad && tape.grad_enabled();
  if (needs_grad && !op.backward) {
    throw std::invalid_argument(context +
                                ": has no backward function, but an input requires a gradient "
                                "(record it under NoGradGuard, or give it one)");
  }
  // The forward runs before anything is recorded: if it throws, the tape is unchanged.
  Matrix<T> y = op.forward(detail::values_of(tape, indices));
  const std::uint32_t i =
      tape.record(Op::Custom, detail::kNoParent, detail::kNoParent, y.shape(0), y.shape(1));
  detail::Node<T>& n = tape.node(i);
  n.value = std::move(y);
  // record() saw no parents; the walk needs one (lhs) to visit the node, and the
  // record keeps them all. Without a gradient to compute only the name is kept.
  n.requires_grad = needs_grad;
  if (needs_grad) {
    n.lhs = indices.front();
  } else {
    indices.clear();
  }
  n.custom = std::make_shared<detail::CustomRecord<T>>(detail::CustomRecord<T>{
      op.name, std::move(indices), needs_grad ? op.backward : decltype(op.backward)()});
  return detail::finish(tape, i);
}

template class CustomInputs<float>;
template class CustomInputs<double>;
template Tensor<float> custom(const CustomOp<float>&, const std::vector<Tensor<float>>&);
template Tensor<double> custom(const CustomOp<double>&, const std::vector<Tensor<double>>&);

}  // namespace xgrad
