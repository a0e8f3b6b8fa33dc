#include "study.hpp"

#ifdef XGRAD_MNIST_HAVE_PNG
#include <png.h>
#endif

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <memory>
#include <random>
#include <sstream>
#include <stdexcept>

#include "xgrad/nn/cost.hpp"
#include "xgrad/nn/data.hpp"
#include "xgrad/nn/metrics.hpp"
#include "xgrad/nn/optimiser.hpp"
#include "xgrad/nn/schedule.hpp"
#include "xgrad/nn/serialize.hpp"
#include "xgrad/nn/trainer.hpp"
#include "xgrad/ops.hpp"

namespace xgrad::mnist {

template <class T>
Matrix<T> to_matrix(const Images& images) {
  const std::size_t px = images.pixels_per_image();
  Matrix<T> x({images.count, px});
  T* out = x.data();
  const std::uint8_t* in = images.pixels.data();
  const T scale = T(1) / T(255);
  for (std::size_t i = 0, n = images.count * px; i < n; ++i)
    out[i] = T(in[i]) * scale;
  return x;
}

namespace {

void require(bool ok, const std::string& message) {
  if (!ok) throw std::invalid_argument(message);
}

// Runs an nn parser, prefixing its message with the option that carried the text.
template <class F>
void parse_option(const char* option, F&& parse) {
  try {
    parse();
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(std::string(option) + ": " + e.what());
  }
}

std::vector<std::size_t> wide_labels(const std::vector<std::uint8_t>& labels) {
  return std::vector<std::size_t>(labels.begin(), labels.end());
}

bool relu_like(const nn::Activation& a) {
  return a.kind == nn::ActivationKind::Relu || a.kind == nn::ActivationKind::LeakyRelu ||
         a.kind == nn::ActivationKind::Elu;
}

std::string format_g(double v) {
  if (std::isnan(v)) return "NaN";  // not the stream's "-nan" for a NaN with its sign bit set
  std::ostringstream s;
  s << v;
  return s.str();
}

}  // namespace

std::optional<double> optimiser_learning_rate(const std::string& optimiser) {
  // Parsed over two different default rates: a rate the text sets is the same in both.
  nn::OptimiserOptions one, two;
  one.learning_rate = 1;
  two.learning_rate = 2;
  const double a = nn::OptimiserSpec::parse(optimiser, one).options.learning_rate;
  const double b = nn::OptimiserSpec::parse(optimiser, two).options.learning_rate;
  if (a != b) return std::nullopt;
  return a;
}

double schedule_first_rate(const std::string& schedule) {
  return nn::Schedule::parse(schedule)(0, 0, 1);
}

void Recipe::validate() const {
  for (std::size_t h : hidden)
    require(h >= 1 && h <= 100000, "--layers: sizes must be 1..100000");
  parse_option("--activation", [&] { nn::Activation::parse(activation); });
  if (!init.empty()) parse_option("--init", [&] { nn::Initialiser::parse(init); });
  parse_option("--optimiser", [&] { nn::OptimiserSpec::parse(optimiser); });
  if (!schedule.empty()) {
    parse_option("--schedule", [&] { nn::Schedule::parse(schedule).validate(); });
    // Its first rate is the run's (which --lr may not have given).
    const double first = schedule_first_rate(schedule);
    require(first > 0 && std::isfinite(first), "--schedule '" + schedule + "' starts at rate " +
                                                   format_g(first) + ", not a finite rate > 0");
  }
  require(learning_rate > 0 && std::isfinite(learning_rate),
          "--lr " + format_g(learning_rate) + " must be a finite number > 0");
  require(lr_decay > 0 && lr_decay <= 1, "--lr-decay " + format_g(lr_decay) + " must be in (0, 1]");
  // One learning rate: the rate printed (recipe line, run.txt, a sweep's learning_rate
  // column) must be the rate that trains.
  const std::optional<double> optimiser_lr = optimiser_learning_rate(optimiser);
  require(!(optimiser_lr && !schedule.empty()), "--optimiser '" + optimiser +
                                                    "' sets lr= and --schedule '" + schedule +
                                                    "' replaces it: give the rate in one of them");
  require(!optimiser_lr || *optimiser_lr == learning_rate,
          "--optimiser '" + optimiser + "' sets lr " + format_g(optimiser_lr.value_or(0)) +
              " but --lr is " + format_g(learning_rate) + ": give the rate in one of them");
  require(schedule.empty() || schedule_first_rate(schedule) == learning_rate,
          "--schedule '" + schedule + "' starts at rate " +
              (schedule.empty() ? std::string() : format_g(schedule_first_rate(schedule))) +
              " but --lr is " + format_g(learning_rate) +
              ": give the rate in one of them (--schedule replaces --lr and --lr-decay)");
  require(penalty == "none" || penalty == "l1" || penalty == "l2",
          "--penalty must be none, l1 or l2, got '" + penalty + "'");
  require(lambda >= 0 && std::isfinite(lambda),
          "--lambda " + format_g(lambda) + " must be a finite number >= 0");
  require(dropout >= 0 && dropout < 1, "--dropout must be in [0, 1)");
  require(input_dropout >= 0 && input_dropout < 1, "--input-dropout must be in [0, 1)");
  require(batch_size >= 1, "--batch must be >= 1");
  require(epochs >= 1, "--epochs must be >= 1");
}

std::string Recipe::describe(std::size_t inputs) const {
  std::ostringstream s;
  s << inputs;
  for (std::size_t h : hidden)
    s << "-" << h;
  s << "-10 " << (hidden.empty() ? "softmax regression" : activation);
  s << ", " << optimiser << " ";
  if (!schedule.empty())
    s << "schedule " << schedule;
  else
    s << "lr " << learning_rate << (lr_decay != 1 ? " x " + format_g(lr_decay) + "^epoch" : "");
  if (nn::OptimiserSpec::parse(optimiser).kind == nn::OptimiserKind::GradientDescent)
    s << ", full batch";  // gd steps on the whole set whatever --batch says
  else
    s << ", batch " << batch_size;
  s << ", " << epochs << " epochs";
  if (penalty != "none" && lambda > 0) s << ", " << penalty << " lambda " << lambda;
  if (dropout > 0) s << ", dropout " << dropout;
  if (input_dropout > 0) s << ", input dropout " << input_dropout;
  s << ", seed " << seed;
  return s.str();
}

template <class T>
Evaluation evaluate(const nn::Network<T>& net, const Matrix<T>& x,
                    const std::vector<std::uint8_t>& labels) {
  if (x.shape(0) != labels.size())
    throw std::invalid_argument("evaluate: " + std::to_string(x.shape(0)) + " images but " +
                                std::to_string(labels.size()) + " labels");
  Evaluation e;
  const std::size_t n = labels.size();
  e.predicted.resize(n);
  e.confidence.resize(n);
  double loss = 0;
  // [n, 10] probabilities: small even for 60,000 rows; predict batches internally.
  const Matrix<T> p = net.predict(x, 1024);
  // Huge but finite weights can make NaN outputs: no class, so NaN loss and accuracy and
  // no predictions. train() then stops with TrainingDiverged.
  if (std::any_of(p.begin(), p.end(), [](T v) { return std::isnan(v); })) {
    e.loss = e.accuracy = std::numeric_limits<double>::quiet_NaN();
    e.predicted.clear();
    e.confidence.clear();
    return e;
  }
  const std::vector<std::size_t> predicted = nn::argmax_rows(p);  // first maximum wins
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t best = predicted[i];
    const std::uint8_t truth = labels[i];
    e.predicted[i] = static_cast<std::uint8_t>(best);
    e.confidence[i] = static_cast<float>(p(i, best));
    // Kept here rather than an nn cost: the published losses are this mean of
    // -log(max(p, 1e-12)) over predicted probabilities, accumulated in double.
    loss -= std::log(std::max(double(p(i, truth)), 1e-12));
    ++e.confusion[truth][best];
  }
  e.loss = n ? loss / double(n) : 0.0;
  // nn::accuracy refuses an empty set; an empty test set (--test-limit) reports 0 here.
  e.accuracy = n ? nn::accuracy(p, wide_labels(labels)) : 0.0;
  return e;
}

template <class T>
nn::Network<T> train(const Recipe& recipe, const Matrix<T>& x_train,
                     const std::vector<std::uint8_t>& y_train, const Matrix<T>& x_test,
                     const std::vector<std::uint8_t>& y_test, const Callbacks& callbacks,
                     std::vector<EpochRecord>* history) {
  recipe.validate();
  using clock = std::chrono::steady_clock;
  const std::size_t n = x_train.shape(0), inputs = x_train.shape(1);
  if (n != y_train.size()) throw std::invalid_argument("train: images and labels differ in count");
  const nn::Activation hidden_act = nn::Activation::parse(recipe.activation);
  std::vector<std::size_t> sizes{inputs};
  std::vector<nn::Activation> acts;
  for (std::size_t h : recipe.hidden) {
    sizes.push_back(h);
    acts.push_back(hidden_act);
  }
  sizes.push_back(10);
  acts.push_back(nn::Activation::softmax());
  const std::string init_name = !recipe.init.empty()    ? recipe.init
                                : relu_like(hidden_act) ? "he_normal"
                                                        : "glorot_uniform";
  nn::Initialiser init = nn::Initialiser::parse(init_name);
  init.bias_value = 0.0;  // zero biases: with he/glorot weights the 0.01 constant only adds bias
  std::mt19937_64 rng(recipe.seed);
  nn::Network<T> net(sizes, acts, init, rng);

  nn::OptimiserOptions defaults;
  defaults.learning_rate = recipe.learning_rate;
  const nn::OptimiserSpec spec = nn::OptimiserSpec::parse(recipe.optimiser, defaults);
  nn::Optimiser<T> opt(spec.kind, net.parameters(), spec.options);
  const bool scheduled = !recipe.schedule.empty();
  const nn::Schedule schedule =
      scheduled ? nn::Schedule::parse(recipe.schedule)
      : recipe.lr_decay != 1
          ? nn::Schedule::exponential(spec.options.learning_rate, recipe.lr_decay)
          : nn::Schedule::constant(spec.options.learning_rate);

  nn::CostSpec cost;
  cost.cost = nn::CostKind::CrossEntropy;  // fused with the softmax output
  cost.regularisation.penalty = recipe.penalty == "l1"   ? nn::Penalty::L1
                                : recipe.penalty == "l2" ? nn::Penalty::L2
                                                         : nn::Penalty::None;
  cost.regularisation.lambda = recipe.lambda;  // 0: no penalty nodes at all

  const Matrix<T> y_onehot = nn::one_hot<T>(wide_labels(y_train), 10);
  nn::TrainerOptions run;
  run.epochs = recipe.epochs;
  run.batch_size = recipe.batch_size;  // "gd" steps on the whole set whatever it says
  // Two streams of the seed: the row order of each epoch and the dropout masks.
  run.seed = recipe.seed ^ 0x9e3779b97f4a7c15ull;
  run.dropout = nn::Dropout{recipe.input_dropout, recipe.dropout};
  run.dropout_seed = recipe.seed ^ 0xd1b54a32d192ed03ull;
  run.schedule = schedule;
  run.progress = false;  // the app's own progress line (callbacks.on_batch)

  // nn's Trainer runs the loop; the study keeps its own record of an epoch: the mean
  // of the minibatch losses, the last step's rate, and train and test accuracy.
  EpochRecord rec;
  double loss_sum = 0;
  std::size_t batch_now = 0;
  std::size_t nan_outputs_epoch = 0;  // an epoch whose evaluation met NaN outputs
  clock::time_point t0, t1;
  auto study = std::make_shared<nn::LambdaCallback<T>>();
  study->epoch_begin = [&](nn::TrainingState<T>&) {
    t0 = clock::now();
    loss_sum = 0;
  };
  study->batch_begin = [&](nn::TrainingState<T>& s) {
    batch_now = s.batch + 1;
    rec.learning_rate = s.optimiser.learning_rate();
  };
  study->batch_end = [&](nn::TrainingState<T>& s) {
    loss_sum += s.batch_loss;
    if (s.batch + 1 == s.batches) t1 = clock::now();
    if (callbacks.on_batch)
      callbacks.on_batch(s.epoch, s.batch + 1, s.batches, loss_sum / double(s.batch + 1));
  };
  study->epoch_end = [&](nn::TrainingState<T>& s) {
    rec.epoch = s.epoch;
    rec.batch_loss = loss_sum / double(s.batches);
    bool nan_outputs = false;
    if (recipe.eval_train) {
      const Evaluation tr = evaluate(net, x_train, y_train);
      rec.train_loss = tr.loss;
      rec.train_accuracy = tr.accuracy;
      nan_outputs = std::isnan(tr.loss);
    } else {
      rec.train_loss = rec.train_accuracy = std::numeric_limits<double>::quiet_NaN();
    }
    if (x_test.shape(0) > 0) {
      const Evaluation te = evaluate(net, x_test, y_test);
      rec.test_loss = te.loss;
      rec.test_accuracy = te.accuracy;
      nan_outputs = nan_outputs || std::isnan(te.loss);
    }
    // Finite but huge weights can give NaN outputs, which the trainer's checks (the
    // batch losses, the parameters) do not see at the last epoch: stop here.
    if (nan_outputs) {
      nan_outputs_epoch = s.epoch;
      s.request_stop(nn::StopReason::Callback, "NaN outputs");
    }
    rec.seconds_train = std::chrono::duration<double>(t1 - t0).count();
    rec.seconds_eval = std::chrono::duration<double>(clock::now() - t1).count();
    if (history) history->push_back(rec);
    if (callbacks.on_epoch) callbacks.on_epoch(rec);
  };
  nn::Trainer<T> trainer(net, opt, cost, run);
  trainer.add_callback(study);
  const nn::History& h = trainer.fit(x_train, y_onehot);
  if (nan_outputs_epoch > 0)
    throw TrainingDiverged("training diverged: the network's outputs are NaN after epoch " +
                           std::to_string(nan_outputs_epoch) +
                           " (its weights are finite but too large); lower the learning rate");
  if (h.stop == nn::StopReason::NonFinite) {
    // The trainer put back the parameters of the last completed epoch.
    const nn::EpochRecord& last = h.epochs.back();
    if (std::isfinite(last.train_loss)) {  // parameters, not a loss, went non-finite
      const std::string prefix = "training stopped: ";
      const std::string what =
          h.message.rfind(prefix, 0) == 0 ? h.message.substr(prefix.size()) : h.message;
      throw TrainingDiverged("training diverged: " + what + "; lower the learning rate");
    }
    throw TrainingDiverged(
        "training diverged: loss " + format_g(last.train_loss) + " at epoch " +
        std::to_string(last.epoch) + ", batch " + std::to_string(batch_now) +
        "; lower the learning rate (" +
        (last.epoch > 1 ? "the parameters of epoch " + std::to_string(last.epoch - 1) + " are kept"
                        : std::string("the initial parameters are kept")) +
        ")");
  }
  return net;
}

// ---- model file: nn's versioned, checksummed format (nn/serialize.hpp) ----

template <class T>
void save_model(const nn::Network<T>& net, const std::string& path) {
  nn::save_network(net, path);
}

int model_element_size(const std::string& path) {
  return static_cast<int>(nn::inspect_model_file(path).scalar_bytes);
}

template <class T>
nn::Network<T> load_model(const std::string& path) {
  return nn::load_network<T>(path);
}

std::array<std::array<double, 10>, 10> row_percentages(
    const std::array<std::array<std::size_t, 10>, 10>& c) {
  std::array<std::array<double, 10>, 10> p{};
  for (int t = 0; t < 10; ++t) {
    std::size_t row = 0;
    for (int k = 0; k < 10; ++k)
      row += c[t][k];
    for (int k = 0; k < 10; ++k)
      p[t][k] = row ? 100.0 * double(c[t][k]) / double(row) : 0.0;
  }
  return p;
}

std::vector<ConfusedPair> most_confused(const std::array<std::array<std::size_t, 10>, 10>& c,
                                        std::size_t n) {
  const auto p = row_percentages(c);
  std::vector<ConfusedPair> pairs;
  for (int t = 0; t < 10; ++t)
    for (int k = 0; k < 10; ++k)
      if (t != k && c[t][k] > 0) pairs.push_back({t, k, c[t][k], p[t][k]});
  std::sort(pairs.begin(), pairs.end(), [](const ConfusedPair& a, const ConfusedPair& b) {
    return a.percent != b.percent ? a.percent > b.percent : a.count > b.count;
  });
  if (pairs.size() > n) pairs.resize(n);
  return pairs;
}

// MNIST digits are light on a dark background; a drawing on white paper is the
// opposite. The border (outer ring) tells which.
static void to_mnist_polarity(Images& im, bool* inverted) {
  double border = 0;
  int k = 0;
  for (int r = 0; r < 28; ++r)
    for (int c = 0; c < 28; ++c)
      if (r == 0 || c == 0 || r == 27 || c == 27) {
        border += im.pixels[std::size_t(r * 28 + c)];
        ++k;
      }
  const bool invert = border / k > 127;
  if (invert)
    for (auto& p : im.pixels)
      p = static_cast<std::uint8_t>(255 - p);
  if (inverted) *inverted = invert;
}

Images read_pgm(const std::string& path, bool* inverted) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot open image");
  // Two bytes and the whitespace after them: a file that is no PGM (a device like
  // /dev/zero, a large binary) is never read further.
  char head[2] = {};
  in.read(head, 2);
  const std::string magic(head, std::size_t(in.gcount()));
  const bool separated = std::isspace(in.peek()) != 0;
#ifdef XGRAD_MNIST_HAVE_PNG
  constexpr const char* kExpected = "a PNG or a PGM image (P2 or P5)";
#else
  constexpr const char* kExpected = "a PGM image (P2 or P5; this build reads no PNG)";
#endif
  if ((magic != "P5" && magic != "P2") || !separated)
    throw std::runtime_error(path + ": not " + kExpected +
                             "; convert other formats with e.g. "
                             "`convert in.jpg -resize 28x28 -colorspace Gray out.pgm`");
  auto number = [&](const char* what) {
    in >> std::ws;
    while (in.peek() == '#') {
      std::string comment;
      std::getline(in, comment);
      in >> std::ws;
    }
    long v = -1;
    if (!(in >> v) || v < 0) throw std::runtime_error(path + ": bad PGM header (" + what + ")");
    return v;
  };
  const long w = number("width"), h = number("height"), maxval = number("maxval");
  if (w != 28 || h != 28)
    throw std::runtime_error(path + ": image is " + std::to_string(w) + "x" + std::to_string(h) +
                             ", expected 28x28");
  if (maxval < 1 || maxval > 255)
    throw std::runtime_error(path + ": maxval " + std::to_string(maxval) + " (1..255 supported)");
  Images im;
  im.count = 1;
  im.rows = im.cols = 28;
  im.pixels.resize(784);
  if (magic == "P5") {
    in.get();  // the single whitespace after maxval
    if (!in.read(reinterpret_cast<char*>(im.pixels.data()), 784))
      throw std::runtime_error(path + ": truncated PGM pixel data");
    // Values above maxval are not pixels of this image (they would wrap around in the
    // scaling below); P2 refuses them too.
    for (std::size_t i = 0; i < im.pixels.size(); ++i)
      if (im.pixels[i] > maxval)
        throw std::runtime_error(path + ": pixel " + std::to_string(i) + " is " +
                                 std::to_string(int(im.pixels[i])) + ", above the maxval " +
                                 std::to_string(maxval));
  } else {
    for (auto& p : im.pixels) {
      long v = -1;
      if (!(in >> v) || v < 0) throw std::runtime_error(path + ": bad or missing PGM pixel value");
      if (v > maxval)
        throw std::runtime_error(path + ": pixel " + std::to_string(&p - im.pixels.data()) +
                                 " is " + std::to_string(v) + ", above the maxval " +
                                 std::to_string(maxval));
      p = static_cast<std::uint8_t>(v);
    }
  }
  for (auto& p : im.pixels)
    p = static_cast<std::uint8_t>(std::lround(p * 255.0 / double(maxval)));
  to_mnist_polarity(im, inverted);
  return im;
}

#ifdef XGRAD_MNIST_HAVE_PNG
namespace {
Images read_png(const std::string& path, bool* inverted) {
  png_image image{};
  image.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_file(&image, path.c_str()))
    throw std::runtime_error(path + ": not a readable PNG (" + image.message + ")");
  if (image.width != 28 || image.height != 28) {
    png_image_free(&image);
    throw std::runtime_error(path + ": image is " + std::to_string(image.width) + "x" +
                             std::to_string(image.height) + ", expected 28x28");
  }
  // Grey, with transparency composited onto white: a drawing app's transparent canvas
  // then reads as paper, and the polarity check below inverts it.
  image.format = PNG_FORMAT_GRAY;
  png_color white{255, 255, 255};
  Images im;
  im.count = 1;
  im.rows = im.cols = 28;
  im.pixels.resize(784);
  if (!png_image_finish_read(&image, &white, im.pixels.data(), 28, nullptr))
    throw std::runtime_error(path + ": corrupt PNG (" + image.message + ")");
  to_mnist_polarity(im, inverted);
  return im;
}
}  // namespace
#endif

Images read_image(const std::string& path, bool* inverted) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot open image");
  char magic[4] = {};
  in.read(magic, 4);
  if (std::memcmp(magic, "\x89PNG", 4) == 0) {
#ifdef XGRAD_MNIST_HAVE_PNG
    return read_png(path, inverted);
#else
    throw std::runtime_error(path +
                             ": PNG support was not built (libpng missing); "
                             "convert it to PGM");
#endif
  }
  return read_pgm(path, inverted);
}

#define XGRAD_MNIST_INSTANTIATE(T)                                                         \
  template Matrix<T> to_matrix<T>(const Images&);                                          \
  template Evaluation evaluate<T>(const nn::Network<T>&, const Matrix<T>&,                 \
                                  const std::vector<std::uint8_t>&);                       \
  template nn::Network<T> train<T>(                                                        \
      const Recipe&, const Matrix<T>&, const std::vector<std::uint8_t>&, const Matrix<T>&, \
      const std::vector<std::uint8_t>&, const Callbacks&, std::vector<EpochRecord>*);      \
  template void save_model<T>(const nn::Network<T>&, const std::string&);                  \
  template nn::Network<T> load_model<T>(const std::string&);
XGRAD_MNIST_INSTANTIATE(float)
XGRAD_MNIST_INSTANTIATE(double)

}  // namespace xgrad::mnist
