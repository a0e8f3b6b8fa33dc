// The training loop, evaluation and the non-finite guard.
#include "xgrad/nn/trainer.hpp"

#include <chrono>
#include <cmath>
#include <limits>
#include <sstream>
#include <stdexcept>

#include "wording.hpp"
#include "xgrad/nn/data.hpp"
#include "xgrad/nn/dropout.hpp"
#include "xgrad/ops.hpp"
#include "xgrad/parallel.hpp"

namespace xgrad::nn {

namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

/// The targets a cross-entropy cost can mean: 0/1 labels or probabilities for bce,
/// one-hot or soft (non-negative) rows for cross_entropy. Out of range, the loss is a
/// finite number that measures nothing (labels {0, 1, 2} given to bce, say).
template <class T>
void check_targets(const Matrix<T>& y, CostKind cost, const char* what) {
  if (cost == CostKind::MeanSquaredError) return;
  const bool bce = cost == CostKind::BinaryCrossEntropy;
  const T* d = y.data();
  for (std::size_t k = 0; k < y.size(); ++k) {
    if (d[k] < T(0) || (bce && d[k] > T(1))) {
      std::ostringstream msg;
      msg << what << ": y holds " << d[k] << " at row " << k / y.shape(1) << ", column "
          << k % y.shape(1) << ", but the " << cost_name(cost) << " cost needs "
          << (bce ? "targets in [0, 1] (0/1 labels or probabilities)"
                  : "non-negative targets (one-hot or probability rows)");
      throw std::invalid_argument(msg.str());
    }
  }
}

template <class T>
void check_data(const Network<T>& net, const Matrix<T>& x, const Matrix<T>& y, CostKind cost,
                const char* what) {
  if (x.shape(0) != y.shape(0)) {
    throw std::invalid_argument(std::string(what) + ": x is " + shape_string(x) + " but y is " +
                                shape_string(y) + " (row counts differ)");
  }
  if (x.shape(0) == 0) throw std::invalid_argument(std::string(what) + ": no rows");
  if (x.shape(1) != net.inputs()) {
    throw std::invalid_argument(std::string(what) + ": x is " + shape_string(x) +
                                " but the network takes " +
                                wording::count_of(net.inputs(), "input"));
  }
  if (y.shape(1) != net.outputs()) {
    throw std::invalid_argument(std::string(what) + ": y is " + shape_string(y) +
                                " but the network has " +
                                wording::count_of(net.outputs(), "output"));
  }
  // A NaN or inf in the data would otherwise surface as "the loss became nan at epoch 1",
  // which sends one looking at the learning rate instead of the data.
  for (const auto* m : {&x, &y}) {
    const T* d = m->data();
    for (std::size_t k = 0; k < m->size(); ++k) {
      if (!std::isfinite(d[k])) {
        std::ostringstream msg;
        msg << what << ": " << (m == &x ? "x" : "y") << " holds " << d[k] << " at row "
            << k / m->shape(1) << ", column " << k % m->shape(1)
            << "; remove or replace non-finite values before "
            << (what == std::string("evaluate") ? "evaluating" : "training");
        throw std::invalid_argument(msg.str());
      }
    }
  }
  check_targets(y, cost, what);
}

/// The metric of the targets against themselves (a prediction of their shape) refuses
/// what the metric would refuse after the first epoch, with the parameters already moved:
/// r2 on one row, accuracy on targets that are not labels.
template <class T>
void check_metric_data(MetricKind metric, const Matrix<T>& y, const char* what) {
  try {
    (void)evaluate_metric(metric, y, y);
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(std::string(what) + ": TrainerOptions::metric " +
                                metric_name(metric) + " cannot be computed on these targets (" +
                                e.what() + ")");
  }
}

}  // namespace

void TrainerOptions::validate() const {
  if (epochs == 0) throw std::invalid_argument("trainer: epochs = 0");
  if (eval_batch_size == 0) throw std::invalid_argument("trainer: eval_batch_size = 0");
  if (shards == 0) throw std::invalid_argument("trainer: shards = 0 (1 means no sharding)");
  if (schedule) schedule->validate();
  dropout.validate();
}

template <class T>
Trainer<T>::Trainer(Network<T>& network, Optimiser<T>& optimiser, const CostSpec& cost,
                    const TrainerOptions& options)
    : network_(network),
      optimiser_(optimiser),
      cost_(cost),
      options_(options),
      parameters_(network.parameters()) {
  options_.validate();
  // A cost that does not fit the output layer (cross-entropy on a sigmoid) is named here,
  // not at fit(), where the targets' checks would speak first.
  if (!network_.layers().empty()) check_cost_fits(cost_.cost, network_.layers().back().activation);
  check_regularisation(cost_.regularisation);
  const auto& theirs = optimiser_.parameters();
  bool same = theirs.size() == parameters_.size();
  for (std::size_t i = 0; same && i < theirs.size(); ++i)
    same = theirs[i].same_as(parameters_[i]);
  if (!same) {
    throw std::invalid_argument("trainer: the optimiser updates " + std::to_string(theirs.size()) +
                                " parameters that are not the network's " +
                                std::to_string(parameters_.size()) +
                                " (make it from network.parameters())");
  }
}

template <class T>
double Trainer<T>::sharded_forward_backward(const Matrix<T>& x, const Matrix<T>& y,
                                            const std::vector<std::size_t>& order,
                                            std::size_t begin, std::size_t end, bool full_size,
                                            DropoutMasks<T>* dropout) {
  const std::size_t rows = end - begin;
  const std::size_t parts = std::min(options_.shards, rows);  // no empty shard
  auto run_shard = [&](std::size_t s) {
    Shard* shard = s == 0 ? nullptr : shards_[s - 1].get();
    Tape<T>& tape =
        shard ? (full_size ? shard->tape : shard->tail_tape) : (full_size ? tape_ : tail_tape_);
    DropoutMasks<T>* masks = shard ? (shard->dropout ? &*shard->dropout : nullptr) : dropout;
    const std::size_t b = begin + detail::chunk_edge(rows, s, parts, 1);
    const std::size_t e = begin + detail::chunk_edge(rows, s + 1, parts, 1);
    tape.clear();
    const Tensor<T> X = tape.gather_rows(x, order, b, e);
    const Tensor<T> Y = tape.gather_rows(y, order, b, e);
    // The data costs are means over rows: weighted by the shard's share, they add up to
    // the mean over the minibatch. The penalty is counted once, on shard 0.
    Tensor<T> loss = data_cost(tape, network_, X, Y, cost_.cost, masks) *
                     static_cast<T>(static_cast<double>(e - b) / static_cast<double>(rows));
    if (s == 0 && cost_.regularisation.active())
      loss = add(loss, penalty(tape, network_, cost_.regularisation));
    shard_losses_[s] = static_cast<double>(loss.item());
    tape.backward(loss);
  };
  // Shard 0 adds into the parameters' grad() directly; the others keep theirs on their
  // tapes (set in run()), so the shards never write the same memory.
  parallel_for(
      parts, 1,
      [&](std::size_t first, std::size_t last) {
        for (std::size_t s = first; s < last; ++s)
          run_shard(s);
      },
      1);
  double l = 0;
  for (std::size_t s = 0; s < parts; ++s)
    l += shard_losses_[s];
  if (!std::isfinite(l)) return l;  // the caller restores the parameters and zeroes grad()
  for (std::size_t s = 1; s < parts; ++s) {
    Tape<T>& tape = full_size ? shards_[s - 1]->tape : shards_[s - 1]->tail_tape;
    tape.add_parameter_grads();
  }
  return l;
}

template <class T>
Trainer<T>& Trainer<T>::add_callback(std::shared_ptr<Callback<T>> callback) {
  if (!callback) throw std::invalid_argument("trainer: null callback");
  callbacks_.push_back(std::move(callback));
  return *this;
}

template <class T>
Evaluation Trainer<T>::evaluate(const Matrix<T>& x, const Matrix<T>& y) {
  check_data(network_, x, y, cost_.cost, "evaluate");
  return evaluate_checked(x, y);
}

template <class T>
Evaluation Trainer<T>::evaluate_checked(const Matrix<T>& x, const Matrix<T>& y) {
  const std::size_t n = x.shape(0);
  // 0..N-1 for the largest set seen: a prefix serves any smaller one, so alternating
  // training and validation evaluations do not rebuild it.
  if (eval_rows_.size() < n) eval_rows_ = iota_indices(n);
  NoGradGuard<T> no_grad(eval_tape_);
  // The data costs are means over rows (times a fixed column count), so the batch
  // means weighted by their rows give the mean over the whole set.
  double sum = 0;
  for (std::size_t b = 0; b < n; b += options_.eval_batch_size) {
    const std::size_t e = std::min(n, b + options_.eval_batch_size);
    eval_tape_.clear();
    const Tensor<T> X = eval_tape_.gather_rows(x, eval_rows_, b, e);
    const Tensor<T> Y = eval_tape_.gather_rows(y, eval_rows_, b, e);
    sum += static_cast<double>(data_cost(eval_tape_, network_, X, Y, cost_.cost).item()) *
           static_cast<double>(e - b);
  }
  Evaluation ev;
  ev.loss = sum / static_cast<double>(n);
  if (cost_.regularisation.active()) {
    eval_tape_.clear();
    ev.loss += static_cast<double>(penalty(eval_tape_, network_, cost_.regularisation).item());
  }
  eval_tape_.clear();
  // A non-finite loss has no metric either (accuracy has no class for a NaN output): the
  // caller's non-finite check then stops training, without an exception.
  ev.metric =
      options_.metric == MetricKind::None || !std::isfinite(ev.loss)
          ? kNaN
          : evaluate_metric(options_.metric, network_.predict(x, options_.eval_batch_size), y);
  return ev;
}

template <class T>
const History& Trainer<T>::fit(const Matrix<T>& x, const Matrix<T>& y) {
  return run(x, y, nullptr, nullptr);
}

template <class T>
const History& Trainer<T>::fit(const Matrix<T>& x, const Matrix<T>& y, const Matrix<T>& x_val,
                               const Matrix<T>& y_val) {
  return run(x, y, &x_val, &y_val);
}

template <class T>
const History& Trainer<T>::run(const Matrix<T>& x, const Matrix<T>& y, const Matrix<T>* x_val,
                               const Matrix<T>* y_val) {
  check_data(network_, x, y, cost_.cost, "fit");
  if (x_val) check_data(network_, *x_val, *y_val, cost_.cost, "fit (validation data)");
  if (options_.evaluate_train) check_metric_data(options_.metric, y, "fit");
  if (x_val) check_metric_data(options_.metric, *y_val, "fit (validation data)");
  const std::size_t n = x.shape(0);
  const bool full_batch = optimiser_.full_batch() || options_.batch_size == 0;
  BatchSampler sampler(n, full_batch ? 0 : options_.batch_size, options_.shuffle && !full_batch,
                       options_.seed);
  const std::size_t m = sampler.batches();
  std::optional<DropoutMasks<T>> dropout;
  const std::uint64_t dropout_seed =
      options_.dropout_seed.value_or(options_.seed ^ 0xd1b54a32d192ed03ull);
  if (options_.dropout.active()) dropout.emplace(options_.dropout, dropout_seed);
  shards_.clear();
  shard_losses_.assign(options_.shards, 0.0);
  for (std::size_t s = 1; s < options_.shards; ++s) {
    auto shard = std::make_unique<Shard>();
    shard->tape.set_parameter_grads_on_tape(true);
    shard->tail_tape.set_parameter_grads_on_tape(true);
    // Shard s's own stream: the seeds of neighbouring shards differ by the golden-ratio
    // constant, so their mt19937_64 states have nothing in common.
    if (dropout) shard->dropout.emplace(options_.dropout, dropout_seed + s * 0x9e3779b97f4a7c15ull);
    shards_.push_back(std::move(shard));
  }

  std::vector<std::shared_ptr<Callback<T>>> callbacks = callbacks_;
  if (options_.progress) callbacks.push_back(std::make_shared<ProgressLine<T>>());

  history_ = History{};
  history_.metric = options_.metric;
  TrainingState<T> state{network_, parameters_, optimiser_, history_};
  state.epochs = options_.epochs;
  state.batches = m;
  state.rows = n;
  state.has_validation = x_val != nullptr;
  state.evaluates_train = options_.evaluate_train;

  // The last parameters known to be finite with a finite loss: restored on divergence.
  ParameterSnapshot<T> last_good;
  last_good.save(parameters_);
  std::size_t last_good_epoch = 0;
  auto diverge = [&](EpochRecord& r, const std::string& what) {
    last_good.restore(parameters_);
    optimiser_.reset_state();  // its moments hold the non-finite values
    optimiser_.zero_grad();
    std::ostringstream msg;
    msg << "training stopped: " << what << "; parameters restored to "
        << (last_good_epoch == 0 ? std::string("the initial ones")
                                 : "the end of epoch " + std::to_string(last_good_epoch));
    history_.restored_epoch = static_cast<long>(last_good_epoch);
    r.event = "non_finite restored_epoch=" + std::to_string(last_good_epoch);
    state.request_stop(StopReason::NonFinite, msg.str());
  };

  const Clock::time_point start = Clock::now();
  double train_seconds = 0;
  optimiser_.zero_grad();
  for (auto& cb : callbacks)
    cb->on_train_begin(state);

  for (std::size_t e = 0; e < options_.epochs && !state.stop_requested; ++e) {
    state.epoch = e + 1;
    state.batch = 0;
    state.samples_in_epoch = 0;
    state.batch_loss = 0;
    state.running_loss = 0;
    for (auto& cb : callbacks)
      cb->on_epoch_begin(state);
    if (state.stop_requested) break;  // asked before this epoch's first step: none is taken
    sampler.new_epoch();
    const Clock::time_point epoch_start = Clock::now();
    EpochRecord r;
    r.epoch = e + 1;
    r.train_metric = r.val_loss = r.val_metric = kNaN;
    double loss_sum = 0;
    std::size_t seen = 0;
    bool diverged = false;
    for (std::size_t b = 0; b < m; ++b) {
      const auto [begin, end] = sampler.batch(b);
      if (options_.schedule) {
        state.scheduled_rate = (*options_.schedule)(e, b, m);
        optimiser_.set_learning_rate(state.scheduled_rate);
      }
      state.batch = b;
      for (auto& cb : callbacks)
        cb->on_batch_begin(state);
      if (b == 0) r.learning_rate = optimiser_.learning_rate();
      const bool full_size = end - begin == sampler.batch_size();
      std::optional<Tensor<T>> loss;  // shards = 1: backward after the finite check
      double l = 0;
      if (options_.shards > 1) {
        l = sharded_forward_backward(x, y, sampler.order(), begin, end, full_size,
                                     dropout ? &*dropout : nullptr);
      } else {
        Tape<T>& tape = full_size ? tape_ : tail_tape_;
        tape.clear();
        const Tensor<T> X = tape.gather_rows(x, sampler.order(), begin, end);
        const Tensor<T> Y = tape.gather_rows(y, sampler.order(), begin, end);
        loss = objective(tape, network_, X, Y, cost_, dropout ? &*dropout : nullptr);
        l = static_cast<double>(loss->item());
      }
      if (!std::isfinite(l)) {
        r.train_loss = l;
        std::ostringstream what;
        what << "the loss became " << l << " at epoch " << (e + 1) << ", step " << (b + 1) << " of "
             << m;
        diverge(r, what.str());
        diverged = true;
        break;
      }
      if (loss) loss->tape().backward(*loss);
      optimiser_.step_and_zero_grad();
      loss_sum += l * static_cast<double>(end - begin);
      seen += end - begin;
      state.batch_loss = l;
      state.samples_in_epoch = seen;
      state.running_loss = loss_sum / static_cast<double>(seen);
      state.seconds = since(start);
      state.train_seconds = train_seconds + since(epoch_start);
      for (auto& cb : callbacks)
        cb->on_batch_end(state);
      if (state.stop_requested) break;
    }
    const double epoch_train_seconds = since(epoch_start);
    train_seconds += epoch_train_seconds;
    r.samples_per_second =
        epoch_train_seconds > 0 ? static_cast<double>(seen) / epoch_train_seconds : kNaN;
    if (!diverged) {
      r.train_loss = seen > 0 ? loss_sum / static_cast<double>(seen) : kNaN;
      if (options_.evaluate_train) {
        const Evaluation ev = evaluate_checked(x, y);
        r.train_loss = ev.loss;
        r.train_metric = ev.metric;
      }
      if (x_val) {
        const Evaluation ev = evaluate_checked(*x_val, *y_val);
        r.val_loss = ev.loss;
        r.val_metric = ev.metric;
      }
      // The last step's update may have overflowed without a loss showing it yet.
      const bool finite = all_finite(parameters_) && std::isfinite(r.train_loss) &&
                          (!x_val || std::isfinite(r.val_loss));
      if (!finite) {
        std::ostringstream what;
        what << "non-finite " << (all_finite(parameters_) ? "loss" : "parameters")
             << " at the end of epoch " << (e + 1) << " (train loss " << r.train_loss;
        if (x_val) what << ", validation loss " << r.val_loss;
        what << ")";
        diverge(r, what.str());
        diverged = true;
      } else {
        last_good.save(parameters_);
        last_good_epoch = e + 1;
      }
    }
    r.seconds = since(epoch_start);
    history_.epochs.push_back(r);
    state.seconds = since(start);
    state.train_seconds = train_seconds;
    // A diverged epoch gets no on_epoch_end: there is nothing valid to act on.
    if (!diverged) {
      for (auto& cb : callbacks)
        cb->on_epoch_end(state);
    }
  }

  if (state.stop_requested) {
    history_.stop = state.stop;
    history_.message = state.stop_message;
    // A stop asked in on_train_begin (or the first on_epoch_begin) leaves no epoch.
    if (!history_.epochs.empty() && history_.epochs.back().event.empty()) {
      history_.epochs.back().event = stop_reason_name(state.stop);
    }
  } else {
    history_.stop = StopReason::Completed;
    history_.message = "completed " + std::to_string(options_.epochs) + " epochs";
  }
  state.seconds = since(start);
  for (auto& cb : callbacks)
    cb->on_train_end(state);
  return history_;
}

template class Trainer<float>;
template class Trainer<double>;

}  // namespace xgrad::nn
