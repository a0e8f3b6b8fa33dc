// The MNIST study end to end: a short training run, save -> load -> evaluate, the
// model file's errors, PGM input, sweeps (parallel = serial, resumable) and the CLI.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>

#include <array>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>

#include "file_lock.hpp"
#include "idx.hpp"
#include "require_mnist.hpp"
#include "split_commas.hpp"
#include "study.hpp"
#include "sweep.hpp"
#include "xgrad/threads.hpp"

#ifdef XGRAD_MNIST_HAVE_PNG
#include <png.h>
#endif

using namespace xgrad::mnist;
using xgrad::mnist::testing::require_mnist;
namespace fs = std::filesystem;

namespace {

const TrainTest& mnist() {
  static const TrainTest data = load_dir(XGRAD_MNIST_DIR, "MNIST", "(test data)");
  return data;
}

std::string temp_dir(const std::string& name) {
  const fs::path p = fs::temp_directory_path() / ("xgrad_test_mnist_" + name);
  fs::remove_all(p);
  fs::create_directories(p);
  return p.string();
}

std::string slurp(const std::string& path) {
  std::ifstream f(path);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

// Runs the mnist executable; returns exit status and combined output (`redirect`
// "2>&1 >/dev/null" keeps stderr only). `prefix` goes before the command
// ("cd DIR && env -u VAR").
std::pair<int, std::string> run(const std::string& args, const std::string& redirect = "2>&1",
                                const std::string& prefix = "") {
  const std::string cmd = prefix + " " + std::string(XGRAD_MNIST_EXE) + " " + args + " " + redirect;
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  std::array<char, 4096> buf{};
  while (p && fgets(buf.data(), int(buf.size()), p))
    out += buf.data();
  const int status = p ? pclose(p) : -1;
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

/// The fields of a CSV line (the apps write no quoted fields).
std::vector<std::string> fields(const std::string& line) {
  return xgrad::apps::split_commas(line);
}

/// The rows of a CSV, each field by its header's name.
std::vector<std::map<std::string, std::string>> csv_rows(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  REQUIRE(std::getline(in, line));
  const auto names = fields(line);
  std::vector<std::map<std::string, std::string>> rows;
  while (std::getline(in, line)) {
    const auto f = fields(line);
    REQUIRE(f.size() == names.size());
    std::map<std::string, std::string> row;
    for (std::size_t i = 0; i < f.size(); ++i)
      row[names[i]] = f[i];
    rows.push_back(row);
  }
  return rows;
}

/// v as the sweep CSV prints it (%.6g).
std::string g6(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

/// v as an ostream of default precision prints it (history.csv, confused_pairs.csv).
std::string streamed(double v) {
  std::ostringstream s;
  s << v;
  return s.str();
}

/// One BLAS/engine thread while it lives, as the sweeps and the CLI's default: the
/// same numbers as theirs need the same thread count.
struct OneThread {
  int saved = xgrad::threads();
  OneThread() { xgrad::set_threads(1); }
  ~OneThread() { xgrad::set_threads(saved); }
  OneThread(const OneThread&) = delete;
  OneThread& operator=(const OneThread&) = delete;
};

Recipe quick_recipe() {
  Recipe r;
  r.hidden = {64};
  r.dropout = 0;
  r.lr_decay = 1;
  r.activation = "relu";
  r.learning_rate = 3e-3;
  r.epochs = 3;
  r.batch_size = 64;
  r.seed = 7;
  return r;
}

/// One epoch of a net of 8 hidden units: for sweep tests, whose subject is the CSV.
Recipe sweep_recipe() {
  Recipe r = quick_recipe();
  r.epochs = 1;
  r.hidden = {8};
  return r;
}

}  // namespace

/// n rows of 784 deterministic pixel values and labels 0..9: for the tests of sweep
/// paths that need no real digits.
std::pair<xgrad::Matrix<float>, std::vector<std::uint8_t>> synthetic_digits(std::size_t n) {
  xgrad::Matrix<float> x({n, 784});
  for (std::size_t i = 0; i < x.size(); ++i)
    x.data()[i] = float((i * 37) % 255) / 255.0f;
  std::vector<std::uint8_t> y(n);
  for (std::size_t i = 0; i < y.size(); ++i)
    y[i] = std::uint8_t(i % 10);
  return {x, y};
}

// The data description the sweep tests write into their rows.
const SweepDataInfo kInfo{"MNIST", 0, 0, 42, "float32"};

TEST_CASE("a short run on 6,000 MNIST images reaches 87% test accuracy, and save/load keeps it") {
  require_mnist();
  const LabelledSet tr = head(mnist().train, 6000);
  const LabelledSet te = head(mnist().test, 2000);
  const auto xtr = to_matrix<float>(tr.images);
  const auto xte = to_matrix<float>(te.images);
  CHECK(xtr.shape(0) == 6000);
  CHECK(xtr(0, 0) == 0.0f);
  std::vector<EpochRecord> history;
  const auto net = train<float>(quick_recipe(), xtr, tr.labels, xte, te.labels, {}, &history);
  REQUIRE(history.size() == 3);
  // The first 6,000 training digits are cleaner than the test digits: train accuracy
  // runs ahead (measured 96.3% train, 88.9% test after 3 epochs; 98.6% on all data).
  CHECK(history.back().train_accuracy > 0.94);
  CHECK(history.back().test_accuracy > 0.87);
  CHECK(history.back().train_loss < history.front().train_loss);
  const Evaluation e = evaluate(net, xte, te.labels);
  CHECK(e.accuracy == doctest::Approx(history.back().test_accuracy));
  std::size_t total = 0;
  for (auto& row : e.confusion)
    for (auto c : row)
      total += c;
  CHECK(total == 2000);

  const std::string dir = temp_dir("model");
  save_model(net, dir + "/m.xgm");
  CHECK(model_element_size(dir + "/m.xgm") == 4);
  const auto loaded = load_model<float>(dir + "/m.xgm");
  const Evaluation e2 = evaluate(loaded, xte, te.labels);
  CHECK(e2.accuracy == e.accuracy);
  CHECK(e2.predicted == e.predicted);
  // Same seed, same thread count: the same numbers.
  std::vector<EpochRecord> again;
  train<float>(quick_recipe(), xtr, tr.labels, xte, te.labels, {}, &again);
  CHECK(again.back().test_accuracy == history.back().test_accuracy);
  CHECK(again.back().batch_loss == history.back().batch_loss);
}

TEST_CASE("logistic regression (no hidden layer) trains with the same loop") {
  require_mnist();
  const LabelledSet tr = head(mnist().train, 6000);
  const LabelledSet te = head(mnist().test, 2000);
  Recipe r = quick_recipe();
  r.hidden.clear();
  r.learning_rate = 1e-2;
  std::vector<EpochRecord> history;
  const auto net = train<float>(r, to_matrix<float>(tr.images), tr.labels,
                                to_matrix<float>(te.images), te.labels, {}, &history);
  CHECK(net.layers().size() == 1);
  CHECK(history.back().test_accuracy > 0.85);
}

TEST_CASE("model files: truncated, foreign and corrupt files are errors naming the file") {
  const std::string dir = temp_dir("badmodel");
  xgrad::nn::Network<double> net;
  {
    Recipe r = quick_recipe();
    r.epochs = 1;
    xgrad::Matrix<double> x({4, 784});
    x.fill(0.5);
    net = train<double>(r, x, {0, 1, 2, 3}, xgrad::Matrix<double>({0, 784}), {}, {});
  }
  save_model(net, dir + "/ok.xgm");
  CHECK(model_element_size(dir + "/ok.xgm") == 8);
  const auto back = load_model<double>(dir + "/ok.xgm");
  REQUIRE(back.layers().size() == 2);
  CHECK(back.layers()[0].W.value()(3, 5) == net.layers()[0].W.value()(3, 5));
  CHECK(back.layers()[1].activation.kind == xgrad::nn::ActivationKind::Softmax);
  const std::string bytes = slurp(dir + "/ok.xgm");
  std::ofstream(dir + "/trunc.xgm", std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  std::ofstream(dir + "/foreign.xgm", std::ios::binary) << "P5\n28 28\n255\n";
  std::string flipped = bytes;
  flipped[bytes.size() / 2] = char(flipped[bytes.size() / 2] ^ 0x10);
  std::ofstream(dir + "/flipped.xgm", std::ios::binary) << flipped;
  CHECK_THROWS_WITH_AS(load_model<double>(dir + "/trunc.xgm"),
                       doctest::Contains("trunc.xgm: truncated"), std::runtime_error);
  CHECK_THROWS_WITH_AS(load_model<double>(dir + "/foreign.xgm"),
                       doctest::Contains("foreign.xgm: not an xgrad network file"),
                       std::runtime_error);
  CHECK_THROWS_WITH_AS(load_model<double>(dir + "/flipped.xgm"), doctest::Contains("flipped.xgm"),
                       std::runtime_error);
  CHECK_THROWS_WITH_AS(load_model<float>(dir + "/ok.xgm"), doctest::Contains("ok.xgm"),
                       std::runtime_error);  // float64 file, float32 network
}

TEST_CASE("PGM input: P2 and P5, dark-on-light drawings are inverted, bad files refused") {
  const std::string dir = temp_dir("pgm");
  {
    std::ofstream f(dir + "/white.pgm", std::ios::binary);
    f << "P5\n# drawn on paper\n28 28\n255\n";
    for (int i = 0; i < 784; ++i)
      f.put(char(i == 400 ? 0 : 255));
  }
  bool inverted = false;
  Images im = read_pgm(dir + "/white.pgm", &inverted);
  CHECK(inverted);
  CHECK(im.pixels[400] == 255);
  CHECK(im.pixels[0] == 0);
  {
    std::ofstream f(dir + "/ascii.pgm");
    f << "P2 28 28 15\n";
    for (int i = 0; i < 784; ++i)
      f << (i == 1 ? 15 : 0) << " ";
  }
  im = read_pgm(dir + "/ascii.pgm", &inverted);
  CHECK_FALSE(inverted);
  CHECK(im.pixels[1] == 255);
  std::ofstream(dir + "/small.pgm") << "P2 27 28 255\n";
  CHECK_THROWS_WITH_AS(read_pgm(dir + "/small.pgm"), doctest::Contains("27x28, expected 28x28"),
                       std::runtime_error);
  std::ofstream(dir + "/png.pgm") << "\x89PNG....";
  CHECK_THROWS_WITH_AS(read_pgm(dir + "/png.pgm"), doctest::Contains("PGM image (P2 or P5"),
                       std::runtime_error);
  // A text file names what this build reads.
  std::ofstream(dir + "/notes.txt") << "cmake_minimum_required(VERSION 3.25)\n";
#ifdef XGRAD_MNIST_HAVE_PNG
  CHECK_THROWS_WITH_AS(read_image(dir + "/notes.txt"), doctest::Contains("not a PNG or a PGM"),
                       std::runtime_error);
#else
  CHECK_THROWS_WITH_AS(read_image(dir + "/notes.txt"), doctest::Contains("reads no PNG"),
                       std::runtime_error);
#endif
}

#ifdef XGRAD_MNIST_HAVE_PNG
TEST_CASE("PNG input: colour with transparency, read by content, wrong size refused") {
  const std::string dir = temp_dir("png");
  // A transparent 28x28 RGBA canvas with one opaque black stroke pixel: transparency
  // reads as white paper, so the digit is inverted to light-on-dark.
  std::vector<std::uint8_t> rgba(28 * 28 * 4, 0);
  rgba[4 * 400 + 3] = 255;  // pixel 400: black, opaque
  png_image image{};
  image.version = PNG_IMAGE_VERSION;
  image.width = image.height = 28;
  image.format = PNG_FORMAT_RGBA;
  REQUIRE(
      png_image_write_to_file(&image, (dir + "/digit.img").c_str(), 0, rgba.data(), 0, nullptr));
  bool inverted = false;
  const Images im = read_image(dir + "/digit.img", &inverted);  // no .png suffix needed
  CHECK(inverted);
  CHECK(im.pixels[400] == 255);
  CHECK(im.pixels[0] == 0);
  image = png_image{};
  image.version = PNG_IMAGE_VERSION;
  image.width = 27;
  image.height = 28;
  image.format = PNG_FORMAT_GRAY;
  std::vector<std::uint8_t> grey(27 * 28, 0);
  REQUIRE(
      png_image_write_to_file(&image, (dir + "/small.png").c_str(), 0, grey.data(), 0, nullptr));
  CHECK_THROWS_WITH_AS(read_image(dir + "/small.png"), doctest::Contains("27x28, expected 28x28"),
                       std::runtime_error);
  std::ofstream(dir + "/broken.png", std::ios::binary) << "\x89PNG\r\n\x1a\nbroken";
  CHECK_THROWS_AS(read_image(dir + "/broken.png"), std::runtime_error);
}
#endif

TEST_CASE("sweep: two workers give the rows of one worker, and a rerun resumes") {
  require_mnist();
  const LabelledSet tr = head(mnist().train, 1500);
  const LabelledSet te = head(mnist().test, 500);
  const auto xtr = to_matrix<float>(tr.images);
  const auto xte = to_matrix<float>(te.images);
  Recipe base = quick_recipe();
  base.epochs = 1;
  SweepGrid grid;
  grid.learning_rates = {1e-3, 1e-2};
  grid.lambdas = {0.0, 1e-4};
  const std::string dir = temp_dir("sweep");
  CHECK(run_sweep<float>(base, grid, xtr, tr.labels, xte, te.labels, kInfo, dir + "/serial.csv", 1,
                         nullptr) == 4);
  CHECK(run_sweep<float>(base, grid, xtr, tr.labels, xte, te.labels, kInfo, dir + "/par.csv", 2,
                         nullptr) == 4);
  CHECK(run_sweep<float>(base, grid, xtr, tr.labels, xte, te.labels, kInfo, dir + "/par.csv", 2,
                         nullptr) == 0);  // resumed: nothing left
  // Rows agree up to order and the timing column (the 13th).
  auto rows = [](const std::string& path) {
    std::istringstream in(slurp(path));
    std::vector<std::string> out;
    std::string line;
    while (std::getline(in, line)) {
      std::size_t start = 0;
      for (int c = 0; c < 12; ++c)
        start = line.find(',', start) + 1;
      out.push_back(line.substr(0, start) + line.substr(line.find(',', start)));
    }
    std::sort(out.begin(), out.end());
    return out;
  };
  const auto a = rows(dir + "/serial.csv"), b = rows(dir + "/par.csv");
  CHECK(a.size() == 5);
  CHECK(a == b);
  grid.learning_rates.push_back(3e-2);  // extend the grid: only the new points run
  CHECK(run_sweep<float>(base, grid, xtr, tr.labels, xte, te.labels, kInfo, dir + "/par.csv", 2,
                         nullptr) == 2);
}

TEST_CASE("sweep: rows of other settings or other data are refused, never reused") {
  // Synthetic data: only the resume check is under test.
  const auto [x, y] = synthetic_digits(32);
  Recipe base = sweep_recipe();
  SweepGrid grid;
  grid.learning_rates = {1e-3};
  const std::string csv = temp_dir("sweep_settings") + "/s.csv";
  REQUIRE(run_sweep<float>(base, grid, x, y, x, y, kInfo, csv, 1, nullptr) == 1);
  const std::string before = slurp(csv);
  Recipe longer = base;
  longer.epochs = 2;
  CHECK_THROWS_WITH_AS(
      run_sweep<float>(longer, grid, x, y, x, y, kInfo, csv, 1, nullptr),
      doctest::Contains("holds rows of other settings (epochs 1 in the file, 2 now)"),
      std::runtime_error);
  Recipe reseeded = base;  // rows of another seed are another experiment
  reseeded.seed = base.seed + 1;
  CHECK_THROWS_WITH_AS(run_sweep<float>(reseeded, grid, x, y, x, y, kInfo, csv, 1, nullptr),
                       doctest::Contains(doctest::String(
                           ("holds rows of other settings (seed " + std::to_string(base.seed) +
                            " in the file, " + std::to_string(base.seed + 1) + " now)")
                               .c_str())),
                       std::runtime_error);
  SweepDataInfo fashion = kInfo;
  fashion.name = "Fashion-MNIST";
  CHECK_THROWS_WITH_AS(run_sweep<float>(base, grid, x, y, x, y, fashion, csv, 1, nullptr),
                       doctest::Contains("(data MNIST in the file, Fashion-MNIST now)"),
                       std::runtime_error);
  CHECK(slurp(csv) == before);  // refused before anything was written
  // The same settings resume: nothing left to run.
  CHECK(run_sweep<float>(base, grid, x, y, x, y, kInfo, csv, 1, nullptr) == 0);
}

TEST_CASE("sweep: a CSV another run is writing is refused before anything is written") {
  const auto [x, y] = synthetic_digits(32);
  Recipe base = sweep_recipe();
  SweepGrid grid;
  grid.learning_rates = {1e-3, 1e-2};
  const std::string csv = temp_dir("sweep_locked") + "/s.csv";
  {
    const xgrad::apps::FileLock other(csv, "test");
    const std::string refusal = "--csv: " + csv + " is being written by another run";
    CHECK_THROWS_WITH_AS(run_sweep<float>(base, grid, x, y, x, y, kInfo, csv, 1, nullptr),
                         doctest::Contains(refusal.c_str()), std::runtime_error);
    CHECK_FALSE(std::filesystem::exists(csv));
  }
  CHECK(run_sweep<float>(base, grid, x, y, x, y, kInfo, csv, 1, nullptr) == 2);
  CHECK_FALSE(std::filesystem::exists(csv + ".lock"));
}

TEST_CASE("recipe validation names the option") {
  Recipe r;
  r.dropout = 1.0;
  CHECK_THROWS_WITH_AS(r.validate(), doctest::Contains("--dropout"), std::invalid_argument);
  r = Recipe{};
  r.penalty = "l3";
  CHECK_THROWS_WITH_AS(r.validate(), doctest::Contains("--penalty"), std::invalid_argument);
  r = Recipe{};
  r.activation = "swish";
  CHECK_THROWS_WITH_AS(r.validate(), doctest::Contains("swish"), std::invalid_argument);
  r = Recipe{};
  r.optimiser = "lbfgs";
  CHECK_THROWS_WITH_AS(r.validate(), doctest::Contains("lbfgs"), std::invalid_argument);
}

TEST_CASE("the recipe line says what trains: gd on the full batch, the penalty with its lambda") {
  Recipe r;
  r.hidden = {32};
  r.optimiser = "gd";
  r.batch_size = 128;
  CHECK(r.describe(784).find("full batch") != std::string::npos);
  CHECK(r.describe(784).find("batch 128") == std::string::npos);
  r.optimiser = "sgd";
  CHECK(r.describe(784).find("batch 128") != std::string::npos);
  r.penalty = "l2";
  r.lambda = 0.5;
  CHECK(r.describe(784).find("l2 lambda 0.5") != std::string::npos);
}

TEST_CASE("sweep: unequal hidden sizes are refused, not trained as layers x the first size") {
  // --layers 64 16 used to train 784-64-64-10 and write "layers 2, nodes 64".
  Recipe base;
  base.hidden = {64, 16};
  CHECK_THROWS_WITH_AS(grid_points(base, SweepGrid{}),
                       doctest::Contains("--layers 64 16 has unequal sizes"),
                       std::invalid_argument);
  SweepGrid grid;
  grid.nodes = {32};
  CHECK_THROWS_AS(grid_points(base, grid), std::invalid_argument);
  // With both axes given, --layers is not used: nothing to refuse.
  grid.layer_counts = {1, 2};
  CHECK(grid_points(base, grid).size() == 2);
  base.hidden = {64, 64};
  const auto points = grid_points(base, SweepGrid{});
  REQUIRE(points.size() == 1);
  CHECK(point_recipe(base, points[0]).hidden == std::vector<std::size_t>{64, 64});
}

TEST_CASE("CLI: bad options are refused with a message naming the option") {
  const std::pair<const char*, const char*> cases[] = {
      {"train --epochs 0", "--epochs"},
      {"train --batch -5", "--batch"},
      {"train --activation swish --epochs 1", "swish"},
      {"train --optimiser lbfgs", "lbfgs"},
      {"train --dataset cifar", "--dataset"},
      {"train --penalty l3", "--penalty"},
      {"train --dropout 2", "--dropout"},
      {"train --no-such-option", "--no-such-option"},
      {"train --schedule exponential:abc", "exponential:abc"},
      {"evaluate --model /nonexistent/m.xgm", "/nonexistent/m.xgm"},
      {"train --dataset mnist --data /nonexistent/mnist", "download_mnist.sh"},
      {"sweep --workers 0", "--workers"},
      // the runge app's names for the same options work here too
      {"train --batch-size -5", "--batch"},
      {"sweep --jobs 0", "--workers"},
  };
  for (const auto& test : cases) {
    const auto& [args, expected] = test;
    CAPTURE(test.first);  // not the binding: clang refuses a lambda capture of one in C++17
    const auto [status, output] = run(args);
    CHECK(status != 0);
    CHECK(output.find(expected) != std::string::npos);
    CHECK(output.find("[MNIST] epoch") == std::string::npos);  // refused before training
  }
  const auto [status, help] = run("train --help");
  CHECK(status == 0);
  for (const char* option : {"--layers", "--activation", "--optimiser", "--schedule", "--penalty",
                             "--lambda", "--dropout", "--batch", "--epochs", "--dtype", "--threads",
                             "--seed", "--dataset", "--data", "--protocol", "--logistic"})
    CHECK(help.find(option) != std::string::npos);
}

TEST_CASE("CLI: train, evaluate and predict a tiny model end to end") {
  require_mnist();
  const std::string dir = temp_dir("cli");
  const std::string data = std::string("--data ") + XGRAD_MNIST_DIR;
  auto [status, out] = run("train " + data + " --layers 32 --epochs 1 --train-limit 3000 " +
                           "--test-limit 1000 --quiet --out " + dir);
  CHECK(status == 0);
  CHECK(out.find("[MNIST] test accuracy") != std::string::npos);
  for (const char* f : {"history.csv", "confusion_counts.csv", "confusion_percent.csv",
                        "confused_pairs.csv", "misclassified.csv", "model.xgm"})
    CHECK(fs::exists(dir + "/" + f));
  const std::string acc = out.substr(out.find("test accuracy") + 14, 6);
  std::tie(status, out) =
      run("evaluate " + data + " --test-limit 1000 --model " + dir + "/model.xgm");
  CHECK(status == 0);
  CHECK(out.find("test accuracy " + acc) != std::string::npos);  // same accuracy after load
  std::tie(status, out) = run("predict " + data + " --model " + dir + "/model.xgm --index 0");
  CHECK(status == 0);
  CHECK(out.find("test image 0: predicted") != std::string::npos);
  CHECK(out.find("true 7") != std::string::npos);
  // The same digit drawn dark on light in a PGM file: inverted back, same answer.
  const std::string predicted = out.substr(out.find("predicted ") + 10, 1);
  {
    std::ofstream f(dir + "/seven.pgm", std::ios::binary);
    f << "P5\n28 28\n255\n";
    for (std::size_t k = 0; k < 784; ++k)
      f.put(char(255 - mnist().test.images.pixels[k]));
  }
  std::tie(status, out) =
      run("predict --model " + dir + "/model.xgm --image " + dir + "/seven.pgm");
  CHECK(status == 0);
  CHECK(out.find("inverted): predicted " + predicted) != std::string::npos);
  std::tie(status, out) = run("predict --model " + dir + "/model.xgm --index 10000 " + data);
  CHECK(status != 0);
  CHECK(out.find("--index") != std::string::npos);
}

TEST_CASE("CLI: --lambda alone is an l2 penalty, as in the reports, and changes the model") {
  // It used to be ignored without --penalty: the model file was byte-identical.
  require_mnist();
  const std::string dir = temp_dir("lambda_alone");
  const std::string common = std::string("train --data ") + XGRAD_MNIST_DIR +
                             " --layers 8 --epochs 1 --train-limit 500 --test-limit 100 --quiet ";
  auto [status, out] = run(common + "--lambda 0.5 --out " + dir + "/with");
  CHECK(status == 0);
  CHECK(out.find(", l2 lambda 0.5,") != std::string::npos);
  std::tie(status, out) = run(common + "--out " + dir + "/without");
  CHECK(status == 0);
  CHECK(out.find(" lambda ") == std::string::npos);
  const auto bytes = [](const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  CHECK(bytes(dir + "/with/model.xgm") != bytes(dir + "/without/model.xgm"));
}

TEST_CASE("CLI: usage errors exit 2 (CLI11's own too), --help 0, count options range-checked") {
  const std::pair<const char*, const char*> usage[] = {
      {"train --no-such-option", "--no-such-option"},
      {"train --epochs 0", "--epochs"},
      {"train --train-limit -1", "--train-limit"},
      {"train --test-limit -5", "--test-limit"},
      {"train --misclassified -1", "--misclassified"},
      {"train --seed -1", "--seed"},
      {"train --split-seed -2", "--split-seed"},
      {"train --layers -3", "--layers"},
      {"train --epochs abc", "--epochs"},
      {"predict --model m.xgm --index -1", "--index"},
      {"sweep --layer-counts -1", "--layer-counts"},
      {"sweep --workers 0", "--workers"},
      {"train --dataset cifar", "--dataset"},
      // What is wrong, not a neighbouring complaint.
      {"train --epochs abc", "Failed parsing abc"},
      {"train --epochs 2.5", "Failed parsing 2.5"},
      {"train --lambda inf", "--lambda inf must be a finite number >= 0"},
      {"train --lambda -1", "--lambda: must not be negative, got -1"},
      {"train --layers", "--layers"},
      // Settings that contradict each other, or one that would be ignored without a word.
      {"train --logistic --layers 64", "excludes"},
      {"train --penalty none --lambda 0.5", "--lambda 0.5 has no effect with --penalty none"},
      {"sweep --penalty none --lambdas 0 1e-3", "0.001 has no effect with --penalty none"},
      {"sweep --lambda 1e-3 --lambdas 0", "--lambdas replaces --lambda"},
      {"sweep --layers 8 16 --layer-counts 1 --node-counts 4", "--layers is not used"},
      {"sweep --penalty none --lambda 1e-3", "--lambda 0.001 has no effect"},
      {"train --penalty l1", "--penalty l1 has no effect without a --lambda > 0"},
      {"sweep --penalty l2 --lambdas 0", "--penalty l2 has no effect"},
      // A named folder without the data is a usage error whichever option named it.
      {"train --dataset mnist --data /nonexistent/mnist", "download_mnist.sh"},
      {"train --dataset fashion-mnist --fashion-dir /nonexistent/f", "--fashion-dir"},
  };
  for (const auto& test : usage) {
    const auto& [args, expected] = test;
    CAPTURE(test.first);  // not the binding: clang refuses a lambda capture of one in C++17
    const auto [status, output] = run(args);
    CHECK(status == 2);
    CHECK(output.find(expected) != std::string::npos);
  }
  CHECK(run("--help").first == 0);
  CHECK(run("sweep --help").first == 0);
}

TEST_CASE("CLI: the recipe is checked before the data is loaded, naming the option") {
  // /nonexistent holds no data: the recipe error must come first.
  const std::pair<const char*, const char*> cases[] = {
      {"train --activation foo", "--activation: unknown activation \"foo\""},
      {"train --optimiser lbfgs", "--optimiser: "},
      {"train --init bogus", "--init: "},
      {"train --schedule exponential:abc", "--schedule: "},
      {"train --lr -1", "--lr"},
      {"sweep --activation foo", "--activation: unknown activation"},
      {"sweep --lrs 0", "--lrs: 0 is not a learning rate"},
  };
  for (const auto& test : cases) {
    const auto& [args, expected] = test;
    CAPTURE(test.first);  // not the binding: clang refuses a lambda capture of one in C++17
    const auto [status, output] =
        run(std::string(args) + " --dataset mnist --data /nonexistent/mnist");
    CHECK(status == 2);
    CHECK(output.find(expected) != std::string::npos);
    CHECK(output.find("/nonexistent/mnist") == std::string::npos);  // data not touched
  }
}

TEST_CASE("CLI: --data without MNIST is refused, only the default folder falls back") {
  const std::string dir = temp_dir("fallback");
  // An explicit --data (a typo) with --dataset auto: refused, naming path and script.
  auto [status, out] =
      run("train --data " + dir + "/typo --fashion-dir " + dir + "/fashion --epochs 1");
  CHECK(status == 2);
  CHECK(out.find("'" + dir + "/typo'") != std::string::npos);
  CHECK(out.find("download_mnist.sh") != std::string::npos);
  CHECK(out.find("Fashion-MNIST from") == std::string::npos);
  // $XGRAD_MNIST_DIR names a folder too.
  std::tie(status, out) = run("train --fashion-dir " + dir + "/fashion --epochs 1", "2>&1",
                              "XGRAD_MNIST_DIR=" + dir + "/typo2");
  CHECK(status == 2);
  CHECK(out.find(dir + "/typo2") != std::string::npos);
  // No --data and no data/mnist under the working directory: the fallback, announced
  // on stderr (here Fashion-MNIST is missing too, so the run then stops).
  std::tie(status, out) = run("train --fashion-dir " + dir + "/fashion --epochs 1",
                              "2>&1 >/dev/null", "cd " + dir + " && env -u XGRAD_MNIST_DIR");
  CHECK(status != 0);
  CHECK(out.find("[Fashion-MNIST] MNIST is not in 'data/mnist'") != std::string::npos);
  CHECK(out.find("[Fashion-MNIST] Training on Fashion-MNIST from " + dir + "/fashion") !=
        std::string::npos);
}

namespace {
// Restores the file-size limit (and SIGXFSZ) of this process on scope exit.
struct FileSizeLimit {
  rlimit saved{};
  void (*saved_handler)(int) = nullptr;
  explicit FileSizeLimit(rlim_t bytes) {
    getrlimit(RLIMIT_FSIZE, &saved);
    saved_handler = std::signal(SIGXFSZ, SIG_IGN);  // a write past it fails with EFBIG
    rlimit r = saved;
    r.rlim_cur = bytes;
    setrlimit(RLIMIT_FSIZE, &r);
  }
  ~FileSizeLimit() {
    setrlimit(RLIMIT_FSIZE, &saved);
    std::signal(SIGXFSZ, saved_handler);
  }
};
}  // namespace

TEST_CASE("sweep: an I/O error stops the sweep with its message, BLAS threads are restored") {
  // Synthetic data: the error path needs no MNIST.
  const auto [x, y] = synthetic_digits(64);
  Recipe base = sweep_recipe();
  SweepGrid grid;
  grid.learning_rates = {1e-3, 2e-3};
  const std::string dir = temp_dir("sweep_io");
  const int before = xgrad::threads();
  xgrad::set_threads(2);
  // A working sweep runs on 1 BLAS thread and restores the count.
  CHECK(run_sweep<float>(base, grid, x, y, x, y, kInfo, dir + "/ok.csv", 1, nullptr) == 2);
  CHECK(xgrad::threads() == 2);
  // The header fits under the file-size limit, no row does: the first row's write
  // fails, which must stop the sweep (not be recorded as a diverged point).
  const std::string csv = dir + "/full.csv";
  {
    std::ifstream ok(dir + "/ok.csv");
    std::string header;
    std::getline(ok, header);
    std::ofstream(csv) << header << "\n";
  }
  {
    const FileSizeLimit limit(fs::file_size(csv) + 4);
    CHECK_THROWS_WITH_AS(run_sweep<float>(base, grid, x, y, x, y, kInfo, csv, 2, nullptr),
                         doctest::Contains("full.csv: cannot write"), std::runtime_error);
  }
  CHECK(xgrad::threads() == 2);  // restored on the exception too
  xgrad::set_threads(before);
}

TEST_CASE("sweep: a diverged point is a row of NaNs and the sweep goes on") {
  const auto [x, y] = synthetic_digits(64);
  Recipe base = sweep_recipe();
  base.optimiser = "sgd";
  base.batch_size = 8;  // 8 steps: the second sees the overflowed weights
  SweepGrid grid;
  grid.learning_rates = {1e-3, 1e30};  // the second overflows at once
  const std::string dir = temp_dir("sweep_nan");
  std::vector<std::string> lines;
  CHECK(run_sweep<float>(base, grid, x, y, x, y, kInfo, dir + "/s.csv", 1,
                         [&](const std::string& l) { lines.push_back(l); }) == 2);
  const std::string csv = slurp(dir + "/s.csv");
  CHECK(csv.find(",nan,nan,nan,") != std::string::npos);
  bool logged = false;
  for (const auto& l : lines)
    logged = logged || l.find("training diverged") != std::string::npos;
  CHECK(logged);
  // One full-batch step at lr 1e30 leaves huge but finite weights whose outputs are NaN:
  // the epoch's evaluation meets them before the trainer's checks, which at the last
  // epoch never see them. Both are a diverged point, not an exception nor a "done" row.
  base.batch_size = 64;
  grid.learning_rates = {1e30};
  for (const std::size_t epochs : {std::size_t{1}, std::size_t{2}}) {
    CAPTURE(epochs);
    base.epochs = epochs;
    const std::string out = dir + "/full" + std::to_string(epochs) + ".csv";
    lines.clear();
    CHECK(run_sweep<float>(base, grid, x, y, x, y, kInfo, out, 1,
                           [&](const std::string& l) { lines.push_back(l); }) == 1);
    CHECK(slurp(out).find("1e+30,0,") != std::string::npos);
    CHECK(slurp(out).find(",nan,nan,nan,") != std::string::npos);
    bool diverged = false;
    for (const auto& l : lines)
      diverged = diverged || l.find("outputs are NaN after epoch 1") != std::string::npos;
    CHECK(diverged);
  }
}

TEST_CASE(
    "sweep: a row's test accuracy, test loss and batch loss are those of training its recipe") {
  const auto [x, y] = synthetic_digits(64);
  Recipe base = quick_recipe();
  base.epochs = 2;
  base.hidden = {8};
  SweepGrid grid;
  grid.learning_rates = {1e-3, 1e-2};
  const std::string csv = temp_dir("sweep_values") + "/s.csv";
  REQUIRE(run_sweep<float>(base, grid, x, y, x, y, kInfo, csv, 1, nullptr) == 2);
  const auto rows = csv_rows(csv);
  REQUIRE(rows.size() == 2);
  // Training is deterministic for a recipe and a thread count: each row's point
  // trained again here must give the very numbers the row printed.
  const OneThread one;
  for (const auto& row : rows) {
    CAPTURE(row.at("learning_rate"));
    const SweepPoint p{std::stod(row.at("learning_rate")), std::stod(row.at("lambda")),
                       std::stoul(row.at("layers")), std::stoul(row.at("nodes"))};
    std::vector<EpochRecord> history;
    const auto net = train<float>(point_recipe(base, p), x, y, x, y, {}, &history);
    const Evaluation e = evaluate(net, x, y);
    const double accuracy = std::stod(row.at("test_accuracy"));
    CHECK(accuracy >= 0);
    CHECK(accuracy <= 1);
    CHECK(row.at("test_accuracy") == g6(e.accuracy));
    CHECK(row.at("test_loss") == g6(e.loss));
    CHECK(row.at("train_batch_loss") == g6(history.back().batch_loss));
  }
}

TEST_CASE("CLI: --validation scores held-out training images and never the test set") {
  require_mnist();
  const std::string dir = temp_dir("cli_validation");
  const auto [status, out] = run(std::string("train --data ") + XGRAD_MNIST_DIR +
                                 " --layers 16 --epochs 1 --validation 500 --train-limit 2000 "
                                 "--quiet --out " +
                                 dir);
  REQUIRE(status == 0);
  CHECK(out.find("[MNIST (validation: 500 held-out training images)] 2000 training and 500 "
                 "validation images") != std::string::npos);
  CHECK(out.find("validation accuracy") != std::string::npos);
  CHECK(out.find("test accuracy") == std::string::npos);
  const auto rows = csv_rows(dir + "/history.csv");
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].count("validation_accuracy") == 1);
  CHECK(rows[0].count("test_accuracy") == 0);
  // The scores are the saved model's on the held-out images, not on the test set.
  const OneThread one;
  const TrainTest v = validation_split(mnist(), 500, 42);
  const Evaluation on_val = evaluate(load_model<float>(dir + "/model.xgm"),
                                     to_matrix<float>(v.test.images), v.test.labels);
  CHECK(rows[0].at("validation_accuracy") == streamed(on_val.accuracy));
  const auto [bad, msg] = run(std::string("train --data ") + XGRAD_MNIST_DIR +
                              " --validation 60000 --epochs 1 --quiet --out " + dir);
  CHECK(bad != 0);
  CHECK(msg.find("--validation: 60000 held-out images of 60000 training images") !=
        std::string::npos);
}

TEST_CASE("CLI: train's history.csv holds each epoch's rate and the scores of the saved model") {
  require_mnist();
  const std::string dir = temp_dir("cli_history");
  const auto [status, out] = run(std::string("train --data ") + XGRAD_MNIST_DIR +
                                 " --layers 16 --epochs 2 --train-limit 1000 --test-limit 300 "
                                 "--quiet --out " +
                                 dir);
  REQUIRE(status == 0);
  const auto rows = csv_rows(dir + "/history.csv");
  REQUIRE(rows.size() == 2);
  CHECK(rows[0].at("epoch") == "1");
  CHECK(rows[1].at("epoch") == "2");
  // The default rate 1e-3 decays by 0.9 each epoch.
  CHECK(rows[0].at("learning_rate") == streamed(1e-3));
  CHECK(rows[1].at("learning_rate") == streamed(1e-3 * 0.9));
  // The last epoch's scores are the saved model's on the same images (the first 1,000
  // training and 300 test digits), as the stream printed them (6 significant digits).
  const OneThread one;
  const auto net = load_model<float>(dir + "/model.xgm");
  const LabelledSet tr = head(mnist().train, 1000);
  const LabelledSet te = head(mnist().test, 300);
  const Evaluation on_train = evaluate(net, to_matrix<float>(tr.images), tr.labels);
  const Evaluation on_test = evaluate(net, to_matrix<float>(te.images), te.labels);
  const auto& last = rows.back();
  CHECK(last.at("train_loss") == streamed(on_train.loss));
  CHECK(last.at("train_accuracy") == streamed(on_train.accuracy));
  CHECK(last.at("test_loss") == streamed(on_test.loss));
  CHECK(last.at("test_accuracy") == streamed(on_test.accuracy));
}

TEST_CASE(
    "CLI: evaluate's confusion, confused-pair and misclassified CSVs are the model's errors") {
  require_mnist();
  const std::string dir = temp_dir("cli_evaluate_values");
  const std::string data = std::string("--data ") + XGRAD_MNIST_DIR;
  REQUIRE(run("train " + data + " --layers 16 --epochs 1 --train-limit 1000 --test-limit 10 " +
              "--quiet --out " + dir + "/m")
              .first == 0);
  REQUIRE(run("evaluate " + data + " --test-limit 1000 --model " + dir + "/m/model.xgm --out " +
              dir + "/e")
              .first == 0);
  // The model's answers on the same 1,000 test digits.
  const OneThread one;
  const auto net = load_model<float>(dir + "/m/model.xgm");
  const LabelledSet te = head(mnist().test, 1000);
  const Evaluation e = evaluate(net, to_matrix<float>(te.images), te.labels);
  // Counted here from the predictions: [true][predicted].
  std::array<std::array<std::size_t, 10>, 10> count{};
  std::array<std::size_t, 10> of_digit{};
  for (std::size_t i = 0; i < te.size(); ++i) {
    ++count[te.labels[i]][e.predicted[i]];
    ++of_digit[te.labels[i]];
  }
  {
    std::ifstream in(dir + "/e/confusion_counts.csv");
    std::ifstream pct(dir + "/e/confusion_percent.csv");
    std::string line, pline;
    REQUIRE(std::getline(in, line));
    REQUIRE(std::getline(pct, pline));
    CHECK(line == "true\\predicted,0,1,2,3,4,5,6,7,8,9");
    CHECK(pline == line);
    for (std::size_t t = 0; t < 10; ++t) {
      CAPTURE(t);
      REQUIRE(std::getline(in, line));
      REQUIRE(std::getline(pct, pline));
      const auto f = fields(line), p = fields(pline);
      REQUIRE(f.size() == 11);
      REQUIRE(p.size() == 11);
      CHECK(f[0] == std::to_string(t));
      CHECK(p[0] == std::to_string(t));
      for (std::size_t k = 0; k < 10; ++k) {
        CAPTURE(k);
        CHECK(f[k + 1] == std::to_string(count[t][k]));
        // %.3f: within half a unit of the third decimal.
        const double percent = 100.0 * double(count[t][k]) / double(of_digit[t]);
        CHECK(std::fabs(std::stod(p[k + 1]) - percent) <= 0.0005 + 1e-12);
      }
    }
  }
  const auto pairs = csv_rows(dir + "/e/confused_pairs.csv");
  CHECK(pairs.size() == 5);
  double previous = 100;
  for (const auto& row : pairs) {
    const std::size_t t = std::stoul(row.at("true")), k = std::stoul(row.at("predicted"));
    CAPTURE(t);
    CAPTURE(k);
    CHECK(t != k);
    CHECK(row.at("count") == std::to_string(count[t][k]));
    const double percent = 100.0 * double(count[t][k]) / double(of_digit[t]);
    CHECK(row.at("percent_of_true") == streamed(percent));
    CHECK(percent <= previous);  // by decreasing share of the true digit
    previous = percent;
  }
  // The first 100 misclassified digits in order, with their labels and pixels.
  const auto wrong = csv_rows(dir + "/e/misclassified.csv");
  std::size_t i = 0, n = 0;
  for (; i < te.size() && n < wrong.size(); ++i) {
    if (e.predicted[i] == te.labels[i]) continue;
    const auto& row = wrong[n++];
    CAPTURE(i);
    CHECK(row.at("index") == std::to_string(i));
    CHECK(row.at("true") == std::to_string(int(te.labels[i])));
    CHECK(row.at("predicted") == std::to_string(int(e.predicted[i])));
    CHECK(row.at("confidence") == streamed(e.confidence[i]));
    std::string pixels;
    for (std::size_t q = 0; q < 784; ++q)
      pixels += (q ? " " : "") + std::to_string(int(te.images.pixels[i * 784 + q]));
    CHECK(row.at("pixels") == pixels);
  }
  CHECK(n == 100);
}

TEST_CASE("sweep: a row cut by an interruption is dropped, and the resume appends whole rows") {
  const auto [x, y] = synthetic_digits(32);
  const Recipe base = sweep_recipe();
  SweepGrid one;
  one.learning_rates = {1e-3};
  const std::string csv = temp_dir("sweep_cut") + "/s.csv";
  REQUIRE(run_sweep<float>(base, one, x, y, x, y, kInfo, csv, 1, nullptr) == 1);
  {
    std::ofstream app(csv, std::ios::app);
    app << "0.01,0,1,8,";  // a kill in the middle of writing the next row
  }
  SweepGrid two;
  two.learning_rates = {1e-3, 1e-2};
  CHECK(run_sweep<float>(base, two, x, y, x, y, kInfo, csv, 1, nullptr) == 1);
  std::ifstream in(csv);
  std::size_t rows = 0;
  for (std::string line; std::getline(in, line); ++rows)
    CHECK(xgrad::apps::split_commas(line).size() == 24);
  CHECK(rows == 3);  // header and two whole rows
  CHECK(run_sweep<float>(base, two, x, y, x, y, kInfo, csv, 1, nullptr) == 0);
}

namespace {

void put_be32(std::ofstream& f, std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8)
    f.put(char((v >> shift) & 0xff));
}

/// A data-set folder as load_dir reads it (raw IDX): n_train and n_test 28x28 images of
/// deterministic pixels (0..254, so a misclassified.csv row is ~2.7 KB) and labels 0..9.
/// For the CLI tests that need data but not real digits (passed as --fashion-dir).
std::string write_idx_set(const std::string& dir, std::size_t n_train, std::size_t n_test) {
  fs::create_directories(dir);
  const auto write = [&dir](const std::string& stem, std::size_t n) {
    std::ofstream images(dir + "/" + stem + "-images-idx3-ubyte", std::ios::binary);
    put_be32(images, 0x00000803);
    put_be32(images, std::uint32_t(n));
    put_be32(images, 28);
    put_be32(images, 28);
    for (std::size_t i = 0; i < n * 784; ++i)
      images.put(char((i * 37) % 255));
    std::ofstream labels(dir + "/" + stem + "-labels-idx1-ubyte", std::ios::binary);
    put_be32(labels, 0x00000801);
    put_be32(labels, std::uint32_t(n));
    for (std::size_t i = 0; i < n; ++i)
      labels.put(char(i % 10));
  };
  write("train", n_train);
  write("t10k", n_test);
  return dir;
}

/// A 784-8-10 softmax model (one epoch on synthetic digits) saved as dir/model.xgm, with
/// a run.txt next to it naming `data_set` as `mnist train` writes it, unless empty.
std::string write_model(const std::string& dir, const std::string& data_set) {
  fs::create_directories(dir);
  const auto digits = synthetic_digits(32);
  const auto net =
      train<float>(sweep_recipe(), digits.first, digits.second, digits.first, digits.second, {});
  save_model(net, dir + "/model.xgm");
  if (!data_set.empty())
    std::ofstream(dir + "/run.txt") << "data set: " << data_set << "\nrecipe: (test)\n";
  return dir + "/model.xgm";
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("recipe: the learning rate has one value, which the recipe line prints") {
  // An optimiser text's lr= used to train while the line said "lr 0.001".
  Recipe r;
  r.optimiser = "adam:lr=0.1";
  CHECK_THROWS_WITH_AS(r.validate(),
                       doctest::Contains("--optimiser 'adam:lr=0.1' sets lr 0.1 but --lr is 0.001"),
                       std::invalid_argument);
  r.learning_rate = 0.1;
  CHECK_NOTHROW(r.validate());
  CHECK(contains(r.describe(), "lr 0.1 x 0.9^epoch"));
  CHECK(optimiser_learning_rate("adam:lr=0.1").value() == 0.1);
  CHECK(optimiser_learning_rate("momentum:eta=0.5,momentum=0.9").value() == 0.5);
  CHECK_FALSE(optimiser_learning_rate("adam:beta1=0.8").has_value());
  // A schedule replaces --lr: its first rate is the recipe's.
  r = Recipe{};
  r.schedule = "constant:0.01";
  CHECK_THROWS_WITH_AS(r.validate(),
                       doctest::Contains("--schedule 'constant:0.01' starts at rate 0.01 but --lr "
                                         "is 0.001"),
                       std::invalid_argument);
  r.learning_rate = 0.01;
  CHECK_NOTHROW(r.validate());
  CHECK(schedule_first_rate("exponential:0.05,0.5") == 0.05);
  CHECK(schedule_first_rate("inverse_time:2,4") == 0.5);
  // A first rate that overflows is the schedule's fault, not --lr's (not given).
  Recipe huge;
  huge.schedule = "inverse_time:1e300,1e-10";
  huge.learning_rate = schedule_first_rate(huge.schedule);
  CHECK_THROWS_WITH_AS(huge.validate(),
                       "--schedule 'inverse_time:1e300,1e-10' starts at rate inf, not a finite "
                       "rate > 0",
                       std::invalid_argument);
  // The schedule's own first rate is named, whatever learning_rate holds (a library caller).
  huge.learning_rate = 0;
  CHECK_THROWS_WITH_AS(huge.validate(),
                       "--schedule 'inverse_time:1e300,1e-10' starts at rate inf, not a finite "
                       "rate > 0",
                       std::invalid_argument);
  // Both an lr= and a schedule: the schedule would replace the lr=.
  r.optimiser = "adam:lr=0.01";
  CHECK_THROWS_WITH_AS(r.validate(), doctest::Contains("sets lr= and --schedule"),
                       std::invalid_argument);
  // A sweep's grid rate under an optimiser lr= would train at the lr= under another label.
  Recipe base;
  base.optimiser = "adam:lr=0.01";
  base.learning_rate = 0.01;
  SweepGrid grid;
  grid.learning_rates = {0.001, 0.01};
  const auto points = grid_points(base, grid);
  REQUIRE(points.size() == 2);
  CHECK_THROWS_AS(point_recipe(base, points[0]).validate(), std::invalid_argument);
  CHECK_NOTHROW(point_recipe(base, points[1]).validate());
}

TEST_CASE("CLI: two sources of the learning rate are refused naming both, before the data") {
  const std::pair<const char*, const char*> cases[] = {
      {"train --optimiser adam:lr=0.1 --lr 0.5", "--optimiser 'adam:lr=0.1' and --lr"},
      {"train --optimiser adam:lr=0.1 --schedule constant:0.1",
       "--optimiser 'adam:lr=0.1' sets lr= and --schedule 'constant:0.1'"},
      {"train --schedule constant:0.01 --lr 0.5", "--schedule 'constant:0.01' and --lr:"},
      {"train --schedule constant:0.01 --lr-decay 1", "--schedule 'constant:0.01' and --lr-decay"},
      {"sweep --lrs 0.001 0.1 --optimiser adam:lr=0.01",
       "--optimiser 'adam:lr=0.01' sets the learning rate and --lrs"},
      {"sweep --lrs 0.001 0.1 --schedule constant:0.01", "--schedule 'constant:0.01' and --lrs"},
      {"sweep --lr 0.5 --lrs 0.001 0.1", "--lr and --lrs: give one"},
  };
  for (const auto& test : cases) {
    CAPTURE(test.first);
    const auto [status, output] =
        run(std::string(test.first) + " --dataset mnist --data /nonexistent/mnist");
    CHECK(status == 2);
    CHECK(contains(output, test.second));
    CHECK_FALSE(contains(output, "/nonexistent/mnist"));  // data not touched
  }
}

TEST_CASE("CLI: the rate of an optimiser's lr= or a schedule is the one printed and recorded") {
  const std::string dir = temp_dir("cli_one_rate");
  const std::string data =
      "--dataset fashion-mnist --fashion-dir " + write_idx_set(dir + "/data", 64, 16);
  const std::string tiny = " --layers 4 --epochs 1 --batch 16 ";
  auto [status, out] =
      run("train " + data + tiny + "--optimiser adam:lr=0.01 --quiet --out " + dir + "/t");
  REQUIRE(status == 0);
  CHECK(contains(out, "recipe: 784-4-10 relu, adam:lr=0.01 lr 0.01 x 0.9^epoch,"));
  CHECK(contains(slurp(dir + "/t/run.txt"), "adam:lr=0.01 lr 0.01 x 0.9^epoch"));
  CHECK(csv_rows(dir + "/t/history.csv").at(0).at("learning_rate") == "0.01");  // what trained
  // A sweep's learning_rate column: the lr= and the schedule's rate, not --lr's default.
  std::tie(status, out) =
      run("sweep " + data + tiny + "--optimiser adam:lr=0.01 --csv " + dir + "/lr.csv");
  REQUIRE(status == 0);
  CHECK(csv_rows(dir + "/lr.csv").at(0).at("learning_rate") == "0.01");
  std::tie(status, out) =
      run("sweep " + data + tiny + "--schedule constant:0.02 --csv " + dir + "/schedule.csv");
  REQUIRE(status == 0);
  const auto rows = csv_rows(dir + "/schedule.csv");
  CHECK(rows.at(0).at("learning_rate") == "0.02");
  CHECK(rows.at(0).at("schedule") == "constant:0.02");
}

TEST_CASE("CLI: an --out that cannot take the results is refused before the data is loaded") {
  const std::string dir = temp_dir("cli_out");
  std::ofstream(dir + "/file") << "a file, not a folder\n";
  const std::string model = write_model(dir + "/m", "MNIST");
  const std::string no_data = " --dataset mnist --data /nonexistent/mnist";
  const std::string cases[] = {
      "train" + no_data + " --out " + dir + "/file/sub",
      "train" + no_data + " --out " + dir + "/file",
      "evaluate" + no_data + " --model " + model + " --out " + dir + "/file/sub",
  };
  for (const std::string& args : cases) {
    CAPTURE(args);
    const auto [status, output] = run(args);
    CHECK(status == 2);
    CHECK(contains(output, "--out: "));
    CHECK(contains(output, "'" + dir + "/file"));
    CHECK_FALSE(contains(output, "/nonexistent/mnist"));  // before the data
  }
  // A run refused for its data leaves no folder behind: --out is checked first, made
  // only once the data is loaded.
  for (const std::string& command :
       {"train" + no_data, "evaluate" + no_data + " --model " + model}) {
    CAPTURE(command);
    const auto [status, output] = run(command + " --out " + dir + "/new/deeper");
    CHECK(status == 2);
    CHECK(contains(output, "/nonexistent/mnist"));
    CHECK_FALSE(fs::exists(dir + "/new"));
  }
  // A sweep's --csv in a folder that does not exist: refused before the data too.
  const auto [status, output] = run("sweep" + no_data + " --csv " + dir + "/nowhere/s.csv");
  CHECK(status == 2);
  CHECK(contains(
      output, "--csv: " + dir + "/nowhere/s.csv: the folder " + dir + "/nowhere does not exist"));
}

TEST_CASE("CLI: a CSV that cannot be written is an error naming the file, not exit 0") {
  // A file-size limit (SIGXFSZ ignored, so writes fail with EFBIG) below the size of
  // misclassified.csv: evaluate used to exit 0 with the file cut short.
  const std::string dir = temp_dir("cli_write_error");
  const std::string fashion = write_idx_set(dir + "/data", 16, 40);
  const std::string model = write_model(dir + "/m", "Fashion-MNIST");
  // The files of an earlier evaluation stay as they were: all are written as .tmp and
  // renamed only once every write succeeded (the confusion CSVs were replaced before).
  fs::create_directories(dir + "/e");
  std::ofstream(dir + "/e/confusion_counts.csv") << "earlier\n";
  const auto [status, output] = run("evaluate --dataset fashion-mnist --fashion-dir " + fashion +
                                        " --model " + model + " --out " + dir + "/e",
                                    "2>&1", "trap '' XFSZ; ulimit -f 16;");
  CHECK(status == 1);
  CHECK(contains(output, dir + "/e/misclassified.csv.tmp: cannot write"));
  std::ifstream earlier(dir + "/e/confusion_counts.csv");
  std::string first;
  std::getline(earlier, first);
  CHECK(first == "earlier");
  for (const auto& entry : fs::directory_iterator(dir + "/e"))
    CHECK(entry.path().extension() != ".tmp");
}

TEST_CASE("CLI: evaluate and predict score a model on its own data set, never switching") {
  const std::string dir = temp_dir("cli_model_data");
  const std::string fashion = " --fashion-dir " + write_idx_set(dir + "/fashion", 16, 20);
  const std::string mnist_model = write_model(dir + "/mnist_run", "MNIST");
  const std::string bare_model = write_model(dir + "/bare", "");
  const std::string fashion_model = write_model(dir + "/fashion_run", "Fashion-MNIST pooled 80/20");
  // No data/mnist under the working directory, no $XGRAD_MNIST_DIR: the case where train
  // falls back to Fashion-MNIST.
  const std::string here = "cd " + dir + " && env -u XGRAD_MNIST_DIR";
  // A model trained on MNIST needs MNIST: refused, naming run.txt and the download script.
  for (const std::string& command : {std::string("evaluate"), std::string("predict --index 0")}) {
    CAPTURE(command);
    const auto [status, output] = run(command + " --model " + mnist_model + fashion, "2>&1", here);
    CHECK(status == 2);
    CHECK(contains(output, "run.txt says the model was trained on MNIST"));
    CHECK(contains(output, "download_mnist.sh"));
    CHECK_FALSE(contains(output, "Training"));
    CHECK_FALSE(contains(output, "accuracy"));
  }
  CHECK_FALSE(fs::exists(dir + "/mnist_run/confusion_counts.csv"));  // the run's CSVs are kept
  // A model without run.txt: no guess either; --dataset is the way.
  auto [status, output] = run("evaluate --model " + bare_model + fashion, "2>&1", here);
  CHECK(status == 2);
  CHECK(contains(output, "no run.txt"));
  CHECK(contains(output, "--dataset fashion-mnist"));
  CHECK_FALSE(fs::exists(dir + "/bare/confusion_counts.csv"));
  // A Fashion-MNIST model is scored on Fashion-MNIST, in evaluate's words.
  std::tie(status, output) = run("evaluate --model " + fashion_model + fashion, "2>&1", here);
  CHECK(status == 0);
  CHECK(contains(output, "[Fashion-MNIST] " + fashion_model + ": test accuracy"));
  CHECK_FALSE(contains(output, "Training"));
  CHECK(fs::exists(dir + "/fashion_run/confusion_counts.csv"));
  std::tie(status, output) =
      run("predict --index 3 --model " + fashion_model + fashion, "2>&1", here);
  CHECK(status == 0);
  CHECK(contains(output, "[Fashion-MNIST] test image 3: predicted"));
  // ... and --data, which names an MNIST folder, contradicts its run.txt.
  std::tie(status, output) =
      run("evaluate --data " + dir + "/fashion --model " + fashion_model + fashion, "2>&1", here);
  CHECK(status == 2);
  CHECK(contains(output, "--data names an MNIST folder"));
  CHECK(contains(output, "or --dataset fashion-mnist --fashion-dir DIR"));
  // A missing MNIST folder is named by the option that gave it: $XGRAD_MNIST_DIR here.
  std::tie(status, output) = run("evaluate --model " + mnist_model, "2>&1",
                                 "cd " + dir + " && XGRAD_MNIST_DIR=" + dir + "/envdir");
  CHECK(status == 2);
  CHECK(contains(output, "$XGRAD_MNIST_DIR: MNIST is not in '" + dir + "/envdir'"));
  // An explicit --dataset is followed, with a note of what run.txt says.
  std::tie(status, output) =
      run("evaluate --dataset fashion-mnist --out " + dir + "/e --model " + mnist_model + fashion,
          "2>&1", here);
  CHECK(status == 0);
  CHECK(contains(output, "says the model was trained on MNIST; scoring it on Fashion-MNIST"));
  // The folder a run trained on (run.txt's "data folder:") is where evaluate and predict
  // look by default; --data or $XGRAD_MNIST_DIR still name another.
  const std::string mnist_dir = write_idx_set(dir + "/elsewhere/mnist", 16, 20);
  const std::string from_folder = write_model(dir + "/folder_run", "");
  std::ofstream(dir + "/folder_run/run.txt")
      << "data set: MNIST\ndata folder: " << mnist_dir << "\nrecipe: (test)\n";
  std::tie(status, output) = run("evaluate --model " + from_folder, "2>&1", here);
  CHECK(status == 0);
  CHECK(contains(output, "[MNIST] " + from_folder + ": test accuracy"));
  std::tie(status, output) =
      run("evaluate --data " + dir + "/nowhere --model " + from_folder, "2>&1", here);
  CHECK(status == 2);
  CHECK(contains(output, "--data: MNIST is not in '" + dir + "/nowhere'"));
  // --dataset naming the same set takes run.txt's folder too (it looked in data/mnist).
  std::tie(status, output) = run("evaluate --dataset mnist --model " + from_folder, "2>&1", here);
  CHECK(status == 0);
  // A model trained on a pooled split, scored on the standard test set: said.
  std::ofstream(dir + "/folder_run/run.txt")
      << "data set: MNIST pooled 80/20\ndata folder: " << mnist_dir << "\nrecipe: (test)\n";
  std::tie(status, output) = run("evaluate --model " + from_folder, "2>&1", here);
  CHECK(status == 0);
  CHECK(contains(output,
                 "note: the model was trained on 'MNIST pooled 80/20' (its run.txt) and "
                 "is scored on 'MNIST'"));
  fs::remove_all(mnist_dir);  // moved away since: named as run.txt's folder
  std::tie(status, output) = run("evaluate --model " + from_folder, "2>&1", here);
  CHECK(status == 2);
  CHECK(contains(output, "run.txt's data folder: MNIST is not in '" + mnist_dir + "'"));
}

TEST_CASE("CLI: train records its data folder in run.txt, and evaluate reads it from there") {
  const std::string dir = temp_dir("cli_data_folder");
  const std::string fashion = write_idx_set(dir + "/fashion data", 64, 32);
  auto [status, output] = run("train --dataset fashion-mnist --fashion-dir '" + fashion +
                              "' --layers 8 --epochs 1 --out " + dir + "/run");
  REQUIRE(status == 0);
  std::ifstream in(dir + "/run/run.txt");
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  CHECK(contains(text, "\ndata folder: " + fs::absolute(fashion).string() + "\n"));
  std::tie(status, output) =
      run("evaluate --model " + dir + "/run/model.xgm", "2>&1", "cd " + dir + " &&");
  CHECK(status == 0);
  CHECK(contains(output, "[Fashion-MNIST] " + dir + "/run/model.xgm: test accuracy"));
}

TEST_CASE("CLI: evaluate and predict refuse a model whose outputs are not softmax probabilities") {
  const std::string dir = temp_dir("cli_not_softmax");
  std::mt19937_64 rng(1);
  const xgrad::nn::Network<float> net(
      {784, 4, 10}, {xgrad::nn::Activation::parse("relu"), xgrad::nn::Activation::parse("sigmoid")},
      xgrad::nn::Initialiser::parse("glorot_uniform"), rng);
  save_model(net, dir + "/sigmoid.xgm");
  {
    std::ofstream f(dir + "/digit.pgm", std::ios::binary);
    f << "P5\n28 28\n255\n" << std::string(784, '\0');
  }
  const std::string cases[] = {
      "evaluate --dataset mnist --data /nonexistent/mnist --model " + dir + "/sigmoid.xgm",
      "predict --model " + dir + "/sigmoid.xgm --image " + dir + "/digit.pgm",
  };
  for (const std::string& args : cases) {
    CAPTURE(args);
    const auto [status, output] = run(args);
    CHECK(status == 1);
    CHECK(contains(output, "sigmoid.xgm: the last layer is sigmoid, not softmax"));
    CHECK_FALSE(contains(output, "p ="));
  }
}

TEST_CASE("PGM input: P5 values above maxval are refused as P2's are, naming value and maxval") {
  const std::string dir = temp_dir("pgm_maxval");
  {
    std::ofstream f(dir + "/p5.pgm", std::ios::binary);
    f << "P5\n28 28\n100\n";
    for (int i = 0; i < 784; ++i)
      f.put(char(i == 5 ? 200 : 50));  // 200 used to wrap to 510 % 256 = 254
  }
  CHECK_THROWS_WITH_AS(read_pgm(dir + "/p5.pgm"),
                       doctest::Contains("p5.pgm: pixel 5 is 200, above the maxval 100"),
                       std::runtime_error);
  {
    std::ofstream f(dir + "/p2.pgm");
    f << "P2 28 28 100\n";
    for (int i = 0; i < 784; ++i)
      f << (i == 7 ? 101 : 0) << " ";
  }
  CHECK_THROWS_WITH_AS(read_pgm(dir + "/p2.pgm"),
                       doctest::Contains("p2.pgm: pixel 7 is 101, above the maxval 100"),
                       std::runtime_error);
  // The magic is two bytes followed by whitespace, however long the file.
  std::ofstream(dir + "/long.pgm") << "P5" << std::string(100000, 'x');
  CHECK_THROWS_WITH_AS(read_pgm(dir + "/long.pgm"), doctest::Contains("long.pgm: not a"),
                       std::runtime_error);
}

TEST_CASE("PGM input: the magic is two bytes, never the whole of a file without whitespace") {
  // `in >> magic` read a file without whitespace to its end into one string (/dev/zero:
  // until memory ran out). Here a pipe offers "P5" and 1 MiB more without whitespace:
  // the reader must refuse it after its first buffer, so the writer meets a closed pipe.
  const std::string fifo = temp_dir("pgm_fifo") + "/image";
  REQUIRE(mkfifo(fifo.c_str(), 0600) == 0);
  const auto saved_handler = std::signal(SIGPIPE, SIG_IGN);  // EPIPE instead
  constexpr std::size_t kOffered = std::size_t(1) << 20;
  std::size_t written = 0;
  std::thread writer([&fifo, &written] {
    const int fd = open(fifo.c_str(), O_WRONLY);  // waits for the reader
    const std::string first = "P5" + std::string(4094, 'x'), more(4096, 'x');
    while (fd >= 0 && written < kOffered) {
      const std::string& chunk = written ? more : first;
      const ssize_t n = write(fd, chunk.data(), chunk.size());
      if (n <= 0) break;  // the reader closed the pipe
      written += std::size_t(n);
    }
    if (fd >= 0) close(fd);
  });
  CHECK_THROWS_WITH_AS(read_pgm(fifo), doctest::Contains("image: not a"), std::runtime_error);
  writer.join();
  std::signal(SIGPIPE, saved_handler);
  CHECK(written < kOffered);
}

TEST_CASE("CLI: predict --image /dev/zero is refused at once, not read into memory") {
  // The report's case end to end. The old reader grew a string until an allocation
  // failed (2 GiB without a limit), which the stream swallowed, and then refused the file
  // too: the pipe test above is the one that tells the two apart. The 1 GiB address-space
  // limit keeps a regression from taking the machine's memory (none under ASan, which
  // reserves far more).
  const std::string dir = temp_dir("cli_dev_zero");
  const std::string model = write_model(dir, "");
#if defined(__SANITIZE_ADDRESS__)
  const std::string limit = "";
#else
  const std::string limit = "ulimit -v 1048576;";
#endif
  const auto [status, output] =
      run("predict --model " + model + " --image /dev/zero", "2>&1", limit + " timeout 60");
  CHECK(status == 1);
  CHECK(contains(output, "/dev/zero: not a"));
  CHECK_FALSE(contains(output, "out of memory"));
}

TEST_CASE("CLI: sweep refuses --threads, and its grid values and --csv by their own names") {
  const std::string dir = temp_dir("cli_sweep_names");
  const std::pair<std::string, std::string> cases[] = {
      // Every sweep point trains on one thread: a --threads would be ignored.
      {"sweep --threads 2", "--threads: a sweep trains every point on one thread"},
      {"sweep --lrs 0.001 0", "--lrs: 0 is not a learning rate"},
      {"sweep --lrs -0.1", "--lrs: must not be negative, got -0.1"},
      {"sweep --lambdas 0 -1", "--lambdas: must not be negative, got -1"},
      {"sweep --lambdas inf", "--lambdas: inf is not a strength"},
      {"sweep --csv " + dir, "--csv: " + dir + " exists and is not a regular file (a folder)"},
  };
  for (const auto& test : cases) {
    CAPTURE(test.first);
    const auto [status, output] = run(test.first + " --dataset mnist --data /nonexistent/mnist");
    CHECK(status == 2);
    CHECK(contains(output, test.second));
    CHECK_FALSE(contains(output, "/nonexistent/mnist"));  // refused before the data
  }
  const auto [status, help] = run("sweep --help");
  CHECK(status == 0);
  CHECK_FALSE(contains(help, "--threads"));
  // The library names them too.
  const auto digits = synthetic_digits(16);
  CHECK_THROWS_WITH_AS(run_sweep<float>(sweep_recipe(), SweepGrid{}, digits.first, digits.second,
                                        digits.first, digits.second, kInfo, dir, 1, nullptr),
                       doctest::Contains(doctest::String(("--csv: " + dir).c_str())),
                       std::invalid_argument);
  SweepGrid negative;
  negative.lambdas = {-1};
  CHECK_THROWS_WITH_AS(grid_points(sweep_recipe(), negative), doctest::Contains("--lambdas: -1"),
                       std::invalid_argument);
}

TEST_CASE("sweep: every grid point is one model under one key") {
  // 0 hidden layers (softmax regression) has no nodes: one point, not one per node count.
  SweepGrid grid;
  grid.layer_counts = {0, 1};
  grid.nodes = {8, 16};
  const auto points = grid_points(sweep_recipe(), grid);
  REQUIRE(points.size() == 1 + 2);
  CHECK(points[0].layers == 0);
  CHECK(points[0].nodes == 0);
  CHECK(point_recipe(sweep_recipe(), points[0]).hidden.empty());
  // Rates equal to the CSV's 6 digits would be two rows under one key.
  SweepGrid close;
  close.learning_rates = {0.001, 0.0010000001};
  CHECK_THROWS_WITH_AS(grid_points(sweep_recipe(), close),
                       doctest::Contains("two grid points share the CSV key 0.001,"),
                       std::invalid_argument);
}
