// Optimisers: the update rules that turn gradients into new parameter values.
//
// Each optimiser holds handles to the parameters it updates (Parameter<T> copies share
// storage with the network) and one state buffer per parameter and moment, allocated
// once in the constructor. step() updates value() in place from grad() with one fused
// loop over the raw buffers per parameter: no allocation and no xtensor temporaries
// per step (../shared/DESIGN.md §6: an unfused Adam was 9% of an MNIST epoch).
//
// The rules, with g = ∂C/∂θ and η the learning rate (docs/nn-training.md):
//   gd, sgd   θ ← θ − η g                       (report 002 §2.2.c, Algorithm 3)
//   momentum  v ← ω v + η g;  θ ← θ − v          (report 003)
//   adagrad   G ← G + g²;  θ ← θ − η g / (√G + ε)
//   rmsprop   s ← ρ s + (1 − ρ) g²;  θ ← θ − η g / (√s + ε)
//   adam      m ← β1 m + (1 − β1) g;  v ← β2 v + (1 − β2) g²;
//             m̂ = m / (1 − β1^t);  v̂ = v / (1 − β2^t);  θ ← θ − η m̂ / (√v̂ + ε)
// "gd" and "sgd" share the rule; "gd" asks the trainer for full-batch steps.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "xgrad/tape.hpp"

namespace xgrad::nn {

enum class OptimiserKind { GradientDescent, Sgd, Momentum, AdaGrad, RmsProp, Adam };

/// Hyperparameters of every optimiser; each one reads the fields it needs.
struct OptimiserOptions {
  double learning_rate = 1e-3;  // η
  double momentum = 0.9;        // ω of report 003's momentum
  double rho = 0.9;             // decay of RMSprop's running mean of g²
  double beta1 = 0.9;           // Adam's first-moment decay
  double beta2 = 0.999;         // Adam's second-moment decay
  double epsilon = 1e-8;        // ε in the denominators of AdaGrad, RMSprop, Adam

  /// Throws std::invalid_argument naming the first value out of range:
  /// η > 0 and finite, ω, ρ, β1, β2 in [0, 1), ε > 0.
  void validate() const;
};

/// "gd", "sgd", "momentum", "adagrad", "rmsprop", "adam" (case-insensitive); throws
/// std::invalid_argument listing the valid names otherwise.
OptimiserKind parse_optimiser_kind(const std::string& name);
const char* optimiser_name(OptimiserKind kind);

template <class T>
class Optimiser {
 public:
  /// Every parameter must be defined and distinct; state buffers are allocated here.
  Optimiser(OptimiserKind kind, std::vector<Parameter<T>> parameters,
            const OptimiserOptions& options);
  Optimiser(const Optimiser&) = delete;
  Optimiser& operator=(const Optimiser&) = delete;

  /// One update of every parameter from its grad(). Throws std::logic_error naming the
  /// parameter if its value or grad changed shape since construction.
  void step();
  /// Zeroes every parameter's grad() (in place).
  void zero_grad();
  /// step() then zero_grad() in one pass: each gradient element is cleared right after
  /// the update reads it (the trainer's step; same values as the two calls).
  void step_and_zero_grad();
  /// Forgets the moments and the step count (a fresh start on the same parameters).
  void reset_state();

  OptimiserKind kind() const { return kind_; }
  const char* name() const { return optimiser_name(kind_); }
  /// Full-batch gradient descent: the trainer uses one batch of every sample per step.
  bool full_batch() const { return kind_ == OptimiserKind::GradientDescent; }
  const OptimiserOptions& options() const { return options_; }
  double learning_rate() const { return options_.learning_rate; }
  /// Used by learning-rate schedules between steps; throws unless η > 0 and finite.
  void set_learning_rate(double eta);
  /// Number of step() calls so far (Adam's t).
  std::size_t steps() const { return steps_; }
  const std::vector<Parameter<T>>& parameters() const { return parameters_; }
  /// The k-th state buffer of parameter i (momentum: v; adagrad: G; rmsprop: s;
  /// adam: k = 0 m, k = 1 v), flat in the parameter's row-major order.
  const std::vector<T>& state(std::size_t i, std::size_t k = 0) const;

 private:
  template <bool Zero>
  void update();
  OptimiserKind kind_;
  OptimiserOptions options_;
  std::vector<Parameter<T>> parameters_;
  std::vector<std::size_t> sizes_;
  std::vector<std::vector<T>> first_;   // v, G, s or m
  std::vector<std::vector<T>> second_;  // Adam's v
  std::size_t steps_ = 0;
};

/// The factory: an optimiser from its name and hyperparameters (validated).
template <class T>
std::unique_ptr<Optimiser<T>> make_optimiser(const std::string& name,
                                             std::vector<Parameter<T>> parameters,
                                             const OptimiserOptions& options = {});

/// Parses "adam", "adam:lr=1e-3,beta1=0.9,beta2=0.999,eps=1e-8", "momentum:lr=0.1,momentum=0.9",
/// "rmsprop:lr=1e-3,rho=0.9" ...: the name, then key=value pairs overriding `defaults`.
/// Keys: lr (or learning_rate), momentum, rho, beta1, beta2, eps (or epsilon). Throws
/// std::invalid_argument naming an unknown name, key or unparsable/out-of-range value.
struct OptimiserSpec {
  OptimiserKind kind = OptimiserKind::Adam;
  OptimiserOptions options;
  static OptimiserSpec parse(const std::string& text, const OptimiserOptions& defaults = {});
};

extern template class Optimiser<float>;
extern template class Optimiser<double>;

}  // namespace xgrad::nn
