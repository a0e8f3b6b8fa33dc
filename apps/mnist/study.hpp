// The MNIST study on xgrad: data as matrices, training through nn::Trainer (the MLPs
// and the logistic-regression baseline alike), evaluation with the confusion matrix,
// and the model file. Templates are instantiated for float and double in study.cpp.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "idx.hpp"
#include "xgrad/nn/network.hpp"
#include "xgrad/tape.hpp"

namespace xgrad::mnist {

/// Pixels as an [n, rows*cols] matrix scaled to [0, 1]; converted once per run.
template <class T>
Matrix<T> to_matrix(const Images& images);

/// Everything that defines a training run. Defaults are this app's default recipe
/// (see docs/results-mnist.md for how it was chosen).
struct Recipe {
  std::vector<std::size_t> hidden = {512, 512};  // empty = logistic regression
  std::string activation = "relu";
  std::string init;                // empty: he_normal for relu-like, glorot_uniform otherwise
  std::string optimiser = "adam";  // nn::OptimiserSpec syntax: "adam", "rmsprop:rho=0.9"
  double learning_rate = 1e-3;
  double lr_decay = 0.9;         // learning_rate * lr_decay^epoch; 1 = constant
  std::string schedule;          // nn::Schedule syntax, replaces learning_rate and lr_decay
  std::string penalty = "none";  // none | l1 | l2 (lambda * sum |W| or W^2, weights only)
  double lambda = 0.0;
  double dropout = 0.2;        // hidden units, inverted dropout
  double input_dropout = 0.0;  // pixels
  std::size_t batch_size = 128;
  std::size_t epochs = 20;
  std::uint64_t seed = 1;
  bool eval_train = true;  // full train-set loss/accuracy after every epoch

  /// Throws std::invalid_argument naming the first bad field (as a CLI option name,
  /// "--activation: unknown activation ..."). The learning rate has one value: an
  /// optimiser text's lr= and a schedule's first rate must equal learning_rate (so the
  /// recipe line and the sweep CSV print the rate that trains), and an lr= together
  /// with a schedule is refused (the schedule would replace it).
  void validate() const;
  /// One line: "784-512-10 relu, adam lr 0.001, batch 128, 10 epochs, ..."
  std::string describe(std::size_t inputs = 784) const;
};

/// The learning rate an optimiser text sets with lr= (or learning_rate=, eta=), or
/// nullopt when it sets none. Throws std::invalid_argument for a text nn refuses.
std::optional<double> optimiser_learning_rate(const std::string& optimiser);
/// The rate of the first step of a schedule text (nn::Schedule syntax). Throws
/// std::invalid_argument for a text nn refuses.
double schedule_first_rate(const std::string& schedule);

struct EpochRecord {
  std::size_t epoch = 0;  // 1-based
  double learning_rate = 0;
  double batch_loss = 0;                      // mean objective over the epoch's minibatches
  double train_loss = 0, train_accuracy = 0;  // NaN when eval_train is off
  double test_loss = 0, test_accuracy = 0;
  double seconds_train = 0, seconds_eval = 0;
};

struct Evaluation {
  double loss = 0;      // mean cross-entropy
  double accuracy = 0;  // fraction correct
  std::vector<std::uint8_t> predicted;
  std::vector<float> confidence;                            // probability of the predicted class
  std::array<std::array<std::size_t, 10>, 10> confusion{};  // [true][predicted]
};

/// Loss, accuracy and confusion of `net` on x; for NaN outputs (a diverged network) loss
/// and accuracy are NaN and there are no predictions.
template <class T>
Evaluation evaluate(const nn::Network<T>& net, const Matrix<T>& x,
                    const std::vector<std::uint8_t>& labels);

/// Thrown by train() when the loss becomes NaN/Inf: the one error a sweep records as a
/// diverged point instead of stopping.
class TrainingDiverged : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Callbacks {
  /// After each minibatch (batch is 1-based); for a progress display.
  std::function<void(std::size_t epoch, std::size_t batch, std::size_t batches, double loss)>
      on_batch;
  std::function<void(const EpochRecord&)> on_epoch;
};

/// Builds the network of `recipe` and trains it. Throws TrainingDiverged when the
/// loss becomes NaN/Inf (naming epoch and batch); the network then holds the
/// parameters of the last completed epoch.
template <class T>
nn::Network<T> train(const Recipe& recipe, const Matrix<T>& x_train,
                     const std::vector<std::uint8_t>& y_train, const Matrix<T>& x_test,
                     const std::vector<std::uint8_t>& y_test, const Callbacks& callbacks,
                     std::vector<EpochRecord>* history = nullptr);

/// The model file is nn's format (nn/serialize.hpp: versioned, little-endian, CRC-32):
/// a truncated, foreign, corrupt or other-precision file is a std::runtime_error naming
/// the file and the problem.
template <class T>
void save_model(const nn::Network<T>& net, const std::string& path);
/// The scalar size (4 = float32, 8 = float64) a model file was saved with.
int model_element_size(const std::string& path);
/// Loads a model saved in the same precision T (model_element_size() tells which).
template <class T>
nn::Network<T> load_model(const std::string& path);

/// Row percentages of a confusion matrix (each true class sums to 100).
std::array<std::array<double, 10>, 10> row_percentages(
    const std::array<std::array<std::size_t, 10>, 10>& confusion);
struct ConfusedPair {
  int truth, predicted;
  std::size_t count;
  double percent;  // of the true class
};
/// Off-diagonal cells by decreasing row percentage.
std::vector<ConfusedPair> most_confused(const std::array<std::array<std::size_t, 10>, 10>& c,
                                        std::size_t n);

/// A 28x28 image from a PGM file (P2 or P5, maxval <= 255). Dark-on-light drawings are
/// inverted to MNIST's light-on-dark (decided from the border); `inverted` says so.
Images read_pgm(const std::string& path, bool* inverted = nullptr);
/// A 28x28 PGM or PNG (by content; PNG when built with libpng, colour converted to grey,
/// transparency composited onto white), with the same polarity rule as read_pgm.
Images read_image(const std::string& path, bool* inverted = nullptr);

}  // namespace xgrad::mnist
