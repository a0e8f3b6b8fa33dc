#include "train.hpp"

#include <cmath>
#include <limits>
#include <memory>
#include <stdexcept>

#include <xgrad/nn/activation.hpp>
#include <xgrad/nn/init.hpp>
#include <xgrad/nn/optimiser.hpp>
#include <xgrad/nn/schedule.hpp>
#include <xgrad/nn/trainer.hpp>

namespace runge {

namespace {
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

xgrad::nn::Activation parse_activation(const std::string& text, const char* option) {
  try {
    return xgrad::nn::Activation::parse(text);
  } catch (const std::invalid_argument& e) {
    // nn's list of names ends with softmax, which a regression network refuses
    // (ModelSpec::validate): not offered here.
    std::string what = e.what();
    const std::string softmax = ", softmax";
    if (what.size() >= softmax.size() &&
        what.compare(what.size() - softmax.size(), softmax.size(), softmax) == 0)
      what.erase(what.size() - softmax.size());
    throw std::invalid_argument(std::string(option) + ": " + what);
  }
}

xgrad::nn::Penalty parse_penalty(const std::string& text) {
  if (no_penalty(text)) return xgrad::nn::Penalty::None;
  if (text == "l1") return xgrad::nn::Penalty::L1;
  if (text == "l2") return xgrad::nn::Penalty::L2;
  throw std::invalid_argument("--penalty: unknown penalty '" + text +
                              "' (expected none, l1 or l2)");
}

/// The schedule for `eta` with m minibatches per epoch.
xgrad::nn::Schedule make_schedule(const std::string& text, double eta, std::size_t m) {
  using xgrad::nn::Schedule;
  try {
    if (text == "constant") return Schedule::constant(eta);
    // Report 000 §III.A.1: eq. 18 of its ref. [4] with t0 = t1 = 30 m, scaled so that the
    // first step uses eta: eta_t = eta t1 / (t + t1).
    if (text == "inverse_time") {
      const double t1 = 30.0 * double(m);
      return Schedule::inverse_time(eta * t1, t1);
    }
    if (text == "epoch_decay") return Schedule::epoch_decay(eta);  // report 003
    return Schedule::parse(text);
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(std::string("--schedule: ") + e.what());
  }
}
}  // namespace

std::string canonical_optimiser(const std::string& optimiser) {
  try {
    return xgrad::nn::optimiser_name(xgrad::nn::parse_optimiser_kind(optimiser));
  } catch (const std::invalid_argument&) {
    return optimiser;
  }
}

bool full_batch_optimiser(const std::string& optimiser) {
  return canonical_optimiser(optimiser) == "gd";
}

bool no_penalty(const std::string& penalty) {
  return penalty == "none" || penalty == "l0";
}

std::optional<double> schedule_starting_rate(const std::string& schedule) {
  if (schedule == "constant" || schedule == "inverse_time" || schedule == "epoch_decay")
    return std::nullopt;
  try {
    return xgrad::nn::Schedule::parse(schedule)(0, 0, 1);
  } catch (const std::invalid_argument&) {
    return std::nullopt;
  }
}

void ModelSpec::validate() const {
  if (hidden.empty()) throw std::invalid_argument("--nodes: at least one hidden layer is needed");
  for (std::size_t n : hidden)
    if (n == 0) throw std::invalid_argument("--nodes: a hidden layer of 0 nodes is impossible");
  // Softmax normalises a row to sum 1: over one output it is the constant 1, and over
  // hidden units it is no regression model either.
  if (parse_activation(activation, "--activation").kind == xgrad::nn::ActivationKind::Softmax)
    throw std::invalid_argument(
        "--activation: softmax is for class probabilities, not "
        "hidden layers of a regression network");
  if (parse_activation(output_activation, "--output-activation").kind ==
      xgrad::nn::ActivationKind::Softmax)
    throw std::invalid_argument(
        "--output-activation: softmax over one output is the "
        "constant 1; use identity for regression");
  try {
    xgrad::nn::Initialiser::parse(init);
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(std::string("--init: ") + e.what());
  }
  if (!std::isfinite(bias_init)) throw std::invalid_argument("--bias-init must be finite");
}

std::string ModelSpec::layers_string() const {
  std::string s;
  for (std::size_t i = 0; i < hidden.size(); ++i)
    s += (i ? "x" : "") + std::to_string(hidden[i]);
  return s;
}

void TrainSpec::validate() const {
  try {
    xgrad::nn::parse_optimiser_kind(optimiser);
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(std::string("--optimiser: ") + e.what());
  }
  if (!(learning_rate > 0) || !std::isfinite(learning_rate))
    throw std::invalid_argument("--lr must be a finite number > 0");
  if (epochs == 0) throw std::invalid_argument("--epochs must be at least 1");
  if (cost != "mse")
    throw std::invalid_argument("--cost: regression uses mse (got '" + cost + "')");
  parse_penalty(penalty);
  if (!(lambda >= 0) || !std::isfinite(lambda))
    throw std::invalid_argument("--lambda must be a finite number >= 0");
  make_schedule(schedule, learning_rate, 1);
  if (shards == 0) throw std::invalid_argument("--shards must be at least 1");
}

Matrix TrainedModel::predict(const Matrix& x) const {
  Matrix z = net.predict(x_scaler.transform(x));
  return scale_target ? y_scaler.inverse_transform(z) : z;
}

TrainedModel train_network(const Dataset& train, const Dataset* test, const ModelSpec& model,
                           const TrainSpec& spec) {
  model.validate();
  spec.validate();
  TrainedModel out;
  out.scale_target = spec.scale_target;
  out.x_scaler.fit(train.x);
  const Matrix xs = out.x_scaler.transform(train.x);
  Matrix ys = train.y;
  if (spec.scale_target) {
    out.y_scaler.fit(train.y);
    ys = out.y_scaler.transform(train.y);
  }

  std::vector<std::size_t> sizes = {train.x.shape(1)};
  std::vector<xgrad::nn::Activation> acts;
  for (std::size_t h : model.hidden) {
    sizes.push_back(h);
    acts.push_back(parse_activation(model.activation, "--activation"));
  }
  sizes.push_back(train.y.shape(1));
  acts.push_back(parse_activation(model.output_activation, "--output-activation"));
  xgrad::nn::Initialiser init = xgrad::nn::Initialiser::parse(model.init);
  init.bias_value = model.bias_init;
  std::mt19937_64 rng(spec.seed);
  out.net = xgrad::nn::Network<double>(sizes, acts, init, rng);

  xgrad::nn::CostSpec cost;
  cost.cost = xgrad::nn::CostKind::MeanSquaredError;
  cost.regularisation.penalty = parse_penalty(spec.penalty);
  cost.regularisation.lambda = spec.lambda;
  cost.regularisation.include_biases = spec.penalise_biases;

  xgrad::nn::OptimiserOptions opts;
  opts.learning_rate = spec.learning_rate;
  auto opt = xgrad::nn::make_optimiser<double>(spec.optimiser, out.net.parameters(), opts);

  const std::size_t n = train.size();
  const std::size_t batch =
      opt->full_batch() || spec.batch_size == 0 || spec.batch_size >= n ? n : spec.batch_size;
  const std::size_t m = (n + batch - 1) / batch;  // minibatches per epoch
  const xgrad::nn::Schedule schedule = make_schedule(spec.schedule, spec.learning_rate, m);
  const double divide = spec.divide_lr_by_batches ? double(m) : 1.0;

  xgrad::nn::TrainerOptions run;
  run.epochs = spec.epochs;
  run.batch_size = batch < n ? batch : 0;  // 0: the whole training set
  run.shuffle = batch < n;
  // Shuffling draws from its own stream so that the initial weights of a seed do not
  // depend on the batch size.
  run.seed = spec.seed * 0x9E3779B97F4A7C15ull + 1;
  run.progress = false;
  run.shards = spec.shards;

  auto record_curve = [&](std::size_t epoch) {
    CurvePoint p;
    p.epoch = epoch;
    p.train_mse = score(out, train).mse;
    p.test_mse = test ? score(out, *test).mse : kNaN;
    out.curve.push_back(p);
  };
  // nn's Trainer runs the loop. The study adds report 000's rate divided by the number of
  // minibatches, set before each step, and a learning curve in y's original units.
  auto study = std::make_shared<xgrad::nn::LambdaCallback<double>>();
  study->batch_begin = [&](xgrad::nn::TrainingState<double>& s) {
    s.optimiser.set_learning_rate(schedule(s.epoch - 1, s.batch, m) / divide);
  };
  study->batch_end = [&](xgrad::nn::TrainingState<double>&) { ++out.steps; };
  study->epoch_end = [&](xgrad::nn::TrainingState<double>& s) {
    out.epochs_run = s.epoch;
    if (spec.curve_every > 0 && (s.epoch % spec.curve_every == 0 || s.epoch == spec.epochs))
      record_curve(s.epoch);
  };
  xgrad::nn::Trainer<double> trainer(out.net, *opt, cost, run);
  trainer.add_callback(study);
  const xgrad::nn::History& history = trainer.fit(xs, ys);
  if (history.stop == xgrad::nn::StopReason::NonFinite) {
    // The trainer put the last finite parameters back; the study reports the run as
    // diverged (NaN scores), with the trainer's account of where.
    out.diverged = true;
    out.diverged_reason = history.message;
  }
  return out;
}

Scores score(const TrainedModel& m, const Dataset& d) {
  if (m.diverged) return {kNaN, kNaN};
  const Matrix p = m.predict(d.x);
  for (double v : p)
    if (!std::isfinite(v)) return {kNaN, kNaN};
  return {mse(p, d.y), r2(p, d.y)};
}

}  // namespace runge
