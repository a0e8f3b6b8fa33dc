// The op table: name and backward rule of every op, in the order of enum Op.
// docs/engine.md shows the same table in math.
#include "op_table.hpp"

#include <array>
#include <stdexcept>
#include <string>

namespace xgrad {
namespace detail {
namespace {

template <class T>
struct Entry {
  Op op;
  const char* name;
  BackwardRule<T> backward;  // nullptr for leaves
};

template <class T>
constexpr std::array<Entry<T>, static_cast<std::size_t>(Op::Count)> kTable{{
    {Op::Constant, "constant", nullptr},
    {Op::Variable, "variable", nullptr},
    {Op::Parameter, "parameter", nullptr},
    {Op::MatMul, "matmul", &backward_matmul<T>},
    {Op::Add, "add", &backward_add<T>},
    {Op::Sub, "sub", &backward_sub<T>},
    {Op::Mul, "mul", &backward_mul<T>},
    {Op::Div, "div", &backward_div<T>},
    {Op::Neg, "neg", &backward_neg<T>},
    {Op::Affine, "affine", &backward_affine<T>},
    {Op::ScalarDiv, "scalar_div", &backward_scalar_div<T>},
    {Op::Pow, "pow", &backward_pow<T>},
    {Op::Square, "square", &backward_square<T>},
    {Op::Sqrt, "sqrt", &backward_sqrt<T>},
    {Op::Exp, "exp", &backward_exp<T>},
    {Op::Log, "log", &backward_log<T>},
    {Op::Abs, "abs", &backward_abs<T>},
    {Op::Sum, "sum", &backward_sum<T>},
    {Op::Mean, "mean", &backward_mean<T>},
    {Op::Transpose, "transpose", &backward_transpose<T>},
    {Op::Sigmoid, "sigmoid", &backward_sigmoid<T>},
    {Op::Tanh, "tanh", &backward_tanh<T>},
    {Op::Relu, "relu", &backward_relu<T>},
    {Op::LeakyRelu, "leaky_relu", &backward_leaky_relu<T>},
    {Op::Elu, "elu", &backward_elu<T>},
    {Op::Softmax, "softmax", &backward_softmax<T>},
    {Op::LogSoftmax, "log_softmax", &backward_log_softmax<T>},
    {Op::MseLoss, "mse_loss", &backward_mse_loss<T>},
    {Op::BceWithLogitsLoss, "bce_with_logits", &backward_bce_with_logits<T>},
    {Op::SoftmaxCrossEntropy, "softmax_cross_entropy", &backward_softmax_cross_entropy<T>},
    {Op::Linear, "linear", &backward_linear<T>},
    {Op::Sin, "sin", &backward_sin<T>},
    {Op::Cos, "cos", &backward_cos<T>},
    {Op::Custom, "custom", &backward_custom<T>},
}};

// The table must list every op in enum order: a missed or swapped row fails to compile.
template <class T>
constexpr bool table_in_enum_order() {
  for (std::size_t i = 0; i < kTable<T>.size(); ++i) {
    if (static_cast<std::size_t>(kTable<T>[i].op) != i) return false;
  }
  return true;
}
static_assert(table_in_enum_order<float>() && table_in_enum_order<double>());

}  // namespace

template <class T>
BackwardRule<T> backward_rule(Op op) {
  const auto i = static_cast<std::size_t>(op);
  if (i >= kTable<T>.size() || kTable<T>[i].backward == nullptr) {
    throw std::logic_error("no backward rule for op " + std::to_string(i));
  }
  return kTable<T>[i].backward;
}
template BackwardRule<float> backward_rule<float>(Op);
template BackwardRule<double> backward_rule<double>(Op);

}  // namespace detail

const char* op_name(Op op) {
  const auto i = static_cast<std::size_t>(op);
  return i < detail::kTable<double>.size() ? detail::kTable<double>[i].name : "unknown-op";
}

}  // namespace xgrad
