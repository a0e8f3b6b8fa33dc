// Parameter snapshots, early stopping, reduce-on-plateau and the progress line.
#include "xgrad/nn/callbacks.hpp"

#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <iomanip>
#include <iostream>
#include <limits>
#include <sstream>
#include <stdexcept>

namespace xgrad::nn {

// ---------------------------------------------------------------- snapshots
template <class T>
void ParameterSnapshot<T>::save(const std::vector<Parameter<T>>& parameters) {
  values_.resize(parameters.size());
  for (std::size_t i = 0; i < parameters.size(); ++i) {
    const Matrix<T>& v = parameters[i].value();
    if (values_[i].dimension() != 2 || values_[i].shape() != v.shape()) {
      values_[i] = v;  // first save (or a new shape): allocates
    } else {
      std::copy(v.data(), v.data() + v.size(), values_[i].data());
    }
  }
}

template <class T>
void ParameterSnapshot<T>::restore(std::vector<Parameter<T>>& parameters) const {
  if (values_.empty()) throw std::logic_error("ParameterSnapshot::restore: nothing saved");
  if (values_.size() != parameters.size()) {
    throw std::logic_error("ParameterSnapshot::restore: saved " + std::to_string(values_.size()) +
                           " parameters, asked to restore " + std::to_string(parameters.size()));
  }
  for (std::size_t i = 0; i < parameters.size(); ++i) {
    Matrix<T>& v = parameters[i].value();
    if (v.shape() != values_[i].shape()) {
      throw std::logic_error("ParameterSnapshot::restore: parameter #" + std::to_string(i) +
                             " is " + shape_string(v) + ", saved " + shape_string(values_[i]));
    }
    std::copy(values_[i].data(), values_[i].data() + v.size(), v.data());
  }
}

template <class T>
bool all_finite(const std::vector<Parameter<T>>& parameters) {
  for (const Parameter<T>& p : parameters) {
    const T* v = p.value().data();
    // |v| <= max is false exactly for NaN and ±Inf. OR-ing the integer results
    // vectorises; a floating-point sum (v·0 summed) would not: without -ffast-math the
    // compiler keeps its order, one dependent add per element.
    std::uint32_t bad = 0;
    const std::size_t size = p.size();  // hoisted: a call in the condition stops vectorising
    for (std::size_t i = 0; i < size; ++i)
      bad |= static_cast<std::uint32_t>(!(std::abs(v[i]) <= std::numeric_limits<T>::max()));
    if (bad != 0) return false;
  }
  return true;
}

// ---------------------------------------------------------------- early stopping
Monitor parse_monitor(const std::string& text) {
  if (text == "train_loss") return Monitor::TrainLoss;
  if (text == "val_loss") return Monitor::ValLoss;
  if (text == "train_metric") return Monitor::TrainMetric;
  if (text == "val_metric") return Monitor::ValMetric;
  throw std::invalid_argument("early stopping: unknown monitor '" + text +
                              "' (expected train_loss, val_loss, train_metric or val_metric)");
}

const char* monitor_name(Monitor monitor) {
  switch (monitor) {
    case Monitor::TrainLoss:
      return "train_loss";
    case Monitor::ValLoss:
      return "val_loss";
    case Monitor::TrainMetric:
      return "train_metric";
    case Monitor::ValMetric:
      return "val_metric";
  }
  return "?";
}

namespace {
double monitored(Monitor m, const EpochRecord& r) {
  switch (m) {
    case Monitor::TrainLoss:
      return r.train_loss;
    case Monitor::ValLoss:
      return r.val_loss;
    case Monitor::TrainMetric:
      return r.train_metric;
    case Monitor::ValMetric:
      return r.val_metric;
  }
  return std::numeric_limits<double>::quiet_NaN();
}
}  // namespace

template <class T>
EarlyStopping<T>::EarlyStopping(Monitor monitor, std::size_t patience, double min_delta,
                                bool restore_best)
    : monitor_(monitor), patience_(patience), min_delta_(min_delta), restore_best_(restore_best) {
  if (patience == 0) throw std::invalid_argument("early stopping: patience 0 epochs");
  if (!(min_delta >= 0.0)) {
    std::ostringstream msg;
    msg << "early stopping: min_delta = " << min_delta << " must be >= 0";
    throw std::invalid_argument(msg.str());
  }
}

namespace {
/// Refuses a monitor the run cannot provide (naming `who`); returns whether higher
/// values of it are better.
template <class T>
bool check_monitor(Monitor monitor, const TrainingState<T>& s, const char* who) {
  const bool is_metric = monitor == Monitor::TrainMetric || monitor == Monitor::ValMetric;
  if (is_metric && s.history.metric == MetricKind::None) {
    throw std::invalid_argument(std::string(who) + " on " + monitor_name(monitor) +
                                ", but the trainer computes no metric");
  }
  if ((monitor == Monitor::ValLoss || monitor == Monitor::ValMetric) && !s.has_validation) {
    throw std::invalid_argument(std::string(who) + " on " + monitor_name(monitor) +
                                ", but fit() got no validation data");
  }
  if (monitor == Monitor::TrainMetric && !s.evaluates_train) {
    throw std::invalid_argument(std::string(who) +
                                " on train_metric needs TrainerOptions::evaluate_train");
  }
  return is_metric && metric_higher_is_better(s.history.metric);
}

/// The best value before any epoch: the worst possible one.
double worst_value(bool higher_is_better) {
  return higher_is_better ? -std::numeric_limits<double>::infinity()
                          : std::numeric_limits<double>::infinity();
}

/// Whether v beats `best` by more than min_delta.
bool improves(double v, double best, double min_delta, bool higher_is_better) {
  return higher_is_better ? v > best + min_delta : v < best - min_delta;
}
}  // namespace

template <class T>
void EarlyStopping<T>::on_train_begin(TrainingState<T>& s) {
  higher_is_better_ = check_monitor(monitor_, s, "early stopping");
  best_ = worst_value(higher_is_better_);
  best_epoch_ = 0;
  waited_ = 0;
  best_parameters_.save(s.parameters);  // epoch 0: the initial parameters
}

template <class T>
void EarlyStopping<T>::on_epoch_end(TrainingState<T>& s) {
  const double v = monitored(monitor_, s.history.back());
  if (std::isnan(v)) return;
  if (improves(v, best_, min_delta_, higher_is_better_)) {
    best_ = v;
    best_epoch_ = s.epoch;
    waited_ = 0;
    if (restore_best_) best_parameters_.save(s.parameters);
    return;
  }
  if (++waited_ >= patience_) {
    std::ostringstream msg;
    msg << "early stopping: " << monitor_name(monitor_) << " did not improve for " << waited_
        << " epochs (best " << best_ << " at epoch " << best_epoch_ << ")";
    s.request_stop(StopReason::EarlyStopping, msg.str());
    std::string& event = s.history.epochs.back().event;  // keep what others noted
    event += event.empty() ? "early_stop" : " early_stop";
  }
}

template <class T>
void EarlyStopping<T>::on_train_end(TrainingState<T>& s) {
  // A run that diverged already restored its last good parameters; the best epoch's
  // are at least as good, so restoring them is right in every case.
  if (!restore_best_ || s.history.epochs.empty()) return;
  if (best_epoch_ == 0 && std::isinf(best_)) return;  // no epoch produced a value
  best_parameters_.restore(s.parameters);
  s.history.restored_epoch = static_cast<long>(best_epoch_);
  std::string& event = s.history.epochs.back().event;
  // A diverged run already noted its own restore; replace that with the final one.
  const auto at = event.find(" restored_epoch=");
  if (at != std::string::npos) event.erase(at);
  event +=
      (event.empty() ? "" : " ") + std::string("restored_epoch=") + std::to_string(best_epoch_);
  // Said in the message too: "completed 400 epochs" alone hid that the network is now
  // epoch 399's. A diverged run's own restore clause gives way to this final one.
  std::string& message = s.history.message;
  const auto clause = message.find("; parameters restored to ");
  if (clause != std::string::npos) message.erase(clause);
  message += "; parameters restored to the best epoch, " + std::to_string(best_epoch_);
}

// ---------------------------------------------------------------- reduce on plateau
template <class T>
ReduceLrOnPlateau<T>::ReduceLrOnPlateau(Monitor monitor, double factor, std::size_t patience,
                                        double min_delta, double min_lr, std::size_t cooldown)
    : monitor_(monitor),
      factor_(factor),
      min_delta_(min_delta),
      min_lr_(min_lr),
      patience_(patience),
      cooldown_(cooldown) {
  std::ostringstream msg;
  if (!(factor > 0.0 && factor < 1.0)) {
    msg << "reduce on plateau: factor = " << factor << " must be in (0, 1)";
  } else if (patience == 0) {
    msg << "reduce on plateau: patience 0 epochs";
  } else if (!(min_delta >= 0.0) || !std::isfinite(min_delta)) {
    msg << "reduce on plateau: min_delta = " << min_delta << " must be finite and >= 0";
  } else if (!(min_lr >= 0.0) || !std::isfinite(min_lr)) {
    msg << "reduce on plateau: min_lr = " << min_lr << " must be finite and >= 0";
  }
  if (!msg.str().empty()) throw std::invalid_argument(msg.str());
}

template <class T>
void ReduceLrOnPlateau<T>::on_train_begin(TrainingState<T>& s) {
  higher_is_better_ = check_monitor(monitor_, s, "reduce on plateau");
  best_ = worst_value(higher_is_better_);
  waited_ = cooling_ = 0;
  scale_ = 1;
  scheduled_ = false;
  cuts_.clear();
}

namespace {
/// The rate after a cut: base·factor, but not below min_lr unless base already is.
double cut_rate(double base, double factor, double min_lr) {
  return std::max(base * factor, std::min(base, min_lr));
}
}  // namespace

template <class T>
void ReduceLrOnPlateau<T>::on_batch_begin(TrainingState<T>& s) {
  scheduled_ = !std::isnan(s.scheduled_rate);
  // Without a schedule the cut was made in place at the epoch's end.
  if (!scheduled_ || scale_ == 1) return;
  s.optimiser.set_learning_rate(cut_rate(s.scheduled_rate, scale_, min_lr_));
}

template <class T>
void ReduceLrOnPlateau<T>::on_epoch_end(TrainingState<T>& s) {
  const double v = monitored(monitor_, s.history.back());
  if (std::isnan(v)) return;
  if (cooling_ > 0) {  // every epoch of the cooldown counts, improving or not
    --cooling_;
    waited_ = 0;
  }
  if (improves(v, best_, min_delta_, higher_is_better_)) {
    best_ = v;
    waited_ = 0;
    return;
  }
  if (cooling_ > 0 || ++waited_ < patience_) return;
  waited_ = 0;
  const double now = s.optimiser.learning_rate();  // the last step's rate
  const double next = cut_rate(now, factor_, min_lr_);
  if (!(now - next > 1e-8)) return;  // at min_lr, or too small a change to matter
  if (!scheduled_) s.optimiser.set_learning_rate(next);
  scale_ *= factor_;
  cooling_ = cooldown_;
  cuts_.push_back(s.epoch);
  std::string& event = s.history.epochs.back().event;
  std::ostringstream note;
  note << "lr=" << next;
  event += (event.empty() ? "" : " ") + note.str();
}

// ---------------------------------------------------------------- progress line
template <class T>
ProgressLine<T>::ProgressLine(std::ostream* out, double delay_seconds, double refresh_seconds,
                              double log_seconds)
    : out_(out ? out : &std::cerr),
      delay_(delay_seconds),
      refresh_(refresh_seconds),
      log_(log_seconds) {}

template <class T>
void ProgressLine<T>::on_train_begin(TrainingState<T>&) {
  // Rewrite in place only on a terminal; a log file gets one line per epoch instead.
  terminal_ = (out_ == &std::cerr && ::isatty(2)) || (out_ == &std::cout && ::isatty(1));
  printed_ = false;
  last_print_ = 0;
  last_width_ = 0;
}

namespace {
std::string clock_text(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "--:--";
  const long s = std::lround(seconds);
  char buf[32];
  if (s >= 3600) {
    std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", s / 3600, (s / 60) % 60, s % 60);
  } else {
    std::snprintf(buf, sizeof buf, "%02ld:%02ld", s / 60, s % 60);
  }
  return buf;
}
}  // namespace

template <class T>
void ProgressLine<T>::print(const TrainingState<T>& s, bool epoch_done) {
  std::ostringstream line;
  line << "epoch " << s.epoch << '/' << s.epochs;
  if (!epoch_done) line << "  batch " << (s.batch + 1) << '/' << s.batches;
  line << std::setprecision(4) << "  loss " << s.running_loss;
  if (!s.history.epochs.empty()) {
    const EpochRecord& r = s.history.back();
    const char* m = metric_name(s.history.metric);
    if (!std::isnan(r.train_metric)) line << "  " << m << ' ' << r.train_metric;
    if (!std::isnan(r.val_loss)) line << "  val_loss " << r.val_loss;
    if (!std::isnan(r.val_metric)) line << "  val_" << m << ' ' << r.val_metric;
  }
  const double done = static_cast<double>((s.epoch - 1) * s.rows + s.samples_in_epoch);
  const double total = static_cast<double>(s.epochs * s.rows);
  const double rate = s.train_seconds > 0 ? done / s.train_seconds : 0;
  line << "  " << std::setprecision(0) << std::fixed << rate << " samples/s";
  // Time left from the overall rate, evaluation time included.
  const double left = done > 0 ? s.seconds / done * (total - done) : -1;
  line << "  left " << clock_text(left);
  std::string text = line.str();
  if (terminal_) {
    const std::size_t width = text.size();
    if (width < last_width_) text.append(last_width_ - width, ' ');  // erase the old tail
    last_width_ = width;
    *out_ << '\r' << text << std::flush;
  } else {
    *out_ << text << '\n' << std::flush;
  }
  printed_ = true;
  last_print_ = s.seconds;
}

template <class T>
void ProgressLine<T>::on_batch_end(TrainingState<T>& s) {
  if (!terminal_ || s.seconds < delay_ || s.seconds - last_print_ < refresh_) return;
  print(s, false);
}

template <class T>
void ProgressLine<T>::on_epoch_end(TrainingState<T>& s) {
  if (s.seconds < delay_) return;
  // A log file gets a line per log_ seconds, not one per epoch: a 3000-epoch Runge run
  // would otherwise write 3000 lines. The last epoch is always shown.
  const bool last = s.epoch == s.epochs || s.stop_requested;
  const double interval = terminal_ ? refresh_ : log_;
  if (!last && printed_ && s.seconds - last_print_ < interval) return;
  print(s, true);
}

template <class T>
void ProgressLine<T>::on_train_end(TrainingState<T>& s) {
  if (!printed_) return;
  if (terminal_) *out_ << '\n';
  if (s.history.stop != StopReason::Completed) *out_ << s.history.message << '\n';
  *out_ << std::flush;
}

template class ParameterSnapshot<float>;
template class ParameterSnapshot<double>;
template bool all_finite(const std::vector<Parameter<float>>&);
template bool all_finite(const std::vector<Parameter<double>>&);
template class EarlyStopping<float>;
template class EarlyStopping<double>;
template class ReduceLrOnPlateau<float>;
template class ReduceLrOnPlateau<double>;
template class ProgressLine<float>;
template class ProgressLine<double>;

}  // namespace xgrad::nn
