// What the named experiments share (one file per experiment group next to this one):
// the output folder and its CSVs, report 000's protocol, sweeps into the folder, seed
// ensembles and our best network for report 000's data. Internal to runge_core.
#pragma once

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "data.hpp"
#include "experiments.hpp"
#include "sweep.hpp"
#include "train.hpp"

namespace runge::experiment {

namespace fs = std::filesystem;
inline constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
inline constexpr std::uint64_t kSplitSeed = 44;  // report 000: train_test_split random_state 44

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

/// A number as the CSVs write it (10 significant digits, "nan").
std::string num(double v);
/// 10^a, 10^(a+step), ..., 10^b (report 000's log-spaced learning-rate axes).
std::vector<double> logspace(double a, double b, double step);
/// Opens OUT_DIR/file for writing and writes the header line; throws naming the path.
std::ofstream open_csv(const Context& c, const std::string& file, const std::string& header);
/// n equispaced points from a to b as one column.
Matrix linspace_column(double a, double b, std::size_t n);

// ---- report 000's protocol (§II.F, §III.A) ----
DataSpec report000_data();
ModelSpec report000_model(std::size_t layers, std::size_t nodes, const std::string& act);
/// Report 000's SGD: 5 minibatches of the 240 training points, the rate divided by the
/// number of batches and decayed as t1/(t + t1), t1 = 30 m (§III.A.1).
TrainSpec report000_sgd(std::size_t epochs);
TrainSpec report000_gd(std::size_t epochs);

/// run(0) ... run(tasks - 1) on the experiment's --jobs worker threads (0 = all cores),
/// BLAS single-threaded. Each task must write only its own results, so that they do not
/// depend on the number of workers or on timing. The first exception a task throws is
/// rethrown here once every worker is done (from a thread it would end the process).
void run_tasks(const Context& c, std::size_t tasks, const std::function<void(std::size_t)>& run);

/// Runs (or resumes) a sweep into OUT_DIR/file with the experiment's jobs, logging counts.
SweepStats sweep(const Context& c, const SweepData& data, const SweepSpec& spec,
                 const std::string& file);
/// The finished row with the lowest MSE, or nullptr when none finished.
const PointResult* best_of(const std::vector<PointResult>& rows);

/// The mean prediction of `members` networks that differ only in their seed: with 18
/// points the fit of one network depends on its initial weights as much as on the data,
/// and averaging removes that part of the variance.
Matrix ensemble_predict(const Dataset& train, const ModelSpec& m, const TrainSpec& t,
                        std::size_t members, const Matrix& x);

struct CvModel {
  std::string name;
  ModelSpec model;
  TrainSpec train;
};
/// Our network for report 000's data (cv.cpp), also the sparse study's prior.
CvModel our_best(const Context& c);

// The experiments, by file: report000.cpp (Figs. 1-6), cv.cpp, sparse.cpp, franke.cpp.
void learning_rate(const Context& c);
void curves(const Context& c);
void architecture(const Context& c);
void regularisation(const Context& c);
void cv(const Context& c);
void sparse(const Context& c);
void franke(const Context& c);

}  // namespace runge::experiment
