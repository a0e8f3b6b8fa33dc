// Recording, handles, parameters and the reverse walk.
#include "xgrad/tape.hpp"

#include <cmath>
#include <sstream>
#include <stdexcept>

#include <xtensor/xnoalias.hpp>

#include "custom_record.hpp"
#include "op_support.hpp"
#include "op_table.hpp"
#include "xgrad/parallel.hpp"

namespace xgrad {

std::string shape_string(std::size_t rows, std::size_t cols) {
  return std::to_string(rows) + "x" + std::to_string(cols);
}

namespace detail {
/// Resizes only when the shape changes, so same-shape steps reuse the buffer.
template <class T>
void reshape_reuse(Matrix<T>& m, std::size_t rows, std::size_t cols) {
  if (m.dimension() != 2 || m.shape(0) != rows || m.shape(1) != cols) {
    m.resize({rows, cols});
  }
}
template void reshape_reuse(Matrix<float>&, std::size_t, std::size_t);
template void reshape_reuse(Matrix<double>&, std::size_t, std::size_t);
}  // namespace detail

// ---------------------------------------------------------------- Parameter
template <class T>
Parameter<T>::Parameter(Matrix<T> value, std::string name) : data_(std::make_shared<Data>()) {
  data_->grad = xt::zeros<T>(value.shape());
  data_->value = std::move(value);
  data_->name = std::move(name);
}

template <class T>
typename Parameter<T>::Data& Parameter<T>::data() const {
  if (!data_) throw std::logic_error("xgrad::Parameter: used before it was given a value");
  return *data_;
}

template <class T>
void Parameter<T>::zero_grad() {
  Data& d = data();
  detail::reshape_reuse(d.grad, d.value.shape(0), d.value.shape(1));
  d.grad.fill(T(0));
}

// ---------------------------------------------------------------- Tensor
template <class T>
Tape<T>& Tensor<T>::tape() const {
  if (tape_ == nullptr) throw std::logic_error("xgrad::Tensor: empty handle (default-constructed)");
  return *tape_;
}

namespace {
/// What a Tensor method called on a default-constructed handle throws, naming the method.
[[noreturn]] void empty_handle(const char* what) {
  throw std::logic_error(std::string("xgrad::Tensor::") + what +
                         ": empty handle (default-constructed)");
}
}  // namespace

template <class T>
const Matrix<T>& Tensor<T>::value() const {
  if (tape_ == nullptr) empty_handle("value");
  Tape<T>& t = tape();
  return t.value_of(t.index_of(*this, "value"));
}

template <class T>
const Matrix<T>& Tensor<T>::grad() const {
  if (tape_ == nullptr) empty_handle("grad");
  Tape<T>& t = tape();
  const std::uint32_t i = t.index_of(*this, "grad");
  detail::Node<T>& n = t.node(i);
  if (!n.requires_grad) {
    throw std::logic_error(std::string("xgrad::Tensor::grad: tensor #") + std::to_string(i) + " (" +
                           detail::node_name(n) + ") does not require a gradient");
  }
  if (!n.grad_in_parameter() && !n.grad_ready) {
    // No backward() has reached this node since it was recorded (it came after the
    // root, or backward was not called): its reused buffer may still hold an earlier
    // step's gradient, so hand out the zeros the documentation promises.
    const Matrix<T>& v = t.value_of(i);
    detail::reshape_reuse(n.grad, v.shape(0), v.shape(1));
    n.grad.fill(T(0));
    n.grad_ready = true;
  }
  return t.grad_of(i);
}

template <class T>
bool Tensor<T>::requires_grad() const {
  if (tape_ == nullptr) empty_handle("requires_grad");
  Tape<T>& t = tape();
  return t.node(t.index_of(*this, "requires_grad")).requires_grad;
}

template <class T>
T Tensor<T>::item() const {
  if (tape_ == nullptr) empty_handle("item");
  Tape<T>& t = tape();
  const Matrix<T>& v = t.value_of(t.index_of(*this, "item"));
  if (v.size() != 1) {
    throw std::invalid_argument("xgrad::Tensor::item: tensor is " + shape_string(v) +
                                ", item() needs 1x1");
  }
  return v(0, 0);
}

// ---------------------------------------------------------------- Tape
template <class T>
std::uint32_t Tape<T>::index_of(const Tensor<T>& t, const char* op) const {
  if (t.tape_ != this) {
    throw std::invalid_argument(
        std::string(op) + ": " +
        (t.tape_ ? "tensor #" + std::to_string(t.index_) + " belongs to another tape"
                 : std::string("tensor belongs to no tape (empty handle)")));
  }
  if (t.generation_ != generation_ || t.index_ >= used_) {
    throw std::logic_error(std::string(op) + ": tensor #" + std::to_string(t.index_) +
                           " is from a cleared tape (generation " + std::to_string(t.generation_) +
                           ", tape is at generation " + std::to_string(generation_) + ")");
  }
  return t.index_;
}

template <class T>
Matrix<T>& Tape<T>::value_of(std::uint32_t i) {
  detail::Node<T>& n = nodes_[i];
  return n.param ? n.param->value : n.value;
}

template <class T>
Matrix<T>& Tape<T>::grad_of(std::uint32_t i) {
  detail::Node<T>& n = nodes_[i];
  return n.grad_in_parameter() ? n.param->grad : n.grad;
}

template <class T>
void Tape<T>::check_recordable(const char* op) const {
  if (released_ && grad_enabled_) {
    // A new differentiable forward after a released backward means the caller forgot
    // tape.clear() (the tape would grow every step), so say what to do. Under NoGradGuard
    // recording stays allowed: evaluating the step's outputs after backward (accuracy,
    // probabilities) keeps nothing for a backward pass and clear() still resets it.
    throw std::logic_error(std::string(op) +
                           ": the tape's graph was released by backward(); call "
                           "tape.clear() before recording the next step");
  }
}

template <class T>
std::uint32_t Tape<T>::record(Op op, std::uint32_t lhs, std::uint32_t rhs, std::size_t rows,
                              std::size_t cols, std::uint32_t third) {
  check_recordable(op_name(op));
  if (used_ == nodes_.size()) nodes_.emplace_back();
  detail::Node<T>& n = nodes_[used_];
  const bool parent_needs = (lhs != detail::kNoParent && nodes_[lhs].requires_grad) ||
                            (rhs != detail::kNoParent && nodes_[rhs].requires_grad) ||
                            (third != detail::kNoParent && nodes_[third].requires_grad);
  n.op = op;
  n.requires_grad = grad_enabled_ && parent_needs;
  n.grad_touched = false;
  n.grad_ready = false;
  n.grad_on_tape = false;
  // Under NoGradGuard nothing is recorded for backward: no parents are kept.
  n.lhs = n.requires_grad ? lhs : detail::kNoParent;
  n.rhs = n.requires_grad ? rhs : detail::kNoParent;
  n.third = n.requires_grad ? third : detail::kNoParent;
  n.alpha = T(0);
  n.beta = T(0);
  n.axis = -1;
  n.param.reset();
  n.custom.reset();
  n.column_runs.clear();  // keeps its capacity: no allocation in later steps
  detail::reshape_reuse(n.value, rows, cols);
  return static_cast<std::uint32_t>(used_++);
}

template <class T>
Tensor<T> Tape<T>::constant(const Matrix<T>& value) {
  const std::uint32_t i =
      record(Op::Constant, detail::kNoParent, detail::kNoParent, value.shape(0), value.shape(1));
  nodes_[i].value = value;  // same shape: copies into the existing buffer
  return handle(i);
}

template <class T>
Tensor<T> Tape<T>::gather_rows(const Matrix<T>& data, const std::vector<std::size_t>& rows,
                               std::size_t begin, std::size_t end) {
  if (begin > end || end > rows.size()) {
    throw std::out_of_range("gather_rows: range [" + std::to_string(begin) + ", " +
                            std::to_string(end) + ") outside an index list of " +
                            std::to_string(rows.size()));
  }
  // All checks before anything is recorded (a refused call leaves the tape as it was)
  // and before the parallel copy.
  for (std::size_t r = begin; r < end; ++r) {
    if (rows[r] >= data.shape(0)) {
      throw std::out_of_range("gather_rows: row index " + std::to_string(rows[r]) +
                              " outside data with " + std::to_string(data.shape(0)) + " rows");
    }
  }
  check_recordable("gather_rows");
  const std::size_t cols = data.shape(1);
  const std::uint32_t i =
      record(Op::Constant, detail::kNoParent, detail::kNoParent, end - begin, cols);
  T* out = nodes_[i].value.data();
  const T* in = data.data();
  const std::size_t* picked = rows.data() + begin;
  // Random rows of a large data set: the copy waits on memory, so two threads help.
  parallel_for(
      end - begin, std::max<std::size_t>(1, kParallelItems / std::max<std::size_t>(1, cols)),
      [=](std::size_t first, std::size_t last) {
        if (cols == 1) {  // one feature (the Runge data): no library call per element
          for (std::size_t r = first; r < last; ++r)
            out[r] = in[picked[r]];
          return;
        }
        for (std::size_t r = first; r < last; ++r)
          std::copy(in + picked[r] * cols, in + (picked[r] + 1) * cols, out + r * cols);
      },
      /*align=*/1);
  return handle(i);
}

template <class T>
Tensor<T> Tape<T>::variable(const Matrix<T>& value) {
  check_recordable("variable");  // named as itself, not as the constant it starts as
  Tensor<T> t = constant(value);
  detail::Node<T>& n = nodes_[t.index_];
  n.op = Op::Variable;
  n.requires_grad = grad_enabled_;
  return t;
}

namespace {
/// False when a user replaced a parameter's value() with another shape.
template <class T>
bool grad_matches_value(const typename Parameter<T>::Data& d) {
  return d.grad.dimension() == 2 && d.grad.shape() == d.value.shape();
}
}  // namespace

template <class T>
Tensor<T> Tape<T>::parameter(const Parameter<T>& p) {
  const Matrix<T>& v = p.value();
  if (v.dimension() != 2) throw std::invalid_argument("parameter: value is not 2-D");
  const std::uint32_t i = record(Op::Parameter, detail::kNoParent, detail::kNoParent, 0, 0);
  detail::Node<T>& n = nodes_[i];
  n.param = p.data_;
  n.param_rows = v.shape(0);
  n.param_cols = v.shape(1);
  n.requires_grad = grad_enabled_;
  n.grad_on_tape = parameter_grads_on_tape_;
  // With the gradient on the tape, other tapes may be using p on other threads: leave
  // its grad alone here (add_parameter_grads resizes it, on one thread).
  if (n.requires_grad && !n.grad_on_tape && !grad_matches_value<T>(*n.param)) {
    // A user replaced value() with another shape: keep grad consistent with it.
    n.param->grad = xt::zeros<T>(v.shape());
  }
  return handle(i);
}

namespace {
/// Index of the first NaN/Inf in m, or m.size() when every element is finite.
template <class T>
std::size_t first_non_finite(const Matrix<T>& m) {
  const T* p = m.data();
  for (std::size_t k = 0; k < m.size(); ++k) {
    if (!std::isfinite(p[k])) return k;
  }
  return m.size();
}

/// After node i's backward rule ran: throws std::domain_error naming op i if it put a
/// NaN/Inf into a parent's gradient. Checking right after each rule blames the op that
/// produced the value, not the leaf it ends up in.
template <class T>
void check_backward_finite(Tape<T>& tape, std::uint32_t i) {
  const detail::Node<T>& n = tape.node(i);
  // A custom op keeps all its inputs in its record; built-in ops have up to three. (No
  // vector of them here: the check runs per node and must not allocate.)
  const std::uint32_t builtin[] = {n.lhs, n.rhs, n.third};
  const std::uint32_t* first = n.custom ? n.custom->inputs.data() : builtin;
  const std::size_t count = n.custom ? n.custom->inputs.size() : 3;
  for (std::size_t p = 0; p < count; ++p) {
    const std::uint32_t parent = first[p];
    if (parent == detail::kNoParent || !tape.node(parent).requires_grad) continue;
    // A tape-owned gradient no rule has written yet holds no values of this pass.
    if (!tape.node(parent).grad_in_parameter() && !tape.node(parent).grad_touched) continue;
    const Matrix<T>& g = tape.grad_of(parent);
    const std::size_t k = first_non_finite(g);
    if (k == g.size()) continue;
    std::ostringstream msg;
    msg << detail::node_name(n) << " (tensor #" << i << ") backward produced "
        << (std::isnan(g.data()[k]) ? "NaN" : "Inf") << " in the gradient of its input tensor #"
        << parent << " (" << detail::node_name(tape.node(parent)) << ", " << shape_string(g)
        << ") at (" << k / g.shape(1) << ", " << k % g.shape(1) << ")";
    throw std::domain_error(msg.str());
  }
}
}  // namespace

template <class T>
void Tape<T>::backward(const Tensor<T>& root, BackwardOptions options) {
  const std::uint32_t r = index_of(root, "backward");
  const Matrix<T>& v = value_of(r);
  if (v.size() != 1) {
    throw std::invalid_argument("backward: root is " + shape_string(v) +
                                ", not a scalar; pass a seed gradient of that shape");
  }
  run_backward(r, nullptr, options);
}

template <class T>
void Tape<T>::backward(const Tensor<T>& root, const Matrix<T>& seed, BackwardOptions options) {
  const std::uint32_t r = index_of(root, "backward");
  const Matrix<T>& v = value_of(r);
  if (seed.dimension() != 2 || seed.shape() != v.shape()) {
    throw std::invalid_argument(
        "backward: seed gradient is " +
        shape_string(seed.shape(0), seed.dimension() > 1 ? seed.shape(1) : 1) +
        " but the root is " + shape_string(v));
  }
  run_backward(r, &seed, options);
}

template <class T>
void Tape<T>::run_backward(std::uint32_t r, const Matrix<T>* seed, BackwardOptions options) {
  if (walk_failed_) {
    throw std::logic_error(
        "backward: an earlier backward() on this graph threw part-way, so parameters' grad() "
        "may hold part of its gradient; zero_grad() them, tape.clear() and record the step "
        "again");
  }
  if (released_) {
    throw std::logic_error(
        "backward: the graph was already released by an earlier backward(); pass "
        "BackwardOptions{true} (keep_graph) to the first call to walk it twice");
  }
  if (!nodes_[r].requires_grad) {
    throw std::invalid_argument(
        "backward: root (" + detail::node_name(nodes_[r]) +
        ") does not depend on anything that requires a gradient (only constants, or "
        "recorded under a NoGradGuard)");
  }
  if (check_finite_ && seed != nullptr) {
    const std::size_t k = first_non_finite(*seed);
    if (k != seed->size()) {
      throw std::domain_error("backward: the seed gradient has " +
                              std::string(std::isnan(seed->data()[k]) ? "NaN" : "Inf") + " at (" +
                              std::to_string(k / seed->shape(1)) + ", " +
                              std::to_string(k % seed->shape(1)) + ")");
    }
  }
  // A parameter's shape, checked before any state changes, so that a refused walk leaves
  // the tape as it was.
  for (std::uint32_t i = 0; i <= r; ++i) {
    const detail::Node<T>& n = nodes_[i];
    if (n.param &&
        (n.param->value.shape(0) != n.param_rows || n.param->value.shape(1) != n.param_cols)) {
      // The ops recorded after it were sized for the old shape: their rules would write
      // out of bounds. (A new value of the same shape is used as it is now: see tape.hpp.)
      throw std::logic_error("backward: parameter '" + n.param->name + "' was " +
                             shape_string(n.param_rows, n.param_cols) + " when recorded and is " +
                             shape_string(n.param->value) +
                             " now; record the step again after changing a parameter's shape");
    }
  }
  // Gradients of tape-owned nodes are recomputed by every backward; parameters
  // accumulate into their own grad() until zero_grad(). Tape-owned buffers are sized
  // here but not zeroed: the first rule to reach one assigns (detail::grad_fresh), and
  // one that nothing reaches reads as zeros through Tensor::grad() (grad_ready false).
  for (std::uint32_t i = 0; i <= r; ++i) {
    detail::Node<T>& n = nodes_[i];
    n.grad_touched = false;
    if (!n.requires_grad || n.grad_in_parameter()) continue;
    const Matrix<T>& v = value_of(i);
    detail::reshape_reuse(n.grad, v.shape(0), v.shape(1));
    n.grad_ready = false;
  }
  // Nodes after the root take no part in this walk: their gradient from an earlier
  // backward (keep_graph) is stale, so they too read as zeros until a walk reaches them.
  // Nor did anything flow into them (add_parameter_grads reads grad_touched).
  for (std::size_t i = r + 1; i < used_; ++i) {
    nodes_[i].grad_ready = false;
    nodes_[i].grad_touched = false;
  }
  // The implicit seed of a scalar root is written in place: backward() allocates nothing.
  Matrix<T>& root_grad = detail::grad_for_add(*this, r);
  if (seed != nullptr) {
    // noalias: a plain xtensor `+=` evaluates into a temporary (one allocation per call).
    xt::noalias(root_grad) += *seed;
  } else {
    root_grad(0, 0) += T(1);
  }
  try {
    for (std::uint32_t i = r + 1; i-- > 0;) {
      const detail::Node<T>& n = nodes_[i];
      if (!n.requires_grad || !n.grad_touched || n.lhs == detail::kNoParent) continue;
      detail::backward_rule<T>(n.op)(*this, i);
      if (check_finite_) check_backward_finite(*this, i);
    }
  } catch (...) {
    // A rule threw (the finite check, a custom op's rule). The rules that ran before it
    // have already added into parameters' grad(): a second walk would add those twice,
    // so this graph is done with, and only clear() makes the tape usable again.
    walk_failed_ = true;
    released_ = true;
    throw;
  }
  released_ = !options.keep_graph;
}

template <class T>
void Tape<T>::add_parameter_grads() {
  if (walk_failed_) {
    throw std::logic_error(
        "add_parameter_grads: the last backward() threw part-way, so the tape holds only part "
        "of its gradients; tape.clear() and record the step again");
  }
  for (std::size_t i = 0; i < used_; ++i) {
    detail::Node<T>& n = nodes_[i];
    // Untouched: the last backward did not reach it (or ran before it was recorded).
    if (!n.param || !n.grad_on_tape || !n.requires_grad || !n.grad_touched) continue;
    if (!grad_matches_value<T>(*n.param)) n.param->grad = xt::zeros<T>(n.param->value.shape());
    xt::noalias(n.param->grad) += n.grad;  // noalias: no temporary
  }
}

template <class T>
void Tape<T>::clear() {
  // Parameters are released so the tape does not keep a dropped network alive.
  // So are custom ops' rules, with whatever their closures captured.
  for (std::size_t i = 0; i < used_; ++i) {
    nodes_[i].param.reset();
    nodes_[i].custom.reset();
  }
  used_ = 0;
  ++generation_;
  released_ = false;
  walk_failed_ = false;
}

template <class T>
void Tape<T>::check_node_finite(std::uint32_t i, bool gradient) const {
  const detail::Node<T>& n = nodes_[i];
  const Matrix<T>& m = gradient ? (n.grad_in_parameter() ? n.param->grad : n.grad)
                                : (n.param ? n.param->value : n.value);
  const T* p = m.data();
  for (std::size_t k = 0; k < m.size(); ++k) {
    if (!std::isfinite(p[k])) {
      const std::size_t cols = m.shape(1);
      std::ostringstream msg;
      msg << detail::node_name(n) << " (tensor #" << i << ", " << shape_string(m) << ") produced "
          << (std::isnan(p[k]) ? "NaN" : "Inf") << " in its " << (gradient ? "gradient" : "output")
          << " at (" << k / cols << ", " << k % cols << ")";
      throw std::domain_error(msg.str());
    }
  }
}

template class Parameter<float>;
template class Parameter<double>;
template class Tensor<float>;
template class Tensor<double>;
template class Tape<float>;
template class Tape<double>;

}  // namespace xgrad
