// Ops the engine does not have, written by the user: a forward and a backward rule,
// recorded on the tape and walked back like any built-in op (PyTorch's
// autograd.Function). docs/engine.md §2 shows one checked by gradcheck.
#pragma once

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "xgrad/tape.hpp"

namespace xgrad {

/// The values of a custom op's inputs, in the order they were given to custom().
template <class T>
class CustomInputs {
 public:
  /// std::invalid_argument if values and needs_grad differ in length.
  CustomInputs(std::string op_name, std::vector<const Matrix<T>*> values,
               std::vector<bool> needs_grad);
  std::size_t size() const { return values_.size(); }
  /// Input i's value; std::out_of_range naming the op, i and the count for a wrong index.
  const Matrix<T>& operator[](std::size_t i) const;
  /// Whether input i wants a gradient (PyTorch's ctx.needs_input_grad): a rule may return
  /// an empty matrix for one that does not (a loss's targets) instead of computing it.
  bool needs_grad(std::size_t i) const;

 private:
  std::string op_name_;  // a copy: a CustomInputs may outlive the op it was made for
  std::vector<const Matrix<T>*> values_;
  std::vector<bool> needs_grad_;
};

template <class T>
struct CustomOp {
  /// Named in error messages: "custom op 'slice_cols': ...".
  std::string name;
  /// y from the inputs' values, of any 2-D shape.
  std::function<Matrix<T>(const CustomInputs<T>& inputs)> forward;
  /// dL/d(input i) for every input, given the inputs, y and dL/dy (y's shape). Each must
  /// have its input's shape, or be empty (Matrix<T>(), 0x0) for an input that gets
  /// nothing; any other shape, 0xN too, is refused.
  /// It runs during backward() and reads the inputs' values as they are then (a
  /// parameter's value as it is at backward(), as for the built-in ops).
  std::function<std::vector<Matrix<T>>(const CustomInputs<T>& inputs, const Matrix<T>& y,
                                       const Matrix<T>& dy)>
      backward;
};

/// Records op on the tape of its inputs (at least one, all on one tape) and returns y.
/// The backward rule is needed only when an input requires a gradient; without one,
/// recording such a use throws std::invalid_argument. Under NoGradGuard only forward runs.
template <class T>
Tensor<T> custom(const CustomOp<T>& op, const std::vector<Tensor<T>>& inputs);

extern template class CustomInputs<float>;
extern template class CustomInputs<double>;
extern template Tensor<float> custom(const CustomOp<float>&, const std::vector<Tensor<float>>&);
extern template Tensor<double> custom(const CustomOp<double>&, const std::vector<Tensor<double>>&);

}  // namespace xgrad
