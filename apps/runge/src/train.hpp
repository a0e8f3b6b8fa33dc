// Training one network on a Runge/Franke split, over xgrad::nn's Network, objective,
// Optimiser, Schedule and BatchSampler. The loop lives here (not in nn's trainer)
// because the study needs three things a general trainer does not give:
//   * report 000's SGD protocol: a fixed number of minibatches per epoch with the
//     learning rate divided by that number and an inverse-time decay (§III.A.1);
//   * the test MSE in the target's original units after each epoch (Fig. 2 curves),
//     while training on standardised targets;
//   * a diverged run reported as a result ("diverged"), not as an exception, so that a
//     sweep can record it and go on.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <xgrad/nn/cost.hpp>
#include <xgrad/nn/network.hpp>

#include "data.hpp"

namespace runge {

struct ModelSpec {
  std::vector<std::size_t> hidden = {50};  // nodes of each hidden layer (report 000: 50)
  std::string activation = "sigmoid";      // every hidden layer (report 000 §III.A)
  std::string output_activation = "identity";
  std::string init = "standard_normal";  // report 000: N(0,1) weights
  double bias_init = 0.01;               // report 000: biases 0.01
  /// Throws std::invalid_argument naming the option (--nodes 0, unknown --activation ...).
  void validate() const;
  std::string layers_string() const;  // "50x50"
};

struct TrainSpec {
  std::string optimiser = "adam";  // gd (full batch), sgd, momentum, adagrad, rmsprop, adam
  double learning_rate = 1e-2;
  /// "constant"; "inverse_time" = report 000's eta t1/(t+t1) with t1 = 30 m (m batches per
  /// epoch); "epoch_decay" = report 003's eta/(e m + 1); or any xgrad::nn::Schedule text.
  std::string schedule = "constant";
  std::size_t epochs = 3000;
  std::size_t batch_size = 0;         // 0 = full batch
  bool divide_lr_by_batches = false;  // report 000: SGD rate = eta / number of batches
  std::string cost = "mse";
  std::string penalty = "none";  // none, l1, l2
  double lambda = 0.0;
  bool penalise_biases = false;
  std::uint64_t seed = 1;       // initialisation and shuffling
  bool scale_target = true;     // train on standardised y; metrics in original units
  std::size_t curve_every = 0;  // 0: no learning curve; k: every k epochs (and the last)
  /// Row blocks of each step trained at once on xgrad's threads (nn TrainerOptions::shards).
  std::size_t shards = 1;
  void validate() const;
};

/// nn's spelling of an optimiser name ("GD" -> "gd"), so one optimiser has one label; an
/// unknown name comes back as it is (TrainSpec::validate refuses it, naming --optimiser).
std::string canonical_optimiser(const std::string& optimiser);
/// True for gd in any spelling: it steps on the whole training set whatever the batch size.
bool full_batch_optimiser(const std::string& optimiser);
/// True for penalty none and its alias l0: lambda is not read.
bool no_penalty(const std::string& penalty);

/// The starting rate of a --schedule that sets its own (step:ETA0,..., exponential:ETA0,...,
/// inverse_time:T0,T1 ...); nothing for constant, inverse_time and epoch_decay, which
/// scale --lr, and for a text that is no schedule (TrainSpec::validate names that).
std::optional<double> schedule_starting_rate(const std::string& schedule);

struct CurvePoint {
  std::size_t epoch = 0;
  double train_mse = 0;  // original units
  double test_mse = 0;   // original units; NaN without a test set
};

struct TrainedModel {
  xgrad::nn::Network<double> net;
  StandardScaler x_scaler;
  StandardScaler y_scaler;
  bool scale_target = true;
  bool diverged = false;
  std::string diverged_reason;
  std::size_t epochs_run = 0;
  std::size_t steps = 0;
  std::vector<CurvePoint> curve;

  /// Predictions in the target's original units.
  Matrix predict(const Matrix& x) const;
};

/// Trains on `train`; `test` (may be null) only feeds the learning curve.
TrainedModel train_network(const Dataset& train, const Dataset* test, const ModelSpec& model,
                           const TrainSpec& spec);

/// Metrics of a model on a data set; NaN for a diverged model or non-finite predictions.
struct Scores {
  double mse = 0;
  double r2 = 0;
};
Scores score(const TrainedModel& m, const Dataset& d);

}  // namespace runge
