// Grid sweeps (report 000 Figs. 7-8): learning rate x lambda and layers x nodes, one
// CSV row per point, resumable, in parallel. Parallelism has one owner (../shared/DESIGN.md §6):
// BLAS runs single-threaded during every sweep (serial too) and the workers own the cores.
// Every point trains from its own seed with deterministic single-threaded kernels, so
// results do not depend on the number of workers or on the order points finish.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "study.hpp"

namespace xgrad::mnist {

struct SweepGrid {
  std::vector<double> learning_rates;     // empty: the recipe's
  std::vector<double> lambdas;            // empty: the recipe's
  std::vector<std::size_t> layer_counts;  // empty: the recipe's hidden layers
  std::vector<std::size_t> nodes;         // empty: the recipe's hidden layers
};

struct SweepPoint {
  double learning_rate = 0, lambda = 0;
  std::size_t layers = 0, nodes = 0;
  /// "lr,lambda,layers,nodes" with %.6g: the key a resumed sweep matches on.
  std::string key() const;
};

/// The data a sweep trains on, as its rows record it (with the recipe's settings), so that
/// a resumed sweep never reuses rows computed on other data or with other settings.
struct SweepDataInfo {
  std::string name;  // TrainTest::name: "MNIST", "Fashion-MNIST pooled 80/20" ...
  std::size_t train_images = 0, test_images = 0;
  std::uint64_t split_seed = 0;
  std::string dtype;  // float32 | float64
};

/// Every combination, in row-major order (lr slowest, nodes fastest). A grid value out
/// of range is a std::invalid_argument naming its option (--lrs, --lambdas).
std::vector<SweepPoint> grid_points(const Recipe& base, const SweepGrid& grid);
/// Refuses (std::invalid_argument naming --csv and the path) a CSV path that exists and
/// is not a regular file, such as a folder: it could not hold the rows.
void check_sweep_csv_path(const std::string& csv_path);
/// The recipe of one point (hidden = layers x nodes; l2 penalty when lambda > 0 and the
/// base has none).
Recipe point_recipe(const Recipe& base, const SweepPoint& point);

/// Runs the points whose key is not yet in `csv_path` (creating it with a header),
/// appending one row per finished point. Returns the number of points run now. Every
/// row records the settings it was computed with (the recipe's and `data`'s); a file
/// holding a row of other settings is refused before anything runs, naming the first
/// setting that differs. A point
/// whose training diverges is a row of NaNs; any other error (e.g. the CSV cannot be
/// written) stops the sweep and is rethrown. BLAS runs on 1 thread meanwhile; the
/// previous count is restored on return and on exceptions.
template <class T>
std::size_t run_sweep(const Recipe& base, const SweepGrid& grid, const Matrix<T>& x_train,
                      const std::vector<std::uint8_t>& y_train, const Matrix<T>& x_test,
                      const std::vector<std::uint8_t>& y_test, const SweepDataInfo& data,
                      const std::string& csv_path, std::size_t workers,
                      const std::function<void(const std::string&)>& log);

}  // namespace xgrad::mnist
