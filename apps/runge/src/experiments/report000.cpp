// Report 000's sweeps: test MSE vs learning rate (Fig. 1, Table I), learning curves and
// the fit (Figs. 2-3), the architecture grid (Fig. 4) and regularisation (Figs. 5-6).
#include "experiments/protocol.hpp"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <sstream>
#include <thread>

#include "linear.hpp"

namespace runge::experiment {

// ---- 1. learning rate (Fig. 1, Table I) ----
namespace {
// Table I's rows: mode x optimiser x hidden layers, in this order.
const std::vector<std::string> kModes = {"sgd", "gd"};
const std::vector<std::string> kOptimisers = {"rmsprop", "adam"};
const std::vector<std::size_t> kLayers = {1, 2};
const std::size_t kTable1Rows = kModes.size() * kOptimisers.size() * kLayers.size();
}  // namespace

void learning_rate(const Context& c) {
  const SweepData data = make_sweep_data(report000_data(), 0.2, kSplitSeed);
  const auto lrs = c.opt.quick ? std::vector<double>{1e-2, 1e-1} : logspace(-3.0, 2.5, 0.5);
  // Written once both sweeps are done: an interrupted run leaves no table1.csv, which
  // `curves` would otherwise read as a table without rows.
  std::ostringstream table;
  for (const std::string& mode : kModes) {
    SweepSpec s;
    s.train = mode == "sgd" ? report000_sgd(c.epochs(3000)) : report000_gd(c.epochs(3000));
    s.model = report000_model(1, 50, "sigmoid");
    s.axes.optimiser = kOptimisers;
    s.axes.layers = kLayers;
    s.axes.nodes = {50};
    s.axes.batch_size = {s.train.batch_size};
    s.axes.lr = lrs;
    const std::string file = "fig1_" + mode + ".csv";
    sweep(c, data, s, file);
    const auto rows = read_sweep_csv(c.path(file));
    for (const std::string& o : kOptimisers)
      for (const std::size_t l : kLayers) {
        std::vector<PointResult> sel;
        for (const auto& r : rows)
          if (r.point.optimiser == o && r.point.layers == l) sel.push_back(r);
        const PointResult* b = best_of(sel);
        table << mode << ',' << o << ',' << l << ',' << (b ? num(b->point.lr) : "nan") << ','
              << (b ? num(b->mse) : "nan") << ',' << (b ? num(std::log10(b->point.lr)) : "nan")
              << '\n';
      }
  }
  open_csv(c, "table1.csv", "mode,optimiser,layers,best_lr,best_mse,log10_lr") << table.str();
  // The OLS degree-12 line of Fig. 1 on the same split.
  auto base = open_csv(c, "baselines_report000.csv", "method,degree,lambda,test_mse,test_r2");
  for (int p : {12}) {
    const auto m = fit_linear(data.split.train, LinearMethod::OLS, p, 0.0);
    const Matrix pred = m.predict(data.split.test.x);
    base << "ols," << p << ",0," << num(mse(pred, data.split.test.y)) << ','
         << num(r2(pred, data.split.test.y)) << '\n';
  }
}

namespace {

struct TableRow {
  std::string mode, optimiser;
  std::size_t layers = 1;
  double lr = 0;
};
/// Table I's rows with a learning rate; `complete` says whether the file holds all of
/// them (nan rows too: a setting where every rate diverged).
std::vector<TableRow> read_table1(const Context& c, bool& complete) {
  std::ifstream in(c.path("table1.csv"));
  std::vector<TableRow> out;
  std::string line;
  std::getline(in, line);
  std::size_t lines = 0, line_number = 1;  // rows, and the file's lines
  while (std::getline(in, line)) {
    ++line_number;
    if (line.empty()) continue;
    ++lines;
    std::stringstream ss(line);
    std::string f[6];
    for (auto& x : f)
      std::getline(ss, x, ',');
    if (f[3] == "nan") continue;
    try {
      out.push_back({f[0], f[1], std::stoul(f[2]), std::stod(f[3])});
    } catch (const std::logic_error&) {  // stoul / stod: invalid_argument, out_of_range
      throw std::runtime_error(c.path("table1.csv") + " line " + std::to_string(line_number) +
                               ": '" + line + "' is not a row of Table I");
    }
  }
  complete = lines == kTable1Rows;
  return out;
}

}  // namespace

// ---- 2. learning curves at the best rates (Fig. 2) and the fit (Fig. 3) ----
void curves(const Context& c) {
  bool complete = false;
  std::vector<TableRow> table;
  if (fs::exists(c.path("table1.csv"))) table = read_table1(c, complete);
  if (!complete) {
    c.log("curves: table1.csv missing or incomplete, running learning-rate first");
    learning_rate(c);
    table = read_table1(c, complete);
  }
  const SweepData data = make_sweep_data(report000_data(), 0.2, kSplitSeed);
  auto out = open_csv(c, "fig2_curves.csv", "mode,optimiser,layers,lr,epoch,train_mse,test_mse");
  for (const auto& row : table) {
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
namespace {
SweepSpec architecture_spec(const Context& c) {
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
  return s;
}
}  // namespace

void architecture(const Context& c) {
  const SweepData data = make_sweep_data(report000_data(), 0.2, kSplitSeed);
  const SweepSpec s = architecture_spec(c);
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
  // The unregularised winner of a whole Fig. 4 grid when there is one, else report 000's
  // (1 x 40 sigmoid). A grid cut short would pick among the points it reached.
  std::size_t layers = 1, nodes = 40;
  std::string act = "sigmoid";
  if (fs::exists(c.path("fig4.csv"))) {
    const auto rows = read_sweep_csv(c.path("fig4.csv"));
    const std::size_t whole = expand(architecture_spec(c).axes).size();
    if (rows.size() < whole) {
      c.log("regularisation: fig4.csv holds " + std::to_string(rows.size()) + " of the " +
            std::to_string(whole) +
            " points of the architecture grid, so its winner is not used (finish it with "
            "`runge experiment architecture`)");
    } else if (const PointResult* b = best_of(rows)) {
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

}  // namespace runge::experiment
