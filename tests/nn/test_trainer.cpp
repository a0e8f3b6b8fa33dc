// The trainer: early stopping restores the best epoch, non-finite losses keep the last
// good parameters, history CSV, reproducibility, buffer reuse, schedules, full-batch gd.
#include <cmath>
#include <functional>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "message_of.hpp"

#include "xgrad/nn/data.hpp"
#include "xgrad/nn/trainer.hpp"
#include "xgrad/parallel.hpp"
#include "xgrad/threads.hpp"

using xgrad::Matrix;
using xgrad::Parameter;
using namespace xgrad::nn;

namespace {

// y = sin(2x) + x/2 on n points in [-1.5, 1.5].
template <class T>
void regression_data(std::size_t n, std::uint64_t seed, Matrix<T>& x, Matrix<T>& y) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(-1.5, 1.5);
  x = Matrix<T>({n, 1});
  y = Matrix<T>({n, 1});
  for (std::size_t i = 0; i < n; ++i) {
    const double v = u(rng);
    x(i, 0) = static_cast<T>(v);
    y(i, 0) = static_cast<T>(std::sin(2 * v) + 0.5 * v);
  }
}

template <class T>
Network<T> small_net(std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  return Network<T>({1, 16, 1}, {Activation::tanh(), Activation::identity()},
                    Initialiser::parse("glorot_uniform"), rng);
}

template <class T>
std::vector<Matrix<T>> values_of(const Network<T>& net) {
  std::vector<Matrix<T>> out;
  for (const auto& p : net.parameters())
    out.push_back(p.value());
  return out;
}

template <class T>
bool same_values(const std::vector<Matrix<T>>& a, const std::vector<Matrix<T>>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a[i].shape() != b[i].shape()) return false;
    for (std::size_t k = 0; k < a[i].size(); ++k) {
      if (a[i].data()[k] != b[i].data()[k]) return false;
    }
  }
  return true;
}

CostSpec mse_cost() {
  CostSpec c;
  c.cost = CostKind::MeanSquaredError;
  return c;
}

TrainerOptions quiet(std::size_t epochs, std::size_t batch, std::uint64_t seed) {
  TrainerOptions o;
  o.epochs = epochs;
  o.batch_size = batch;
  o.seed = seed;
  o.progress = false;
  return o;
}

}  // namespace

TEST_CASE("early stopping stops after patience and restores the best epoch") {
  Matrix<double> x, y;
  regression_data<double>(64, 1, x, y);
  // Validation targets are the negated training targets: fitting y moves the network
  // away from them, so the validation loss gets worse after its early best.
  const Matrix<double> y_val = -y;
  Network<double> net = small_net<double>(2);
  auto opt = make_optimiser<double>("adam:lr=0.01", net.parameters());
  Trainer<double> trainer(net, *opt, mse_cost(), quiet(100, 8, 3));
  std::vector<std::vector<Matrix<double>>> per_epoch;
  auto record = std::make_shared<LambdaCallback<double>>();
  record->epoch_end = [&](TrainingState<double>& s) { per_epoch.push_back(values_of(s.network)); };
  auto stopper = std::make_shared<EarlyStopping<double>>(Monitor::ValLoss, 3);
  trainer.add_callback(record).add_callback(stopper);
  const History& h = trainer.fit(x, y, x, y_val);

  CHECK(h.stop == StopReason::EarlyStopping);
  std::size_t best = 1;
  for (const EpochRecord& r : h.epochs) {
    if (r.val_loss < h.epochs[best - 1].val_loss) best = r.epoch;
  }
  CHECK(stopper->best_epoch() == best);
  CHECK(h.epochs.size() == best + 3);
  CHECK(h.restored_epoch == static_cast<long>(best));
  CHECK(h.back().event == "early_stop restored_epoch=" + std::to_string(best));
  CHECK(h.message.find("; parameters restored to the best epoch, " + std::to_string(best)) !=
        std::string::npos);
  // The network now holds exactly the best epoch's parameters, and scores its loss.
  CHECK(same_values(values_of(net), per_epoch[best - 1]));
  CHECK_FALSE(same_values(values_of(net), per_epoch.back()));
  CHECK(trainer.evaluate(x, y_val).loss ==
        doctest::Approx(h.epochs[best - 1].val_loss).epsilon(1e-12));
}

TEST_CASE("a NaN mid-training stops with a message and keeps the last good parameters") {
  Matrix<double> x, y;
  regression_data<double>(40, 4, x, y);
  Network<double> net = small_net<double>(5);
  auto opt = make_optimiser<double>("sgd:lr=0.05", net.parameters());
  Trainer<double> trainer(net, *opt, mse_cost(), quiet(10, 8, 6));
  std::vector<Matrix<double>> end_of_epoch_2;
  auto poison = std::make_shared<LambdaCallback<double>>();
  poison->epoch_end = [&](TrainingState<double>& s) {
    if (s.epoch == 2) end_of_epoch_2 = values_of(s.network);
  };
  // Midway through epoch 3 a weight becomes NaN, as an overflowing update would make it.
  poison->batch_end = [&](TrainingState<double>& s) {
    if (s.epoch == 3 && s.batch == 1) s.parameters[0].value()(0, 0) = std::nan("");
  };
  trainer.add_callback(poison);
  const History& h = trainer.fit(x, y);  // no exception
  CHECK(h.stop == StopReason::NonFinite);
  CHECK(h.epochs.size() == 3);
  CHECK(std::isnan(h.back().train_loss));
  CHECK(h.back().event == "non_finite restored_epoch=2");
  CHECK(h.restored_epoch == 2);
  CHECK(h.message.find("epoch 3, step 3 of 5") != std::string::npos);
  CHECK(h.message.find("restored to the end of epoch 2") != std::string::npos);
  CHECK(same_values(values_of(net), end_of_epoch_2));
  // With early stopping's restore_best the final restore replaces the divergence's, in the
  // message as in the event: one "restored" clause, the one that holds.
  Network<double> again = small_net<double>(5);
  auto opt2 = make_optimiser<double>("sgd:lr=0.05", again.parameters());
  Trainer<double> stopped(again, *opt2, mse_cost(), quiet(10, 8, 6));
  auto stopper = std::make_shared<EarlyStopping<double>>(Monitor::TrainLoss, 100);
  stopped.add_callback(poison).add_callback(stopper);
  const History& h2 = stopped.fit(x, y);
  REQUIRE(h2.stop == StopReason::NonFinite);
  CHECK(h2.back().event == "non_finite restored_epoch=" + std::to_string(stopper->best_epoch()));
  CHECK(h2.message.find("parameters restored to the end of epoch") == std::string::npos);
  CHECK(h2.message.find("; parameters restored to the best epoch, " +
                        std::to_string(stopper->best_epoch())) != std::string::npos);
  CHECK(std::isfinite(trainer.evaluate(x, y).loss));
}

TEST_CASE("a diverging learning rate stops training with finite parameters") {
  Matrix<float> x, y;
  regression_data<float>(32, 7, x, y);
  Network<float> net = small_net<float>(8);
  const auto initial = values_of(net);
  auto opt = make_optimiser<float>("sgd:lr=1e20", net.parameters());
  Trainer<float> trainer(net, *opt, mse_cost(), quiet(5, 8, 9));
  const History& h = trainer.fit(x, y);
  CHECK(h.stop == StopReason::NonFinite);
  CHECK(h.message.find("training stopped") != std::string::npos);
  CHECK(all_finite(net.parameters()));
  // It blew up within the first epoch, so the initial parameters are back.
  CHECK(h.restored_epoch == 0);
  CHECK(same_values(values_of(net), initial));
}

TEST_CASE("after a divergence the optimiser starts afresh: no steps and zero moments") {
  // Momentum at lr 1e30 overflows in the first epoch. Its velocity then holds non-finite
  // values that a later fit() on the restored parameters would apply again.
  Matrix<double> x, y;
  regression_data<double>(32, 7, x, y);
  Network<double> net = small_net<double>(8);
  auto opt = make_optimiser<double>("momentum:lr=1e30,momentum=0.9", net.parameters());
  Trainer<double> trainer(net, *opt, mse_cost(), quiet(5, 8, 9));
  const History& h = trainer.fit(x, y);
  REQUIRE(h.stop == StopReason::NonFinite);
  CHECK(opt->steps() == 0);
  for (std::size_t i = 0; i < net.parameters().size(); ++i) {
    CAPTURE(i);
    for (const double v : opt->state(i, 0))
      CHECK(v == 0.0);
  }
}

TEST_CASE_TEMPLATE("all_finite finds one NaN or infinity among the parameters", T, float, double) {
  // A 10x20 parameter (long enough for the vectorised loop and its tail) and a 1x3 one.
  std::vector<xgrad::Parameter<T>> params{
      xgrad::Parameter<T>(Matrix<T>(xt::ones<T>({std::size_t{10}, std::size_t{20}})), "W"),
      xgrad::Parameter<T>(Matrix<T>(xt::ones<T>({std::size_t{1}, std::size_t{3}})), "b")};
  CHECK(all_finite(params));
  for (const T bad : {std::numeric_limits<T>::quiet_NaN(), std::numeric_limits<T>::infinity(),
                      -std::numeric_limits<T>::infinity()}) {
    for (const auto& [which, at] :
         {std::pair<std::size_t, std::size_t>{0, 0}, {0, 101}, {0, 199}, {1, 2}}) {
      T& slot = params[which].value().data()[at];
      slot = bad;
      CHECK_FALSE(all_finite(params));
      slot = T(1);
    }
  }
  // The largest finite values and a subnormal are finite.
  params[0].value().data()[0] = std::numeric_limits<T>::max();
  params[0].value().data()[1] = std::numeric_limits<T>::lowest();
  params[0].value().data()[2] = std::numeric_limits<T>::denorm_min();
  CHECK(all_finite(params));
}

TEST_CASE("history CSV has the documented columns and one row per epoch") {
  Matrix<double> x, y;
  regression_data<double>(30, 10, x, y);
  Network<double> net = small_net<double>(11);
  auto opt = make_optimiser<double>("adam:lr=0.01", net.parameters());
  TrainerOptions o = quiet(4, 10, 12);
  o.metric = MetricKind::R2;
  Trainer<double> trainer(net, *opt, mse_cost(), o);
  const History& h = trainer.fit(x, y, x, y);
  std::ostringstream csv;
  h.write_csv(csv);
  std::istringstream lines(csv.str());
  std::string line;
  std::getline(lines, line);
  CHECK(line ==
        "epoch,train_loss,train_r2,val_loss,val_r2,learning_rate,seconds,samples_per_second,event");
  int rows = 0;
  while (std::getline(lines, line)) {
    ++rows;
    std::vector<std::string> f;
    std::stringstream ss(line);
    std::string item;
    while (std::getline(ss, item, ','))
      f.push_back(item);
    if (!line.empty() && line.back() == ',') f.push_back("");
    REQUIRE(f.size() == 9);
    CHECK(f[0] == std::to_string(rows));
    CHECK(std::stod(f[1]) == h.epochs[rows - 1].train_loss);  // full precision
    CHECK(f[2].empty());  // train metric not computed without evaluate_train
    CHECK(std::stod(f[3]) == h.epochs[rows - 1].val_loss);
    CHECK(std::stod(f[4]) == h.epochs[rows - 1].val_metric);
    CHECK(std::stod(f[5]) == 1e-2);
    // Times are written to 6 significant digits: off by at most 5e-6 of the value, plus
    // the binary rounding of the parsed text.
    const EpochRecord& r = h.epochs[rows - 1];
    CHECK(std::abs(std::stod(f[6]) - r.seconds) <= 5.0001e-6 * r.seconds);
    CHECK(std::abs(std::stod(f[7]) - r.samples_per_second) <= 5.0001e-6 * r.samples_per_second);
    CHECK(f[8] == r.event);
  }
  CHECK(rows == 4);
  CHECK(message_of([&] { h.write_csv("/nonexistent-dir/h.csv"); }).find("/nonexistent-dir/h.csv") !=
        std::string::npos);
}

TEST_CASE("history CSV writes every field of each record in its column") {
  // Distinct values in every column, NaN where a value was not computed, and an event.
  // Losses, metrics and rates round-trip (17 significant digits); times have 6.
  const double nan = std::numeric_limits<double>::quiet_NaN();
  History h;
  h.metric = MetricKind::Accuracy;
  EpochRecord a;
  a.epoch = 1;
  a.train_loss = 0.25;
  a.train_metric = nan;
  a.val_loss = 0.5;
  a.val_metric = 0.75;
  a.learning_rate = 0.0625;
  a.seconds = 1.2345678;
  a.samples_per_second = 12345.678;
  EpochRecord b;
  b.epoch = 2;
  b.train_loss = 0.1;  // 17 significant digits: 0.10000000000000001
  b.train_metric = 0.875;
  b.val_loss = nan;
  b.val_metric = nan;
  b.learning_rate = 0.03125;
  b.seconds = 0.5;
  b.samples_per_second = 20000;
  b.event = "early_stop restored_epoch=1";
  h.epochs = {a, b};
  std::ostringstream csv;
  h.write_csv(csv);
  CHECK(csv.str() ==
        "epoch,train_loss,train_accuracy,val_loss,val_accuracy,learning_rate,seconds,"
        "samples_per_second,event\n"
        "1,0.25,,0.5,0.75,0.0625,1.23457,12345.7,\n"
        "2,0.10000000000000001,0.875,,,0.03125,0.5,20000,early_stop restored_epoch=1\n");
}

TEST_CASE("evaluate in batches of 7 rows gives the loss and metric of one batch over all rows") {
  // 30 rows in batches 7, 7, 7, 7, 2: the set's loss is the mean over rows, so the last
  // batch weighs 2/30 (an unweighted mean of batch losses would weigh it 1/5).
  Matrix<double> x, y;
  regression_data<double>(30, 21, x, y);
  Network<double> net = small_net<double>(22);
  auto opt = make_optimiser<double>("sgd", net.parameters());
  // The mean squared error over all 30 rows, from the network's output.
  const Matrix<double> p = net.predict(x, 30);
  double want = 0;
  for (std::size_t i = 0; i < 30; ++i)
    want += (p(i, 0) - y(i, 0)) * (p(i, 0) - y(i, 0));
  want /= 30;
  for (const MetricKind metric : {MetricKind::Mse, MetricKind::R2}) {
    CAPTURE(metric_name(metric));
    TrainerOptions batched = quiet(1, 8, 0), whole = quiet(1, 8, 0);
    batched.eval_batch_size = 7;
    REQUIRE(whole.eval_batch_size >= 30);
    batched.metric = whole.metric = metric;
    Trainer<double> in_batches(net, *opt, mse_cost(), batched);
    Trainer<double> at_once(net, *opt, mse_cost(), whole);
    const Evaluation e7 = in_batches.evaluate(x, y), e30 = at_once.evaluate(x, y);
    CHECK(e7.loss == doctest::Approx(want).epsilon(1e-12));
    CHECK(e30.loss == doctest::Approx(want).epsilon(1e-12));
    CHECK(e7.metric == doctest::Approx(e30.metric).epsilon(1e-12));
    if (metric == MetricKind::Mse) CHECK(e7.metric == doctest::Approx(want).epsilon(1e-12));
  }
}

TEST_CASE("evaluate's loss is the objective: the data cost plus the penalty") {
  // One identity unit with W = 2, b = 0 fits x = 1 → y = 2 exactly: the data cost is 0,
  // so the loss is the L2 penalty alone, λ·ΣW² = 0.1·2² = 0.4 (biases not penalised).
  Network<double> net;
  net.add({Parameter<double>(Matrix<double>{{2.0}}, "W1"),
           Parameter<double>(Matrix<double>{{0.0}}, "b1"), Activation::identity()});
  auto opt = make_optimiser<double>("sgd", net.parameters());
  CostSpec cost = mse_cost();
  cost.regularisation.penalty = Penalty::L2;
  cost.regularisation.lambda = 0.1;
  Trainer<double> trainer(net, *opt, cost, quiet(1, 1, 1));
  CHECK(trainer.evaluate(Matrix<double>{{1.0}}, Matrix<double>{{2.0}}).loss ==
        doctest::Approx(0.4).epsilon(1e-15));
}

TEST_CASE("an epoch's train_loss is the row-weighted mean of its batch losses, partial batch too") {
  // 10 rows in order (no shuffle), batches of 4: rows 0-3, 4-7 and 8-9. Before each step the
  // callback computes that batch's MSE from the network's current output; the epoch's
  // train_loss must be (4 l0 + 4 l1 + 2 l2) / 10.
  Matrix<double> x, y;
  regression_data<double>(10, 31, x, y);
  Network<double> net = small_net<double>(32);
  auto opt = make_optimiser<double>("sgd:lr=0.05", net.parameters());
  TrainerOptions o = quiet(3, 4, 33);
  o.shuffle = false;
  Trainer<double> trainer(net, *opt, mse_cost(), o);
  std::vector<std::vector<double>> losses;
  std::vector<std::vector<std::size_t>> sizes;
  std::size_t seen_before = 0;
  // The MSE of rows [b, e) under the parameters the next step will use.
  auto batch_loss = [&](const Network<double>& n, std::size_t b, std::size_t e) {
    Matrix<double> xb({e - b, 1});
    for (std::size_t i = b; i < e; ++i)
      xb(i - b, 0) = x(i, 0);
    const Matrix<double> pb = n.predict(xb);
    double sum = 0;
    for (std::size_t i = b; i < e; ++i)
      sum += (pb(i - b, 0) - y(i, 0)) * (pb(i - b, 0) - y(i, 0));
    return sum / static_cast<double>(e - b);
  };
  const std::size_t bounds[4] = {0, 4, 8, 10};
  auto cb = std::make_shared<LambdaCallback<double>>();
  cb->epoch_begin = [&](TrainingState<double>& s) {
    losses.emplace_back(1, batch_loss(s.network, bounds[0], bounds[1]));
    sizes.emplace_back();
    seen_before = 0;
  };
  std::vector<std::vector<double>> reported;  // TrainingState::batch_loss, batch by batch
  cb->batch_end = [&](TrainingState<double>& s) {
    if (s.batch == 0) reported.emplace_back();
    reported.back().push_back(s.batch_loss);
    sizes.back().push_back(s.samples_in_epoch - seen_before);
    seen_before = s.samples_in_epoch;
    if (s.batch + 1 < 3)
      losses.back().push_back(batch_loss(s.network, bounds[s.batch + 1], bounds[s.batch + 2]));
  };
  trainer.add_callback(cb);
  const History& h = trainer.fit(x, y);
  REQUIRE(h.epochs.size() == 3);
  REQUIRE(losses.size() == 3);
  for (std::size_t e = 0; e < 3; ++e) {
    CAPTURE(e);
    CHECK(sizes[e] == std::vector<std::size_t>{4, 4, 2});
    REQUIRE(losses[e].size() == 3);
    const double want = (4 * losses[e][0] + 4 * losses[e][1] + 2 * losses[e][2]) / 10;
    CHECK(h.epochs[e].train_loss == doctest::Approx(want).epsilon(1e-12));
    REQUIRE(reported[e].size() == 3);
    for (std::size_t b = 0; b < 3; ++b)  // each step's own loss, partial batch too
      CHECK(reported[e][b] == doctest::Approx(losses[e][b]).epsilon(1e-12));
  }
}

TEST_CASE("a stop asked in on_batch_begin ends training after that step") {
  Matrix<double> x, y;
  regression_data<double>(40, 18, x, y);
  Network<double> net = small_net<double>(19);
  auto opt = make_optimiser<double>("sgd", net.parameters());
  Trainer<double> trainer(net, *opt, mse_cost(), quiet(5, 10, 20));
  std::size_t steps = 0;
  std::vector<double> epoch_2_losses;
  auto stop = std::make_shared<LambdaCallback<double>>();
  stop->batch_begin = [&](TrainingState<double>& s) {
    if (s.epoch == 2 && s.batch == 1) s.request_stop(StopReason::Callback, "enough");
  };
  stop->batch_end = [&](TrainingState<double>& s) {
    ++steps;
    if (s.epoch == 2) epoch_2_losses.push_back(s.batch_loss);
  };
  trainer.add_callback(stop);
  const History& h = trainer.fit(x, y);
  CHECK(steps == 4 + 2);  // all of epoch 1, then batches 0 and 1 of epoch 2
  CHECK(h.stop == StopReason::Callback);
  CHECK(h.message == "enough");
  REQUIRE(h.epochs.size() == 2);
  // The cut-short epoch's train_loss is the mean over the 20 rows it saw, not over all 40.
  REQUIRE(epoch_2_losses.size() == 2);
  CHECK(h.epochs[1].train_loss ==
        doctest::Approx((epoch_2_losses[0] + epoch_2_losses[1]) / 2).epsilon(1e-12));
}

TEST_CASE("same seed and threads give an identical history, another seed does not") {
  Matrix<float> x, y;
  regression_data<float>(100, 13, x, y);
  auto run = [&](std::uint64_t seed) {
    Network<float> net = small_net<float>(14);
    auto opt = make_optimiser<float>("adam:lr=0.01", net.parameters());
    TrainerOptions o = quiet(5, 16, seed);
    o.metric = MetricKind::Mse;
    o.evaluate_train = true;
    Trainer<float> trainer(net, *opt, mse_cost(), o);
    History h = trainer.fit(x, y, x, y);
    return std::make_pair(h, values_of(net));
  };
  const auto [a, pa] = run(21);
  const auto [b, pb] = run(21);
  const auto [c, pc] = run(22);
  REQUIRE(a.epochs.size() == 5);
  for (std::size_t e = 0; e < 5; ++e) {
    CHECK(a.epochs[e].train_loss == b.epochs[e].train_loss);
    CHECK(a.epochs[e].train_metric == b.epochs[e].train_metric);
    CHECK(a.epochs[e].val_loss == b.epochs[e].val_loss);
  }
  CHECK(same_values(pa, pb));
  CHECK(a.back().train_loss != c.back().train_loss);
  CHECK_FALSE(same_values(pa, pc));
}

TEST_CASE("after the first epoch a step reuses every tape buffer") {
  Matrix<float> x, y;
  regression_data<float>(100, 15, x, y);  // batch 16: six full batches and one of 4
  Network<float> net = small_net<float>(16);
  auto opt = make_optimiser<float>("adam:lr=0.01", net.parameters());
  Trainer<float> trainer(net, *opt, mse_cost(), quiet(3, 16, 17));
  std::vector<const float*> buffers;
  std::size_t capacity = 0, checked = 0, moved = 0;
  auto watch = std::make_shared<LambdaCallback<float>>();
  watch->batch_end = [&](TrainingState<float>& s) {
    if (s.batch == s.batches - 1) return;  // the short batch runs on the other tape
    const auto& tape = trainer.tape();
    std::vector<const float*> now;
    for (std::uint32_t i = 0; i < tape.size(); ++i) {
      now.push_back(tape.node(i).value.data());
      now.push_back(tape.node(i).grad.data());
    }
    if (s.epoch == 1 && s.batch == 0) {
      buffers = now;
      capacity = tape.capacity();
      return;
    }
    ++checked;
    if (now != buffers || tape.capacity() != capacity) ++moved;
  };
  trainer.add_callback(watch);
  trainer.fit(x, y);
  CHECK(checked == 3 * 6 - 1);
  CHECK(moved == 0);
  CHECK(!buffers.empty());
}

namespace {
/// The rate of every step of an SGD fit on `rows` points under `schedule`, and the history.
struct RatesSeen {
  std::vector<double> steps;
  History history;
};
RatesSeen rates_under(const Schedule& schedule, std::size_t rows, std::size_t batch,
                      std::size_t epochs) {
  Matrix<double> x, y;
  regression_data<double>(rows, 18, x, y);
  Network<double> net = small_net<double>(19);
  auto opt = make_optimiser<double>("sgd:lr=0.5", net.parameters());
  TrainerOptions o = quiet(epochs, batch, 20);
  o.schedule = schedule;
  RatesSeen out;
  auto watch = std::make_shared<LambdaCallback<double>>();
  watch->batch_end = [&](TrainingState<double>& s) {
    out.steps.push_back(s.optimiser.learning_rate());
  };
  Trainer<double> trainer(net, *opt, mse_cost(), o);
  trainer.add_callback(watch);
  out.history = trainer.fit(x, y);
  return out;
}
}  // namespace

TEST_CASE("a schedule sets the learning rate of every step") {
  const RatesSeen r = rates_under(Schedule::epoch_decay(0.1), 40, 10, 4);
  REQUIRE(r.steps.size() == 16);
  for (std::size_t e = 0; e < 4; ++e) {
    const double want = 0.1 / (double(e) * 4 + 1);  // η0 / (e·m + 1), m = 4 batches
    CHECK(r.history.epochs[e].learning_rate == want);
    for (std::size_t b = 0; b < 4; ++b)
      CHECK(r.steps[e * 4 + b] == want);
  }
}

TEST_CASE("a per-step schedule changes the rate within an epoch, the history keeps the first") {
  // inverse_time:0.01,1 over 4 rows in batches of 2 (m = 2): η = 0.01 / (2e + b + 1), so
  // the four steps run at 0.01/1, 0.01/2, 0.01/3, 0.01/4, and each epoch's record holds
  // the rate of its first step.
  const RatesSeen r = rates_under(Schedule::inverse_time(0.01, 1.0), 4, 2, 2);
  CHECK(r.steps == std::vector<double>{0.01 / 1.0, 0.01 / 2.0, 0.01 / 3.0, 0.01 / 4.0});
  REQUIRE(r.history.epochs.size() == 2);
  CHECK(r.history.epochs[0].learning_rate == 0.01);
  CHECK(r.history.epochs[1].learning_rate == 0.01 / 3.0);
}

TEST_CASE("on_batch_begin runs before each step, after the schedule, and its rate is the step's") {
  // A callback halves the scheduled rate of every step (report 000's SGD divides it by
  // the number of minibatches this way). SGD with rate 0 would not move: steps with the
  // callback's rate move the parameters as a run at that constant rate does.
  Matrix<double> x, y;
  regression_data<double>(40, 18, x, y);
  Network<double> net = small_net<double>(19), reference = small_net<double>(19);
  auto opt = make_optimiser<double>("sgd", net.parameters());
  auto ref_opt = make_optimiser<double>("sgd:lr=0.05", reference.parameters());
  TrainerOptions o = quiet(3, 10, 20);
  o.schedule = Schedule::constant(0.1);
  std::vector<std::pair<std::size_t, std::size_t>> order;  // (epoch, batch) as seen
  std::size_t steps_done = 0, steps_at_begin = 0;
  auto halve = std::make_shared<LambdaCallback<double>>();
  halve->batch_begin = [&](TrainingState<double>& s) {
    CHECK(s.optimiser.learning_rate() == 0.1);  // the schedule ran first
    s.optimiser.set_learning_rate(s.optimiser.learning_rate() / 2);
    order.emplace_back(s.epoch, s.batch);
    steps_at_begin += steps_done;
  };
  halve->batch_end = [&](TrainingState<double>&) { ++steps_done; };
  Trainer<double> trainer(net, *opt, mse_cost(), o);
  trainer.add_callback(halve);
  const History& h = trainer.fit(x, y);
  REQUIRE(order.size() == 12);
  for (std::size_t k = 0; k < 12; ++k) {
    CHECK(order[k].first == k / 4 + 1);  // epochs from 1
    CHECK(order[k].second == k % 4);     // the batch about to run, from 0
  }
  CHECK(steps_at_begin == 0 + 1 + 2 + 3 + 4 + 5 + 6 + 7 + 8 + 9 + 10 + 11);  // before each step
  CHECK(h.epochs[0].learning_rate == 0.05);  // the history records the rate used
  TrainerOptions plain = quiet(3, 10, 20);
  Trainer<double> ref_trainer(reference, *ref_opt, mse_cost(), plain);
  ref_trainer.fit(x, y);
  CHECK(same_values(values_of(net), values_of(reference)));
}

TEST_CASE("gd steps on the whole training set, once per epoch") {
  Matrix<double> x, y;
  regression_data<double>(50, 22, x, y);
  Network<double> net = small_net<double>(23);
  auto opt = make_optimiser<double>("gd:lr=0.1", net.parameters());
  std::size_t steps = 0, batches = 0;
  auto watch = std::make_shared<LambdaCallback<double>>();
  watch->batch_end = [&](TrainingState<double>& s) {
    ++steps;
    batches = s.batches;
    CHECK(s.samples_in_epoch == 50);
  };
  Trainer<double> trainer(net, *opt, mse_cost(), quiet(3, 8, 24));
  trainer.add_callback(watch);
  trainer.fit(x, y);
  CHECK(steps == 3);
  CHECK(batches == 1);
  CHECK(opt->steps() == 3);
}

namespace {
/// Two Gaussian blobs in 2-D around (-c, c) and (c, -c), labels one-hot, and the 2-8-2
/// softmax network that classifies them.
struct Blobs {
  Matrix<float> x, y;
};
Blobs two_blobs(std::size_t n, std::uint64_t seed, double spread, double c) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> g(0.0, spread);
  Blobs b{Matrix<float>({n, 2}), {}};
  std::vector<std::size_t> labels(n);
  for (std::size_t i = 0; i < n; ++i) {
    labels[i] = i % 2;
    const double centre = labels[i] ? c : -c;
    b.x(i, 0) = static_cast<float>(centre + g(rng));
    b.x(i, 1) = static_cast<float>(-centre + g(rng));
  }
  b.y = one_hot<float>(labels, 2);
  return b;
}
Network<float> blob_classifier() {
  std::mt19937_64 init(31);
  return Network<float>({2, 8, 2}, {Activation::relu(), Activation::softmax()},
                        Initialiser::parse("he_normal"), init);
}
CostSpec cross_entropy_cost() {
  CostSpec cost;
  cost.cost = CostKind::CrossEntropy;
  return cost;
}
}  // namespace

TEST_CASE("classification with softmax cross-entropy reaches high accuracy") {
  const Blobs b = two_blobs(200, 30, 0.6, 1.0);
  Network<float> net = blob_classifier();
  auto opt = make_optimiser<float>("adam:lr=0.02", net.parameters());
  TrainerOptions o = quiet(20, 20, 32);
  o.metric = MetricKind::Accuracy;
  o.evaluate_train = true;
  Trainer<float> trainer(net, *opt, cross_entropy_cost(), o);
  const History& h = trainer.fit(b.x, b.y);
  CHECK(h.back().train_metric > 0.95);
  CHECK(h.back().train_loss < h.epochs.front().train_loss);
  CHECK(trainer.evaluate(b.x, b.y).metric == h.back().train_metric);
}

TEST_CASE("a NaN at the end of an epoch stops an accuracy-scored fit without an exception") {
  // The epoch's evaluation meets the NaN outputs before the non-finite check: accuracy
  // has no class for them, so the metric is NaN there, not an exception out of fit().
  const Blobs b = two_blobs(40, 3, 1.0, 1.5);
  Network<float> net = blob_classifier();
  auto opt = make_optimiser<float>("adam:lr=0.02", net.parameters());
  TrainerOptions o = quiet(5, 20, 1);
  o.metric = MetricKind::Accuracy;
  o.evaluate_train = true;
  Trainer<float> trainer(net, *opt, cross_entropy_cost(), o);
  auto poison = std::make_shared<LambdaCallback<float>>();
  poison->batch_end = [](TrainingState<float>& s) {  // the last step of epoch 2
    if (s.epoch == 2 && s.batch + 1 == s.batches) s.parameters[0].value()(0, 0) = std::nanf("");
  };
  trainer.add_callback(poison);
  const History& h = trainer.fit(b.x, b.y, b.x, b.y);  // validation data is scored too
  CHECK(h.stop == StopReason::NonFinite);
  CHECK(h.restored_epoch == 1);
  CHECK(all_finite(net.parameters()));
}

TEST_CASE("trainer rejects an optimiser of other parameters and mismatched data") {
  Network<double> net = small_net<double>(40);
  Network<double> other = small_net<double>(41);
  auto opt = make_optimiser<double>("sgd", other.parameters());
  CHECK(message_of([&] {
          Trainer<double>(net, *opt, mse_cost(), quiet(1, 4, 0));
        }).find("not the network's") != std::string::npos);
  auto mine = make_optimiser<double>("sgd", net.parameters());
  // A cost that does not fit the output layer is refused when the trainer is made.
  CostSpec ce;
  ce.cost = CostKind::CrossEntropy;
  CHECK(message_of([&] { Trainer<double>(net, *mine, ce, quiet(1, 4, 0)); }) ==
        "cost cross_entropy needs a softmax output layer, the network's output activation is "
        "identity");
  Trainer<double> trainer(net, *mine, mse_cost(), quiet(1, 4, 0));
  CHECK(message_of([&] {
          trainer.fit(Matrix<double>({5, 2}), Matrix<double>({5, 1}));
        }) == "fit: x is 5x2 but the network takes 1 input");
  CHECK(message_of([&] {
          trainer.fit(Matrix<double>({5, 1}), Matrix<double>({4, 1}));
        }).find("row counts differ") != std::string::npos);
  {
    // Non-finite data is named where it is, not reported as a diverging loss.
    Matrix<double> xd, yd;
    regression_data<double>(6, 1, xd, yd);
    xd(3, 0) = std::numeric_limits<double>::quiet_NaN();
    CHECK(message_of([&] { trainer.fit(xd, yd); }) ==
          "fit: x holds nan at row 3, column 0; remove or replace non-finite values before "
          "training");
    xd(3, 0) = 0.5;
    yd(5, 0) = -std::numeric_limits<double>::infinity();
    CHECK(message_of([&] { trainer.fit(xd, yd); }).find("fit: y holds -inf at row 5") == 0);
    CHECK(message_of([&] { trainer.evaluate(xd, yd); }) ==
          "evaluate: y holds -inf at row 5, column 0; remove or replace non-finite values "
          "before evaluating");
  }
  auto stop_on_val = std::make_shared<EarlyStopping<double>>(Monitor::ValLoss, 2);
  trainer.add_callback(stop_on_val);
  Matrix<double> x, y;
  regression_data<double>(8, 1, x, y);
  CHECK(message_of([&] { trainer.fit(x, y); }).find("no validation data") != std::string::npos);
}

TEST_CASE("a cross-entropy cost refuses targets it cannot mean, naming the value and where") {
  // bce reads y as 0/1 labels or probabilities; labels {0, 1, 2} would give a finite loss
  // that measures nothing. cross_entropy takes one-hot or soft rows: never negative.
  std::mt19937_64 rng(7);
  Network<double> net({2, 4, 1}, {Activation::tanh(), Activation::sigmoid()},
                      Initialiser::parse("glorot_uniform"), rng);
  auto opt = make_optimiser<double>("adam", net.parameters());
  CostSpec bce;
  bce.cost = CostKind::BinaryCrossEntropy;
  Trainer<double> trainer(net, *opt, bce, quiet(1, 4, 0));
  const Matrix<double> x = {{0, 1}, {1, 0}, {1, 1}, {0, 0}};
  const Matrix<double> labels = {{0}, {1}, {2}, {1}};
  CHECK(message_of([&] { trainer.fit(x, labels); }) ==
        "fit: y holds 2 at row 2, column 0, but the bce cost needs targets in [0, 1] (0/1 labels "
        "or probabilities)");
  CHECK(message_of([&] { trainer.evaluate(x, labels); }).find("evaluate: y holds 2 at row 2") == 0);
  const Matrix<double> soft = {{0}, {1}, {0.25}, {1}};
  CHECK(message_of([&] {
          trainer.fit(x, soft, x, labels);
        }).find("fit (validation data): y holds 2") == 0);
  CHECK_NOTHROW(trainer.fit(x, soft));

  Network<double> net2({2, 3}, {Activation::softmax()}, Initialiser::parse("glorot_uniform"), rng);
  auto opt2 = make_optimiser<double>("sgd", net2.parameters());
  CostSpec ce;
  ce.cost = CostKind::CrossEntropy;
  Trainer<double> trainer2(net2, *opt2, ce, quiet(1, 4, 0));
  const Matrix<double> rows = {{1, 0, 0}, {0, 1, 0}, {0.5, 0.5, 0}, {0, -0.5, 1.5}};
  CHECK(message_of([&] { trainer2.fit(x, rows); }) ==
        "fit: y holds -0.5 at row 3, column 1, but the cross_entropy cost needs non-negative "
        "targets (one-hot or probability rows)");
  // MSE takes any finite target.
  Network<double> net3 = small_net<double>(3);
  auto opt3 = make_optimiser<double>("sgd", net3.parameters());
  Trainer<double> trainer3(net3, *opt3, mse_cost(), quiet(1, 4, 0));
  CHECK_NOTHROW(trainer3.fit(Matrix<double>({{0}, {1}}), Matrix<double>({{-7}, {250}})));
}

TEST_CASE("reduce on plateau in a training run: the history shows each epoch's cut rate") {
  // min_delta 10 on a loss near 0.3: no epoch counts as an improvement after the first,
  // so with patience 1 and factor 0.5 the rate halves after epochs 2, 3 and 4.
  Network<double> net = small_net<double>(9);
  auto opt = make_optimiser<double>("sgd:lr=0.02", net.parameters());
  Trainer<double> trainer(net, *opt, mse_cost(), quiet(5, 8, 1));
  auto plateau = std::make_shared<ReduceLrOnPlateau<double>>(Monitor::TrainLoss, 0.5, 1, 10.0);
  trainer.add_callback(plateau);
  Matrix<double> x, y;
  regression_data<double>(32, 1, x, y);
  const History& h = trainer.fit(x, y);
  REQUIRE(h.epochs.size() == 5);
  const double expected[] = {0.02, 0.02, 0.01, 0.005, 0.0025};
  for (std::size_t e = 0; e < 5; ++e) {
    CAPTURE(e);
    CHECK(h.epochs[e].learning_rate == doctest::Approx(expected[e]).epsilon(1e-15));
  }
  CHECK(plateau->cuts() == std::vector<std::size_t>{2, 3, 4, 5});
  CHECK(h.epochs[2].event == "lr=0.005");
}

TEST_CASE("reduce on plateau with a step schedule: the cut scales each scheduled rate") {
  // step:0.1,0.5,3 gives 0.1 for epochs 1-3 and 0.05 for 4-6. One cut (factor 0.5) at
  // the end of epoch 2 (patience 1, nothing improves by min_delta 10; a long cooldown
  // allows no second cut): epoch 3 runs at 0.05, epochs 4-6 at 0.025.
  Network<double> net = small_net<double>(9);
  auto opt = make_optimiser<double>("sgd:lr=0.1", net.parameters());
  TrainerOptions o = quiet(6, 8, 1);
  o.schedule = Schedule::step(0.1, 0.5, 3);
  Trainer<double> trainer(net, *opt, mse_cost(), o);
  trainer.add_callback(
      std::make_shared<ReduceLrOnPlateau<double>>(Monitor::TrainLoss, 0.5, 1, 10.0, 0.0, 100));
  Matrix<double> x, y;
  regression_data<double>(32, 1, x, y);
  const History& h = trainer.fit(x, y);
  REQUIRE(h.epochs.size() == 6);
  const double expected[] = {0.1, 0.1, 0.05, 0.025, 0.025, 0.025};
  for (std::size_t e = 0; e < 6; ++e) {
    CAPTURE(e);
    CHECK(h.epochs[e].learning_rate == doctest::Approx(expected[e]).epsilon(1e-15));
  }
}

TEST_CASE("the progress line reports epoch, loss, samples per second and time left") {
  Matrix<double> x, y;
  regression_data<double>(20, 50, x, y);
  Network<double> net = small_net<double>(51);
  auto opt = make_optimiser<double>("adam:lr=0.01", net.parameters());
  Trainer<double> trainer(net, *opt, mse_cost(), quiet(2, 5, 52));
  std::ostringstream out;
  // No delay so that this short run prints; not a terminal, so one line per epoch when
  // the log interval is 0.
  trainer.add_callback(std::make_shared<ProgressLine<double>>(&out, 0.0, 0.0, 0.0));
  trainer.fit(x, y, x, y);
  const std::string text = out.str();
  CHECK(text.find("epoch 1/2") != std::string::npos);
  CHECK(text.find("epoch 2/2") != std::string::npos);
  CHECK(text.find("val_loss") != std::string::npos);
  CHECK(text.find("samples/s") != std::string::npos);
  CHECK(text.find("left 00:00") != std::string::npos);
  // With the default 10 s log interval a short run logs its first epoch and its last.
  std::ostringstream sparse;
  Trainer<double> third(net, *opt, mse_cost(), quiet(5, 5, 52));
  third.add_callback(std::make_shared<ProgressLine<double>>(&sparse, 0.0));
  third.fit(x, y);
  CHECK(sparse.str().find("epoch 1/5") != std::string::npos);
  CHECK(sparse.str().find("epoch 3/5") == std::string::npos);
  CHECK(sparse.str().find("epoch 5/5") != std::string::npos);
  // A run stopped in epoch 3 logs epoch 3 as its last line, then the reason.
  std::ostringstream stopped;
  Trainer<double> fourth(net, *opt, mse_cost(), quiet(5, 5, 52));
  auto stop = std::make_shared<LambdaCallback<double>>();
  stop->batch_end = [](TrainingState<double>& s) {
    if (s.epoch == 3) s.request_stop(StopReason::Callback, "enough");
  };
  fourth.add_callback(stop).add_callback(std::make_shared<ProgressLine<double>>(&stopped, 0.0));
  fourth.fit(x, y);
  CHECK(stopped.str().find("epoch 1/5") != std::string::npos);
  CHECK(stopped.str().find("epoch 2/5") == std::string::npos);
  CHECK(stopped.str().find("epoch 3/5") != std::string::npos);
  CHECK(stopped.str().find("\nenough\n") != std::string::npos);
  std::ostringstream silent;
  Trainer<double> again(net, *opt, mse_cost(), quiet(2, 5, 52));
  again.add_callback(std::make_shared<ProgressLine<double>>(&silent));  // 2 s delay
  again.fit(x, y);
  CHECK(silent.str().empty());
}

TEST_CASE("a metric or monitor the data cannot give is refused before the first step") {
  // Each was refused only after a whole epoch, with the parameters and the optimiser
  // already moved and an empty history.
  Matrix<double> x, y;
  regression_data<double>(16, 3, x, y);
  Network<double> net = small_net<double>(42);
  const auto before = values_of(net);
  auto opt = make_optimiser<double>("adam", net.parameters());
  TrainerOptions o = quiet(2, 4, 0);
  o.metric = MetricKind::R2;
  Trainer<double> r2_trainer(net, *opt, mse_cost(), o);
  const Matrix<double> one_x{{0.5}}, one_y{{0.2}};
  CHECK(message_of([&] { r2_trainer.fit(x, y, one_x, one_y); }) ==
        "fit (validation data): TrainerOptions::metric r2 cannot be computed on these targets "
        "(r2: needs at least 2 rows and 1 column, got 1x1)");
  o.evaluate_train = true;
  Trainer<double> r2_on_train(net, *opt, mse_cost(), o);
  CHECK(message_of([&] { r2_on_train.fit(one_x, one_y); }).find("fit: TrainerOptions::metric r2") ==
        0);
  // Accuracy needs class labels; regression targets are not.
  o.metric = MetricKind::Accuracy;
  o.evaluate_train = false;
  Trainer<double> acc_trainer(net, *opt, mse_cost(), o);
  CHECK(message_of([&] { acc_trainer.fit(x, y, x, y); })
            .find("fit (validation data): TrainerOptions::metric accuracy cannot be computed on "
                  "these targets (labels_of: row 0 holds") == 0);
  // Early stopping on a train metric the run does not evaluate.
  o.metric = MetricKind::R2;
  Trainer<double> stopping(net, *opt, mse_cost(), o);
  stopping.add_callback(std::make_shared<EarlyStopping<double>>(Monitor::TrainMetric, 2));
  CHECK(message_of([&] { stopping.fit(x, y, x, y); }) ==
        "early stopping on train_metric needs TrainerOptions::evaluate_train");
  CHECK(same_values(values_of(net), before));
  CHECK(stopping.history().epochs.empty());
}

TEST_CASE("a run that completes with restore_best says in its message which epoch it holds") {
  // "completed 20 epochs" alone hid that the network is an earlier epoch's.
  Matrix<double> x, y;
  regression_data<double>(64, 1, x, y);
  const Matrix<double> y_val = -y;  // gets worse as the network fits y
  Network<double> net = small_net<double>(2);
  auto opt = make_optimiser<double>("adam:lr=0.01", net.parameters());
  Trainer<double> trainer(net, *opt, mse_cost(), quiet(20, 8, 3));
  auto stopper = std::make_shared<EarlyStopping<double>>(Monitor::ValLoss, 1000);
  trainer.add_callback(stopper);
  const History& h = trainer.fit(x, y, x, y_val);
  REQUIRE(h.stop == StopReason::Completed);
  REQUIRE(stopper->best_epoch() < 20);
  CHECK(h.message == "completed 20 epochs; parameters restored to the best epoch, " +
                         std::to_string(stopper->best_epoch()));
}

TEST_CASE("early stopping on R2 treats higher as better") {
  // On fixed validation data R² = 1 − MSE / var(y), so the best R² epoch is the best
  // validation-loss epoch: both monitors must pick the same one.
  Matrix<double> x, y;
  regression_data<double>(64, 60, x, y);
  const Matrix<double> y_val = -y;
  auto best_epoch = [&](Monitor monitor) {
    Network<double> net = small_net<double>(61);
    auto opt = make_optimiser<double>("adam:lr=0.01", net.parameters());
    TrainerOptions o = quiet(100, 8, 62);
    o.metric = MetricKind::R2;
    Trainer<double> trainer(net, *opt, mse_cost(), o);
    auto stopper = std::make_shared<EarlyStopping<double>>(monitor, 3);
    trainer.add_callback(stopper);
    const History& h = trainer.fit(x, y, x, y_val);
    CHECK(h.stop == StopReason::EarlyStopping);
    return stopper->best_epoch();
  };
  const std::size_t by_loss = best_epoch(Monitor::ValLoss);
  CHECK(by_loss >= 1);
  CHECK(best_epoch(Monitor::ValMetric) == by_loss);
}

namespace {

/// Report 000's MNIST network with a hidden layer of `hidden`, trained 2 epochs on 256
/// random 784-pixel inputs at the given thread count; its parameters after.
template <class T>
std::vector<Matrix<T>> trained_at(int threads, std::size_t hidden) {
  struct Restore {  // the thread count and the contention guard, even on an exception
    int before = xgrad::threads();
    ~Restore() {
      xgrad::set_threads(before);
      xgrad::detail::set_contention_guard(true);
    }
  } restore;
  xgrad::set_threads(threads);
  // Off: a busy machine must not turn the two-thread run into a serial one.
  xgrad::detail::set_contention_guard(false);
  std::mt19937_64 rng(31);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  Matrix<T> x({256, 784}), y({256, 10});
  for (T& v : x)
    v = static_cast<T>(u(rng));
  y.fill(T(0));
  for (std::size_t i = 0; i < 256; ++i)
    y(i, i % 10) = T(1);
  CostSpec ce;
  ce.cost = CostKind::CrossEntropy;
  std::mt19937_64 init_rng(32);
  Network<T> net({784, hidden, 10}, {Activation::sigmoid(), Activation::softmax()},
                 Initialiser::parse("glorot_uniform"), init_rng);
  auto opt = make_optimiser<T>("adam:lr=1e-3", net.parameters());
  Trainer<T> trainer(net, *opt, ce, quiet(2, 128, 33));
  trainer.fit(x, y);
  return values_of(net);
}

}  // namespace

TEST_CASE_TEMPLATE("training gives the same parameters at one and two threads", T, float, double) {
  // Batch 128 through 784-256-10 and 784-300-10: products large enough for the engine to
  // compute them in blocks shared over the threads (engine/src/blas.cpp).
  for (const std::size_t hidden : {256, 300}) {
    CAPTURE(hidden);
    CHECK(same_values(trained_at<T>(1, hidden), trained_at<T>(2, hidden)));
  }
}

TEST_CASE("a stop asked before the first step leaves the network untouched") {
  Matrix<double> x, y;
  regression_data<double>(5, 1, x, y);
  for (const bool at_train_begin : {true, false}) {
    CAPTURE(at_train_begin);
    Network<double> net = small_net<double>(2);
    const auto before = values_of(net);
    auto opt = make_optimiser<double>("sgd:lr=0.1", net.parameters());
    Trainer<double> trainer(net, *opt, mse_cost(), quiet(3, 1, 3));
    auto stopper = std::make_shared<LambdaCallback<double>>();
    auto stop = [](TrainingState<double>& s) { s.request_stop(StopReason::Callback, "not today"); };
    if (at_train_begin)
      stopper->train_begin = stop;
    else
      stopper->epoch_begin = stop;
    trainer.add_callback(stopper);
    const History& h = trainer.fit(x, y);
    CHECK(h.stop == StopReason::Callback);
    CHECK(h.message == "not today");
    CHECK(h.epochs.empty());
    CHECK(same_values(values_of(net), before));  // not one optimiser step
  }
}
