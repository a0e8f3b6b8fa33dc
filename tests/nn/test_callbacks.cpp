// Callbacks driven directly, epoch by epoch, on scripted histories: early stopping's
// min_delta, and the monitor names.
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "message_of.hpp"

#include "xgrad/nn/callbacks.hpp"

using xgrad::Matrix;
using xgrad::Parameter;
using namespace xgrad::nn;

namespace {

// A TrainingState over a one-layer network, fed monitored values by hand: each call to
// epoch() appends a record and runs the callback's on_epoch_end, as the trainer does.
struct ScriptedRun {
  std::mt19937_64 rng{1};
  Network<double> net{{1, 1}, {Activation::identity()}, Initialiser::parse("glorot_uniform"), rng};
  std::vector<Parameter<double>> params = net.parameters();
  std::unique_ptr<Optimiser<double>> opt = make_optimiser<double>("sgd", params);
  History history;
  TrainingState<double> state{net, params, *opt, history};

  explicit ScriptedRun(MetricKind metric = MetricKind::None) { history.metric = metric; }

  /// Appends an epoch whose train loss (or, for a metric run, train metric) is v and
  /// returns whether the callback asked to stop.
  bool epoch(Callback<double>& cb, double v) {
    EpochRecord r;
    r.epoch = history.epochs.size() + 1;
    const double nan = std::numeric_limits<double>::quiet_NaN();
    r.train_loss = history.metric == MetricKind::None ? v : 1.0;
    r.train_metric = history.metric == MetricKind::None ? nan : v;
    r.val_loss = r.val_metric = nan;
    history.epochs.push_back(r);
    state.epoch = r.epoch;
    cb.on_epoch_end(state);
    return state.stop_requested;
  }
};

}  // namespace

TEST_CASE("early stopping: a loss must fall by more than min_delta below the best to count") {
  SUBCASE("improvements smaller than min_delta run out the patience") {
    // min_delta = 0.1, patience 2: 0.95 and 0.92 are below the best 1.0, but not by more
    // than 0.1, so they are two epochs without improvement and training stops after epoch 3.
    ScriptedRun run;
    EarlyStopping<double> stop(Monitor::TrainLoss, 2, 0.1, false);
    stop.on_train_begin(run.state);
    CHECK_FALSE(run.epoch(stop, 1.0));
    CHECK_FALSE(run.epoch(stop, 0.95));
    CHECK(run.epoch(stop, 0.92));
    CHECK(run.state.stop == StopReason::EarlyStopping);
    CHECK(run.history.back().event == "early_stop");
    CHECK(stop.best_epoch() == 1);
    CHECK(stop.best_value() == 1.0);
  }
  SUBCASE("an improvement by more than min_delta resets the patience") {
    // 1.0; 0.85 (down 0.15 > 0.1: new best); 0.8 (down 0.05: waits 1); 0.7 (down 0.15 from
    // 0.85: new best, patience reset); 0.65 (waits 1): no stop after five epochs.
    ScriptedRun run;
    EarlyStopping<double> stop(Monitor::TrainLoss, 2, 0.1, false);
    stop.on_train_begin(run.state);
    for (const double v : {1.0, 0.85, 0.8, 0.7, 0.65})
      CHECK_FALSE(run.epoch(stop, v));
    CHECK(stop.best_epoch() == 4);
    CHECK(stop.best_value() == 0.7);
  }
  SUBCASE("with min_delta = 0 any decrease is an improvement") {
    ScriptedRun run;
    EarlyStopping<double> stop(Monitor::TrainLoss, 2, 0.0, false);
    stop.on_train_begin(run.state);
    for (const double v : {1.0, 0.95, 0.92})
      CHECK_FALSE(run.epoch(stop, v));
    CHECK(stop.best_epoch() == 3);
  }
}

TEST_CASE("early stopping: a higher-is-better metric must rise by more than min_delta to count") {
  // R², min_delta = 0.1, patience 2: 0.55 and 0.58 are above the best 0.5 by less than 0.1.
  ScriptedRun run(MetricKind::R2);
  EarlyStopping<double> stop(Monitor::TrainMetric, 2, 0.1, false);
  stop.on_train_begin(run.state);
  CHECK_FALSE(run.epoch(stop, 0.5));
  CHECK_FALSE(run.epoch(stop, 0.55));
  CHECK(run.epoch(stop, 0.58));
  CHECK(stop.best_epoch() == 1);
  CHECK(stop.best_value() == 0.5);

  // 0.5; 0.65 (up 0.15: new best); 0.7 (up 0.05: waits 1); 0.8 (up 0.15: new best): no stop.
  ScriptedRun again(MetricKind::R2);
  EarlyStopping<double> stop2(Monitor::TrainMetric, 2, 0.1, false);
  stop2.on_train_begin(again.state);
  for (const double v : {0.5, 0.65, 0.7, 0.8})
    CHECK_FALSE(again.epoch(stop2, v));
  CHECK(stop2.best_epoch() == 4);
}

TEST_CASE("monitor names: parse_monitor and monitor_name are inverses, unknown names throw") {
  const struct {
    Monitor monitor;
    const char* name;
  } all[] = {{Monitor::TrainLoss, "train_loss"},
             {Monitor::ValLoss, "val_loss"},
             {Monitor::TrainMetric, "train_metric"},
             {Monitor::ValMetric, "val_metric"}};
  for (const auto& m : all) {
    CAPTURE(m.name);
    CHECK(std::string(monitor_name(m.monitor)) == m.name);
    CHECK(parse_monitor(m.name) == m.monitor);
  }
  const std::string msg = message_of([] { parse_monitor("val_accuracy"); });
  CHECK(msg.find("unknown monitor 'val_accuracy'") != std::string::npos);
  CHECK(msg.find("train_loss, val_loss, train_metric or val_metric") != std::string::npos);
  CHECK_THROWS_AS(parse_monitor("loss"), std::invalid_argument);
  CHECK_THROWS_AS(parse_monitor(""), std::invalid_argument);
}
