// The tape's gradients against the hand-derived backprop (report 000 eqs. 5, 7, 8, 17, 21,
// 23) for every activation x cost x regulariser on 0, 1 and 3 hidden layers, batch 1 and
// batch 5, in float64; and both against central finite differences. Run with
// XGRAD_GRADCHECK_TABLE=1 to print the results table of docs/nn.md.
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <sstream>

#include <doctest/doctest.h>

#include "nn_model_test_util.hpp"
#include "xgrad/gradcheck.hpp"
#include "xgrad/nn/reference_backprop.hpp"

using namespace nn_test;
using xgrad::Tape;

namespace {

struct Combo {
  std::string name;
  std::vector<std::size_t> sizes;
  std::vector<Activation> activations;
  CostSpec spec;
  std::size_t batch = 1;
  std::uint64_t seed = 1;
  /// Optional change of the drawn targets (soft cross-entropy targets).
  std::function<void(Matrix<double>&)> adjust_targets = nullptr;
};

struct Outcome {
  double tape_vs_ref = 0;  // max over parameters of relative_error(tape, reference)
  double cost_diff = 0;    // |C_tape − C_ref| / max(|C_ref|, tiny)
  // max|analytic − numeric| / max|numeric| over all parameters of the network: finite
  // differences carry ~1e-10 absolute noise, so the scale is the network's whole gradient.
  double tape_vs_fd = 0;  // the tape against FD of the tape's objective
  double ref_vs_fd = 0;   // the hand-derived against FD of the hand-derived objective
  bool ref_fd_passed = true;
  std::string ref_fd_failure;
  xgrad::GradcheckResult gradcheck;
};

constexpr double kTapeVsReference = 1e-12;  // float64, the bound
// Central differences, h = 1e-6 max(1, |θ|): the same pass rule as xgrad::gradcheck.
constexpr double kFdAtol = 1e-7;
constexpr double kFdRtol = 1e-5;

/// Central finite differences of f over every element of every parameter.
std::vector<Matrix<double>> finite_differences(std::vector<xgrad::Parameter<double>> params,
                                               const std::function<double()>& f) {
  std::vector<Matrix<double>> out;
  for (auto& p : params) {
    Matrix<double> g = xt::zeros<double>(p.value().shape());
    for (std::size_t i = 0; i < p.size(); ++i) {
      double& theta = p.value().data()[i];
      const double saved = theta;
      const double h = 1e-6 * std::max(1.0, std::abs(saved));
      theta = saved + h;
      const double up = f();
      theta = saved - h;
      const double down = f();
      theta = saved;
      g.data()[i] = (up - down) / (2 * h);
    }
    out.push_back(g);
  }
  return out;
}

double network_relative_error(const std::vector<Matrix<double>>& a,
                              const std::vector<Matrix<double>>& b) {
  double diff = 0, scale = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    for (std::size_t k = 0; k < a[i].size(); ++k) {
      diff = std::max(diff, std::abs(a[i].data()[k] - b[i].data()[k]));
      scale = std::max(scale, std::abs(b[i].data()[k]));
    }
  }
  return diff / std::max(scale, 1e-300);
}

Outcome check(const Combo& c) {
  std::mt19937_64 rng(c.seed);
  // Glorot-scaled weights keep 3-layer nets out of saturation (with N(0,1) weights a
  // softmax or tanh output saturates and every gradient is 0 up to rounding: a weak check).
  Initialiser init;
  init.weights = WeightInit::GlorotNormal;
  init.biases = BiasInit::Normal;  // non-zero biases: the L1 sign and bias paths matter
  init.bias_sigma = 0.5;
  Network<double> net(c.sizes, c.activations, init, rng);
  const Matrix<double> x = normal_matrix(c.batch, c.sizes.front(), c.seed + 101);
  Matrix<double> y = targets_for(c.spec.cost, c.batch, c.sizes.back(), c.seed + 202);
  if (c.adjust_targets) c.adjust_targets(y);

  Outcome o;
  double c_tape = 0, c_ref = 0;
  const auto tape = tape_gradients(net, x, y, c.spec, &c_tape);
  const auto ref = reference_gradients(net, x, y, c.spec, &c_ref);
  REQUIRE(tape.size() == ref.size());
  REQUIRE(tape.size() == 2 * (c.sizes.size() - 1));
  for (std::size_t i = 0; i < tape.size(); ++i) {
    REQUIRE(tape[i].shape() == ref[i].shape());
    o.tape_vs_ref = std::max(o.tape_vs_ref, relative_error(tape[i], ref[i]));
  }
  o.cost_diff = std::abs(c_tape - c_ref) / std::max(std::abs(c_ref), 1e-300);

  const xgrad::GradcheckParameterFunction f = [&](Tape<double>& t) {
    return objective(t, net, t.constant(x), t.constant(y), c.spec);
  };
  o.gradcheck = xgrad::gradcheck(f, net.parameters());

  const auto fd_tape = finite_differences(net.parameters(), [&] {
    Tape<double> t;
    return objective(t, net, t.constant(x), t.constant(y), c.spec).item();
  });
  ReferenceBackprop<double> reference(net);
  const auto fd_ref =
      finite_differences(net.parameters(), [&] { return reference.compute(x, y, c.spec); });
  o.tape_vs_fd = network_relative_error(tape, fd_tape);
  o.ref_vs_fd = network_relative_error(ref, fd_ref);
  for (std::size_t i = 0; i < tape.size(); ++i) {
    for (std::size_t k = 0; k < ref[i].size(); ++k) {
      const double a = ref[i].data()[k], n = fd_ref[i].data()[k];
      if (!(std::abs(a - n) <= kFdAtol + kFdRtol * std::abs(n)) && o.ref_fd_passed) {
        o.ref_fd_passed = false;
        std::ostringstream s;
        s << "parameter " << i << " element " << k << ": hand-derived " << a << ", numeric " << n;
        o.ref_fd_failure = s.str();
      }
    }
  }
  return o;
}

void require_agreement(const Combo& c, const Outcome& o) {
  INFO("combination: " << c.name);
  CHECK(o.tape_vs_ref <= kTapeVsReference);
  CHECK(o.cost_diff <= kTapeVsReference);
  INFO(o.gradcheck.message());
  CHECK(o.gradcheck.passed);
  INFO("hand-derived vs finite differences: " << o.ref_fd_failure);
  CHECK(o.ref_fd_passed);
}

std::string reg_name(const Regularisation& r) {
  if (r.penalty == Penalty::None) return "none";
  std::ostringstream s;
  s << (r.penalty == Penalty::L1 ? "L1" : "L2") << " λ=" << r.lambda
    << (r.include_biases ? " W+b" : " W");
  return s.str();
}

std::string arch_name(const std::vector<std::size_t>& sizes, const std::vector<Activation>& acts) {
  std::ostringstream s;
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    s << sizes[i];
    if (i < acts.size()) s << " -" << acts[i].name() << "-> ";
  }
  return s.str();
}

const std::vector<Regularisation> kRegularisers = {
    {Penalty::None, 0.0, false}, {Penalty::L1, 0.05, false}, {Penalty::L1, 0.05, true},
    {Penalty::L2, 0.05, false},  {Penalty::L2, 0.05, true},
};

const std::vector<Activation> kHidden = {
    Activation::identity(), Activation::sigmoid(),       Activation::tanh(),
    Activation::relu(),     Activation::leaky_relu(0.1), Activation::elu(0.7),
};

/// Aggregated rows of the table: worst case per (output + cost, hidden activation).
struct Row {
  std::size_t cases = 0;
  double tape_vs_ref = 0, tape_vs_fd = 0, ref_vs_fd = 0;
  void add(const Outcome& o) {
    ++cases;
    tape_vs_ref = std::max(tape_vs_ref, o.tape_vs_ref);
    tape_vs_fd = std::max(tape_vs_fd, o.tape_vs_fd);
    ref_vs_fd = std::max(ref_vs_fd, o.ref_vs_fd);
  }
};

void print_rows(const std::string& head, const std::vector<std::pair<std::string, Row>>& rows) {
  const char* env = std::getenv("XGRAD_GRADCHECK_TABLE");
  if (env == nullptr || std::string(env) != "1") return;
  for (const auto& [name, r] : rows) {
    std::printf("| %s | %s | %zu | %.1e | %.1e | %.1e |\n", head.c_str(), name.c_str(), r.cases,
                r.tape_vs_ref, r.tape_vs_fd, r.ref_vs_fd);
  }
}

/// Every hidden activation x regulariser x {0, 1, 3 hidden layers} x {batch 1, batch 5}
/// for one output activation + cost.
void sweep(const std::string& label, Activation output, CostKind cost, std::size_t outs) {
  std::vector<std::pair<std::string, Row>> rows;
  std::map<std::string, Row> by_reg;
  std::uint64_t seed = std::hash<std::string>{}(label) % 100000;
  auto run = [&](const std::vector<std::size_t>& sizes, const std::vector<Activation>& acts,
                 Row& row) {
    for (const Regularisation& reg : kRegularisers) {
      for (std::size_t batch : {std::size_t(1), std::size_t(5)}) {
        Combo c{label + ", " + arch_name(sizes, acts) + ", " + reg_name(reg) + ", batch " +
                    std::to_string(batch),
                sizes,
                acts,
                CostSpec{cost, reg},
                batch,
                ++seed};
        const Outcome o = check(c);
        require_agreement(c, o);
        row.add(o);
        by_reg[reg_name(reg)].add(o);
      }
    }
  };
  Row none;
  run({3, outs}, {output}, none);
  rows.push_back({"no hidden layer", none});
  for (const Activation& h : kHidden) {
    Row row;
    run({3, 5, outs}, {h, output}, row);
    run({3, 4, 3, 4, outs}, {h, h, h, output}, row);
    rows.push_back({"hidden " + h.name() + " (1 and 3 layers)", row});
  }
  Row mixed;  // different activations in one network
  run({4, 3, 5, 3, outs}, {Activation::tanh(), Activation::elu(), Activation::relu(), output},
      mixed);
  run({2, 6, 4, 3, outs},
      {Activation::leaky_relu(), Activation::sigmoid(), Activation::softmax(), output}, mixed);
  rows.push_back({"mixed hidden (tanh/elu/relu, leaky/sigmoid/softmax)", mixed});
  for (const auto& [name, r] : by_reg)
    rows.push_back({"all architectures, " + name, r});
  print_rows(label, rows);
}

}  // namespace

TEST_CASE(
    "backprop check: tape = hand-derived backprop = finite differences, MSE and identity output") {
  sweep("identity + MSE", Activation::identity(), CostKind::MeanSquaredError, 2);
}

TEST_CASE(
    "backprop check: tape = hand-derived = finite differences, MSE and sigmoid or tanh output") {
  sweep("sigmoid + MSE", Activation::sigmoid(), CostKind::MeanSquaredError, 2);
  sweep("tanh + MSE", Activation::tanh(), CostKind::MeanSquaredError, 2);
}

TEST_CASE(
    "backprop check: tape = hand-derived = finite differences, MSE and softmax output (full "
    "Jacobian)") {
  sweep("softmax + MSE", Activation::softmax(), CostKind::MeanSquaredError, 3);
}

TEST_CASE("backprop check: tape = hand-derived = finite differences, BCE and sigmoid output") {
  sweep("sigmoid + BCE", Activation::sigmoid(), CostKind::BinaryCrossEntropy, 2);
}

TEST_CASE(
    "backprop check: tape = hand-derived = finite differences, cross-entropy and softmax output") {
  sweep("softmax + CE", Activation::softmax(), CostKind::CrossEntropy, 4);
}

TEST_CASE(
    "backprop check: report 000's case, 3 hidden layers of 3 with ReLU, Sigmoid, "
    "LeakyReLU and L1 lambda 1e-2") {
  // Report 000 §III.A.2: the Runge regression network (1 input, 1 output, MSE) with three
  // hidden layers of 3 nodes, L1 on weights and biases (eq. 22) with λ = 1e-2.
  for (std::size_t batch : {std::size_t(1), std::size_t(20)}) {
    Combo c{"report 000 check, batch " + std::to_string(batch),
            {1, 3, 3, 3, 1},
            {Activation::relu(), Activation::sigmoid(), Activation::leaky_relu(),
             Activation::identity()},
            CostSpec{CostKind::MeanSquaredError, {Penalty::L1, 1e-2, true}},
            batch,
            7000 + batch};
    const Outcome o = check(c);
    require_agreement(c, o);
    Row r;
    r.add(o);
    print_rows("report 000 check (1-3-3-3-1, L1 λ=1e-2 W+b)",
               {{"batch " + std::to_string(batch), r}});
  }
}

TEST_CASE("backprop check: cross-entropy with soft targets") {
  // Label smoothing (rows sum to 1, none one-hot) and rows that do not sum to 1: the
  // gradient is then (ŷ Σ_k y_k − y)/n, not eq. 21's (ŷ − y)/n, on both code paths.
  const auto smooth = [](Matrix<double>& y) { y = 0.9 * y + 0.1 / double(y.shape(1)); };
  const auto scaled = [](Matrix<double>& y) {
    for (std::size_t i = 0; i < y.shape(0); ++i) {
      for (std::size_t j = 0; j < y.shape(1); ++j)
        y(i, j) = 0.5 * y(i, j) + 0.1 * double(i + j);
    }
  };
  std::uint64_t seed = 9100;
  for (const auto& adjust : {std::function<void(Matrix<double>&)>(smooth),
                             std::function<void(Matrix<double>&)>(scaled)}) {
    for (const Regularisation& reg : kRegularisers) {
      Combo c{"softmax + CE, soft targets, " + reg_name(reg),
              {3, 5, 4, 4},
              {Activation::tanh(), Activation::elu(), Activation::softmax()},
              CostSpec{CostKind::CrossEntropy, reg},
              6,
              ++seed,
              adjust};
      require_agreement(c, check(c));
    }
  }
}

TEST_CASE("backprop check: the comparison can fail") {
  // Guards the checker itself: a perturbed gradient or a wrong convention is caught.
  std::mt19937_64 rng(5);
  Network<double> net({3, 4, 2}, {Activation::tanh(), Activation::identity()}, Initialiser{}, rng);
  const Matrix<double> x = normal_matrix(6, 3, 11);
  const Matrix<double> y = normal_matrix(6, 2, 12);
  const CostSpec spec{CostKind::MeanSquaredError, {Penalty::L2, 0.1, false}};
  const auto tape = tape_gradients(net, x, y, spec);
  auto ref = reference_gradients(net, x, y, spec);
  ref[2](0, 0) *= 1 + 1e-9;
  CHECK(relative_error(tape[2], ref[2]) > kTapeVsReference);
  // The report 001 convention (λ/(2n)) is a different objective: the L2 term differs.
  CostSpec other = spec;
  other.regularisation.lambda = 0.1 / (2 * 6);
  const auto ref_other = reference_gradients(net, x, y, other);
  CHECK(relative_error(tape[0], ref_other[0]) > 1e-3);
}

TEST_CASE("backprop check: reference minibatch gather equals the gathered matrices") {
  std::mt19937_64 rng(9);
  Network<double> net({3, 5, 4}, {Activation::sigmoid(), Activation::softmax()}, Initialiser{},
                      rng);
  const Matrix<double> x = normal_matrix(10, 3, 21);
  const Matrix<double> y = targets_for(CostKind::CrossEntropy, 10, 4, 22);
  const std::vector<std::size_t> rows = {7, 2, 9, 0, 4, 4, 1};
  Matrix<double> xb({3, 3}), yb({3, 4});
  for (std::size_t i = 0; i < 3; ++i) {
    for (std::size_t j = 0; j < 3; ++j)
      xb(i, j) = x(rows[2 + i], j);
    for (std::size_t j = 0; j < 4; ++j)
      yb(i, j) = y(rows[2 + i], j);
  }
  const CostSpec spec{CostKind::CrossEntropy, {}};
  ReferenceBackprop<double> r(net);
  const double c1 = r.compute(x, y, rows, 2, 5, spec);
  const auto g1 = r.gradients();
  const double c2 = r.compute(xb, yb, spec);
  CHECK(c1 == c2);
  for (std::size_t i = 0; i < g1.size(); ++i)
    CHECK(g1[i] == r.gradients()[i]);
  CHECK_THROWS_WITH_AS(r.compute(x, y, rows, 5, 9, spec),
                       "ReferenceBackprop::compute: range [5, 9) outside an index list of 7",
                       std::out_of_range);
}

TEST_CASE("backprop check: accumulate adds the gradients into the parameters' grads") {
  std::mt19937_64 rng(17);
  Network<double> net({3, 6, 4}, {Activation::relu(), Activation::softmax()},
                      Initialiser::parse("he_normal"), rng);
  const Matrix<double> x = normal_matrix(9, 3, 41);
  const Matrix<double> y = targets_for(CostKind::CrossEntropy, 9, 4, 42);
  const std::vector<std::size_t> rows = {8, 1, 3, 3, 0, 5};
  const CostSpec spec{CostKind::CrossEntropy, {Penalty::L1, 0.02, true}};
  ReferenceBackprop<double> r(net);
  const double c = r.compute(x, y, rows, 1, 6, spec);
  const auto expected = r.gradients();
  auto params = net.parameters();
  for (auto& p : params)
    p.zero_grad();
  CHECK(r.accumulate(x, y, rows, 1, 6, spec) == c);
  for (std::size_t i = 0; i < params.size(); ++i) {
    CHECK(relative_error(params[i].grad(), expected[i]) <= 1e-15);
  }
  r.accumulate(x, y, rows, 1, 6, spec);  // a second pass adds, as a second backward does
  for (std::size_t i = 0; i < params.size(); ++i) {
    const Matrix<double> twice = 2.0 * expected[i];
    CHECK(relative_error(params[i].grad(), twice) <= 1e-15);
    CHECK(r.gradients()[i] == expected[i]);  // untouched by accumulate
  }
  // The same as the tape's accumulated gradient of the same minibatch.
  Matrix<double> xb({5, 3}), yb({5, 4});
  for (std::size_t i = 0; i < 5; ++i) {
    for (std::size_t j = 0; j < 3; ++j)
      xb(i, j) = x(rows[1 + i], j);
    for (std::size_t j = 0; j < 4; ++j)
      yb(i, j) = y(rows[1 + i], j);
  }
  const auto tape = tape_gradients(net, xb, yb, spec);
  for (auto& p : params)
    p.zero_grad();
  r.accumulate(xb, yb, spec);
  for (std::size_t i = 0; i < params.size(); ++i) {
    CHECK(relative_error(params[i].grad(), tape[i]) <= kTapeVsReference);
  }
}

TEST_CASE("backprop check: add_to_parameter_grads accumulates like backward") {
  std::mt19937_64 rng(13);
  Network<float> net({2, 3, 1}, {Activation::elu(), Activation::sigmoid()}, Initialiser{}, rng);
  xgrad::Matrix<float> x = normal_matrix<float>(4, 2, 31);
  xgrad::Matrix<float> y = targets_for<float>(CostKind::BinaryCrossEntropy, 4, 1, 32);
  const CostSpec spec{CostKind::BinaryCrossEntropy, {Penalty::L2, 0.01, true}};
  ReferenceBackprop<float> r(net);
  r.compute(x, y, spec);
  for (auto& p : net.parameters())
    p.zero_grad();
  r.add_to_parameter_grads();
  r.add_to_parameter_grads();
  const auto params = net.parameters();
  for (std::size_t i = 0; i < params.size(); ++i) {
    const xgrad::Matrix<float> twice = 2.0f * r.gradients()[i];
    CHECK(params[i].grad() == twice);
  }
}
