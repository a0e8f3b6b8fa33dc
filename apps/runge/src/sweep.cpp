#include "sweep.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <unistd.h>

#include <xgrad/nn/activation.hpp>
#include <xgrad/threads.hpp>

#include "file_lock.hpp"
#include "output_file.hpp"

namespace runge {

BlasThreadsGuard::BlasThreadsGuard(int n) : previous_(xgrad::threads()) {
  xgrad::set_threads(n);
}

BlasThreadsGuard::~BlasThreadsGuard() {
  try {
    xgrad::set_threads(previous_);
  } catch (...) {  // previous_ came from threads(), so this cannot fail; never throw here
  }
}

namespace {
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

std::string fmt(double v, int digits = 10) {
  if (std::isnan(v)) return "nan";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*g", digits, v);
  return buf;
}

double mean_of(const std::vector<double>& v) {
  double s = 0;
  for (double x : v)
    s += x;
  return s / double(v.size());
}
double std_of(const std::vector<double>& v) {
  if (v.size() < 2) return 0;
  const double m = mean_of(v);
  double s = 0;
  for (double x : v)
    s += (x - m) * (x - m);
  return std::sqrt(s / double(v.size() - 1));
}

/// A result field as a number: "nan", or a decimal number as fmt writes it (strtod alone
/// would also take hexadecimal, "inf" and leading spaces). Anything else (a hand edit,
/// another tool's output) is refused, naming where, instead of being reused.
double result_number(const std::string& text, const std::string& column, const std::string& where) {
  if (text == "nan") return kNaN;
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  const bool decimal =
      !text.empty() && text.find_first_not_of("0123456789+-.eE") == std::string::npos;
  if (!decimal || end != text.c_str() + text.size()) {
    throw std::runtime_error(where + ": " + column + " is \"" + text + "\", not a number");
  }
  return v;
}

/// A CSV field without commas: a schedule such as step:0.1,0.5,10 is written step:0.1;0.5;10.
std::string csv_field(std::string text) {
  std::replace(text.begin(), text.end(), ',', ';');
  return text;
}

}  // namespace

std::size_t GridAxes::size() const {
  // As expand() counts: gd takes one batch size, penalty none one lambda.
  std::size_t batches = 0, lambdas = 0;
  for (const auto& o : optimiser)
    batches += full_batch_optimiser(o) ? 1 : batch_size.size();
  for (const auto& p : penalty)
    lambdas += no_penalty(p) ? 1 : lambda.size();
  if (batch_size.empty()) batches = 0;
  if (lambda.empty()) lambdas = 0;
  return batches * lambdas * activation.size() * layers.size() * nodes.size() * lr.size();
}

void GridAxes::validate() const {
  if (size() == 0) throw std::invalid_argument("sweep: every grid axis needs at least one value");
  for (auto l : layers)
    if (l == 0) throw std::invalid_argument("--layers: 0 hidden layers is not a network");
  for (auto n : nodes)
    if (n == 0) throw std::invalid_argument("--nodes: a hidden layer of 0 nodes is impossible");
  for (double v : lr)
    if (!(v > 0) || !std::isfinite(v)) throw std::invalid_argument("--lr values must be > 0");
  for (double v : lambda)
    if (!(v >= 0) || !std::isfinite(v)) throw std::invalid_argument("--lambda values must be >= 0");
  const auto number = [](double v) { return fmt(v); };
  const auto count = [](std::size_t v) { return std::to_string(v); };
  refuse_repeats(optimiser, "--optimiser", canonical_optimiser);
  refuse_repeats(activation, "--activation", [](const std::string& a) {
    try {
      return xgrad::nn::Activation::parse(a).name();  // "RELU" and "relu" are one
    } catch (const std::invalid_argument&) {
      return a;
    }
  });
  refuse_repeats(penalty, "--penalty",
                 [](const std::string& p) { return no_penalty(p) ? std::string("none") : p; });
  refuse_repeats(layers, "--layers", count);
  refuse_repeats(nodes, "--nodes", count);
  refuse_repeats(batch_size, "--batch-size", count);
  refuse_repeats(lambda, "--lambda", number);
  refuse_repeats(lr, "--lr", number);
  // A value that no point can use would be dropped without a word.
  bool any_minibatch_optimiser = false, any_penalty = false;
  for (const auto& o : optimiser)
    any_minibatch_optimiser = any_minibatch_optimiser || !full_batch_optimiser(o);
  for (const auto& p : penalty)
    any_penalty = any_penalty || !no_penalty(p);
  if (!any_minibatch_optimiser && (batch_size.size() != 1 || batch_size[0] != 0))
    throw std::invalid_argument(
        "--batch-size: gd always steps on the full batch; give "
        "--batch-size 0, or an optimiser that takes minibatches");
  if (!any_penalty && (lambda.size() != 1 || lambda[0] != 0))
    throw std::invalid_argument(
        "--lambda: penalty none ignores lambda; give --lambda 0, or "
        "--penalty l1 or l2");
  // l1 or l2 at lambda 0 is the network without a penalty under another label (train
  // refuses it too).
  if (any_penalty && std::find(lambda.begin(), lambda.end(), 0.0) != lambda.end())
    throw std::invalid_argument(
        "--lambda 0 with --penalty l1 or l2 is no penalty (the point would repeat penalty "
        "none under another label); give lambdas > 0, and --penalty none for the "
        "unpenalised network");
}

std::vector<GridPoint> expand(const GridAxes& a) {
  a.validate();
  const std::vector<std::size_t> full_batch_only = {0};
  const std::vector<double> no_lambda = {0.0};
  std::vector<GridPoint> out;
  out.reserve(a.size());
  for (const auto& o : a.optimiser)
    for (const auto& act : a.activation)
      for (const auto& pen : a.penalty)
        for (auto l : a.layers)
          for (auto n : a.nodes)
            // gd steps on the whole training set whatever the batch size, and a
            // penalty of none ignores lambda: one point each, not copies under other labels.
            for (auto b : full_batch_optimiser(o) ? full_batch_only : a.batch_size)
              for (double lam : no_penalty(pen) ? no_lambda : a.lambda)
                for (double lr : a.lr) {
                  GridPoint p;
                  p.index = out.size();
                  p.optimiser = canonical_optimiser(o);
                  p.activation = act;
                  p.penalty = pen;
                  p.layers = l;
                  p.nodes = n;
                  p.batch_size = b;
                  p.lambda = lam;
                  p.lr = lr;
                  out.push_back(p);
                }
  return out;
}

Evaluation parse_evaluation(const std::string& text) {
  if (text == "holdout") return Evaluation::Holdout;
  if (text == "kfold") return Evaluation::KFold;
  if (text == "bootstrap") return Evaluation::Bootstrap;
  throw std::invalid_argument("--eval: unknown evaluation '" + text +
                              "' (expected holdout, kfold or bootstrap)");
}

const char* evaluation_name(Evaluation e) {
  switch (e) {
    case Evaluation::Holdout:
      return "holdout";
    case Evaluation::KFold:
      return "kfold";
    case Evaluation::Bootstrap:
      return "bootstrap";
  }
  return "?";
}

PointResult evaluate_point(const GridPoint& p, const SweepData& data, const SweepSpec& spec) {
  ModelSpec model = spec.model;
  model.hidden.assign(p.layers, p.nodes);
  model.activation = p.activation;
  TrainSpec train = spec.train;
  train.optimiser = p.optimiser;
  train.learning_rate = p.lr;
  train.penalty = p.penalty;
  train.lambda = p.lambda;
  train.batch_size = p.batch_size;
  train.curve_every = 0;

  PointResult r;
  r.point = p;
  std::vector<double> mses, r2s, train_mses;
  bool diverged = false;
  auto run = [&](const Dataset& tr, const Dataset& te) {
    if (diverged) return;
    const TrainedModel m = train_network(tr, nullptr, model, train);
    const Scores s = score(m, te);
    const double train_mse = score(m, tr).mse;
    // Any score that is not a number (an overflow to inf too) is a diverged point: a row
    // marked ok holds finite scores only, the rule resume checks (check_result_fields).
    if (!std::isfinite(s.mse) || !std::isfinite(s.r2) || !std::isfinite(train_mse)) {
      diverged = true;
      return;
    }
    mses.push_back(s.mse);
    r2s.push_back(s.r2);
    train_mses.push_back(train_mse);
  };
  switch (spec.evaluation) {
    case Evaluation::Holdout:
      run(data.split.train, data.split.test);
      break;
    case Evaluation::KFold: {
      const auto folds = kfold_indices(data.full.size(), spec.folds, spec.resample_seed);
      for (std::size_t f = 0; f < folds.size(); ++f) {
        std::vector<char> in_fold(data.full.size(), 0);
        for (auto i : folds[f])
          in_fold[i] = 1;
        std::vector<std::size_t> rest;
        for (std::size_t i = 0; i < data.full.size(); ++i)
          if (!in_fold[i]) rest.push_back(i);
        run(subset(data.full, rest), subset(data.full, folds[f]));
      }
      break;
    }
    case Evaluation::Bootstrap: {
      for (std::size_t b = 0; b < spec.bootstraps; ++b) {
        std::mt19937_64 rng(spec.resample_seed + b);
        run(subset(data.split.train, bootstrap_indices(data.split.train.size(), rng)),
            data.split.test);
      }
      break;
    }
  }
  if (diverged) {
    r.status = "diverged";
    r.mse = r.mse_std = r.r2 = r.r2_std = r.train_mse = kNaN;
  } else {
    r.status = "ok";
    r.mse = mean_of(mses);
    r.mse_std = std_of(mses);
    r.r2 = mean_of(r2s);
    r.r2_std = std_of(r2s);
    r.train_mse = mean_of(train_mses);
  }
  return r;
}

SweepData make_sweep_data(const DataSpec& spec, double test_fraction, std::uint64_t split_seed) {
  SweepData d;
  d.full = generate(spec);
  d.split = train_test_split(d.full, test_fraction, split_seed);
  d.settings = {spec, test_fraction, split_seed};
  return d;
}

std::string csv_header() {
  return "point,function,points,noise,data_seed,equispaced,test_fraction,split_seed,init,"
         "bias_init,output_activation,cost,schedule,divide_lr,penalise_biases,scale_target,seed,"
         "optimiser,activation,penalty,layers,nodes,batch_size,lambda,lr,epochs,evaluation,"
         "folds,bootstraps,resample_seed,status,mse,mse_std,r2,r2_std,train_mse,log10_mse";
}

namespace {
/// Where column `name` stands in csv_header().
std::size_t column_index(const char* name) {
  const auto names = split_commas(csv_header());
  for (std::size_t c = 0; c < names.size(); ++c)
    if (names[c] == name) return c;
  throw std::logic_error(std::string("sweep CSV header has no column ") + name);
}

// The columns of csv_header() from `point` up to `status`: everything a row's numbers
// depend on. Two rows are the same grid point when all but `point` agree.
std::size_t status_column() {
  static const std::size_t column = column_index("status");
  return column;
}

/// The settings columns of a row (1 .. status), joined: the row's identity for resume.
std::string row_key(const std::vector<std::string>& fields) {
  std::string key;
  for (std::size_t c = 1; c < status_column(); ++c)
    key += fields[c] + ',';
  return key;
}

std::string with_index(std::vector<std::string> fields, std::size_t index) {
  fields[0] = std::to_string(index);
  std::string line;
  for (std::size_t c = 0; c < fields.size(); ++c)
    line += (c ? "," : "") + fields[c];
  return line;
}
}  // namespace

std::string csv_row(const PointResult& r, const SweepSpec& spec, const DataSettings& data) {
  const GridPoint& p = r.point;
  const Evaluation e = spec.evaluation;
  const bool split_used = e != Evaluation::KFold;  // k-fold splits all the points
  const TrainSpec& t = spec.train;
  const ModelSpec& m = spec.model;
  std::ostringstream s;
  s << p.index << ',' << function_name(data.spec.function) << ',' << data.spec.n << ','
    << fmt(data.spec.noise) << ',' << data.spec.seed << ',' << (data.spec.equispaced ? 1 : 0) << ','
    << (split_used ? fmt(data.test_fraction) : "") << ','
    << (split_used ? std::to_string(data.split_seed) : "") << ',' << m.init << ','
    << fmt(m.bias_init) << ',' << m.output_activation << ',' << t.cost << ','
    << csv_field(t.schedule) << ',' << (t.divide_lr_by_batches ? 1 : 0) << ','
    << (t.penalise_biases ? 1 : 0) << ',' << (t.scale_target ? 1 : 0) << ',' << t.seed << ','
    << p.optimiser << ',' << p.activation << ',' << p.penalty << ',' << p.layers << ',' << p.nodes
    << ',' << p.batch_size << ',' << fmt(p.lambda) << ',' << fmt(p.lr) << ',' << t.epochs << ','
    << evaluation_name(e) << ',' << (e == Evaluation::KFold ? std::to_string(spec.folds) : "")
    << ',' << (e == Evaluation::Bootstrap ? std::to_string(spec.bootstraps) : "") << ','
    << (e == Evaluation::Holdout ? "" : std::to_string(spec.resample_seed)) << ',' << r.status
    << ',' << fmt(r.mse) << ',' << fmt(r.mse_std) << ',' << fmt(r.r2) << ',' << fmt(r.r2_std) << ','
    << fmt(r.train_mse) << ',' << fmt(std::isnan(r.mse) ? kNaN : std::log10(r.mse));
  return s.str();
}

namespace {
/// Refuses a row whose status or results a sweep would not have written.
void check_result_fields(const std::vector<std::string>& fields, const std::string& where) {
  const std::vector<std::string> names = split_commas(csv_header());
  const std::size_t status = status_column();
  if (fields[status] != "ok" && fields[status] != "diverged") {
    throw std::runtime_error(where + ": status is \"" + fields[status] +
                             "\", neither ok nor diverged");
  }
  // ok: every score finite and the MSEs >= 0 (log10_mse is -inf for an exact fit, the one
  // non-number fmt writes there); diverged: every score nan, as the sweep writes them.
  const bool ok = fields[status] == "ok";
  for (std::size_t c = status + 1; c < names.size(); ++c) {
    if (ok && names[c] == "log10_mse" && fields[c] == "-inf") continue;
    const double v = result_number(fields[c], names[c], where);
    const bool is_mse = names[c] == "mse" || names[c] == "mse_std" || names[c] == "train_mse";
    const bool fits = ok ? std::isfinite(v) && (!is_mse || v >= 0) : std::isnan(v);
    if (!fits) {
      throw std::runtime_error(where + ": " + names[c] + " " + fields[c] + " is not what " +
                               (ok ? "an ok" : "a diverged") + " point holds");
    }
  }
}
}  // namespace

std::vector<PointResult> read_sweep_csv(const std::string& csv_path) {
  std::ifstream in(csv_path);
  if (!in) throw std::runtime_error("cannot read sweep CSV " + csv_path);
  std::string line;
  std::getline(in, line);
  if (line != csv_header())
    throw std::runtime_error(csv_path +
                             " is not a runge sweep CSV of this version (header differs)");
  const std::size_t columns = split_commas(csv_header()).size();
  const std::size_t c_point = column_index("point"), c_opt = column_index("optimiser"),
                    c_act = column_index("activation"), c_pen = column_index("penalty"),
                    c_layers = column_index("layers"), c_nodes = column_index("nodes"),
                    c_batch = column_index("batch_size"), c_lambda = column_index("lambda"),
                    c_lr = column_index("lr"), c_status = status_column(),
                    c_mse = column_index("mse"), c_mse_std = column_index("mse_std"),
                    c_r2 = column_index("r2"), c_r2_std = column_index("r2_std"),
                    c_train = column_index("train_mse");
  const std::vector<std::string> names = split_commas(csv_header());
  std::vector<PointResult> out;
  std::size_t line_number = 1;
  while (std::getline(in, line)) {
    ++line_number;
    if (in.eof()) break;  // a last line without '\n' was cut by an interruption (as resume)
    const auto f = split_commas(line);
    const std::string where = csv_path + " line " + std::to_string(line_number);
    if (f.size() != columns) {  // a whole line, so not an interruption's cut (as resume)
      throw std::runtime_error(where + ": a row of " + std::to_string(f.size()) +
                               " fields instead of " + std::to_string(columns));
    }
    check_result_fields(f, where);
    PointResult r;
    try {
      r.point.index = std::stoul(f[c_point]);
      r.point.optimiser = f[c_opt];
      r.point.activation = f[c_act];
      r.point.penalty = f[c_pen];
      r.point.layers = std::stoul(f[c_layers]);
      r.point.nodes = std::stoul(f[c_nodes]);
      r.point.batch_size = std::stoul(f[c_batch]);
      r.point.lambda = std::stod(f[c_lambda]);
      r.point.lr = std::stod(f[c_lr]);
    } catch (const std::logic_error&) {  // std::stoul / stod: invalid_argument, out_of_range
      throw std::runtime_error(where + ": a grid setting is not a number (" + line.substr(0, 60) +
                               "...)");
    }
    r.status = f[c_status];
    r.mse = result_number(f[c_mse], names[c_mse], where);
    r.mse_std = result_number(f[c_mse_std], names[c_mse_std], where);
    r.r2 = result_number(f[c_r2], names[c_r2], where);
    r.r2_std = result_number(f[c_r2_std], names[c_r2_std], where);
    r.train_mse = result_number(f[c_train], names[c_train], where);
    out.push_back(r);
  }
  return out;
}

void remove_sweep_file(const std::string& path) {
  // Through a symbolic link the file it names goes, not the link: the sweep then writes
  // through the link, as it does without --fresh.
  const std::string file = xgrad::apps::resolved_path(path);
  std::error_code ec;
  if (!std::filesystem::exists(file, ec)) return;
  const auto is_sweep_csv = [&] {
    if (!std::filesystem::is_regular_file(file, ec)) return false;  // a folder, a device ...
    std::ifstream in(file);
    if (!in) return false;  // unreadable: not known to be a sweep CSV
    std::string line;
    return !std::getline(in, line) || line.rfind("point,function,", 0) == 0;  // empty, or ours
  };
  if (!is_sweep_csv())
    throw std::invalid_argument("--fresh: " + path + " is not a sweep CSV; refusing to delete it");
  std::filesystem::remove(file);
}

void check_sweep_out(const std::string& csv_path) {
  xgrad::apps::check_output_file(csv_path, "--out");
}

std::vector<GridPoint> checked_grid(const SweepData& data, const SweepSpec& spec) {
  spec.model.validate();
  spec.train.validate();
  const std::vector<GridPoint> grid = expand(spec.axes);
  for (const auto& o : spec.axes.optimiser) {
    TrainSpec t = spec.train;
    t.optimiser = o;
    t.validate();
  }
  for (const auto& a : spec.axes.activation) {
    ModelSpec m = spec.model;
    m.activation = a;
    m.validate();
  }
  for (const auto& p : spec.axes.penalty) {
    TrainSpec t = spec.train;
    t.penalty = p;
    t.validate();
  }

  // A batch of at least every training part is the full batch, as 0 is: the same network
  // under another label. The largest part: all points but the smallest fold, or the training
  // split (bootstrap draws as many rows as it has).
  const std::size_t most_rows = spec.evaluation == Evaluation::KFold && spec.folds > 0
                                    ? data.full.size() - data.full.size() / spec.folds
                                    : data.split.train.size();
  for (const std::size_t b : spec.axes.batch_size) {
    if (b != 0 && b >= most_rows) {  // train_network: a batch of all rows is the full batch
      throw std::invalid_argument("--batch-size " + std::to_string(b) + " is not below the " +
                                  std::to_string(most_rows) +
                                  " training points, so every step would take the full batch, "
                                  "as --batch-size 0 does; give at most " +
                                  std::to_string(most_rows - 1) + ", or 0");
    }
  }
  if (spec.evaluation == Evaluation::KFold && spec.folds > data.full.size() / 2) {
    // A fold of one point has no R^2 (its variance is 0): the row would say nan.
    throw std::invalid_argument("--folds " + std::to_string(spec.folds) + " with " +
                                std::to_string(data.full.size()) +
                                " points leaves folds of one point, whose R^2 is undefined; use "
                                "at most " +
                                std::to_string(data.full.size() / 2) + " folds");
  }
  return grid;
}

SweepStats run_sweep(const SweepData& data, const SweepSpec& spec, const std::string& csv_path,
                     std::size_t stop_after, const std::function<void(const std::string&)>& log) {
  const auto t0 = std::chrono::steady_clock::now();
  const std::vector<GridPoint> grid = checked_grid(data, spec);

  check_sweep_out(csv_path);
  // From reading the rows (or deleting them, --fresh) to the last rewrite, no other run
  // may write the file.
  const xgrad::apps::FileLock lock(csv_path, spec.fresh ? "--fresh" : "--out");
  if (spec.fresh) remove_sweep_file(csv_path);
  SweepStats stats;
  stats.points = grid.size();
  // Rows already in the file (resume): a row is reused for the grid point whose settings
  // columns it repeats exactly, whatever its old index. A row that matches no point of
  // this grid (other data, epochs, seeds ...) stops the sweep before the file is touched.
  std::vector<std::optional<std::string>> rows(grid.size());
  {
    std::ifstream in(csv_path);
    std::string line;
    if (in && std::getline(in, line)) {
      if (line != csv_header())
        throw std::runtime_error("--out: " + csv_path +
                                 " exists but is not a sweep CSV of this version; pass --fresh "
                                 "to replace it, or choose another file");
      std::map<std::string, std::size_t> index_of_key;
      std::vector<std::vector<std::string>> grid_fields(grid.size());
      for (std::size_t i = 0; i < grid.size(); ++i) {
        PointResult probe;
        probe.point = grid[i];
        grid_fields[i] = split_commas(csv_row(probe, spec, data.settings));
        index_of_key.emplace(row_key(grid_fields[i]), i);
      }
      const std::size_t columns = split_commas(csv_header()).size();
      const std::size_t status = status_column();
      std::size_t foreign = 0;
      std::vector<std::string> first_foreign;
      std::size_t line_number = 1;
      while (std::getline(in, line)) {
        ++line_number;
        if (in.eof()) break;  // a last line without '\n' was cut by the interruption
        const auto f = split_commas(line);
        if (f.size() != columns) {  // a whole line, so not an interruption's cut: refused
          throw std::runtime_error("--out: " + csv_path + " holds a row of " +
                                   std::to_string(f.size()) + " fields instead of " +
                                   std::to_string(columns) + " (" + line.substr(0, 60) +
                                   "...); pass --fresh to recompute it, or write elsewhere");
        }
        const auto it = index_of_key.find(row_key(f));
        if (it == index_of_key.end()) {
          if (foreign++ == 0) first_foreign = f;
          continue;
        }
        if (!rows[it->second]) {
          try {
            check_result_fields(f, "--out: " + csv_path + " line " + std::to_string(line_number));
          } catch (const std::runtime_error& e) {
            throw std::runtime_error(std::string(e.what()) +
                                     "; pass --fresh to recompute it, or write elsewhere");
          }
          rows[it->second] = with_index(f, it->second);
          ++stats.reused;
          if (f[status] != "ok") ++stats.diverged;
        }
      }
      if (foreign > 0) {
        // Name the settings of the first such row that no grid point has.
        const auto names = split_commas(csv_header());
        std::string why;
        for (std::size_t c = 1; c < status; ++c) {
          bool seen = false;
          for (const auto& g : grid_fields)
            seen = seen || g[c] == first_foreign[c];
          if (seen) continue;
          bool one_value = true;
          for (const auto& g : grid_fields)
            one_value = one_value && g[c] == grid_fields[0][c];
          auto shown = [](const std::string& v) { return v.empty() ? std::string("(empty)") : v; };
          why += (why.empty() ? "" : ", ") + names[c] + " " + shown(first_foreign[c]) +
                 " in the file, " +
                 (one_value ? shown(grid_fields[0][c]) + " now" : "not a value of this grid");
        }
        if (why.empty()) why = "a combination of values this grid does not have";
        throw std::runtime_error("--out: " + csv_path + " holds " + std::to_string(foreign) +
                                 " row(s) that are not points of this sweep (first: " + why +
                                 "); pass --fresh to recompute it, or write elsewhere");
      }
    }
  }

  // The file always holds every row known so far: the rows found are written (in grid
  // order) to a temporary file that then replaces the CSV in one rename, so a kill at
  // any moment leaves either the old file or the new one. Finished points are appended
  // as they come; the last rewrite puts every row in grid order. Resuming matches rows
  // by their settings, so the order in between does not matter.
  std::mutex mutex;
  // Through a symbolic link, the file it names is replaced (not the link), and the
  // temporary file sits next to it, named for this process.
  const std::string target = xgrad::apps::resolved_path(csv_path);
  const std::string tmp = target + ".tmp." + std::to_string(::getpid());
  const auto rewrite_in_grid_order = [&]() {
    try {
      std::ofstream o(tmp, std::ios::trunc);
      if (!o) throw std::runtime_error("--out: cannot write " + tmp);
      o << csv_header() << '\n';
      for (const auto& r : rows)
        if (r) o << *r << '\n';
      o.flush();
      if (!o) throw std::runtime_error("--out: cannot write " + tmp);
      o.close();
      std::error_code rename_error;
      std::filesystem::rename(tmp, target, rename_error);
      if (rename_error)
        throw std::runtime_error("--out: cannot replace " + csv_path + ": " +
                                 rename_error.message());
    } catch (...) {
      std::error_code ignored;
      std::filesystem::remove(tmp, ignored);  // no half-written leftover
      throw;
    }
  };
  rewrite_in_grid_order();
  std::ofstream out(target, std::ios::app);
  if (!out) throw std::runtime_error("--out: cannot write " + csv_path);

  std::vector<std::size_t> todo;
  for (std::size_t i = 0; i < grid.size(); ++i)
    if (!rows[i]) todo.push_back(i);

  // One owner of parallelism: the workers. BLAS single-threaded in serial runs too, so
  // that serial and parallel sweeps compute the very same numbers.
  const BlasThreadsGuard blas_threads(1);
  std::size_t jobs = spec.jobs ? spec.jobs : std::max(1u, std::thread::hardware_concurrency());
  jobs = std::min(jobs, std::max<std::size_t>(todo.size(), 1));

  std::atomic<std::size_t> next{0};
  std::atomic<bool> stop{false};
  std::size_t finished = 0;
  std::exception_ptr failure;
  auto worker = [&]() {
    for (;;) {
      if (stop.load()) return;
      const std::size_t k = next.fetch_add(1);
      if (k >= todo.size()) return;
      const GridPoint& p = grid[todo[k]];
      try {
        const PointResult r = evaluate_point(p, data, spec);
        const std::string row = csv_row(r, spec, data.settings);
        std::lock_guard<std::mutex> lock(mutex);
        // After stop_after (tests) a late point is dropped, as a killed process would;
        // after another point's failure it is kept.
        if (stop.load() && !failure) return;
        rows[p.index] = row;
        ++finished;
        ++stats.run;
        if (r.status != "ok") ++stats.diverged;
        out << row << '\n';
        out.flush();
        if (!out) {
          // A full disk or a file limit: computing on would lose every later row.
          throw std::runtime_error("--out: cannot append to " + csv_path +
                                   " (disk full or file too large?)");
        }
        if (log) {
          std::ostringstream msg;
          msg << "[" << stats.reused + finished << "/" << grid.size() << "] " << p.optimiser << ' '
              << p.activation << ' ' << p.penalty << " layers=" << p.layers << " nodes=" << p.nodes
              << " batch=" << p.batch_size << " lambda=" << fmt(p.lambda, 4)
              << " lr=" << fmt(p.lr, 4) << " -> " << r.status << " mse=" << fmt(r.mse, 4)
              << " r2=" << fmt(r.r2, 4);
          log(msg.str());
        }
        if (stop_after && finished >= stop_after) stop = true;
      } catch (...) {
        // The try block's lock_guard was released by the unwinding before this handler.
        std::lock_guard<std::mutex> lock(mutex);
        if (!failure) failure = std::current_exception();
        stop = true;
        return;
      }
    }
  };
  if (jobs <= 1) {
    worker();
  } else {
    std::vector<std::thread> pool;
    for (std::size_t j = 0; j < jobs; ++j)
      pool.emplace_back(worker);
    for (auto& t : pool)
      t.join();
  }
  out.close();
  if (failure) {
    // Keep the finished rows, but report the point's failure, not a second one.
    try {
      rewrite_in_grid_order();
    } catch (...) {
    }
    std::rethrow_exception(failure);
  }
  rewrite_in_grid_order();
  stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return stats;
}

}  // namespace runge
