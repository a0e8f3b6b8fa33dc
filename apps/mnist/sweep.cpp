#include "sweep.hpp"

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <mutex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "file_lock.hpp"
#include "output_file.hpp"
#include "split_commas.hpp"
#include "xgrad/threads.hpp"

namespace xgrad::mnist {

using apps::split_commas;

namespace {
// The grid key (4 columns), the recipe settings before the results (5), the results (4),
// then the data and the other settings (11): everything a row's numbers depend on.
const char* kHeader =
    "learning_rate,lambda,layers,nodes,seed,epochs,batch_size,activation,optimiser,"
    "test_accuracy,test_loss,train_batch_loss,seconds,data,train_images,test_images,split_seed,"
    "dtype,init,lr_decay,schedule,penalty,dropout,input_dropout";
constexpr std::size_t kKeyColumns = 4, kResultBegin = 9, kResultEnd = 13, kColumns = 24;

// BLAS single-threaded for the sweep's lifetime, the previous count restored on every
// exit (exceptions included). Serial sweeps too: then a sweep's numbers do not depend
// on the number of workers.
class SingleThreadedBlas {
 public:
  SingleThreadedBlas() : saved_(threads()) { set_threads(1); }
  ~SingleThreadedBlas() { set_threads(saved_); }
  SingleThreadedBlas(const SingleThreadedBlas&) = delete;
  SingleThreadedBlas& operator=(const SingleThreadedBlas&) = delete;

 private:
  int saved_;
};

std::string fmt(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

/// A field without commas (an optimiser or schedule text may hold some): ',' -> ';'.
std::string field(std::string text) {
  for (char& c : text)
    if (c == ',') c = ';';
  return text;
}

/// The settings columns of a point's row: 5 before the results and 11 after them.
std::pair<std::string, std::string> settings_fields(const Recipe& r, const SweepDataInfo& d) {
  std::ostringstream before, after;
  before << r.seed << "," << r.epochs << "," << r.batch_size << "," << field(r.activation) << ","
         << field(r.optimiser);
  after << field(d.name) << "," << d.train_images << "," << d.test_images << "," << d.split_seed
        << "," << d.dtype << "," << field(r.init) << "," << fmt(r.lr_decay) << ","
        << field(r.schedule) << "," << r.penalty << "," << fmt(r.dropout) << ","
        << fmt(r.input_dropout);
  return {before.str(), after.str()};
}
/// An interrupted append leaves a last line without '\n'. Resuming skips it; cutting it
/// off here makes the rows appended next start on a line of their own (appended to the
/// fragment, they made one line of 28 fields that the next resume refused).
/// Returns the number of bytes dropped.
std::size_t drop_cut_last_line(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return 0;
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (text.empty() || text.back() == '\n') return 0;
  const std::size_t last_newline = text.find_last_of('\n');
  const std::size_t keep = last_newline == std::string::npos ? 0 : last_newline + 1;
  std::filesystem::resize_file(path, keep);
  return text.size() - keep;
}

}  // namespace

std::string SweepPoint::key() const {
  return fmt(learning_rate) + "," + fmt(lambda) + "," + std::to_string(layers) + "," +
         std::to_string(nodes);
}

void check_sweep_csv_path(const std::string& csv_path) {
  xgrad::apps::check_output_file(csv_path, "--csv");
}

std::vector<SweepPoint> grid_points(const Recipe& base, const SweepGrid& grid) {
  // A grid value is checked here under its own option's name (a point's recipe would
  // name --lr or --lambda, which the command line may not have).
  for (double lr : grid.learning_rates)
    if (!(lr > 0 && std::isfinite(lr)))
      throw std::invalid_argument("--lrs: " + fmt(lr) +
                                  " is not a learning rate (each must be a finite number > 0)");
  for (double lambda : grid.lambdas)
    if (!(lambda >= 0 && std::isfinite(lambda)))
      throw std::invalid_argument("--lambdas: " + fmt(lambda) +
                                  " is not a strength (each must be a finite number >= 0)");
  const std::size_t base_nodes = base.hidden.empty() ? 0 : base.hidden.front();
  // A point is layers x nodes of one size (the CSV has one nodes column), so --layers
  // must be of one size where a grid axis takes its count or size from it.
  const bool uses_base = grid.layer_counts.empty() || grid.nodes.empty();
  for (std::size_t h : base.hidden)
    if (uses_base && h != base_nodes) {
      std::string sizes;
      for (std::size_t s : base.hidden)
        sizes += (sizes.empty() ? "" : " ") + std::to_string(s);
      throw std::invalid_argument("sweep: --layers " + sizes +
                                  " has unequal sizes; a sweep point is a number of layers "
                                  "of one size (--layers N N, --layer-counts, --node-counts)");
    }
  const auto lrs =
      grid.learning_rates.empty() ? std::vector<double>{base.learning_rate} : grid.learning_rates;
  const auto lambdas = grid.lambdas.empty() ? std::vector<double>{base.lambda} : grid.lambdas;
  const auto counts =
      grid.layer_counts.empty() ? std::vector<std::size_t>{base.hidden.size()} : grid.layer_counts;
  const auto nodes = grid.nodes.empty() ? std::vector<std::size_t>{base_nodes} : grid.nodes;
  std::vector<SweepPoint> points;
  for (double lr : lrs)
    for (double lambda : lambdas)
      for (std::size_t c : counts)
        // 0 hidden layers is softmax regression, which has no nodes: one point (nodes 0),
        // not the same model once per node count.
        for (std::size_t n : c == 0 ? std::vector<std::size_t>{0} : nodes)
          points.push_back({lr, lambda, c, n});
  // A row is found again by its key, which writes numbers to 6 digits: two values that
  // agree there would be two runs under one key (a resume could not tell them apart).
  std::set<std::string> keys;
  for (const SweepPoint& p : points) {
    if (!keys.insert(p.key()).second) {
      throw std::invalid_argument(
          "sweep: two grid points share the CSV key " + p.key() +
          " (learning rate, lambda, layers, nodes; numbers to 6 significant digits): give "
          "--lrs and --lambdas values that differ within 6 digits");
    }
  }
  return points;
}

Recipe point_recipe(const Recipe& base, const SweepPoint& p) {
  Recipe r = base;
  r.learning_rate = p.learning_rate;
  r.lambda = p.lambda;
  if (p.lambda > 0 && r.penalty == "none") r.penalty = "l2";
  r.hidden.assign(p.layers, p.nodes);
  r.eval_train = false;  // a sweep reports test accuracy; the train pass would cost 1/3 more
  return r;
}

template <class T>
std::size_t run_sweep(const Recipe& base, const SweepGrid& grid, const Matrix<T>& x_train,
                      const std::vector<std::uint8_t>& y_train, const Matrix<T>& x_test,
                      const std::vector<std::uint8_t>& y_test, const SweepDataInfo& data,
                      const std::string& csv_path, std::size_t workers,
                      const std::function<void(const std::string&)>& log) {
  const std::vector<SweepPoint> all = grid_points(base, grid);
  for (const SweepPoint& p : all)
    point_recipe(base, p).validate();  // fail before any work
  check_sweep_csv_path(csv_path);      // before the lock file is made next to it
  // From reading the rows to the last append, no other run may write the file.
  const xgrad::apps::FileLock lock(csv_path, "--csv");
  std::set<std::string> done;
  {
    std::ifstream in(csv_path);
    std::string line;
    if (in && std::getline(in, line)) {
      if (line != kHeader)
        throw std::runtime_error(csv_path +
                                 ": not a sweep CSV of this version (header differs); choose "
                                 "another --csv or remove it");
      const std::vector<std::string> names = split_commas(kHeader);
      while (std::getline(in, line)) {
        if (in.eof()) break;  // a last line without '\n' was cut by an interruption
        const std::vector<std::string> f = split_commas(line);
        if (f.size() != kColumns) {
          throw std::runtime_error(csv_path + ": a row of " + std::to_string(f.size()) +
                                   " fields instead of " + std::to_string(kColumns) + " (" +
                                   line.substr(0, 60) + "...)");
        }
        // The settings this run would write for the row's grid point must be the row's.
        SweepPoint p;
        try {
          p = {std::stod(f[0]), std::stod(f[1]), std::stoul(f[2]), std::stoul(f[3])};
        } catch (const std::exception&) {
          throw std::runtime_error(csv_path + ": a row whose grid point is not numbers (" +
                                   line.substr(0, 60) + "...)");
        }
        const auto [before, after] = settings_fields(point_recipe(base, p), data);
        const std::vector<std::string> want_before = split_commas(before),
                                       want_after = split_commas(after);
        for (std::size_t c = kKeyColumns; c < kColumns; ++c) {
          if (c >= kResultBegin && c < kResultEnd) continue;
          const std::string& want =
              c < kResultBegin ? want_before[c - kKeyColumns] : want_after[c - kResultEnd];
          if (f[c] != want) {
            throw std::runtime_error(csv_path + " holds rows of other settings (" + names[c] + " " +
                                     f[c] + " in the file, " + want +
                                     " now); choose another --csv or remove it");
          }
        }
        done.insert(p.key());
      }
    }
  }
  std::vector<SweepPoint> todo;
  for (const SweepPoint& p : all)
    if (!done.count(p.key())) todo.push_back(p);
  if (log)
    log(std::to_string(all.size()) + " grid points, " + std::to_string(all.size() - todo.size()) +
        " already in " + csv_path + ", " + std::to_string(todo.size()) + " to run on " +
        std::to_string(workers) + " worker(s)");
  if (todo.empty()) return 0;
  const bool fresh = done.empty() && !std::ifstream(csv_path).good();
  if (const std::size_t dropped = drop_cut_last_line(csv_path); dropped > 0 && log)
    log("dropped the last line of " + csv_path + " (" + std::to_string(dropped) +
        " bytes without a line end: a row cut by an interruption)");
  std::ofstream out(csv_path, std::ios::app);
  if (!out) throw std::runtime_error(csv_path + ": cannot open for writing");
  if (fresh || std::ifstream(csv_path).peek() == EOF) out << kHeader << "\n" << std::flush;
  if (!out) throw std::runtime_error(csv_path + ": cannot write");

  workers = std::max<std::size_t>(1, std::min(workers, todo.size()));
  const SingleThreadedBlas single_threaded;  // the workers own the cores
  std::atomic<std::size_t> next{0};
  std::mutex mutex;  // guards out, log and error
  std::exception_ptr error;
  auto work = [&] {
    for (;;) {
      const std::size_t i = next++;
      if (i >= todo.size()) return;
      {
        std::lock_guard<std::mutex> lock(mutex);
        if (error) return;
      }
      const SweepPoint& p = todo[i];
      const Recipe r = point_recipe(base, p);
      std::vector<EpochRecord> history;
      std::ostringstream row;
      std::string diverged;
      const auto t0 = std::chrono::steady_clock::now();
      try {
        train<T>(r, x_train, y_train, x_test, y_test, Callbacks{}, &history);
        const double s =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        const EpochRecord& last = history.back();
        const auto [before, after] = settings_fields(r, data);
        row << p.key() << "," << before << "," << fmt(last.test_accuracy) << ","
            << fmt(last.test_loss) << "," << fmt(last.batch_loss) << "," << fmt(s) << "," << after;
      } catch (const TrainingDiverged& e) {
        // A diverged point is a result (report 000 Fig. 7 has them), not a failed sweep.
        // Any other error (I/O, memory, a bug) stops the sweep below.
        const double s =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        const auto [before, after] = settings_fields(r, data);
        row << p.key() << "," << before << ",nan,nan,nan," << fmt(s) << "," << after;
        diverged = e.what();
      } catch (...) {
        std::lock_guard<std::mutex> lock(mutex);
        if (!error) error = std::current_exception();
        return;
      }
      std::lock_guard<std::mutex> lock(mutex);
      if (error) return;
      out << row.str() << "\n" << std::flush;
      if (!out) {
        error = std::make_exception_ptr(
            std::runtime_error(csv_path + ": cannot write the row of point " + p.key()));
        return;
      }
      if (log && !diverged.empty()) log("point " + p.key() + ": " + diverged);
      if (log) log("done " + row.str());
    }
  };
  std::vector<std::thread> pool;
  for (std::size_t w = 1; w < workers; ++w)
    pool.emplace_back(work);
  work();
  for (auto& t : pool)
    t.join();
  if (error) std::rethrow_exception(error);
  return todo.size();
}

template std::size_t run_sweep<float>(const Recipe&, const SweepGrid&, const Matrix<float>&,
                                      const std::vector<std::uint8_t>&, const Matrix<float>&,
                                      const std::vector<std::uint8_t>&, const SweepDataInfo&,
                                      const std::string&, std::size_t,
                                      const std::function<void(const std::string&)>&);
template std::size_t run_sweep<double>(const Recipe&, const SweepGrid&, const Matrix<double>&,
                                       const std::vector<std::uint8_t>&, const Matrix<double>&,
                                       const std::vector<std::uint8_t>&, const SweepDataInfo&,
                                       const std::string&, std::size_t,
                                       const std::function<void(const std::string&)>&);

}  // namespace xgrad::mnist
