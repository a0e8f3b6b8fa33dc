// The training loop (report 002 Algorithm 3): epochs of shuffled minibatches, each
// step recorded on a reused tape:
//
//   tape.clear(); X = tape.gather_rows(x, order, b, e); Y = tape.gather_rows(y, ...);
//   loss = objective(tape, net, X, Y, cost); tape.backward(loss);
//   optimiser.step(); optimiser.zero_grad();
//
// After the first epoch a step allocates nothing: the tapes keep their buffers, the
// permutation is shuffled in place, and a batch smaller than the others (when the batch
// size does not divide the rows) runs on its own tape so neither tape changes shape.
//
// Reproducibility: the permutation comes from TrainerOptions::seed only (data.hpp), so
// the same seed, data, initial parameters and BLAS thread count give identical losses.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "xgrad/nn/callbacks.hpp"
#include "xgrad/nn/cost.hpp"
#include "xgrad/nn/dropout.hpp"
#include "xgrad/nn/history.hpp"
#include "xgrad/nn/metrics.hpp"
#include "xgrad/nn/network.hpp"
#include "xgrad/nn/optimiser.hpp"
#include "xgrad/nn/schedule.hpp"

namespace xgrad::nn {

struct TrainerOptions {
  std::size_t epochs = 10;
  /// Rows per minibatch; 0 = the whole training set per step. An optimiser made as
  /// "gd" always steps on the whole training set.
  std::size_t batch_size = 32;
  /// Seeds the shuffling of every epoch.
  std::uint64_t seed = 0;
  bool shuffle = true;
  /// Reported per epoch next to the loss (on validation data, and on the training
  /// data when evaluate_train).
  MetricKind metric = MetricKind::None;
  /// Recompute the training loss and metric on the whole training set after each
  /// epoch (one extra forward pass over it); otherwise train_loss is the mean of the
  /// minibatch losses during the epoch and train_metric is not computed.
  bool evaluate_train = false;
  /// Sets the optimiser's learning rate before every step; none = keep it constant.
  std::optional<Schedule> schedule;
  /// Adds a ProgressLine on stderr (silent anyway on runs shorter than 2 s).
  bool progress = true;
  /// Rows per forward pass when evaluating.
  std::size_t eval_batch_size = 1024;
  /// Dropout of the input and hidden units in training steps (never when evaluating).
  Dropout dropout;
  /// Seeds the dropout masks; unset: derived from `seed`, a stream apart from the shuffling.
  std::optional<std::uint64_t> dropout_seed;
  /// Data-parallel steps: each minibatch is cut into this many contiguous row blocks
  /// (shards), whose forward and backward passes run on their own tapes on
  /// xgrad::threads() threads at once; their gradients are then added in shard order.
  /// Each shard's cost is weighted by its share of the rows, so the step minimises the
  /// same objective. The numbers depend on `shards` (the sums are grouped differently,
  /// so the last bits differ from shards = 1) but not on the thread count. With
  /// dropout, shard 0 draws its masks from the dropout stream and shard s from its own
  /// (the dropout seed + s * 0x9e3779b97f4a7c15). Pays off where one step is too small
  /// to split inside its products (docs/nn-training.md §4). Each shard runs on one
  /// thread, its products unsplit: use as many shards as threads.
  std::size_t shards = 1;

  /// Throws std::invalid_argument naming the value out of range.
  void validate() const;
};

/// Loss (the objective, penalty included) and metric of a data set.
struct Evaluation {
  double loss = 0;
  double metric = 0;  // NaN without a metric
};

template <class T>
class Trainer {
 public:
  /// The optimiser must update exactly the network's parameters (checked).
  Trainer(Network<T>& network, Optimiser<T>& optimiser, const CostSpec& cost,
          const TrainerOptions& options = {});
  Trainer(const Trainer&) = delete;
  Trainer& operator=(const Trainer&) = delete;

  /// Callbacks run in the order added (the progress line, when enabled, last).
  Trainer& add_callback(std::shared_ptr<Callback<T>> callback);

  /// Trains on (x, y) for options.epochs epochs, or until a callback stops it or the
  /// loss stops being finite. In that last case the parameters are restored to the end
  /// of the last good epoch (the initial ones if it was the first), the optimiser's
  /// moments are reset, and the history ends with event "non_finite" and a message:
  /// no exception. Returns the history (also kept in history()).
  const History& fit(const Matrix<T>& x, const Matrix<T>& y);
  const History& fit(const Matrix<T>& x, const Matrix<T>& y, const Matrix<T>& x_val,
                     const Matrix<T>& y_val);

  /// The objective and metric on a data set, without recording gradients. The metric is
  /// NaN where the objective is not finite (a diverged network has no accuracy).
  Evaluation evaluate(const Matrix<T>& x, const Matrix<T>& y);

  const History& history() const { return history_; }
  const TrainerOptions& options() const { return options_; }
  /// The tape full-size batches are recorded on (tests check its buffers are reused).
  const Tape<T>& tape() const { return tape_; }

 private:
  const History& run(const Matrix<T>& x, const Matrix<T>& y, const Matrix<T>* x_val,
                     const Matrix<T>* y_val);
  /// evaluate() on data fit() has already checked: no scan of it every epoch.
  Evaluation evaluate_checked(const Matrix<T>& x, const Matrix<T>& y);
  Network<T>& network_;
  Optimiser<T>& optimiser_;
  CostSpec cost_;
  TrainerOptions options_;
  std::vector<Parameter<T>> parameters_;
  std::vector<std::shared_ptr<Callback<T>>> callbacks_;
  History history_;
  Tape<T> tape_;       // full-size minibatches
  Tape<T> tail_tape_;  // the smaller last minibatch of an epoch
  Tape<T> eval_tape_;
  std::vector<std::size_t> eval_rows_;
  /// Shards 1..shards-1 (shard 0 records on tape_ / tail_tape_): tapes that keep their
  /// parameter gradients until the step adds them in, and their own dropout masks.
  struct Shard {
    Tape<T> tape;
    Tape<T> tail_tape;
    std::optional<DropoutMasks<T>> dropout;
  };
  std::vector<std::unique_ptr<Shard>> shards_;
  std::vector<double> shard_losses_;
  /// One data-parallel step's forward and backward passes on rows [begin, end) of
  /// `order` (shards > 1); returns the objective. Unlike one shard, every shard walks
  /// back before the loss is checked: shard 0's gradients are in grad() even when the
  /// objective is not finite (the caller's divergence handling zeroes them); the other
  /// shards' are added only when it is finite.
  double sharded_forward_backward(const Matrix<T>& x, const Matrix<T>& y,
                                  const std::vector<std::size_t>& order, std::size_t begin,
                                  std::size_t end, bool full_size, DropoutMasks<T>* dropout);
};

extern template class Trainer<float>;
extern template class Trainer<double>;

}  // namespace xgrad::nn
