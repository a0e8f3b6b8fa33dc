// The hardware limit of one training epoch of report 000's network: only the GEMMs a
// 784-256-10 MLP needs per minibatch (forward X·W1, H·W2; backward Hᵀ·dZ2, dZ2·W2ᵀ,
// Xᵀ·dZ1), float32, through cblas_sgemm on contiguous buffers with transpose flags.
// Nothing else (no activation, no optimiser, no gather): whatever xgrad spends above
// this is its overhead.
//
// Given the MNIST directory, it also times the epoch whose first-layer GEMMs use only
// the pixels that are nonzero somewhere in each minibatch (shuffled as in training):
// the floor for xgrad, whose matmul drops the columns of a constant input that are
// zero across the batch.
//   gemm_epoch [threads] [epochs] [batch] [mnist_dir]
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <numeric>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "../../bench/bare_gemm_epoch.hpp"
#include "idx.hpp"

extern "C" void openblas_set_num_threads(int);

namespace {

/// Number of pixels that are nonzero in some image of each minibatch of a seeded
/// shuffle of the training images.
std::vector<int> kept_pixels_per_batch(const std::string& dir, int batch) {
  const std::string path = xgrad::mnist::find_file(dir, "train-images-idx3-ubyte");
  if (path.empty()) throw std::runtime_error(dir + ": no train-images-idx3-ubyte[.gz]");
  const xgrad::mnist::Images images = xgrad::mnist::read_images(path);
  const std::size_t pixels = images.pixels_per_image();
  std::vector<std::size_t> order(images.count);
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::mt19937_64 rng(1);
  std::shuffle(order.begin(), order.end(), rng);
  std::vector<int> kept;
  for (std::size_t begin = 0; begin < order.size(); begin += static_cast<std::size_t>(batch)) {
    std::vector<unsigned char> seen(pixels, 0);
    const std::size_t end = std::min(order.size(), begin + static_cast<std::size_t>(batch));
    for (std::size_t r = begin; r < end; ++r) {
      const std::uint8_t* image = images.pixels.data() + order[r] * pixels;
      for (std::size_t p = 0; p < pixels; ++p)
        seen[p] |= image[p] != 0;
    }
    kept.push_back(static_cast<int>(std::count(seen.begin(), seen.end(), 1)));
  }
  return kept;
}

void print_median(const char* name, int threads, std::vector<double> times, const char* extra) {
  std::sort(times.begin(), times.end());
  std::printf("%s threads=%d epochs=%zu median_epoch_s=%.4f min_epoch_s=%.4f%s\n", name, threads,
              times.size(), times[times.size() / 2], times.front(), extra);
}

}  // namespace

int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::atoi(argv[1]) : 1;
  const int epochs = argc > 2 ? std::atoi(argv[2]) : 5;
  const int batch = argc > 3 ? std::atoi(argv[3]) : 128;
  if (threads < 1 || epochs < 1 || batch < 1) {
    std::fprintf(stderr, "gemm_epoch: threads, epochs and batch must be >= 1\n");
    return 2;
  }
  // Read the data first, so a wrong directory is reported before any timing.
  std::vector<int> kept;
  if (argc > 4) {
    try {
      kept = kept_pixels_per_batch(argv[4], batch);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "gemm_epoch: %s\n", e.what());
      return 1;
    }
  }
  openblas_set_num_threads(threads);
  BareGemmEpoch run(60000, 784, 256, 10, batch);
  std::vector<double> times;
  for (int e = 0; e < epochs; ++e)
    times.push_back(run.seconds());
  print_median("gemm_epoch", threads, times, "");
  if (!kept.empty()) {
    times.clear();
    for (int e = 0; e < epochs; ++e)
      times.push_back(run.seconds_with_inputs(kept));
    char extra[64];
    std::snprintf(
        extra, sizeof extra, " mean_kept_pixels=%.0f",
        std::accumulate(kept.begin(), kept.end(), 0.0) / static_cast<double>(kept.size()));
    print_median("gemm_epoch_kept_pixels", threads, times, extra);
  }
  return run.checksum() == run.checksum() ? 0 : 1;
}
