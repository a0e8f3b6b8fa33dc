// Report 003's Franke regression: 1 x 128 ReLU with SGD against OLS.
#include "experiments/protocol.hpp"

#include "linear.hpp"

namespace runge::experiment {

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

}  // namespace runge::experiment
