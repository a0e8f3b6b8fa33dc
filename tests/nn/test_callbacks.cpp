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

TEST_CASE("reduce on plateau: patience epochs without improvement cut the rate by factor") {
  // patience 2, factor 0.5: epoch 1 sets the best (1.0); epochs 2 and 3 do not beat it,
  // so the rate is halved at the end of epoch 3.
  ScriptedRun run;
  ReduceLrOnPlateau<double> plateau(Monitor::TrainLoss, 0.5, 2);
  plateau.on_train_begin(run.state);
  run.opt->set_learning_rate(0.1);
  plateau.on_batch_begin(run.state);
  CHECK(run.opt->learning_rate() == 0.1);  // no cut yet: the rate is left alone
  for (const double v : {1.0, 1.0, 1.0})
    CHECK_FALSE(run.epoch(plateau, v));  // it never stops training
  CHECK(plateau.cuts() == std::vector<std::size_t>{3});
  CHECK(plateau.scale() == 0.5);
  CHECK(run.history.back().event == "lr_scale=0.5");
  // Without a schedule the optimiser keeps the rate set last: it is not halved again.
  plateau.on_batch_begin(run.state);
  CHECK(run.opt->learning_rate() == 0.05);
  plateau.on_batch_begin(run.state);
  CHECK(run.opt->learning_rate() == 0.05);
  // A schedule's fresh rate is scaled in turn.
  run.opt->set_learning_rate(0.08);
  plateau.on_batch_begin(run.state);
  CHECK(run.opt->learning_rate() == 0.04);
  // An improvement resets the count: 0.9 is a new best, then two more epochs to a cut.
  CHECK_FALSE(run.epoch(plateau, 0.9));
  CHECK_FALSE(run.epoch(plateau, 0.95));
  CHECK(plateau.cuts().size() == 1);
  CHECK_FALSE(run.epoch(plateau, 0.95));
  CHECK(plateau.cuts() == std::vector<std::size_t>{3, 6});
  CHECK(plateau.scale() == 0.25);
}

TEST_CASE("reduce on plateau: min_lr is a floor below the schedule, cooldown delays the count") {
  ScriptedRun run;
  // factor 0.1, patience 1, min_lr 0.02, cooldown 2.
  ReduceLrOnPlateau<double> plateau(Monitor::TrainLoss, 0.1, 1, 0.0, 0.02, 2);
  plateau.on_train_begin(run.state);
  CHECK_FALSE(run.epoch(plateau, 1.0));  // best
  CHECK_FALSE(run.epoch(plateau, 1.0));  // cut at epoch 2
  run.opt->set_learning_rate(0.1);
  plateau.on_batch_begin(run.state);
  CHECK(run.opt->learning_rate() == 0.02);  // 0.01 would be below min_lr
  run.opt->set_learning_rate(0.01);         // a schedule already below min_lr is not raised
  plateau.on_batch_begin(run.state);
  CHECK(run.opt->learning_rate() == 0.01);
  CHECK_FALSE(run.epoch(plateau, 1.0));  // cooldown 2 -> 1
  CHECK_FALSE(run.epoch(plateau, 1.0));  // cooldown 1 -> 0
  CHECK(plateau.cuts() == std::vector<std::size_t>{2});
  CHECK_FALSE(run.epoch(plateau, 1.0));  // counts again: cut at epoch 5
  CHECK(plateau.cuts() == std::vector<std::size_t>{2, 5});
  CHECK(plateau.scale() == doctest::Approx(0.01).epsilon(1e-15));
}

TEST_CASE("reduce on plateau: a higher-is-better metric must rise to count") {
  ScriptedRun run(MetricKind::R2);
  ReduceLrOnPlateau<double> plateau(Monitor::TrainMetric, 0.5, 1);
  plateau.on_train_begin(run.state);
  CHECK_FALSE(run.epoch(plateau, 0.5));
  CHECK_FALSE(run.epoch(plateau, 0.6));  // better: no cut
  CHECK(plateau.cuts().empty());
  CHECK_FALSE(run.epoch(plateau, 0.55));  // worse: cut
  CHECK(plateau.cuts() == std::vector<std::size_t>{3});
}

TEST_CASE("reduce on plateau: bad settings and monitors the run lacks are refused") {
  CHECK(message_of([] { ReduceLrOnPlateau<double>(Monitor::TrainLoss, 1.0); }) ==
        "reduce on plateau: factor = 1 must be in (0, 1)");
  CHECK(message_of([] { ReduceLrOnPlateau<double>(Monitor::TrainLoss, 0.5, 0); }) ==
        "reduce on plateau: patience 0 epochs");
  CHECK(message_of([] { ReduceLrOnPlateau<double>(Monitor::TrainLoss, 0.5, 2, -1e-9); }) ==
        "reduce on plateau: min_delta = -1e-09 must be finite and >= 0");
  CHECK(message_of([] { ReduceLrOnPlateau<double>(Monitor::TrainLoss, 0.5, 2, 0.0, -1.0); }) ==
        "reduce on plateau: min_lr = -1 must be finite and >= 0");
  ScriptedRun run;
  ReduceLrOnPlateau<double> on_val(Monitor::ValLoss);
  CHECK(message_of([&] { on_val.on_train_begin(run.state); }) ==
        "reduce on plateau on val_loss, but fit() got no validation data");
  ReduceLrOnPlateau<double> on_metric(Monitor::TrainMetric);
  CHECK(message_of([&] { on_metric.on_train_begin(run.state); }) ==
        "reduce on plateau on train_metric, but the trainer computes no metric");
}
