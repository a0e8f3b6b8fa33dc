// The buffer kernels of simd_dispatch.hpp for one SIMD architecture A. Included by one
// source file per architecture, each compiled with that architecture's flags. Everything
// here is in an anonymous namespace, so no function compiled for AVX-512 can be chosen
// by the linker for code that runs on a CPU without it.
#pragma once

#include "simd_dispatch.hpp"
#include "vector_exp.hpp"

namespace xgrad::detail {
namespace {

template <class A>
void exp_buffer(const double* x, double* y, std::size_t n) {
  map_batches<A>(x, y, n, [](const xsimd::batch<double, A>& v) { return exp_batch(v); });
}

template <class A>
void sigmoid_buffer(const double* x, double* y, std::size_t n) {
  map_batches<A>(x, y, n, [](const xsimd::batch<double, A>& v) { return sigmoid_batch(v); });
}

template <class A>
Float64Kernels make_float64_kernels(const char* isa) {
  return {isa, &exp_buffer<A>, &sigmoid_buffer<A>};
}

}  // namespace
}  // namespace xgrad::detail
