// Report 001's sparse study: N = 18, L0/L1/L2 searches with CV, our averaged network
// and the linear baselines, judged on fresh points (docs/results-runge.md §6).
#include "experiments/protocol.hpp"

#include <algorithm>
#include <cmath>

#include "linear.hpp"

namespace runge::experiment {

// ---- 6. report 001's sparse study ----
namespace {

/// The sparse study's averaged network ("ffnn_avg1se", docs/results-runge.md §6). With
/// 18 points, picking the single CV winner of a grid is a lottery: the CV scores of the
/// best few configurations differ by less than their own noise, and the winner is often
/// the configuration whose folds happened to suit it. So each candidate is first made a
/// seed ensemble (its CV is the CV of that ensemble), and instead of the winner the
/// method averages every candidate whose CV MSE is within one standard error of the
/// lowest. Every choice uses the 18 known points only.
struct AvgCandidate {
  std::string activation;
  std::size_t layers, nodes;
};
struct AvgResult {
  Matrix prediction;                   // on the fresh x
  std::vector<CvScore> scores;         // per candidate
  std::vector<std::size_t> kept;       // indices into the candidates
  std::vector<Matrix> candidate_pred;  // per candidate, on the fresh x (for the CSV only)
};

AvgResult average_within_one_se(const Context& c, const Dataset& known, const Matrix& fresh_x,
                                const std::vector<AvgCandidate>& cands, const TrainSpec& train,
                                std::size_t seeds, std::size_t folds, std::uint64_t fold_seed) {
  const std::size_t n = known.size();
  const auto fold_rows = kfold_indices(n, folds, fold_seed);
  const std::size_t tasks = cands.size() * seeds;
  std::vector<Matrix> oof(tasks), fresh(tasks);
  auto run = [&](std::size_t i) {
    const AvgCandidate& a = cands[i / seeds];
    ModelSpec m;
    m.hidden.assign(a.layers, a.nodes);
    m.activation = a.activation;
    m.init = "glorot_normal";
    m.bias_init = 0.0;
    TrainSpec t = train;
    t.seed = train.seed + i % seeds;
    oof[i] = xt::zeros<double>({n, std::size_t(1)});
    for (const auto& rows : fold_rows) {
      const Matrix p = train_network(subset(known, complement(n, rows)), nullptr, m, t)
                           .predict(subset(known, rows).x);
      for (std::size_t r = 0; r < rows.size(); ++r)
        oof[i](rows[r], 0) = p(r, 0);
    }
    fresh[i] = train_network(known, nullptr, m, t).predict(fresh_x);
  };
  run_tasks(c, tasks, run);  // one task per (candidate, seed), each into its own slots
  AvgResult out;
  for (std::size_t k = 0; k < cands.size(); ++k) {
    Matrix o = xt::zeros<double>({n, std::size_t(1)});
    Matrix f = xt::zeros<double>(fresh[0].shape());
    for (std::size_t s = 0; s < seeds; ++s) {
      o += oof[k * seeds + s];
      f += fresh[k * seeds + s];
    }
    o /= double(seeds);
    f /= double(seeds);
    std::vector<double> sq(n);
    for (std::size_t r = 0; r < n; ++r)
      sq[r] = (o(r, 0) - known.y(r, 0)) * (o(r, 0) - known.y(r, 0));
    CvScore sc = cv_score(sq);
    for (double v : f)
      if (!std::isfinite(v)) sc = {kNaN, kNaN};  // a diverged refit is never averaged
    out.scores.push_back(sc);
    out.candidate_pred.push_back(f);
  }
  out.kept = within_one_se(out.scores);
  out.prediction = xt::zeros<double>(fresh[0].shape());
  for (std::size_t k : out.kept)
    out.prediction += out.candidate_pred[k];
  if (!out.kept.empty()) out.prediction /= double(out.kept.size());
  return out;
}

}  // namespace

void sparse(const Context& c) {
  // Report 001: N = 18 points, sigma = 0.1. One draw of 18 points decides almost
  // everything (where the points fall around the peak), so the protocol runs on
  // several draws; each draw has its own fresh 100-point generalisation set.
  //
  // The "dev" draws are the ones every method here was developed on (their fresh sets
  // were looked at while choosing the averaged network's design); the "heldout" draws
  // were first run once that design was fixed, and they alone judge it.
  struct DrawSet {
    const char* name;
    std::vector<std::uint64_t> seeds;
  };
  std::vector<DrawSet> sets;
  if (c.opt.quick) {
    sets = {{"dev", {2025}}, {"heldout", {101}}};
  } else {
    sets = {{"dev", {2025, 1, 2, 3, 4, 5, 6, 7, 8, 9}}, {"heldout", {}}};
    for (std::uint64_t s = 101; s <= 120; ++s)
      sets[1].seeds.push_back(s);
  }
  const std::size_t members = c.opt.quick ? 2 : 5;
  // The averaged network (average_within_one_se): smooth one- and two-layer networks
  // without penalty, each an 8-seed ensemble, trained like the grid's.
  const std::vector<AvgCandidate> avg_cands =
      c.opt.quick
          ? std::vector<AvgCandidate>{{"tanh", 1, 5}}
          : std::vector<AvgCandidate>{{"sigmoid", 1, 10}, {"sigmoid", 1, 20}, {"sigmoid", 1, 50},
                                      {"sigmoid", 2, 10}, {"tanh", 1, 10},    {"tanh", 1, 20},
                                      {"tanh", 1, 50},    {"tanh", 2, 10}};
  const std::size_t avg_seeds = c.opt.quick ? 2 : 8;
  SweepSpec base;
  base.model = report000_model(2, 10, "tanh");
  base.model.init = "glorot_normal";
  base.model.bias_init = 0.0;
  base.train.epochs = c.epochs(1000);
  base.train.batch_size = 0;
  base.train.seed = 1;
  base.evaluation = Evaluation::KFold;
  // 6 folds of 3 points. Leave-one-out (18 folds) was tried: 3x the cost for the same
  // generalisation on the first draws (docs/results-runge.md).
  base.folds = 6;
  base.resample_seed = 7;
  base.axes.optimiser = {"adam"};
  base.axes.activation = c.opt.quick ? std::vector<std::string>{"tanh"}
                                     : std::vector<std::string>{"sigmoid", "tanh", "leaky_relu"};
  base.axes.layers = c.opt.quick ? std::vector<std::size_t>{1} : std::vector<std::size_t>{1, 2};
  base.axes.nodes = c.opt.quick ? std::vector<std::size_t>{5} : std::vector<std::size_t>{5, 10, 20};
  base.axes.batch_size = {0};
  base.axes.lr = c.opt.quick ? std::vector<double>{1e-2} : std::vector<double>{1e-2, 1e-1};
  auto gen = open_csv(c, "sparse_generalisation.csv",
                      "data_seed,model,penalty,lambda,optimiser,activation,layers,nodes,lr,"
                      "cv_mse,fresh_mse,log10_fresh_mse,fresh_mse_vs_true_function,set");
  auto avg_csv = open_csv(c, "sparse_avg_candidates.csv",
                          "data_seed,set,activation,layers,nodes,epochs,seeds,cv_mse,cv_se,kept,"
                          "log10_fresh_mse");
  for (const auto& set : sets)
    for (const std::uint64_t draw : set.seeds) {
      const std::string end = std::string(",") + set.name + "\n";
      DataSpec d;
      d.n = 18;
      d.noise = 0.1;
      d.seed = draw;
      // The 18 points are all "known" data of report 001's search; CV folds split them.
      const SweepData known = make_sweep_data(d, 0.2, kSplitSeed);
      DataSpec fresh_spec = d;
      fresh_spec.n = 100;
      fresh_spec.seed = 9001 + draw;
      const Dataset fresh = generate(fresh_spec);
      const Matrix truth = true_function(Function::Runge, fresh.x);
      const std::string tag = "sparse_d" + std::to_string(draw) + "_";
      for (const std::string pen : {"none", "l1", "l2"}) {
        SweepSpec s = base;
        s.axes.penalty = {pen};
        s.axes.lambda = pen == "none" ? std::vector<double>{0.0}
                        : c.opt.quick ? std::vector<double>{1e-3}
                                      : std::vector<double>{1e-4, 1e-3, 1e-2};
        const std::string file = tag + (pen == "none" ? "l0" : pen) + ".csv";
        sweep(c, known, s, file);
        const auto rows = read_sweep_csv(c.path(file));
        const PointResult* b = best_of(rows);
        if (!b) continue;
        // The CV winner, refitted on all 18 known points (an ensemble over seeds), judged
        // on the 100 fresh points.
        ModelSpec m = s.model;
        m.hidden.assign(b->point.layers, b->point.nodes);
        m.activation = b->point.activation;
        TrainSpec t = s.train;
        t.optimiser = b->point.optimiser;
        t.learning_rate = b->point.lr;
        t.penalty = pen;
        t.lambda = b->point.lambda;
        const Matrix p = ensemble_predict(known.full, m, t, members, fresh.x);
        const double e = mse(p, fresh.y);
        gen << draw << ",ffnn," << (pen == "none" ? "l0" : pen) << ',' << num(b->point.lambda)
            << ',' << b->point.optimiser << ',' << b->point.activation << ',' << b->point.layers
            << ',' << b->point.nodes << ',' << num(b->point.lr) << ',' << num(b->mse) << ','
            << num(e) << ',' << num(std::log10(e)) << ',' << num(mse(p, truth)) << end;
        c.log("sparse draw " + std::to_string(draw) + " " + pen +
              ": fresh log10 MSE = " + num(std::log10(e)));
      }
      {
        // No search on the 18 points at all: the network of the 300-point study (cv), whose
        // settings were fixed before this experiment saw any sparse data. CV on 3-point
        // folds is so noisy that a prior can beat the search.
        const CvModel prior = our_best(c);
        const Matrix p = ensemble_predict(known.full, prior.model, prior.train, members, fresh.x);
        const double e = mse(p, fresh.y);
        gen << draw << ",xgrad_prior," << prior.train.penalty << ',' << num(prior.train.lambda)
            << ',' << prior.train.optimiser << ',' << prior.model.activation << ','
            << prior.model.hidden.size() << ',' << prior.model.hidden.front() << ','
            << num(prior.train.learning_rate) << ",nan," << num(e) << ',' << num(std::log10(e))
            << ',' << num(mse(p, truth)) << end;
        c.log("sparse draw " + std::to_string(draw) +
              " prior: fresh log10 MSE = " + num(std::log10(e)));
      }
      {
        TrainSpec t;
        t.optimiser = "adam";
        t.learning_rate = 1e-2;
        t.epochs = c.epochs(1000);
        t.batch_size = 0;
        t.seed = 1;
        const AvgResult a = average_within_one_se(c, known.full, fresh.x, avg_cands, t, avg_seeds,
                                                  base.folds, base.resample_seed);
        for (std::size_t k = 0; k < avg_cands.size(); ++k) {
          const bool kept = std::find(a.kept.begin(), a.kept.end(), k) != a.kept.end();
          avg_csv << draw << ',' << set.name << ',' << avg_cands[k].activation << ','
                  << avg_cands[k].layers << ',' << avg_cands[k].nodes << ',' << t.epochs << ','
                  << avg_seeds << ',' << num(a.scores[k].mse) << ',' << num(a.scores[k].se) << ','
                  << (kept ? 1 : 0) << ',' << num(std::log10(mse(a.candidate_pred[k], fresh.y)))
                  << '\n';
        }
        const double e = mse(a.prediction, fresh.y);
        double best_cv = kNaN;
        for (std::size_t k : a.kept)
          if (!(a.scores[k].mse >= best_cv)) best_cv = a.scores[k].mse;
        gen << draw << ",ffnn_avg1se,l0,0,adam,avg_of_" << a.kept.size() << ",-,-,0.01,"
            << num(best_cv) << ',' << num(e) << ',' << num(std::log10(e)) << ','
            << num(mse(a.prediction, truth)) << end;
        c.log("sparse draw " + std::to_string(draw) + " (" + set.name + ") averaged network of " +
              std::to_string(a.kept.size()) + ": fresh log10 MSE = " + num(std::log10(e)));
      }
      // The linear baselines with degree and lambda chosen by the same CV folds.
      const auto folds = kfold_indices(known.full.size(), base.folds, base.resample_seed);
      for (const std::string meth : {"ols", "ridge", "lasso"}) {
        double best = std::numeric_limits<double>::infinity();
        int best_p = 1;
        double best_l = 0;
        const std::vector<double> lambdas = meth == "ols"
                                                ? std::vector<double>{0.0}
                                                : std::vector<double>{1e-5, 1e-4, 1e-3, 1e-2, 1e-1};
        for (int p = 1; p <= 12; ++p)
          for (double lam : lambdas) {
            double cvm = 0;
            for (std::size_t f = 0; f < folds.size(); ++f) {
              const Dataset tr = subset(known.full, complement(known.full.size(), folds[f]));
              const Dataset te = subset(known.full, folds[f]);
              cvm += mse(fit_linear(tr, parse_linear_method(meth), p, lam).predict(te.x), te.y) /
                     double(folds.size());
            }
            if (cvm < best) {
              best = cvm;
              best_p = p;
              best_l = lam;
            }
          }
        const Matrix pr =
            fit_linear(known.full, parse_linear_method(meth), best_p, best_l).predict(fresh.x);
        const double e = mse(pr, fresh.y);
        gen << draw << ',' << meth << "_degree" << best_p << ",-," << num(best_l) << ",-,-,-,-,-,"
            << num(best) << ',' << num(e) << ',' << num(std::log10(e)) << ',' << num(mse(pr, truth))
            << end;
      }
      gen << draw << ",true_function,-,0,-,-,-,-,-,nan," << num(mse(truth, fresh.y)) << ','
          << num(std::log10(mse(truth, fresh.y))) << ",0" << end;
      if (draw == sets.front().seeds.front()) {
        auto pts = open_csv(c, "sparse_points.csv", "x,y,part");
        for (std::size_t i = 0; i < known.full.size(); ++i)
          pts << num(known.full.x(i, 0)) << ',' << num(known.full.y(i, 0)) << ",known\n";
      }
    }
}

}  // namespace runge::experiment
