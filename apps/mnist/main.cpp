// mnist: the digit-classification study of the reports on xgrad, one command each for
// training, evaluation, prediction and sweeps. `mnist` alone trains the default recipe.
#include <sys/resource.h>
#include <unistd.h>

#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <new>
#include <optional>
#include <sstream>
#include <thread>

#include "cli_checks.hpp"
#include "idx.hpp"
#include "study.hpp"
#include "sweep.hpp"
#include "xgrad/threads.hpp"

namespace fs = std::filesystem;
using namespace xgrad::mnist;

#ifdef XGRAD_MNIST_HAVE_PNG
constexpr const char* kImageHelp =
    "28x28 PGM (P2/P5) or PNG file (told apart by content); dark-on-light drawings are inverted";
#else
constexpr const char* kImageHelp =
    "28x28 PGM (P2/P5) file (this build has no libpng); dark-on-light drawings are inverted";
#endif

namespace {

const char* kFashionDir = "/usr/share/datasets/fashion-mnist";
const char* kMnistFiles =
    "train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], "
    "t10k-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz]";

std::string default_data_dir() {
  const char* env = std::getenv("XGRAD_MNIST_DIR");
  return env && *env ? env : "data/mnist";
}

bool data_dir_from_env() {
  const char* env = std::getenv("XGRAD_MNIST_DIR");
  return env && *env;
}

// Upper bound of the count options (images, rows written): far above any real use,
// low enough that a negative number wrapped to a huge one cannot slip through.
constexpr long long kMaxCount = 1'000'000'000;

using xgrad::apps::kIsNumber;
using xgrad::apps::kIsWhole;
using xgrad::apps::kNotNegative;

struct DataOptions {
  std::string dataset = "auto";
  std::string dir = default_data_dir();
  // --data (or $XGRAD_MNIST_DIR) named the folder: a folder without MNIST is then an
  // error, never a silent switch to Fashion-MNIST.
  bool dir_from_env = data_dir_from_env();
  const CLI::Option* dir_option = nullptr;
  bool dir_explicit() const { return dir_from_env || (dir_option && dir_option->count() > 0); }
  std::string fashion_dir = kFashionDir;
  const CLI::Option* fashion_option = nullptr;
  // evaluate/predict: the run.txt whose "data folder:" line gave dir or fashion_dir.
  std::string folder_from;
  std::string protocol = "standard";
  double test_fraction = 0.2;
  std::uint64_t split_seed = 42;
  std::size_t train_limit = 0;
  std::size_t test_limit = 0;
  std::size_t validation = 0;  // held-out training images scored instead of the test set
  // train and sweep: when the default folder lacks MNIST, `auto` announces it and uses
  // Fashion-MNIST. evaluate and predict never switch: a model is scored on the data set
  // it was trained on (model_data: its run.txt) or on the one --dataset names.
  bool fallback = true;
  // Why --dataset is what it is when the model's run.txt chose it (for messages).
  std::string chosen_by;
  // evaluate/predict: run.txt's "data set:" line, what the model was trained on.
  std::string trained_on;
  /// What the scored set is called in output ("test", or "validation" with --validation).
  std::string scored() const { return validation ? "validation" : "test"; }
};

/// `of_model`: the options of evaluate and predict, which score a saved model.
void add_data_options(CLI::App* app, DataOptions& d, bool of_model = false) {
  app->add_option("--dataset", d.dataset,
                  of_model ? "mnist, fashion-mnist, or auto: the data set the run.txt next to "
                             "--model names, else MNIST from --data (never a switch to "
                             "Fashion-MNIST on its own)"
                           : "mnist, fashion-mnist, or auto: MNIST from --data; when --data is "
                             "not given and the default folder lacks MNIST, say so and use "
                             "Fashion-MNIST")
      ->check(CLI::IsMember({"auto", "mnist", "fashion-mnist"}))
      ->capture_default_str();
  d.dir_option = app->add_option("--data", d.dir,
                                 "folder with the four MNIST IDX files (raw or .gz); "
                                 "$XGRAD_MNIST_DIR overrides the default")
                     ->capture_default_str();
  d.fashion_option =
      app->add_option("--fashion-dir", d.fashion_dir,
                      "folder with Fashion-MNIST (Debian package dataset-fashion-mnist)")
          ->capture_default_str();
  app->add_option("--protocol", d.protocol,
                  "standard: 60,000 train / 10,000 test; pooled: the reports' 70,000 pooled "
                  "and split by --test-fraction with --split-seed")
      ->check(CLI::IsMember({"standard", "pooled"}))
      ->capture_default_str();
  app->add_option("--test-fraction", d.test_fraction, "test share of the pooled protocol")
      ->check(kIsNumber)
      ->check(CLI::Range(0.01, 0.99))
      ->capture_default_str();
  app->add_option("--split-seed", d.split_seed, "seed of the pooled split")
      ->check(kNotNegative)
      ->capture_default_str();
  app->add_option("--train-limit", d.train_limit,
                  "use only the first N training images (0 = all; for quick runs)")
      ->check(kIsWhole)
      ->check(CLI::Range(0LL, kMaxCount))
      ->capture_default_str();
  app->add_option("--test-limit", d.test_limit,
                  "use only the first N test images (with --validation: held-out images; 0 = all)")
      ->check(kIsWhole)
      ->check(CLI::Range(0LL, kMaxCount))
      ->capture_default_str();
  app->add_option("--validation", d.validation,
                  "hold out N training images (drawn with --split-seed) and score on them "
                  "instead of the test set, which is then not used: for choosing a recipe "
                  "without looking at the test set (0 = off). To evaluate a model trained "
                  "this way, give evaluate the same --validation and --split-seed: the "
                  "model file does not record them")
      ->check(kIsWhole)
      ->check(CLI::Range(0LL, kMaxCount))
      ->capture_default_str();
}

// Every line names the data set, so a log can never be mistaken for the other one.
struct Say {
  std::string name;
  void operator()(const std::string& line) const {
    std::cout << "[" << name << "] " << line << std::endl;
  }
};

TrainTest load_data(const DataOptions& d, Say& say) {
  const std::string mnist_how =
      "Get it with `apps/mnist/download_mnist.sh " + d.dir +
      "` (downloads and checks md5; needs network), or pass --data DIR with the files " +
      kMnistFiles + ".";
  const std::string fashion_how =
      "Install it with `apt install dataset-fashion-mnist` or pass --fashion-dir DIR.";
  // A folder without the data set is a usage error (exit 2), whichever option named it;
  // a damaged file inside is not (exit 1, from load_dir).
  const auto require_in = [&d](const std::string& dir, const std::string& option,
                               const std::string& name, const std::string& how) {
    if (find_file(dir, "train-images-idx3-ubyte").empty())
      throw std::invalid_argument(option + ": " + name + " is not in '" + dir +
                                  "' (no train-images-idx3-ubyte[.gz])" +
                                  (d.chosen_by.empty() ? "" : ", and " + d.chosen_by) + ". " + how);
  };
  // The MNIST folder came from --data, or else from $XGRAD_MNIST_DIR, or is the default.
  const std::string dir_source = !d.folder_from.empty() ? d.folder_from
                                 : d.dir_from_env && !(d.dir_option && d.dir_option->count())
                                     ? "$XGRAD_MNIST_DIR"
                                     : "--data";
  TrainTest t;
  if (d.dataset == "mnist") {
    require_in(d.dir, dir_source, "MNIST", mnist_how);
    t = load_dir(d.dir, "MNIST", mnist_how);
  } else if (d.dataset == "fashion-mnist") {
    require_in(d.fashion_dir, d.folder_from.empty() ? "--fashion-dir" : d.folder_from,
               "Fashion-MNIST", fashion_how);
    t = load_dir(d.fashion_dir, "Fashion-MNIST", fashion_how);
  } else if (!find_file(d.dir, "train-images-idx3-ubyte").empty()) {
    t = load_dir(d.dir, "MNIST", mnist_how);
  } else if (d.dir_explicit()) {
    // A folder the user named: a typo must not quietly train on the other data set.
    throw std::invalid_argument(dir_source + ": MNIST is not in '" + d.dir +
                                "' (no train-images-idx3-ubyte[.gz]). " + mnist_how +
                                " Or pass --dataset fashion-mnist for Fashion-MNIST.");
  } else if (!d.fallback) {
    // evaluate and predict: a model scored on another data set than its own gives a
    // meaningless accuracy (and would overwrite its run's CSVs with it).
    throw std::invalid_argument(
        "--dataset: MNIST is not in '" + d.dir + "' (no train-images-idx3-ubyte[.gz]) and " +
        (d.chosen_by.empty() ? std::string("nothing tells which data set the model was trained "
                                           "on (no run.txt next to it)")
                             : d.chosen_by) +
        "; this command does not switch data sets on its own. " + mnist_how +
        " For a Fashion-MNIST model pass --dataset fashion-mnist.");
  } else {
    // Not silent: the substitution is announced (on stderr too, so it shows when stdout
    // goes to a file), and every later line names the set.
    const std::string notice = "[Fashion-MNIST] MNIST is not in '" + d.dir +
                               "' (no train-images-idx3-ubyte[.gz]). " + mnist_how +
                               "\n[Fashion-MNIST] Training on Fashion-MNIST from " + d.fashion_dir +
                               " instead; use --dataset mnist to make a missing MNIST an error.";
    std::cout << notice << std::endl;
    std::cerr << notice << std::endl;
    t = load_dir(d.fashion_dir, "Fashion-MNIST", fashion_how);
  }
  say.name = t.name;
  if (d.protocol == "pooled") {
    t = pooled_split(t, d.test_fraction, d.split_seed);
    say.name = t.name;
  }
  if (d.validation) {
    t = validation_split(t, d.validation, d.split_seed);
    say.name = t.name;
  }
  if (d.train_limit) t.train = head(t.train, d.train_limit);
  if (d.test_limit) t.test = head(t.test, d.test_limit);
  say(std::to_string(t.train.size()) + " training and " + std::to_string(t.test.size()) + " " +
      d.scored() + " images (" + d.protocol + " protocol)");
  return t;
}

/// sweep: a sweep's grid, whose --lambdas are checked against --penalty and --lambda, and
/// whose axes may leave --layers unused.
void add_recipe_options(CLI::App* app, Recipe& r, std::string& dtype, int& threads,
                        const SweepGrid* sweep = nullptr) {
  CLI::Option* layers =
      app->add_option("--layers", r.hidden,
                      "hidden layer sizes, e.g. --layers 256 or --layers 100 100 100")
          ->expected(1, 64)
          ->check(kIsWhole)
          ->check(CLI::Range(1.0, 100000.0))
          ->default_str("512 512");
  app->add_flag_callback(
         "--logistic", [&r] { r.hidden.clear(); },
         "no hidden layer: softmax (multinomial logistic) regression, same trainer")
      ->excludes(layers);
  app->add_option(
         "--activation", r.activation,
         "hidden activation: sigmoid, tanh, relu, leaky_relu[:alpha], elu[:alpha], identity")
      ->capture_default_str();
  app->add_option("--init", r.init,
                  "weights: standard_normal, normal:SIGMA, glorot_uniform, glorot_normal, "
                  "he_normal, he_uniform (default: he_normal for relu-like, else glorot_uniform)");
  app->add_option(
         "--optimiser,--optimizer", r.optimiser,
         "gd, sgd, momentum, adagrad, rmsprop, adam, with options: "
         "'rmsprop:rho=0.9', 'momentum:momentum=0.9', 'adam:beta1=0.9,beta2=0.999,eps=1e-8'; "
         "an lr= here is the learning rate (then give no --lr, --lrs or --schedule)")
      ->capture_default_str();
  const CLI::Option* lr = app->add_option("--lr", r.learning_rate,
                                          "initial learning rate (decays by --lr-decay per epoch)")
                              ->capture_default_str();
  const CLI::Option* lr_decay =
      app->add_option("--lr-decay", r.lr_decay,
                      "learning rate = --lr x DECAY^epoch; 1 keeps it constant")
          ->check(kIsNumber)
          ->check(CLI::Range(1e-6, 1.0))
          ->capture_default_str();
  app->add_option("--schedule", r.schedule,
                  "learning-rate schedule, replaces --lr and --lr-decay (give neither): "
                  "constant:ETA, exponential:ETA,GAMMA (per epoch), step:ETA,DROP,EVERY, "
                  "epoch_decay:ETA, inverse_time:T0,T1");
  // The learning rate has one source: --lr (with --lr-decay), a sweep's --lrs, the
  // optimiser text's lr=, or --schedule. Two of them given are a contradiction, refused
  // naming both; the one given becomes r.learning_rate, so that the recipe line,
  // run.txt and the sweep CSV print the rate that trains. (A text nn refuses is left to
  // Recipe::validate, which names its option.)
  auto one_learning_rate = [&r, lr, lr_decay, sweep] {
    const bool grid = sweep && !sweep->learning_rates.empty();
    std::optional<double> optimiser_lr;
    try {
      optimiser_lr = optimiser_learning_rate(r.optimiser);
    } catch (const std::invalid_argument&) {
    }
    const std::string optimiser = "--optimiser '" + r.optimiser + "'";
    const std::string schedule = "--schedule '" + r.schedule + "'";
    if (optimiser_lr) {
      if (lr->count() > 0)
        throw CLI::ValidationError(optimiser + " and --lr both set the learning rate: give one");
      if (grid)
        throw CLI::ValidationError(optimiser +
                                   " sets the learning rate and --lrs sweeps it: give one");
      if (!r.schedule.empty())
        throw CLI::ValidationError(optimiser + " sets lr= and " + schedule +
                                   " replaces it: give one");
      r.learning_rate = *optimiser_lr;
    }
    if (!r.schedule.empty()) {
      for (const CLI::Option* given : {lr, lr_decay})
        if (given->count() > 0)
          throw CLI::ValidationError(schedule + " and " + given->get_name() +
                                     ": give one (--schedule replaces --lr and --lr-decay)");
      if (grid)
        throw CLI::ValidationError(schedule +
                                   " and --lrs: give one (--schedule replaces the learning "
                                   "rates of the grid)");
      try {
        r.learning_rate = schedule_first_rate(r.schedule);
      } catch (const std::invalid_argument&) {
      }
    }
    if (grid && lr->count() > 0)
      throw CLI::ValidationError("--lr and --lrs: give one (--lrs replaces --lr)");
  };
  CLI::Option* penalty =
      app->add_option("--penalty", r.penalty,
                      "regularisation: none, l1 (lambda*sum|W|), l2 (lambda*sum W^2), weights "
                      "only; report 001's lambda/(2n) convention = its lambda / (2 n) here")
          ->check(CLI::IsMember({"none", "l1", "l2"}))
          ->capture_default_str();
  CLI::Option* lambda =
      app->add_option("--lambda", r.lambda,
                      "regularisation strength (with no --penalty, a lambda > 0 means l2, as in "
                      "the reports)")
          ->check(kNotNegative)
          ->capture_default_str();
  // A lambda must act: report 000's lambda is an L2 one, so that is the penalty unless
  // --penalty names another (a sweep's --lambdas points get it in point_recipe);
  // `--penalty none` with a lambda > 0, or l1/l2 with none, is a contradiction. A sweep's
  // --lambdas replace --lambda, so the two together are refused.
  auto one_lambda = [&r, penalty, lambda, sweep] {
    const std::vector<double>* grid_lambdas = sweep ? &sweep->lambdas : nullptr;
    const bool grid = grid_lambdas && !grid_lambdas->empty();
    if (grid && lambda->count() > 0)
      throw CLI::ValidationError("--lambda and --lambdas: give one (--lambdas replaces --lambda)");
    double largest = r.lambda;
    if (grid) largest = *std::max_element(grid_lambdas->begin(), grid_lambdas->end());
    if (largest == 0) {
      if (r.penalty != "none")  // the other half of the contradiction
        throw CLI::ValidationError("--penalty " + r.penalty +
                                   " has no effect without a --lambda > 0");
      return;
    }
    if (penalty->count() > 0 && r.penalty == "none") {
      std::ostringstream what;
      what << (grid ? "--lambdas " : "--lambda ") << largest
           << " has no effect with --penalty none";
      throw CLI::ValidationError(what.str());
    }
    if (penalty->count() == 0 && !grid) r.penalty = "l2";
  };
  app->add_option("--dropout", r.dropout, "dropout rate of hidden units while training")
      ->check(kIsNumber)
      ->check(CLI::Range(0.0, 0.95))
      ->capture_default_str();
  app->add_option("--input-dropout", r.input_dropout, "dropout rate of input pixels")
      ->check(kIsNumber)
      ->check(CLI::Range(0.0, 0.95))
      ->capture_default_str();
  app->add_option("--batch,--batch-size", r.batch_size, "minibatch size")
      ->check(kIsWhole)
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();
  app->add_option("--epochs", r.epochs, "passes over the training set")
      ->check(kIsWhole)
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  app->add_option("--seed", r.seed, "seed of initialisation, shuffling and dropout")
      ->check(kNotNegative)
      ->capture_default_str();
  app->add_option("--dtype", dtype, "float32 or float64")
      ->check(CLI::IsMember({"float32", "float64"}))
      ->capture_default_str();
  CLI::Option* threads_option =
      app->add_option("--threads", threads,
                      "threads of this run (GEMMs and the engine's loops share one pool)")
          ->check(kIsWhole)
          ->check(CLI::Range(1, 256))
          ->capture_default_str();
  // A sweep trains every point on one thread (sweep.hpp: its rows must not depend on
  // the thread count; --workers runs points side by side): --threads would be ignored,
  // so it is not in the sweep's help and refused by name.
  if (sweep) threads_option->group("");
  // CLI11 keeps one parse-complete callback per command: every check is called here.
  app->parse_complete_callback([sweep, layers, threads_option, one_learning_rate, one_lambda] {
    if (sweep && threads_option->count() > 0)
      throw CLI::ValidationError(
          "--threads: a sweep trains every point on one thread, so that its rows do not "
          "depend on the thread count; --workers N trains N points at once");
    if (sweep && layers->count() > 0 && !sweep->layer_counts.empty() && !sweep->nodes.empty())
      throw CLI::ValidationError(
          "--layers is not used when --layer-counts and --node-counts are both given");
    one_learning_rate();
    one_lambda();
  });
}

/// Before the data is loaded, and without making anything (a refused run leaves no empty
/// folder): `dir` is a folder, or can be made inside the nearest folder above it that
/// exists, and that folder takes a probe file. One that cannot take the results is a
/// usage error naming `option` (exit 2), not a failure found after the training run.
void check_out_dir(const std::string& dir, const std::string& option) {
  std::error_code ec;
  if (fs::exists(dir, ec) && !fs::is_directory(dir, ec))
    throw std::invalid_argument(option + ": '" + dir + "' exists and is not a folder");
  if (fs::is_symlink(fs::symlink_status(dir, ec)) && !fs::exists(dir, ec))
    throw std::invalid_argument(option + ": '" + dir + "' is a symbolic link to nothing");
  fs::path existing = fs::absolute(dir, ec);
  while (!existing.empty() && !fs::exists(existing, ec) && existing != existing.parent_path())
    existing = existing.parent_path();
  if (!fs::is_directory(existing, ec))
    throw std::invalid_argument(option + ": cannot make the folder '" + dir + "': '" +
                                existing.string() + "' is not a folder");
  const std::string probe =
      (existing / (".mnist-write-probe." + std::to_string(getpid()))).string();
  std::ofstream f(probe);
  f << "probe\n";
  f.close();
  const bool written = !f.fail();
  fs::remove(probe, ec);
  if (!written)
    throw std::invalid_argument(
        option + ": cannot write into the folder '" + existing.string() + "'" +
        (existing == fs::absolute(dir, ec) ? "" : " to make '" + dir + "'"));
}

/// Makes the folder check_out_dir accepted, once the data is loaded.
void make_out_dir(const std::string& dir, const std::string& option) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (!fs::is_directory(dir, ec))
    throw std::runtime_error(option + ": cannot make the folder '" + dir + "'" +
                             (ec ? " (" + ec.message() + ")" : std::string()));
}

/// An output file opened for writing; throws naming it when it cannot be opened.
std::ofstream open_out(const std::string& path) {
  std::ofstream f(path);
  if (!f) throw std::runtime_error(path + ": cannot open for writing");
  return f;
}

/// Closes an output file and throws naming it when any write to it, or the close, failed.
void close_out(std::ofstream& f, const std::string& path) {
  f.close();
  if (f.fail()) throw std::runtime_error(path + ": cannot write (disk full?)");
}

/// The CSVs of an evaluation, named with `suffix` appended (evaluate writes them as
/// .tmp files, then renames them all).
constexpr const char* kConfusionFiles[] = {"confusion_counts.csv", "confusion_percent.csv",
                                           "confused_pairs.csv"};

void write_confusion(const std::string& dir, const Evaluation& e, Say& say,
                     const std::string& suffix = "") {
  {
    const std::string path = dir + "/confusion_counts.csv" + suffix;
    std::ofstream f = open_out(path);
    f << "true\\predicted";
    for (int k = 0; k < 10; ++k)
      f << "," << k;
    f << "\n";
    for (int t = 0; t < 10; ++t) {
      f << t;
      for (int k = 0; k < 10; ++k)
        f << "," << e.confusion[t][k];
      f << "\n";
    }
    close_out(f, path);
  }
  const auto pct = row_percentages(e.confusion);
  {
    const std::string path = dir + "/confusion_percent.csv" + suffix;
    std::ofstream f = open_out(path);
    f << "true\\predicted";
    for (int k = 0; k < 10; ++k)
      f << "," << k;
    f << "\n";
    for (int t = 0; t < 10; ++t) {
      f << t;
      char buf[32];
      for (int k = 0; k < 10; ++k) {
        std::snprintf(buf, sizeof buf, ",%.3f", pct[t][k]);
        f << buf;
      }
      f << "\n";
    }
    close_out(f, path);
  }
  say("confusion matrix (rows: true digit, columns: predicted; counts):");
  std::ostringstream head;
  head << "     ";
  for (int k = 0; k < 10; ++k)
    head << std::setw(6) << k;
  say(head.str());
  for (int t = 0; t < 10; ++t) {
    std::ostringstream row;
    row << std::setw(5) << t;
    for (int k = 0; k < 10; ++k)
      row << std::setw(6) << e.confusion[t][k];
    say(row.str());
  }
  const auto pairs = most_confused(e.confusion, 5);
  const std::string pairs_path = dir + "/confused_pairs.csv" + suffix;
  std::ofstream f = open_out(pairs_path);
  f << "true,predicted,count,percent_of_true\n";
  std::ostringstream line;
  line << "most confused (true->predicted, % of the true digit):";
  char buf[64];
  for (const auto& p : pairs) {
    std::snprintf(buf, sizeof buf, " %d->%d %.2f%% (%zu)", p.truth, p.predicted, p.percent,
                  p.count);
    line << buf;
    f << p.truth << "," << p.predicted << "," << p.count << "," << p.percent << "\n";
  }
  close_out(f, pairs_path);
  say(line.str());
}

// The misclassified digits as CSV rows (index, labels, 784 pixels): plots/misclassified.py
// draws them with their true and predicted labels.
void write_misclassified(const std::string& path, const LabelledSet& set, const Evaluation& e,
                         std::size_t limit) {
  std::ofstream f = open_out(path);
  f << "index,true,predicted,confidence,pixels\n";
  std::size_t written = 0;
  for (std::size_t i = 0; i < set.size() && written < limit; ++i) {
    if (e.predicted[i] == set.labels[i]) continue;
    f << i << "," << int(set.labels[i]) << "," << int(e.predicted[i]) << "," << e.confidence[i]
      << ",";
    const std::uint8_t* px = set.images.pixels.data() + i * 784;
    for (std::size_t k = 0; k < 784; ++k)
      f << (k ? " " : "") << int(px[k]);
    f << "\n";
    ++written;
  }
  close_out(f, path);
}

std::string percent(double a) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f%%", 100 * a);
  return buf;
}

/// Two-thread steps of ~100 µs need every core they ask for: when other work already
/// keeps the cores busy they can run several times slower than one thread
/// (docs/engine.md §8), so say so before a long run.
void warn_if_cores_busy(int threads, const Say& say) {
  double load[1] = {0.0};
  const int cores = static_cast<int>(std::thread::hardware_concurrency());
  if (threads < 2 || cores < 1 || getloadavg(load, 1) != 1) return;
  // At least one core's worth of other work beyond the cores this run leaves free.
  if (load[0] > static_cast<double>(cores - threads) + 1.0) {
    char text[200];
    std::snprintf(text, sizeof text,
                  "note: load average %.1f on %d cores: other work is running, and %d threads "
                  "may be slower than --threads 1 here",
                  load[0], cores, threads);
    say(text);
  }
}

struct TrainArgs {
  DataOptions data;
  Recipe recipe;
  std::string dtype = "float32";
  int threads = 1;
  std::string out = "mnist-out";
  bool quiet = false;
  std::size_t misclassified = 100;
};

template <class T>
int run_train(const TrainArgs& a, const std::string& command_line) {
  Say say;
  a.recipe.validate();            // before the data: a bad option costs no loading time
  check_out_dir(a.out, "--out");  // so is an --out that cannot take the results
  xgrad::set_threads(a.threads);
  TrainTest data = load_data(a.data, say);
  make_out_dir(a.out, "--out");
  say("recipe: " + a.recipe.describe() + ", " + a.dtype + ", " + std::to_string(xgrad::threads()) +
      " thread(s)");
  warn_if_cores_busy(a.threads, say);
  const auto t0 = std::chrono::steady_clock::now();
  // The training pixels are held once: as T from here on (the uint8 copy is freed
  // before the test set is converted, which keeps the peak low). The test set keeps its
  // uint8 pixels for misclassified.csv.
  const xgrad::Matrix<T> x_train = to_matrix<T>(data.train.images);
  std::vector<std::uint8_t>().swap(data.train.images.pixels);
  const xgrad::Matrix<T> x_test = to_matrix<T>(data.test.images);
  const std::string hist_path = a.out + "/history.csv";
  std::ofstream hist = open_out(hist_path);
  const std::string set = a.data.scored();  // "test", or "validation" with --validation
  hist << "epoch,learning_rate,batch_loss,train_loss,train_accuracy," << set << "_loss," << set
       << "_accuracy,seconds_train,seconds_eval\n";
  const bool tty = isatty(2) && !a.quiet;
  Callbacks cb;
  // Progress within an epoch: a redrawn bar on a terminal; in a log file a line at most
  // every 10 s, so a slow epoch still shows life without flooding the log.
  auto last_line = std::chrono::steady_clock::now();
  if (tty) {
    cb.on_batch = [&](std::size_t epoch, std::size_t b, std::size_t batches, double loss) {
      if (b % std::max<std::size_t>(1, batches / 40) != 0 && b != batches) return;
      const int filled = int(30 * b / batches);
      std::fprintf(stderr, "\r[%s] epoch %zu/%zu [%-30s] %3d%% loss %.4f", say.name.c_str(), epoch,
                   a.recipe.epochs, std::string(std::size_t(filled), '#').c_str(),
                   int(100 * b / batches), loss);
      std::fflush(stderr);
    };
  } else if (!a.quiet) {
    cb.on_batch = [&](std::size_t epoch, std::size_t b, std::size_t batches, double loss) {
      if (b == batches) return;  // the epoch line follows
      const auto now = std::chrono::steady_clock::now();
      if (now - last_line < std::chrono::seconds(10)) return;
      last_line = now;
      char buf[128];
      std::snprintf(buf, sizeof buf, "epoch %zu/%zu %3d%% (batch %zu/%zu) loss %.4f", epoch,
                    a.recipe.epochs, int(100 * b / batches), b, batches, loss);
      say(buf);
    };
  }
  cb.on_epoch = [&](const EpochRecord& r) {
    if (tty) std::fprintf(stderr, "\r%90s\r", "");
    last_line = std::chrono::steady_clock::now();  // the epoch line counts as progress
    char buf[256];
    std::snprintf(
        buf, sizeof buf,
        "epoch %zu/%zu  lr %.3g  loss %.4f  train %s  %s %s (loss %.4f)  %.1f s + %.1f s eval",
        r.epoch, a.recipe.epochs, r.learning_rate, r.batch_loss,
        std::isnan(r.train_accuracy) ? "-" : percent(r.train_accuracy).c_str(), set.c_str(),
        percent(r.test_accuracy).c_str(), r.test_loss, r.seconds_train, r.seconds_eval);
    say(buf);
    hist << r.epoch << "," << r.learning_rate << "," << r.batch_loss << "," << r.train_loss << ","
         << r.train_accuracy << "," << r.test_loss << "," << r.test_accuracy << ","
         << r.seconds_train << "," << r.seconds_eval << "\n"
         << std::flush;
    if (!hist) throw std::runtime_error(hist_path + ": cannot write (disk full?)");
  };
  std::vector<EpochRecord> history;
  const xgrad::nn::Network<T> net =
      train<T>(a.recipe, x_train, data.train.labels, x_test, data.test.labels, cb, &history);
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  double train_seconds = 0;
  for (const auto& r : history)
    train_seconds += r.seconds_train;
  const Evaluation e = evaluate(net, x_test, data.test.labels);
  if (std::isnan(e.loss))  // train() stops on NaN outputs whenever it evaluates
    throw std::runtime_error("the trained network's outputs are NaN; lower the learning rate");
  say(set + " accuracy " + percent(e.accuracy) + " (" +
      std::to_string(std::lround(e.accuracy * double(data.test.size()))) + "/" +
      std::to_string(data.test.size()) + "), " + set + " loss " + std::to_string(e.loss));
  char buf[160];
  std::snprintf(buf, sizeof buf,
                "time: %.1f s training (%.2f s/epoch), %.1f s wall with evaluation", train_seconds,
                train_seconds / double(history.size()), wall);
  say(buf);
  struct rusage usage {};
  getrusage(RUSAGE_SELF, &usage);
  say("peak resident memory " + std::to_string(usage.ru_maxrss / 1024) + " MiB");
  close_out(hist, hist_path);
  write_confusion(a.out, e, say);
  write_misclassified(a.out + "/misclassified.csv", data.test, e, a.misclassified);
  save_model(net, a.out + "/model.xgm");
  const std::string run_path = a.out + "/run.txt";
  std::ofstream run = open_out(run_path);
  // The folder too: evaluate and predict read the same data from it by default.
  const std::string folder = data.name.rfind("Fashion", 0) == 0 ? a.data.fashion_dir : a.data.dir;
  run << "data set: " << data.name << "\ndata folder: " << fs::absolute(folder).string()
      << "\nrecipe: " << a.recipe.describe() << "\ndtype: " << a.dtype
      << "\nthreads: " << xgrad::threads() << "\ncommand: " << command_line << "\n"
      << set << "_accuracy: " << e.accuracy << "\ntrain_seconds: " << train_seconds
      << "\nwall_seconds: " << wall << "\n";
  close_out(run, run_path);
  say("wrote " + a.out +
      "/{history.csv, confusion_counts.csv, confusion_percent.csv, "
      "confused_pairs.csv, misclassified.csv, model.xgm, run.txt}");
  return 0;
}

struct EvalArgs {
  DataOptions data;
  std::string model = "mnist-out/model.xgm";
  std::string out;
  std::vector<std::size_t> indices;
  std::vector<std::string> images;
  int threads = 1;
};

/// Refuses a network that is not an MNIST classifier: 784 inputs, 10 outputs, and a
/// softmax last layer (its outputs are the class probabilities that evaluate scores and
/// predict prints).
template <class T>
void require_mnist_model(const xgrad::nn::Network<T>& net, const std::string& path) {
  if (net.inputs() != 784 || net.outputs() != 10)
    throw std::runtime_error(path + ": network takes " + std::to_string(net.inputs()) +
                             " inputs and gives " + std::to_string(net.outputs()) +
                             " outputs; an MNIST model has 784 and 10");
  const xgrad::nn::Activation& last = net.layers().back().activation;
  if (last.kind != xgrad::nn::ActivationKind::Softmax)
    throw std::runtime_error(path + ": the last layer is " + last.name() +
                             ", not softmax, so its outputs are not class probabilities; an "
                             "MNIST model (from `mnist train`) ends in softmax");
}

/// What the run.txt next to a model says of the data it was trained on.
struct ModelData {
  std::string run_txt;  // its path
  std::string set;      // "MNIST" or "Fashion-MNIST"; "" without a run.txt that says
  std::string name;     // the whole "data set:" line: "MNIST pooled 80/20", ...
  std::string folder;   // its "data folder:" line; "" in run.txt files from before it
};

ModelData model_data(const std::string& model) {
  ModelData m;
  m.run_txt = (fs::path(model).parent_path() / "run.txt").string();
  std::ifstream in(m.run_txt);
  const std::string key = "data set: ", folder_key = "data folder: ";
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(key, 0) == 0) m.name = line.substr(key.size());
    if (line.rfind(folder_key, 0) == 0) m.folder = line.substr(folder_key.size());
  }
  m.set = m.name.rfind("Fashion-MNIST", 0) == 0 ? "Fashion-MNIST"
          : m.name.rfind("MNIST", 0) == 0       ? "MNIST"
                                                : "";
  return m;
}

/// The data options of evaluate and predict: no switch to Fashion-MNIST on their own,
/// and with --dataset auto the data set the model's run.txt names.
DataOptions data_for_model(DataOptions d, const std::string& model, Say& say) {
  d.fallback = false;
  const ModelData m = model_data(model);
  const std::string& run_txt = m.run_txt;
  const std::string& trained_on = m.set;
  if (trained_on.empty()) return d;
  const std::string wanted = trained_on == "MNIST" ? "mnist" : "fashion-mnist";
  if (d.dataset == "auto") {
    if (wanted == "fashion-mnist" && d.dir_option && d.dir_option->count() > 0)
      throw std::invalid_argument("--data names an MNIST folder, but " + run_txt +
                                  " says the model was trained on Fashion-MNIST: give "
                                  "--dataset mnist to score it on MNIST anyway, or "
                                  "--dataset fashion-mnist --fashion-dir DIR for a "
                                  "Fashion-MNIST folder");
    d.dataset = wanted;
    d.chosen_by = run_txt + " says the model was trained on " + trained_on;
  } else if (d.dataset != wanted) {
    say.name = d.dataset == "mnist" ? "MNIST" : "Fashion-MNIST";
    say("note: " + run_txt + " says the model was trained on " + trained_on + "; scoring it on " +
        say.name + " as --dataset says");
    return d;
  }
  // The data set run.txt names: from the folder it names too, unless an option or
  // $XGRAD_MNIST_DIR names another.
  const bool mnist = wanted == "mnist";
  if (!m.folder.empty() &&
      (mnist ? !d.dir_explicit() : !(d.fashion_option && d.fashion_option->count() > 0))) {
    (mnist ? d.dir : d.fashion_dir) = m.folder;
    d.folder_from = run_txt + "'s data folder";
    d.chosen_by = run_txt + " says the model was trained on " + trained_on + " from " + m.folder;
  }
  d.trained_on = m.name;
  return d;
}

/// A note when the data about to be scored is split otherwise than the model's training
/// run split it (pooled, or validation): a pooled model scored on the standard test set
/// has seen most of it.
void note_other_split(const DataOptions& d, const TrainTest& data, Say& say) {
  if (d.trained_on.empty() || d.trained_on == data.name) return;
  say("note: the model was trained on '" + d.trained_on + "' (its run.txt) and is scored on '" +
      data.name + "'; give the options of its training run (--protocol, --split-seed, " +
      "--validation) to score it on the images it was scored on there");
}

template <class T>
int run_evaluate(const EvalArgs& a) {
  Say say;
  xgrad::set_threads(a.threads);
  const xgrad::nn::Network<T> net = load_model<T>(a.model);
  require_mnist_model(net, a.model);
  const DataOptions data_options = data_for_model(a.data, a.model, say);
  // The CSVs go next to the model unless --out says otherwise: checked before the data.
  const std::string parent = fs::path(a.model).parent_path().string();
  const std::string out = !a.out.empty() ? a.out : parent.empty() ? "." : parent;
  const std::string out_option = a.out.empty() ? "--out (default: the model's folder)" : "--out";
  check_out_dir(out, out_option);
  const TrainTest data = load_data(data_options, say);
  note_other_split(data_options, data, say);
  make_out_dir(out, out_option);
  const Evaluation e = evaluate(net, to_matrix<T>(data.test.images), data.test.labels);
  if (std::isnan(e.loss))
    throw std::runtime_error(a.model + ": the network's outputs are NaN; its parameters are " +
                             "not finite or too large (a diverged training run?)");
  const std::string set = a.data.scored();
  say(a.model + ": " + set + " accuracy " + percent(e.accuracy) + ", " + set + " loss " +
      std::to_string(e.loss));
  // Each file is written as .tmp, and all are renamed once every write succeeded: a
  // failed write leaves the folder's files (by default the training run's) as they were.
  std::vector<std::string> files(std::begin(kConfusionFiles), std::end(kConfusionFiles));
  files.push_back("misclassified.csv");
  try {
    write_confusion(out, e, say, ".tmp");
    write_misclassified(out + "/misclassified.csv.tmp", data.test, e, 100);
  } catch (...) {
    std::error_code ignored;
    for (const std::string& f : files)
      fs::remove(out + "/" + f + ".tmp", ignored);
    throw;
  }
  for (const std::string& f : files)
    fs::rename(out + "/" + f + ".tmp", out + "/" + f);
  return 0;
}

template <class T>
void show_prediction(const xgrad::nn::Network<T>& net, const Images& im, const std::string& what,
                     int truth, Say& say) {
  const xgrad::Matrix<T> p = net.predict(to_matrix<T>(im), 1);
  if (std::any_of(p.begin(), p.end(), [](T v) { return std::isnan(v); }))
    throw std::runtime_error(what + ": no prediction: the network's outputs are NaN (are its " +
                             "parameters finite?)");
  std::size_t best = 0;
  for (std::size_t k = 1; k < 10; ++k)
    if (p(0, k) > p(0, best)) best = k;
  std::ostringstream s;
  s << what << ": predicted " << best << " (p " << std::fixed << std::setprecision(3) << p(0, best)
    << ")";
  if (truth >= 0) s << ", true " << truth << (int(best) == truth ? " (right)" : " (WRONG)");
  s << "; p =";
  for (std::size_t k = 0; k < 10; ++k)
    s << " " << std::setprecision(3) << p(0, k);
  say(s.str());
}

template <class T>
int run_predict(const EvalArgs& a) {
  Say say;
  say.name = "model";
  xgrad::set_threads(a.threads);
  const xgrad::nn::Network<T> net = load_model<T>(a.model);
  require_mnist_model(net, a.model);
  if (a.indices.empty() && a.images.empty())
    throw CLI::ValidationError("predict",
                               "give --index N (test-set images) or --image FILE.pgm|png");
  for (const std::string& path : a.images) {
    bool inverted = false;
    const Images im = read_image(path, &inverted);
    Say s{"image"};
    show_prediction(net, im, path + (inverted ? " (dark on light: inverted)" : ""), -1, s);
  }
  if (!a.indices.empty()) {
    const DataOptions data_options = data_for_model(a.data, a.model, say);
    const TrainTest data = load_data(data_options, say);
    note_other_split(data_options, data, say);
    for (std::size_t i : a.indices) {
      if (i >= data.test.size())
        throw CLI::ValidationError("--index", std::to_string(i) + " is past the " +
                                                  std::to_string(data.test.size()) + " " +
                                                  a.data.scored() + " images");
      Images im;
      im.count = 1;
      im.rows = im.cols = 28;
      im.pixels.assign(data.test.images.pixels.begin() + std::ptrdiff_t(i * 784),
                       data.test.images.pixels.begin() + std::ptrdiff_t((i + 1) * 784));
      show_prediction(net, im, a.data.scored() + " image " + std::to_string(i), data.test.labels[i],
                      say);
    }
  }
  return 0;
}

struct SweepArgs {
  TrainArgs train;
  SweepGrid grid;
  std::string csv = "mnist-sweep.csv";
  std::size_t workers = 2;
};

template <class T>
int run_sweep_cmd(const SweepArgs& a) {
  Say say;
  a.train.recipe.validate();  // before the data, as `train` does
  for (const SweepPoint& p : grid_points(a.train.recipe, a.grid))
    point_recipe(a.train.recipe, p).validate();
  check_sweep_csv_path(a.csv);  // so is a --csv that cannot hold the rows
  const TrainTest data = load_data(a.train.data, say);
  say("sweep base recipe: " + a.train.recipe.describe());
  const SweepDataInfo info{data.name, data.train.size(), data.test.size(), a.train.data.split_seed,
                           a.train.dtype};
  run_sweep<T>(a.train.recipe, a.grid, to_matrix<T>(data.train.images), data.train.labels,
               to_matrix<T>(data.test.images), data.test.labels, info, a.csv, a.workers,
               [&](const std::string& line) { say(line); });
  say("results in " + a.csv);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "mnist: the reports' MNIST study on xgrad. With no subcommand it trains the default "
      "recipe (784-512-512-10 ReLU, dropout 0.2, Adam, 20 epochs; see `mnist train --help`) on "
      "MNIST from --data, or says "
      "that MNIST is missing and uses Fashion-MNIST."};
  app.require_subcommand(0, 1);
  std::string command_line;
  for (int i = 0; i < argc; ++i)
    command_line += (i ? " " : "") + std::string(argv[i]);

  TrainArgs train_args;
  auto* train_cmd = app.add_subcommand("train", "train a network, write CSVs and the model");
  add_data_options(train_cmd, train_args.data);
  add_recipe_options(train_cmd, train_args.recipe, train_args.dtype, train_args.threads);
  train_cmd->add_option("--out", train_args.out, "output folder")->capture_default_str();
  train_cmd
      ->add_option(
          "--misclassified", train_args.misclassified,
          "how many misclassified test (or --validation) digits to write to misclassified.csv")
      ->check(kIsWhole)
      ->check(CLI::Range(0LL, kMaxCount))
      ->capture_default_str();
  train_cmd->add_flag(
      "--quiet", train_args.quiet,
      "no progress within an epoch (a bar on a terminal, a line per 10 s in a log)");
  train_cmd->add_flag_callback(
      "--no-train-eval", [&] { train_args.recipe.eval_train = false; },
      "skip the full train-set loss/accuracy after each epoch");

  EvalArgs eval_args;
  auto* eval_cmd =
      app.add_subcommand("evaluate", "test accuracy and confusion matrix of a saved model");
  add_data_options(eval_cmd, eval_args.data, true);
  eval_cmd->add_option("--model", eval_args.model, "model file from `mnist train`")
      ->capture_default_str();
  eval_cmd->add_option("--out", eval_args.out, "folder for the CSVs (default: the model's folder)");
  eval_cmd->add_option("--threads", eval_args.threads, "threads (GEMMs and the engine's loops)")
      ->check(kIsWhole)
      ->check(CLI::Range(1, 256))
      ->capture_default_str();

  EvalArgs pred_args;
  auto* pred_cmd =
      app.add_subcommand("predict", "classify test images by index or 28x28 PGM/PNG files");
  add_data_options(pred_cmd, pred_args.data, true);
  pred_cmd->add_option("--model", pred_args.model, "model file from `mnist train`")
      ->capture_default_str();
  pred_cmd
      ->add_option("--index", pred_args.indices,
                   "test-set image index, or held-out image index with --validation (repeatable)")
      ->check(kIsWhole)
      ->check(CLI::Range(0LL, kMaxCount));
  pred_cmd->add_option("--image", pred_args.images, kImageHelp)->check(CLI::ExistingFile);
  pred_cmd->add_option("--threads", pred_args.threads, "threads (GEMMs and the engine's loops)")
      ->check(kIsWhole)
      ->check(CLI::Range(1, 256))
      ->capture_default_str();

  SweepArgs sweep_args;
  sweep_args.train.recipe.epochs = 2;  // report 000 Figs. 7-8: 2 epochs per point
  sweep_args.train.recipe.lr_decay = 1;
  sweep_args.train.recipe.dropout = 0;
  auto* sweep_cmd = app.add_subcommand(
      "sweep", "grid search (lr x lambda, layers x nodes), one CSV row per point, resumable");
  add_data_options(sweep_cmd, sweep_args.train.data);
  add_recipe_options(sweep_cmd, sweep_args.train.recipe, sweep_args.train.dtype,
                     sweep_args.train.threads, &sweep_args.grid);
  sweep_cmd
      ->add_option("--lrs", sweep_args.grid.learning_rates,
                   "learning rates of the grid; replace --lr (and an --optimiser lr=)")
      ->check(kNotNegative);
  sweep_cmd
      ->add_option("--lambdas", sweep_args.grid.lambdas,
                   "L2 strengths of the grid (l2 unless --penalty); replace --lambda")
      ->check(kNotNegative);
  sweep_cmd
      ->add_option("--layer-counts", sweep_args.grid.layer_counts,
                   "numbers of hidden layers (with --node-counts: replace --layers)")
      ->check(kIsWhole)
      ->check(CLI::Range(0, 64));
  sweep_cmd->add_option("--node-counts", sweep_args.grid.nodes, "nodes per hidden layer")
      ->check(kIsWhole)
      ->check(CLI::Range(1, 100000));
  sweep_cmd
      ->add_option("--csv", sweep_args.csv,
                   "results; points already in it with the same settings are skipped; a file with "
                   "rows of other settings, or that another run is writing (CSV.lock), is "
                   "refused")
      ->capture_default_str();
  sweep_cmd
      ->add_option("--workers,--jobs", sweep_args.workers,
                   "parallel training runs, each on one thread (every sweep point trains "
                   "single-threaded, so the rows do not depend on --workers)")
      ->check(kIsWhole)
      ->check(CLI::Range(1, 64))
      ->capture_default_str();

  // Usage errors exit 2 whoever finds them (CLI11 would use 104-109); --help exits 0.
  auto usage_exit = [&app](const CLI::ParseError& e) { return app.exit(e) == 0 ? 0 : 2; };
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return usage_exit(e);
  }
  try {
    if (*eval_cmd) {
      return model_element_size(eval_args.model) == 8 ? run_evaluate<double>(eval_args)
                                                      : run_evaluate<float>(eval_args);
    }
    if (*pred_cmd) {
      return model_element_size(pred_args.model) == 8 ? run_predict<double>(pred_args)
                                                      : run_predict<float>(pred_args);
    }
    if (*sweep_cmd) {
      return sweep_args.train.dtype == "float64" ? run_sweep_cmd<double>(sweep_args)
                                                 : run_sweep_cmd<float>(sweep_args);
    }
    // `mnist` alone = `mnist train` with defaults.
    return train_args.dtype == "float64" ? run_train<double>(train_args, command_line)
                                         : run_train<float>(train_args, command_line);
  } catch (const CLI::ParseError& e) {
    return usage_exit(e);
  } catch (const std::invalid_argument& e) {
    std::cerr << "mnist: invalid option: " << e.what() << "\n";
    return 2;
  } catch (const std::bad_alloc&) {
    std::cerr << "mnist: out of memory: the data and network asked for more memory than this "
                 "machine gives (smaller --layers, --batch, --workers or data limits, where the "
                 "command has them)\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "mnist: " << e.what() << "\n";
    return 1;
  }
}
