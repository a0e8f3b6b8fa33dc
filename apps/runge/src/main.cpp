// runge: the regression study of reports 000-003 as one command-line tool.
//   runge train       one network: prints test MSE and R^2, writes curve + predictions CSV
//   runge baseline    polynomial OLS / Ridge / Lasso on the same split
//   runge sweep       grids over lr, lambda, layers, nodes, activation, optimiser, batch
//   runge experiment  the seven named experiments of issue 4
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <new>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <sys/wait.h>

#include <CLI/CLI.hpp>
#include <xgrad/threads.hpp>

#include "cli_checks.hpp"
#include "data.hpp"
#include "experiments.hpp"
#include "linear.hpp"
#include "sweep.hpp"
#include "train.hpp"

namespace {

using namespace runge;

/// An option's comma-separated items; empty ones are kept so that the option's parser
/// refuses them ("50," -> {"50", ""}) instead of a silent drop.
std::vector<std::string> split_list(const std::string& text) {
  return split_commas(text);
}

/// Names given to a list option (--optimiser, --activation, --penalty): none may be empty.
std::vector<std::string> split_names(const std::string& text, const std::string& option) {
  auto out = split_list(text);
  for (const auto& s : out)
    if (s.empty()) throw std::invalid_argument(option + ": empty item in '" + text + "'");
  return out;
}

double parse_double(const std::string& text, const std::string& option) {
  std::size_t used = 0;
  double v = 0;
  try {
    v = std::stod(text, &used);
  } catch (const std::out_of_range&) {
    throw std::invalid_argument(option + ": '" + text + "' is out of the range of a double");
  } catch (const std::exception&) {
    used = 0;
  }
  // std::stod also reads hexadecimal ("0x1" is 1): an option value is written in decimal.
  if (used == 0 || used != text.size() || text.find_first_of("xX") != std::string::npos)
    throw std::invalid_argument(option + ": '" + text + "' is not a number");
  return v;
}

/// "a,b,c" or "log:A,B,STEP" = 10^A, 10^(A+STEP), ..., 10^B.
std::vector<double> parse_doubles(const std::string& text, const std::string& option) {
  std::vector<double> out;
  if (text.rfind("log:", 0) == 0) {
    const auto parts = split_list(text.substr(4));
    if (parts.size() != 3) throw std::invalid_argument(option + ": log:A,B,STEP needs 3 numbers");
    const double a = parse_double(parts[0], option), b = parse_double(parts[1], option),
                 step = parse_double(parts[2], option);
    if (!(step > 0) || b < a)
      throw std::invalid_argument(option + ": log:A,B,STEP needs A <= B, STEP > 0");
    for (int k = 0; a + k * step <= b + 1e-9; ++k)
      out.push_back(std::pow(10.0, a + k * step));
    return out;
  }
  for (const auto& s : split_list(text))
    out.push_back(parse_double(s, option));
  if (out.empty()) throw std::invalid_argument(option + ": empty list");
  return out;
}

/// A list of whole numbers in [0, max]; `max` also keeps the conversion to size_t defined.
std::vector<std::size_t> parse_sizes(const std::string& text, const std::string& option,
                                     long long max) {
  std::vector<std::size_t> out;
  for (const auto& s : split_list(text)) {
    const double v = parse_double(s, option);
    if (v < 0 || v != std::floor(v))
      throw std::invalid_argument(option + ": '" + s + "' is not a whole number >= 0");
    if (v > double(max))
      throw std::invalid_argument(option + ": " + s + " is above the largest allowed, " +
                                  std::to_string(max));
    out.push_back(static_cast<std::size_t>(v));
  }
  if (out.empty()) throw std::invalid_argument(option + ": empty list");
  return out;
}

// Bounds of the count options: a negative number given to an unsigned option would
// otherwise wrap around to a huge count (an endless run or std::bad_alloc). Checked as
// signed integers so that "-1" is refused by the range check instead of converted.
constexpr long long kMaxPoints = 10'000'000;
constexpr long long kMaxEpochs = 10'000'000;
constexpr long long kMaxLayers = 1000;
constexpr long long kMaxNodes = 100'000;
constexpr long long kMaxDegree = 100;  // Franke's total degree 100 is already 5,151 columns
constexpr long long kMaxJobs = 1024;
constexpr long long kMaxFolds = 1'000'000;
constexpr long long kMaxBootstraps = 1'000'000;

/// Refuses a path that cannot be opened for writing, before any long computation runs;
/// a file that did not exist before is not left behind.
void check_writable(const std::string& path, const std::string& option) {
  std::error_code ec;
  const bool existed = std::filesystem::exists(path, ec);
  {
    std::ofstream probe(path, std::ios::app);
    if (!probe) throw std::runtime_error(option + ": cannot write " + path);
  }
  if (!existed) std::filesystem::remove(path, ec);
}

/// s in single quotes for /bin/sh.
std::string shell_quoted(const std::string& s) {
  std::string out = "'";
  for (char c : s)
    out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

/// Draws the figures of the experiments' CSVs in `dir` into dir/figures with
/// plots/make_figures.py when Debian's python3 has matplotlib; otherwise prints the
/// command for later. Returns false only when the script ran and failed.
bool draw_figures(const std::string& dir) {
  const std::string script = RUNGE_FIGURES_SCRIPT;  // apps/runge/CMakeLists.txt
  const std::string python = "/usr/bin/python3";
  const std::string figures = (std::filesystem::path(dir) / "figures").string();
  // --results=DIR: a folder whose name starts with '-' stays a value for argparse.
  const std::string command = python + " " + shell_quoted(script) + " " +
                              shell_quoted("--results=" + dir) + " " +
                              shell_quoted("--out=" + figures) + " --only-present";
  std::error_code ec;
  const bool have_script = std::filesystem::exists(script, ec);
  const bool have_matplotlib =
      std::filesystem::exists(python, ec) &&
      std::system((python + " -c 'import matplotlib' >/dev/null 2>&1").c_str()) == 0;
  if (!have_script || !have_matplotlib) {
    std::printf("figures: skipped (%s); draw them later with:\n  %s\n",
                have_script ? "no python3-matplotlib in /usr/bin/python3"
                            : "make_figures.py is not where this build put it",
                command.c_str());
    return true;
  }
  const int status = std::system(command.c_str());
  if (status != 0) {
    const int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    std::fprintf(stderr,
                 "runge: error: drawing the figures failed (%s %s %d); the CSVs are in %s\n",
                 script.c_str(), code >= 0 ? "exited with" : "was stopped by signal",
                 code >= 0 ? code : (WIFSIGNALED(status) ? WTERMSIG(status) : status), dir.c_str());
    return false;
  }
  return true;
}

struct DataOptions {
  std::string function = "runge";
  std::size_t points = 300;
  double noise = 0.05;
  std::uint64_t data_seed = 44;
  bool equispaced = false;
  double test_fraction = 0.2;
  std::uint64_t split_seed = 44;

  void add(CLI::App* app) {
    app->add_option("--function", function,
                    "Target: runge (1/(1+25x^2) on [-1,1]) or franke "
                    "(Franke's function on [0,1]^2)");
    app->add_option("--points", points, "Number of data points (report 000: 300, report 001: 18)")
        ->check(xgrad::apps::kIsWhole)
        ->check(CLI::Range(2LL, kMaxPoints));
    app->add_option("--noise", noise, "Standard deviation sigma of the Gaussian noise on y");
    app->add_option("--data-seed", data_seed, "Seed of the inputs and the noise")
        ->check(xgrad::apps::kNotNegative);
    app->add_flag("--equispaced", equispaced,
                  "Runge only: an even grid on [-1,1] instead of "
                  "uniform draws");
    app->add_option("--test-fraction", test_fraction,
                    "Fraction of the points held out for "
                    "testing, in (0,1)");
    app->add_option("--split-seed", split_seed, "Seed of the train/test shuffle")
        ->check(xgrad::apps::kNotNegative);
  }
  /// The data; with need_test_set (train, hold-out and bootstrap sweeps) the test part
  /// must have the 2 points an R^2 needs.
  SweepData load(bool need_test_set = true) const {
    DataSpec d;
    d.function = parse_function(function);
    d.n = points;
    d.noise = noise;
    d.seed = data_seed;
    d.equispaced = equispaced;
    SweepData data = make_sweep_data(d, test_fraction, split_seed);
    if (need_test_set && data.split.test.size() < 2) {
      // R^2 of one test point is 0/0.
      std::ostringstream msg;
      msg << "--test-fraction " << test_fraction << " of " << points << " points leaves "
          << data.split.test.size() << " test point(s); R^2 needs at least 2";
      throw std::invalid_argument(msg.str());
    }
    return data;
  }
};

struct ModelOptions {
  std::string activation = "sigmoid";
  std::string output_activation = "identity";
  std::string init = "standard_normal";
  double bias_init = 0.01;
  void add(CLI::App* app, bool sweep) {
    app->add_option("--activation", activation,
                    sweep ? "Hidden activations to sweep, comma-separated: sigmoid, tanh, relu, "
                            "leaky_relu[:alpha], elu[:alpha], identity"
                          : "Activation of every hidden layer: sigmoid, tanh, relu, "
                            "leaky_relu[:alpha], elu[:alpha], identity");
    app->add_option("--output-activation", output_activation,
                    "Activation of the output layer (identity for regression)");
    app->add_option("--init", init,
                    "Weight initialiser: standard_normal (report 000), "
                    "normal:SIGMA, glorot_uniform, glorot_normal, he_normal, "
                    "he_uniform");
    app->add_option("--bias-init", bias_init, "Constant initial bias (report 000: 0.01)");
  }
  ModelSpec spec() const {
    ModelSpec m;
    m.activation = activation;
    m.output_activation = output_activation;
    m.init = init;
    m.bias_init = bias_init;
    return m;
  }
};

struct TrainOptions {
  std::string optimiser = "adam";
  std::string lr = "0.01";
  std::string schedule = "constant";
  std::size_t epochs = 3000;
  std::string batch_size = "0";
  bool divide_lr = false;
  std::string cost = "mse";
  std::string penalty = "none";
  std::string lambda = "0";
  bool penalise_biases = false;
  std::uint64_t seed = 1;
  bool no_scale_target = false;
  std::size_t shards = 1;  // train only: a sweep runs its points in parallel instead
  void add(CLI::App* app, bool sweep) {
    const std::string list = sweep ? " (comma-separated list to sweep)" : "";
    app->add_option("--optimiser", optimiser,
                    "Optimiser: gd (full batch), sgd, momentum, adagrad, rmsprop, adam" + list);
    app->add_option(
        "--lr", lr,
        "Learning rate eta" + list + (sweep ? "; log:A,B,STEP gives 10^A ... 10^B" : ""));
    app->add_option("--schedule", schedule,
                    "Learning-rate schedule: constant; inverse_time (report 000: eta t1/(t+t1), "
                    "t1 = 30 batches); epoch_decay (report 003: eta/(e m + 1)); these three "
                    "scale --lr. Or one that sets its own starting rate (then leave out "
                    "--lr): step:ETA0,DROP,EVERY (eta0 drop^floor(e/every)), "
                    "exponential:ETA0,GAMMA (eta0 gamma^e), inverse_time:T0,T1 (t0/(t+t1), "
                    "so it starts at t0/t1; t = step)");
    app->add_option("--epochs", epochs, "Passes over the training data")
        ->check(xgrad::apps::kIsWhole)
        ->check(CLI::Range(1LL, kMaxEpochs));
    app->add_option("--batch-size,--batch", batch_size, "Minibatch size, 0 = full batch" + list);
    app->add_flag("--divide-lr", divide_lr,
                  "Divide the rate by the number of minibatches (report 000's SGD)");
    app->add_option("--cost", cost, "Cost function: mse (report 000 eq. 16)");
    app->add_option("--penalty", penalty,
                    "Regularisation: none, l1, l2 (report 000 eq. 22: "
                    "lambda sum|W| or lambda sum W^2)" +
                        list);
    app->add_option("--lambda", lambda, "Regularisation strength lambda" + list);
    app->add_flag("--penalise-biases", penalise_biases, "Apply the penalty to biases too");
    app->add_option("--seed", seed, "Seed of the initial weights and the minibatch shuffles")
        ->check(xgrad::apps::kNotNegative);
    app->add_flag("--no-scale-target", no_scale_target,
                  "Train on raw y instead of standardised y (inputs are always standardised "
                  "on the training part; metrics are always in y's units)");
    if (!sweep) {
      app->add_option("--shards", shards,
                      "Data-parallel steps: cut each batch into this many row blocks whose "
                      "passes run at once on the --threads threads (the same numbers at any "
                      "--threads; the last bits differ from 1 shard). Pays off for small "
                      "networks, whose products are too small to split: 2 with --threads 2")
          ->check(xgrad::apps::kIsWhole)
          ->check(CLI::Range(1LL, kMaxJobs));
    }
  }
  /// The starting rate when --schedule sets its own (step:, exponential:, ...), after
  /// refusing an --lr given next to it; otherwise nothing.
  std::optional<double> rate_of_schedule(const CLI::App* app) const {
    const std::optional<double> eta0 = schedule_starting_rate(schedule);
    if (eta0 && app->count("--lr") > 0) {
      std::ostringstream rate;
      rate << *eta0;
      throw std::invalid_argument("--lr " + lr + ": --schedule " + schedule +
                                  " sets its own starting rate (" + rate.str() +
                                  "); leave out --lr, or use a schedule that scales it "
                                  "(constant, inverse_time, epoch_decay)");
    }
    return eta0;
  }
  TrainSpec spec(const CLI::App* app) const {
    TrainSpec t;
    t.optimiser = optimiser;
    t.learning_rate = rate_of_schedule(app).value_or(parse_double(lr, "--lr"));
    t.schedule = schedule;
    t.epochs = epochs;
    const auto batches = parse_sizes(batch_size, "--batch-size", kMaxPoints);
    if (batches.size() != 1)
      throw std::invalid_argument("--batch-size: train takes one size, got '" + batch_size +
                                  "' (lists are for runge sweep)");
    t.batch_size = batches.front();
    if (t.batch_size != 0 && full_batch_optimiser(optimiser)) {
      throw std::invalid_argument("--batch-size " + batch_size +
                                  ": --optimiser gd steps on the full batch; use --batch-size 0, "
                                  "or sgd (or another optimiser) for minibatches");
    }
    t.divide_lr_by_batches = divide_lr;
    t.cost = cost;
    t.penalty = penalty;
    t.lambda = parse_double(lambda, "--lambda");
    if (no_penalty(penalty) && t.lambda != 0) {
      throw std::invalid_argument("--lambda " + lambda + " has no effect with --penalty " +
                                  penalty + "; give --penalty l1 or l2");
    }
    if ((penalty == "l1" || penalty == "l2") && t.lambda == 0) {
      throw std::invalid_argument("--penalty " + penalty +
                                  " with --lambda 0 is no penalty; give --lambda > 0");
    }
    t.penalise_biases = penalise_biases;
    t.seed = seed;
    t.scale_target = !no_scale_target;
    t.shards = shards;
    return t;
  }
};

void write_predictions(const std::string& path, const SweepData& data, const TrainedModel& m,
                       Function f) {
  std::ofstream out(path);
  if (!out) throw std::runtime_error("--predictions: cannot write " + path);
  const bool two_d = data.full.x.shape(1) == 2;
  out << (two_d ? "x,y" : "x") << ",part,target,prediction,true_function\n";
  auto rows = [&](const Matrix& x, const Matrix* y, const char* part) {
    const Matrix p = m.predict(x);
    const Matrix t = true_function(f, x);
    for (std::size_t i = 0; i < x.shape(0); ++i) {
      out << x(i, 0);
      if (two_d) out << ',' << x(i, 1);
      out << ',' << part << ',';
      if (y)
        out << (*y)(i, 0);
      else
        out << "nan";
      out << ',' << p(i, 0) << ',' << t(i, 0) << '\n';
    }
  };
  out.precision(10);
  rows(data.split.train.x, &data.split.train.y, "train");
  rows(data.split.test.x, &data.split.test.y, "test");
  if (!two_d) {
    Matrix grid({401, 1});
    for (std::size_t i = 0; i < 401; ++i)
      grid(i, 0) = -1.0 + 2.0 * double(i) / 400.0;
    rows(grid, nullptr, "grid");
  }
}

}  // namespace

int main(int argc, char** argv) {
  // Progress lines reach a log file as they happen, also when the run is killed.
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  CLI::App app{
      "runge: feed-forward networks vs polynomial regression on the Runge and Franke "
      "functions (xgrad apps/runge; reports 000-003)"};
  app.option_defaults()->always_capture_default();
  app.require_subcommand(1);
  int threads = 1;
  const std::string threads_help =
      "threads of a single run, GEMMs and loops (sweeps always use 1 per worker); a small "
      "network's products stay on one thread: train --shards spreads its rows instead";
  app.add_option("--threads", threads, threads_help)
      ->check(xgrad::apps::kIsWhole)
      ->check(CLI::Range(1LL, kMaxJobs));

  // ---- train ----
  auto* train = app.add_subcommand("train",
                                   "Train one network; print test MSE and R^2; write "
                                   "the learning curve and the predictions as CSV");
  train->option_defaults()->always_capture_default();
  DataOptions tdata;
  ModelOptions tmodel;
  TrainOptions ttrain;
  std::size_t tlayers = 1;
  std::string tnodes = "50";
  std::size_t curve_every = 1;
  std::string curve_path = "runge_curve.csv", pred_path = "runge_predictions.csv";
  tdata.add(train);
  train->add_option("--layers", tlayers, "Number of hidden layers")
      ->check(xgrad::apps::kIsWhole)
      ->check(CLI::Range(1LL, kMaxLayers));
  train->add_option("--nodes", tnodes,
                    "Nodes per hidden layer: one number for every layer, "
                    "or one per layer (50,20)");
  tmodel.add(train, false);
  ttrain.add(train, false);
  train->add_option("--threads", threads, threads_help)
      ->check(xgrad::apps::kIsWhole)
      ->check(CLI::Range(1LL, kMaxJobs));
  train->add_option("--curve-every", curve_every, "Record train/test MSE every k epochs")
      ->check(xgrad::apps::kIsWhole)
      ->check(CLI::Range(1LL, kMaxEpochs));
  train->add_option("--curve", curve_path, "Learning-curve CSV (epoch,train_mse,test_mse)");
  train->add_option("--predictions", pred_path,
                    "Predictions CSV (inputs, part, target, prediction, true function): the "
                    "train and test points, and for Runge 401 'grid' rows on [-1,1] (target "
                    "nan) to draw the fitted curve");

  // ---- baseline ----
  auto* base = app.add_subcommand("baseline",
                                  "Polynomial OLS (LAPACK dgelsd), Ridge (closed "
                                  "form) and Lasso (coordinate descent) on the same "
                                  "split; print and write MSE and R^2");
  base->option_defaults()->always_capture_default();
  DataOptions bdata;
  std::string methods = "ols,ridge,lasso", degrees = "12", blambdas = "1e-4";
  std::string base_out = "runge_baseline.csv";
  bdata.add(base);
  base->add_option("--method", methods, "Methods, comma-separated: ols, ridge, lasso");
  base->add_option("--degree", degrees, "Polynomial degrees, comma-separated (report 000: 12)");
  base->add_option("--lambda", blambdas,
                   "Ridge/Lasso strengths, comma-separated (Ridge: "
                   "lambda ||b||^2; Lasso: lambda ||b||_1 next to "
                   "1/(2n) ||y - Xb||^2, as scikit-learn)");
  base->add_option("--out", base_out, "Output CSV");

  // ---- sweep ----
  auto* sw = app.add_subcommand("sweep",
                                "Grid sweep in parallel (one CSV row per point, "
                                "resumable, identical to a serial run)");
  sw->option_defaults()->always_capture_default();
  DataOptions sdata;
  ModelOptions smodel;
  TrainOptions strain;
  std::string slayers = "1", snodes = "50", eval = "holdout", sweep_out = "runge_sweep.csv";
  std::size_t folds = 5, bootstraps = 20, jobs = 0;
  std::uint64_t resample_seed = 2024;
  bool fresh = false;
  sdata.add(sw);
  sw->add_option("--layers", slayers, "Hidden-layer counts to sweep, comma-separated");
  sw->add_option("--nodes", snodes, "Nodes per hidden layer to sweep, comma-separated");
  smodel.add(sw, true);
  strain.add(sw, true);
  sw->add_option("--eval", eval,
                 "Evaluation: holdout (train part vs test part), kfold (k-fold "
                 "CV over all points), bootstrap (resampled train part vs test "
                 "part)");
  sw->add_option("--folds", folds, "k of k-fold cross-validation")
      ->check(xgrad::apps::kIsWhole)
      ->check(CLI::Range(2LL, kMaxFolds));
  sw->add_option("--bootstraps", bootstraps, "Number of bootstrap resamples")
      ->check(xgrad::apps::kIsWhole)
      ->check(CLI::Range(1LL, kMaxBootstraps));
  sw->add_option("--resample-seed", resample_seed, "Seed of the folds and bootstrap draws")
      ->check(xgrad::apps::kNotNegative);
  sw->add_option("--jobs,--workers", jobs,
                 "Worker threads (0 = all cores); each worker's BLAS uses 1")
      ->check(xgrad::apps::kIsWhole)
      ->check(CLI::Range(0LL, kMaxJobs));
  sw->add_option("--out", sweep_out,
                 "Sweep CSV; an existing one of the same grid is resumed; one run at a time "
                 "writes it (OUT.lock)");
  sw->add_flag("--fresh", fresh, "Start over instead of resuming an existing --out file");

  // ---- experiment ----
  auto* ex = app.add_subcommand("experiment",
                                "Run one of the named experiments that "
                                "reproduce the reports (CSV for the figures)");
  ex->option_defaults()->always_capture_default();
  std::string ex_name, ex_dir = ExperimentOptions{}.out_dir;
  bool quick = false, ex_fresh = false;
  std::size_t ex_jobs = 0;
  std::string names_help = "Experiment name:";
  std::vector<std::string> names;
  for (const auto& e : experiments()) {
    names.push_back(e.name);
    names_help += "\n    " + e.name + ": " + e.summary;
  }
  names.push_back("all");
  names_help += "\n    all: every experiment in order";
  ex->add_option("name", ex_name, names_help)->required()->check(CLI::IsMember(names));
  const std::string quick_dir = "runge-results-quick";
  ex->add_option("--out-dir", ex_dir,
                 "Folder of the CSV files and figures/, relative to the working directory (the "
                 "committed results: --out-dir apps/runge/results). With --quick the default "
                 "is " +
                     quick_dir + ", so a smoke test never touches full results");
  ex->add_flag("--quick", quick, "Tiny grids and few epochs (a smoke test, not the results)");
  bool no_figures = false;
  ex->add_flag("--no-figures", no_figures,
               "Write the CSVs only; otherwise the figures are drawn into OUT_DIR/figures by "
               "plots/make_figures.py when /usr/bin/python3 has matplotlib");
  ex->add_option("--jobs,--workers", ex_jobs, "Sweep worker threads (0 = all cores)")
      ->check(xgrad::apps::kIsWhole)
      ->check(CLI::Range(0LL, kMaxJobs));
  ex->add_flag("--fresh", ex_fresh, "Recompute sweeps instead of resuming their CSVs");

  // Options of the main app (--threads) are accepted after the subcommand too.
  for (auto* sub : {train, base, sw, ex})
    sub->fallthrough();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and friends exit 0; every refused command line exits 2, as the checks below.
    const int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }

  try {
    if (threads < 1) throw std::invalid_argument("--threads must be at least 1");
    xgrad::set_threads(threads);
    if (*train) {
      ModelSpec m = tmodel.spec();
      const auto nodes = parse_sizes(tnodes, "--nodes", kMaxNodes);
      if (tlayers == 0) throw std::invalid_argument("--layers must be at least 1");
      if (nodes.size() == 1)
        m.hidden.assign(tlayers, nodes[0]);
      else if (nodes.size() == tlayers)
        m.hidden = nodes;
      else
        throw std::invalid_argument("--nodes: give one number or one per layer (--layers " +
                                    std::to_string(tlayers) + ")");
      TrainSpec t = ttrain.spec(train);
      t.curve_every = curve_every;
      m.validate();
      t.validate();
      const SweepData data = tdata.load();
      // Before training: a bad output path should not cost a whole run.
      check_writable(curve_path, "--curve");
      check_writable(pred_path, "--predictions");
      // Sizes past the training rows are not errors (the trainer caps them), but say so.
      const std::size_t rows = data.split.train.size();
      if (t.batch_size > rows)
        std::printf("note: --batch-size %zu is more than the %zu training rows: full batch\n",
                    t.batch_size, rows);
      if (t.shards > rows)
        std::printf("note: --shards %zu is more than the %zu training rows: %zu shards\n", t.shards,
                    rows, rows);
      std::printf(
          "runge train: %s, %zu train / %zu test points, hidden %s %s, %s lr %g (%s), "
          "%zu epochs, batch %zu, threads %d, shards %zu\n",
          tdata.function.c_str(), data.split.train.size(), data.split.test.size(),
          m.layers_string().c_str(), m.activation.c_str(), t.optimiser.c_str(), t.learning_rate,
          t.schedule.c_str(), t.epochs, t.batch_size, xgrad::threads(), t.shards);
      const TrainedModel model = train_network(data.split.train, &data.split.test, m, t);
      {
        std::ofstream out(curve_path);
        if (!out) throw std::runtime_error("--curve: cannot write " + curve_path);
        out << "epoch,train_mse,test_mse\n";
        out.precision(10);
        for (const auto& p : model.curve)
          out << p.epoch << ',' << p.train_mse << ',' << p.test_mse << '\n';
      }
      if (model.diverged) {
        std::printf("diverged: %s\nwrote %s (up to the divergence); no predictions\n",
                    model.diverged_reason.c_str(), curve_path.c_str());
        return 3;
      }
      write_predictions(pred_path, data, model, parse_function(tdata.function));
      const Scores s = score(model, data.split.test);
      const Scores st = score(model, data.split.train);
      std::printf("train MSE %.6g  R2 %.6f\ntest  MSE %.6g  R2 %.6f\n", st.mse, st.r2, s.mse, s.r2);
      std::printf("wrote %s and %s\n", curve_path.c_str(), pred_path.c_str());
    } else if (*base) {
      // Every option is checked before --out is opened: a refused command line must not
      // empty the CSV of an earlier run.
      std::vector<LinearMethod> ms;
      for (const auto& s : split_list(methods))
        ms.push_back(parse_linear_method(s));
      const auto ds = parse_sizes(degrees, "--degree", kMaxDegree);
      const auto ls = parse_doubles(blambdas, "--lambda");
      for (auto d : ds)
        if (d < 1) throw std::invalid_argument("--degree must be at least 1");
      for (double l : ls)
        if (!(l >= 0)) throw std::invalid_argument("--lambda must be >= 0");
      refuse_repeats(ms, "--method", [](LinearMethod m) { return linear_method_name(m); });
      refuse_repeats(ds, "--degree", [](std::size_t d) { return std::to_string(d); });
      refuse_repeats(ls, "--lambda", [](double l) {
        std::ostringstream t;
        t << l;
        return t.str();
      });
      const SweepData data = bdata.load();
      std::ofstream out(base_out);
      if (!out) throw std::runtime_error("--out: cannot write " + base_out);
      out << "method,degree,lambda,train_mse,test_mse,test_r2,converged\n";
      out.precision(10);
      std::printf("%-6s %6s %10s %12s %12s %9s\n", "method", "degree", "lambda", "train_mse",
                  "test_mse", "test_R2");
      for (auto meth : ms)
        for (auto d : ds)
          for (double l : (meth == LinearMethod::OLS ? std::vector<double>{0.0} : ls)) {
            const auto model = fit_linear(data.split.train, meth, int(d), l);
            const Matrix pt = model.predict(data.split.test.x);
            const double tr = mse(model.predict(data.split.train.x), data.split.train.y);
            const double te = mse(pt, data.split.test.y), rr = r2(pt, data.split.test.y);
            std::printf("%-6s %6zu %10.3g %12.6g %12.6g %9.5f%s\n", linear_method_name(meth), d, l,
                        tr, te, rr, model.converged ? "" : "  (lasso not converged)");
            out << linear_method_name(meth) << ',' << d << ',' << l << ',' << tr << ',' << te << ','
                << rr << ',' << (model.converged ? 1 : 0) << '\n';
          }
      std::printf("wrote %s\n", base_out.c_str());
    } else if (*sw) {
      SweepSpec s;
      s.model = smodel.spec();
      s.train.epochs = strain.epochs;
      s.train.schedule = strain.schedule;
      s.train.divide_lr_by_batches = strain.divide_lr;
      s.train.cost = strain.cost;
      s.train.penalise_biases = strain.penalise_biases;
      s.train.seed = strain.seed;
      s.train.scale_target = !strain.no_scale_target;
      s.axes.optimiser = split_names(strain.optimiser, "--optimiser");
      s.axes.activation = split_names(smodel.activation, "--activation");
      if (!s.axes.activation.empty()) s.model.activation = s.axes.activation.front();
      s.axes.penalty = split_names(strain.penalty, "--penalty");
      s.axes.layers = parse_sizes(slayers, "--layers", kMaxLayers);
      s.axes.nodes = parse_sizes(snodes, "--nodes", kMaxNodes);
      s.axes.batch_size = parse_sizes(strain.batch_size, "--batch-size", kMaxPoints);
      s.axes.lambda = parse_doubles(strain.lambda, "--lambda");
      // A schedule with its own starting rate: that rate is the lr of every row.
      const std::optional<double> eta0 = strain.rate_of_schedule(sw);
      s.axes.lr = eta0 ? std::vector<double>{*eta0} : parse_doubles(strain.lr, "--lr");
      s.evaluation = parse_evaluation(eval);
      s.folds = folds;
      s.bootstraps = bootstraps;
      s.resample_seed = resample_seed;
      s.jobs = jobs;
      if (s.evaluation == Evaluation::Bootstrap && bootstraps < 1)
        throw std::invalid_argument("--bootstraps must be at least 1");
      const SweepData data = sdata.load(s.evaluation != Evaluation::KFold);
      if (s.evaluation == Evaluation::KFold) kfold_indices(data.full.size(), folds, 1);
      s.fresh = fresh;
      const std::size_t workers =
          std::min<std::size_t>(jobs ? jobs : std::max(1u, std::thread::hardware_concurrency()),
                                std::max<std::size_t>(1, s.axes.size()));
      checked_grid(data, s);  // a refused grid or --out says so before the header line
      check_sweep_out(sweep_out);
      std::printf("runge sweep: %zu point%s, %s, %zu worker%s (BLAS 1 thread each) -> %s\n",
                  s.axes.size(), s.axes.size() == 1 ? "" : "s", evaluation_name(s.evaluation),
                  workers, workers == 1 ? "" : "s", sweep_out.c_str());
      const SweepStats st =
          run_sweep(data, s, sweep_out, 0, [](const std::string& l) { std::puts(l.c_str()); });
      std::printf("done: %zu points, %zu run, %zu reused from the CSV, %zu diverged, %.2f s\n",
                  st.points, st.run, st.reused, st.diverged, st.seconds);
    } else if (*ex) {
      if (quick && ex->count("--out-dir") == 0) ex_dir = quick_dir;
      ExperimentOptions o;
      o.out_dir = ex_dir;
      o.quick = quick;
      o.jobs = ex_jobs;
      o.fresh = ex_fresh;
      o.log = [](const std::string& l) { std::puts(l.c_str()); };
      std::vector<std::string> run = {ex_name};
      if (ex_name == "all") {
        run.clear();
        for (const auto& e : experiments())
          run.push_back(e.name);
      }
      for (const auto& n : run) {
        const double secs = run_experiment(n, o);
        std::printf("experiment %s: %.1f s wall time, CSV in %s\n", n.c_str(), secs,
                    ex_dir.c_str());
      }
      if (!no_figures && !draw_figures(ex_dir)) return 4;
    }
  } catch (const std::bad_alloc&) {  // not a refused command line: exit 1, as in mnist
    std::fprintf(stderr,
                 "runge: error: out of memory: the data or network asked for more memory than "
                 "this machine gives (lower --points, --nodes, --layers, --degree or --jobs)\n");
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "runge: error: %s\n", e.what());
    return 2;
  }
  return 0;
}
