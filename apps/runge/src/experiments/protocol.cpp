// The shared parts of the named experiments (protocol.hpp).
#include "experiments/protocol.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

namespace runge::experiment {

std::string num(double v) {
  if (std::isnan(v)) return "nan";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.10g", v);
  return buf;
}

std::vector<double> logspace(double a, double b, double step) {
  std::vector<double> out;
  for (int k = 0; a + k * step <= b + 1e-9; ++k)
    out.push_back(std::pow(10.0, a + k * step));
  return out;
}

// ---- report 000's protocol (§II.F, §III.A) ----
DataSpec report000_data() {
  DataSpec d;
  d.n = 300;
  d.noise = 0.05;
  d.seed = 44;
  return d;
}

ModelSpec report000_model(std::size_t layers, std::size_t nodes, const std::string& act) {
  ModelSpec m;
  m.hidden.assign(layers, nodes);
  m.activation = act;
  m.init = "standard_normal";  // report 000 §II.F
  m.bias_init = 0.01;
  return m;
}

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

void run_tasks(const Context& c, std::size_t tasks, const std::function<void(std::size_t)>& run) {
  const BlasThreadsGuard blas_threads(1);  // the workers own the cores
  const std::size_t workers = std::min<std::size_t>(
      tasks, c.opt.jobs ? c.opt.jobs : std::max(1u, std::thread::hardware_concurrency()));
  std::atomic<std::size_t> next{0};
  std::exception_ptr error;
  std::mutex error_mutex;
  std::vector<std::thread> pool;
  for (std::size_t w = 0; w < workers; ++w) {
    pool.emplace_back([&] {
      for (std::size_t i; (i = next++) < tasks;) {
        try {
          run(i);
        } catch (...) {
          const std::lock_guard<std::mutex> lock(error_mutex);
          if (!error) error = std::current_exception();
          next = tasks;  // the others finish their task and take no more
        }
      }
    });
  }
  for (auto& t : pool)
    t.join();
  if (error) std::rethrow_exception(error);
}

SweepStats sweep(const Context& c, const SweepData& data, const SweepSpec& spec,
                 const std::string& file) {
  SweepSpec s = spec;
  s.jobs = c.opt.jobs;
  s.fresh = c.opt.fresh;
  const std::size_t points = s.axes.size();
  c.log("sweep " + file + ": " + std::to_string(points) + (points == 1 ? " point" : " points"));
  const SweepStats st = run_sweep(data, s, c.path(file), 0, c.opt.log);
  char seconds[32];
  std::snprintf(seconds, sizeof seconds, "%.2f s", st.seconds);
  c.log("sweep " + file + ": " + std::to_string(st.run) + " run, " + std::to_string(st.reused) +
        " reused, " + std::to_string(st.diverged) + " diverged, " + seconds);
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

}  // namespace runge::experiment
