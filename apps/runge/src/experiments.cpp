#include "experiments.hpp"

#include <chrono>
#include <cmath>
#include <filesystem>
#include <stdexcept>

#include "experiments/protocol.hpp"

namespace runge {

using experiment::kNaN;

CvScore cv_score(const std::vector<double>& squared_errors) {
  CvScore s;
  if (squared_errors.empty()) return {kNaN, kNaN};
  const double n = double(squared_errors.size());
  for (double e : squared_errors)
    s.mse += e / n;
  double var = 0;
  for (double e : squared_errors)
    var += (e - s.mse) * (e - s.mse) / n;
  s.se = std::sqrt(var / n);
  return s;
}

std::vector<std::size_t> within_one_se(const std::vector<CvScore>& scores) {
  std::size_t best = scores.size();
  for (std::size_t i = 0; i < scores.size(); ++i)
    if (std::isfinite(scores[i].mse) && std::isfinite(scores[i].se) &&
        (best == scores.size() || scores[i].mse < scores[best].mse))
      best = i;
  std::vector<std::size_t> out;
  if (best == scores.size()) return out;
  const double limit = scores[best].mse + scores[best].se;
  for (std::size_t i = 0; i < scores.size(); ++i)
    if (std::isfinite(scores[i].mse) && std::isfinite(scores[i].se) && scores[i].mse <= limit)
      out.push_back(i);
  return out;
}

const std::vector<ExperimentInfo>& experiments() {
  static const std::vector<ExperimentInfo> list = {
      {"learning-rate",
       "report 000 Fig. 1 and Table I: test MSE vs learning rate, GD/SGD x "
       "RMSprop/Adam, 1 and 2 hidden layers of 50 sigmoid nodes"},
      {"curves",
       "report 000 Figs. 2-3: MSE vs epoch at the best rates; the fit vs OLS "
       "degree 12 and the true function"},
      {"architecture",
       "report 000 Fig. 4: layers {1,3,5} x nodes x {sigmoid, ReLU, "
       "LeakyReLU} x learning rate (prints its wall time)"},
      {"regularisation",
       "report 000 Figs. 5-6: lambda x learning rate for L1 and L2, then "
       "layers x nodes at the best lambda"},
      {"cv",
       "report 000's 5-fold CV R^2 (96.4% vs OLS 96.0%) and a fresh 10,000-point test "
       "against the noise floor"},
      {"sparse",
       "report 001: N=18, L0/L1/L2 grid search with CV and an averaged network, judged on "
       "fresh 100-point sets of 10 development and 20 held-out draws"},
      {"franke", "report 003: Franke function, 1 x 128 ReLU, SGD grid with bootstrap vs OLS"},
  };
  return list;
}

double run_experiment(const std::string& name, const ExperimentOptions& options) {
  const auto t0 = std::chrono::steady_clock::now();
  experiment::Context c{options, std::filesystem::path(options.out_dir)};
  std::error_code ec;
  std::filesystem::create_directories(c.dir, ec);
  if (ec || !std::filesystem::is_directory(c.dir))
    throw std::invalid_argument("--out-dir: cannot create the folder '" + options.out_dir + "'" +
                                (ec ? " (" + ec.message() + ")" : std::string()));
  if (name == "learning-rate")
    experiment::learning_rate(c);
  else if (name == "curves")
    experiment::curves(c);
  else if (name == "architecture")
    experiment::architecture(c);
  else if (name == "regularisation")
    experiment::regularisation(c);
  else if (name == "cv")
    experiment::cv(c);
  else if (name == "sparse")
    experiment::sparse(c);
  else if (name == "franke")
    experiment::franke(c);
  else {
    std::string names;
    for (const auto& e : experiments())
      names += (names.empty() ? "" : ", ") + e.name;
    throw std::invalid_argument("experiment: unknown name '" + name + "' (expected one of " +
                                names + ")");
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace runge
