// Callbacks: behaviour attached to a training run, kept apart from the model. The
// progress line, early stopping and reduce-on-plateau are callbacks; so can be
// checkpoints or logging.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <iosfwd>
#include <limits>
#include <string>
#include <vector>

#include "xgrad/nn/history.hpp"
#include "xgrad/nn/network.hpp"
#include "xgrad/nn/optimiser.hpp"

namespace xgrad::nn {

/// Copies of parameter values: save() copies in (allocating only the first time),
/// restore() copies back into the same storage the network and optimiser share.
template <class T>
class ParameterSnapshot {
 public:
  void save(const std::vector<Parameter<T>>& parameters);
  /// Throws std::logic_error when empty or when the shapes differ from the saved ones.
  void restore(std::vector<Parameter<T>>& parameters) const;
  bool empty() const { return values_.empty(); }
  const std::vector<Matrix<T>>& values() const { return values_; }

 private:
  std::vector<Matrix<T>> values_;
};

/// True when every parameter value is finite.
template <class T>
bool all_finite(const std::vector<Parameter<T>>& parameters);

/// What a callback sees and may change during Trainer::fit.
template <class T>
struct TrainingState {
  TrainingState(Network<T>& net, std::vector<Parameter<T>>& params, Optimiser<T>& opt, History& h)
      : network(net), parameters(params), optimiser(opt), history(h) {}
  Network<T>& network;
  std::vector<Parameter<T>>& parameters;
  Optimiser<T>& optimiser;
  History& history;
  std::size_t epoch = 0;             // 1-based, the current (or just finished) epoch
  std::size_t epochs = 0;            // planned
  std::size_t batch = 0;             // 0-based within the epoch: the batch about to run
                                     // (on_batch_begin) or just finished (on_batch_end)
  std::size_t batches = 0;           // per epoch
  std::size_t rows = 0;              // training rows
  std::size_t samples_in_epoch = 0;  // rows trained on so far this epoch
  double batch_loss = 0;             // the objective of the batch just finished
  // The schedule's rate for the step about to run (on_batch_begin), NaN without a
  // schedule: what a callback that scales the rate scales.
  double scheduled_rate = std::numeric_limits<double>::quiet_NaN();
  double running_loss = 0;   // mean batch objective so far this epoch (row-weighted)
  double seconds = 0;        // since fit() began
  double train_seconds = 0;  // since fit() began, evaluation excluded
  bool has_validation = false;
  bool evaluates_train = false;  // TrainerOptions::evaluate_train: train_metric exists
  bool stop_requested = false;
  StopReason stop = StopReason::Completed;
  std::string stop_message;

  /// Ends training after the current epoch's callbacks (or after the current step, from
  /// on_batch_begin or on_batch_end).
  void request_stop(StopReason why, std::string message) {
    stop_requested = true;
    stop = why;
    stop_message = std::move(message);
  }
};

template <class T>
class Callback {
 public:
  virtual ~Callback() = default;
  virtual void on_train_begin(TrainingState<T>&) {}
  virtual void on_epoch_begin(TrainingState<T>&) {}
  /// Before each step, after the schedule set the learning rate (a callback may set its
  /// own); cheap, like on_batch_end.
  virtual void on_batch_begin(TrainingState<T>&) {}
  /// After each optimiser step: keep it cheap, it runs hundreds of times per epoch.
  virtual void on_batch_end(TrainingState<T>&) {}
  /// After the epoch's record was appended to the history.
  virtual void on_epoch_end(TrainingState<T>&) {}
  virtual void on_train_end(TrainingState<T>&) {}
};

/// A callback from functions (any may be empty).
template <class T>
class LambdaCallback : public Callback<T> {
 public:
  using Fn = std::function<void(TrainingState<T>&)>;
  Fn train_begin, epoch_begin, batch_begin, batch_end, epoch_end, train_end;
  void on_train_begin(TrainingState<T>& s) override {
    if (train_begin) train_begin(s);
  }
  void on_epoch_begin(TrainingState<T>& s) override {
    if (epoch_begin) epoch_begin(s);
  }
  void on_batch_begin(TrainingState<T>& s) override {
    if (batch_begin) batch_begin(s);
  }
  void on_batch_end(TrainingState<T>& s) override {
    if (batch_end) batch_end(s);
  }
  void on_epoch_end(TrainingState<T>& s) override {
    if (epoch_end) epoch_end(s);
  }
  void on_train_end(TrainingState<T>& s) override {
    if (train_end) train_end(s);
  }
};

/// The quantity early stopping watches.
enum class Monitor { TrainLoss, ValLoss, TrainMetric, ValMetric };
/// "train_loss", "val_loss", "train_metric", "val_metric"; throws otherwise.
Monitor parse_monitor(const std::string& text);
const char* monitor_name(Monitor monitor);

/// Stops when the monitored value has not improved by more than min_delta for
/// `patience` epochs, and (restore_best) puts the best epoch's parameters back at the
/// end of training, whether it stopped early or ran all epochs. Losses improve
/// downwards; metrics in the direction of metric_higher_is_better().
template <class T>
class EarlyStopping : public Callback<T> {
 public:
  explicit EarlyStopping(Monitor monitor = Monitor::ValLoss, std::size_t patience = 10,
                         double min_delta = 0.0, bool restore_best = true);
  void on_train_begin(TrainingState<T>& s) override;
  void on_epoch_end(TrainingState<T>& s) override;
  void on_train_end(TrainingState<T>& s) override;
  std::size_t best_epoch() const { return best_epoch_; }
  double best_value() const { return best_; }

 private:
  Monitor monitor_;
  std::size_t patience_;
  double min_delta_;
  bool restore_best_;
  bool higher_is_better_ = false;
  double best_ = 0;
  std::size_t best_epoch_ = 0;
  std::size_t waited_ = 0;
  ParameterSnapshot<T> best_parameters_;
};

/// Multiplies the learning rate by `factor` each time the monitored value has gone
/// `patience` epochs without improving by more than min_delta, never below min_lr; after
/// a cut it waits `cooldown` epochs (counted whether they improve or not) before counting
/// again. Keras's ReduceLROnPlateau semantics (PyTorch's cuts one epoch later: after
/// more than `patience` bad epochs). A cut that would change the rate by 1e-8 or less is
/// skipped (PyTorch's eps), so the rate never underflows. With a schedule it scales the
/// schedule's rate of every step; without one it lowers the optimiser's rate in place at
/// the cut, so a second fit() starts from the lowered rate (as in Keras). Losses improve
/// downwards; metrics in the direction of metric_higher_is_better().
template <class T>
class ReduceLrOnPlateau : public Callback<T> {
 public:
  explicit ReduceLrOnPlateau(Monitor monitor = Monitor::ValLoss, double factor = 0.1,
                             std::size_t patience = 10, double min_delta = 0.0, double min_lr = 0.0,
                             std::size_t cooldown = 0);
  void on_train_begin(TrainingState<T>& s) override;
  void on_batch_begin(TrainingState<T>& s) override;
  void on_epoch_end(TrainingState<T>& s) override;
  /// The product of the cuts so far this fit (1 until the first).
  double scale() const { return scale_; }
  /// The epochs at whose end the rate was cut.
  const std::vector<std::size_t>& cuts() const { return cuts_; }

 private:
  Monitor monitor_;
  double factor_, min_delta_, min_lr_;
  std::size_t patience_, cooldown_;
  bool higher_is_better_ = false;
  double best_ = 0;
  std::size_t waited_ = 0, cooling_ = 0;
  double scale_ = 1;
  bool scheduled_ = false;  // whether the last step's rate came from a schedule
  std::vector<std::size_t> cuts_;
};

/// The one-line progress display: epoch, batch, running loss, the last epoch's
/// validation figures, samples/s and time left. On a terminal the line is rewritten in
/// place ('\r') every `refresh_seconds`; elsewhere (a log file) a new line is written at
/// the end of an epoch at most every `log_seconds`, and after the last epoch. It stays
/// silent on short runs: nothing is printed before `delay_seconds` have passed.
template <class T>
class ProgressLine : public Callback<T> {
 public:
  /// out = nullptr means std::cerr.
  explicit ProgressLine(std::ostream* out = nullptr, double delay_seconds = 2.0,
                        double refresh_seconds = 0.5, double log_seconds = 10.0);
  void on_train_begin(TrainingState<T>& s) override;
  void on_batch_end(TrainingState<T>& s) override;
  void on_epoch_end(TrainingState<T>& s) override;
  void on_train_end(TrainingState<T>& s) override;

 private:
  void print(const TrainingState<T>& s, bool epoch_done);
  std::ostream* out_;
  double delay_, refresh_, log_;
  bool terminal_ = false;
  bool printed_ = false;
  double last_print_ = 0;
  std::size_t last_width_ = 0;
};

extern template class ParameterSnapshot<float>;
extern template class ParameterSnapshot<double>;
extern template class EarlyStopping<float>;
extern template class EarlyStopping<double>;
extern template class ReduceLrOnPlateau<float>;
extern template class ReduceLrOnPlateau<double>;
extern template class ProgressLine<float>;
extern template class ProgressLine<double>;

}  // namespace xgrad::nn
