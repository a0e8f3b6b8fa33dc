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
  return custom_op_label(name) + ": ";
}

/// The inputs as a rule sees them; an input wants a gradient when it requires one and
/// the op is being recorded for backward (`recording`).
template <class T>
CustomInputs<T> inputs_of(Tape<T>& tape, const std::string& name,
                          const std::vector<std::uint32_t>& inputs, bool recording) {
  std::vector<const Matrix<T>*> values;
  std::vector<bool> needs_grad;
  values.reserve(inputs.size());
  needs_grad.reserve(inputs.size());
  for (const std::uint32_t k : inputs) {
    values.push_back(&tape.value_of(k));
    needs_grad.push_back(recording && tape.node(k).requires_grad);
  }
  return CustomInputs<T>(name, std::move(values), std::move(needs_grad));
}

/// Matrix<T>(): the rule's way of saying "no gradient for this input".
template <class T>
bool is_empty_default(const Matrix<T>& m) {
  return m.shape(0) == 0 && m.shape(1) == 0;
}

std::string count_of(std::size_t n, const char* noun) {
  return std::to_string(n) + " " + noun + (n == 1 ? "" : "s");
}

}  // namespace

// ---- custom: y = forward(inputs);  d input_k += backward(inputs, y, g)[k]
//      (a returned Matrix<T>(), 0x0, adds nothing)
template <class T>
void backward_custom(Tape<T>& t, std::uint32_t i) {
  const CustomRecord<T>& record = *t.node(i).custom;
  const CustomInputs<T> inputs = inputs_of(t, record.name, record.inputs, true);
  const std::vector<Matrix<T>> grads = record.backward(inputs, t.value_of(i), t.grad_of(i));
  if (grads.size() != record.inputs.size()) {
    throw std::invalid_argument(prefix(record.name) + "backward returned " +
                                count_of(grads.size(), "gradient") + " for " +
                                count_of(record.inputs.size(), "input"));
  }
  // Every shape first, so that a wrong one leaves the inputs' gradients untouched.
  for (std::size_t k = 0; k < grads.size(); ++k) {
    if (!is_empty_default(grads[k]) && grads[k].shape() != inputs[k].shape()) {
      throw std::invalid_argument(prefix(record.name) + "backward returned a gradient of " +
                                  shape_string(grads[k]) + " for input " + std::to_string(k) +
                                  ", which is " + shape_string(inputs[k]));
    }
  }
  for (std::size_t k = 0; k < grads.size(); ++k) {
    if (!is_empty_default(grads[k])) accumulate(t, record.inputs[k], grads[k], i);
  }
}
XGRAD_INSTANTIATE_BACKWARD(custom)

}  // namespace detail

template <class T>
CustomInputs<T>::CustomInputs(std::string op_name, std::vector<const Matrix<T>*> values,
                              std::vector<bool> needs_grad)
    : op_name_(std::move(op_name)), values_(std::move(values)), needs_grad_(std::move(needs_grad)) {
  if (values_.size() != needs_grad_.size()) {
    throw std::invalid_argument(detail::prefix(op_name_) +
                                detail::count_of(values_.size(), "input") + " but needs_grad for " +
                                std::to_string(needs_grad_.size()));
  }
}

template <class T>
const Matrix<T>& CustomInputs<T>::operator[](std::size_t i) const {
  if (i >= values_.size()) {
    throw std::out_of_range(detail::prefix(op_name_) + "input " + std::to_string(i) +
                            " asked for, but it has " + detail::count_of(values_.size(), "input"));
  }
  return *values_[i];
}

template <class T>
bool CustomInputs<T>::needs_grad(std::size_t i) const {
  (void)(*this)[i];  // the same refusal of a wrong index
  return needs_grad_[i];
}

template <class T>
Tensor<T> custom(const CustomOp<T>& op, const std::vector<Tensor<T>>& inputs) {
  const std::string context = detail::custom_op_label(op.name);
  if (inputs.empty()) {
    throw std::invalid_argument(context + ": needs at least one input tensor (its tape is theirs)");
  }
  if (!op.forward) throw std::invalid_argument(context + ": has no forward function");
  Tape<T>& tape = detail::tape_of(inputs.front(), context.c_str());
  std::vector<std::uint32_t> indices;
  indices.reserve(inputs.size());
  bool needs_grad = false;
  for (const Tensor<T>& input : inputs) {
    const std::string where = context + ": input " + std::to_string(indices.size());
    if (!input.defined() || &input.tape() != &tape) {
      throw std::invalid_argument(where + (input.defined() ? " is on another tape than input 0"
                                                           : " belongs to no tape (empty handle)"));
    }
    // index_of refuses a handle from before the last clear(), naming the op and position.
    indices.push_back(tape.index_of(input, where.c_str()));
    needs_grad = needs_grad || tape.node(indices.back()).requires_grad;
  }
  needs_grad = needs_grad && tape.grad_enabled();
  tape.check_recordable(context.c_str());  // before the forward's work, not after it
  if (needs_grad && !op.backward) {
    throw std::invalid_argument(context +
                                ": has no backward function, but an input requires a gradient "
                                "(record it under NoGradGuard, or give it one)");
  }
  // The forward runs before anything is recorded: if it throws, the tape is unchanged.
  Matrix<T> y = op.forward(detail::inputs_of(tape, op.name, indices, needs_grad));
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
