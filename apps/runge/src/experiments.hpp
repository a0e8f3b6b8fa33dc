// The named experiments: each reproduces one part of reports 000, 001 and 003 with one
// command and writes its CSVs into an output folder (the figures are drawn from them by
// apps/runge/plots/make_figures.py).
#pragma once

#include <functional>
#include <string>
#include <vector>

namespace runge {

struct ExperimentOptions {
  // Relative to the working directory; the committed copy is apps/runge/results.
  std::string out_dir = "runge-results";
  bool quick = false;    // tiny grids and few epochs: a smoke run for the tests
  std::size_t jobs = 0;  // sweep workers; 0 = all cores
  bool fresh = false;    // ignore CSVs of an earlier run instead of resuming them
  std::function<void(const std::string&)> log;
};

struct ExperimentInfo {
  std::string name;
  std::string summary;
};
/// The seven experiments of issue 4, in order.
const std::vector<ExperimentInfo>& experiments();

/// A cross-validated MSE: the mean of the squared errors of the held-out predictions and
/// its standard error (their population standard deviation over sqrt(count)).
struct CvScore {
  double mse = 0;
  double se = 0;
};
CvScore cv_score(const std::vector<double>& squared_errors);
/// The one-standard-error set of the sparse study's averaged network: the indices whose
/// MSE is at most the lowest MSE plus that lowest one's standard error, ascending.
/// Non-finite scores are never kept; empty when none is finite.
std::vector<std::size_t> within_one_se(const std::vector<CvScore>& scores);

/// Runs one experiment by name (throws std::invalid_argument naming an unknown one).
/// Returns the wall time in seconds.
double run_experiment(const std::string& name, const ExperimentOptions& options);

}  // namespace runge
