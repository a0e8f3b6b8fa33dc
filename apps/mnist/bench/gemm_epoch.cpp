// The hardware limit of one training epoch of report 000's network: only the GEMMs a
// 784-256-10 MLP needs per minibatch (forward X·W1, H·W2; backward Hᵀ·dZ2, dZ2·W2ᵀ,
// Xᵀ·dZ1), float32, through cblas_sgemm on contiguous buffers with transpose flags.
// Nothing else (no activation, no optimiser, no gather): whatever xgrad spends above
// this is its overhead.   gemm_epoch [threads] [epochs] [batch]
#include <cblas.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

extern "C" void openblas_set_num_threads(int);

int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::atoi(argv[1]) : 1;
  const int epochs = argc > 2 ? std::atoi(argv[2]) : 5;
  const int batch = argc > 3 ? std::atoi(argv[3]) : 128;
  const int n = 60000, in = 784, hid = 256, out = 10;
  openblas_set_num_threads(threads);
  std::vector<float> X(std::size_t(batch) * in, 0.5f), W1(std::size_t(in) * hid, 0.01f),
      H(std::size_t(batch) * hid), W2(std::size_t(hid) * out, 0.01f), Z2(std::size_t(batch) * out),
      dZ2(std::size_t(batch) * out, 0.1f), dW2(W2.size()), dH(H.size()), dW1(W1.size());
  std::vector<double> times;
  for (int e = 0; e < epochs; ++e) {
    const auto t0 = std::chrono::steady_clock::now();
    for (int begin = 0; begin < n; begin += batch) {
      const int m = std::min(batch, n - begin);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, hid, in, 1, X.data(), in, W1.data(),
                  hid, 0, H.data(), hid);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, out, hid, 1, H.data(), hid,
                  W2.data(), out, 0, Z2.data(), out);
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, hid, out, m, 1, H.data(), hid,
                  dZ2.data(), out, 0, dW2.data(), out);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, hid, out, 1, dZ2.data(), out,
                  W2.data(), out, 0, dH.data(), hid);
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, in, hid, m, 1, X.data(), in, dH.data(),
                  hid, 0, dW1.data(), hid);
    }
    times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(times.begin(), times.end());
  std::printf("gemm_epoch threads=%d epochs=%d median_epoch_s=%.4f min_epoch_s=%.4f\n", threads,
              epochs, times[times.size() / 2], times.front());
  return 0;
}
