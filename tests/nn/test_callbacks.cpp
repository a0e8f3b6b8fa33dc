// Callbacks driven directly, epoch by epoch, on scripted histories: early stopping's
// min_delta and restore_best, reduce on plateau's wait, and the monitor names.
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

  explicit ScriptedRun(MetricKind metric = MetricKind::None) {
    history.metric = metric;
    state.evaluates_train = metric != MetricKind::None;  // the train metric is scripted
  }

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

TEST_CASE("early stopping without restore_best leaves the final parameters in place") {
  // patience 1: epoch 1 is the best, epoch 2 is worse and stops. The parameters changed
  // after the best epoch must survive on_train_end, and no restore is recorded.
  ScriptedRun run;
  EarlyStopping<double> stop(Monitor::TrainLoss, 1, 0.0, false);
  stop.on_train_begin(run.state);
  CHECK_FALSE(run.epoch(stop, 1.0));
  run.params[0].value()(0, 0) = 42.0;
  CHECK(run.epoch(stop, 2.0));
  stop.on_train_end(run.state);
  CHECK(run.params[0].value()(0, 0) == 42.0);
  CHECK(run.history.restored_epoch < 0);
  CHECK(run.history.back().event == "early_stop");
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
  // No schedule: patience 2, factor 0.5. Epoch 1 sets the best (1.0); epochs 2 and 3 do
  // not beat it, so the optimiser's rate is halved in place at the end of epoch 3.
  ScriptedRun run;
  ReduceLrOnPlateau<double> plateau(Monitor::TrainLoss, 0.5, 2);
  plateau.on_train_begin(run.state);
  run.opt->set_learning_rate(0.1);
  plateau.on_batch_begin(run.state);
  CHECK(run.opt->learning_rate() == 0.1);
  for (const double v : {1.0, 1.0})
    CHECK_FALSE(run.epoch(plateau, v));
  CHECK(run.opt->learning_rate() == 0.1);
  CHECK_FALSE(run.epoch(plateau, 1.0));  // it never stops training
  CHECK(plateau.cuts() == std::vector<std::size_t>{3});
  CHECK(plateau.scale() == 0.5);
  CHECK(run.opt->learning_rate() == 0.05);
  CHECK(run.history.back().event == "lr=0.05");
  // Steps do not cut it again: the cut is made once.
  plateau.on_batch_begin(run.state);
  plateau.on_batch_begin(run.state);
  CHECK(run.opt->learning_rate() == 0.05);
  // An improvement resets the count: 0.9 is a new best, then two more epochs to a cut.
  CHECK_FALSE(run.epoch(plateau, 0.9));
  CHECK_FALSE(run.epoch(plateau, 0.95));
  CHECK(plateau.cuts().size() == 1);
  CHECK_FALSE(run.epoch(plateau, 0.95));
  CHECK(plateau.cuts() == std::vector<std::size_t>{3, 6});
  CHECK(run.opt->learning_rate() == 0.025);
}

TEST_CASE("reduce on plateau: an improvement and a cut each restart the wait") {
  SUBCASE("an improvement before the patience runs out") {
    // patience 2: 1.0 is the best; 1.0 waits 1; 0.9 is a new best (wait 0); 0.95 waits 1,
    // and only the second 0.95 (wait 2) cuts, at epoch 5 rather than 4.
    ScriptedRun run;
    ReduceLrOnPlateau<double> plateau(Monitor::TrainLoss, 0.5, 2);
    plateau.on_train_begin(run.state);
    for (const double v : {1.0, 1.0, 0.9, 0.95})
      CHECK_FALSE(run.epoch(plateau, v));
    CHECK(plateau.cuts().empty());
    CHECK_FALSE(run.epoch(plateau, 0.95));
    CHECK(plateau.cuts() == std::vector<std::size_t>{5});
  }
  SUBCASE("a cut with cooldown 0") {
    // patience 2 on a flat loss: the best at 1, a cut at 3, then 2 more waits each time
    // (Keras resets wait to 0 on a cut): 3, 5, 7, not a cut every epoch after 3.
    ScriptedRun run;
    ReduceLrOnPlateau<double> plateau(Monitor::TrainLoss, 0.5, 2);
    plateau.on_train_begin(run.state);
    for (int e = 0; e < 7; ++e)
      CHECK_FALSE(run.epoch(plateau, 1.0));
    CHECK(plateau.cuts() == std::vector<std::size_t>{3, 5, 7});
  }
}

TEST_CASE("reduce on plateau: a second fit starts again at scale 1 with no cuts") {
  // One callback object added to a trainer that fits twice: the first fit's cut must not
  // scale the second fit's scheduled rates.
  ScriptedRun run;
  ReduceLrOnPlateau<double> plateau(Monitor::TrainLoss, 0.5, 1);
  plateau.on_train_begin(run.state);
  run.epoch(plateau, 1.0);
  run.epoch(plateau, 1.0);
  REQUIRE(plateau.cuts() == std::vector<std::size_t>{2});
  ScriptedRun again;
  plateau.on_train_begin(again.state);
  CHECK(plateau.scale() == 1.0);
  CHECK(plateau.cuts().empty());
  again.state.scheduled_rate = 0.1;
  again.opt->set_learning_rate(0.1);
  plateau.on_batch_begin(again.state);
  CHECK(again.opt->learning_rate() == 0.1);
}

TEST_CASE("reduce on plateau: with a schedule, every step's scheduled rate is scaled") {
  ScriptedRun run;
  ReduceLrOnPlateau<double> plateau(Monitor::TrainLoss, 0.5, 1, 0.0, 0.02);
  plateau.on_train_begin(run.state);
  const auto step = [&](double scheduled) {  // what the trainer does before each step
    run.state.scheduled_rate = scheduled;
    run.opt->set_learning_rate(scheduled);
    plateau.on_batch_begin(run.state);
    return run.opt->learning_rate();
  };
  CHECK(step(0.1) == 0.1);
  CHECK_FALSE(run.epoch(plateau, 1.0));
  CHECK_FALSE(run.epoch(plateau, 1.0));  // cut: scale 0.5
  CHECK(step(0.1) == 0.05);
  // A schedule dropping to exactly the cut rate is still scaled (no guessing from values).
  CHECK(step(0.05) == 0.025);
  // min_lr floors the scaled rate, but never raises a scheduled rate already below it.
  CHECK(step(0.03) == 0.02);
  CHECK(step(0.01) == 0.01);
}

TEST_CASE("reduce on plateau: cooldown epochs count whether they improve or not") {
  // patience 1, cooldown 2, factor 0.5 (Keras's rule).
  ScriptedRun run;
  ReduceLrOnPlateau<double> flat(Monitor::TrainLoss, 0.5, 1, 0.0, 0.0, 2);
  flat.on_train_begin(run.state);
  run.opt->set_learning_rate(0.1);
  for (int e = 0; e < 6; ++e)
    CHECK_FALSE(run.epoch(flat, 1.0));
  CHECK(flat.cuts() == std::vector<std::size_t>{2, 4, 6});  // best, cut, cooling, cut, ...
  ScriptedRun again;
  ReduceLrOnPlateau<double> improving(Monitor::TrainLoss, 0.5, 1, 0.0, 0.0, 2);
  improving.on_train_begin(again.state);
  again.opt->set_learning_rate(0.1);
  for (const double v : {1.0, 1.0, 0.9, 0.8, 0.7, 0.7})
    CHECK_FALSE(again.epoch(improving, v));
  CHECK(improving.cuts() == std::vector<std::size_t>{2, 6});
}

TEST_CASE("reduce on plateau: cuts stop once they change the rate by 1e-8 or less") {
  // factor 0.1 from 1e-6: 1e-7 (down 9e-7), 1e-8 (down 9e-8), then 1e-9 would be down
  // only 9e-9: skipped, so a stuck run never drives the rate to 0.
  ScriptedRun run;
  ReduceLrOnPlateau<double> plateau(Monitor::TrainLoss, 0.1, 1);
  plateau.on_train_begin(run.state);
  run.opt->set_learning_rate(1e-6);
  for (int e = 0; e < 8; ++e)
    CHECK_FALSE(run.epoch(plateau, 1.0));
  CHECK(plateau.cuts() == std::vector<std::size_t>{2, 3});
  CHECK(run.opt->learning_rate() == doctest::Approx(1e-8).epsilon(1e-12));
  // And min_lr stops them where it is.
  ScriptedRun floor_run;
  ReduceLrOnPlateau<double> floored(Monitor::TrainLoss, 0.1, 1, 0.0, 0.02);
  floored.on_train_begin(floor_run.state);
  floor_run.opt->set_learning_rate(0.1);
  for (int e = 0; e < 5; ++e)
    CHECK_FALSE(floor_run.epoch(floored, 1.0));
  CHECK(floored.cuts() == std::vector<std::size_t>{2});
  CHECK(floor_run.opt->learning_rate() == 0.02);
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
  // A train metric the trainer does not evaluate (NaN every epoch) is refused before the
  // first epoch, not silently never cut, nor after an epoch of training.
  ScriptedRun metric_run(MetricKind::R2);
  metric_run.state.evaluates_train = false;
  ReduceLrOnPlateau<double> on_train_metric(Monitor::TrainMetric);
  CHECK(message_of([&] { on_train_metric.on_train_begin(metric_run.state); }) ==
        "reduce on plateau on train_metric needs TrainerOptions::evaluate_train");
  EarlyStopping<double> stop_on_train_metric(Monitor::TrainMetric);
  CHECK(message_of([&] { stop_on_train_metric.on_train_begin(metric_run.state); }) ==
        "early stopping on train_metric needs TrainerOptions::evaluate_train");
}

TEST_CASE("early stopping keeps another callback's note in the epoch's event") {
  ScriptedRun run;
  ReduceLrOnPlateau<double> plateau(Monitor::TrainLoss, 0.5, 1);
  EarlyStopping<double> stop(Monitor::TrainLoss, 1, 0.0, false);
  plateau.on_train_begin(run.state);
  stop.on_train_begin(run.state);
  run.opt->set_learning_rate(0.1);
  run.epoch(plateau, 1.0);
  stop.on_epoch_end(run.state);
  run.epoch(plateau, 1.0);  // both act at the end of epoch 2
  stop.on_epoch_end(run.state);
  CHECK(run.history.back().event == "lr=0.05 early_stop");
}
