// Elementwise ops: broadcasting arithmetic, functions and activations.
// Each forward is followed by its backward rule; `g` is the output's gradient,
// `y` the output, `a`/`b` the inputs (docs/engine.md has the same table in math).
#include <algorithm>
#include <array>
#include <cmath>
#include <type_traits>

#include <xtensor/xadapt.hpp>
#include <xtensor/xmath.hpp>
#include <xtensor/xoperation.hpp>

#include "op_support.hpp"
#include "vector_exp.hpp"
#include "xgrad/ops.hpp"
#include "xgrad/parallel.hpp"

namespace xgrad {
namespace detail {
namespace {

/// kernel(x, y, n) over chunks of [0, n) on the thread pool; chunk edges on 16 elements
/// keep the SIMD batches (and the one padded tail batch) where a serial pass has them.
template <class T>
void parallel_buffer(void (*kernel)(const T*, T*, std::size_t), const T* x, T* y, std::size_t n) {
  parallel_for(n, kParallelItems,
               [&](std::size_t b, std::size_t e) { kernel(x + b, y + b, e - b); });
}

/// y = forward(a) elementwise (on the thread pool for large a).
template <class T, class Forward>
Tensor<T> unary(Op op, const Tensor<T>& a, Forward&& forward, T alpha = T(0), T beta = T(0)) {
  Tape<T>& tape = tape_of(a, op_name(op));
  const std::uint32_t ia = tape.index_of(a, op_name(op));
  const std::size_t rows = tape.value_of(ia).shape(0), cols = tape.value_of(ia).shape(1);
  const std::uint32_t i = tape.record(op, ia, kNoParent, rows, cols);
  Node<T>& n = tape.node(i);
  n.alpha = alpha;
  n.beta = beta;
  const Matrix<T>& in = tape.value_of(ia);
  if (n.value.size() < 2 * kParallelItems || threads() == 1) {
    xt::noalias(n.value) = forward(in);
  } else {
    // Contiguous 1-D chunks per thread. Their offsets are multiples of 16 elements, a
    // multiple of the buffer's SIMD alignment, so xtensor takes the same path (aligned
    // stores, no scalar prologue) as the serial assignment.
    const T* src = in.data();
    T* dst = n.value.data();
    parallel_for(n.value.size(), kParallelItems, [&](std::size_t b, std::size_t e) {
      const std::array<std::size_t, 1> shape{e - b};
      auto chunk_out = xt::adapt(dst + b, e - b, xt::no_ownership(), shape);
      xt::noalias(chunk_out) = forward(xt::adapt(src + b, e - b, xt::no_ownership(), shape));
    });
  }
  return finish(tape, i);
}

/// Like unary, for a forward that writes its output buffer itself: fill(in, out).
template <class T, class Fill>
Tensor<T> unary_into(Op op, const Tensor<T>& a, Fill&& fill, T alpha = T(0)) {
  Tape<T>& tape = tape_of(a, op_name(op));
  const std::uint32_t ia = tape.index_of(a, op_name(op));
  const std::size_t rows = tape.value_of(ia).shape(0), cols = tape.value_of(ia).shape(1);
  const std::uint32_t i = tape.record(op, ia, kNoParent, rows, cols);
  tape.node(i).alpha = alpha;
  fill(tape.value_of(ia), tape.node(i).value);
  return finish(tape, i);
}

/// y[k] = f(x[k]) as a plain loop on the thread pool: for forwards whose xtensor
/// expression is wrong (xsimd's pow) or does not vectorise (xt::where).
template <class T, class F>
Tensor<T> unary_map(Op op, const Tensor<T>& a, F f, T alpha = T(0)) {
  return unary_into(
      op, a,
      [f](const Matrix<T>& x, Matrix<T>& y) {
        const T* in = x.data();
        T* out = y.data();
        parallel_for(x.size(), kParallelItems, [&](std::size_t b, std::size_t e) {
          for (std::size_t k = b; k < e; ++k)
            out[k] = f(in[k]);
        });
      },
      alpha);
}

template <class T, class Forward, class ScalarOp>
Tensor<T> binary(Op op, const Tensor<T>& a, const Tensor<T>& b, Forward&& forward,
                 ScalarOp&& scalar) {
  Tape<T>& tape = tape_of(a, op_name(op));
  const std::uint32_t ia = tape.index_of(a, op_name(op));
  const std::uint32_t ib = tape.index_of(b, op_name(op));
  const Matrix<T>& va = tape.value_of(ia);
  const Matrix<T>& vb = tape.value_of(ib);
  // Plain variables: the loop below captures them, which C++17 allows for a structured
  // binding only as a GCC extension (clang refuses).
  const std::pair<std::size_t, std::size_t> shape = broadcast_shape(op, va, vb);
  const std::size_t rows = shape.first, cols = shape.second;
  const std::uint32_t i = tape.record(op, ia, ib, rows, cols);
  Matrix<T>& y = tape.node(i).value;
  const bool a_full = va.shape(0) == rows && va.shape(1) == cols;
  const bool b_full = vb.shape(0) == rows && vb.shape(1) == cols;
  if (rows > 1 && ((a_full && vb.shape(0) == 1 && vb.shape(1) == cols) ||
                   (b_full && va.shape(0) == 1 && va.shape(1) == cols))) {
    // A matrix and a 1xC row (x W + b): xtensor's broadcasting assignment is a strided
    // loop several times slower than this contiguous one.
    const T* pa = va.data();
    const T* pb = vb.data();
    T* out = y.data();
    parallel_for(
        rows, std::max<std::size_t>(1, kParallelItems / std::max<std::size_t>(1, cols)),
        [&](std::size_t first, std::size_t last) {
          for (std::size_t p = first; p < last; ++p) {
            const T* ra = a_full ? pa + p * cols : pa;
            const T* rb = b_full ? pb + p * cols : pb;
            T* ro = out + p * cols;
            for (std::size_t q = 0; q < cols; ++q)
              ro[q] = scalar(ra[q], rb[q]);
          }
        },
        /*align=*/1);
  } else {
    xt::noalias(y) = forward(va, vb);
  }
  return finish(tape, i);
}

}  // namespace

// ---- add: y = a + b;  da = g, db = g (summed over broadcast axes)
template <class T>
void backward_add(Tape<T>& t, std::uint32_t i) {
  const Node<T>& n = t.node(i);
  accumulate(t, n.lhs, t.grad_of(i), i);
  accumulate(t, n.rhs, t.grad_of(i), i);
}
// ---- sub: y = a - b;  da = g, db = -g
template <class T>
void backward_sub(Tape<T>& t, std::uint32_t i) {
  const Node<T>& n = t.node(i);
  accumulate(t, n.lhs, t.grad_of(i), i);
  accumulate(t, n.rhs, -t.grad_of(i), i);
}
// ---- mul: y = a * b;  da = g b, db = g a
template <class T>
void backward_mul(Tape<T>& t, std::uint32_t i) {
  const Node<T>& n = t.node(i);
  const Matrix<T>& g = t.grad_of(i);
  accumulate(t, n.lhs, g * t.value_of(n.rhs), i);
  accumulate(t, n.rhs, g * t.value_of(n.lhs), i);
}
// ---- div: y = a / b;  da = g / b, db = -g y / b
template <class T>
void backward_div(Tape<T>& t, std::uint32_t i) {
  const Node<T>& n = t.node(i);
  const Matrix<T>& g = t.grad_of(i);
  const Matrix<T>& b = t.value_of(n.rhs);
  accumulate(t, n.lhs, g / b, i);
  accumulate(t, n.rhs, -g * t.value_of(i) / b, i);
}
// ---- neg: y = -a;  da = -g
template <class T>
void backward_neg(Tape<T>& t, std::uint32_t i) {
  accumulate(t, t.node(i).lhs, -t.grad_of(i), i);
}
// ---- affine: y = alpha a + beta;  da = alpha g
template <class T>
void backward_affine(Tape<T>& t, std::uint32_t i) {
  accumulate(t, t.node(i).lhs, t.node(i).alpha * t.grad_of(i), i);
}
// ---- scalar_div: y = alpha / a;  da = -g y / a
template <class T>
void backward_scalar_div(Tape<T>& t, std::uint32_t i) {
  const Node<T>& n = t.node(i);
  accumulate(t, n.lhs, -t.grad_of(i) * t.value_of(i) / t.value_of(n.lhs), i);
}
// ---- pow: y = a^alpha;  da = g alpha a^(alpha-1)  (0 for alpha = 0, where a^-1 can be inf)
//      std::pow element by element: xsimd's batch pow gave 0^-1 = 0, 0^0 = 0, inf^0 = NaN
//      and 18 ulp errors, and different answers in a batch than in the scalar tail.
template <class T>
void backward_pow(Tape<T>& t, std::uint32_t i) {
  const Node<T>& n = t.node(i);
  const T alpha = n.alpha;
  const T* a = t.value_of(n.lhs).data();
  const T* g = t.grad_of(i).data();
  accumulate_unary(t, n.lhs, i, [=](std::size_t k) {
    return alpha == T(0) ? T(0) : g[k] * alpha * std::pow(a[k], alpha - T(1));
  });
}
// ---- square: y = a^2;  da = 2 g a
template <class T>
void backward_square(Tape<T>& t, std::uint32_t i) {
  const Node<T>& n = t.node(i);
  accumulate(t, n.lhs, T(2) * t.grad_of(i) * t.value_of(n.lhs), i);
}
// ---- sqrt: y = sqrt(a);  da = g / (2 y)
template <class T>
void backward_sqrt(Tape<T>& t, std::uint32_t i) {
  accumulate(t, t.node(i).lhs, t.grad_of(i) / (T(2) * t.value_of(i)), i);
}
// ---- exp: y = e^a;  da = g y
template <class T>
void backward_exp(Tape<T>& t, std::uint32_t i) {
  accumulate(t, t.node(i).lhs, t.grad_of(i) * t.value_of(i), i);
}
// ---- log: y = ln a;  da = g / a
template <class T>
void backward_log(Tape<T>& t, std::uint32_t i) {
  const Node<T>& n = t.node(i);
  accumulate(t, n.lhs, t.grad_of(i) / t.value_of(n.lhs), i);
}
// ---- abs: y = |a|;  da = g sgn(a)  (0 at a = 0)
template <class T>
void backward_abs(Tape<T>& t, std::uint32_t i) {
  const Node<T>& n = t.node(i);
  accumulate(t, n.lhs, t.grad_of(i) * xt::sign(t.value_of(n.lhs)), i);
}
// ---- sigmoid: y = 1 / (1 + e^-a);  da = g y (1 - y)
//      (e^-a overflows to inf for a << 0 and y becomes exactly 0: no NaN)
template <class T>
void backward_sigmoid(Tape<T>& t, std::uint32_t i) {
  const T* y = t.value_of(i).data();
  const T* g = t.grad_of(i).data();
  accumulate_unary(t, t.node(i).lhs, i, [=](std::size_t k) { return g[k] * y[k] * (T(1) - y[k]); });
}
// ---- tanh: y = tanh a;  da = g (1 - y^2)
template <class T>
void backward_tanh(Tape<T>& t, std::uint32_t i) {
  const T* y = t.value_of(i).data();
  const T* g = t.grad_of(i).data();
  accumulate_unary(t, t.node(i).lhs, i, [=](std::size_t k) { return g[k] * (T(1) - y[k] * y[k]); });
}
// ---- relu: y = max(a, 0), NaN for a NaN a (as PyTorch: a NaN must not vanish);
//      da = g [a > 0]
template <class T>
void backward_relu(Tape<T>& t, std::uint32_t i) {
  const Node<T>& n = t.node(i);
  accumulate(t, n.lhs, xt::where(t.value_of(n.lhs) > T(0), t.grad_of(i), T(0)), i);
}
// ---- leaky_relu: y = a if a > 0 else alpha a;  da = g if a > 0 else alpha g
template <class T>
void backward_leaky_relu(Tape<T>& t, std::uint32_t i) {
  const Node<T>& n = t.node(i);
  const Matrix<T>& g = t.grad_of(i);
  accumulate(t, n.lhs, xt::where(t.value_of(n.lhs) > T(0), g, n.alpha * g), i);
}
// ---- elu: y = a if a > 0 else alpha (e^a - 1);  da = g if a > 0 else g (y + alpha)
template <class T>
void backward_elu(Tape<T>& t, std::uint32_t i) {
  const Node<T>& n = t.node(i);
  const Matrix<T>& g = t.grad_of(i);
  accumulate(t, n.lhs, xt::where(t.value_of(n.lhs) > T(0), g, g * (t.value_of(i) + n.alpha)), i);
}

// ---- sin: y = sin a;  da = g cos a
template <class T>
void backward_sin(Tape<T>& t, std::uint32_t i) {
  const T* a = t.value_of(t.node(i).lhs).data();
  const T* g = t.grad_of(i).data();
  accumulate_unary(t, t.node(i).lhs, i, [=](std::size_t k) { return g[k] * std::cos(a[k]); });
}
// ---- cos: y = cos a;  da = -g sin a
template <class T>
void backward_cos(Tape<T>& t, std::uint32_t i) {
  const T* a = t.value_of(t.node(i).lhs).data();
  const T* g = t.grad_of(i).data();
  accumulate_unary(t, t.node(i).lhs, i, [=](std::size_t k) { return -g[k] * std::sin(a[k]); });
}

XGRAD_INSTANTIATE_BACKWARD(add)
XGRAD_INSTANTIATE_BACKWARD(sub)
XGRAD_INSTANTIATE_BACKWARD(mul)
XGRAD_INSTANTIATE_BACKWARD(div)
XGRAD_INSTANTIATE_BACKWARD(neg)
XGRAD_INSTANTIATE_BACKWARD(affine)
XGRAD_INSTANTIATE_BACKWARD(scalar_div)
XGRAD_INSTANTIATE_BACKWARD(pow)
XGRAD_INSTANTIATE_BACKWARD(square)
XGRAD_INSTANTIATE_BACKWARD(sqrt)
XGRAD_INSTANTIATE_BACKWARD(exp)
XGRAD_INSTANTIATE_BACKWARD(sin)
XGRAD_INSTANTIATE_BACKWARD(cos)
XGRAD_INSTANTIATE_BACKWARD(log)
XGRAD_INSTANTIATE_BACKWARD(abs)
XGRAD_INSTANTIATE_BACKWARD(sigmoid)
XGRAD_INSTANTIATE_BACKWARD(tanh)
XGRAD_INSTANTIATE_BACKWARD(relu)
XGRAD_INSTANTIATE_BACKWARD(leaky_relu)
XGRAD_INSTANTIATE_BACKWARD(elu)

}  // namespace detail

using detail::binary;
using detail::unary;

template <class T>
Tensor<T> add(const Tensor<T>& a, const Tensor<T>& b) {
  return binary(
      Op::Add, a, b, [](const auto& x, const auto& y) { return x + y; },
      [](T x, T y) { return x + y; });
}
template <class T>
Tensor<T> sub(const Tensor<T>& a, const Tensor<T>& b) {
  return binary(
      Op::Sub, a, b, [](const auto& x, const auto& y) { return x - y; },
      [](T x, T y) { return x - y; });
}
template <class T>
Tensor<T> mul(const Tensor<T>& a, const Tensor<T>& b) {
  return binary(
      Op::Mul, a, b, [](const auto& x, const auto& y) { return x * y; },
      [](T x, T y) { return x * y; });
}
template <class T>
Tensor<T> div(const Tensor<T>& a, const Tensor<T>& b) {
  return binary(
      Op::Div, a, b, [](const auto& x, const auto& y) { return x / y; },
      [](T x, T y) { return x / y; });
}
template <class T>
Tensor<T> neg(const Tensor<T>& a) {
  return unary(Op::Neg, a, [](const auto& x) { return -x; });
}
template <class T>
Tensor<T> affine(const Tensor<T>& a, Scalar<T> scale, Scalar<T> shift) {
  return unary(
      Op::Affine, a, [=](const auto& x) { return scale * x + shift; }, scale, shift);
}
template <class T>
Tensor<T> scalar_div(Scalar<T> numerator, const Tensor<T>& a) {
  return unary(
      Op::ScalarDiv, a, [=](const auto& x) { return numerator / x; }, numerator);
}
template <class T>
Tensor<T> pow(const Tensor<T>& a, Scalar<T> exponent) {
  const T alpha = exponent;  // std::pow element by element: see backward_pow
  return detail::unary_map(
      Op::Pow, a, [alpha](T v) { return std::pow(v, alpha); }, alpha);
}
template <class T>
Tensor<T> square(const Tensor<T>& a) {
  return unary(Op::Square, a, [](const auto& x) { return x * x; });
}
template <class T>
Tensor<T> sqrt(const Tensor<T>& a) {
  return unary(Op::Sqrt, a, [](const auto& x) { return xt::sqrt(x); });
}
template <class T>
Tensor<T> exp(const Tensor<T>& a) {
  if constexpr (std::is_same_v<T, double>) {
    // xsimd's exp<double> is slow on AVX2; see vector_exp.hpp and simd_dispatch.hpp. The
    // kernel is chosen before the node is recorded: a bad XGRAD_SIMD leaves no node.
    const detail::BufferKernel kernel = detail::float64_kernels().exp;
    return detail::unary_into(Op::Exp, a, [kernel](const Matrix<double>& x, Matrix<double>& y) {
      detail::parallel_buffer(kernel, x.data(), y.data(), x.size());
    });
  } else {
    // libm where xsimd's float exp is wrong (vector_exp.hpp).
    return detail::unary_into(Op::Exp, a, [](const Matrix<float>& x, Matrix<float>& y) {
      detail::parallel_buffer(&detail::exp_float_buffer, x.data(), y.data(), x.size());
    });
  }
}
template <class T>
Tensor<T> log(const Tensor<T>& a) {
  // libm where xsimd's log is wrong (vector_exp.hpp, log_buffer).
  return detail::unary_into(Op::Log, a, [](const Matrix<T>& x, Matrix<T>& y) {
    detail::parallel_buffer(&detail::log_buffer<T>, x.data(), y.data(), x.size());
  });
}
template <class T>
Tensor<T> abs(const Tensor<T>& a) {
  return unary(Op::Abs, a, [](const auto& x) { return xt::abs(x); });
}
template <class T>
Tensor<T> sigmoid(const Tensor<T>& a) {
  if constexpr (std::is_same_v<T, double>) {
    // Same formula, with the fast exp of vector_exp.hpp (a << 0: e^-a = inf, y = 0).
    const detail::BufferKernel kernel = detail::float64_kernels().sigmoid;  // as in exp
    return detail::unary_into(Op::Sigmoid, a, [kernel](const Matrix<double>& x, Matrix<double>& y) {
      detail::parallel_buffer(kernel, x.data(), y.data(), x.size());
    });
  } else {
    // Its subnormal values below -87 kept (vector_exp.hpp).
    return detail::unary_into(Op::Sigmoid, a, [](const Matrix<float>& x, Matrix<float>& y) {
      detail::parallel_buffer(&detail::sigmoid_float_buffer, x.data(), y.data(), x.size());
    });
  }
}
template <class T>
Tensor<T> tanh(const Tensor<T>& a) {
  return unary(Op::Tanh, a, [](const auto& x) { return xt::tanh(x); });
}
template <class T>
Tensor<T> relu(const Tensor<T>& a) {
  // x < 0 ? 0 : x keeps a NaN (xt::maximum returned 0 for it). A plain loop: it
  // vectorises, xt::where did not (twice as slow at 240x50).
  return detail::unary_map(Op::Relu, a, [](T v) { return v < T(0) ? T(0) : v; });
}
template <class T>
Tensor<T> leaky_relu(const Tensor<T>& a, Scalar<T> alpha) {
  return unary(
      Op::LeakyRelu, a, [=](const auto& x) { return xt::where(x > T(0), x, alpha * x); }, alpha);
}
template <class T>
Tensor<T> elu(const Tensor<T>& a, Scalar<T> alpha) {
  return unary(
      Op::Elu, a, [=](const auto& x) { return xt::where(x > T(0), x, alpha * xt::expm1(x)); },
      alpha);
}

// std::sin and std::cos element by element: libm's values at any argument (xsimd's
// vector sin loses accuracy for large ones), at no cost that matters for the feature
// maps they are used in (Fourier features, periodic inputs).
template <class T>
Tensor<T> sin(const Tensor<T>& a) {
  return detail::unary_map(Op::Sin, a, [](T v) { return std::sin(v); });
}
template <class T>
Tensor<T> cos(const Tensor<T>& a) {
  return detail::unary_map(Op::Cos, a, [](T v) { return std::cos(v); });
}

#define XGRAD_INSTANTIATE_ELEMENTWISE(T)                             \
  template Tensor<T> add(const Tensor<T>&, const Tensor<T>&);        \
  template Tensor<T> sub(const Tensor<T>&, const Tensor<T>&);        \
  template Tensor<T> mul(const Tensor<T>&, const Tensor<T>&);        \
  template Tensor<T> div(const Tensor<T>&, const Tensor<T>&);        \
  template Tensor<T> neg(const Tensor<T>&);                          \
  template Tensor<T> affine(const Tensor<T>&, Scalar<T>, Scalar<T>); \
  template Tensor<T> scalar_div(Scalar<T>, const Tensor<T>&);        \
  template Tensor<T> pow(const Tensor<T>&, Scalar<T>);               \
  template Tensor<T> square(const Tensor<T>&);                       \
  template Tensor<T> sqrt(const Tensor<T>&);                         \
  template Tensor<T> exp(const Tensor<T>&);                          \
  template Tensor<T> log(const Tensor<T>&);                          \
  template Tensor<T> abs(const Tensor<T>&);                          \
  template Tensor<T> sigmoid(const Tensor<T>&);                      \
  template Tensor<T> tanh(const Tensor<T>&);                         \
  template Tensor<T> relu(const Tensor<T>&);                         \
  template Tensor<T> leaky_relu(const Tensor<T>&, Scalar<T>);        \
  template Tensor<T> elu(const Tensor<T>&, Scalar<T>);               \
  template Tensor<T> sin(const Tensor<T>&);                          \
  template Tensor<T> cos(const Tensor<T>&);
XGRAD_INSTANTIATE_ELEMENTWISE(float)
XGRAD_INSTANTIATE_ELEMENTWISE(double)

}  // namespace xgrad
