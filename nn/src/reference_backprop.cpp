// Hand-derived backpropagation (report 000 §II.C eqs. 5, 7, 8 with the cost derivatives of
// eqs. 17, 21 and the regulariser derivatives of eq. 23; report 002 Algorithm 2). Nothing
// here calls the engine's ops or tape: plain xtensor expressions, loops and direct cblas
// GEMMs, so that the tape is checked against an independent derivation.
//
// <cblas.h> is included directly; this file must therefore never include xtensor-blas
// headers (they redefine CBLAS_ORDER, ../shared/DESIGN.md §6).
#include "xgrad/nn/reference_backprop.hpp"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <type_traits>

#include <xtensor/xmath.hpp>
#include <xtensor/xnoalias.hpp>
#include <xtensor/xoperation.hpp>

namespace xgrad::nn {

namespace {

template <class T>
void reshape_reuse(Matrix<T>& m, std::size_t rows, std::size_t cols) {
  if (m.dimension() != 2 || m.shape(0) != rows || m.shape(1) != cols) m.resize({rows, cols});
}

/// C [m,n] = op(A) op(B) + beta C, row-major, op(X) = X^T when trans_x; op(A) is m x k.
/// The transpose flags make a^T δ and δ W^T cost no copy; beta = 1 accumulates.
template <class T>
void gemm(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k, const T* a,
          const T* b, T* c, T beta = T(0)) {
  if (m == 0 || n == 0) return;
  if (k == 0) {
    for (std::size_t i = 0; i < m * n; ++i)
      c[i] *= beta;
    return;
  }
  const auto lda = static_cast<blasint>(trans_a ? m : k);
  const auto ldb = static_cast<blasint>(trans_b ? k : n);
  const CBLAS_TRANSPOSE ta = trans_a ? CblasTrans : CblasNoTrans;
  const CBLAS_TRANSPOSE tb = trans_b ? CblasTrans : CblasNoTrans;
  const auto M = static_cast<blasint>(m), N = static_cast<blasint>(n), K = static_cast<blasint>(k);
  if constexpr (std::is_same_v<T, float>) {
    cblas_sgemm(CblasRowMajor, ta, tb, M, N, K, 1.0f, a, lda, b, ldb, beta, c, N);
  } else {
    cblas_dgemm(CblasRowMajor, ta, tb, M, N, K, 1.0, a, lda, b, ldb, beta, c, N);
  }
}

/// a = f(z) (report 000 eqs. 9, 11, 13, 15 and tanh, ELU).
template <class T>
void apply_activation(const Activation& f, const Matrix<T>& z, Matrix<T>& a) {
  const T alpha = static_cast<T>(f.effective_alpha());
  switch (f.kind) {
    case ActivationKind::Identity:
      xt::noalias(a) = z;
      return;
    case ActivationKind::Sigmoid:
      xt::noalias(a) = T(1) / (T(1) + xt::exp(-z));
      return;
    case ActivationKind::Tanh:
      xt::noalias(a) = xt::tanh(z);
      return;
    case ActivationKind::Relu:
      xt::noalias(a) = xt::maximum(z, T(0));
      return;
    case ActivationKind::LeakyRelu:
      xt::noalias(a) = xt::where(z > T(0), z, alpha * z);
      return;
    case ActivationKind::Elu:
      xt::noalias(a) = xt::where(z > T(0), z, alpha * xt::expm1(z));
      return;
    case ActivationKind::Softmax: {
      // Row-wise, the row max subtracted so that exp cannot overflow.
      const std::size_t rows = z.shape(0), cols = z.shape(1);
      for (std::size_t i = 0; i < rows; ++i) {
        const T* zi = z.data() + i * cols;
        T* ai = a.data() + i * cols;
        const T m = *std::max_element(zi, zi + cols);
        T s = 0;
        for (std::size_t j = 0; j < cols; ++j)
          s += (ai[j] = std::exp(zi[j] - m));
        for (std::size_t j = 0; j < cols; ++j)
          ai[j] /= s;
      }
      return;
    }
  }
  throw std::invalid_argument("reference backprop: unknown activation kind " +
                              std::to_string(static_cast<int>(f.kind)));
}

/// d <- f'(z) ∘ d, in place (report 000 eqs. 5 and 7). f' from eqs. 10, 12, 14 and
/// tanh' = 1 − a², ELU' = a + α for z <= 0. ReLU and LeakyReLU take the derivative
/// of the z <= 0 branch at the kink z = 0 (report 000 eq. 10 takes the other one-sided
/// value; the tape uses this one, and the checks keep z away from 0).
/// Softmax has a full Jacobian per row: d_j <- a_j (d_j − Σ_k d_k a_k).
template <class T>
void apply_derivative(const Activation& f, const Matrix<T>& z, const Matrix<T>& a, Matrix<T>& d) {
  const T alpha = static_cast<T>(f.effective_alpha());
  switch (f.kind) {
    case ActivationKind::Identity:
      return;
    case ActivationKind::Sigmoid:
      xt::noalias(d) = d * a * (T(1) - a);  // eq. 14
      return;
    case ActivationKind::Tanh:
      xt::noalias(d) = d * (T(1) - a * a);
      return;
    case ActivationKind::Relu:
      xt::noalias(d) = xt::where(z > T(0), d, T(0));  // eq. 10
      return;
    case ActivationKind::LeakyRelu:
      xt::noalias(d) = xt::where(z > T(0), d, alpha * d);  // eq. 12
      return;
    case ActivationKind::Elu:
      xt::noalias(d) = xt::where(z > T(0), d, d * (a + alpha));
      return;
    case ActivationKind::Softmax: {
      const std::size_t rows = a.shape(0), cols = a.shape(1);
      for (std::size_t i = 0; i < rows; ++i) {
        const T* ai = a.data() + i * cols;
        T* di = d.data() + i * cols;
        T s = 0;
        for (std::size_t j = 0; j < cols; ++j)
          s += di[j] * ai[j];
        for (std::size_t j = 0; j < cols; ++j)
          di[j] = ai[j] * (di[j] - s);
      }
      return;
    }
  }
  throw std::invalid_argument("reference backprop: unknown activation kind " +
                              std::to_string(static_cast<int>(f.kind)));
}

}  // namespace

template <class T>
ReferenceBackprop<T>::ReferenceBackprop(const Network<T>& net) : layers_(net.layers()) {
  if (layers_.empty()) throw std::invalid_argument("ReferenceBackprop: the network has no layers");
  const std::size_t L = layers_.size();
  z_.resize(L);
  a_.resize(L);
  delta_.resize(L);
  grads_.resize(2 * L);
}

template <class T>
T ReferenceBackprop<T>::compute(const Matrix<T>& x, const Matrix<T>& y, const CostSpec& spec) {
  return run(x, y, spec, false);
}

template <class T>
T ReferenceBackprop<T>::compute(const Matrix<T>& x, const Matrix<T>& y,
                                const std::vector<std::size_t>& rows, std::size_t begin,
                                std::size_t end, const CostSpec& spec) {
  gather(x, y, rows, begin, end);
  return run(xb_, yb_, spec, false);
}

template <class T>
T ReferenceBackprop<T>::accumulate(const Matrix<T>& x, const Matrix<T>& y, const CostSpec& spec) {
  return run(x, y, spec, true);
}

template <class T>
T ReferenceBackprop<T>::accumulate(const Matrix<T>& x, const Matrix<T>& y,
                                   const std::vector<std::size_t>& rows, std::size_t begin,
                                   std::size_t end, const CostSpec& spec) {
  gather(x, y, rows, begin, end);
  return run(xb_, yb_, spec, true);
}

template <class T>
void ReferenceBackprop<T>::gather(const Matrix<T>& x, const Matrix<T>& y,
                                  const std::vector<std::size_t>& rows, std::size_t begin,
                                  std::size_t end) {
  if (begin == end) {
    throw std::invalid_argument("ReferenceBackprop::compute: empty minibatch [" +
                                std::to_string(begin) + ", " + std::to_string(end) + ")");
  }
  if (begin > end || end > rows.size()) {
    throw std::out_of_range("ReferenceBackprop::compute: range [" + std::to_string(begin) + ", " +
                            std::to_string(end) + ") outside an index list of " +
                            std::to_string(rows.size()));
  }
  if (x.shape(0) != y.shape(0)) {
    throw std::invalid_argument("ReferenceBackprop::compute: inputs " + shape_string(x) +
                                " and targets " + shape_string(y) + " differ in rows");
  }
  const std::size_t n = end - begin, xc = x.shape(1), yc = y.shape(1);
  reshape_reuse(xb_, n, xc);
  reshape_reuse(yb_, n, yc);
  for (std::size_t r = 0; r < n; ++r) {
    const std::size_t src = rows[begin + r];
    if (src >= x.shape(0)) {
      throw std::out_of_range("ReferenceBackprop::compute: row index " + std::to_string(src) +
                              " outside data with " + std::to_string(x.shape(0)) + " rows");
    }
    std::copy(x.data() + src * xc, x.data() + (src + 1) * xc, xb_.data() + r * xc);
    std::copy(y.data() + src * yc, y.data() + (src + 1) * yc, yb_.data() + r * yc);
  }
}

template <class T>
Matrix<T>& ReferenceBackprop<T>::target(std::size_t i, bool into_parameters) {
  if (!into_parameters) return grads_[i];
  Parameter<T>& p = i % 2 == 0 ? layers_[i / 2].W : layers_[i / 2].b;
  // += below must never meet a grad of another shape (xtensor would resize it silently).
  if (p.grad().dimension() != 2 || p.grad().shape() != p.value().shape()) p.zero_grad();
  return p.grad();
}

template <class T>
T ReferenceBackprop<T>::run(const Matrix<T>& x, const Matrix<T>& y, const CostSpec& spec,
                            bool into_parameters) {
  const std::size_t L = layers_.size();
  const Activation& out_f = layers_.back().activation;
  check_cost_fits(spec.cost, out_f);
  check_regularisation(spec.regularisation);
  const std::size_t n = x.shape(0);
  if (n == 0) throw std::invalid_argument("ReferenceBackprop: empty batch " + shape_string(x));
  if (x.shape(1) != layers_.front().inputs()) {
    throw std::invalid_argument("ReferenceBackprop: input is " + shape_string(x) +
                                " but the network takes " +
                                std::to_string(layers_.front().inputs()) + " features per row");
  }
  if (y.shape(0) != n || y.shape(1) != layers_.back().outputs()) {
    throw std::invalid_argument("ReferenceBackprop: targets are " + shape_string(y) +
                                " but the network gives " +
                                shape_string(n, layers_.back().outputs()));
  }

  // ---- forward: z^l = a^{l-1} W^l + b^l (report 000 eq. 2), a^l = f^l(z^l) (eq. 3)
  for (std::size_t l = 0; l < L; ++l) {
    const Matrix<T>& in = l == 0 ? x : a_[l - 1];
    const Matrix<T>& W = layers_[l].W.value();
    const Matrix<T>& b = layers_[l].b.value();
    const std::size_t k = W.shape(0), m = W.shape(1);
    reshape_reuse(z_[l], n, m);
    reshape_reuse(a_[l], n, m);
    gemm<T>(false, false, n, m, k, in.data(), W.data(), z_[l].data());
    // The bias row is added to every row of the batch (the duplication of eq. 2).
    T* zp = z_[l].data();
    const T* bp = b.data();
    for (std::size_t i = 0; i < n; ++i) {
      for (std::size_t j = 0; j < m; ++j)
        zp[i * m + j] += bp[j];
    }
    apply_activation(layers_[l].activation, z_[l], a_[l]);
  }

  // ---- the cost and δ^L = dC/dz^L
  const Matrix<T>& zL = z_[L - 1];
  const Matrix<T>& aL = a_[L - 1];
  Matrix<T>& dL = delta_[L - 1];
  const std::size_t outs = aL.shape(1);
  reshape_reuse(dL, n, outs);
  const T elements = static_cast<T>(n * outs);
  T cost = 0;
  switch (spec.cost) {
    case CostKind::MeanSquaredError: {
      // eq. 16 with the mean over every element, eq. 17: dC/da^L = 2 (a^L − y) / (n·outputs);
      // eq. 5: δ^L = f'(z^L) ∘ dC/da^L.
      const T* ap = aL.data();
      const T* yp = y.data();
      T* dp = dL.data();
      for (std::size_t i = 0; i < aL.size(); ++i) {
        const T r = ap[i] - yp[i];
        cost += r * r;
        dp[i] = T(2) * r / elements;
      }
      cost /= elements;
      apply_derivative(out_f, zL, aL, dL);
      break;
    }
    case CostKind::BinaryCrossEntropy: {
      // eq. 18 averaged over every element, evaluated from the logits so that it stays
      // finite: −[y ln σ(z) + (1 − y) ln(1 − σ(z))] = max(z, 0) − z y + ln(1 + e^{−|z|}).
      // σ'(z) ∘ dC/da (eqs. 14, 19) simplifies to δ^L = (σ(z) − y) / (n·outputs).
      const T* zp = zL.data();
      const T* ap = aL.data();
      const T* yp = y.data();
      T* dp = dL.data();
      for (std::size_t i = 0; i < aL.size(); ++i) {
        cost += std::max(zp[i], T(0)) - zp[i] * yp[i] + std::log1p(std::exp(-std::abs(zp[i])));
        dp[i] = (ap[i] - yp[i]) / elements;
      }
      cost /= elements;
      break;
    }
    case CostKind::CrossEntropy: {
      // eq. 20 averaged over rows; eq. 21: δ^L = (ŷ − y)/n for one-hot rows. For rows
      // of any total (label smoothing, soft targets) the exact form is (ŷ Σ_k y_k − y)/n.
      const T rows = static_cast<T>(n);
      for (std::size_t i = 0; i < n; ++i) {
        const T* zi = zL.data() + i * outs;
        const T* ai = aL.data() + i * outs;
        const T* yi = y.data() + i * outs;
        T* di = dL.data() + i * outs;
        const T m = *std::max_element(zi, zi + outs);
        T s = 0, y_total = 0;
        for (std::size_t j = 0; j < outs; ++j)
          s += std::exp(zi[j] - m);
        const T log_s = std::log(s);
        for (std::size_t j = 0; j < outs; ++j) {
          cost -= yi[j] * (zi[j] - m - log_s);  // y ln softmax(z), softmax in log form
          y_total += yi[j];
        }
        for (std::size_t j = 0; j < outs; ++j)
          di[j] = (ai[j] * y_total - yi[j]) / rows;
      }
      cost /= rows;
      break;
    }
  }

  // ---- backward: eq. 8 for the parameter gradients, eq. 7 for δ^{l−1}
  for (std::size_t l = L; l-- > 0;) {
    const Matrix<T>& in = l == 0 ? x : a_[l - 1];
    const Matrix<T>& W = layers_[l].W.value();
    const Matrix<T>& d = delta_[l];
    const std::size_t k = W.shape(0), m = W.shape(1);
    Matrix<T>& gW = target(2 * l, into_parameters);
    Matrix<T>& gb = target(2 * l + 1, into_parameters);
    reshape_reuse(gW, k, m);
    reshape_reuse(gb, std::size_t(1), m);
    // (a^{l−1})^T δ^l, added to what a parameter's grad holds when accumulating
    const T beta = into_parameters ? T(1) : T(0);
    gemm<T>(true, false, k, m, n, in.data(), d.data(), gW.data(), beta);
    T* gbp = gb.data();
    if (!into_parameters) std::fill(gbp, gbp + m, T(0));
    const T* dp = d.data();
    for (std::size_t i = 0; i < n; ++i) {  // Σ_rows δ^l
      for (std::size_t j = 0; j < m; ++j)
        gbp[j] += dp[i * m + j];
    }
    if (l > 0) {
      // δ^{l−1} = (δ^l W^{l T}) ∘ f'(z^{l−1})   (eq. 7, indices shifted by one)
      Matrix<T>& prev = delta_[l - 1];
      reshape_reuse(prev, n, k);
      gemm<T>(false, true, n, k, m, d.data(), W.data(), prev.data());
      apply_derivative(layers_[l - 1].activation, z_[l - 1], a_[l - 1], prev);
    }
  }

  // ---- regularisation: C += λ Σ|θ| or λ Σθ² (eq. 22), dC/dθ += λ sgn θ or 2λθ (eq. 23)
  const Regularisation& reg = spec.regularisation;
  if (reg.penalty != Penalty::None && reg.lambda != 0.0) {
    const T lambda = static_cast<T>(reg.lambda);
    T norm = 0;
    for (std::size_t l = 0; l < L; ++l) {
      for (int which = 0; which < 2; ++which) {
        if (which == 1 && !reg.include_biases) continue;
        const Matrix<T>& theta = which == 0 ? layers_[l].W.value() : layers_[l].b.value();
        Matrix<T>& g = target(2 * l + static_cast<std::size_t>(which), into_parameters);
        if (reg.penalty == Penalty::L1) {
          norm += xt::sum(xt::abs(theta))();
          xt::noalias(g) += lambda * xt::sign(theta);
        } else {
          norm += xt::sum(theta * theta)();
          xt::noalias(g) += T(2) * lambda * theta;
        }
      }
    }
    cost += lambda * norm;
  }
  return cost;
}

template <class T>
void ReferenceBackprop<T>::add_to_parameter_grads() const {
  for (std::size_t l = 0; l < layers_.size(); ++l) {
    for (int which = 0; which < 2; ++which) {
      Parameter<T> p = which == 0 ? layers_[l].W : layers_[l].b;
      const Matrix<T>& g = grads_[2 * l + static_cast<std::size_t>(which)];
      if (g.size() == 0) {
        throw std::logic_error("ReferenceBackprop::add_to_parameter_grads: compute() not run");
      }
      if (p.grad().dimension() != 2 || p.grad().shape() != g.shape()) p.zero_grad();
      xt::noalias(p.grad()) += g;  // shapes checked above: += cannot resize here
    }
  }
}

template <class T>
std::vector<Matrix<T>> reference_gradients(const Network<T>& net, const Matrix<T>& x,
                                           const Matrix<T>& y, const CostSpec& spec,
                                           T* objective_value) {
  ReferenceBackprop<T> r(net);
  const T c = r.compute(x, y, spec);
  if (objective_value != nullptr) *objective_value = c;
  return r.gradients();
}

template class ReferenceBackprop<float>;
template class ReferenceBackprop<double>;
template std::vector<Matrix<float>> reference_gradients(const Network<float>&, const Matrix<float>&,
                                                        const Matrix<float>&, const CostSpec&,
                                                        float*);
template std::vector<Matrix<double>> reference_gradients(const Network<double>&,
                                                         const Matrix<double>&,
                                                         const Matrix<double>&, const CostSpec&,
                                                         double*);

}  // namespace xgrad::nn
