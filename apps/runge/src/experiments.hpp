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

/// Runs one experiment by name (throws std::invalid_argument naming an unknown one).
/// Returns the wall time in seconds.
double run_experiment(const std::string& name, const ExperimentOptions& options);

}  // namespace runge
