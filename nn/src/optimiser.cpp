// The optimisers' update loops, fused over raw buffers and vectorised with xsimd.
#include "xgrad/nn/optimiser.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <sstream>
#include <stdexcept>

#include <xsimd/xsimd.hpp>

#include "number_text.hpp"
#include "xgrad/parallel.hpp"

namespace xgrad::nn {

namespace {

std::string lower(std::string s) {
  for (char& c : s)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return {};
  const auto e = s.find_last_not_of(" \t");
  return s.substr(b, e - b + 1);
}

void require_in_unit_interval(const char* what, double x) {
  if (!(x >= 0.0 && x < 1.0)) {
    std::ostringstream msg;
    msg << "optimiser: " << what << " = " << x << " is outside [0, 1)";
    throw std::invalid_argument(msg.str());
  }
}

// One update kernel per rule. Each walks the buffers once; the xsimd body handles
// whole registers and the scalar tail the rest, with the same arithmetic so a
// parameter's result does not depend on where it falls.
// With Zero, each kernel also clears g right after reading it, which saves the separate
// zero_grad() pass over every gradient (one read and one write of each element).
template <bool Zero, class T>
void clear(T* g, std::size_t i) {
  if constexpr (Zero) xsimd::batch<T>(T(0)).store_unaligned(g + i);
}

template <bool Zero, class T>
void descend(T* theta, T* g, std::size_t n, T eta) {
  using B = xsimd::batch<T>;
  constexpr std::size_t W = B::size;
  const B veta(eta);
  std::size_t i = 0;
  for (; i + W <= n; i += W) {
    const B t = B::load_unaligned(theta + i) - veta * B::load_unaligned(g + i);
    t.store_unaligned(theta + i);
    clear<Zero>(g, i);
  }
  for (; i < n; ++i) {
    theta[i] -= eta * g[i];
    if constexpr (Zero) g[i] = T(0);
  }
}

// Report 003: v ← ω v + η g; θ ← θ − v.
template <bool Zero, class T>
void momentum_update(T* theta, T* g, T* v, std::size_t n, T eta, T omega) {
  using B = xsimd::batch<T>;
  constexpr std::size_t W = B::size;
  const B veta(eta), vomega(omega);
  std::size_t i = 0;
  for (; i + W <= n; i += W) {
    const B nv = vomega * B::load_unaligned(v + i) + veta * B::load_unaligned(g + i);
    nv.store_unaligned(v + i);
    (B::load_unaligned(theta + i) - nv).store_unaligned(theta + i);
    clear<Zero>(g, i);
  }
  for (; i < n; ++i) {
    v[i] = omega * v[i] + eta * g[i];
    theta[i] -= v[i];
    if constexpr (Zero) g[i] = T(0);
  }
}

// AdaGrad (decay = 1, keep = 1: G ← G + g²) and RMSprop (decay = ρ, keep = 1 − ρ):
// s ← decay s + keep g²; θ ← θ − η g / (√s + ε).
template <bool Zero, class T>
void scaled_update(T* theta, T* g, T* s, std::size_t n, T eta, T decay, T keep, T eps) {
  using B = xsimd::batch<T>;
  constexpr std::size_t W = B::size;
  const B veta(eta), vdecay(decay), vkeep(keep), veps(eps);
  std::size_t i = 0;
  for (; i + W <= n; i += W) {
    const B gi = B::load_unaligned(g + i);
    const B si = vdecay * B::load_unaligned(s + i) + vkeep * gi * gi;
    si.store_unaligned(s + i);
    (B::load_unaligned(theta + i) - veta * gi / (xsimd::sqrt(si) + veps))
        .store_unaligned(theta + i);
    clear<Zero>(g, i);
  }
  for (; i < n; ++i) {
    s[i] = decay * s[i] + keep * g[i] * g[i];
    theta[i] -= eta * g[i] / (std::sqrt(s[i]) + eps);
    if constexpr (Zero) g[i] = T(0);
  }
}

// Adam with bias correction folded into two scalars: with c1 = 1 − β1^t and
// c2 = 1 − β2^t, η m̂ / (√v̂ + ε) = (η / c1) m / (√v / √c2 + ε).
template <bool Zero, class T>
void adam_update(T* theta, T* g, T* m, T* v, std::size_t n, T b1, T b2, T step_size, T inv_sqrt_c2,
                 T eps) {
  using B = xsimd::batch<T>;
  constexpr std::size_t W = B::size;
  const B vb1(b1), vb2(b2), va1(T(1) - b1), va2(T(1) - b2), vstep(step_size), vinv(inv_sqrt_c2),
      veps(eps);
  std::size_t i = 0;
  for (; i + W <= n; i += W) {
    const B gi = B::load_unaligned(g + i);
    const B mi = vb1 * B::load_unaligned(m + i) + va1 * gi;
    const B vi = vb2 * B::load_unaligned(v + i) + va2 * gi * gi;
    mi.store_unaligned(m + i);
    vi.store_unaligned(v + i);
    (B::load_unaligned(theta + i) - vstep * mi / (xsimd::sqrt(vi) * vinv + veps))
        .store_unaligned(theta + i);
    clear<Zero>(g, i);
  }
  const T a1 = T(1) - b1, a2 = T(1) - b2;
  for (; i < n; ++i) {
    m[i] = b1 * m[i] + a1 * g[i];
    v[i] = b2 * v[i] + a2 * g[i] * g[i];
    theta[i] -= step_size * m[i] / (std::sqrt(v[i]) * inv_sqrt_c2 + eps);
    if constexpr (Zero) g[i] = T(0);
  }
}

}  // namespace

void OptimiserOptions::validate() const {
  if (!(learning_rate > 0.0) || !std::isfinite(learning_rate)) {
    std::ostringstream msg;
    msg << "optimiser: learning rate = " << learning_rate << " must be positive and finite";
    throw std::invalid_argument(msg.str());
  }
  require_in_unit_interval("momentum", momentum);
  require_in_unit_interval("rho", rho);
  require_in_unit_interval("beta1", beta1);
  require_in_unit_interval("beta2", beta2);
  if (!(epsilon > 0.0) || !std::isfinite(epsilon)) {
    std::ostringstream msg;
    msg << "optimiser: epsilon = " << epsilon << " must be positive and finite";
    throw std::invalid_argument(msg.str());
  }
}

OptimiserKind parse_optimiser_kind(const std::string& name) {
  const std::string n = lower(trim(name));
  if (n == "gd") return OptimiserKind::GradientDescent;
  if (n == "sgd") return OptimiserKind::Sgd;
  if (n == "momentum") return OptimiserKind::Momentum;
  if (n == "adagrad") return OptimiserKind::AdaGrad;
  if (n == "rmsprop") return OptimiserKind::RmsProp;
  if (n == "adam") return OptimiserKind::Adam;
  throw std::invalid_argument("optimiser: unknown name '" + name +
                              "' (expected gd, sgd, momentum, adagrad, rmsprop or adam)");
}

const char* optimiser_name(OptimiserKind kind) {
  switch (kind) {
    case OptimiserKind::GradientDescent:
      return "gd";
    case OptimiserKind::Sgd:
      return "sgd";
    case OptimiserKind::Momentum:
      return "momentum";
    case OptimiserKind::AdaGrad:
      return "adagrad";
    case OptimiserKind::RmsProp:
      return "rmsprop";
    case OptimiserKind::Adam:
      return "adam";
  }
  return "?";
}

namespace {
/// The keys of OptimiserSpec::parse that `kind` reads, as listed in messages.
const char* applicable_keys(OptimiserKind kind) {
  switch (kind) {
    case OptimiserKind::GradientDescent:
    case OptimiserKind::Sgd:
      return "lr";
    case OptimiserKind::Momentum:
      return "lr, momentum";
    case OptimiserKind::AdaGrad:
      return "lr, eps";
    case OptimiserKind::RmsProp:
      return "lr, rho, eps";
    case OptimiserKind::Adam:
      return "lr, beta1, beta2, eps";
  }
  return "";
}
bool key_applies(const std::string& keys, const std::string& key) {
  std::stringstream ss(keys);
  std::string k;
  while (std::getline(ss, k, ','))
    if (trim(k) == key) return true;
  return false;
}
}  // namespace

OptimiserSpec OptimiserSpec::parse(const std::string& text, const OptimiserOptions& defaults) {
  OptimiserSpec spec;
  spec.options = defaults;
  const auto colon = text.find(':');
  spec.kind = parse_optimiser_kind(text.substr(0, colon));
  if (colon != std::string::npos) {
    std::stringstream rest(text.substr(colon + 1));
    std::string item;
    std::vector<std::string> seen;  // canonical keys: "lr=0.1,eta=0.2" names one twice
    while (std::getline(rest, item, ',')) {
      const auto eq = item.find('=');
      if (eq == std::string::npos) {
        throw std::invalid_argument("optimiser '" + text + "': '" + item + "' is not key=value");
      }
      const std::string key = lower(trim(item.substr(0, eq)));
      const std::string val = trim(item.substr(eq + 1));
      const detail::NumberText number = detail::read_number(val);
      if (number.overflow)
        throw std::invalid_argument("optimiser '" + text + "': value '" + val + "' of " + key +
                                    " is out of the range of a double");
      if (!number.whole) {
        throw std::invalid_argument("optimiser '" + text + "': value '" + val + "' of " + key +
                                    " is not a number");
      }
      const double x = number.value;
      // A setting the optimiser never reads would train another model than the text says
      // ("sgd:momentum=0.9" is plain SGD): refused.
      const char* applies = applicable_keys(spec.kind);
      const std::string canonical = key == "learning_rate" || key == "eta" ? "lr"
                                    : key == "omega"                       ? "momentum"
                                    : key == "epsilon"                     ? "eps"
                                                                           : key;
      const bool known = canonical == "lr" || canonical == "momentum" || canonical == "rho" ||
                         canonical == "beta1" || canonical == "beta2" || canonical == "eps";
      if (std::find(seen.begin(), seen.end(), canonical) != seen.end()) {
        throw std::invalid_argument("optimiser '" + text + "': " + canonical +
                                    " is given twice (which one was meant?)");
      }
      seen.push_back(canonical);
      if (known && !key_applies(applies, canonical)) {
        throw std::invalid_argument("optimiser '" + text + "': " + key + " does not apply to " +
                                    optimiser_name(spec.kind) + ", which takes " + applies +
                                    (spec.kind == OptimiserKind::Sgd && canonical == "momentum"
                                         ? " (SGD with momentum is 'momentum:lr=...,momentum=...')"
                                         : ""));
      }
      if (key == "lr" || key == "learning_rate" || key == "eta") {
        spec.options.learning_rate = x;
      } else if (key == "momentum" || key == "omega") {
        spec.options.momentum = x;
      } else if (key == "rho") {
        spec.options.rho = x;
      } else if (key == "beta1") {
        spec.options.beta1 = x;
      } else if (key == "beta2") {
        spec.options.beta2 = x;
      } else if (key == "eps" || key == "epsilon") {
        spec.options.epsilon = x;
      } else {
        throw std::invalid_argument("optimiser '" + text + "': unknown key '" + key + "' (" +
                                    optimiser_name(spec.kind) + " takes " + applies + ")");
      }
    }
  }
  spec.options.validate();
  return spec;
}

template <class T>
Optimiser<T>::Optimiser(OptimiserKind kind, std::vector<Parameter<T>> parameters,
                        const OptimiserOptions& options)
    : kind_(kind), options_(options), parameters_(std::move(parameters)) {
  options_.validate();
  if (parameters_.empty()) {
    throw std::invalid_argument(std::string("optimiser ") + name() + ": no parameters");
  }
  for (std::size_t i = 0; i < parameters_.size(); ++i) {
    if (!parameters_[i].defined()) {
      throw std::invalid_argument(std::string("optimiser ") + name() + ": parameter #" +
                                  std::to_string(i) + " is undefined");
    }
    for (std::size_t j = 0; j < i; ++j) {
      if (parameters_[i].same_as(parameters_[j])) {
        // Two handles to one parameter would update it twice per step.
        throw std::invalid_argument(std::string("optimiser ") + name() + ": parameter #" +
                                    std::to_string(i) + " ('" + parameters_[i].name() +
                                    "') is the same as #" + std::to_string(j));
      }
    }
    sizes_.push_back(parameters_[i].size());
  }
  const bool one = kind_ == OptimiserKind::Momentum || kind_ == OptimiserKind::AdaGrad ||
                   kind_ == OptimiserKind::RmsProp || kind_ == OptimiserKind::Adam;
  const bool two = kind_ == OptimiserKind::Adam;
  for (std::size_t n : sizes_) {
    first_.emplace_back(one ? n : 0, T(0));
    second_.emplace_back(two ? n : 0, T(0));
  }
}

template <class T>
void Optimiser<T>::set_learning_rate(double eta) {
  if (!(eta > 0.0) || !std::isfinite(eta)) {
    std::ostringstream msg;
    msg << "optimiser " << name() << ": learning rate = " << eta << " must be positive and finite";
    throw std::invalid_argument(msg.str());
  }
  options_.learning_rate = eta;
}

template <class T>
void Optimiser<T>::reset_state() {
  for (auto& s : first_)
    std::fill(s.begin(), s.end(), T(0));
  for (auto& s : second_)
    std::fill(s.begin(), s.end(), T(0));
  steps_ = 0;
}

template <class T>
const std::vector<T>& Optimiser<T>::state(std::size_t i, std::size_t k) const {
  if (i >= parameters_.size() || k > 1 || (k == 1 && kind_ != OptimiserKind::Adam) ||
      (k == 0 && first_[i].empty())) {
    throw std::out_of_range(std::string("optimiser ") + name() + ": no state buffer " +
                            std::to_string(k) + " for parameter #" + std::to_string(i));
  }
  return k == 0 ? first_[i] : second_[i];
}

template <class T>
void Optimiser<T>::zero_grad() {
  for (auto& p : parameters_)
    p.zero_grad();
}

template <class T>
void Optimiser<T>::step() {
  update<false>();
}

template <class T>
void Optimiser<T>::step_and_zero_grad() {
  update<true>();
}

template <class T>
template <bool Zero>
void Optimiser<T>::update() {
  // Every parameter is checked before any is touched or the step counted: a refused step
  // leaves the values, the moments and Adam's step count as they were.
  for (std::size_t i = 0; i < parameters_.size(); ++i) {
    Parameter<T>& p = parameters_[i];
    const Matrix<T>& value = p.value();
    const Matrix<T>& grad = p.grad();
    if (value.size() != sizes_[i] || grad.size() != sizes_[i]) {
      throw std::logic_error(
          std::string("optimiser ") + name() + ": parameter #" + std::to_string(i) + " ('" +
          p.name() + "') has value " + shape_string(value) + " and grad " +
          (grad.dimension() == 2 ? shape_string(grad) : "undefined") + " but had " +
          std::to_string(sizes_[i]) + " elements when the optimiser was made");
    }
  }
  ++steps_;
  const T eta = static_cast<T>(options_.learning_rate);
  const T eps = static_cast<T>(options_.epsilon);
  // Adam's bias corrections, in double so that β^t stays accurate for large t.
  const double c1 = 1.0 - std::pow(options_.beta1, static_cast<double>(steps_));
  const double c2 = 1.0 - std::pow(options_.beta2, static_cast<double>(steps_));
  for (std::size_t i = 0; i < parameters_.size(); ++i) {
    Parameter<T>& p = parameters_[i];
    Matrix<T>& value = p.value();
    Matrix<T>& grad = p.grad();
    T* const theta = value.data();
    T* const g = grad.data();
    T* const first = first_[i].size() == 0 ? nullptr : first_[i].data();
    T* const second = second_[i].size() == 0 ? nullptr : second_[i].data();
    // Elements [b, e) of this parameter; large parameters are split across the threads
    // (chunk edges on whole SIMD registers, so every element gets the same arithmetic).
    const auto update_range = [&](std::size_t b, std::size_t e) {
      const std::size_t n = e - b;
      switch (kind_) {
        case OptimiserKind::GradientDescent:
        case OptimiserKind::Sgd:
          descend<Zero>(theta + b, g + b, n, eta);
          break;
        case OptimiserKind::Momentum:
          momentum_update<Zero>(theta + b, g + b, first + b, n, eta,
                                static_cast<T>(options_.momentum));
          break;
        case OptimiserKind::AdaGrad:
          scaled_update<Zero>(theta + b, g + b, first + b, n, eta, T(1), T(1), eps);
          break;
        case OptimiserKind::RmsProp: {
          const T rho = static_cast<T>(options_.rho);
          scaled_update<Zero>(theta + b, g + b, first + b, n, eta, rho, T(1) - rho, eps);
          break;
        }
        case OptimiserKind::Adam:
          adam_update<Zero>(theta + b, g + b, first + b, second + b, n,
                            static_cast<T>(options_.beta1), static_cast<T>(options_.beta2),
                            static_cast<T>(options_.learning_rate / c1),
                            static_cast<T>(1.0 / std::sqrt(c2)), eps);
          break;
      }
    };
    parallel_for(sizes_[i], kParallelItems, update_range);
  }
}

template <class T>
std::unique_ptr<Optimiser<T>> make_optimiser(const std::string& name,
                                             std::vector<Parameter<T>> parameters,
                                             const OptimiserOptions& options) {
  const OptimiserSpec spec = OptimiserSpec::parse(name, options);
  return std::make_unique<Optimiser<T>>(spec.kind, std::move(parameters), spec.options);
}

template class Optimiser<float>;
template class Optimiser<double>;
template std::unique_ptr<Optimiser<float>> make_optimiser(const std::string&,
                                                          std::vector<Parameter<float>>,
                                                          const OptimiserOptions&);
template std::unique_ptr<Optimiser<double>> make_optimiser(const std::string&,
                                                           std::vector<Parameter<double>>,
                                                           const OptimiserOptions&);

}  // namespace xgrad::nn
