#include "sweep.hpp"

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <xgrad/threads.hpp>

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

std::vector<std::string> split_csv(const std::string& line) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : line) {
    if (c == ',') {
      out.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  out.push_back(cur);
  return out;
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

// The key columns of a row: what identifies its grid point.
constexpr std::size_t kKeyColumns = 12;
}  // namespace

std::size_t GridAxes::size() const {
  return optimiser.size() * activation.size() * penalty.size() * layers.size() * nodes.size() *
         batch_size.size() * lambda.size() * lr.size();
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
}

std::vector<GridPoint> expand(const GridAxes& a) {
  a.validate();
  std::vector<GridPoint> out;
  out.reserve(a.size());
  for (const auto& o : a.optimiser)
    for (const auto& act : a.activation)
      for (const auto& pen : a.penalty)
        for (auto l : a.layers)
          for (auto n : a.nodes)
            for (auto b : a.batch_size)
              for (double lam : a.lambda)
                for (double lr : a.lr) {
                  GridPoint p;
                  p.index = out.size();
                  p.optimiser = o;
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
    if (std::isnan(s.mse)) {
      diverged = true;
      return;
    }
    mses.push_back(s.mse);
    r2s.push_back(s.r2);
    train_mses.push_back(score(m, tr).mse);
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

std::string csv_header() {
  return "point,function,optimiser,activation,penalty,layers,nodes,batch_size,lambda,lr,epochs,"
         "evaluation,status,mse,mse_std,r2,r2_std,train_mse,log10_mse";
}

std::string csv_row(const PointResult& r, const SweepSpec& spec) {
  const GridPoint& p = r.point;
  std::ostringstream s;
  s << p.index << ',' << spec.function << ',' << p.optimiser << ',' << p.activation << ','
    << p.penalty << ',' << p.layers << ',' << p.nodes << ',' << p.batch_size << ',' << fmt(p.lambda)
    << ',' << fmt(p.lr) << ',' << spec.train.epochs << ',' << evaluation_name(spec.evaluation)
    << ',' << r.status << ',' << fmt(r.mse) << ',' << fmt(r.mse_std) << ',' << fmt(r.r2) << ','
    << fmt(r.r2_std) << ',' << fmt(r.train_mse) << ','
    << fmt(std::isnan(r.mse) ? kNaN : std::log10(r.mse));
  return s.str();
}

std::vector<PointResult> read_sweep_csv(const std::string& csv_path) {
  std::ifstream in(csv_path);
  if (!in) throw std::runtime_error("cannot read sweep CSV " + csv_path);
  std::string line;
  std::getline(in, line);
  if (line != csv_header())
    throw std::runtime_error(csv_path + " is not a runge sweep CSV (header differs)");
  std::vector<PointResult> out;
  const std::size_t columns = split_csv(csv_header()).size();
  while (std::getline(in, line)) {
    const auto f = split_csv(line);
    if (f.size() != columns) continue;
    PointResult r;
    r.point.index = std::stoul(f[0]);
    r.point.optimiser = f[2];
    r.point.activation = f[3];
    r.point.penalty = f[4];
    r.point.layers = std::stoul(f[5]);
    r.point.nodes = std::stoul(f[6]);
    r.point.batch_size = std::stoul(f[7]);
    r.point.lambda = std::stod(f[8]);
    r.point.lr = std::stod(f[9]);
    r.status = f[12];
    auto num = [](const std::string& t) { return t == "nan" ? kNaN : std::stod(t); };
    r.mse = num(f[13]);
    r.mse_std = num(f[14]);
    r.r2 = num(f[15]);
    r.r2_std = num(f[16]);
    r.train_mse = num(f[17]);
    out.push_back(r);
  }
  return out;
}

SweepStats run_sweep(const SweepData& data, const SweepSpec& spec, const std::string& csv_path,
                     std::size_t stop_after, const std::function<void(const std::string&)>& log) {
  const auto t0 = std::chrono::steady_clock::now();
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

  SweepStats stats;
  stats.points = grid.size();
  // Rows already in the file (resume): a row counts only when its key columns are those
  // of the grid point with its index, so a CSV of another grid is never mistaken for it.
  std::vector<std::optional<std::string>> rows(grid.size());
  {
    std::ifstream in(csv_path);
    std::string line;
    if (in && std::getline(in, line)) {
      if (line != csv_header())
        throw std::runtime_error("--out: " + csv_path +
                                 " exists but is not a sweep CSV of this version; remove it or "
                                 "choose another file");
      const std::size_t columns = split_csv(csv_header()).size();
      while (std::getline(in, line)) {
        if (in.eof()) break;  // a last line without '\n' was cut by the interruption
        const auto f = split_csv(line);
        if (f.size() != columns) continue;
        std::size_t idx = 0;
        try {
          idx = std::stoul(f[0]);
        } catch (const std::exception&) {
          continue;
        }
        if (idx >= grid.size()) continue;
        PointResult probe;
        probe.point = grid[idx];
        const auto want = split_csv(csv_row(probe, spec));
        bool same = true;
        for (std::size_t c = 0; c < kKeyColumns && same; ++c)
          same = want[c] == f[c];
        if (same && !rows[idx]) {
          rows[idx] = line;
          ++stats.reused;
        }
      }
    }
  }

  // Rewrite the file with the rows kept, in order: the CSV always has a clean prefix.
  std::mutex mutex;
  std::size_t written = 0;  // rows[0, written) are in the file
  std::ofstream out;
  auto open_and_flush = [&]() {
    // Called with the mutex held: append the finished prefix.
    while (written < rows.size() && rows[written]) {
      out << *rows[written] << '\n';
      ++written;
    }
    out.flush();
  };
  out.open(csv_path, std::ios::trunc);
  if (!out) throw std::runtime_error("--out: cannot write " + csv_path);
  out << csv_header() << '\n';
  // Keep also non-prefix rows of the old file in memory; they are written when the
  // prefix reaches them.
  open_and_flush();

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
      PointResult r;
      try {
        r = evaluate_point(p, data, spec);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mutex);
        if (!failure) failure = std::current_exception();
        stop = true;
        return;
      }
      const std::string row = csv_row(r, spec);
      std::lock_guard<std::mutex> lock(mutex);
      if (stop.load()) return;
      rows[p.index] = row;
      ++finished;
      ++stats.run;
      if (r.status != "ok") ++stats.diverged;
      open_and_flush();
      if (log) {
        std::ostringstream msg;
        msg << "[" << stats.reused + finished << "/" << grid.size() << "] " << p.optimiser << ' '
            << p.activation << ' ' << p.penalty << " layers=" << p.layers << " nodes=" << p.nodes
            << " batch=" << p.batch_size << " lambda=" << fmt(p.lambda, 4) << " lr=" << fmt(p.lr, 4)
            << " -> " << r.status << " mse=" << fmt(r.mse, 4) << " r2=" << fmt(r.r2, 4);
        log(msg.str());
      }
      if (stop_after && finished >= stop_after) stop = true;
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
  if (failure) std::rethrow_exception(failure);
  stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return stats;
}

}  // namespace runge
