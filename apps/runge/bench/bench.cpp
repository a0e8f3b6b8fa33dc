// Speed benchmark of issue 4: 1-50-50-1 sigmoid with Adam on the 240 training points of
// report 000's split, 3000 epochs full batch (3000 steps) and batch size 5 (144,000
// steps). Prints one CSV row per case; bench/run_bench.sh runs the PyTorch and
// scikit-learn peers in the same run. Case full32 is the full-batch run in float32,
// next to PyTorch's float32 (its default dtype): the runge app trains in float64, so
// this case drives nn::Trainer<float> on the same scaled data directly. Case full2 is the
// full-batch run as data-parallel steps: 2 shards of 120 rows on 2 threads (runge train
// --shards 2 --threads 2), whose gain shows in wall time, not in CPU time.
#include <chrono>
#include <cstdio>
#include <ctime>
#include <sstream>
#include <string>

#include <CLI/CLI.hpp>
#include <xgrad/nn/trainer.hpp>
#include <xgrad/threads.hpp>
#include <xtensor/xmath.hpp>

#include "data.hpp"
#include "train.hpp"

namespace {

/// One CSV row: steps, wall and process CPU seconds, test MSE in the original units.
struct Run {
  std::size_t steps = 0;
  double seconds = 0, cpu_seconds = 0, test_mse = 0;
};

/// Wall and process CPU seconds of train(), into run. On a shared machine the CPU time
/// is the fairer measure (the peers report both too).
template <class Train>
void time_training(Run& run, Train&& train) {
  const std::clock_t c0 = std::clock();
  const auto t0 = std::chrono::steady_clock::now();
  train();
  run.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  run.cpu_seconds = double(std::clock() - c0) / CLOCKS_PER_SEC;
}

void print_row(const char* impl, const std::string& name, const Run& r) {
  std::printf("%s,%s,%d,%zu,%.4f,%.4f,%.3f,%.3f,%.6g\n", impl, name.c_str(), xgrad::threads(),
              r.steps, r.seconds, r.cpu_seconds, 1e6 * r.seconds / double(r.steps),
              1e6 * r.cpu_seconds / double(r.steps), r.test_mse);
  std::fflush(stdout);
}

/// Report 000's network (1-50-50-1 sigmoid, N(0,1) weights, biases 0.01, Adam lr 1e-3,
/// full batch, standardised x and y, seed 1) trained in float32 with nn::Trainer.
Run train_full_batch_float32(const runge::Split& split, std::size_t epochs) {
  runge::StandardScaler sx, sy;
  sx.fit(split.train.x);
  sy.fit(split.train.y);
  const xgrad::Matrix<float> x = xt::cast<float>(sx.transform(split.train.x));
  const xgrad::Matrix<float> y = xt::cast<float>(sy.transform(split.train.y));
  xgrad::nn::Initialiser init = xgrad::nn::Initialiser::parse("standard_normal");
  init.bias_value = 0.01;
  std::mt19937_64 rng(1);
  xgrad::nn::Network<float> net({1, 50, 50, 1},
                                {xgrad::nn::Activation::sigmoid(), xgrad::nn::Activation::sigmoid(),
                                 xgrad::nn::Activation::identity()},
                                init, rng);
  xgrad::nn::OptimiserOptions opts;
  opts.learning_rate = 1e-3;
  auto adam = xgrad::nn::make_optimiser<float>("adam", net.parameters(), opts);
  xgrad::nn::TrainerOptions t;
  t.epochs = epochs;
  t.batch_size = 0;  // full batch
  t.shuffle = false;
  t.progress = false;
  xgrad::nn::Trainer<float> trainer(net, *adam, xgrad::nn::CostSpec{}, t);
  Run run;
  run.steps = epochs;
  time_training(run, [&] { trainer.fit(x, y); });
  const xgrad::Matrix<float> x_test = xt::cast<float>(sx.transform(split.test.x));
  const runge::Matrix prediction = sy.inverse_transform(xt::cast<double>(net.predict(x_test)));
  run.test_mse = runge::mse(prediction, split.test.y);
  return run;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"runge_bench: xgrad training speed on report 000's Runge data"};
  app.option_defaults()->always_capture_default();
  std::size_t epochs = 3000;
  int threads = 1;
  std::string cases = "full,batch5";
  bool header = true;
  app.add_option("--epochs", epochs, "Epochs per case");
  app.add_option("--threads", threads, "OpenBLAS threads (tiny matrices: 1 is fastest)");
  app.add_option("--cases", cases,
                 "Comma-separated: full (full batch), full32 (the same in float32), full2 "
                 "(the same as 2 shards on 2 threads), batch5, tanh100 (report 002: 2 x 100 "
                 "tanh, Adam lr 1e-3, L2, batch 200)");
  app.add_flag("!--no-header", header, "Omit the CSV header line");
  CLI11_PARSE(app, argc, argv);
  xgrad::set_threads(threads);

  runge::DataSpec d;  // report 000: 300 points, sigma 0.05; 240 for training
  const auto split = runge::train_test_split(runge::generate(d), 0.2, 44);
  if (header)
    std::printf(
        "impl,case,threads,steps,seconds,cpu_seconds,us_per_step,cpu_us_per_step,test_mse\n");
  std::stringstream ss(cases);
  std::string c;
  while (std::getline(ss, c, ',')) {
    if (c == "full32") {
      print_row("xgrad_float32", "full", train_full_batch_float32(split, epochs));
      continue;
    }
    runge::ModelSpec m;
    m.hidden = {50, 50};
    m.activation = "sigmoid";
    runge::TrainSpec t;
    t.optimiser = "adam";
    t.learning_rate = 1e-3;
    t.epochs = epochs;
    const char* impl = "xgrad";
    int case_threads = threads;
    if (c == "full") {
      t.batch_size = 0;
    } else if (c == "full2") {
      t.batch_size = 0;
      t.shards = 2;
      case_threads = 2;
      impl = "xgrad_2threads";
    } else if (c == "batch5") {
      t.batch_size = 5;
    } else if (c == "tanh100") {
      m.hidden = {100, 100};
      m.activation = "tanh";
      t.batch_size = 200;  // scikit-learn's default min(200, n)
      t.penalty = "l2";
      t.lambda = 1e-4 / (2.0 * 240);  // scikit-learn's alpha / (2 n) convention
    } else {
      std::fprintf(stderr, "runge_bench: --cases: unknown case '%s'\n", c.c_str());
      return 2;
    }
    Run run;
    runge::TrainedModel model;
    xgrad::set_threads(case_threads);
    time_training(run, [&] { model = runge::train_network(split.train, nullptr, m, t); });
    run.steps = model.steps;
    run.test_mse = runge::score(model, split.test).mse;
    print_row(impl, c == "full2" ? "full" : c, run);
    xgrad::set_threads(threads);
  }
  return 0;
}
