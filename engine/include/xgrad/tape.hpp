// The reverse-mode tape: tensors, parameters, recording and backward().
//
// A Tape<T> owns every intermediate of a forward pass in creation order. Creation
// order is a topological order, so backward() is a plain reverse loop (no recursion,
// no per-path propagation). Each op's forward and backward rule live side by side in
// engine/src/ops_*.cpp; see docs/engine.md for the table in math.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include <xtensor/xtensor.hpp>

namespace xgrad {

/// Every value and gradient is a row-major 2-D matrix; a scalar is 1x1.
template <class T>
using Matrix = xt::xtensor<T, 2>;

/// Shape as (rows, cols), printed as "RxC" in error messages.
std::string shape_string(std::size_t rows, std::size_t cols);
template <class T>
std::string shape_string(const Matrix<T>& m) {
  return shape_string(m.shape(0), m.shape(1));
}

/// The operations the tape knows. The order here is the order of the table in
/// engine/src/op_table.cpp and docs/engine.md.
enum class Op : std::uint8_t {
  Constant,   // data with no gradient (inputs, targets, results under NoGrad)
  Variable,   // a leaf owned by the tape that wants a gradient
  Parameter,  // a leaf that lives outside the tape (weights, biases)
  MatMul,
  Add,
  Sub,
  Mul,
  Div,
  Neg,
  Affine,     // alpha * a + beta: covers a+s, a-s, s-a, a*s, a/s
  ScalarDiv,  // alpha / a
  Pow,        // a ^ alpha
  Square,
  Sqrt,
  Exp,
  Log,
  Abs,
  Sum,  // axis: -1 all, 0 over rows (-> 1xC), 1 over columns (-> Rx1)
  Mean,
  Transpose,
  Sigmoid,
  Tanh,
  Relu,
  LeakyRelu,            // alpha = negative slope
  Elu,                  // alpha = saturation
  Softmax,              // row-wise
  LogSoftmax,           // row-wise
  MseLoss,              // mean((a - b)^2)
  BceWithLogitsLoss,    // mean(max(z,0) - z y + log(1 + e^-|z|))
  SoftmaxCrossEntropy,  // -1/n sum(y . log_softmax(z))
  Linear,               // a W + b, b a 1xN row: a dense layer's z in one node
  Sin,
  Cos,
  Custom,  // a user's forward and backward (xgrad/custom_op.hpp)
  Count
};

/// The op's name as it appears in error messages and docs ("matmul", "add", ...).
const char* op_name(Op op);

template <class T>
class Tape;

/// A weight or bias: a leaf that outlives the tape. Copies share the same storage
/// (like a torch.Tensor handle), so an optimiser and a network can hold the same one.
/// The tape reads the value when backward() runs, not a copy from when it was recorded:
/// update a parameter after backward() (as the optimisers do). A new value of another
/// shape between recording and backward() is refused there; one of the same shape would
/// be used as it is (PyTorch's version counters catch that case; xgrad cannot see
/// writes through value()).
template <class T>
class Parameter {
 public:
  Parameter() = default;
  explicit Parameter(Matrix<T> value, std::string name = {});

  Matrix<T>& value() { return data().value; }
  const Matrix<T>& value() const { return data().value; }
  /// Sum of the gradients of every backward() since the last zero_grad().
  Matrix<T>& grad() { return data().grad; }
  const Matrix<T>& grad() const { return data().grad; }
  void zero_grad();
  const std::string& name() const { return data().name; }
  std::size_t rows() const { return data().value.shape(0); }
  std::size_t cols() const { return data().value.shape(1); }
  std::size_t size() const { return data().value.size(); }
  bool defined() const { return static_cast<bool>(data_); }
  /// True when both handles refer to the same storage.
  bool same_as(const Parameter& other) const { return data_ == other.data_; }

  struct Data {
    Matrix<T> value;
    Matrix<T> grad;
    std::string name;
  };

 private:
  Data& data() const;
  std::shared_ptr<Data> data_;
  friend class Tape<T>;
};

/// A handle to one value recorded on a tape. Cheap to copy. Using it after the tape
/// was cleared throws instead of reading reused memory.
template <class T>
class Tensor {
 public:
  Tensor() = default;

  const Matrix<T>& value() const;
  /// The gradient computed by the last backward(); zeros where nothing flowed. For a
  /// tensor of tape.parameter(p) this is p.grad(), which adds up over backward() calls
  /// until zero_grad() (an optimiser's or the parameter's own); on a tape with
  /// parameter_grads_on_tape it is instead this tape's own gradient of the last walk.
  const Matrix<T>& grad() const;
  std::size_t rows() const { return value().shape(0); }
  std::size_t cols() const { return value().shape(1); }
  bool requires_grad() const;
  /// The single element of a 1x1 tensor (throws otherwise).
  T item() const;
  Tape<T>& tape() const;
  std::uint32_t index() const { return index_; }
  /// False for a default-constructed handle, which belongs to no tape.
  bool defined() const { return tape_ != nullptr; }

 private:
  Tensor(Tape<T>* tape, std::uint32_t index, std::uint64_t generation)
      : tape_(tape), index_(index), generation_(generation) {}
  Tape<T>* tape_ = nullptr;
  std::uint32_t index_ = 0;
  std::uint64_t generation_ = 0;
  friend class Tape<T>;
};

namespace detail {
inline constexpr std::uint32_t kNoParent = 0xffffffffu;

/// A custom op's inputs and backward rule (defined in engine/src/ops_custom.cpp).
template <class T>
struct CustomRecord;

/// One recorded op. Buffers are reused across clear() so that a training loop stops
/// allocating after its first step.
template <class T>
struct Node {
  Op op = Op::Constant;
  bool requires_grad = false;
  bool grad_touched = false;  // something flowed into grad during this backward
  bool grad_ready = false;    // grad was sized and zeroed since this node was recorded
  bool grad_on_tape = false;  // a Parameter leaf whose gradient is kept in `grad` (see
                              // Tape::set_parameter_grads_on_tape)
  std::uint32_t lhs = kNoParent;
  std::uint32_t rhs = kNoParent;
  std::uint32_t third = kNoParent;  // linear's bias
  T alpha = 0;                      // scalar attribute (slope, exponent, scale)
  T beta = 0;                       // second scalar attribute (shift)
  int axis = -1;
  Matrix<T> value;  // unused for Parameter leaves (their value lives in `param`)
  Matrix<T> grad;
  Matrix<T> saved;  // extra forward result backward needs (softmax probabilities)
  // matmul of a constant with all-zero columns (ops_matmul.cpp): the kept columns as
  // (first, count) runs, and one flat buffer for A's kept columns [m,K] followed by B's
  // kept rows [K,n] (forward) or their gradient (backward). Flat (SIMD-aligned, like
  // every xtensor buffer) and only grown, so a smaller batch (the last of an epoch) and
  // the next full one reuse it.
  std::vector<std::uint32_t> column_runs;
  xt::xtensor<T, 1> scratch;
  std::shared_ptr<typename Parameter<T>::Data> param;
  std::size_t param_rows = 0, param_cols = 0;  // its shape when recorded (backward checks)
  std::shared_ptr<CustomRecord<T>> custom;     // Op::Custom only

  /// True when backward adds this node's gradient into a Parameter's own grad().
  bool grad_in_parameter() const { return param && !grad_on_tape; }
};
}  // namespace detail

struct BackwardOptions {
  /// Keep the graph so that backward() may be called on it again.
  bool keep_graph = false;
};

/// Records ops in execution order and runs them backwards.
template <class T>
class Tape {
 public:
  Tape() = default;
  Tape(const Tape&) = delete;
  Tape& operator=(const Tape&) = delete;

  /// Data that needs no gradient (inputs, targets). Copies into a reused buffer.
  Tensor<T> constant(const Matrix<T>& value);
  /// A constant of rows x cols that fill(data, rows * cols) writes straight into its
  /// reused buffer (row-major): generated data such as dropout masks, with no matrix
  /// (and no allocation) in between.
  template <class Fill>
  Tensor<T> constant(std::size_t rows, std::size_t cols, Fill&& fill) {
    const std::uint32_t i = record(Op::Constant, detail::kNoParent, detail::kNoParent, rows, cols);
    fill(value_of(i).data(), rows * cols);
    return handle(i);
  }
  /// Rows `rows[begin, end)` of `data`, gathered straight into a reused buffer:
  /// one minibatch without an intermediate copy.
  Tensor<T> gather_rows(const Matrix<T>& data, const std::vector<std::size_t>& rows,
                        std::size_t begin, std::size_t end);
  /// A leaf owned by the tape whose gradient backward() computes.
  Tensor<T> variable(const Matrix<T>& value);
  /// A parameter used in this forward pass; backward() adds into parameter.grad()
  /// (or, with parameter_grads_on_tape, into the tape's own buffer for it).
  Tensor<T> parameter(const Parameter<T>& parameter);

  /// For data-parallel shards (nn::TrainerOptions::shards): parameters recorded while
  /// this is on keep their gradient on this tape, so that tapes on other threads may run
  /// backward() on the same parameters at the same time; add_parameter_grads() adds
  /// them into each parameter.grad() afterwards, on one thread. Off by default.
  void set_parameter_grads_on_tape(bool on) { parameter_grads_on_tape_ = on; }
  bool parameter_grads_on_tape() const { return parameter_grads_on_tape_; }
  /// Adds the last backward's on-tape parameter gradients into parameter.grad(), in
  /// recording order (a parameter recorded twice adds twice, once per node). Each call adds
  /// again: call it once per backward().
  void add_parameter_grads();

  /// Reverse walk from a 1x1 root with seed 1.
  void backward(const Tensor<T>& root, BackwardOptions options = {});
  /// Reverse walk from any root with an explicit seed gradient of the root's shape.
  void backward(const Tensor<T>& root, const Matrix<T>& seed, BackwardOptions options = {});

  /// Forget every recorded op (handles become invalid) but keep the buffers.
  void clear();
  /// Number of nodes currently recorded.
  std::size_t size() const { return used_; }
  /// Number of node buffers kept for reuse (grows only when a step records more ops).
  std::size_t capacity() const { return nodes_.size(); }
  std::uint64_t generation() const { return generation_; }

  /// Opt-in: every op checks its output (and backward its gradients) for NaN/Inf
  /// and throws std::domain_error naming the op.
  void set_check_finite(bool on) { check_finite_ = on; }
  bool check_finite() const { return check_finite_; }
  bool grad_enabled() const { return grad_enabled_; }

  // ---- used by the op implementations (engine/src), not by models ----
  /// Appends a node of shape rows x cols; requires_grad when recording is on and a
  /// parent requires it. Returns its index. Never moves existing nodes, so references
  /// to other nodes' values (e.g. the argument of constant(t.value())) stay valid.
  std::uint32_t record(Op op, std::uint32_t lhs, std::uint32_t rhs, std::size_t rows,
                       std::size_t cols, std::uint32_t third = detail::kNoParent);
  detail::Node<T>& node(std::uint32_t i) { return nodes_[i]; }
  const detail::Node<T>& node(std::uint32_t i) const { return nodes_[i]; }
  Matrix<T>& value_of(std::uint32_t i);
  Matrix<T>& grad_of(std::uint32_t i);
  /// Throws std::logic_error, naming `op`, when a differentiable op may not be recorded
  /// now: the graph was released by backward() and tape.clear() has not run since.
  void check_recordable(const char* op) const;
  /// Index of a live handle on this tape; throws for a cleared or foreign handle.
  std::uint32_t index_of(const Tensor<T>& t, const char* op) const;
  Tensor<T> handle(std::uint32_t i) { return Tensor<T>(this, i, generation_); }
  /// Throws std::domain_error if node i's value (or gradient) has a NaN/Inf.
  void check_node_finite(std::uint32_t i, bool gradient) const;

 private:
  template <class>
  friend class NoGradGuard;
  /// The reverse walk; seed == nullptr means a 1x1 root seeded with 1 (no allocation).
  void run_backward(std::uint32_t root, const Matrix<T>* seed, BackwardOptions options);
  // A deque, not a vector: growing it never relocates existing nodes. With a vector,
  // tape.constant(t.value()) read t's value after record() had moved it (use after free).
  std::deque<detail::Node<T>> nodes_;
  std::size_t used_ = 0;
  std::uint64_t generation_ = 1;
  bool grad_enabled_ = true;
  bool check_finite_ = false;
  bool parameter_grads_on_tape_ = false;
  bool released_ = false;     // backward() ran without keep_graph, or threw part-way
  bool walk_failed_ = false;  // a backward() threw part-way (see run_backward)
};

/// RAII scope in which ops record no backward information (inference, evaluation,
/// optimiser updates). Values are still computed and stored on the tape.
template <class T>
class NoGradGuard {
 public:
  explicit NoGradGuard(Tape<T>& tape) : tape_(tape), previous_(tape.grad_enabled_) {
    tape_.grad_enabled_ = false;
  }
  ~NoGradGuard() { tape_.grad_enabled_ = previous_; }
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  Tape<T>& tape_;
  bool previous_;
};

extern template class Parameter<float>;
extern template class Parameter<double>;
extern template class Tensor<float>;
extern template class Tensor<double>;
extern template class Tape<float>;
extern template class Tape<double>;

}  // namespace xgrad
