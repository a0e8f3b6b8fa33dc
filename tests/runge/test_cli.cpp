// End to end: the runge executable's subcommands on small settings, their CSV columns,
// parallel = serial sweeps, resumed = uninterrupted sweeps, and bad input refused.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <string>

#include <sys/stat.h>
#include <unistd.h>

#include <xgrad/threads.hpp>

#include "data.hpp"
#include "file_lock.hpp"
#include "linear.hpp"
#include "scratch_dir.hpp"
#include "sweep.hpp"
#include "train.hpp"

namespace fs = std::filesystem;

namespace {

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string first_line(const fs::path& p) {
  std::ifstream in(p);
  std::string line;
  std::getline(in, line);
  return line;
}

std::size_t line_count(const fs::path& p) {
  std::ifstream in(p);
  std::size_t n = 0;
  std::string line;
  while (std::getline(in, line))
    ++n;
  return n;
}

struct Run {
  int status;
  std::string out, err;
};

/// Runs the runge executable in `dir` with `args`. A run that outlives `limit_s` seconds
/// is killed and reports status 124 (timeout's), so a command that should be refused at
/// once but starts an endless run fails the test instead of hanging it.
Run run_cli(const fs::path& dir, const std::string& args, int limit_s = 900) {
  const std::string cmd = "cd '" + dir.string() + "' && OPENBLAS_NUM_THREADS=1 timeout " +
                          std::to_string(limit_s) + " '" RUNGE_EXE "' " + args +
                          " > out.txt 2> err.txt";
  const int rc = std::system(cmd.c_str());
  return {WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, slurp(dir / "out.txt"), slurp(dir / "err.txt")};
}

/// A CSV the apps write (no quoting: their fields hold no commas), each row's fields
/// by the header's names.
struct Csv {
  std::vector<std::string> header;
  std::vector<std::map<std::string, std::string>> rows;
};
Csv read_csv(const fs::path& p) {
  Csv c;
  std::ifstream in(p);
  std::string line;
  REQUIRE(std::getline(in, line));
  c.header = runge::split_commas(line);
  while (std::getline(in, line)) {
    const auto f = runge::split_commas(line);
    REQUIRE(f.size() == c.header.size());
    std::map<std::string, std::string> row;
    for (std::size_t i = 0; i < f.size(); ++i)
      row[c.header[i]] = f[i];
    c.rows.push_back(row);
  }
  return c;
}

double number(const std::string& text) {
  return std::stod(text);  // "nan" too
}

/// The line of `text` that starts with `prefix`.
std::string line_starting(const std::string& text, const std::string& prefix) {
  std::stringstream lines(text);
  for (std::string line; std::getline(lines, line);)
    if (line.rfind(prefix, 0) == 0) return line;
  FAIL("no line starts with '" << prefix << "' in:\n" << text);
  return "";
}

/// The number printed right after `label` in `line`.
double printed_after(const std::string& line, const std::string& label) {
  const auto at = line.find(label);
  REQUIRE(at != std::string::npos);
  return std::stod(line.substr(at + label.size()));
}

/// Half a unit in the last digit of a number printed with %.6g: how far the value it
/// stands for can lie from it.
double half_unit_6g(double printed) {
  return 0.5 * std::pow(10.0, std::floor(std::log10(std::fabs(printed))) - 5);
}

/// v as a number the apps wrote with 10 significant digits (%.10g, or precision(10))
/// matches it: the rounding moves it by at most 5e-10 of its size (scale 0: relative).
doctest::Approx ten_digits(double v) {
  return doctest::Approx(v).epsilon(1e-9).scale(0);
}

const char* kSmallSweep =
    "sweep --points 60 --epochs 15 --lr 0.01,0.1 --nodes 4,8 --activation sigmoid,tanh "
    "--optimiser adam,rmsprop --batch-size 0,16 ";

}  // namespace

TEST_CASE("cli: train prints test MSE and R2 and writes the curve and predictions") {
  const ScratchDir dir("train");
  const Run r = run_cli(dir, "train --points 80 --epochs 30 --layers 2 --nodes 8 --curve-every 10");
  CHECK(r.status == 0);
  CHECK(r.out.find("test  MSE") != std::string::npos);
  CHECK(r.out.find("R2") != std::string::npos);
  CHECK(first_line(dir / "runge_curve.csv") == "epoch,train_mse,test_mse");
  CHECK(line_count(dir / "runge_curve.csv") == 4);  // header + epochs 10, 20, 30
  CHECK(first_line(dir / "runge_predictions.csv") == "x,part,target,prediction,true_function");
  CHECK(line_count(dir / "runge_predictions.csv") == 1 + 80 + 401);
  const Run f = run_cli(dir,
                        "train --function franke --points 60 --epochs 5 --nodes 8 "
                        "--activation relu --predictions franke.csv");
  CHECK(f.status == 0);
  CHECK(first_line(dir / "franke.csv") == "x,y,part,target,prediction,true_function");
}

TEST_CASE("cli: --help explains the options with their defaults") {
  const ScratchDir dir("help");
  const Run r = run_cli(dir, "train --help");
  CHECK(r.status == 0);
  CHECK(r.out.find("--noise") != std::string::npos);
  CHECK(r.out.find("0.05") != std::string::npos);
  CHECK(r.out.find("--schedule") != std::string::npos);
  CHECK(run_cli(dir, "sweep --help").out.find("--jobs") != std::string::npos);
  // the mnist app's names for the same options work here too
  CHECK(run_cli(dir, "sweep --help").out.find("--workers") != std::string::npos);
  CHECK(run_cli(dir, "train --points 40 --epochs 2 --nodes 4 --batch 8").status == 0);
  CHECK(run_cli(dir, "train --points 40 --epochs 2 --nodes 4 --batch -3").status == 2);
  CHECK(run_cli(dir, "experiment --help").out.find("architecture") != std::string::npos);
}

TEST_CASE("cli: baseline writes OLS, Ridge and Lasso rows") {
  const ScratchDir dir("baseline");
  const Run r = run_cli(dir, "baseline --degree 3,12 --lambda 1e-4,1e-2 --out b.csv");
  CHECK(r.status == 0);
  CHECK(first_line(dir / "b.csv") == "method,degree,lambda,train_mse,test_mse,test_r2,converged");
  CHECK(line_count(dir / "b.csv") == 1 + 2 + 4 + 4);
  CHECK(r.out.find("lasso") != std::string::npos);
}

TEST_CASE("cli: a parallel sweep writes the CSV of a serial one, byte for byte") {
  const ScratchDir dir("parallel");
  const Run a = run_cli(dir, std::string(kSmallSweep) + "--jobs 1 --out serial.csv");
  const Run b = run_cli(dir, std::string(kSmallSweep) + "--jobs 2 --out parallel.csv");
  REQUIRE(a.status == 0);
  REQUIRE(b.status == 0);
  CHECK(first_line(dir / "serial.csv") == runge::csv_header());
  CHECK(line_count(dir / "serial.csv") == 1 + 32);
  CHECK(slurp(dir / "serial.csv") == slurp(dir / "parallel.csv"));
}

TEST_CASE("cli: kfold and bootstrap sweeps, and a diverging run is a 'diverged' row") {
  const ScratchDir dir("eval");
  CHECK(run_cli(dir, "sweep --points 40 --epochs 10 --nodes 4 --eval kfold --folds 4 --out k.csv")
            .status == 0);
  CHECK(slurp(dir / "k.csv").find(",kfold,4,,2024,ok,") != std::string::npos);
  CHECK(run_cli(dir,
                "sweep --points 40 --epochs 10 --nodes 4 --eval bootstrap --bootstraps 3 "
                "--out b.csv")
            .status == 0);
  CHECK(slurp(dir / "b.csv").find(",bootstrap,,3,2024,ok,") != std::string::npos);
  {  // each bootstrap replicate resamples anew, so their scores differ
    const Csv b = read_csv(dir / "b.csv");
    REQUIRE(b.rows.size() == 1);
    CHECK(number(b.rows[0].at("mse_std")) > 1e-6 * number(b.rows[0].at("mse")));
  }
  // Plain gradient descent at rate 1e6 on ReLU units overflows to inf/NaN.
  const Run r = run_cli(dir,
                        "sweep --points 40 --epochs 50 --nodes 8 --activation relu "
                        "--optimiser sgd --lr 0.01,1e6 --out d.csv");
  CHECK(r.status == 0);
  const std::string csv = slurp(dir / "d.csv");
  // holdout: no folds, bootstraps or resample seed.
  CHECK(csv.find(",holdout,,,,ok,") != std::string::npos);
  CHECK(csv.find(",holdout,,,,diverged,nan,") != std::string::npos);
  CHECK(r.out.find("1 diverged") != std::string::npos);
  // A resumed sweep still counts its diverged rows.
  const Run again = run_cli(dir,
                            "sweep --points 40 --epochs 50 --nodes 8 --activation relu "
                            "--optimiser sgd --lr 0.01,1e6 --out d.csv");
  CHECK(again.out.find("0 run, 2 reused from the CSV, 1 diverged") != std::string::npos);
  CHECK(line_count(dir / "d.csv") == 3);
}

TEST_CASE("sweep: a resumed sweep equals an uninterrupted one") {
  const ScratchDir dir("resume");
  runge::DataSpec d;
  d.n = 50;
  const runge::SweepData data = runge::make_sweep_data(d, 0.2, 1);
  runge::SweepSpec s;
  s.train.epochs = 10;
  s.axes.lr = {1e-3, 1e-2, 1e-1};
  s.axes.nodes = {3, 6};
  s.axes.activation = {"sigmoid", "tanh"};
  s.jobs = 2;
  const auto whole = (dir / "whole.csv").string();
  const auto part = (dir / "part.csv").string();
  const auto a = runge::run_sweep(data, s, whole);
  CHECK(a.run == 12);
  // Interrupted after 5 points, then a cut last line as a killed process leaves it.
  const auto b = runge::run_sweep(data, s, part, 5);
  CHECK(b.run == 5);  // a point finished after the stop is dropped, as a kill would
  // Every finished point is in the file: resuming must reuse exactly those rows.
  const std::size_t rows_on_disk = line_count(part) - 1;
  CHECK(rows_on_disk == 5);
  {
    std::ofstream app(part, std::ios::app);
    app << "11,runge,adam,tanh,no";
  }
  const auto c = runge::run_sweep(data, s, part);
  CHECK(c.reused == rows_on_disk);
  CHECK(c.reused + c.run == 12);
  CHECK(slurp(whole) == slurp(part));
  // A finished sweep run again does nothing.
  const auto again = runge::run_sweep(data, s, part);
  CHECK(again.run == 0);
  CHECK(again.reused == 12);
  CHECK(slurp(whole) == slurp(part));
}

TEST_CASE("cli: sweep resumes from its CSV instead of starting over") {
  const ScratchDir dir("cli_resume");
  const std::string args = "sweep --points 40 --epochs 10 --nodes 4 --lr 0.01,0.1 --out r.csv";
  REQUIRE(run_cli(dir, args).status == 0);
  const std::string first = slurp(dir / "r.csv");
  const Run again = run_cli(dir, args);
  CHECK(again.out.find("0 run, 2 reused") != std::string::npos);
  CHECK(slurp(dir / "r.csv") == first);
  // Rows of other settings are never dropped or mixed in: the sweep is refused, naming
  // what differs, and the file stays as it was.
  const Run other = run_cli(dir, "sweep --points 40 --epochs 11 --nodes 4 --lr 0.01 --out r.csv");
  CHECK(other.status == 2);
  CHECK(other.err.find("epochs 10 in the file, 11 now") != std::string::npos);
  CHECK(other.err.find("--fresh") != std::string::npos);
  CHECK(slurp(dir / "r.csv") == first);
  const Run franke = run_cli(dir, args + " --function franke");  // another target
  CHECK(franke.status == 2);
  CHECK(franke.err.find("function runge in the file, franke now") != std::string::npos);
  CHECK(slurp(dir / "r.csv") == first);
  const Run noisier = run_cli(dir, args + " --noise 0.3");
  CHECK(noisier.status == 2);
  CHECK(noisier.err.find("noise 0.05 in the file, 0.3 now") != std::string::npos);
  CHECK(slurp(dir / "r.csv") == first);
  // --fresh replaces it.
  const Run fresh = run_cli(dir, args + " --noise 0.3 --fresh");
  CHECK(fresh.status == 0);
  CHECK(fresh.out.find("2 run, 0 reused") != std::string::npos);
  CHECK(slurp(dir / "r.csv").find(",0.3,") != std::string::npos);
}

TEST_CASE("cli: a grown grid reuses its finished points under their new indices") {
  const ScratchDir dir("cli_grow");
  const std::string base = "sweep --points 40 --epochs 10 --nodes 4 --out g.csv --lr ";
  REQUIRE(run_cli(dir, base + "0.01,0.1").status == 0);
  const Run grown = run_cli(dir, base + "0.001,0.01,0.1");
  CHECK(grown.status == 0);
  CHECK(grown.out.find("1 run, 2 reused") != std::string::npos);
  // The same file as a sweep of the grown grid from scratch.
  REQUIRE(run_cli(dir,
                  "sweep --points 40 --epochs 10 --nodes 4 --out whole.csv "
                  "--lr 0.001,0.01,0.1")
              .status == 0);
  CHECK(slurp(dir / "g.csv") == slurp(dir / "whole.csv"));
}

/// A finished sweep of two points (lr 0.01, 0.1) in dir/name, and its spec grown by two
/// points ahead of those (lr 1e-4, 1e-3): what the grown-grid tests resume.
struct GrownSweep {
  runge::SweepData data;
  runge::SweepSpec spec;
  std::string path;
};
GrownSweep grown_sweep(const fs::path& dir, const std::string& name) {
  runge::DataSpec d;
  d.n = 40;
  GrownSweep g{runge::make_sweep_data(d, 0.2, 1), {}, (dir / name).string()};
  g.spec.train.epochs = 5;
  g.spec.axes.nodes = {3};
  g.spec.axes.lr = {1e-2, 1e-1};
  g.spec.jobs = 1;
  REQUIRE(runge::run_sweep(g.data, g.spec, g.path).run == 2);
  g.spec.axes.lr = {1e-4, 1e-3, 1e-2, 1e-1};
  return g;
}

TEST_CASE("sweep: the file holds every known row while a grown grid runs") {
  // Stopped after the first new point, the file must still hold both old rows (a kill
  // keeps what was there), and a resume runs only the one point left.
  const ScratchDir dir("grown_front");
  const auto [data, s, path] = grown_sweep(dir, "g.csv");
  const auto part = runge::run_sweep(data, s, path, 1);
  CHECK(part.reused == 2);
  CHECK(part.run == 1);
  CHECK(line_count(path) == 1 + 3);
  const auto rest = runge::run_sweep(data, s, path);
  CHECK(rest.reused == 3);
  CHECK(rest.run == 1);
  const auto whole_path = (dir / "whole.csv").string();
  runge::run_sweep(data, s, whole_path);
  CHECK(slurp(path) == slurp(whole_path));           // grid order again at the end
  for (const auto& e : fs::directory_iterator(dir))  // no temporary file left
    CHECK(e.path().filename().string().find(".tmp") == std::string::npos);
}

TEST_CASE("sweep: a kill at any step leaves every known row, and resuming from there is whole") {
  // The log callback runs right after a point's row was appended: a copy of the file
  // then is what a kill at that moment leaves behind.
  const ScratchDir dir("kill_snapshots");
  const auto [data, s, path] = grown_sweep(dir, "k.csv");
  std::vector<std::string> snapshots;
  runge::run_sweep(data, s, path, 0, [&snapshots, &file = path](const std::string&) {
    snapshots.push_back(slurp(file));
  });
  REQUIRE(snapshots.size() == 2);
  const auto whole = (dir / "whole.csv").string();
  runge::run_sweep(data, s, whole);
  for (std::size_t k = 0; k < snapshots.size(); ++k) {
    CAPTURE(k);
    // Header, the 2 reused rows and the k + 1 new ones, in the order they came.
    std::stringstream lines(snapshots[k]);
    std::size_t n = 0;
    for (std::string line; std::getline(lines, line);)
      ++n;
    CHECK(n == 1 + 2 + k + 1);
    const auto resumed = (dir / ("resumed" + std::to_string(k) + ".csv")).string();
    { std::ofstream(resumed) << snapshots[k]; }
    const auto st = runge::run_sweep(data, s, resumed);
    CHECK(st.reused == 2 + k + 1);
    CHECK(slurp(resumed) == slurp(whole));
  }
  CHECK(slurp(path) == slurp(whole));
}

TEST_CASE("cli: a schedule with commas stays one CSV field, and its sweep resumes") {
  const ScratchDir dir("cli_schedule_commas");
  const std::string args =
      "sweep --points 40 --epochs 5 --nodes 3 --schedule step:0.1,0.5,10 --out s.csv";
  REQUIRE(run_cli(dir, args).status == 0);
  const std::string csv = slurp(dir / "s.csv");
  CHECK(csv.find(",step:0.1;0.5;10,") != std::string::npos);
  std::stringstream lines(csv);
  for (std::string line; std::getline(lines, line);)
    CHECK(std::count(line.begin(), line.end(), ',') + 1 == 37);
  CHECK(run_cli(dir, args).out.find("0 run, 1 reused") != std::string::npos);
}

TEST_CASE("cli: a sweep refuses a repeated value and values no point can use") {
  const ScratchDir dir("cli_grid_values");
  const std::string base = "sweep --points 40 --epochs 5 --nodes 3 --out v.csv ";
  struct Case {
    const char* args;
    const char* message;
  };
  const Case cases[] = {
      {"--lr 0.1,0.1", "--lr: 0.1 is listed twice"},
      {"--penalty none,l0", "--penalty: none is listed twice"},
      {"--optimiser adam,ADAM", "--optimiser: adam is listed twice"},
      {"--activation relu,RELU", "--activation: relu is listed twice"},
      {"--penalty none --lambda 0.1", "--lambda: penalty none ignores lambda"},
      {"--optimiser gd --batch-size 10", "--batch-size: gd always steps on the full batch"},
      // Points that would repeat another under a different label: l1 at lambda 0 is
      // penalty none, a batch above the 32 training points is the full batch (0).
      {"--penalty none,l1 --lambda 0,0.1", "--lambda 0 with --penalty l1 or l2 is no penalty"},
      {"--batch-size 0,1000",
       "--batch-size 1000 is not below the 32 training points, so every step would take the "
       "full batch, as --batch-size 0 does; give at most 31, or 0"},
      {"--batch-size 0,32", "--batch-size 32 is not below the 32 training points"},
      {"--eval kfold --folds 4 --batch-size 30", "--batch-size 30 is not below the 30 training"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.args);
    const Run r = run_cli(dir, base + c.args);
    CHECK(r.status == 2);
    CHECK(r.err.find(c.message) != std::string::npos);
  }
  // gd in any spelling takes the full batch once; sgd takes each size. The label is nn's
  // spelling, so the same sweep typed another way resumes.
  const Run mixed = run_cli(dir, base + "--optimiser GD,sgd --batch-size 0,10");
  CHECK(mixed.status == 0);
  CHECK(line_count(dir / "v.csv") == 1 + 1 + 2);
  CHECK(slurp(dir / "v.csv").find(",GD,") == std::string::npos);
  CHECK(run_cli(dir, base + "--optimiser gd,SGD --batch-size 0,10").out.find("0 run, 3 reused") !=
        std::string::npos);
  // A whole row of the wrong width is refused, not skipped.
  { std::ofstream(dir / "v.csv", std::ios::app) << "1,2,3\n"; }
  const Run wide = run_cli(dir, base + "--optimiser GD,sgd --batch-size 0,10");
  CHECK(wide.status == 2);
  CHECK(wide.err.find("a row of 3 fields instead of 37") != std::string::npos);
  // --fresh never deletes a folder, and a folder as --out leaves no temporary file.
  fs::create_directories(dir / "folder");
  const Run folder = run_cli(dir, "sweep --points 40 --epochs 5 --nodes 3 --fresh --out folder");
  CHECK(folder.status == 2);
  CHECK(fs::is_directory(dir / "folder"));
  const Run into_folder = run_cli(dir, "sweep --points 40 --epochs 5 --nodes 3 --out folder");
  CHECK(into_folder.status == 2);
  CHECK(into_folder.err.find("folder") != std::string::npos);
  for (const auto& e : fs::directory_iterator(dir))
    CHECK(e.path().filename().string().find(".tmp") == std::string::npos);
  // Through a symbolic link the file it names is written, and the link stays a link.
  fs::create_directories(dir / "real");
  fs::create_symlink("real/t.csv", dir / "link.csv");
  REQUIRE(run_cli(dir, "sweep --points 40 --epochs 5 --nodes 3 --out link.csv").status == 0);
  const Run grown =
      run_cli(dir, "sweep --points 40 --epochs 5 --nodes 3 --lr 0.01,0.1 --out link.csv");
  CHECK(grown.out.find("1 run, 1 reused") != std::string::npos);
  CHECK(fs::is_symlink(dir / "link.csv"));
  CHECK(line_count(dir / "real" / "t.csv") == 1 + 2);
  // --fresh through the link starts the file it names over (it deleted the link).
  REQUIRE(run_cli(dir, "sweep --points 40 --epochs 5 --nodes 3 --lr 0.5 --out link.csv --fresh")
              .status == 0);
  CHECK(fs::is_symlink(dir / "link.csv"));
  CHECK(line_count(dir / "real" / "t.csv") == 1 + 1);
  CHECK(slurp(dir / "real" / "t.csv").find(",0.5,5,holdout,") != std::string::npos);
  // A named pipe (or a device) under the CSV's name is refused, not replaced by a
  // regular file (as root, --out /dev/null did that) and not read from (which would wait).
  REQUIRE(::mkfifo((dir / "pipe").c_str(), 0644) == 0);
  const Run pipe = run_cli(dir, "sweep --points 40 --epochs 5 --nodes 3 --out pipe", 60);
  CHECK(pipe.status == 2);
  CHECK(pipe.err.find("--out: pipe exists and is not a regular file") != std::string::npos);
  CHECK(pipe.out.find("runge sweep:") == std::string::npos);  // refused before the header
  CHECK(fs::is_fifo(dir / "pipe"));
  // k-fold uses every point: a split that would leave one test point does not matter.
  CHECK(run_cli(dir, "sweep --points 7 --eval kfold --folds 3 --epochs 5 --nodes 3 --out kf.csv")
            .status == 0);
}

TEST_CASE("cli: a row whose results a sweep would not write is refused on resume, by line") {
  const ScratchDir dir("cli_bad_results");
  const std::string args = "sweep --points 40 --epochs 5 --nodes 3 --lr 0.01,0.1 --out r.csv";
  REQUIRE(run_cli(dir, args).status == 0);
  const std::string good = slurp(dir / "r.csv");
  // The second row's mse (the field after its status) edited by hand.
  std::string edited = good;
  const auto row2 = edited.find('\n', edited.find('\n') + 1) + 1;
  const auto status_at = edited.find(",ok,", row2);
  REQUIRE(status_at != std::string::npos);
  const auto mse_end = edited.find(',', status_at + 4);
  edited.replace(status_at + 4, mse_end - (status_at + 4), "abc");
  { std::ofstream(dir / "r.csv", std::ios::trunc) << edited; }
  const Run r = run_cli(dir, args);
  CHECK(r.status != 0);
  CHECK(r.err.find("--out: r.csv line 3: mse is \"abc\", not a number; pass --fresh") !=
        std::string::npos);
  CHECK(slurp(dir / "r.csv") == edited);  // refused before the file is touched
  // What strtod would read but a sweep never writes, and scores that do not fit the status.
  const std::string mse = good.substr(status_at + 4, mse_end - (status_at + 4));
  for (const auto& edit : std::vector<std::pair<std::string, std::string>>{
           {"0x10", "mse is \"0x10\", not a number"},
           {" 7", "mse is \" 7\", not a number"},
           {"-inf", "mse is \"-inf\", not a number"},
           {"nan", "mse nan is not what an ok point holds"},
           {"-0.5", "mse -0.5 is not what an ok point holds"}}) {
    CAPTURE(edit.first);
    std::string bad = good;
    bad.replace(status_at + 4, mse.size(), edit.first);
    { std::ofstream(dir / "r.csv", std::ios::trunc) << bad; }
    CHECK(run_cli(dir, args).err.find("r.csv line 3: " + edit.second) != std::string::npos);
  }
  std::string diverged = good;
  diverged.replace(status_at + 1, 2, "diverged");
  { std::ofstream(dir / "r.csv", std::ios::trunc) << diverged; }
  CHECK(run_cli(dir, args).err.find("r.csv line 3: mse " + mse +
                                    " is not what a diverged point "
                                    "holds") != std::string::npos);
  edited.replace(status_at + 1, 2, "fine");
  { std::ofstream(dir / "r.csv", std::ios::trunc) << edited; }
  CHECK(run_cli(dir, args).err.find("r.csv line 3: status is \"fine\", neither ok nor diverged") !=
        std::string::npos);
}

TEST_CASE("cli: an experiment interrupted before its table, or a grid cut short, is not used") {
  const ScratchDir dir("cli_cut_experiments");
  fs::create_directories(dir / "res");
  // What an interrupted learning-rate run left before: table1.csv without rows.
  {
    std::ofstream(dir / "res" / "table1.csv")
        << "mode,optimiser,layers,best_lr,best_mse,log10_lr\n";
  }
  const Run curves = run_cli(dir, "experiment curves --quick --no-figures --out-dir res");
  CHECK(curves.status == 0);
  CHECK(curves.out.find("curves: table1.csv missing or incomplete, running learning-rate first") !=
        std::string::npos);
  CHECK(line_count(dir / "res" / "table1.csv") == 9);
  CHECK(line_count(dir / "res" / "fig2_curves.csv") > 1);
  // A Fig. 4 grid of 0 of its 3 quick points: its winner is not taken.
  { std::ofstream(dir / "res" / "fig4.csv") << runge::csv_header() << '\n'; }
  const Run reg = run_cli(dir, "experiment regularisation --quick --no-figures --out-dir res");
  CHECK(reg.status == 0);
  CHECK(reg.out.find("regularisation: fig4.csv holds 0 of the 3 points of the architecture grid") !=
        std::string::npos);
  CHECK(reg.out.find("regularisation: architecture 1 x 40 sigmoid") != std::string::npos);
  // A whole grid whose last line an interruption cut (no newline): read as its whole rows,
  // as a resume reads it, not refused for the cut field.
  REQUIRE(run_cli(dir, "experiment architecture --quick --no-figures --out-dir res").status == 0);
  std::string fig4 = slurp(dir / "res" / "fig4.csv");
  fig4.resize(fig4.size() - 8);
  { std::ofstream(dir / "res" / "fig4.csv", std::ios::trunc) << fig4; }
  const Run cut = run_cli(dir, "experiment regularisation --quick --no-figures --out-dir res");
  CHECK(cut.status == 0);
  CHECK(cut.out.find("regularisation: fig4.csv holds 2 of the 3 points") != std::string::npos);
  // A whole row of the wrong width is refused by line, as resume refuses it (it was
  // skipped, and the grid counted one point short).
  { std::ofstream(dir / "res" / "fig4.csv") << runge::csv_header() << "\n1,2,3\n"; }
  const Run wide = run_cli(dir, "experiment regularisation --quick --no-figures --out-dir res");
  CHECK(wide.status != 0);
  CHECK(wide.err.find("fig4.csv line 2: a row of 3 fields instead of 37") != std::string::npos);
  // A Table I row that is not one is named by file and line, not by "stoul".
  { std::ofstream(dir / "res" / "table1.csv", std::ios::app) << "sgd,adam,two,0.1,0.2,-1\n"; }
  const Run table = run_cli(dir, "experiment curves --quick --no-figures --out-dir res");
  CHECK(table.status != 0);
  CHECK(table.err.find("table1.csv line 10: 'sgd,adam,two,0.1,0.2,-1' is not a row of Table I") !=
        std::string::npos);
}

TEST_CASE("cli: a sweep CSV names the data, model and training settings of every row") {
  const ScratchDir dir("cli_settings");
  REQUIRE(run_cli(dir,
                  "sweep --points 40 --noise 0.1 --data-seed 7 --epochs 5 --nodes 3 "
                  "--init glorot_normal --seed 9 --schedule inverse_time --eval kfold "
                  "--folds 4 --out s.csv")
              .status == 0);
  CHECK(first_line(dir / "s.csv") == runge::csv_header());
  std::ifstream in(dir / "s.csv");
  std::string header, row;
  std::getline(in, header);
  std::getline(in, row);
  std::map<std::string, std::string> field;
  std::stringstream hs(header), rs(row);
  for (std::string h, v; std::getline(hs, h, ',') && std::getline(rs, v, ',');)
    field[h] = v;
  CHECK(field["points"] == "40");
  CHECK(field["noise"] == "0.1");
  CHECK(field["data_seed"] == "7");
  CHECK(field["init"] == "glorot_normal");
  CHECK(field["seed"] == "9");
  CHECK(field["schedule"] == "inverse_time");
  CHECK(field["folds"] == "4");
  CHECK(field["bootstraps"] == "");     // not a bootstrap sweep
  CHECK(field["test_fraction"] == "");  // k-fold uses every point
}

TEST_CASE("cli: --fresh deletes only a sweep CSV") {
  const ScratchDir dir("cli_fresh");
  { std::ofstream(dir / "notes.txt") << "my notes\n"; }
  const Run r = run_cli(dir, "sweep --points 40 --epochs 5 --nodes 3 --fresh --out notes.txt");
  CHECK(r.status == 2);
  CHECK(r.err.find("not a sweep CSV") != std::string::npos);
  CHECK(slurp(dir / "notes.txt") == "my notes\n");
}

TEST_CASE(
    "cli: a sweep CSV another run is writing is refused, with --fresh too, and left as it was") {
  const ScratchDir dir("cli_locked");
  const std::string args = "sweep --points 40 --epochs 5 --nodes 3 --out r.csv --lr 0.01,0.1";
  REQUIRE(run_cli(dir, args).status == 0);
  const std::string before = slurp(dir / "r.csv");
  {
    // This test process stands for the other run: the CLI is a process of its own.
    const xgrad::apps::FileLock other((dir / "r.csv").string(), "test");
    const std::string holder = "(process " + std::to_string(::getpid()) + ")";
    const Run resumed = run_cli(dir, args + ",1");
    CHECK(resumed.status != 0);
    CHECK(resumed.err.find("--out: r.csv is being written by another run " + holder) !=
          std::string::npos);
    const Run fresh = run_cli(dir, args + " --fresh");
    CHECK(fresh.status != 0);
    CHECK(fresh.err.find("--fresh: r.csv is being written by another run " + holder) !=
          std::string::npos);
    CHECK(slurp(dir / "r.csv") == before);
  }
  // Once the other run is done, the sweep goes on and leaves no lock file behind.
  const Run grown = run_cli(dir, args + ",1");
  CHECK(grown.status == 0);
  CHECK(grown.out.find("1 run, 2 reused") != std::string::npos);
  CHECK_FALSE(fs::exists(dir / "r.csv.lock"));
}

TEST_CASE("sweep: gd takes one batch size and penalty none one lambda") {
  runge::GridAxes a;
  a.optimiser = {"gd", "sgd"};
  a.batch_size = {0, 5, 10};
  a.penalty = {"none", "l2"};
  a.lambda = {1e-3, 1e-2};
  a.lr = {0.1};
  const auto grid = runge::expand(a);
  // gd: 1 batch size, sgd: 3; none: 1 lambda (0), l2: 2.
  CHECK(grid.size() == (1 + 3) * (1 + 2));
  CHECK(a.size() == grid.size());
  for (const auto& p : grid) {
    CAPTURE(p.index);
    if (p.optimiser == "gd") CHECK(p.batch_size == 0);
    if (p.penalty == "none") CHECK(p.lambda == 0.0);
    if (p.penalty == "l2") CHECK(p.lambda > 0.0);
  }
}

TEST_CASE("cli: bad input is refused with a message naming the option") {
  const ScratchDir dir("bad");
  struct Case {
    const char* args;
    const char* option;
  };
  const Case cases[] = {
      {"train --noise -0.1", "--noise"},
      {"train --layers 2 --nodes 50,0", "--nodes"},
      {"train --nodes 0", "--nodes"},
      {"train --activation swish", "--activation"},
      {"train --test-fraction 1", "--test-fraction"},
      {"train --optimiser newton", "--optimiser"},
      {"train --penalty l3", "--penalty"},
      {"train --function sine", "--function"},
      {"sweep --nodes 10,0", "--nodes"},
      {"sweep --activation relu,bogus", "--activation"},
      {"sweep --lr 0.1,-1", "--lr"},
      {"baseline --noise -1", "--noise"},
      {"baseline --method svm", "--method"},
      {"baseline --test-fraction 1", "--test-fraction"},
      {"baseline --degree 12,12", "--degree: 12 is listed twice"},
      {"baseline --method ols,ridge,ols", "--method: ols is listed twice"},
      {"experiment nonsense", "name"},
      // Values that would be dropped or ignored without a word.
      {"train --batch-size 10,20", "--batch-size"},
      {"train --optimiser gd --batch-size 10", "--batch-size"},
      {"train --lambda 0.1", "--lambda"},
      {"train --penalty l1", "--penalty"},
      {"train --lr 0.1 --schedule step:0.01,0.5,100", "--lr"},
      {"sweep --lr 0.001,0.01 --schedule exponential:0.01,0.99", "--lr"},
      {"train --activation softmax", "--activation"},
      {"train --output-activation softmax", "--output-activation"},
      {"sweep --nodes 50,", "--nodes"},
      {"sweep --activation sigmoid,", "--activation"},
      {"train --lr 1e400", "--lr"},
      {"train --lr 0x1", "--lr: '0x1' is not a number"},
      {"train --data-seed -1", "--data-seed"},
      {"sweep --resample-seed -1", "--resample-seed"},
      {"sweep --eval kfold --points 40 --folds 30", "--folds"},
      {"train --points 40 --test-fraction 0.02", "--test-fraction"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.args);
    const Run r = run_cli(dir, c.args, 120);
    CHECK(r.status == 2);
    CHECK(r.err.find(c.option) != std::string::npos);
  }
}

TEST_CASE("cli: negative, zero and too large counts are refused before anything runs") {
  // Unsigned options used to wrap -1 around to 2^64 - 1: an endless run (--epochs) or
  // std::bad_alloc (--points). Each must now exit 2 at once, naming the option. List
  // options took any double and cast it to size_t: --degree 4294967297 fitted degree 1
  // and reported 4294967297, --nodes 1e30 became "0 nodes".
  const ScratchDir dir("counts");
  struct Case {
    const char* args;
    const char* option;
  };
  const Case cases[] = {
      {"train --epochs -1", "--epochs"},
      {"train --epochs 0", "--epochs"},
      {"train --points -5", "--points"},
      {"train --points 1", "--points"},
      {"train --layers -1", "--layers"},
      {"train --curve-every -1", "--curve-every"},
      {"train --curve-every 0", "--curve-every"},
      {"train --shards 0", "--shards"},
      {"train --shards -2", "--shards"},
      {"--threads -1 train", "--threads"},
      {"baseline --points -5", "--points"},
      {"sweep --epochs -1", "--epochs"},
      {"sweep --points -5", "--points"},
      {"sweep --folds -3 --eval kfold", "--folds"},
      {"sweep --folds 1 --eval kfold", "--folds"},
      {"sweep --bootstraps -1 --eval bootstrap", "--bootstraps"},
      {"sweep --jobs -2", "--jobs"},
      {"experiment cv --quick --jobs -1", "--jobs"},
      {"train --nodes 1e30", "--nodes: 1e30 is above the largest allowed, 100000"},
      {"train --nodes 18446744073709551616", "--nodes"},
      {"train --batch-size 1e30", "--batch-size: 1e30 is above"},
      {"baseline --degree 4294967297", "--degree: 4294967297 is above the largest allowed, 100"},
      {"sweep --layers 1,5000", "--layers: 5000 is above"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.args);
    const Run r = run_cli(dir, c.args, 60);
    CHECK(r.status == 2);
    CHECK(r.err.find(c.option) != std::string::npos);
    CHECK(r.out.find("runge train:") == std::string::npos);
    CHECK(r.out.find("runge sweep:") == std::string::npos);
  }
}

TEST_CASE("cli: parse errors exit 2 like the app's own checks, and --help exits 0") {
  const ScratchDir dir("exit_codes");
  const char* refused[] = {
      "",                        // no subcommand
      "train --no-such-option",  // unknown option
      "train --epochs many",     // not a number
      "train --epochs",          // missing value
      "train extra-argument",    // stray positional
      "experiment",              // missing required name
      "experiment nonsense",     // not one of the names
  };
  for (const char* args : refused) {
    CAPTURE(args);
    const Run r = run_cli(dir, args, 60);
    CHECK(r.status == 2);
    CHECK_FALSE(r.err.empty());
  }
  // The message says what is wrong: not a number is not "out of range", and a negative
  // seed is not refused with a 309-digit upper bound.
  CHECK(run_cli(dir, "train --epochs many", 60).err.find("Failed parsing many") !=
        std::string::npos);
  CHECK(run_cli(dir, "train --layers 2.5", 60).err.find("Failed parsing 2.5") != std::string::npos);
  CHECK(run_cli(dir, "train --seed -1", 60).err.find("--seed: must not be negative, got -1") !=
        std::string::npos);
  CHECK(run_cli(dir, "--help").status == 0);
  CHECK(run_cli(dir, "sweep --help").status == 0);
}

TEST_CASE("cli: an unknown activation's message offers only what a regression network takes") {
  const ScratchDir dir("activation_list");
  const Run r = run_cli(dir, "train --activation foo", 60);
  CHECK(r.status == 2);
  CHECK(r.err.find("leaky_relu[:alpha], elu[:alpha]") != std::string::npos);
  CHECK(r.err.find("softmax") == std::string::npos);
}

TEST_CASE("cli: a refused sweep prints no header line announcing the run") {
  const ScratchDir dir("sweep_refused");
  for (const char* args : {"sweep --lr 0.1,0.1 --epochs 2", "sweep --penalty none --lambda 0.1",
                           "sweep --nodes 10,0"}) {
    CAPTURE(args);
    const Run r = run_cli(dir, args, 60);
    CHECK(r.status == 2);
    CHECK(r.out.find("runge sweep:") == std::string::npos);
  }
  CHECK(run_cli(dir, "sweep --lr 0.1 --epochs 2 --jobs 1 --points 40", 60)
            .out.find("runge sweep: 1 point, holdout, 1 worker ") != std::string::npos);
}

TEST_CASE("cli: a batch size or shard count past the training rows is noted, not hidden") {
  const ScratchDir dir("past_rows");
  const Run r = run_cli(dir, "train --points 50 --epochs 2 --batch-size 1000 --shards 300", 60);
  CHECK(r.status == 0);
  CHECK(r.out.find("note: --batch-size 1000 is more than the 40 training rows: full batch") !=
        std::string::npos);
  CHECK(r.out.find("note: --shards 300 is more than the 40 training rows: 40 shards") !=
        std::string::npos);
}

TEST_CASE("cli: an --out-dir that cannot be a folder is refused naming the option") {
  const ScratchDir dir("outdir");
  std::ofstream(dir / "afile") << "not a folder\n";
  const Run r = run_cli(dir, "experiment cv --quick --out-dir afile/x", 60);
  CHECK(r.status == 2);
  CHECK(r.err.find("--out-dir: cannot create the folder 'afile/x'") != std::string::npos);
}

TEST_CASE("cli: a refused baseline leaves the CSV of an earlier run as it was") {
  // --out used to be opened (emptied) before the methods, degrees and lambdas were read.
  const ScratchDir dir("baseline_keep");
  REQUIRE(run_cli(dir, "baseline --points 40 --degree 3 --out b.csv", 60).status == 0);
  const std::string before = slurp(dir / "b.csv");
  REQUIRE(before.find("ols,3") != std::string::npos);
  for (const char* bad : {"--method foo", "--degree 0", "--lambda -1", "--degree 1e30"}) {
    CAPTURE(bad);
    CHECK(run_cli(dir, std::string("baseline --points 40 --out b.csv ") + bad, 60).status == 2);
    CHECK(slurp(dir / "b.csv") == before);
  }
}

TEST_CASE("cli: an unwritable --curve or --predictions is refused before training") {
  const ScratchDir dir("unwritable");
  // A million epochs would take minutes: the refusal must come first.
  const std::string slow = "train --points 40 --epochs 1000000 --nodes 4 ";
  const Run c = run_cli(dir, slow + "--curve no/such/dir/curve.csv", 60);
  CHECK(c.status == 2);
  CHECK(c.err.find("--curve") != std::string::npos);
  CHECK(c.out.find("runge train:") == std::string::npos);
  const Run p = run_cli(dir, slow + "--predictions no/such/dir/p.csv", 60);
  CHECK(p.status == 2);
  CHECK(p.err.find("--predictions") != std::string::npos);
  CHECK(p.out.find("runge train:") == std::string::npos);
  // The writability probe leaves no empty file behind.
  CHECK_FALSE(fs::exists(dir / "runge_curve.csv"));
}

TEST_CASE("cli: a --quick experiment writes to ./runge-results-quick, never over full results") {
  const ScratchDir dir("default_out_dir");
  const Run r = run_cli(dir, "experiment franke --quick --jobs 2 --no-figures");
  CAPTURE(r.err);
  CHECK(r.status == 0);
  CHECK(first_line(dir / "runge-results-quick" / "franke_summary.csv") == "model,test_mse,test_r2");
  // Neither the full runs' default folder nor the committed results are touched.
  CHECK_FALSE(fs::exists(dir / "runge-results"));
  CHECK_FALSE(fs::exists(dir / "apps"));
  CHECK(r.out.find("runge-results-quick") != std::string::npos);
  // The log counts in words and gives seconds to two decimals.
  CAPTURE(r.out);
  CHECK(r.out.find("sweep franke_grid.csv: 1 point\n") != std::string::npos);
  const std::size_t summary = r.out.find("sweep franke_grid.csv: 1 run, 0 reused, 0 diverged, ");
  REQUIRE(summary != std::string::npos);
  const std::string seconds = r.out.substr(summary, r.out.find('\n', summary) - summary);
  CHECK(std::regex_search(seconds, std::regex(R"(, [0-9]+\.[0-9]{2} s$)")));
}

TEST_CASE("sweep: the BLAS thread guard restores the previous count, also on exceptions") {
  const int before = xgrad::threads();
  xgrad::set_threads(2);
  {
    const runge::BlasThreadsGuard g(1);
    CHECK(xgrad::threads() == 1);
    CHECK(g.previous() == 2);
  }
  CHECK(xgrad::threads() == 2);
  try {
    const runge::BlasThreadsGuard g(1);
    CHECK(xgrad::threads() == 1);
    throw std::runtime_error("a failing sweep point");
  } catch (const std::runtime_error&) {
  }
  CHECK(xgrad::threads() == 2);
  // A sweep whose points throw leaves the count as it found it.
  runge::DataSpec d;
  d.n = 30;
  const runge::SweepData data = runge::make_sweep_data(d, 0.2, 1);
  runge::SweepSpec s;
  s.train.epochs = 2;
  s.axes.activation = {"sigmoid", "no_such_activation"};
  s.jobs = 2;
  const ScratchDir dir("guard");
  CHECK_THROWS(runge::run_sweep(data, s, (dir / "g.csv").string()));
  CHECK(xgrad::threads() == 2);
  xgrad::set_threads(before);
}

TEST_CASE("cli: every experiment runs in --quick mode and writes its CSVs") {
  const ScratchDir dir("experiments");
  const Run r = run_cli(dir, "experiment all --quick --jobs 2 --out-dir res");
  CHECK(r.status == 0);
  CAPTURE(r.err);
  const fs::path res = dir / "res";
  CHECK(first_line(res / "fig1_sgd.csv") == runge::csv_header());
  CHECK(first_line(res / "table1.csv") == "mode,optimiser,layers,best_lr,best_mse,log10_lr");
  CHECK(line_count(res / "table1.csv") == 9);
  CHECK(first_line(res / "fig2_curves.csv") == "mode,optimiser,layers,lr,epoch,train_mse,test_mse");
  CHECK(first_line(res / "fig3_fit.csv") == "x,true,nn,ols12");
  CHECK(first_line(res / "fig4.csv") == runge::csv_header());
  CHECK(r.out.find("figure-4 experiment") != std::string::npos);
  CHECK(first_line(res / "fig5.csv") == runge::csv_header());
  CHECK(fs::exists(res / "fig6_l1.csv"));
  CHECK(fs::exists(res / "fig6_l2.csv"));
  CHECK(first_line(res / "cv_summary.csv") == "data_seed,model,folds,mean_mse,mean_r2,std_r2");
  CHECK(line_count(res / "cv_summary.csv") == 1 + 5 + 5);
  CHECK(first_line(res / "fresh_test.csv") ==
        "model,test_points,mse,mse_over_noise_floor,r2,mse_vs_true_function");
  // One development and one held-out draw: L0/L1/L2 winners, the prior, the averaged
  // network, three linear baselines and the true function for each.
  CHECK(line_count(res / "sparse_generalisation.csv") == 1 + 2 * (3 + 1 + 1 + 3 + 1));
  CHECK(first_line(res / "sparse_generalisation.csv").rfind("data_seed,model,", 0) == 0);
  {
    const std::string gen = slurp(res / "sparse_generalisation.csv");
    CHECK(gen.find("\n2025,ffnn_avg1se,") != std::string::npos);
    CHECK(gen.find("\n101,ffnn_avg1se,") != std::string::npos);
    CHECK(gen.find(",heldout\n") != std::string::npos);
  }
  CHECK(first_line(res / "sparse_avg_candidates.csv") ==
        "data_seed,set,activation,layers,nodes,epochs,seeds,cv_mse,cv_se,kept,log10_fresh_mse");
  CHECK(line_count(res / "sparse_avg_candidates.csv") == 1 + 2);
  CHECK(first_line(res / "franke_summary.csv") == "model,test_mse,test_r2");
  {
    const std::string grid = slurp(res / "franke_grid.csv");
    CHECK(grid.find("\n0,franke,") != std::string::npos);
    CHECK(grid.find(",sgd,relu,l2,1,128,10,") != std::string::npos);
  }
  // "CSV plus a figure": drawn into res/figures when python3-matplotlib is installed
  // (.ci/install-deps installs it), otherwise the command for later is printed.
  if (std::system("/usr/bin/python3 -c 'import matplotlib' >/dev/null 2>&1") == 0) {
    for (const char* png :
         {"runge-fig1-learning-rate.png", "runge-fig2-curves.png", "runge-fig3-fit.png",
          "runge-fig4-architecture.png", "runge-fig5-regularisation.png",
          "runge-fig6-architecture-regularised.png", "runge-cv-r2.png", "runge-sparse.png",
          "runge-franke.png"}) {
      CAPTURE(png);
      CHECK(fs::file_size(res / "figures" / png) > 1000);
    }
  } else {
    MESSAGE("/usr/bin/python3 has no matplotlib: only the skip message is checked");
    CHECK(r.out.find("figures: skipped") != std::string::npos);
  }
}

// ---- The values in the apps' CSV columns, not only their headers ----

TEST_CASE("cli: train's last curve row holds the train and test MSE it prints") {
  const ScratchDir dir("train_curve_values");
  const Run r =
      run_cli(dir, "train --points 80 --noise 0.2 --epochs 30 --nodes 8 --curve-every 10");
  REQUIRE(r.status == 0);
  const double train_mse = printed_after(line_starting(r.out, "train MSE"), "MSE");
  const double test_mse = printed_after(line_starting(r.out, "test  MSE"), "MSE");
  // Far enough apart at the printed precision that a swapped pair cannot pass.
  REQUIRE(std::fabs(train_mse - test_mse) > 4 * half_unit_6g(test_mse));
  const Csv curve = read_csv(dir / "runge_curve.csv");
  REQUIRE(curve.rows.size() == 3);
  CHECK(curve.rows[0].at("epoch") == "10");
  CHECK(curve.rows[2].at("epoch") == "30");
  // The last row is the trained model: the printed values are its MSEs rounded to %.6g
  // (the CSV's own 10 digits add at most 1e-9 of the value).
  const auto& last = curve.rows.back();
  CAPTURE(r.out);
  CHECK(std::fabs(number(last.at("train_mse")) - train_mse) <=
        half_unit_6g(train_mse) + 1e-9 * train_mse);
  CHECK(std::fabs(number(last.at("test_mse")) - test_mse) <=
        half_unit_6g(test_mse) + 1e-9 * test_mse);
}

TEST_CASE("cli: train --shards 2 gives the same file at 1 and 2 threads, and 1 shard's fit") {
  const ScratchDir dir("shards");
  const std::string run = "train --points 90 --epochs 40 --nodes 12,7 --layers 2 --lr 0.02";
  std::map<std::string, std::string> predictions;
  for (const std::string how : {"--shards 1", "--shards 2 --threads 1", "--shards 2 --threads 2"}) {
    const Run r = run_cli(dir, run + " " + how);
    REQUIRE(r.status == 0);
    CHECK(r.out.find(how.rfind("--shards 2", 0) == 0 ? ", shards 2" : ", shards 1") !=
          std::string::npos);
    predictions[how] = slurp(dir / "runge_predictions.csv");
  }
  // Threads never change the numbers of a sharded run.
  CHECK(predictions["--shards 2 --threads 1"] == predictions["--shards 2 --threads 2"]);
  // Two shards regroup the sums of one step: the same fit up to the last bits, which the
  // CSV's 10 digits may show.
  std::istringstream one(predictions["--shards 1"]), two(predictions["--shards 2 --threads 1"]);
  std::string a, b;
  std::size_t rows = 0;
  while (std::getline(one, a) && std::getline(two, b)) {
    if (rows++ == 0) continue;  // header
    const double pa = std::stod(a.substr(a.rfind(',', a.rfind(',') - 1) + 1));
    const double pb = std::stod(b.substr(b.rfind(',', b.rfind(',') - 1) + 1));
    CAPTURE(a);
    CAPTURE(b);
    CHECK(std::fabs(pa - pb) <= 1e-8 * std::max(1.0, std::fabs(pa)));
  }
  CHECK(rows == 1 + 90 + 401);
}

TEST_CASE(
    "cli: the predictions CSV holds each part's targets and predictions, scoring as printed") {
  const ScratchDir dir("train_prediction_values");
  const Run r = run_cli(dir, "train --points 80 --noise 0.2 --epochs 30 --nodes 8");
  REQUIRE(r.status == 0);
  const Csv p = read_csv(dir / "runge_predictions.csv");
  std::map<std::string, std::vector<double>> target, prediction;
  std::size_t grid = 0;
  for (const auto& row : p.rows) {
    const double x = number(row.at("x"));
    CAPTURE(row.at("x"));
    // x and the true function at x, with 10 digits each: |f'| <= 3.3 on [-1, 1], so
    // f(x) from the printed x is off by at most 2e-10, the printed f(x) by 5e-10 more.
    CHECK(std::fabs(number(row.at("true_function")) - runge::runge_function(x)) <= 1e-9);
    const std::string& part = row.at("part");
    if (part == "grid") {
      CHECK(std::fabs(x - (-1.0 + 2.0 * double(grid) / 400.0)) <= 1e-12);
      CHECK(row.at("target") == "nan");
      ++grid;
      continue;
    }
    target[part].push_back(number(row.at("target")));
    prediction[part].push_back(number(row.at("prediction")));
  }
  CHECK(grid == 401);
  CHECK(target["train"].size() == 64);
  CHECK(target["test"].size() == 16);
  for (const std::string part : {"train", "test"}) {
    CAPTURE(part);
    const auto& y = target[part];
    const auto& f = prediction[part];
    double mean = 0;
    for (double v : y)
      mean += v / double(y.size());
    double ss_res = 0, ss_tot = 0;
    for (std::size_t i = 0; i < y.size(); ++i) {
      ss_res += (f[i] - y[i]) * (f[i] - y[i]);
      ss_tot += (y[i] - mean) * (y[i] - mean);
    }
    const double mse = ss_res / double(y.size()), r2 = 1 - ss_res / ss_tot;
    // train prints MSE with %.6g and R2 with %.6f. Targets and predictions (|v| < 10)
    // carry 10 digits, so each residual is off by at most 1e-9: the MSE recomputed from
    // them by at most 2 * max|residual| * 1e-9 < 1e-8, the R2 by that over var(y) > 0.1.
    const std::string line = line_starting(r.out, part == "train" ? "train MSE" : "test  MSE");
    CAPTURE(line);
    const double printed_mse = printed_after(line, "MSE"), printed_r2 = printed_after(line, "R2");
    CHECK(std::fabs(mse - printed_mse) <= half_unit_6g(printed_mse) + 1e-8);
    CHECK(std::fabs(r2 - printed_r2) <= 0.5e-6 + 1e-7);
  }
}

TEST_CASE("cli: baseline rows hold each fit's train MSE, test MSE and test R2") {
  const ScratchDir dir("baseline_values");
  REQUIRE(run_cli(dir, "baseline --points 100 --degree 3,8 --lambda 1e-3 --out b.csv").status == 0);
  const Csv b = read_csv(dir / "b.csv");
  REQUIRE(b.rows.size() == 2 + 2 + 2);
  // The same split (the CLI's defaults: noise 0.05, data and split seed 44, 20% test)
  // and the same fits through the app's library, on one BLAS thread as the CLI.
  runge::DataSpec d;
  d.n = 100;
  const runge::SweepData data = runge::make_sweep_data(d, 0.2, 44);
  const runge::BlasThreadsGuard one(1);
  for (const auto& row : b.rows) {
    CAPTURE(row.at("method"));
    CAPTURE(row.at("degree"));
    const runge::LinearMethod method = runge::parse_linear_method(row.at("method"));
    const double lambda = method == runge::LinearMethod::OLS ? 0.0 : 1e-3;
    CHECK(number(row.at("lambda")) == lambda);
    const auto m = runge::fit_linear(data.split.train, method, std::stoi(row.at("degree")), lambda);
    const runge::Matrix test_prediction = m.predict(data.split.test.x);
    const double train_mse = runge::mse(m.predict(data.split.train.x), data.split.train.y);
    const double test_mse = runge::mse(test_prediction, data.split.test.y);
    const double test_r2 = runge::r2(test_prediction, data.split.test.y);
    CHECK(number(row.at("train_mse")) == ten_digits(train_mse));
    CHECK(number(row.at("test_mse")) == ten_digits(test_mse));
    CHECK(number(row.at("test_r2")) == ten_digits(test_r2));
    CHECK(row.at("converged") == (m.converged ? "1" : "0"));
  }
}

TEST_CASE("cli: a k-fold sweep row holds the mean and standard deviation of its folds' scores") {
  const ScratchDir dir("kfold_values");
  REQUIRE(run_cli(dir, "sweep --points 40 --epochs 10 --nodes 4 --eval kfold --folds 4 --out k.csv")
              .status == 0);
  const Csv csv = read_csv(dir / "k.csv");
  REQUIRE(csv.rows.size() == 1);
  const auto& row = csv.rows[0];
  // The settings assumed below are the CLI's defaults; the row says so.
  CHECK(row.at("noise") == "0.05");
  CHECK(row.at("data_seed") == "44");
  CHECK(row.at("optimiser") == "adam");
  CHECK(row.at("activation") == "sigmoid");
  CHECK(row.at("lr") == "0.01");
  CHECK(row.at("seed") == "1");
  CHECK(row.at("resample_seed") == "2024");
  CHECK(row.at("status") == "ok");
  // Each fold's network trained and scored through the app's library, on one BLAS
  // thread as a sweep's workers.
  runge::DataSpec d;
  d.n = 40;
  const runge::Dataset all = runge::generate(d);
  runge::ModelSpec model;
  model.hidden = {4};
  runge::TrainSpec train;
  train.epochs = 10;
  const runge::BlasThreadsGuard one(1);
  std::vector<double> mse, r2, train_mse;
  for (const auto& fold : runge::kfold_indices(all.size(), 4, 2024)) {
    const runge::Dataset tr = runge::subset(all, runge::complement(all.size(), fold));
    const runge::Dataset te = runge::subset(all, fold);
    const runge::TrainedModel m = runge::train_network(tr, nullptr, model, train);
    mse.push_back(runge::score(m, te).mse);
    r2.push_back(runge::score(m, te).r2);
    train_mse.push_back(runge::score(m, tr).mse);
  }
  const auto mean = [](const std::vector<double>& v) {
    double s = 0;
    for (double x : v)
      s += x;
    return s / double(v.size());
  };
  const auto sample_std = [&](const std::vector<double>& v) {
    double s = 0;
    for (double x : v)
      s += (x - mean(v)) * (x - mean(v));
    return std::sqrt(s / double(v.size() - 1));
  };
  CHECK(number(row.at("mse")) == ten_digits(mean(mse)));
  CHECK(number(row.at("mse_std")) == ten_digits(sample_std(mse)));
  CHECK(number(row.at("r2")) == ten_digits(mean(r2)));
  CHECK(number(row.at("r2_std")) == ten_digits(sample_std(r2)));
  CHECK(number(row.at("train_mse")) == ten_digits(mean(train_mse)));
  CHECK(number(row.at("log10_mse")) == ten_digits(std::log10(mean(mse))));
}

TEST_CASE("cli: each learning curve ends at the scores its sweep row recorded for that network") {
  // experiment curves trains, for each best rate of table1.csv, the network of that
  // fig1 sweep row again with a learning curve: same data, settings and seed, so its
  // last epoch must give that row's train MSE and test MSE.
  const ScratchDir dir("curves_values");
  const Run r = run_cli(dir, "experiment curves --quick --jobs 2 --no-figures --out-dir res");
  CAPTURE(r.err);
  REQUIRE(r.status == 0);
  const fs::path res = dir / "res";
  const Csv table = read_csv(res / "table1.csv");
  const Csv curves = read_csv(res / "fig2_curves.csv");
  REQUIRE(table.rows.size() == 8);
  for (const auto& best : table.rows) {
    const std::string mode = best.at("mode"), optimiser = best.at("optimiser"),
                      layers = best.at("layers"), lr = best.at("best_lr");
    CAPTURE(mode);
    CAPTURE(optimiser);
    CAPTURE(layers);
    CAPTURE(lr);
    REQUIRE(lr != "nan");
    std::map<std::string, std::string> point;
    for (const auto& row : read_csv(res / ("fig1_" + mode + ".csv")).rows)
      if (row.at("optimiser") == optimiser && row.at("layers") == layers && row.at("lr") == lr)
        point = row;
    REQUIRE(point.at("status") == "ok");
    std::vector<std::map<std::string, std::string>> curve;
    for (const auto& row : curves.rows)
      if (row.at("mode") == mode && row.at("optimiser") == optimiser &&
          row.at("layers") == layers && row.at("lr") == lr)
        curve.push_back(row);
    REQUIRE(curve.size() == 20);  // --quick: 20 epochs, a curve point each
    for (std::size_t e = 0; e < curve.size(); ++e)
      CHECK(curve[e].at("epoch") == std::to_string(e + 1));
    // Train and test differ, so a swapped pair cannot pass.
    CHECK(number(point.at("train_mse")) != ten_digits(number(point.at("mse"))));
    CHECK(number(curve.back().at("train_mse")) == ten_digits(number(point.at("train_mse"))));
    CHECK(number(curve.back().at("test_mse")) == ten_digits(number(point.at("mse"))));
    CHECK(number(best.at("best_mse")) == ten_digits(number(point.at("mse"))));
  }
}
