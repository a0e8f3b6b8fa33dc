// Data-parallel steps (TrainerOptions::shards): each minibatch is cut into contiguous row
// blocks whose forward and backward passes run on their own tapes, and the step is the
// one of the whole minibatch: shard costs weighted by their rows, the penalty counted
// once, gradients added in shard order. The numbers depend on the shard count, never
// on the thread count.
#include <cmath>
#include <random>
#include <vector>

#include <doctest/doctest.h>
#include <xtensor/xbuilder.hpp>
#include <xtensor/xview.hpp>

#include "message_of.hpp"

#include "xgrad/nn/data.hpp"
#include "xgrad/nn/dropout.hpp"
#include "xgrad/nn/trainer.hpp"
#include "xgrad/ops.hpp"
#include "xgrad/parallel.hpp"
#include "xgrad/threads.hpp"

using xgrad::Matrix;
using xgrad::Tape;
using namespace xgrad::nn;

namespace {

// Two inputs, three outputs, 47 rows: batch 10 leaves a last batch of 7.
void data(Matrix<double>& x, Matrix<double>& y) {
  std::mt19937_64 rng(11);
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  x = Matrix<double>({47, 2});
  y = Matrix<double>({47, 3});
  for (std::size_t i = 0; i < 47; ++i) {
    x(i, 0) = u(rng);
    x(i, 1) = u(rng);
    for (std::size_t k = 0; k < 3; ++k)
      y(i, k) = std::sin(x(i, 0) * double(k + 1)) + x(i, 1) * x(i, 1);
  }
}

Network<double> net(std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  return Network<double>({2, 12, 9, 3},
                         {Activation::tanh(), Activation::sigmoid(), Activation::identity()},
                         Initialiser::parse("glorot_uniform"), rng);
}

CostSpec mse_l2() {
  CostSpec c;
  c.cost = CostKind::MeanSquaredError;
  c.regularisation.penalty = Penalty::L2;
  c.regularisation.lambda = 1e-3;
  return c;
}

TrainerOptions options(std::size_t shards, std::size_t batch) {
  TrainerOptions o;
  o.epochs = 4;
  o.batch_size = batch;
  o.seed = 5;
  o.progress = false;
  o.shards = shards;
  return o;
}

std::vector<Matrix<double>> values_of(const Network<double>& n) {
  std::vector<Matrix<double>> out;
  for (const auto& p : n.parameters())
    out.push_back(p.value());
  return out;
}

std::vector<Matrix<double>> train(const TrainerOptions& o, int threads,
                                  History* history = nullptr) {
  Matrix<double> x, y;
  data(x, y);
  Network<double> n = net(3);
  auto opt = make_optimiser<double>("adam:lr=0.01", n.parameters());
  const int previous = xgrad::threads();
  xgrad::set_threads(threads);
  Trainer<double> trainer(n, *opt, mse_l2(), o);
  const History& h = trainer.fit(x, y);
  xgrad::set_threads(previous);
  if (history) *history = h;
  return values_of(n);
}

double max_abs_diff(const std::vector<Matrix<double>>& a, const std::vector<Matrix<double>>& b) {
  REQUIRE(a.size() == b.size());
  double d = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    REQUIRE(a[i].shape() == b[i].shape());
    for (std::size_t k = 0; k < a[i].size(); ++k)
      d = std::max(d, std::abs(a[i].data()[k] - b[i].data()[k]));
  }
  return d;
}

}  // namespace

TEST_CASE("sharded steps train the same network as whole minibatches, to rounding") {
  History one, three;
  const auto whole = train(options(1, 10), 1, &one);
  const auto sharded = train(options(3, 10), 1, &three);  // 3/3/4 rows, last batch 2/2/3
  // 20 Adam steps: only the grouping of the sums differs.
  CHECK(max_abs_diff(whole, sharded) < 1e-12);
  CHECK(max_abs_diff(whole, sharded) > 0.0);  // not the unsharded code path
  REQUIRE(one.epochs.size() == three.epochs.size());
  for (std::size_t e = 0; e < one.epochs.size(); ++e)
    CHECK(three.epochs[e].train_loss == doctest::Approx(one.epochs[e].train_loss).epsilon(1e-12));
}

TEST_CASE("sharded training gives the same bits at one and two threads, dropout too") {
  // Off: a busy machine must not turn the two-thread run into a serial one.
  xgrad::detail::set_contention_guard(false);
  for (const std::size_t shards : {2, 3}) {  // 3: two shards on one thread, one on the other
    for (const bool dropout : {false, true}) {
      CAPTURE(shards);
      CAPTURE(dropout);
      TrainerOptions o = options(shards, 16);
      if (dropout) o.dropout = Dropout{0.1, 0.25};
      const auto serial = train(o, 1);
      CHECK(max_abs_diff(serial, train(o, 2)) == 0.0);
    }
  }
  xgrad::detail::set_contention_guard(true);
}

TEST_CASE("float32 sharded training gives the same bits at one and two threads") {
  xgrad::detail::set_contention_guard(false);
  Matrix<double> x64, y64;
  data(x64, y64);
  const Matrix<float> x = xt::cast<float>(x64), y = xt::cast<float>(y64);
  auto trained = [&](int threads) {
    std::mt19937_64 rng(3);
    Network<float> n({2, 12, 9, 3},
                     {Activation::tanh(), Activation::sigmoid(), Activation::identity()},
                     Initialiser::parse("glorot_uniform"), rng);
    auto opt = make_optimiser<float>("adam:lr=0.01", n.parameters());
    const int previous = xgrad::threads();
    xgrad::set_threads(threads);
    Trainer<float> trainer(n, *opt, mse_l2(), options(2, 10));
    trainer.fit(x, y);
    xgrad::set_threads(previous);
    std::vector<float> flat;
    for (const auto& p : n.parameters())
      flat.insert(flat.end(), p.value().begin(), p.value().end());
    return flat;
  };
  CHECK(trained(1) == trained(2));
  xgrad::detail::set_contention_guard(true);
}

TEST_CASE("softmax cross-entropy: sharded steps train as whole minibatches, to rounding") {
  // The row weighting assumes each data cost is a mean over rows: check a second cost.
  std::mt19937_64 rng(21);
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  Matrix<double> x({61, 3}), y = xt::zeros<double>({61, 4});
  for (std::size_t i = 0; i < 61; ++i) {
    for (std::size_t k = 0; k < 3; ++k)
      x(i, k) = u(rng);
    y(i, (x(i, 0) > 0 ? 1 : 0) + (x(i, 1) > 0 ? 2 : 0)) = 1.0;
  }
  CostSpec ce;
  ce.cost = CostKind::CrossEntropy;
  auto trained = [&](std::size_t shards) {
    std::mt19937_64 init(4);
    Network<double> n({3, 10, 4}, {Activation::relu(), Activation::softmax()},
                      Initialiser::parse("he_normal"), init);
    auto opt = make_optimiser<double>("rmsprop:lr=0.01", n.parameters());
    Trainer<double> trainer(n, *opt, ce, options(shards, 16));  // last batch: 13 rows
    trainer.fit(x, y);
    return values_of(n);
  };
  const auto whole = trained(1);
  const auto sharded = trained(4);
  CHECK(max_abs_diff(whole, sharded) < 1e-12);
  CHECK(max_abs_diff(whole, sharded) > 0.0);
}

TEST_CASE("a batch with fewer rows than shards uses one shard per row") {
  // Batch 2: shards 5 run as 2 shards of one row each.
  CHECK(max_abs_diff(train(options(5, 2), 1), train(options(2, 2), 1)) == 0.0);
  // Full batch (0): 47 rows over 4 shards.
  CHECK(max_abs_diff(train(options(4, 0), 1), train(options(1, 0), 1)) < 1e-12);
}

TEST_CASE("one sharded step is the gradient step of the whole batch, penalty counted once") {
  // One SGD step on 8 rows in 2 shards with dropout and L2, against the step written
  // out here: shard s = rows [4s, 4s+4), cost weighted by 4/8, masks from stream s.
  Matrix<double> x, y;
  data(x, y);
  const Matrix<double> x8 = xt::view(x, xt::range(0, 8), xt::all());
  const Matrix<double> y8 = xt::view(y, xt::range(0, 8), xt::all());
  TrainerOptions o = options(2, 0);
  o.epochs = 1;
  o.dropout = Dropout{0.2, 0.3};
  o.dropout_seed = 77;
  const double lr = 0.5;

  Network<double> expected = net(3);
  auto before = expected.parameters();
  std::vector<Matrix<double>> grad;
  for (const auto& p : before)
    grad.push_back(xt::zeros<double>(p.value().shape()));
  for (std::size_t s = 0; s < 2; ++s) {
    Tape<double> tape;
    tape.set_parameter_grads_on_tape(true);
    DropoutMasks<double> masks(o.dropout, 77 + s * 0x9e3779b97f4a7c15ull);
    const std::vector<std::size_t> rows = iota_indices(8);
    const auto X = tape.gather_rows(x8, rows, 4 * s, 4 * s + 4);
    const auto Y = tape.gather_rows(y8, rows, 4 * s, 4 * s + 4);
    auto loss = data_cost(tape, expected, X, Y, CostKind::MeanSquaredError, &masks) * 0.5;
    if (s == 0) loss = xgrad::add(loss, penalty(tape, expected, mse_l2().regularisation));
    tape.backward(loss);
    tape.add_parameter_grads();
    for (std::size_t i = 0; i < before.size(); ++i) {
      grad[i] += before[i].grad();
      before[i].zero_grad();
    }
  }

  Network<double> trained = net(3);
  OptimiserOptions sgd;
  sgd.learning_rate = lr;
  auto opt = make_optimiser<double>("sgd", trained.parameters(), sgd);
  Trainer<double> trainer(trained, *opt, mse_l2(), o);
  trainer.fit(x8, y8);
  const auto after = trained.parameters();
  for (std::size_t i = 0; i < after.size(); ++i) {
    CAPTURE(i);
    const Matrix<double> want = before[i].value() - lr * grad[i];
    double d = 0;
    for (std::size_t k = 0; k < want.size(); ++k)
      d = std::max(d, std::abs(after[i].value().data()[k] - want.data()[k]));
    CHECK(d < 1e-15);
  }
}

TEST_CASE("a sharded run that diverges stops with the last good parameters") {
  Matrix<double> x, y;
  data(x, y);
  Network<double> n = net(3);
  const auto initial = values_of(n);
  auto opt = make_optimiser<double>("sgd:lr=1e200", n.parameters());
  Trainer<double> trainer(n, *opt, mse_l2(), options(3, 10));
  const History& h = trainer.fit(x, y);
  CHECK(h.stop == StopReason::NonFinite);
  CHECK(h.restored_epoch == 0);
  CHECK(all_finite(n.parameters()));
  CHECK(max_abs_diff(values_of(n), initial) == 0.0);
}

TEST_CASE("shards = 0 is refused with its name") {
  TrainerOptions o = options(0, 10);
  CHECK(message_of([&] { o.validate(); }) == "trainer: shards = 0 (1 means no sharding)");
}
