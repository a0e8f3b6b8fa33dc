// Float64 exp and sigmoid over whole buffers, on the widest SIMD this CPU runs.
//
// Why: the build targets XGRAD_ARCH_FLAGS (AVX2 by default) so that it runs anywhere,
// but on a CPU with AVX-512 the float64 sigmoid kernel runs ~1.6x faster with 8 lanes
// (24,000 elements: 15-17 us against 23-27 us, one core). In the float64 Runge network
// sigmoid's forward is a fifth of a training step. So these two kernels are also built
// for AVX-512 (simd_kernels_avx512.cpp, its own flags) and chosen once per process
// from the CPU's features, as PyTorch's ATen does for its kernels. OpenBLAS already
// picks its GEMM kernels the same way.
//
// Results: every lane runs the same IEEE operations at either width, so both kernel
// sets give the same bits wherever the fast path runs (|x| <= 708, no NaN). A batch with
// a lane outside falls back to xsimd's exp for the whole batch, and batches are 4 or 8
// lanes wide, so next to such a lane the two may differ by the fallback's rounding
// (tests/engine/test_simd_dispatch.cpp).
//
// XGRAD_SIMD=baseline in the environment forces the build's own kernels (for A/B
// timing, or to rule the AVX-512 path out when chasing a difference).
#pragma once

#include <cstddef>

namespace xgrad::detail {

/// y[i] = f(x[i]) for i < n; x and y may be the same buffer.
using BufferKernel = void (*)(const double* x, double* y, std::size_t n);

struct Float64Kernels {
  const char* isa;  // "avx512" or "baseline" (XGRAD_ARCH_FLAGS)
  BufferKernel exp;
  BufferKernel sigmoid;
};

/// The kernels this process uses: AVX-512 when built in and the CPU (and OS) support it
/// and XGRAD_SIMD is not "baseline"; otherwise the build's own. Chosen on first call.
const Float64Kernels& float64_kernels();
/// The kernels compiled with XGRAD_ARCH_FLAGS.
const Float64Kernels& float64_kernels_baseline();
/// The AVX-512 kernels, or nullptr if they are not built in or this CPU lacks AVX-512.
const Float64Kernels* float64_kernels_avx512();

}  // namespace xgrad::detail
