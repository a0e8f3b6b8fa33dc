// Specification: a user's own op (xgrad::custom) is recorded and walked back like a
// built-in one. Its gradients reach every input, add up when an input is used twice
// or elsewhere, follow a parameter into grad(), and a wrong rule is refused by name
// before it writes anything.
#include <cmath>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <xtensor/xview.hpp>

#include "engine_test_util.hpp"

using namespace xgrad_test;
using xgrad::CustomInputs;
using xgrad::CustomOp;

namespace {

using Grads = std::vector<Matrix<double>>;

/// softplus(a) = ln(1 + e^a), with its derivative σ(a): not a built-in op.
CustomOp<double> softplus_op() {
  CustomOp<double> op;
  op.name = "softplus";
  op.forward = [](const CustomInputs<double>& in) -> Matrix<double> {
    return xt::log1p(xt::exp(in[0]));
  };
  op.backward = [](const CustomInputs<double>& in, const Matrix<double>&,
                   const Matrix<double>& dy) -> Grads { return {dy / (1.0 + xt::exp(-in[0]))}; };
  return op;
}

/// a ⊙ row, the 1xC row broadcast over a's rows by the op itself: its gradient is summed
/// over the rows by the rule, not by the engine.
CustomOp<double> scale_columns_op() {
  CustomOp<double> op;
  op.name = "scale_columns";
  op.forward = [](const CustomInputs<double>& in) -> Matrix<double> { return in[0] * in[1]; };
  op.backward = [](const CustomInputs<double>& in, const Matrix<double>&,
                   const Matrix<double>& dy) -> Grads {
    Matrix<double> d_row({1, in[1].shape(1)}, 0.0);
    for (std::size_t i = 0; i < dy.shape(0); ++i)
      for (std::size_t j = 0; j < dy.shape(1); ++j)
        d_row(0, j) += dy(i, j) * in[0](i, j);
    return {dy * in[1], d_row};
  };
  return op;
}

/// An op whose backward returns whatever `grads` holds, whatever the inputs.
CustomOp<double> fixed_rule_op(const std::string& name, Grads grads) {
  CustomOp<double> op;
  op.name = name;
  op.forward = [](const CustomInputs<double>& in) -> Matrix<double> { return in[0]; };
  op.backward = [grads](const CustomInputs<double>&, const Matrix<double>&, const Matrix<double>&) {
    return grads;
  };
  return op;
}

Matrix<double> full(std::size_t rows, std::size_t cols, double v) {
  return Matrix<double>({rows, cols}, v);
}

}  // namespace

TEST_CASE("sin and cos differentiate correctly on every shape and equal libm's values") {
  const std::pair<std::size_t, std::size_t> shapes[] = {{1, 1}, {1, 5}, {4, 1}, {3, 4}};
  std::uint64_t seed = 1;
  for (const auto& [rows, cols] : shapes) {
    check_op_gradients("sin", [](const Inputs& x) { return xgrad::sin(x[0]); },
                       {random_matrix(rows, cols, seed++)});
    check_op_gradients("cos", [](const Inputs& x) { return xgrad::cos(x[0]); },
                       {random_matrix(rows, cols, seed++)});
  }
  // Large arguments too, where a vector sin with a short argument reduction goes wrong.
  const std::vector<double> args{0.0, -0.0, 1e-300, 3.0, -7.5, 1e6, 1e15, -1e22};
  xgrad::Tape<double> tape;
  Matrix<double> a({1, args.size()});
  std::copy(args.begin(), args.end(), a.begin());
  const Tensor x = tape.variable(a);
  const Tensor s = xgrad::sin(x), c = xgrad::cos(x);
  for (std::size_t k = 0; k < args.size(); ++k) {
    CAPTURE(args[k]);
    CHECK(s.value()(0, k) == std::sin(args[k]));
    CHECK(c.value()(0, k) == std::cos(args[k]));
  }
  // float too
  xgrad::Tape<float> tf;
  const xgrad::Tensor<float> xf = tf.variable(xgrad::Matrix<float>({1, 2}, 0.5f));
  tf.backward(xgrad::sum(xgrad::sin(xf)));
  CHECK(xf.grad()(0, 1) == std::cos(0.5f));
}

TEST_CASE("a custom op's rule passes gradcheck, also beside other consumers and walked twice") {
  std::uint64_t seed = 10;
  for (const auto& [rows, cols] : {std::pair<std::size_t, std::size_t>{1, 1}, {4, 1}, {3, 5}}) {
    check_op_gradients("custom softplus",
                       [](const Inputs& x) { return xgrad::custom(softplus_op(), {x[0]}); },
                       {random_matrix(rows, cols, seed++)});
    check_op_gradients("custom scale_columns",
                       [](const Inputs& x) {
                         return xgrad::custom(scale_columns_op(), {x[0], x[1]});
                       },
                       {random_matrix(rows, cols, seed++), random_matrix(1, cols, seed++)});
  }
}

TEST_CASE("a custom op that re-implements sin gives sin's gradients bit for bit") {
  CustomOp<double> my_sin;
  my_sin.name = "my_sin";
  // libm element by element, as the built-in op (xsimd's xt::sin differs in the last bit).
  my_sin.forward = [](const CustomInputs<double>& in) {
    Matrix<double> y = in[0];
    for (double& v : y)
      v = std::sin(v);
    return y;
  };
  my_sin.backward = [](const CustomInputs<double>& in, const Matrix<double>&,
                       const Matrix<double>& dy) {
    Matrix<double> da = dy;
    for (std::size_t k = 0; k < da.size(); ++k)
      da.data()[k] *= std::cos(in[0].data()[k]);
    return Grads{da};
  };
  const Matrix<double> w = random_matrix(3, 4, 7), data = random_matrix(5, 3, 8);
  Matrix<double> grads[2];
  for (int use_custom = 0; use_custom < 2; ++use_custom) {
    xgrad::Parameter<double> W(w, "W");
    Tape tape;
    const Tensor z = xgrad::matmul(tape.constant(data), tape.parameter(W));
    const Tensor a = use_custom ? xgrad::custom(my_sin, {z}) : xgrad::sin(z);
    tape.backward(xgrad::mean(xgrad::square(a)));
    grads[use_custom] = W.grad();
  }
  CHECK(max_abs_diff(grads[0], grads[1]) == 0.0);
}

TEST_CASE(
    "a parameter given to a custom op gets its gradient in grad(), added across backward calls") {
  xgrad::Parameter<double> p(random_matrix(2, 3, 21), "p");
  const xgrad::GradcheckResult r = xgrad::gradcheck(
      [&](Tape& tape) { return xgrad::sum(xgrad::custom(softplus_op(), {tape.parameter(p)})); },
      std::vector<xgrad::Parameter<double>>{p});
  CHECK_MESSAGE(r.passed, r.message());
  Tape tape;
  const Tensor y = xgrad::sum(xgrad::custom(softplus_op(), {tape.parameter(p)}));
  tape.backward(y, xgrad::BackwardOptions{true});
  const Matrix<double> once = p.grad();
  tape.backward(y);
  CHECK(max_abs_diff(p.grad(), Matrix<double>(2.0 * once)) == 0.0);
}

TEST_CASE("an input given twice to a custom op receives both of its gradients") {
  Tape tape;
  const Tensor a = tape.variable(full(2, 2, 3.0));
  tape.backward(
      xgrad::sum(xgrad::custom(scale_columns_op(), {a, xgrad::sum(a, xgrad::Axis::Rows)})));
  // y_ij = a_ij s_j with s_j = a_0j + a_1j: dL/da_ij = s_j (direct) + Σ_i a_ij (through s) = 6 + 6
  CHECK(max_abs_diff(a.grad(), full(2, 2, 12.0)) == 0.0);

  Tape same;
  const Tensor b = same.variable(full(1, 3, 2.0));
  same.backward(xgrad::sum(xgrad::custom(scale_columns_op(), {b, b})));  // b², d = 2b
  CHECK(max_abs_diff(b.grad(), full(1, 3, 4.0)) == 0.0);
}

TEST_CASE("an empty gradient from a custom rule leaves that input without one") {
  Tape tape;
  const Tensor a = tape.variable(full(2, 2, 1.0)), b = tape.variable(full(2, 2, 1.0));
  CustomOp<double> op = fixed_rule_op("first_only", Grads{full(2, 2, 5.0), Matrix<double>()});
  tape.backward(xgrad::sum(xgrad::custom(op, {a, b})));
  CHECK(max_abs_diff(a.grad(), full(2, 2, 5.0)) == 0.0);
  CHECK(max_abs_diff(b.grad(), full(2, 2, 0.0)) == 0.0);
}

TEST_CASE("a custom op on constants only, or under NoGradGuard, needs no backward rule") {
  CustomOp<double> forward_only = softplus_op();
  forward_only.backward = nullptr;
  Tape tape;
  const Tensor c = xgrad::custom(forward_only, {tape.constant(full(1, 2, 0.0))});
  CHECK_FALSE(c.requires_grad());
  CHECK(c.value()(0, 1) == doctest::Approx(std::log(2.0)));
  const Tensor v = tape.variable(full(1, 2, 0.0));
  {
    xgrad::NoGradGuard<double> no_grad(tape);
    CHECK_FALSE(xgrad::custom(forward_only, {v}).requires_grad());
  }
  CHECK_THROWS_WITH_AS(xgrad::custom(forward_only, {v}),
                       "custom op 'softplus': has no backward function, but an input requires a "
                       "gradient (record it under NoGradGuard, or give it one)",
                       std::invalid_argument);
}

TEST_CASE("a custom op is refused by name for missing inputs, functions and foreign tapes") {
  Tape tape, other;
  const Tensor a = tape.variable(full(2, 2, 1.0));
  CHECK_THROWS_WITH_AS(xgrad::custom(softplus_op(), std::vector<Tensor>{}),
                       "custom op 'softplus': needs at least one input tensor (its tape is theirs)",
                       std::invalid_argument);
  CustomOp<double> no_forward = softplus_op();
  no_forward.forward = nullptr;
  CHECK_THROWS_WITH_AS(xgrad::custom(no_forward, {a}),
                       "custom op 'softplus': has no forward function", std::invalid_argument);
  CHECK_THROWS_WITH_AS(xgrad::custom(scale_columns_op(), {a, other.variable(full(1, 2, 1.0))}),
                       "custom op 'scale_columns': input 1 is on another tape than input 0",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(xgrad::custom(scale_columns_op(), {a, Tensor()}),
                       "custom op 'scale_columns': input 1 belongs to no tape (empty handle)",
                       std::invalid_argument);
  CHECK_THROWS_AS(xgrad::custom(softplus_op(), {Tensor()}), std::invalid_argument);
  // A handle from before clear() is refused as for any op, naming its position.
  tape.clear();
  CHECK_THROWS_AS(xgrad::custom(softplus_op(), {a}), std::logic_error);
  const Tensor fresh = tape.variable(full(2, 2, 1.0));
  CHECK_THROWS_WITH_AS(xgrad::custom(scale_columns_op(), {fresh, a}),
                       doctest::Contains("custom op 'scale_columns': input 1: tensor #0 is from a "
                                         "cleared tape"),
                       std::logic_error);
}

TEST_CASE("a custom forward that throws, or reads a missing input, records nothing") {
  Tape tape;
  const Tensor a = tape.variable(full(2, 2, 1.0));
  const std::size_t before = tape.size();
  CHECK_THROWS_WITH_AS(xgrad::custom(scale_columns_op(), {a}),
                       "custom op 'scale_columns': input 1 asked for, but it has 1 input",
                       std::out_of_range);
  CHECK(tape.size() == before);
}

TEST_CASE("a custom rule's wrong count or shape of gradients is refused before it writes any") {
  Tape tape;
  const Tensor a = tape.variable(full(2, 3, 1.0)), b = tape.variable(full(2, 3, 1.0));
  const Tensor count = xgrad::custom(fixed_rule_op("one_for_two", Grads{full(2, 3, 1.0)}), {a, b});
  CHECK_THROWS_WITH_AS(tape.backward(count, full(2, 3, 1.0), xgrad::BackwardOptions{true}),
                       "custom op 'one_for_two': backward returned 1 gradient for 2 inputs",
                       std::invalid_argument);
  CHECK(max_abs_diff(a.grad(), full(2, 3, 0.0)) == 0.0);  // the one it did return: not added
  Tape tape2;
  const Tensor c = tape2.variable(full(2, 3, 1.0)), d = tape2.variable(full(2, 3, 1.0));
  const Tensor shape =
      xgrad::custom(fixed_rule_op("transposed", Grads{full(2, 3, 1.0), full(3, 2, 1.0)}), {c, d});
  CHECK_THROWS_WITH_AS(tape2.backward(shape, full(2, 3, 1.0)),
                       "custom op 'transposed': backward returned a gradient of 3x2 for input 1, "
                       "which is 2x3",
                       std::invalid_argument);
  // Input 0's correct gradient was not added either: it still reads as zeros.
  CHECK(max_abs_diff(c.grad(), full(2, 3, 0.0)) == 0.0);
  // Only Matrix<T>() (0x0) means "no gradient": a 0x3 one, as an empty slice gives, is
  // refused like any other wrong shape instead of dropping the gradient silently.
  Tape tape3;
  const Tensor e = tape3.variable(full(2, 3, 1.0));
  const Tensor slice = xgrad::custom(fixed_rule_op("empty_slice", Grads{full(0, 3, 0.0)}), {e});
  CHECK_THROWS_WITH_AS(tape3.backward(slice, full(2, 3, 1.0)),
                       "custom op 'empty_slice': backward returned a gradient of 0x3 for input 0, "
                       "which is 2x3",
                       std::invalid_argument);
}

TEST_CASE("after a rule throws part-way, the graph refuses a second walk until clear()") {
  // pp * 3 is walked before the custom op and adds 3 into p.grad(); then the rule throws.
  // A second walk would add the 3 again, so it is refused; clear() starts afresh.
  xgrad::Parameter<double> p(full(1, 1, 1.0), "p");
  const CustomOp<double> bad = fixed_rule_op("bad_shape", Grads{full(2, 2, 1.0)});
  Tape tape;
  const Tensor pp = tape.parameter(p);
  const Tensor first = xgrad::sum(xgrad::custom(bad, {pp}));  // recorded first, walked last
  const Tensor loss = first + xgrad::sum(pp * 3.0);
  CHECK_THROWS_AS(tape.backward(loss), std::invalid_argument);
  CHECK_THROWS_WITH_AS(tape.backward(loss),
                       "backward: an earlier backward() on this graph threw part-way, so "
                       "parameters' grad() may hold part of its gradient; zero_grad() them, "
                       "tape.clear() and record the step again",
                       std::logic_error);
  CHECK_THROWS_WITH_AS(xgrad::custom(softplus_op(), {pp}), doctest::Contains("tape.clear()"),
                       std::logic_error);
  CHECK(p.grad()(0, 0) == 3.0);  // the part that ran, as the message says
  CHECK_THROWS_WITH_AS(tape.add_parameter_grads(),
                       "add_parameter_grads: the last backward() threw part-way, so the tape "
                       "holds only part of its gradients; tape.clear() and record the step again",
                       std::logic_error);
  p.zero_grad();
  tape.clear();
  const Tensor again = tape.parameter(p);
  tape.backward(xgrad::sum(again * 3.0));
  CHECK(p.grad()(0, 0) == 3.0);
}

TEST_CASE("a custom op after a released backward is refused by its name, before its forward runs") {
  int forward_calls = 0;
  CustomOp<double> counted = softplus_op();
  counted.forward = [&](const CustomInputs<double>& in) {
    ++forward_calls;
    return softplus_op().forward(in);
  };
  Tape tape;
  const Tensor x = tape.variable(full(1, 1, 0.0));
  tape.backward(xgrad::sum(x * 2.0));
  CHECK_THROWS_WITH_AS(xgrad::custom(counted, {x}),
                       "custom op 'softplus': the tape's graph was released by backward(); call "
                       "tape.clear() before recording the next step",
                       std::logic_error);
  CHECK(forward_calls == 0);
}

TEST_CASE("a custom rule is told which inputs want a gradient") {
  std::vector<bool> seen_forward, seen_backward;
  CustomOp<double> op;
  op.name = "spy";
  op.forward = [&](const CustomInputs<double>& in) {
    for (std::size_t k = 0; k < in.size(); ++k)
      seen_forward.push_back(in.needs_grad(k));
    return Matrix<double>(in[0] * in[1]);
  };
  op.backward = [&](const CustomInputs<double>& in, const Matrix<double>&,
                    const Matrix<double>& dy) {
    for (std::size_t k = 0; k < in.size(); ++k)
      seen_backward.push_back(in.needs_grad(k));
    return Grads{Matrix<double>(dy * in[1]), Matrix<double>()};  // the constant needs none
  };
  Tape tape;
  const Tensor v = tape.variable(full(1, 2, 2.0)), c = tape.constant(full(1, 2, 5.0));
  tape.backward(xgrad::sum(xgrad::custom(op, {v, c})));
  CHECK(seen_forward == std::vector<bool>{true, false});
  CHECK(seen_backward == std::vector<bool>{true, false});
  CHECK(max_abs_diff(v.grad(), full(1, 2, 5.0)) == 0.0);
  // Under NoGradGuard nothing wants one.
  seen_forward.clear();
  xgrad::NoGradGuard<double> no_grad(tape);
  xgrad::custom(op, {v, c});
  CHECK(seen_forward == std::vector<bool>{false, false});
  CHECK_THROWS_WITH_AS(CustomInputs<double>("spy", {}, {}).needs_grad(0),
                       "custom op 'spy': input 0 asked for, but it has 0 inputs",
                       std::out_of_range);
  const Matrix<double> m = full(1, 1, 1.0);
  CHECK_THROWS_WITH_AS(CustomInputs<double>("spy", {&m}, {}),
                       "custom op 'spy': 1 input but needs_grad for 0", std::invalid_argument);
  // It keeps its own copy of the name: a copy may outlive the op's.
  std::optional<CustomInputs<double>> kept;
  {
    const std::string name = "a name longer than the small-string buffer";
    kept.emplace(name, std::vector<const Matrix<double>*>{&m}, std::vector<bool>{false});
  }
  CHECK_THROWS_WITH_AS((*kept)[1],
                       "custom op 'a name longer than the small-string buffer': input 1 asked for, "
                       "but it has 1 input",
                       std::out_of_range);
}

TEST_CASE("the finite check names a custom op by its own name") {
  CustomOp<double> bad_log;
  bad_log.name = "my_log";
  bad_log.forward = [](const CustomInputs<double>& in) -> Matrix<double> { return xt::log(in[0]); };
  bad_log.backward = [](const CustomInputs<double>&, const Matrix<double>&,
                        const Matrix<double>& dy) -> Grads { return {dy * 0.0 / 0.0}; };
  Tape tape;
  tape.set_check_finite(true);
  CHECK_THROWS_WITH_AS(xgrad::custom(bad_log, {tape.variable(full(1, 2, -1.0))}),
                       "custom op 'my_log' (tensor #1, 1x2) produced NaN in its output at (0, 0)",
                       std::domain_error);
  const Tensor x = tape.variable(full(1, 2, 1.0));
  const Tensor z = xgrad::custom(bad_log, {x});
  CHECK_THROWS_WITH_AS(tape.backward(xgrad::sum(z)),
                       "custom op 'my_log' (tensor #3) backward produced NaN in the gradient of "
                       "its input tensor #2 (variable, 1x2) at (0, 0)",
                       std::domain_error);
  // The check covers every input of a custom op, not only the first three.
  Tape four;
  four.set_check_finite(true);
  Inputs x4;
  for (int k = 0; k < 4; ++k)
    x4.push_back(four.variable(full(1, 1, 1.0)));
  const Matrix<double> one = full(1, 1, 1.0), nan = full(1, 1, std::nan(""));
  const Tensor last =
      xgrad::custom(fixed_rule_op("nan_for_the_fourth", Grads{one, one, one, nan}), x4);
  CHECK_THROWS_WITH_AS(four.backward(last),
                       "custom op 'nan_for_the_fourth' (tensor #4) backward produced NaN in the "
                       "gradient of its input tensor #3 (variable, 1x1) at (0, 0)",
                       std::domain_error);
}

TEST_CASE("a custom op works in float as in double") {
  CustomOp<float> twice;
  twice.name = "twice";
  twice.forward = [](const CustomInputs<float>& in) -> xgrad::Matrix<float> {
    return 2.0f * in[0];
  };
  twice.backward = [](const CustomInputs<float>&, const xgrad::Matrix<float>&,
                      const xgrad::Matrix<float>& dy) {
    return std::vector<xgrad::Matrix<float>>{2.0f * dy};
  };
  xgrad::Tape<float> tape;
  const xgrad::Tensor<float> x = tape.variable(xgrad::Matrix<float>({2, 2}, 1.5f));
  tape.backward(xgrad::sum(xgrad::custom(twice, {x})));
  CHECK(x.grad()(1, 1) == 2.0f);
}

TEST_CASE("clear() lets go of what a custom rule captured, as it does of parameters") {
  auto state = std::make_shared<int>(0);
  CustomOp<double> op = softplus_op();
  op.backward = [state, rule = op.backward](const CustomInputs<double>& in, const Matrix<double>& y,
                                            const Matrix<double>& dy) { return rule(in, y, dy); };
  Tape tape;
  xgrad::custom(op, {tape.variable(full(1, 1, 0.0))});
  op = CustomOp<double>();  // now only the tape holds the rule
  CHECK(state.use_count() == 2);
  tape.clear();
  CHECK(state.use_count() == 1);
}
