// Optimisers: each update rule against numbers worked out by hand from its formula over
// two steps, the factory and its errors, and loss reduction by training with each.
#include <algorithm>
#include <cmath>
#include <functional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <doctest/doctest.h>

#include "message_of.hpp"

#include "xgrad/nn/optimiser.hpp"
#include "xgrad/nn/trainer.hpp"
#include "xgrad/parallel.hpp"
#include "xgrad/threads.hpp"

using xgrad::Matrix;
using xgrad::Parameter;
using namespace xgrad::nn;

namespace {

/// η = 0.1, ω = 0.9, ρ = 0.9, β1 = 0.9, β2 = 0.999, ε = 1e-8: the hand-worked examples'.
OptimiserOptions hand_worked_options() {
  OptimiserOptions o;
  o.learning_rate = 0.1;
  o.momentum = 0.9;
  o.rho = 0.9;
  o.beta1 = 0.9;
  o.beta2 = 0.999;
  o.epsilon = 1e-8;
  return o;
}

// θ0 = [0.5, -1, 2]; step 1 with g1 = [0.1, -0.2, 0.3], step 2 with g2 = [0.4, 0, -0.5];
// η = 0.1, ω = 0.9, ρ = 0.9, β1 = 0.9, β2 = 0.999, ε = 1e-8 throughout.
template <class T>
std::vector<double> two_steps(const std::string& name,
                              std::unique_ptr<Optimiser<T>>* keep = nullptr) {
  Parameter<T> p(Matrix<T>{{T(0.5), T(-1.0), T(2.0)}}, "theta");
  auto opt = make_optimiser<T>(name, {p}, hand_worked_options());
  p.grad() = Matrix<T>{{T(0.1), T(-0.2), T(0.3)}};
  opt->step();
  p.grad() = Matrix<T>{{T(0.4), T(0.0), T(-0.5)}};
  opt->step();
  std::vector<double> out(p.value().begin(), p.value().end());
  if (keep) *keep = std::move(opt);
  return out;
}

template <class T>
void check_close(const std::vector<double>& got, const std::vector<double>& want, double rel) {
  REQUIRE(got.size() == want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    INFO("element " << i << ": got " << got[i] << ", want " << want[i]);
    CHECK(std::abs(got[i] - want[i]) <= rel * std::max(1.0, std::abs(want[i])));
  }
}

template <class T>
void check_state(const Optimiser<T>& opt, std::size_t k, const std::vector<double>& want,
                 double rel) {
  const std::vector<T>& s = opt.state(0, k);
  check_close<T>(std::vector<double>(s.begin(), s.end()), want, rel);
}

// float32 carries ~7 digits; the tolerances are a few ulps of the values here.
template <class T>
constexpr double kRel = sizeof(T) == 8 ? 1e-13 : 2e-6;

}  // namespace

TEST_CASE_TEMPLATE("sgd and gd two steps match theta - eta g", T, float, double) {
  // θ2 = θ0 − η (g1 + g2) = [0.5 − 0.05, −1 + 0.02, 2 + 0.02].
  check_close<T>(two_steps<T>("sgd"), {0.45, -0.98, 2.02}, kRel<T>);
  check_close<T>(two_steps<T>("gd"), {0.45, -0.98, 2.02}, kRel<T>);
}

TEST_CASE_TEMPLATE("momentum two steps match report 003", T, float, double) {
  // v1 = η g1 = [0.01, −0.02, 0.03]; θ1 = [0.49, −0.98, 1.97];
  // v2 = ω v1 + η g2 = [0.009 + 0.04, −0.018, 0.027 − 0.05] = [0.049, −0.018, −0.023];
  // θ2 = θ1 − v2 = [0.441, −0.962, 1.993].
  std::unique_ptr<Optimiser<T>> opt;
  check_close<T>(two_steps<T>("momentum", &opt), {0.441, -0.962, 1.993}, kRel<T>);
  check_state(*opt, 0, {0.049, -0.018, -0.023}, kRel<T>);
}

TEST_CASE_TEMPLATE("adagrad two steps match its formula", T, float, double) {
  // G1 = g1² = [0.01, 0.04, 0.09]; θ1 = θ0 − η g1/(√G1 + ε) ≈ θ0 − 0.1 sign(g1)
  //    = [0.4, −0.9, 1.9] (to 1e-8 relative: ε/|g| ≤ 1e-7 of the 0.1 step);
  // G2 = G1 + g2² = [0.17, 0.04, 0.34];
  // θ2 = θ1 − 0.1 [0.4/√0.17, 0/0.2, −0.5/√0.34] = [0.4 − 0.0970142500, −0.9, 1.9 + 0.0857492926].
  // Written with ε: the exact values below.
  std::unique_ptr<Optimiser<T>> opt;
  check_close<T>(two_steps<T>("adagrad", &opt),
                 {0.3029857623384069, -0.9000000049999998, 1.9857492944339996}, kRel<T>);
  check_state(*opt, 0, {0.17, 0.04, 0.34}, kRel<T>);
}

TEST_CASE_TEMPLATE("rmsprop two steps match its formula", T, float, double) {
  // s1 = (1 − ρ) g1² = [0.001, 0.004, 0.009]; θ1 = θ0 − η g1/√s1 = θ0 − 0.1 √10 sign(g1)
  //    = [0.5 − 0.3162278, −1 + 0.3162278, 2 − 0.3162278];
  // s2 = ρ s1 + (1 − ρ) g2² = [0.0009 + 0.016, 0.0036, 0.0081 + 0.025] = [0.0169, 0.0036, 0.0331];
  // θ2 = θ1 − 0.1 [0.4/0.13, 0, −0.5/√0.0331] = [0.1837722 − 0.3076923, −0.6837722, 1.6837722 +
  // 0.2748249].
  std::unique_ptr<Optimiser<T>> opt;
  check_close<T>(two_steps<T>("rmsprop", &opt),
                 {-0.12391995004054018, -0.683772283983154, 1.958597107175409}, kRel<T>);
  check_state(*opt, 0, {0.0169, 0.0036, 0.0331}, kRel<T>);
}

TEST_CASE_TEMPLATE("adam two steps match the bias-corrected formula", T, float, double) {
  // t = 1: m = 0.1 g1, v = 0.001 g1², m̂ = g1, v̂ = g1² → θ1 = θ0 − 0.1 sign(g1) = [0.4, −0.9, 1.9].
  // t = 2: m = 0.9·0.1 g1 + 0.1 g2 = [0.049, −0.018, −0.023];
  //        v = 0.999·0.001 g1² + 0.001 g2² = [0.00016999, 0.00003996, 0.00033991];
  //        m̂ = m / (1 − 0.81) = m / 0.19, v̂ = v / (1 − 0.998001) = v / 0.001999;
  //        θ2 = θ1 − 0.1 m̂/(√v̂ + ε) = [0.4 − 0.0884376, −0.9 + 0.0670058, 1.9 + 0.0706439].
  std::unique_ptr<Optimiser<T>> opt;
  check_close<T>(two_steps<T>("adam", &opt),
                 {0.311562363975117, -0.8329941843255585, 1.9293561230981282}, kRel<T>);
  check_state(*opt, 0, {0.049, -0.018, -0.023}, kRel<T>);
  check_state(*opt, 1, {0.00016999, 0.00003996, 0.00033991}, kRel<T>);
  CHECK(opt->steps() == 2);
}

namespace {

// The two steps of two_steps() on a 3x11 parameter: 33 elements, several whole SIMD
// registers (4 doubles or 8 floats with AVX2, 8 or 16 with AVX-512) plus a tail, so the
// vectorised body runs, not only the scalar tail. Element k holds θ0, g1 and g2 of
// column k mod 3 of two_steps(); its result must be that column's hand-computed value.
// Returns the optimiser so its state can be checked too.
template <class T>
std::unique_ptr<Optimiser<T>> two_steps_3x11(const std::string& name, std::vector<double>& theta) {
  const double theta0[3] = {0.5, -1.0, 2.0};
  const double g1[3] = {0.1, -0.2, 0.3};
  const double g2[3] = {0.4, 0.0, -0.5};
  Matrix<T> start({3, 11});
  for (std::size_t k = 0; k < 33; ++k)
    start.data()[k] = static_cast<T>(theta0[k % 3]);
  Parameter<T> p(start, "theta");
  auto opt = make_optimiser<T>(name, {p}, hand_worked_options());
  for (const double* g : {g1, g2}) {
    for (std::size_t k = 0; k < 33; ++k)
      p.grad().data()[k] = static_cast<T>(g[k % 3]);
    opt->step();
  }
  theta.assign(p.value().begin(), p.value().end());
  return opt;
}

// The three per-column values repeated over the 33 elements of two_steps_3x11().
std::vector<double> tiled(const std::vector<double>& column_values) {
  std::vector<double> out(33);
  for (std::size_t k = 0; k < 33; ++k)
    out[k] = column_values[k % 3];
  return out;
}

}  // namespace

TEST_CASE_TEMPLATE("sgd and gd: every element of a multi-register parameter follows theta -= eta g",
                   T, float, double) {
  for (const char* name : {"sgd", "gd"}) {
    CAPTURE(name);
    std::vector<double> theta;
    two_steps_3x11<T>(name, theta);
    check_close<T>(theta, tiled({0.45, -0.98, 2.02}), kRel<T>);
  }
}

TEST_CASE_TEMPLATE(
    "momentum: every element of a multi-register parameter follows v = omega v + eta g, theta -= v",
    T, float, double) {
  // As in "momentum two steps match report 003": v2 = ω v1 + η g2 = [0.049, −0.018, −0.023],
  // θ2 = [0.441, −0.962, 1.993]. With ω replaced by η in v2, θ2 would be [0.481, ...].
  std::vector<double> theta;
  const auto opt = two_steps_3x11<T>("momentum", theta);
  check_close<T>(theta, tiled({0.441, -0.962, 1.993}), kRel<T>);
  check_state(*opt, 0, tiled({0.049, -0.018, -0.023}), kRel<T>);
}

TEST_CASE_TEMPLATE(
    "adagrad: every element of a multi-register parameter follows G += g^2, theta -= eta g / "
    "(sqrt G + eps)",
    T, float, double) {
  std::vector<double> theta;
  const auto opt = two_steps_3x11<T>("adagrad", theta);
  check_close<T>(theta, tiled({0.3029857623384069, -0.9000000049999998, 1.9857492944339996}),
                 kRel<T>);
  check_state(*opt, 0, tiled({0.17, 0.04, 0.34}), kRel<T>);
}

TEST_CASE_TEMPLATE(
    "rmsprop: every element of a multi-register parameter follows s = rho s + (1 - rho) g^2, "
    "theta -= eta g / (sqrt s + eps)",
    T, float, double) {
  // s2 = ρ (1 − ρ) g1² + (1 − ρ) g2² = [0.0169, 0.0036, 0.0331] (worked in "rmsprop two steps
  // match its formula"); without the (1 − ρ) factor s would be ten times larger.
  std::vector<double> theta;
  const auto opt = two_steps_3x11<T>("rmsprop", theta);
  check_close<T>(theta, tiled({-0.12391995004054018, -0.683772283983154, 1.958597107175409}),
                 kRel<T>);
  check_state(*opt, 0, tiled({0.0169, 0.0036, 0.0331}), kRel<T>);
}

TEST_CASE_TEMPLATE(
    "adam: every element of a multi-register parameter follows the bias-corrected formula", T,
    float, double) {
  std::vector<double> theta;
  const auto opt = two_steps_3x11<T>("adam", theta);
  check_close<T>(theta, tiled({0.311562363975117, -0.8329941843255585, 1.9293561230981282}),
                 kRel<T>);
  check_state(*opt, 0, tiled({0.049, -0.018, -0.023}), kRel<T>);
  check_state(*opt, 1, tiled({0.00016999, 0.00003996, 0.00033991}), kRel<T>);
}

TEST_CASE_TEMPLATE(
    "adam after reset_state steps like a fresh adam: bias correction restarts at t = 1", T, float,
    double) {
  // Step 1 from θ0 = [0.5, −1, 2] with g1 = [0.1, −0.2, 0.3], then reset_state(), then a step
  // with g2 = [0.4, −0.25, −0.5]. A fresh Adam's first step has m = (1 − β1) g,
  // v = (1 − β2) g², m̂ = g, v̂ = g², so θ ← θ − η g / (|g| + ε). Were t not reset, the
  // second step would use m̂ = m / (1 − β1²) = m / 0.19, a step of 0.1/0.19·√0.001999/0.1 ≈
  // 0.0235 instead of 0.1.
  const double theta0[3] = {0.5, -1.0, 2.0};
  const double g1[3] = {0.1, -0.2, 0.3};
  const double g2[3] = {0.4, -0.25, -0.5};
  const double eta = 0.1, eps = 1e-8;
  Parameter<T> p(Matrix<T>{{T(theta0[0]), T(theta0[1]), T(theta0[2])}}, "theta");
  auto opt = make_optimiser<T>("adam:lr=0.1,beta1=0.9,beta2=0.999,eps=1e-8", {p});
  p.grad() = Matrix<T>{{T(g1[0]), T(g1[1]), T(g1[2])}};
  opt->step();
  opt->reset_state();
  CHECK(opt->steps() == 0);
  check_state(*opt, 0, {0.0, 0.0, 0.0}, 0.0);
  check_state(*opt, 1, {0.0, 0.0, 0.0}, 0.0);
  p.grad() = Matrix<T>{{T(g2[0]), T(g2[1]), T(g2[2])}};
  opt->step();
  CHECK(opt->steps() == 1);
  std::vector<double> want(3), m(3), v(3);
  for (std::size_t i = 0; i < 3; ++i) {
    const double theta1 = theta0[i] - eta * g1[i] / (std::abs(g1[i]) + eps);
    want[i] = theta1 - eta * g2[i] / (std::abs(g2[i]) + eps);
    m[i] = 0.1 * g2[i];
    v[i] = 0.001 * g2[i] * g2[i];
  }
  check_close<T>(std::vector<double>(p.value().begin(), p.value().end()), want, kRel<T>);
  check_state(*opt, 0, m, kRel<T>);
  check_state(*opt, 1, v, kRel<T>);
}

TEST_CASE("adam vectorised body and scalar tail agree element by element") {
  // 37 elements: whole AVX registers plus a tail; every element gets the same g, so
  // every element must end with the same value whichever path updated it.
  Parameter<float> p(Matrix<float>(std::array<std::size_t, 2>{1, 37}, 0.25f));
  auto opt = make_optimiser<float>("adam:lr=0.01", {p});
  for (int s = 0; s < 5; ++s) {
    p.grad().fill(0.3f - 0.1f * static_cast<float>(s));
    opt->step();
  }
  for (std::size_t i = 1; i < 37; ++i)
    CHECK(p.value()(0, i) == p.value()(0, 0));
}

TEST_CASE_TEMPLATE(
    "every optimiser updates a large parameter bit-identically at one and two threads", T, float,
    double) {
  // 300 x 217 = 65,100 elements: split across two threads (xgrad::kParallelItems each at
  // least), with a tail; plus a small bias that stays on one thread.
  REQUIRE(300 * 217 >= 2 * xgrad::kParallelItems);
  const auto run = [](const std::string& name, int threads) {
    const int before = xgrad::threads();
    xgrad::set_threads(threads);
    std::mt19937 rng(11);
    std::normal_distribution<double> n01;
    Matrix<T> w = xt::zeros<T>({std::size_t{300}, std::size_t{217}});
    for (T& x : w)
      x = static_cast<T>(n01(rng));
    Parameter<T> weight(w, "W"), bias(Matrix<T>{{T(0.1), T(-0.2)}}, "b");
    auto opt = make_optimiser<T>(name, {weight, bias});
    for (int s = 0; s < 3; ++s) {
      for (T& g : weight.grad())
        g = static_cast<T>(n01(rng));
      bias.grad().fill(T(0.5));
      s == 2 ? opt->step_and_zero_grad() : opt->step();
    }
    xgrad::set_threads(before);
    CHECK(std::all_of(weight.grad().begin(), weight.grad().end(), [](T g) { return g == T(0); }));
    return std::make_pair(Matrix<T>(weight.value()), Matrix<T>(bias.value()));
  };
  for (const std::string name : {"gd", "sgd", "momentum", "adagrad", "rmsprop", "adam"}) {
    CAPTURE(name);
    const auto one = run(name, 1), two = run(name, 2);
    CHECK(one.first == two.first);
    CHECK(one.second == two.second);
  }
}

TEST_CASE("optimiser step updates in place and zero_grad clears the shared grads") {
  Parameter<double> p(Matrix<double>{{1.0, 2.0}});
  Parameter<double> alias = p;  // the network's handle
  const double* before = p.value().data();
  auto opt = make_optimiser<double>("sgd:lr=0.5", {p});
  alias.grad() = Matrix<double>{{2.0, -2.0}};
  opt->step();
  CHECK(alias.value()(0, 0) == 0.0);
  CHECK(alias.value()(0, 1) == 3.0);
  CHECK(p.value().data() == before);
  opt->zero_grad();
  CHECK(alias.grad()(0, 0) == 0.0);
  CHECK(alias.grad()(0, 1) == 0.0);
}

TEST_CASE("optimiser factory parses names and hyperparameters") {
  Parameter<double> p(Matrix<double>{{1.0}});
  auto opt = make_optimiser<double>("Adam:lr=0.02,beta1=0.8,beta2=0.99,eps=1e-6", {p});
  CHECK(opt->kind() == OptimiserKind::Adam);
  CHECK(opt->learning_rate() == 0.02);
  CHECK(opt->options().beta1 == 0.8);
  CHECK(opt->options().beta2 == 0.99);
  CHECK(opt->options().epsilon == 1e-6);
  CHECK(make_optimiser<double>("gd", {p})->full_batch());
  CHECK_FALSE(make_optimiser<double>("sgd", {p})->full_batch());
  for (const char* name : {"gd", "sgd", "momentum", "adagrad", "rmsprop", "adam"}) {
    CHECK(std::string(make_optimiser<double>(name, {p})->name()) == name);
  }
}

TEST_CASE("optimiser factory rejects bad names and values naming them") {
  Parameter<double> p(Matrix<double>{{1.0}});
  CHECK(message_of([&] { make_optimiser<double>("adamw", {p}); }).find("'adamw'") !=
        std::string::npos);
  CHECK(message_of([&] { make_optimiser<double>("adam:lr=-1", {p}); }).find("learning rate = -1") !=
        std::string::npos);
  CHECK(message_of([&] {
          make_optimiser<double>("momentum:momentum=1", {p});
        }).find("momentum = 1") != std::string::npos);
  CHECK(message_of([&] { make_optimiser<double>("adam:beta2=1.5", {p}); }).find("beta2 = 1.5") !=
        std::string::npos);
  CHECK(message_of([&] { make_optimiser<double>("rmsprop:rho=abc", {p}); }).find("'abc'") !=
        std::string::npos);
  // An unknown key lists the keys this optimiser takes, not those of the others.
  CHECK(message_of([&] { make_optimiser<double>("adam:gamma=0.1", {p}); }) ==
        "optimiser 'adam:gamma=0.1': unknown key 'gamma' (adam takes lr, beta1, beta2, eps)");
  CHECK(message_of([&] { make_optimiser<double>("adam:eps=0", {p}); }).find("epsilon = 0") !=
        std::string::npos);
  CHECK(message_of([&] { make_optimiser<double>("sgd:lr=1e400", {p}); }) ==
        "optimiser 'sgd:lr=1e400': value '1e400' of lr is out of the range of a double");
  // An underflow is a number (a subnormal, or 0 below that): the rate's own check decides.
  CHECK(make_optimiser<double>("sgd:lr=1e-310", {p})->learning_rate() == 1e-310);
  CHECK(message_of([&] {
          make_optimiser<double>("momentum:momentum=1e-999abc", {p});
        }).find("is not a number") != std::string::npos);
  CHECK(message_of([&] { make_optimiser<double>("sgd:lr=1e-400", {p}); }).find("rate = 0 ") !=
        std::string::npos);
  // A key given twice (under any spelling) is refused, not the last one taken.
  CHECK(message_of([&] { make_optimiser<double>("adam:lr=0.1,eta=0.2", {p}); }) ==
        "optimiser 'adam:lr=0.1,eta=0.2': lr is given twice (which one was meant?)");
  // Settings are decimal: strtod's hexadecimal ("0x10" = 16) is not a number here.
  CHECK(message_of([&] { make_optimiser<double>("adam:lr=0x10", {p}); }) ==
        "optimiser 'adam:lr=0x10': value '0x10' of lr is not a number");
}

TEST_CASE("a setting the optimiser does not read is refused, not ignored") {
  Parameter<double> p(Matrix<double>{{1.0}});
  // "sgd:momentum=0.9" would otherwise train plain SGD under a name that says momentum.
  const std::string sgd = message_of([&] { make_optimiser<double>("sgd:momentum=0.9", {p}); });
  CHECK(sgd.find("momentum does not apply to sgd, which takes lr") != std::string::npos);
  CHECK(sgd.find("'momentum:lr=...,momentum=...'") != std::string::npos);
  CHECK(message_of([&] {
          make_optimiser<double>("adam:rho=0.9", {p});
        }).find("rho does not apply to adam, which takes lr, beta1, beta2, eps") !=
        std::string::npos);
  CHECK(message_of([&] {
          make_optimiser<double>("momentum:beta1=0.9", {p});
        }).find("beta1 does not apply to momentum") != std::string::npos);
  CHECK(message_of([&] {
          make_optimiser<double>("gd:epsilon=1e-8", {p});
        }).find("epsilon does not apply to gd") != std::string::npos);
  // Every key an optimiser reads is accepted, under each of its spellings (the values they
  // set: "each spelling of an optimiser key sets its option").
  CHECK_NOTHROW(make_optimiser<double>("sgd:eta=0.1", {p}));
  CHECK_NOTHROW(make_optimiser<double>("momentum:learning_rate=0.1,omega=0.5", {p}));
  CHECK_NOTHROW(make_optimiser<double>("adagrad:lr=0.1,eps=1e-6", {p}));
  CHECK_NOTHROW(make_optimiser<double>("rmsprop:lr=0.1,rho=0.8,epsilon=1e-6", {p}));
  CHECK_NOTHROW(make_optimiser<double>("adam:lr=0.1,beta1=0.8,beta2=0.99,eps=1e-6", {p}));
  // Aliases are refused where their canonical key is.
  CHECK(message_of([&] {
          make_optimiser<double>("sgd:omega=0.9", {p});
        }).find("omega does not apply to sgd") != std::string::npos);
  CHECK(message_of([&] {
          make_optimiser<double>("momentum:epsilon=1e-6", {p});
        }).find("epsilon does not apply to momentum") != std::string::npos);
}

TEST_CASE("each spelling of an optimiser key sets its option") {
  // Defaults chosen apart from every value below, so a key that sets nothing (or another
  // option) shows.
  OptimiserOptions d;
  d.learning_rate = 0.5;
  d.momentum = 0.1;
  d.rho = 0.2;
  d.beta1 = 0.3;
  d.beta2 = 0.4;
  d.epsilon = 1e-3;
  for (const char* key : {"lr", "learning_rate", "eta", "LR", "Learning_Rate"}) {
    CAPTURE(key);
    const OptimiserSpec s = OptimiserSpec::parse(std::string("sgd:") + key + "=0.25", d);
    CHECK(s.kind == OptimiserKind::Sgd);
    CHECK(s.options.learning_rate == 0.25);
  }
  for (const char* key : {"momentum", "omega", "Omega"}) {
    CAPTURE(key);
    const OptimiserSpec s = OptimiserSpec::parse(std::string("momentum:") + key + "=0.5", d);
    CHECK(s.options.momentum == 0.5);
    CHECK(s.options.learning_rate == 0.5);  // untouched
  }
  for (const char* key : {"eps", "epsilon", "EPSILON"}) {
    CAPTURE(key);
    const OptimiserSpec s = OptimiserSpec::parse(std::string("adagrad:") + key + "=1e-6", d);
    CHECK(s.options.epsilon == 1e-6);
  }
  const OptimiserSpec r = OptimiserSpec::parse("rmsprop: rho = 0.8 ", d);
  CHECK(r.options.rho == 0.8);
  const OptimiserSpec a = OptimiserSpec::parse("adam:beta1=0.8,beta2=0.99", d);
  CHECK(a.options.beta1 == 0.8);
  CHECK(a.options.beta2 == 0.99);
  CHECK(a.options.rho == 0.2);
  CHECK(a.options.momentum == 0.1);
  CHECK(a.options.epsilon == 1e-3);
  CHECK(a.options.learning_rate == 0.5);
}

TEST_CASE("momentum made with omega= and learning_rate= steps with those values") {
  // η = 0.1, ω = 0.5, g = 1 twice: v1 = 0.1, θ1 = 0.9; v2 = 0.5·0.1 + 0.1 = 0.15, θ2 = 0.75.
  // (With the default ω = 0.9: v2 = 0.19, θ2 = 0.71.)
  Parameter<double> p(Matrix<double>{{1.0}});
  auto opt = make_optimiser<double>("momentum:learning_rate=0.1,omega=0.5", {p});
  CHECK(opt->options().momentum == 0.5);
  CHECK(opt->learning_rate() == 0.1);
  for (int s = 0; s < 2; ++s) {
    p.grad().fill(1.0);
    opt->step();
  }
  CHECK(p.value()(0, 0) == doctest::Approx(0.75).epsilon(1e-14));
  CHECK(opt->state(0)[0] == doctest::Approx(0.15).epsilon(1e-14));
}

TEST_CASE("optimiser factory: parameters must be distinct and the rate finite") {
  Parameter<double> p(Matrix<double>{{1.0}});
  CHECK(message_of([&] {
          make_optimiser<double>("sgd", {p, p});
        }).find("same as #0") != std::string::npos);
  auto opt = make_optimiser<double>("sgd", {p});
  CHECK(message_of([&] { opt->set_learning_rate(std::nan("")); }).find("learning rate = nan") !=
        std::string::npos);
}

TEST_CASE("optimiser step names a parameter whose shape changed") {
  Parameter<double> p(Matrix<double>{{1.0, 2.0}}, "W1");
  auto opt = make_optimiser<double>("adam", {p});
  p.value() = Matrix<double>{{1.0, 2.0, 3.0}};
  p.grad() = Matrix<double>{{1.0, 2.0, 3.0}};
  CHECK(message_of([&] { opt->step(); }).find("'W1'") != std::string::npos);
}

TEST_CASE("a step refused for a changed shape changes nothing, so a retry is a first step") {
  // Parameter #0 is fine, #1 was resized after the optimiser was made. The refusal must
  // come before #0 moves and before the step is counted: Adam's bias correction uses
  // the count, and its first step moves each element by lr·g/|g| = lr.
  Parameter<double> a(Matrix<double>{{1.0}}, "W1");
  Parameter<double> b(Matrix<double>{{2.0}}, "b1");
  auto opt = make_optimiser<double>("adam:lr=0.1", {a, b});
  a.grad() = Matrix<double>{{0.5}};
  b.value() = Matrix<double>{{2.0, 3.0}};
  b.grad() = Matrix<double>{{0.5, 0.5}};
  CHECK_THROWS_AS(opt->step(), std::logic_error);
  CHECK(opt->steps() == 0);
  CHECK(a.value()(0, 0) == 1.0);
  CHECK(opt->state(0, 0)[0] == 0.0);
  CHECK(opt->state(0, 1)[0] == 0.0);
  b.value() = Matrix<double>{{2.0}};
  b.grad() = Matrix<double>{{0.5}};
  opt->step();
  CHECK(opt->steps() == 1);
  CHECK(a.value()(0, 0) == doctest::Approx(1.0 - 0.1).epsilon(1e-7));
}

TEST_CASE("training reduces the loss with every optimiser") {
  // y = sin(2x) + x/2 on 64 points, a 1-16-1 tanh network, MSE.
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> u(-1.5, 1.5);
  Matrix<double> x({64, 1}), y({64, 1});
  for (std::size_t i = 0; i < 64; ++i) {
    x(i, 0) = u(rng);
    y(i, 0) = std::sin(2 * x(i, 0)) + 0.5 * x(i, 0);
  }
  struct Case {
    const char* spec;
    std::size_t epochs;
  };
  for (const Case c :
       {Case{"gd:lr=0.2", 300}, Case{"sgd:lr=0.05", 60}, Case{"momentum:lr=0.02,momentum=0.9", 60},
        Case{"adagrad:lr=0.1", 60}, Case{"rmsprop:lr=0.005", 60}, Case{"adam:lr=0.01", 60}}) {
    INFO("optimiser " << c.spec);
    std::mt19937_64 init_rng(3);
    Network<double> net({1, 16, 1}, {Activation::tanh(), Activation::identity()},
                        Initialiser::parse("glorot_uniform"), init_rng);
    auto opt = make_optimiser<double>(c.spec, net.parameters());
    CostSpec cost;
    cost.cost = CostKind::MeanSquaredError;
    TrainerOptions o;
    o.epochs = c.epochs;
    o.batch_size = 8;
    o.seed = 11;
    o.progress = false;
    Trainer<double> trainer(net, *opt, cost, o);
    const double before = trainer.evaluate(x, y).loss;
    const History& h = trainer.fit(x, y);
    const double after = trainer.evaluate(x, y).loss;
    CHECK(h.stop == StopReason::Completed);
    CHECK(after < 0.25 * before);
  }
}

TEST_CASE("step_and_zero_grad equals step then zero_grad for every optimiser") {
  for (const char* name : {"gd", "sgd", "momentum", "adagrad", "rmsprop", "adam"}) {
    INFO("optimiser " << name);
    // 21 doubles: five AVX2 registers and a tail of one, so both paths are exercised.
    Matrix<double> start({3, 7});
    for (std::size_t i = 0; i < start.size(); ++i)
      start.data()[i] = 0.1 * double(i) - 1.0;
    Parameter<double> a(start), b(start);
    auto fused = make_optimiser<double>(name, {a});
    auto plain = make_optimiser<double>(name, {b});
    for (int s = 0; s < 3; ++s) {
      for (std::size_t i = 0; i < start.size(); ++i) {
        a.grad().data()[i] = b.grad().data()[i] = std::cos(double(i + 7 * s));
      }
      fused->step_and_zero_grad();
      plain->step();
      plain->zero_grad();
      for (std::size_t i = 0; i < start.size(); ++i) {
        CHECK(a.value().data()[i] == b.value().data()[i]);
        CHECK(a.grad().data()[i] == 0.0);
      }
    }
  }
}
