// LibTorch (C++) peer of runge_bench and peers.py: 1-50-50-1 sigmoid, Adam (lr 1e-3), MSE,
// float64, on 240 Runge points (report 000: 300 points on [-1, 1], noise sigma 0.05, 20%
// held out, inputs and targets standardised on the training set), one thread:
//   full    EPOCHS full-batch steps
//   batch5  EPOCHS epochs of minibatches of 5, reshuffled every epoch (48 steps each)
// The same network, optimiser and step as the PyTorch peer in peers.py (zero_grad,
// forward, MSE, backward, step; a minibatch is rows of a randperm), without Python.
// Prints CSV rows "impl,case,threads,steps,seconds,cpu_seconds,us_per_step,
// cpu_us_per_step,test_mse" like runge_bench.
//   runge_libtorch [--epochs N] [--cases full,batch5] [--header]
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace {

struct Data {
  torch::Tensor x_train, y_train, x_test;  // standardised
  std::vector<double> y_test;              // original units
  double y_mean = 0, y_std = 1;
};

// The recipe of runge::generate and peers.py's data(); the draws are std::mt19937_64's,
// so the points differ from both, the distribution and sizes do not (speed does not
// depend on the values; test_mse is a sanity check).
Data make_data() {
  const int n = 300, n_train = 240;
  std::mt19937_64 rng(44);
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  std::normal_distribution<double> noise(0.0, 0.05);
  std::vector<double> x(n), y(n);
  for (int i = 0; i < n; ++i) {
    x[i] = u(rng);
    y[i] = 1.0 / (1.0 + 25.0 * x[i] * x[i]) + noise(rng);
  }
  std::vector<int> idx(n);
  for (int i = 0; i < n; ++i)
    idx[i] = i;
  std::shuffle(idx.begin(), idx.end(), rng);
  auto mean_std = [&](const std::vector<double>& v) {
    double m = 0, s = 0;
    for (int i = 0; i < n_train; ++i)
      m += v[idx[i]];
    m /= n_train;
    for (int i = 0; i < n_train; ++i)
      s += (v[idx[i]] - m) * (v[idx[i]] - m);
    return std::pair<double, double>(m, std::sqrt(s / n_train));
  };
  const auto [mx, sx] = mean_std(x);
  const auto [my, sy] = mean_std(y);
  const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  Data d;
  d.x_train = torch::empty({n_train, 1}, f64);
  d.y_train = torch::empty({n_train, 1}, f64);
  d.x_test = torch::empty({n - n_train, 1}, f64);
  auto xt = d.x_train.accessor<double, 2>();
  auto yt = d.y_train.accessor<double, 2>();
  auto xe = d.x_test.accessor<double, 2>();
  for (int i = 0; i < n; ++i) {
    const int j = idx[i];
    if (i < n_train) {
      xt[i][0] = (x[j] - mx) / sx;
      yt[i][0] = (y[j] - my) / sy;
    } else {
      xe[i - n_train][0] = (x[j] - mx) / sx;
      d.y_test.push_back(y[j]);
    }
  }
  d.y_mean = my;
  d.y_std = sy;
  return d;
}

struct Result {
  long steps = 0;
  double seconds = 0, cpu_seconds = 0, test_mse = 0;
};

Result train(const Data& d, const std::string& c, long epochs) {
  torch::manual_seed(1);
  torch::nn::Sequential net(torch::nn::Linear(1, 50), torch::nn::Sigmoid(),
                            torch::nn::Linear(50, 50), torch::nn::Sigmoid(),
                            torch::nn::Linear(50, 1));
  net->to(torch::kFloat64);
  torch::optim::Adam opt(net->parameters(), torch::optim::AdamOptions(1e-3));
  const long n = d.x_train.size(0);
  const long batch = c == "full" ? n : 5;
  auto gen = at::detail::createCPUGenerator(1);
  Result r;
  const std::clock_t c0 = std::clock();
  const auto t0 = std::chrono::steady_clock::now();
  for (long e = 0; e < epochs; ++e) {
    torch::Tensor perm;
    if (batch < n) perm = torch::randperm(n, gen, torch::TensorOptions().dtype(torch::kLong));
    for (long b = 0; b < n; b += batch) {
      torch::Tensor xb = d.x_train, yb = d.y_train;
      if (batch < n) {
        const torch::Tensor rows = perm.slice(0, b, std::min(b + batch, n));
        xb = d.x_train.index_select(0, rows);
        yb = d.y_train.index_select(0, rows);
      }
      opt.zero_grad();
      torch::Tensor loss = torch::mse_loss(net->forward(xb), yb);
      loss.backward();
      opt.step();
      ++r.steps;
    }
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.cpu_seconds = double(std::clock() - c0) / CLOCKS_PER_SEC;
  torch::NoGradGuard no_grad;
  const torch::Tensor pred = net->forward(d.x_test).contiguous();
  const auto p = pred.accessor<double, 2>();
  double se = 0;
  for (std::size_t i = 0; i < d.y_test.size(); ++i) {
    const double diff = p[static_cast<long>(i)][0] * d.y_std + d.y_mean - d.y_test[i];
    se += diff * diff;
  }
  r.test_mse = se / double(d.y_test.size());
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  long epochs = 3000;
  std::string cases = "full,batch5";
  bool header = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--epochs" && i + 1 < argc) {
      epochs = std::atol(argv[++i]);
    } else if (a == "--cases" && i + 1 < argc) {
      cases = argv[++i];
    } else if (a == "--header") {
      header = true;
    } else {
      std::fprintf(stderr, "usage: runge_libtorch [--epochs N] [--cases full,batch5] [--header]\n");
      return a == "--help" ? 0 : 2;
    }
  }
  if (epochs < 1) {
    std::fprintf(stderr, "runge_libtorch: --epochs must be at least 1\n");
    return 2;
  }
  // One thread, like every peer (../shared/DESIGN.md §6): intra-op and inter-op pools both; the
  // inter-op setting must come before any parallel work.
  at::set_num_interop_threads(1);
  at::set_num_threads(1);
  const Data d = make_data();
  if (header)
    std::printf(
        "impl,case,threads,steps,seconds,cpu_seconds,us_per_step,cpu_us_per_step,test_mse\n");
  std::stringstream ss(cases);
  std::string c;
  while (std::getline(ss, c, ',')) {
    if (c != "full" && c != "batch5") {
      std::fprintf(stderr, "runge_libtorch: --cases: unknown case '%s'\n", c.c_str());
      return 2;
    }
    const Result r = train(d, c, epochs);
    std::printf("libtorch,%s,%d,%ld,%.4f,%.4f,%.3f,%.3f,%.6g\n", c.c_str(), at::get_num_threads(),
                r.steps, r.seconds, r.cpu_seconds, 1e6 * r.seconds / double(r.steps),
                1e6 * r.cpu_seconds / double(r.steps), r.test_mse);
    std::fflush(stdout);
  }
  return 0;
}
