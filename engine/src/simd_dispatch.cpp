// The choice of simd_dispatch.hpp, and the kernels built with XGRAD_ARCH_FLAGS.
#include "simd_dispatch.hpp"

#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>

#include "simd_kernels.hpp"

namespace xgrad::detail {

#ifdef XGRAD_AVX512_KERNELS
Float64Kernels avx512_float64_kernels();  // simd_kernels_avx512.cpp
#endif

namespace {
#ifdef XGRAD_AVX512_KERNELS
bool cpu_has_avx512() {
#if defined(__x86_64__) || defined(__i386__)
  // libgcc's CPU model also checks that the OS saves the AVX-512 registers (XCR0).
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512cd") &&
         __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl");
#else
  return false;
#endif
}
#endif

/// XGRAD_SIMD: unset, empty or "auto" (the widest the CPU runs), or "baseline".
bool baseline_forced() {
  const char* v = std::getenv("XGRAD_SIMD");
  if (v == nullptr || *v == '\0' || std::strcmp(v, "auto") == 0) return false;
  if (std::strcmp(v, "baseline") == 0) return true;
  throw std::invalid_argument(std::string("XGRAD_SIMD=") + v +
                              ": expected auto (the default) or baseline");
}
}  // namespace

const Float64Kernels& float64_kernels_baseline() {
  static const Float64Kernels k = make_float64_kernels<xsimd::default_arch>("baseline");
  return k;
}

const Float64Kernels* float64_kernels_avx512() {
#ifdef XGRAD_AVX512_KERNELS
  // avx512_float64_kernels() itself is compiled for AVX-512: call it only on such a CPU.
  static const bool supported = cpu_has_avx512();
  if (!supported) return nullptr;
  static const Float64Kernels k = avx512_float64_kernels();
  return &k;
#else
  return nullptr;
#endif
}

const Float64Kernels& float64_kernels() {
  static const Float64Kernels& k = []() -> const Float64Kernels& {
    // XGRAD_SIMD is read (and a bad value refused) on every CPU, not only where there is
    // a choice to make.
    const bool forced = baseline_forced();
    const Float64Kernels* wide = float64_kernels_avx512();
    return wide != nullptr && !forced ? *wide : float64_kernels_baseline();
  }();
  return k;
}

}  // namespace xgrad::detail
