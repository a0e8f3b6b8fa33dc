// The hardware limit of one training epoch of an in-hidden-out MLP: only the five GEMMs
// each minibatch needs (forward X·W1, H·W2; backward Hᵀ·dZ2, dZ2·W2ᵀ, Xᵀ·dZ1), float32,
// through cblas_sgemm with transpose flags on preallocated buffers. No activation, no
// optimiser, no gather: whatever a trainer spends above this is its overhead.
// Shared by apps/bench/nn_epoch_bench and apps/mnist's mnist_gemm_epoch. Include it only
// where no xtensor-blas header is (<cblas.h> clashes with them, ../shared/DESIGN.md §3).
#pragma once

#include <cblas.h>

#include <chrono>
#include <cstddef>
#include <vector>

class BareGemmEpoch {
 public:
  BareGemmEpoch(int rows, int inputs, int hidden, int outputs, int batch)
      : rows_(rows),
        in_(inputs),
        hid_(hidden),
        out_(outputs),
        batch_(batch),
        x_(buf(batch, inputs)),
        w1_(buf(inputs, hidden)),
        h_(buf(batch, hidden)),
        w2_(buf(hidden, outputs)),
        z2_(buf(batch, outputs)),
        dz2_(buf(batch, outputs)),
        dw2_(buf(hidden, outputs)),
        dh_(buf(batch, hidden)),
        dw1_(buf(inputs, hidden)) {}

  /// Wall seconds of one epoch (the last minibatch may be smaller, as in training).
  double seconds() { return seconds_with_inputs({}); }

  /// The same epoch where minibatch b's first-layer GEMMs (X·W1 and Xᵀ·dZ1) use only
  /// inputs_per_batch[b] of the inputs: the floor for a trainer that drops the input
  /// columns that are zero across a minibatch (xgrad's matmul does). Empty: all inputs.
  double seconds_with_inputs(const std::vector<int>& inputs_per_batch) {
    const auto t0 = std::chrono::steady_clock::now();
    for (int begin = 0, b = 0; begin < rows_; begin += batch_, ++b) {
      const int m = begin + batch_ <= rows_ ? batch_ : rows_ - begin;
      const int k = inputs_per_batch.empty()
                        ? in_
                        : inputs_per_batch[static_cast<std::size_t>(b) % inputs_per_batch.size()];
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, hid_, k, 1.f, x_.data(), k,
                  w1_.data(), hid_, 0.f, h_.data(), hid_);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, out_, hid_, 1.f, h_.data(), hid_,
                  w2_.data(), out_, 0.f, z2_.data(), out_);
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, hid_, out_, m, 1.f, h_.data(), hid_,
                  dz2_.data(), out_, 0.f, dw2_.data(), out_);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, hid_, out_, 1.f, dz2_.data(), out_,
                  w2_.data(), out_, 0.f, dh_.data(), hid_);
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, k, hid_, m, 1.f, x_.data(), k,
                  dh_.data(), hid_, 0.f, dw1_.data(), hid_);
    }
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  /// A result of the last epoch, so the compiler cannot drop the products.
  float checksum() const { return dw1_[0] + dw2_[0]; }

 private:
  static std::vector<float> buf(int rows, int cols) {
    return std::vector<float>(static_cast<std::size_t>(rows) * static_cast<std::size_t>(cols),
                              0.01f);
  }
  int rows_, in_, hid_, out_, batch_;
  std::vector<float> x_, w1_, h_, w2_, z2_, dz2_, dw2_, dh_, dw1_;
};
