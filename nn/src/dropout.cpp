#include "xgrad/nn/dropout.hpp"

#include <cmath>
#include <stdexcept>
#include <string>

#include "wording.hpp"
#include "xgrad/ops.hpp"

namespace xgrad::nn {

void Dropout::validate() const {
  for (const auto& [name, p] :
       {std::pair<const char*, double>{"input", input}, {"hidden", hidden}}) {
    if (!(p >= 0 && p < 1)) {
      throw std::invalid_argument(std::string("dropout: the ") + name +
                                  " rate must be in [0, 1), got " + wording::shown(p));
    }
  }
}

template <class T>
DropoutMasks<T>::DropoutMasks(const Dropout& rates, std::uint64_t seed)
    : rates_(rates), rng_(seed) {
  rates_.validate();
}

template <class T>
Tensor<T> DropoutMasks<T>::apply(Tape<T>& tape, const Tensor<T>& a, double p) {
  if (p == 0) return a;
  if (!(p > 0 && p < 1)) {
    throw std::invalid_argument("dropout: the rate must be in [0, 1), got " + wording::shown(p));
  }
  const auto threshold = static_cast<std::uint32_t>(p * 4294967296.0);
  const T keep = T(1.0 / (1.0 - p));
  // Drawn into the tape's own buffer for the mask: no allocation once the tape has grown.
  const Tensor<T> mask = tape.constant(a.rows(), a.cols(), [&](T* m, std::size_t n) {
    std::size_t i = 0;
    for (; i + 1 < n; i += 2) {
      const std::uint64_t r = rng_();
      m[i] = static_cast<std::uint32_t>(r) < threshold ? T(0) : keep;
      m[i + 1] = static_cast<std::uint32_t>(r >> 32) < threshold ? T(0) : keep;
    }
    if (i < n) m[i] = static_cast<std::uint32_t>(rng_()) < threshold ? T(0) : keep;
  });
  return mul(a, mask);
}

template class DropoutMasks<float>;
template class DropoutMasks<double>;

}  // namespace xgrad::nn
