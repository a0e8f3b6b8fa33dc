// Specification: after its first epoch, a Trainer step allocates nothing at all (the
// tapes keep their buffers, the permutation is shuffled in place, the short last batch
// has its own tape, the optimiser's state was allocated when it was made, dropout masks
// are drawn into the tape's own buffers, each shard of a sharded step has its own tapes).
//
// Counts heap allocations with tests/allocation_counter.hpp (every glibc allocation
// function, xsimd's posix_memalign included), as tests/engine/test_allocations.cpp does
// for the engine. Compiled out under AddressSanitizer, which owns the allocator.
//
// The network has 8 outputs: OpenBLAS 0.3.21's small-matrix GEMM kernels on this
// AVX-512 CPU (dgemm_small_kernel_*_COOPERLAKE, ...) malloc inside BLAS on every call
// whose result width is not a multiple of the kernel's (measured: dgemm with N = 1, 2,
// 4 or 10 columns; sgemm with N = 1, 2, 4 or 8 at K = 256), so such a network allocates
// once per such product whatever nn and the engine do. See docs/nn-training.md.
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <random>
#include <vector>

#include <doctest/doctest.h>

#include "xgrad/nn/trainer.hpp"

#include "../allocation_counter.hpp"

#if defined(XGRAD_COUNT_ALLOCATIONS)
using xgrad_test::g_allocations;

using xgrad::Matrix;
using namespace xgrad::nn;

TEST_CASE_TEMPLATE("a trainer step allocates nothing after the first epoch, dropout and shards too",
                   T, float, double) {
  for (const std::size_t shards : {1, 3}) {
    CAPTURE(shards);
    std::mt19937_64 rng(3);
    std::uniform_real_distribution<double> u(-1.0, 1.0);
    Matrix<T> x({100, 2}), y({100, 8});  // batch 16: six full batches and one of 4
    for (std::size_t i = 0; i < 100; ++i) {
      x(i, 0) = static_cast<T>(u(rng));
      x(i, 1) = static_cast<T>(u(rng));
      for (std::size_t k = 0; k < 8; ++k) {
        y(i, k) = static_cast<T>(std::sin(x(i, 0) + double(k)) * x(i, 1));
      }
    }
    Network<T> net({2, 16, 8}, {Activation::tanh(), Activation::identity()},
                   Initialiser::parse("glorot_uniform"), rng);
    auto opt = make_optimiser<T>("adam:lr=0.01", net.parameters());
    CostSpec cost;
    cost.regularisation.penalty = Penalty::L2;
    cost.regularisation.lambda = 1e-4;
    TrainerOptions o;
    o.epochs = 3;
    o.batch_size = 16;
    o.seed = 4;
    o.progress = false;
    o.schedule = Schedule::exponential(0.01, 0.9);
    o.dropout = Dropout{0.2, 0.3};  // masks of three shapes, and of the short batch
    o.shards = shards;              // 3: shards of 5, 5, 6 rows and of 1, 1, 2 in the short batch
    Trainer<T> trainer(net, *opt, cost, o);

    // Allocations in each step of epochs 2 and 3, counted from the previous callback
    // (on_epoch_begin for the first step) to this step's on_batch_end.
    std::vector<long> per_step;
    per_step.reserve(64);
    long mark = 0;
    auto count = std::make_shared<LambdaCallback<T>>();
    count->epoch_begin = [&](TrainingState<T>&) { mark = g_allocations.load(); };
    count->batch_end = [&](TrainingState<T>& s) {
      const long now = g_allocations.load();
      if (s.epoch >= 2) per_step.push_back(now - mark);
      mark = g_allocations.load();
    };
    trainer.add_callback(count);
    trainer.fit(x, y);
    REQUIRE(per_step.size() == 2 * 7);
    long total = 0;
    for (std::size_t i = 0; i < per_step.size(); ++i) {
      INFO("step " << i % 7 << " of epoch " << 2 + i / 7 << ": " << per_step[i] << " allocations");
      CHECK(per_step[i] == 0);
      total += per_step[i];
    }
    CHECK(total == 0);
  }
}

#endif
