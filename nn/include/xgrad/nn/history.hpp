// The per-epoch record of a training run, available to the caller and as CSV.
#pragma once

#include <cstddef>
#include <iosfwd>
#include <string>
#include <vector>

#include "xgrad/nn/metrics.hpp"

namespace xgrad::nn {

/// One epoch. Values not computed (no validation data, no metric) are NaN and written
/// as empty CSV fields.
struct EpochRecord {
  std::size_t epoch = 0;  // 1-based
  /// Mean of the minibatch objectives over the epoch (weighted by batch rows), or, with
  /// TrainerOptions::evaluate_train, the objective on the whole training set after it.
  double train_loss = 0;
  double train_metric = 0;  // only with evaluate_train
  double val_loss = 0;
  double val_metric = 0;
  double learning_rate = 0;       // at the epoch's first step
  double seconds = 0;             // wall time of the epoch, evaluation included
  double samples_per_second = 0;  // training samples / training time of the epoch
  /// What happened at the end of this epoch: "", "early_stop", "non_finite", "stopped"
  /// (a callback asked), followed by " restored_epoch=K" when parameters were restored.
  std::string event;
};

enum class StopReason { Completed, EarlyStopping, NonFinite, Callback };
const char* stop_reason_name(StopReason reason);

struct History {
  MetricKind metric = MetricKind::None;
  std::vector<EpochRecord> epochs;
  StopReason stop = StopReason::Completed;
  /// A sentence saying why training ended ("completed 10 epochs", "loss became nan at
  /// epoch 3, step 17; parameters restored to the end of epoch 2", ...).
  std::string message;
  /// The epoch whose parameters the network holds after a restore (0 = the initial
  /// parameters); -1 when nothing was restored.
  long restored_epoch = -1;

  bool empty() const { return epochs.empty(); }
  const EpochRecord& back() const { return epochs.back(); }
  /// Column names: epoch, train_loss, train_<metric>, val_loss, val_<metric>,
  /// learning_rate, seconds, samples_per_second, event (<metric> is the metric's name,
  /// "metric" when none). One row per epoch: losses, metrics and rate to 17 digits (they
  /// round-trip), times to 6; NaN as an empty field.
  std::vector<std::string> csv_columns() const;
  void write_csv(std::ostream& out) const;
  /// Throws std::runtime_error naming the path when it cannot be written.
  void write_csv(const std::string& path) const;
};

}  // namespace xgrad::nn
