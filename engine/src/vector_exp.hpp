// A vectorised e^x for batches of doubles, and the loop that applies it to a buffer
// (vector_exp: either precision).
//
// Why this exists: xsimd 8.1's exp for batch<double> on AVX2 (our -march=x86-64-v3)
// costs ~2.5 ns per element, 10-40x its float version, because its range reduction and
// ldexp convert double <-> int64 lane by lane (AVX2 has no vcvtpd2qq; that needs
// AVX-512DQ). In a small float64 network that made sigmoid's forward the largest cost of
// a training step (docs/engine.md §9). This version needs no int64 conversion: the
// rounded multiple of ln 2 comes from the magic-number trick (adding 1.5 * 2^52 leaves
// k in the low mantissa bits), and 2^k is built by a 64-bit shift of those same bits
// into the exponent field.
//
// Accuracy: within 1 ulp of std::exp (tests/engine/test_vector_exp.cpp measures the
// worst case over a wide range). At the edges it is std::exp itself: a lane outside
// |x| <= 708 or a NaN lane is computed by the scalar libm (with_edge_lanes), so overflow
// to inf starts at 709.78, as in libm (xsimd::exp, used here before, overflowed from
// 709.44), and subnormal results, underflow to 0 and NaN are libm's. The other lanes of
// such a batch are computed as in any batch, so results never depend on the batch width.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <type_traits>

#include <xsimd/xsimd.hpp>

#include "simd_dispatch.hpp"

namespace xgrad::detail {

/// a b + c and c - a b, each rounded once. xsimd 8.1 has no AVX-512 fma or fnma: its
/// generic ones are the expressions a * b + c and -a * b + c, which become one FMA only
/// when the compiler contracts them (GCC from -O2, and not always under sanitizers). The
/// kernels' rounding must not depend on that, so AVX-512 batches use the intrinsics.
template <class A>
inline xsimd::batch<double, A> fmadd(const xsimd::batch<double, A>& a,
                                     const xsimd::batch<double, A>& b,
                                     const xsimd::batch<double, A>& c) {
#if defined(__AVX512F__)
  if constexpr (std::is_base_of_v<xsimd::avx512f, A>) return _mm512_fmadd_pd(a, b, c);
#endif
  return xsimd::fma(a, b, c);
}
template <class A>
inline xsimd::batch<double, A> fnmadd(const xsimd::batch<double, A>& a,
                                      const xsimd::batch<double, A>& b,
                                      const xsimd::batch<double, A>& c) {
#if defined(__AVX512F__)
  if constexpr (std::is_base_of_v<xsimd::avx512f, A>) return _mm512_fnmadd_pd(a, b, c);
#endif
  return xsimd::fnma(a, b, c);
}

/// x = k ln 2 + r with k = round(x / ln 2) and |r| <= 0.347, for |x| <= 708 (then k lies
/// in [-1022, 1022]). `t` carries k in its low mantissa bits, for two_to_k.
template <class A>
struct Ln2Reduced {
  xsimd::batch<double, A> t, r;
};
template <class A>
inline Ln2Reduced<A> reduce_by_ln2(const xsimd::batch<double, A>& x) {
  using B = xsimd::batch<double, A>;
  // t = x / ln 2 + 1.5 * 2^52, rounded once (fma): its low mantissa bits hold
  // k = round(x / ln 2) as a two's-complement integer, and t - 1.5 * 2^52 is k exactly.
  const B shifter(0x1.8p52);
  const B t = fmadd(x, B(0x1.71547652b82fep0), shifter);
  const B k = t - shifter;
  // Cody-Waite: r = x - k ln 2 with ln 2 = hi + lo; hi has 32 significant bits, so
  // k * hi is exact for |k| < 2^21 and r loses nothing to cancellation.
  B r = fnmadd(k, B(0x1.62e42feep-1), x);
  r = fnmadd(k, B(0x1.a39ef35793c76p-33), r);
  return {t, r};
}

/// 2^k for the k that reduce_by_ln2 left in t: (low bits of t) + 1023, shifted into the
/// exponent field. The bits above them (t's own exponent and the 1.5 * 2^52 pattern)
/// are shifted out.
template <class A>
inline xsimd::batch<double, A> two_to_k(const xsimd::batch<double, A>& t) {
  using I = xsimd::batch<std::int64_t, A>;
  return xsimd::bitwise_cast<xsimd::batch<double, A>>((xsimd::bitwise_cast<I>(t) + I(1023)) << 52);
}

/// A batch with a lane outside |x| <= 708 (or NaN): the lanes inside get fast(x) on
/// their own values, as in any other batch, the others edge(x) from the scalar libm.
/// So no lane's result depends on its neighbours, and the batch width (AVX2's 4 or
/// AVX-512's 8) cannot change a bit.
template <class A, class Fast, class Edge>
inline xsimd::batch<double, A> with_edge_lanes(const xsimd::batch<double, A>& x, Fast&& fast,
                                               Edge&& edge) {
  using B = xsimd::batch<double, A>;
  const auto inside = xsimd::abs(x) <= B(708.0);  // false for NaN
  alignas(64) double in[B::size], out[B::size];
  x.store_aligned(in);
  fast(xsimd::select(inside, x, B(0.0))).store_aligned(out);
  for (std::size_t j = 0; j < B::size; ++j)
    if (!(std::abs(in[j]) <= 708.0)) out[j] = edge(in[j]);
  return B::load_aligned(out);
}

/// e^x for every lane of x (see the file comment for accuracy and edge cases).
template <class A>
inline xsimd::batch<double, A> exp_batch(const xsimd::batch<double, A>& x) {
  using B = xsimd::batch<double, A>;
  // |x| <= 708: k = round(x / ln 2) lies in [-1022, 1022] and e^x is a normal double.
  // The comparison is false for NaN, so NaN lanes take the edge path too.
  if (!xsimd::all(xsimd::abs(x) <= B(708.0))) {
    return with_edge_lanes(
        x, [](const B& inside) { return exp_batch(inside); }, [](double v) { return std::exp(v); });
  }
  const auto [t, r] = reduce_by_ln2(x);
  // e^r = 1 + r + r^2 q(r), q the Taylor series from 1/2! to 1/13!: the truncation error
  // is below r^14 / 14! < 5e-18 (0.04 ulp). q is evaluated by Estrin's scheme (pairs, then
  // powers r^2, r^4, r^8): a dependency chain of 5 FMAs instead of Horner's 11, ~10%
  // faster here at the same accuracy. Adding 1 last keeps the rounding of the
  // polynomial's terms small next to the result.
  const B r2 = r * r;
  const B r4 = r2 * r2;
  const B p01 = fmadd(B(1.0 / 6.0), r, B(1.0 / 2.0));
  const B p23 = fmadd(B(1.0 / 120.0), r, B(1.0 / 24.0));
  const B p45 = fmadd(B(1.0 / 5040.0), r, B(1.0 / 720.0));
  const B p67 = fmadd(B(1.0 / 362880.0), r, B(1.0 / 40320.0));
  const B p89 = fmadd(B(1.0 / 39916800.0), r, B(1.0 / 3628800.0));
  const B p1011 = fmadd(B(1.0 / 6227020800.0), r, B(1.0 / 479001600.0));
  const B q03 = fmadd(p23, r2, p01);
  const B q47 = fmadd(p67, r2, p45);
  const B q811 = fmadd(p1011, r2, p89);
  const B q07 = fmadd(q47, r4, q03);
  const B q = fmadd(q811, r4 * r4, q07);
  const B p = B(1.0) + fmadd(r2, q, r);
  return p * two_to_k(t);  // exact: a power of two, no overflow
}

/// The logistic function 1 / (1 + e^-x), within 2 ulp (tests/engine/test_sigmoid_batch.cpp).
///
/// Why not 1 / (1 + exp_batch(-x)): in the float64 Runge network (1-50-50-1, 240 rows)
/// sigmoid's forward was a quarter of a training step, and that form pays for a degree-13
/// polynomial (19 multiplications and FMAs in all) and then a division. Here e^-x = 2^k e^r
/// with e^r = P(r) / P(-r), the [6/6] Pade approximant (relative error about
/// 1.7e-13 r^13 < 2e-19 for |r| <= 0.347), and the Pade division merges with sigmoid's:
///   1 / (1 + 2^k P(r) / P(-r)) = P(-r) / (P(-r) + 2^k P(r)),
/// one division and 11 multiplications and FMAs: 12,000 elements in ~14 us instead of
/// ~24 us (one core, loaded machine). P(+-r) = E(r^2) +- r O(r^2) share their even and odd
/// parts. Same bound as before (both reach 2 ulp; this one a little more
/// often: ~0.5% of random arguments against ~0.1%). Lanes outside |x| <= 708 and NaN
/// lanes take 1 / (1 + std::exp(-x)), so the edges (0, 1, NaN) are what they were.
template <class A>
inline xsimd::batch<double, A> sigmoid_batch(const xsimd::batch<double, A>& x) {
  using B = xsimd::batch<double, A>;
  if (!xsimd::all(xsimd::abs(x) <= B(708.0))) {
    return with_edge_lanes(
        x, [](const B& inside) { return sigmoid_batch(inside); },
        [](double v) { return 1.0 / (1.0 + std::exp(-v)); });
  }
  // The range reduction of exp_batch, for z = -x: z = k ln 2 + r, |r| <= 0.347.
  const auto [t, r] = reduce_by_ln2(B(-x));
  // P(r) = sum c_j r^j, c_j = (12 - j)! 6! / (12! j! (6 - j)!): 1, 1/2, 5/44, 1/66, 1/792,
  // 1/15840, 1/665280. E = even part, ro = odd part.
  const B r2 = r * r;
  const B e4 = fmadd(r2, B(1.0 / 665280.0), B(1.0 / 792.0));
  const B e2 = fmadd(r2, e4, B(5.0 / 44.0));
  const B e = fmadd(r2, e2, B(1.0));
  const B o2 = fmadd(r2, B(1.0 / 15840.0), B(1.0 / 66.0));
  const B o = fmadd(r2, o2, B(0.5));  // P's odd part over r
  const B p = fmadd(r, o, e);         // P(r)
  const B q = fnmadd(r, o, e);        // P(-r)
  // k <= 1021 and P(r) < 1.2, so 2^k P(r) stays finite.
  return q / fmadd(two_to_k(t), p, q);
}

/// y[i] = f(x[i]) for i < n, f a function of xsimd::batch<T> (T float or double). x and y
/// may be the same buffer. The tail is computed in a padded batch, so every element goes
/// through the same code whatever its position.
template <class A = xsimd::default_arch, class T, class F>
inline void map_batches(const T* x, T* y, std::size_t n, F&& f) {
  using B = xsimd::batch<T, A>;
  constexpr std::size_t w = B::size;
  std::size_t i = 0;
  for (; i + w <= n; i += w)
    f(B::load_unaligned(x + i)).store_unaligned(y + i);
  if (i < n) {
    alignas(64) T tail[w] = {};
    for (std::size_t j = 0; i + j < n; ++j)
      tail[j] = x[i + j];
    f(B::load_aligned(tail)).store_aligned(tail);
    for (std::size_t j = 0; i + j < n; ++j)
      y[i + j] = tail[j];
  }
}

/// Where xsimd's float exp is wrong: above 88 it overflows early (from 88.38; libm from
/// 88.72), below -87 it flushes to 0 (from -87.68, where libm has subnormals down to
/// -103.97). Takes a batch or a float.
struct FloatExpEdge {
  template <class V>
  auto operator()(const V& v) const {
    return (v > V(88.0f)) | (v < V(-87.0f));
  }
};

/// e^x for a float batch: xsimd::exp, with std::exp in FloatExpEdge's lanes. The other
/// lanes are the batch's, so a value never depends on its neighbours. For x and y that
/// may be the same buffer (vector_exp); out of place, exp_float_buffer is faster.
template <class A>
inline xsimd::batch<float, A> exp_float_batch(const xsimd::batch<float, A>& x) {
  using B = xsimd::batch<float, A>;
  const B fast = xsimd::exp(x);
  if (!xsimd::any(FloatExpEdge{}(x))) return fast;
  alignas(64) float in[B::size], out[B::size];
  x.store_aligned(in);
  fast.store_aligned(out);
  for (std::size_t j = 0; j < B::size; ++j)
    if (FloatExpEdge{}(in[j])) out[j] = std::exp(in[j]);
  return B::load_aligned(out);
}

/// y[i] = fast(x[i]) by batches (the tail in one padded batch of zeros, as in
/// map_batches), then y[i] = exact(x[i]) by the scalar libm where edge(x[i]): the
/// arguments where xsimd's batch function is wrong. edge takes a batch or a scalar and is
/// false at 0. The test rides along in the batch pass (a test and branch per batch cost
/// 10-15 % of a float sigmoid), and the second pass runs only when a lane needs it, so
/// x and y must be different buffers.
template <class A = xsimd::default_arch, class T, class Fast, class Edge, class Exact>
inline void map_batches_exact_at(const T* x, T* y, std::size_t n, Fast&& fast, Edge&& edge,
                                 Exact&& exact) {
  using B = xsimd::batch<T, A>;
  constexpr std::size_t w = B::size;
  auto any_edge = typename B::batch_bool_type(false);
  std::size_t i = 0;
  for (; i + w <= n; i += w) {
    const B v = B::load_unaligned(x + i);
    any_edge = any_edge | edge(v);
    fast(v).store_unaligned(y + i);
  }
  if (i < n) {
    alignas(64) T tail[w] = {};
    for (std::size_t j = 0; i + j < n; ++j)
      tail[j] = x[i + j];
    const B v = B::load_aligned(tail);
    any_edge = any_edge | edge(v);
    fast(v).store_aligned(tail);
    for (std::size_t j = 0; i + j < n; ++j)
      y[i + j] = tail[j];
  }
  if (!xsimd::any(any_edge)) return;
  for (std::size_t k = 0; k < n; ++k)
    if (edge(x[k])) y[k] = exact(x[k]);
}

/// e^x for n floats (x and y different buffers): exp_float_batch's values.
inline void exp_float_buffer(const float* x, float* y, std::size_t n) {
  map_batches_exact_at(
      x, y, n, [](const auto& v) { return xsimd::exp(v); }, FloatExpEdge{},
      [](float v) { return std::exp(v); });
}

/// 1 / (1 + e^-x) for n floats (x and y different buffers). Below -87, where xsimd's
/// exp(-x) overflows (from 88.38) and makes y = 0 while the exact y is a subnormal down
/// to -103.3, the value is computed in double.
inline void sigmoid_float_buffer(const float* x, float* y, std::size_t n) {
  map_batches_exact_at(
      x, y, n,
      [](const auto& v) {
        using V = std::decay_t<decltype(v)>;
        return V(1.0f) / (V(1.0f) + xsimd::exp(-v));
      },
      [](const auto& v) { return v < std::decay_t<decltype(v)>(-87.0f); },
      [](float v) { return float(1.0 / (1.0 + std::exp(-double(v)))); });
}

/// log x for n values (x and y different buffers): xsimd's log, except for subnormal x,
/// where it is wrong (log(1e-310) gave -746.5, not -713.8): std::log there.
template <class T>
inline void log_buffer(const T* x, T* y, std::size_t n) {
  map_batches_exact_at(
      x, y, n, [](const auto& v) { return xsimd::log(v); },
      [](const auto& v) {
        using V = std::decay_t<decltype(v)>;
        return (v > V(0)) & (v < V(std::numeric_limits<T>::min()));
      },
      [](T v) { return std::log(v); });
}

/// y[i] = e^x[i] for i < n, vectorised in either precision: exp_batch for double (see the
/// file comment) at the widest SIMD the CPU runs (simd_dispatch.hpp), exp_float_batch for
/// float. x and y may be the same buffer.
template <class T>
inline void vector_exp(const T* x, T* y, std::size_t n) {
  if constexpr (std::is_same_v<T, double>) {
    float64_kernels().exp(x, y, n);
  } else {
    map_batches(x, y, n, [](const auto& v) { return exp_float_batch(v); });
  }
}

}  // namespace xgrad::detail
