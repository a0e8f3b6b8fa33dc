#include "experiments.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "data.hpp"
#include "linear.hpp"
#include "sweep.hpp"
#include "train.hpp"

namespace runge {

namespace {

namespace fs = std::filesystem;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

std::string num(double v) {
  if (std::isnan(v)) return "nan";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.10g", v);
  return buf;
}

/// 10^a, 10^(a+step), ..., 10^b (report 000's log-spaced learning-rate axes).
std::vector<double> logspace(double a, double b, double step) {
  std::vector<double> out;
  for (int k = 0; a + k * step <= b + 1e-9; ++k)
    out.push_back(std::pow(10.0, a + k * step));
  return out;
}

struct Context {
  const ExperimentOptions& opt;
  fs::path dir;
  std::string path(const std::string& file) const { return (dir / file).string(); }
  void log(const std::string& s) const {
    if (opt.log) opt.log(s);
  }
  std::size_t epochs(std::size_t full, std::size_t quick = 20) const {
    return opt.quick ? quick : full;
  }
};

// ---- report 000's protocol (§II.F, §III.A) ----
DataSpec report000_data() {
  DataSpec d;
  d.n = 300;
  d.noise = 0.05;
  d.seed = 44;
  return d;
}
constexpr std::uint64_t kSplitSeed = 44;  // report 000: train_test_split random_state 44

ModelSpec report000_model(std::size_t layers, std::size_t nodes, const std::string& act) {
  ModelSpec m;
  m.hidden.assign(layers, nodes);
  m.activation = act;
  m.init = "standard_normal";  // report 000 §II.F
  m.bias_init = 0.01;
  return m;
}

/// Report 000's SGD: 5 minibatches of the 240 training points, the rate divided by the
/// number of batches and decayed as t1/(t + t1), t1 = 30 m (§III.A.1).
TrainSpec report000_sgd(std::size_t epochs) {
  TrainSpec t;
  t.epochs = epochs;
  t.batch_size = 48;
  t.divide_lr_by_batches = true;
  t.schedule = "inverse_time";
  t.seed = 1;
  return t;
}
TrainSpec report000_gd(std::size_t epochs) {
  TrainSpec t;
  t.epochs = epochs;
  t.batch_size = 0;
  t.schedule = "constant";
  t.seed = 1;
  return t;
}

SweepStats sweep(const Context& c, const SweepData& data, const SweepSpec& spec,
                 const std::string& file) {
  SweepSpec s = spec;
  s.jobs = c.opt.jobs;
  s.fresh = c.opt.fresh;
  c.log("sweep " + file + ": " + std::to_string(s.axes.size()) + " points");
  const SweepStats st = run_sweep(data, s, c.path(file), 0, c.opt.log);
  c.log("sweep " + file + ": " + std::to_string(st.run) + " run, " + std::to_string(st.reused) +
        " reused, " + std::to_string(st.diverged) + " diverged, " + num(st.seconds) + " s");
  return st;
}

const PointResult* best_of(const std::vector<PointResult>& rows) {
  const PointResult* best = nullptr;
  for (const auto& r : rows)
    if (r.status == "ok" && (!best || r.mse < best->mse)) best = &r;
  return best;
}

std::ofstream open_csv(const Context& c, const std::string& file, const std::string& header) {
  std::ofstream out(c.path(file));
  if (!out) throw std::runtime_error("cannot write " + c.path(file));
  out << header << '\n';
  return out;
}

Matrix linspace_column(double a, double b, std::size_t n) {
  Matrix x({n, 1});
  for (std::size_t i = 0; i < n; ++i)
    x(i, 0) = a + (b - a) * double(i) / double(n - 1);
  return x;
}

// ---- 1. learning rate (Fig. 1, Table I) ----
void learning_rate(const Context& c) {
  const SweepData data = make_sweep_data(report000_data(), 0.2, kSplitSeed);
  const auto lrs = c.opt.quick ? std::vector<double>{1e-2, 1e-1} : logspace(-3.0, 2.5, 0.5);
  auto table = open_csv(c, "table1.csv", "mode,optimiser,layers,best_lr,best_mse,log10_lr");
  for (const std::string mode : {"sgd", "gd"}) {
    SweepSpec s;
    s.train = mode == "sgd" ? report000_sgd(c.epochs(3000)) : report000_gd(c.epochs(3000));
    s.model = report000_model(1, 50, "sigmoid");
    s.axes.optimiser = {"rmsprop", "adam"};
    s.axes.layers = {1, 2};
    s.axes.nodes = {50};
    s.axes.batch_size = {s.train.batch_size};
    s.axes.lr = lrs;
    const std::string file = "fig1_" + mode + ".csv";
    sweep(c, data, s, file);
    const auto rows = read_sweep_csv(c.path(file));
    for (const std::string o : {"rmsprop", "adam"})
      for (std::size_t l : {1, 2}) {
        std::vector<PointResult> sel;
        for (const auto& r : rows)
          if (r.point.optimiser == o && r.point.layers == l) sel.push_back(r);
        const PointResult* b = best_of(sel);
        table << mode << ',' << o << ',' << l << ',' << (b ? num(b->point.lr) : "nan") << ','
              << (b ? num(b->mse) : "nan") << ',' << (b ? num(std::log10(b->point.lr)) : "nan")
              << '\n';
      }
  }
  // The OLS degree-12 line of Fig. 1 on the same split.
  auto base = open_csv(c, "baselines_report000.csv", "method,degree,lambda,test_mse,test_r2");
  for (int p : {12}) {
    const auto m = fit_linear(data.split.train, LinearMethod::OLS, p, 0.0);
    const Matrix pred = m.predict(data.split.test.x);
    base << "ols," << p << ",0," << num(mse(pred, data.split.test.y)) << ','
         << num(r2(pred, data.split.test.y)) << '\n';
  }
}

struct TableRow {
  std::string mode, optimiser;
  std::size_t layers = 1;
  double lr = 0;
};
std::vector<TableRow> read_table1(const Context& c) {
  std::ifstream in(c.path("table1.csv"));
  std::vector<TableRow> out;
  std::string line;
  std::getline(in, line);
  while (std::getline(in, line)) {
    std::stringstream ss(line);
    std::string f[6];
    for (auto& x : f)
      std::getline(ss, x, ',');
    if (f[3] == "nan") continue;
    out.push_back({f[0], f[1], std::stoul(f[2]), std::stod(f[3])});
  }
  return out;
}

// ---- 2. learning curves at the best rates (Fig. 2) and the fit (Fig. 3) ----
void curves(const Context& c) {
  if (!fs::exists(c.path("table1.csv"))) {
    c.log("curves: table1.csv missing, running learning-rate first");
    learning_rate(c);
  }
  const SweepData data = make_sweep_data(report000_data(), 0.2, kSplitSeed);
  auto out = open_csv(c, "fig2_curves.csv", "mode,optimiser,layers,lr,epoch,train_mse,test_mse");
  for (const auto& row : read_table1(c)) {
    TrainSpec t = row.mode == "sgd" ? report000_sgd(c.epochs(3000)) : report000_gd(c.epochs(3000));
    t.optimiser = row.optimiser;
    t.learning_rate = row.lr;
    t.curve_every = c.opt.quick ? 1 : 10;
    const auto m = train_network(data.split.train, &data.split.test,
                                 report000_model(row.layers, 50, "sigmoid"), t);
    for (const auto& p : m.curve)
      out << row.mode << ',' << row.optimiser << ',' << row.layers << ',' << num(row.lr) << ','
          << p.epoch << ',' << num(p.train_mse) << ',' << num(p.test_mse) << '\n';
  }
  // Fig. 3: two hidden layers of 50 sigmoid nodes, Adam SGD at rate 0.01 (report 000's
  // choice for the figure), next to OLS degree 12 and the true function.
  TrainSpec t = report000_sgd(c.epochs(3000));
  t.optimiser = "adam";
  t.learning_rate = 0.01;
  const auto nn = train_network(data.split.train, nullptr, report000_model(2, 50, "sigmoid"), t);
  const auto ols = fit_linear(data.split.train, LinearMethod::OLS, 12, 0.0);
  const Matrix grid = linspace_column(-1, 1, 401);
  const Matrix pn = nn.predict(grid), po = ols.predict(grid);
  auto fit = open_csv(c, "fig3_fit.csv", "x,true,nn,ols12");
  for (std::size_t i = 0; i < grid.shape(0); ++i)
    fit << num(grid(i, 0)) << ',' << num(runge_function(grid(i, 0))) << ',' << num(pn(i, 0)) << ','
        << num(po(i, 0)) << '\n';
  auto pts = open_csv(c, "fig3_points.csv", "x,y,part");
  for (std::size_t i = 0; i < data.split.train.size(); ++i)
    pts << num(data.split.train.x(i, 0)) << ',' << num(data.split.train.y(i, 0)) << ",train\n";
  for (std::size_t i = 0; i < data.split.test.size(); ++i)
    pts << num(data.split.test.x(i, 0)) << ',' << num(data.split.test.y(i, 0)) << ",test\n";
  const Scores s = score(nn, data.split.test);
  auto sum = open_csv(c, "fig3_scores.csv", "model,test_mse,test_r2");
  sum << "nn_2x50_sigmoid_adam_sgd," << num(s.mse) << ',' << num(s.r2) << '\n';
  const Matrix pt = ols.predict(data.split.test.x);
  sum << "ols12," << num(mse(pt, data.split.test.y)) << ',' << num(r2(pt, data.split.test.y))
      << '\n';
}

// ---- 3. architecture grid (Fig. 4) ----
void architecture(const Context& c) {
  const SweepData data = make_sweep_data(report000_data(), 0.2, kSplitSeed);
  SweepSpec s;
  s.train = report000_sgd(c.epochs(3000));
  s.model = report000_model(1, 50, "sigmoid");
  s.axes.optimiser = {"adam"};
  s.axes.activation = {"sigmoid", "relu", "leaky_relu"};
  s.axes.layers = c.opt.quick ? std::vector<std::size_t>{1} : std::vector<std::size_t>{1, 3, 5};
  s.axes.nodes =
      c.opt.quick ? std::vector<std::size_t>{5} : std::vector<std::size_t>{10, 20, 30, 40, 50};
  s.axes.batch_size = {48};
  s.axes.lr = c.opt.quick ? std::vector<double>{1e-2} : logspace(-3.0, 1.0, 0.5);
  const auto t0 = std::chrono::steady_clock::now();
  const SweepStats st = sweep(c, data, s, "fig4.csv");
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("figure-4 experiment: %zu points (%zu run, %zu reused) in %.1f s wall time\n",
              st.points, st.run, st.reused, wall);
  if (st.run == 0 && fs::exists(c.path("fig4_walltime.csv"))) {
    // A resume that ran nothing measured nothing: the earlier run's time stays.
    c.log("fig4_walltime.csv kept: every point was reused, nothing was timed");
    return;
  }
  auto out = open_csv(c, "fig4_walltime.csv", "points,run,reused,diverged,seconds,jobs");
  out << st.points << ',' << st.run << ',' << st.reused << ',' << st.diverged << ',' << num(wall)
      << ',' << (c.opt.jobs ? c.opt.jobs : std::thread::hardware_concurrency()) << '\n';
}

// ---- 4. regularisation (Figs. 5 and 6) ----
void regularisation(const Context& c) {
  const SweepData data = make_sweep_data(report000_data(), 0.2, kSplitSeed);
  // The unregularised winner of Fig. 4 when it exists, else report 000's (1 x 40 sigmoid).
  std::size_t layers = 1, nodes = 40;
  std::string act = "sigmoid";
  if (fs::exists(c.path("fig4.csv"))) {
    const auto rows = read_sweep_csv(c.path("fig4.csv"));
    if (const PointResult* b = best_of(rows)) {
      layers = b->point.layers;
      nodes = b->point.nodes;
      act = b->point.activation;
    }
  }
  c.log("regularisation: architecture " + std::to_string(layers) + " x " + std::to_string(nodes) +
        " " + act);
  SweepSpec s;
  s.train = report000_sgd(c.epochs(3000));
  s.model = report000_model(layers, nodes, act);
  s.axes.optimiser = {"adam"};
  s.axes.activation = {act};
  s.axes.penalty = {"l1", "l2"};
  s.axes.layers = {layers};
  s.axes.nodes = {nodes};
  s.axes.batch_size = {48};
  s.axes.lambda = c.opt.quick ? std::vector<double>{1e-3} : logspace(-5.0, -1.0, 1.0);
  s.axes.lr = c.opt.quick ? std::vector<double>{1e-2} : logspace(-2.0, 0.5, 0.5);
  sweep(c, data, s, "fig5.csv");
  const auto rows = read_sweep_csv(c.path("fig5.csv"));
  for (const std::string pen : {"l1", "l2"}) {
    std::vector<PointResult> sel;
    for (const auto& r : rows)
      if (r.point.penalty == pen) sel.push_back(r);
    const PointResult* b = best_of(sel);
    SweepSpec f = s;
    f.axes.penalty = {pen};
    f.axes.lambda = {b ? b->point.lambda : 1e-3};
    f.axes.lr = {b ? b->point.lr : std::pow(10.0, -0.4)};
    f.axes.activation = {"sigmoid", "relu", "leaky_relu"};
    f.axes.layers =
        c.opt.quick ? std::vector<std::size_t>{1} : std::vector<std::size_t>{1, 2, 3, 4, 5};
    f.axes.nodes =
        c.opt.quick ? std::vector<std::size_t>{5} : std::vector<std::size_t>{5, 10, 25, 50};
    sweep(c, data, f, "fig6_" + pen + ".csv");
  }
}

Matrix ensemble_predict(const Dataset& train, const ModelSpec& m, const TrainSpec& t,
                        std::size_t members, const Matrix& x);

// ---- 5. cross-validated R^2 and the noise floor ----
struct CvModel {
  std::string name;
  ModelSpec model;
  TrainSpec train;
};

/// Our network for report 000's data: two tanh layers, Adam on the full batch with a
/// decaying rate, long enough to converge, and an L1 penalty of 10^-3 (report 000 eq.
/// 22). lambda was chosen by a 5-fold CV sweep on draw 1 only (docs/results-runge.md):
/// without it the network follows the noise (train MSE below sigma^2).
CvModel our_best(const Context& c) {
  CvModel m{"xgrad_2x50_tanh_adam_l1", report000_model(2, 50, "tanh"),
            report000_gd(c.epochs(6000))};
  m.model.init = "glorot_normal";
  m.model.bias_init = 0.0;
  m.train.optimiser = "adam";
  m.train.learning_rate = 0.01;
  m.train.schedule = "step:0.01,0.5,1500";
  m.train.penalty = "l1";
  m.train.lambda = 1e-3;
  return m;
}

void cv(const Context& c) {
  const BlasThreadsGuard blas_threads(1);  // the fold threads own the cores
  const DataSpec dspec = report000_data();
  const std::size_t k = 5;
  std::vector<CvModel> nets;
  {
    // Report 000's winner: one hidden layer of 40 sigmoid nodes, Adam SGD at 10^-1.1.
    CvModel r{"report000_1x40_sigmoid_adam_sgd", report000_model(1, 40, "sigmoid"),
              report000_sgd(c.epochs(3000))};
    r.train.optimiser = "adam";
    r.train.learning_rate = std::pow(10.0, -1.1);
    nets.push_back(r);
    nets.push_back(our_best(c));
  }
  auto out = open_csv(c, "cv_folds.csv", "data_seed,model,fold,mse,r2");
  auto summary = open_csv(c, "cv_summary.csv", "data_seed,model,folds,mean_mse,mean_r2,std_r2");
  // R^2 depends on the variance of the draw: the true function's own CV R^2 (the
  // ceiling no model can pass on average) is written next to the models, and the whole
  // protocol is repeated on several draws so that one lucky draw does not decide.
  const std::vector<std::uint64_t> seeds =
      c.opt.quick ? std::vector<std::uint64_t>{44} : std::vector<std::uint64_t>{44, 1, 2, 3, 4};
  std::map<std::string, std::vector<double>> all_r2, all_mse;
  std::vector<std::string> order;
  for (const std::uint64_t seed : seeds) {
    DataSpec ds = dspec;
    ds.seed = seed;
    const Dataset full = generate(ds);
    const auto folds = kfold_indices(full.size(), k, 2024);
    auto fold_data = [&](std::size_t f, Dataset& tr, Dataset& te) {
      tr = subset(full, complement(full.size(), folds[f]));
      te = subset(full, folds[f]);
    };
    auto report = [&](const std::string& name, const std::vector<double>& ms,
                      const std::vector<double>& rs) {
      double mm = 0, mr = 0, sr = 0;
      for (std::size_t i = 0; i < ms.size(); ++i) {
        mm += ms[i] / double(ms.size());
        mr += rs[i] / double(rs.size());
      }
      for (double r : rs)
        sr += (r - mr) * (r - mr);
      sr = std::sqrt(sr / double(std::max<std::size_t>(rs.size() - 1, 1)));
      summary << seed << ',' << name << ',' << ms.size() << ',' << num(mm) << ',' << num(mr) << ','
              << num(sr) << '\n';
      if (!all_r2.count(name)) order.push_back(name);
      all_r2[name].push_back(mr);
      all_mse[name].push_back(mm);
      c.log("cv seed " + std::to_string(seed) + " " + name + ": R2 = " + num(mr) +
            " MSE = " + num(mm));
    };
    auto run_model = [&](const std::string& name,
                         const std::function<Matrix(const Dataset&, const Dataset&)>& predict) {
      std::vector<double> ms, rs;
      // The folds are independent: one thread each (BLAS single-threaded, see sweep.hpp),
      // the results gathered in fold order so that the CSV does not depend on timing.
      std::vector<Dataset> trs(k), tes(k);
      std::vector<Matrix> preds(k);
      {
        std::vector<std::thread> pool;
        for (std::size_t f = 0; f < k; ++f) {
          fold_data(f, trs[f], tes[f]);
          pool.emplace_back([&, f] { preds[f] = predict(trs[f], tes[f]); });
        }
        for (auto& t : pool)
          t.join();
      }
      for (std::size_t f = 0; f < k; ++f) {
        const Dataset& te = tes[f];
        const Matrix& p = preds[f];
        const double m = mse(p, te.y), r = r2(p, te.y);
        out << seed << ',' << name << ',' << f << ',' << num(m) << ',' << num(r) << '\n';
        ms.push_back(m);
        rs.push_back(r);
      }
      report(name, ms, rs);
    };
    for (const auto& net : nets)
      run_model(net.name, [&](const Dataset& tr, const Dataset& te) {
        return train_network(tr, nullptr, net.model, net.train).predict(te.x);
      });
    const CvModel best = our_best(c);
    run_model(best.name + "_x5", [&](const Dataset& tr, const Dataset& te) {
      return ensemble_predict(tr, best.model, best.train, c.opt.quick ? 2 : 5, te.x);
    });
    run_model("ols12", [](const Dataset& tr, const Dataset& te) {
      return fit_linear(tr, LinearMethod::OLS, 12, 0.0).predict(te.x);
    });
    run_model("true_function", [](const Dataset&, const Dataset& te) {
      return true_function(Function::Runge, te.x);
    });
  }
  for (const auto& name : order) {
    double mr = 0, mm = 0;
    for (double v : all_r2[name])
      mr += v / double(all_r2[name].size());
    for (double v : all_mse[name])
      mm += v / double(all_mse[name].size());
    summary << "mean," << name << ',' << k << ',' << num(mm) << ',' << num(mr) << ",nan\n";
  }
  const Dataset full = generate(dspec);
  // The noise floor: train on report 000's 240 training points, test on 10,000 fresh
  // points of the same distribution. No model can beat sigma^2 = 2.5e-3 on average.
  const Split split = train_test_split(full, 0.2, kSplitSeed);
  DataSpec fresh_spec = dspec;
  fresh_spec.n = c.opt.quick ? 500 : 10000;
  fresh_spec.seed = 777;
  const Dataset fresh = generate(fresh_spec);
  auto fr = open_csv(c, "fresh_test.csv",
                     "model,test_points,mse,mse_over_noise_floor,r2,mse_vs_true_function");
  const double floor = dspec.noise * dspec.noise;
  const Matrix truth = true_function(Function::Runge, fresh.x);
  auto write = [&](const std::string& name, const Matrix& p) {
    fr << name << ',' << fresh.size() << ',' << num(mse(p, fresh.y)) << ','
       << num(mse(p, fresh.y) / floor) << ',' << num(r2(p, fresh.y)) << ',' << num(mse(p, truth))
       << '\n';
    c.log("fresh " + name + ": MSE = " + num(mse(p, fresh.y)) + " = " +
          num(mse(p, fresh.y) / floor) + " x noise floor");
  };
  for (const auto& net : nets)
    write(net.name, train_network(split.train, nullptr, net.model, net.train).predict(fresh.x));
  {
    const CvModel best = our_best(c);
    write(best.name + "_x5",
          ensemble_predict(split.train, best.model, best.train, c.opt.quick ? 2 : 5, fresh.x));
  }
  write("ols12", fit_linear(split.train, LinearMethod::OLS, 12, 0.0).predict(fresh.x));
  write("true_function", truth);
}

// ---- 6. report 001's sparse study ----
/// The mean prediction of `members` networks that differ only in their seed: with 18
/// points the fit of one network depends on its initial weights as much as on the data,
/// and averaging removes that part of the variance.
Matrix ensemble_predict(const Dataset& train, const ModelSpec& m, const TrainSpec& t,
                        std::size_t members, const Matrix& x) {
  Matrix sum = xt::zeros<double>({x.shape(0), std::size_t(1)});
  for (std::size_t k = 0; k < members; ++k) {
    TrainSpec tk = t;
    tk.seed = t.seed + k;
    sum += train_network(train, nullptr, m, tk).predict(x);
  }
  return sum / double(members);
}

/// The sparse study's averaged network ("ffnn_avg1se", docs/results-runge.md §6). With
/// 18 points, picking the single CV winner of a grid is a lottery: the CV scores of the
/// best few configurations differ by less than their own noise, and the winner is often
/// the configuration whose folds happened to suit it. So each candidate is first made a
/// seed ensemble (its CV is the CV of that ensemble), and instead of the winner the
/// method averages every candidate whose CV MSE is within one standard error of the
/// lowest. Every choice uses the 18 known points only.
struct AvgCandidate {
  std::string activation;
  std::size_t layers, nodes;
};
struct AvgResult {
  Matrix prediction;                   // on the fresh x
  std::vector<CvScore> scores;         // per candidate
  std::vector<std::size_t> kept;       // indices into the candidates
  std::vector<Matrix> candidate_pred;  // per candidate, on the fresh x (for the CSV only)
};

AvgResult average_within_one_se(const Context& c, const Dataset& known, const Matrix& fresh_x,
                                const std::vector<AvgCandidate>& cands, const TrainSpec& train,
                                std::size_t seeds, std::size_t folds, std::uint64_t fold_seed) {
  const std::size_t n = known.size();
  const auto fold_rows = kfold_indices(n, folds, fold_seed);
  const std::size_t tasks = cands.size() * seeds;
  std::vector<Matrix> oof(tasks), fresh(tasks);
  auto run = [&](std::size_t i) {
    const AvgCandidate& a = cands[i / seeds];
    ModelSpec m;
    m.hidden.assign(a.layers, a.nodes);
    m.activation = a.activation;
    m.init = "glorot_normal";
    m.bias_init = 0.0;
    TrainSpec t = train;
    t.seed = train.seed + i % seeds;
    oof[i] = xt::zeros<double>({n, std::size_t(1)});
    for (const auto& rows : fold_rows) {
      const Matrix p = train_network(subset(known, complement(n, rows)), nullptr, m, t)
                           .predict(subset(known, rows).x);
      for (std::size_t r = 0; r < rows.size(); ++r)
        oof[i](rows[r], 0) = p(r, 0);
    }
    fresh[i] = train_network(known, nullptr, m, t).predict(fresh_x);
  };
  {
    // One task per (candidate, seed); each writes only its own slots, so the result does
    // not depend on the number of workers or on timing.
    const BlasThreadsGuard blas_threads(1);
    const std::size_t workers = std::min<std::size_t>(
        tasks, c.opt.jobs ? c.opt.jobs : std::max(1u, std::thread::hardware_concurrency()));
    std::atomic<std::size_t> next{0};
    std::vector<std::thread> pool;
    std::exception_ptr error;
    std::mutex error_mutex;
    for (std::size_t w = 0; w < workers; ++w)
      pool.emplace_back([&] {
        for (std::size_t i; (i = next++) < tasks;) {
          try {
            run(i);
          } catch (...) {
            const std::lock_guard<std::mutex> lock(error_mutex);
            if (!error) error = std::current_exception();
          }
        }
      });
    for (auto& t : pool)
      t.join();
    if (error) std::rethrow_exception(error);
  }
  AvgResult out;
  for (std::size_t k = 0; k < cands.size(); ++k) {
    Matrix o = xt::zeros<double>({n, std::size_t(1)});
    Matrix f = xt::zeros<double>(fresh[0].shape());
    for (std::size_t s = 0; s < seeds; ++s) {
      o += oof[k * seeds + s];
      f += fresh[k * seeds + s];
    }
    o /= double(seeds);
    f /= double(seeds);
    std::vector<double> sq(n);
    for (std::size_t r = 0; r < n; ++r)
      sq[r] = (o(r, 0) - known.y(r, 0)) * (o(r, 0) - known.y(r, 0));
    CvScore sc = cv_score(sq);
    for (double v : f)
      if (!std::isfinite(v)) sc = {kNaN, kNaN};  // a diverged refit is never averaged
    out.scores.push_back(sc);
    out.candidate_pred.push_back(f);
  }
  out.kept = within_one_se(out.scores);
  out.prediction = xt::zeros<double>(fresh[0].shape());
  for (std::size_t k : out.kept)
    out.prediction += out.candidate_pred[k];
  if (!out.kept.empty()) out.prediction /= double(out.kept.size());
  return out;
}

void sparse(const Context& c) {
  // Report 001: N = 18 points, sigma = 0.1. One draw of 18 points decides almost
  // everything (where the points fall around the peak), so the protocol runs on
  // several draws; each draw has its own fresh 100-point generalisation set.
  //
  // The "dev" draws are the ones every method here was developed on (their fresh sets
  // were looked at while choosing the averaged network's design); the "heldout" draws
  // were first run once that design was fixed, and they alone judge it.
  struct DrawSet {
    const char* name;
    std::vector<std::uint64_t> seeds;
  };
  std::vector<DrawSet> sets;
  if (c.opt.quick) {
    sets = {{"dev", {2025}}, {"heldout", {101}}};
  } else {
    sets = {{"dev", {2025, 1, 2, 3, 4, 5, 6, 7, 8, 9}}, {"heldout", {}}};
    for (std::uint64_t s = 101; s <= 120; ++s)
      sets[1].seeds.push_back(s);
  }
  const std::size_t members = c.opt.quick ? 2 : 5;
  // The averaged network (average_within_one_se): smooth one- and two-layer networks
  // without penalty, each an 8-seed ensemble, trained like the grid's.
  const std::vector<AvgCandidate> avg_cands =
      c.opt.quick
          ? std::vector<AvgCandidate>{{"tanh", 1, 5}}
          : std::vector<AvgCandidate>{{"sigmoid", 1, 10}, {"sigmoid", 1, 20}, {"sigmoid", 1, 50},
                                      {"sigmoid", 2, 10}, {"tanh", 1, 10},    {"tanh", 1, 20},
                                      {"tanh", 1, 50},    {"tanh", 2, 10}};
  const std::size_t avg_seeds = c.opt.quick ? 2 : 8;
  SweepSpec base;
  base.model = report000_model(2, 10, "tanh");
  base.model.init = "glorot_normal";
  base.model.bias_init = 0.0;
  base.train.epochs = c.epochs(1000);
  base.train.batch_size = 0;
  base.train.seed = 1;
  base.evaluation = Evaluation::KFold;
  // 6 folds of 3 points. Leave-one-out (18 folds) was tried: 3x the cost for the same
  // generalisation on the first draws (docs/results-runge.md).
  base.folds = 6;
  base.resample_seed = 7;
  base.axes.optimiser = {"adam"};
  base.axes.activation = c.opt.quick ? std::vector<std::string>{"tanh"}
                                     : std::vector<std::string>{"sigmoid", "tanh", "leaky_relu"};
  base.axes.layers = c.opt.quick ? std::vector<std::size_t>{1} : std::vector<std::size_t>{1, 2};
  base.axes.nodes = c.opt.quick ? std::vector<std::size_t>{5} : std::vector<std::size_t>{5, 10, 20};
  base.axes.batch_size = {0};
  base.axes.lr = c.opt.quick ? std::vector<double>{1e-2} : std::vector<double>{1e-2, 1e-1};
  auto gen = open_csv(c, "sparse_generalisation.csv",
                      "data_seed,model,penalty,lambda,optimiser,activation,layers,nodes,lr,"
                      "cv_mse,fresh_mse,log10_fresh_mse,fresh_mse_vs_true_function,set");
  auto avg_csv = open_csv(c, "sparse_avg_candidates.csv",
                          "data_seed,set,activation,layers,nodes,epochs,seeds,cv_mse,cv_se,kept,"
                          "log10_fresh_mse");
  for (const auto& set : sets)
    for (const std::uint64_t draw : set.seeds) {
      const std::string end = std::string(",") + set.name + "\n";
      DataSpec d;
      d.n = 18;
      d.noise = 0.1;
      d.seed = draw;
      // The 18 points are all "known" data of report 001's search; CV folds split them.
      const SweepData known = make_sweep_data(d, 0.2, kSplitSeed);
      DataSpec fresh_spec = d;
      fresh_spec.n = 100;
      fresh_spec.seed = 9001 + draw;
      const Dataset fresh = generate(fresh_spec);
      const Matrix truth = true_function(Function::Runge, fresh.x);
      const std::string tag = "sparse_d" + std::to_string(draw) + "_";
      for (const std::string pen : {"none", "l1", "l2"}) {
        SweepSpec s = base;
        s.axes.penalty = {pen};
        s.axes.lambda = pen == "none" ? std::vector<double>{0.0}
                        : c.opt.quick ? std::vector<double>{1e-3}
                                      : std::vector<double>{1e-4, 1e-3, 1e-2};
        const std::string file = tag + (pen == "none" ? "l0" : pen) + ".csv";
        sweep(c, known, s, file);
        const auto rows = read_sweep_csv(c.path(file));
        const PointResult* b = best_of(rows);
        if (!b) continue;
        // The CV winner, refitted on all 18 known points (an ensemble over seeds), judged
        // on the 100 fresh points.
        ModelSpec m = s.model;
        m.hidden.assign(b->point.layers, b->point.nodes);
        m.activation = b->point.activation;
        TrainSpec t = s.train;
        t.optimiser = b->point.optimiser;
        t.learning_rate = b->point.lr;
        t.penalty = pen;
        t.lambda = b->point.lambda;
        const Matrix p = ensemble_predict(known.full, m, t, members, fresh.x);
        const double e = mse(p, fresh.y);
        gen << draw << ",ffnn," << (pen == "none" ? "l0" : pen) << ',' << num(b->point.lambda)
            << ',' << b->point.optimiser << ',' << b->point.activation << ',' << b->point.layers
            << ',' << b->point.nodes << ',' << num(b->point.lr) << ',' << num(b->mse) << ','
            << num(e) << ',' << num(std::log10(e)) << ',' << num(mse(p, truth)) << end;
        c.log("sparse draw " + std::to_string(draw) + " " + pen +
              ": fresh log10 MSE = " + num(std::log10(e)));
      }
      {
        // No search on the 18 points at all: the network of the 300-point study (cv), whose
        // settings were fixed before this experiment saw any sparse data. CV on 3-point
        // folds is so noisy that a prior can beat the search.
        const CvModel prior = our_best(c);
        const Matrix p = ensemble_predict(known.full, prior.model, prior.train, members, fresh.x);
        const double e = mse(p, fresh.y);
        gen << draw << ",xgrad_prior," << prior.train.penalty << ',' << num(prior.train.lambda)
            << ',' << prior.train.optimiser << ',' << prior.model.activation << ','
            << prior.model.hidden.size() << ',' << prior.model.hidden.front() << ','
            << num(prior.train.learning_rate) << ",nan," << num(e) << ',' << num(std::log10(e))
            << ',' << num(mse(p, truth)) << end;
        c.log("sparse draw " + std::to_string(draw) +
              " prior: fresh log10 MSE = " + num(std::log10(e)));
      }
      {
        TrainSpec t;
        t.optimiser = "adam";
        t.learning_rate = 1e-2;
        t.epochs = c.epochs(1000);
        t.batch_size = 0;
        t.seed = 1;
        const AvgResult a = average_within_one_se(c, known.full, fresh.x, avg_cands, t, avg_seeds,
                                                  base.folds, base.resample_seed);
        for (std::size_t k = 0; k < avg_cands.size(); ++k) {
          const bool kept = std::find(a.kept.begin(), a.kept.end(), k) != a.kept.end();
          avg_csv << draw << ',' << set.name << ',' << avg_cands[k].activation << ','
                  << avg_cands[k].layers << ',' << avg_cands[k].nodes << ',' << t.epochs << ','
                  << avg_seeds << ',' << num(a.scores[k].mse) << ',' << num(a.scores[k].se) << ','
                  << (kept ? 1 : 0) << ',' << num(std::log10(mse(a.candidate_pred[k], fresh.y)))
                  << '\n';
        }
        const double e = mse(a.prediction, fresh.y);
        double best_cv = kNaN;
        for (std::size_t k : a.kept)
          if (!(a.scores[k].mse >= best_cv)) best_cv = a.scores[k].mse;
        gen << draw << ",ffnn_avg1se,l0,0,adam,avg_of_" << a.kept.size() << ",-,-,0.01,"
            << num(best_cv) << ',' << num(e) << ',' << num(std::log10(e)) << ','
            << num(mse(a.prediction, truth)) << end;
        c.log("sparse draw " + std::to_string(draw) + " (" + set.name + ") averaged network of " +
              std::to_string(a.kept.size()) + ": fresh log10 MSE = " + num(std::log10(e)));
      }
      // The linear baselines with degree and lambda chosen by the same CV folds.
      const auto folds = kfold_indices(known.full.size(), base.folds, base.resample_seed);
      for (const std::string meth : {"ols", "ridge", "lasso"}) {
        double best = std::numeric_limits<double>::infinity();
        int best_p = 1;
        double best_l = 0;
        const std::vector<double> lambdas = meth == "ols"
                                                ? std::vector<double>{0.0}
                                                : std::vector<double>{1e-5, 1e-4, 1e-3, 1e-2, 1e-1};
        for (int p = 1; p <= 12; ++p)
          for (double lam : lambdas) {
            double cvm = 0;
            for (std::size_t f = 0; f < folds.size(); ++f) {
              const Dataset tr = subset(known.full, complement(known.full.size(), folds[f]));
              const Dataset te = subset(known.full, folds[f]);
              cvm += mse(fit_linear(tr, parse_linear_method(meth), p, lam).predict(te.x), te.y) /
                     double(folds.size());
            }
            if (cvm < best) {
              best = cvm;
              best_p = p;
              best_l = lam;
            }
          }
        const Matrix pr =
            fit_linear(known.full, parse_linear_method(meth), best_p, best_l).predict(fresh.x);
        const double e = mse(pr, fresh.y);
        gen << draw << ',' << meth << "_degree" << best_p << ",-," << num(best_l) << ",-,-,-,-,-,"
            << num(best) << ',' << num(e) << ',' << num(std::log10(e)) << ',' << num(mse(pr, truth))
            << end;
      }
      gen << draw << ",true_function,-,0,-,-,-,-,-,nan," << num(mse(truth, fresh.y)) << ','
          << num(std::log10(mse(truth, fresh.y))) << ",0" << end;
      if (draw == sets.front().seeds.front()) {
        auto pts = open_csv(c, "sparse_points.csv", "x,y,part");
        for (std::size_t i = 0; i < known.full.size(); ++i)
          pts << num(known.full.x(i, 0)) << ',' << num(known.full.y(i, 0)) << ",known\n";
      }
    }
}

// ---- 7. report 003's Franke regression ----
void franke(const Context& c) {
  DataSpec d;
  d.function = Function::Franke;
  d.n = 1000;
  d.noise = 0.2;  // report 003: 0.2 N(0, 1)
  d.seed = 3;
  const SweepData data = make_sweep_data(d, 0.25, kSplitSeed);
  SweepSpec s;
  s.model = report000_model(1, 128, "relu");
  s.model.init = "normal:0.05";  // report 003: kernel N(0, 0.05), zero biases
  s.model.bias_init = 0.0;
  s.train.epochs = c.epochs(100, 5);
  s.train.seed = 1;
  s.evaluation = Evaluation::Bootstrap;
  s.bootstraps = c.opt.quick ? 2 : 10;
  s.axes.optimiser = {"sgd"};
  s.axes.activation = {"relu"};
  s.axes.penalty = {"l2"};
  s.axes.layers = {1};
  s.axes.nodes = {128};
  s.axes.batch_size = {10};
  s.axes.lambda = c.opt.quick ? std::vector<double>{1e-4} : logspace(-4.0, -1.0, 1.0);
  s.axes.lr = c.opt.quick ? std::vector<double>{1e-2} : logspace(-4.0, -1.0, 1.0);
  sweep(c, data, s, "franke_grid.csv");
  auto out = open_csv(c, "franke_summary.csv", "model,test_mse,test_r2");
  const PointResult* b = nullptr;
  const auto rows = read_sweep_csv(c.path("franke_grid.csv"));
  b = best_of(rows);
  if (b) {
    ModelSpec m = s.model;
    TrainSpec t = s.train;
    t.optimiser = "sgd";
    t.batch_size = 10;
    t.learning_rate = b->point.lr;
    t.penalty = "l2";
    t.lambda = b->point.lambda;
    const Scores sc = score(train_network(data.split.train, nullptr, m, t), data.split.test);
    out << "ffnn_1x128_relu_sgd_lr" << num(b->point.lr) << "_l2_" << num(b->point.lambda) << ','
        << num(sc.mse) << ',' << num(sc.r2) << '\n';
  }
  {
    // Our network: the same architecture with Adam, He initialisation and more epochs.
    ModelSpec m = s.model;
    m.init = "he_normal";
    TrainSpec t = s.train;
    t.optimiser = "adam";
    t.batch_size = 32;
    t.learning_rate = 1e-3;
    t.epochs = c.epochs(500, 5);
    t.schedule = "step:0.001,0.5,150";
    const Scores sc = score(train_network(data.split.train, nullptr, m, t), data.split.test);
    out << "xgrad_1x128_relu_adam," << num(sc.mse) << ',' << num(sc.r2) << '\n';
  }
  for (int p : {5, 8, 14}) {
    const Matrix pr =
        fit_linear(data.split.train, LinearMethod::OLS, p, 0.0).predict(data.split.test.x);
    out << "ols_degree" << p << ',' << num(mse(pr, data.split.test.y)) << ','
        << num(r2(pr, data.split.test.y)) << '\n';
  }
  const Matrix truth = true_function(Function::Franke, data.split.test.x);
  out << "true_function," << num(mse(truth, data.split.test.y)) << ','
      << num(r2(truth, data.split.test.y)) << '\n';
}

}  // namespace

CvScore cv_score(const std::vector<double>& squared_errors) {
  CvScore s;
  if (squared_errors.empty()) return {kNaN, kNaN};
  const double n = double(squared_errors.size());
  for (double e : squared_errors)
    s.mse += e / n;
  double var = 0;
  for (double e : squared_errors)
    var += (e - s.mse) * (e - s.mse) / n;
  s.se = std::sqrt(var / n);
  return s;
}

std::vector<std::size_t> within_one_se(const std::vector<CvScore>& scores) {
  std::size_t best = scores.size();
  for (std::size_t i = 0; i < scores.size(); ++i)
    if (std::isfinite(scores[i].mse) && std::isfinite(scores[i].se) &&
        (best == scores.size() || scores[i].mse < scores[best].mse))
      best = i;
  std::vector<std::size_t> out;
  if (best == scores.size()) return out;
  const double limit = scores[best].mse + scores[best].se;
  for (std::size_t i = 0; i < scores.size(); ++i)
    if (std::isfinite(scores[i].mse) && std::isfinite(scores[i].se) && scores[i].mse <= limit)
      out.push_back(i);
  return out;
}

const std::vector<ExperimentInfo>& experiments() {
  static const std::vector<ExperimentInfo> list = {
      {"learning-rate",
       "report 000 Fig. 1 and Table I: test MSE vs learning rate, GD/SGD x "
       "RMSprop/Adam, 1 and 2 hidden layers of 50 sigmoid nodes"},
      {"curves",
       "report 000 Figs. 2-3: MSE vs epoch at the best rates; the fit vs OLS "
       "degree 12 and the true function"},
      {"architecture",
       "report 000 Fig. 4: layers {1,3,5} x nodes x {sigmoid, ReLU, "
       "LeakyReLU} x learning rate (prints its wall time)"},
      {"regularisation",
       "report 000 Figs. 5-6: lambda x learning rate for L1 and L2, then "
       "layers x nodes at the best lambda"},
      {"cv",
       "report 000's 5-fold CV R^2 (96.4% vs OLS 96.0%) and a fresh 10,000-point test "
       "against the noise floor"},
      {"sparse",
       "report 001: N=18, L0/L1/L2 grid search with CV and an averaged network, judged on "
       "fresh 100-point sets of 10 development and 20 held-out draws"},
      {"franke", "report 003: Franke function, 1 x 128 ReLU, SGD grid with bootstrap vs OLS"},
  };
  return list;
}

double run_experiment(const std::string& name, const ExperimentOptions& options) {
  const auto t0 = std::chrono::steady_clock::now();
  Context c{options, fs::path(options.out_dir)};
  fs::create_directories(c.dir);
  if (name == "learning-rate")
    learning_rate(c);
  else if (name == "curves")
    curves(c);
  else if (name == "architecture")
    architecture(c);
  else if (name == "regularisation")
    regularisation(c);
  else if (name == "cv")
    cv(c);
  else if (name == "sparse")
    sparse(c);
  else if (name == "franke")
    franke(c);
  else {
    std::string names;
    for (const auto& e : experiments())
      names += (names.empty() ? "" : ", ") + e.name;
    throw std::invalid_argument("experiment: unknown name '" + name + "' (expected one of " +
                                names + ")");
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace runge
