// nn_epoch_bench: one MNIST-sized training epoch through the tape, next to its limits.
//
// 784-256-10, sigmoid hidden layer, softmax + cross-entropy, Adam (lr 1e-3), batch 128,
// one epoch = 469 steps over 60,000 random samples (uniform [0,1) inputs, random one-hot
// labels), float32. At each thread count it prints seconds per epoch (median of
// --epochs epochs after one warm-up epoch) of:
//   tape   Trainer::fit: gather_rows, objective on the tape, backward, fused Adam step;
//   (a)    the bare GEMMs of the same steps (forward X·W1 and H·W2; backward H^T·dZ2,
//          dZ2·W2^T and X^T·dZ1) through cblas_sgemm on preallocated buffers: the
//          hardware limit of this network;
//   (b)    the same epoch trained with the hand-derived backprop
//          (nn/include/xgrad/nn/reference_backprop.hpp) and the same optimiser.
// Goals (issue 3): tape <= 1.2x (a), tape <= 1.1x (b), 2 threads never slower than 1.
// The last lines are "RESULT key value" for apps/bench/run_nn_bench.sh.
//
// Usage: nn_epoch_bench [--epochs N] [--threads 1,2]
//
// <cblas.h> comes in through bare_gemm_epoch.hpp for (a); safe because nothing here includes
// xtensor-blas (../shared/DESIGN.md §6).
#include "bare_gemm_epoch.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "xgrad/nn/data.hpp"
#include "xgrad/nn/reference_backprop.hpp"
#include "xgrad/nn/trainer.hpp"
#include "xgrad/threads.hpp"

namespace {

using xgrad::Matrix;
using namespace xgrad::nn;
using Clock = std::chrono::steady_clock;

constexpr std::size_t kRows = 60000, kIn = 784, kHidden = 256, kOut = 10, kBatch = 128;

double since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Processor time of the whole process (every thread). At one thread it is the epoch's
// own compute time, little disturbed by other processes sharing the cores, which
// inflate wall time; at two threads it adds both threads' time (spinning included).
double cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

struct Data {
  Matrix<float> x, y;
};

Data make_data() {
  std::mt19937_64 rng(20261122);
  std::uniform_real_distribution<float> u(0.f, 1.f);
  Data d;
  d.x = Matrix<float>({kRows, kIn});
  for (float& v : d.x)
    v = u(rng);
  std::vector<std::size_t> labels(kRows);
  for (auto& l : labels)
    l = uniform_index(rng, kOut);
  d.y = one_hot<float>(labels, kOut);
  return d;
}

Network<float> make_net() {
  std::mt19937_64 rng(7);
  return Network<float>({kIn, kHidden, kOut}, {Activation::sigmoid(), Activation::softmax()},
                        Initialiser::parse("glorot_uniform"), rng);
}

CostSpec cross_entropy() {
  CostSpec c;
  c.cost = CostKind::CrossEntropy;
  return c;
}

OptimiserOptions adam_options() {
  OptimiserOptions o;
  o.learning_rate = 1e-3;
  return o;
}

// The three contenders, each able to run one more epoch on demand, so that the bench
// can interleave them (gemm, tape, reference, gemm, ...) and a load change on a shared
// machine hits all three alike instead of biasing one.
struct TapeRun {
  Network<float> net = make_net();
  std::unique_ptr<Optimiser<float>> opt =
      make_optimiser<float>("adam", net.parameters(), adam_options());
  std::unique_ptr<Trainer<float>> trainer;
  double loss = 0;
  TapeRun() {
    TrainerOptions o;
    o.epochs = 1;
    o.batch_size = kBatch;
    o.seed = 1;
    o.progress = false;
    trainer = std::make_unique<Trainer<float>>(net, *opt, cross_entropy(), o);
  }
  // One Trainer::fit of one epoch; its tapes keep their buffers across calls.
  double epoch(const Data& d) {
    const History& h = trainer->fit(d.x, d.y);
    loss = h.back().train_loss;
    // Training time only (the record's seconds would add evaluation; there is none).
    return static_cast<double>(kRows) / h.back().samples_per_second;
  }
};

struct ReferenceRun {
  Network<float> net = make_net();
  std::unique_ptr<Optimiser<float>> opt =
      make_optimiser<float>("adam", net.parameters(), adam_options());
  ReferenceBackprop<float> ref{net};
  BatchSampler sampler{kRows, kBatch, true, 1};
  double loss = 0;
  // The Trainer's step with the hand-derived gradients in place of the tape.
  double epoch(const Data& d) {
    const CostSpec cost = cross_entropy();
    sampler.new_epoch();
    const Clock::time_point t0 = Clock::now();
    double sum = 0;
    for (std::size_t b = 0; b < sampler.batches(); ++b) {
      const auto [begin, end] = sampler.batch(b);
      // accumulate(): the gradients go straight into Parameter::grad(), as backward() does.
      sum += static_cast<double>(ref.accumulate(d.x, d.y, sampler.order(), begin, end, cost)) *
             static_cast<double>(end - begin);
      opt->step_and_zero_grad();  // the same optimiser step as the Trainer's
    }
    const double s = since(t0);
    loss = sum / static_cast<double>(kRows);
    return s;
  }
};

// Where a tape step's time goes: the Trainer's step written out with a timer around
// each phase (one epoch after a warm-up epoch; timer overhead ~0.1 ms per epoch).
struct Phases {
  double gather = 0, forward = 0, backward = 0, step = 0;
  double total() const { return gather + forward + backward + step; }
};

Phases tape_phases(const Data& d) {
  Network<float> net = make_net();
  auto opt = make_optimiser<float>("adam", net.parameters(), adam_options());
  const CostSpec cost = cross_entropy();
  BatchSampler sampler(kRows, kBatch, true, 1);
  xgrad::Tape<float> tape, tail;
  Phases p;
  opt->zero_grad();
  for (int e = 0; e < 2; ++e) {
    p = Phases{};
    sampler.new_epoch();
    for (std::size_t b = 0; b < sampler.batches(); ++b) {
      const auto [begin, end] = sampler.batch(b);
      xgrad::Tape<float>& t = end - begin == kBatch ? tape : tail;
      Clock::time_point t0 = Clock::now();
      t.clear();
      const auto X = t.gather_rows(d.x, sampler.order(), begin, end);
      const auto Y = t.gather_rows(d.y, sampler.order(), begin, end);
      Clock::time_point t1 = Clock::now();
      p.gather += std::chrono::duration<double>(t1 - t0).count();
      const auto loss = objective(t, net, X, Y, cost);
      if (!(loss.item() == loss.item())) std::puts("NaN");
      t0 = Clock::now();
      p.forward += std::chrono::duration<double>(t0 - t1).count();
      t.backward(loss);
      t1 = Clock::now();
      p.backward += std::chrono::duration<double>(t1 - t0).count();
      opt->step_and_zero_grad();  // as the Trainer does
      p.step += since(t1);
    }
  }
  return p;
}

// (a): the five GEMMs of each step on preallocated buffers, nothing else.
struct GemmRun {
  BareGemmEpoch run{int(kRows), int(kIn), int(kHidden), int(kOut), int(kBatch)};
  double epoch() {
    const double s = run.seconds();
    if (run.checksum() != run.checksum()) std::puts("NaN");  // keep the results observable
    return s;
  }
};

std::string list(const std::vector<double>& v) {
  std::ostringstream o;
  o.precision(3);
  o << std::fixed;
  for (std::size_t i = 0; i < v.size(); ++i)
    o << (i ? " " : "") << v[i];
  return o.str();
}

std::string load_average() {
  std::FILE* f = std::fopen("/proc/loadavg", "r");
  if (!f) return "unknown";
  char buf[64] = {0};
  const bool ok = std::fgets(buf, sizeof buf, f) != nullptr;
  std::fclose(f);
  std::string s = ok ? buf : "unknown";
  // The first three fields: 1, 5 and 15 minute averages.
  std::size_t cut = 0;
  for (int i = 0; i < 3 && cut != std::string::npos; ++i)
    cut = s.find(' ', cut + 1);
  return s.substr(0, cut);
}

const char* verdict(bool ok) {
  return ok ? "PASS" : "MISS";
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t epochs = 3;
  std::vector<int> thread_counts{1, 2};
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--epochs" && i + 1 < argc) {
      epochs = static_cast<std::size_t>(std::atoi(argv[++i]));
    } else if (a == "--threads" && i + 1 < argc) {
      thread_counts.clear();
      std::stringstream ss(argv[++i]);
      std::string item;
      while (std::getline(ss, item, ','))
        thread_counts.push_back(std::atoi(item.c_str()));
    } else {
      std::fprintf(stderr, "usage: nn_epoch_bench [--epochs N>=3] [--threads 1,2]\n");
      return 2;
    }
  }
  if (epochs < 3 || thread_counts.empty()) {
    std::fprintf(stderr, "nn_epoch_bench: need --epochs >= 3 and at least one thread count\n");
    return 2;
  }
  std::printf(
      "nn_epoch_bench: 784-256-10 sigmoid/softmax + cross-entropy, Adam, batch %zu, "
      "%zu samples, float32\n",
      kBatch, kRows);
  std::printf(
      "seconds per epoch: median of %zu epochs after one warm-up epoch; the three "
      "contenders run interleaved\n",
      epochs);
  std::printf("load average at start: %s\n", load_average().c_str());
  const Data d = make_data();

  struct Row {
    int threads;
    double tape, gemm, ref;              // wall
    double tape_cpu, gemm_cpu, ref_cpu;  // process CPU
  };
  std::vector<Row> rows;
  for (int t : thread_counts) {
    xgrad::set_threads(t);
    GemmRun gemm;
    TapeRun tape;
    ReferenceRun ref;
    gemm.epoch();  // warm-up: first-touch of buffers, BLAS thread start
    tape.epoch(d);
    ref.epoch(d);
    std::vector<double> g, tp, rf, gc, tc, rc;
    auto timed = [](auto run, std::vector<double>& wall, std::vector<double>& cpu) {
      const double c0 = cpu_seconds();
      wall.push_back(run());
      cpu.push_back(cpu_seconds() - c0);
    };
    for (std::size_t e = 0; e < epochs; ++e) {
      timed([&] { return gemm.epoch(); }, g, gc);
      timed([&] { return tape.epoch(d); }, tp, tc);
      timed([&] { return ref.epoch(d); }, rf, rc);
    }
    rows.push_back({t, median(tp), median(g), median(rf), median(tc), median(gc), median(rc)});
    std::printf(
        "threads %d (xgrad::threads() = %d)          wall s/epoch  [each epoch]   "
        "| process CPU s/epoch\n",
        t, xgrad::threads());
    std::printf("  tape epoch            %.3f s   [%s]   | %.3f\n", median(tp), list(tp).c_str(),
                median(tc));
    std::printf("  (a) bare GEMMs        %.3f s   [%s]   | %.3f\n", median(g), list(g).c_str(),
                median(gc));
    std::printf("  (b) hand-derived      %.3f s   [%s]   | %.3f\n", median(rf), list(rf).c_str(),
                median(rc));
    std::printf("  last-epoch loss: tape %.6f, hand-derived %.6f\n", tape.loss, ref.loss);
    const Phases ph = tape_phases(d);
    std::printf(
        "  tape step phases (one more epoch, wall s): gather %.3f  forward %.3f  "
        "backward %.3f  adam+zero_grad %.3f  total %.3f\n",
        ph.gather, ph.forward, ph.backward, ph.step, ph.total());
    std::printf("  tape / (a) = %.3f   goal <= 1.2   %s\n", median(tp) / median(g),
                verdict(median(tp) <= 1.2 * median(g)));
    std::printf("  tape / (b) = %.3f   goal <= 1.1   %s\n", median(tp) / median(rf),
                verdict(median(tp) <= 1.1 * median(rf)));
    if (t == 1) {
      std::printf("  on CPU time: tape / (a) = %.3f %s, tape / (b) = %.3f %s\n",
                  median(tc) / median(gc), verdict(median(tc) <= 1.2 * median(gc)),
                  median(tc) / median(rc), verdict(median(tc) <= 1.1 * median(rc)));
    }
    std::printf("\n");
  }
  for (std::size_t i = 1; i < rows.size(); ++i) {
    std::printf("tape %d threads / %d thread(s) = %.3f   goal <= 1 (never slower)   %s\n",
                rows[i].threads, rows[0].threads, rows[i].tape / rows[0].tape,
                verdict(rows[i].tape <= rows[0].tape));
  }
  std::printf("load average at end: %s\n", load_average().c_str());
  for (const Row& r : rows) {
    std::printf("RESULT tape_s_%dt %.4f\n", r.threads, r.tape);
    std::printf("RESULT gemm_s_%dt %.4f\n", r.threads, r.gemm);
    std::printf("RESULT ref_s_%dt %.4f\n", r.threads, r.ref);
    std::printf("RESULT tape_cpu_s_%dt %.4f\n", r.threads, r.tape_cpu);
  }
  return 0;
}
