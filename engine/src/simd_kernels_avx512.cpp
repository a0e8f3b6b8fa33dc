// simd_kernels.hpp for AVX-512 (F, DQ, BW, VL: x86-64-v4). Only this file is compiled
// with AVX-512 flags (engine/CMakeLists.txt); simd_dispatch.cpp calls it only on a CPU
// that has AVX-512.
#include "simd_kernels.hpp"

namespace xgrad::detail {
Float64Kernels avx512_float64_kernels() {
  return make_float64_kernels<xsimd::avx512bw>("avx512");
}
}  // namespace xgrad::detail
