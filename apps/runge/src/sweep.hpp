// Grid sweeps: every combination of learning rate, penalty and lambda, hidden layers,
// nodes, activation, optimiser and batch size, evaluated by a hold-out split, k-fold
// cross-validation or bootstrap, run in parallel on std::threads.
//
// Threads rule (../shared/DESIGN.md §6): the sweep's workers own the cores, so BLAS is set to one
// thread before any worker starts; a run's numbers then depend only on its grid point
// and seed, and a parallel sweep writes byte for byte the CSV of a serial one.
//
// The CSV has one row per grid point, in grid order once the sweep ends; while it runs,
// finished points are appended as they come, so the file holds every row known so far. Every row
// names everything its numbers depend on (data, split, model, training and evaluation settings), so
// a CSV read on its own says what produced it. A sweep restarted on the same file reuses the rows
// whose settings are those of one of its grid points and runs the others; a file holding rows of
// other settings is refused, never overwritten.
#pragma once

#include <algorithm>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "data.hpp"
#include "split_commas.hpp"
#include "train.hpp"

namespace runge {

/// Refuses a value listed twice in one list option (as the CSV prints it): a grid or a
/// baseline would hold the same point twice.
template <class V, class Show>
void refuse_repeats(const std::vector<V>& values, const char* option, Show show) {
  std::vector<std::string> seen;
  for (const V& v : values) {
    const std::string text = show(v);
    if (std::find(seen.begin(), seen.end(), text) != seen.end())
      throw std::invalid_argument(std::string(option) + ": " + text + " is listed twice");
    seen.push_back(text);
  }
}

/// Sets the BLAS thread count for its lifetime and restores the previous count when it
/// goes out of scope, also when an exception unwinds through it (sweeps and the
/// cross-validation experiment run their own workers with BLAS at one thread).
class BlasThreadsGuard {
 public:
  explicit BlasThreadsGuard(int n);
  ~BlasThreadsGuard();
  BlasThreadsGuard(const BlasThreadsGuard&) = delete;
  BlasThreadsGuard& operator=(const BlasThreadsGuard&) = delete;
  int previous() const { return previous_; }

 private:
  int previous_;
};

/// "a,b,c" -> {a, b, c}, empty items kept ("50," -> {"50", ""}): CSV rows and list options.
using xgrad::apps::split_commas;

struct GridAxes {
  std::vector<std::string> optimiser = {"adam"};
  std::vector<std::string> activation = {"sigmoid"};
  std::vector<std::string> penalty = {"none"};
  std::vector<std::size_t> layers = {1};
  std::vector<std::size_t> nodes = {50};
  std::vector<std::size_t> batch_size = {0};
  std::vector<double> lambda = {0.0};
  std::vector<double> lr = {1e-2};
  std::size_t size() const;
  void validate() const;
};

struct GridPoint {
  std::size_t index = 0;
  std::string optimiser, activation, penalty;
  std::size_t layers = 1, nodes = 50, batch_size = 0;
  double lambda = 0, lr = 0;
};
/// Grid order: optimiser, activation, penalty, layers, nodes, batch size, lambda, lr
/// (the learning rate varies fastest). Combinations that would repeat another point
/// under a different label are left out: gd always steps on the full batch, so its
/// points take batch size 0 only, and penalty none takes lambda 0 only (both are added
/// when the axes lack them).
std::vector<GridPoint> expand(const GridAxes& axes);

enum class Evaluation { Holdout, KFold, Bootstrap };
Evaluation parse_evaluation(const std::string& text);
const char* evaluation_name(Evaluation e);

/// How a sweep's data were made: written into every row of its CSV.
struct DataSettings {
  DataSpec spec;
  double test_fraction = 0.2;
  std::uint64_t split_seed = 44;
};

/// What a sweep evaluates each point on.
struct SweepData {
  Dataset full;  // every generated point (k-fold splits this)
  Split split;   // hold-out: train on split.train, score on split.test; bootstrap
                 // resamples split.train and scores on split.test
  DataSettings settings;
};
/// Generates the data of `spec` and splits it (test_fraction held out, split_seed).
SweepData make_sweep_data(const DataSpec& spec, double test_fraction, std::uint64_t split_seed);

struct SweepSpec {
  GridAxes axes;
  ModelSpec model;  // hidden/activation are overwritten by each grid point
  TrainSpec train;  // optimiser/lr/penalty/lambda/batch size likewise
  Evaluation evaluation = Evaluation::Holdout;
  std::size_t folds = 5;
  std::size_t bootstraps = 20;
  std::uint64_t resample_seed = 2024;
  std::size_t jobs = 0;  // worker threads; 0 = all cores
  /// --fresh: start over. The CSV is deleted (only a sweep CSV: see remove_sweep_file)
  /// under the same lock the sweep then holds, so no other run can write in between.
  bool fresh = false;
};

struct PointResult {
  GridPoint point;
  std::string status;  // ok, diverged
  double mse = 0, mse_std = 0, r2 = 0, r2_std = 0, train_mse = 0;
};

/// Evaluates one grid point (deterministic in the point and the spec's seeds).
PointResult evaluate_point(const GridPoint& p, const SweepData& data, const SweepSpec& spec);

/// The CSV header line (without newline).
std::string csv_header();
/// One CSV row (without newline). Settings that do not apply to the evaluation (folds
/// outside kfold, the split outside holdout and bootstrap, ...) are left empty.
std::string csv_row(const PointResult& r, const SweepSpec& spec, const DataSettings& data);

struct SweepStats {
  std::size_t points = 0;
  std::size_t reused = 0;  // rows found in an existing CSV (resume)
  std::size_t run = 0;
  std::size_t diverged = 0;  // of all points, reused ones included
  double seconds = 0;
};

/// Throws std::invalid_argument naming the option when a setting of the grid is
/// impossible (run_sweep checks the same first). Returns the grid's points.
std::vector<GridPoint> checked_grid(const SweepData& data, const SweepSpec& spec);
/// Throws std::invalid_argument naming --out when `csv_path` exists and is not a regular
/// file (a folder, a device, a pipe): the CSV is rewritten by replacing it (run_sweep
/// checks the same first).
void check_sweep_out(const std::string& csv_path);

/// Runs every grid point missing from `csv_path` and leaves the full, ordered CSV there.
/// Throws, before running anything, when `csv_path` exists but is not a sweep CSV of this
/// version, or holds rows that are not points of this grid (naming the settings that
/// differ): such a file is left as it is. `stop_after` (tests only) stops after that many newly
/// finished points, as if the process had been interrupted. Progress lines go to `log` when given.
SweepStats run_sweep(const SweepData& data, const SweepSpec& spec, const std::string& csv_path,
                     std::size_t stop_after = 0,
                     const std::function<void(const std::string&)>& log = {});

/// Reads a sweep CSV back (for experiments that pick winners).
std::vector<PointResult> read_sweep_csv(const std::string& csv_path);

/// Deletes `path` when it is a regular file that is empty or starts with the header of a
/// sweep CSV of any version; throws, deleting nothing, for anything else (a folder, an
/// unreadable file, someone's notes). A missing file is fine. The caller holds the
/// file's lock (run_sweep with SweepSpec::fresh does).
void remove_sweep_file(const std::string& path);

}  // namespace runge
