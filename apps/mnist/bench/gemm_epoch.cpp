// The hardware limit of one training epoch of report 000's network: only the GEMMs a
// 784-256-10 MLP needs per minibatch (forward X·W1, H·W2; backward Hᵀ·dZ2, dZ2·W2ᵀ,
// Xᵀ·dZ1), float32, through cblas_sgemm on contiguous buffers with transpose flags.
// Nothing else (no activation, no optimiser, no gather): whatever xgrad spends above
// this is its overhead.   gemm_epoch [threads] [epochs] [batch]
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "../../bench/bare_gemm_epoch.hpp"

extern "C" void openblas_set_num_threads(int);

int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::atoi(argv[1]) : 1;
  const int epochs = argc > 2 ? std::atoi(argv[2]) : 5;
  const int batch = argc > 3 ? std::atoi(argv[3]) : 128;
  if (threads < 1 || epochs < 1 || batch < 1) {
    std::fprintf(stderr, "gemm_epoch: threads, epochs and batch must be >= 1\n");
    return 2;
  }
  openblas_set_num_threads(threads);
  BareGemmEpoch run(60000, 784, 256, 10, batch);
  std::vector<double> times;
  for (int e = 0; e < epochs; ++e)
    times.push_back(run.seconds());
  std::sort(times.begin(), times.end());
  std::printf("gemm_epoch threads=%d epochs=%d median_epoch_s=%.4f min_epoch_s=%.4f\n", threads,
              epochs, times[times.size() / 2], times.front());
  return run.checksum() == run.checksum() ? 0 : 1;
}
