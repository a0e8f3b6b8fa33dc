// gradcheck: the tape's gradient of a function against central finite differences,
// in float64, element by element, reporting the worst element.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "xgrad/tape.hpp"

namespace xgrad {

struct GradcheckOptions {
  /// Step h = eps * max(1, |x|) of the central difference (f(x+h) - f(x-h)) / 2h.
  double eps = 1e-6;
  /// An element passes when |analytic - numeric| <= atol + rtol * |numeric| + r, where
  /// r = 2 DBL_EPSILON (|f(x+h)| + |f(x-h)|) / 2h allows for the rounding of f itself
  /// (it matters only for large |f|: at f ~ 1e4 and h = 1e-6, r ~ 4e-6).
  double atol = 1e-7;
  double rtol = 1e-5;
  /// Seed of the random upstream gradient G: a non-scalar output y is checked
  /// through the scalar sum(y . G), which exercises every output element.
  std::uint64_t seed = 20261122;
};

struct GradcheckResult {
  bool passed = true;
  std::size_t elements_checked = 0;
  // The worst element (largest |analytic - numeric| minus its tolerance):
  std::size_t input = 0;
  std::size_t row = 0;
  std::size_t col = 0;
  double analytic = 0;
  double numeric = 0;
  double abs_error = 0;
  double allowed = 0;    // the bound abs_error had to meet there: atol + rtol |numeric| + r
  double rel_error = 0;  // abs_error / max(|numeric|, |analytic|), 0 when both are 0
  /// One line: "gradcheck passed ..." or "gradcheck FAILED at input 1 (2, 3): ...".
  std::string message() const;
};

/// Inputs become tape variables; f builds the function from them on the given tape.
using GradcheckFunction =
    std::function<Tensor<double>(Tape<double>& tape, const std::vector<Tensor<double>>& inputs)>;
GradcheckResult gradcheck(const GradcheckFunction& f, const std::vector<Matrix<double>>& inputs,
                          const GradcheckOptions& options = {});

/// Checks the gradients of parameters: f records the function on the tape using
/// tape.parameter(p). Parameter values and gradients are as they were before the call,
/// also when f throws.
using GradcheckParameterFunction = std::function<Tensor<double>(Tape<double>& tape)>;
GradcheckResult gradcheck(const GradcheckParameterFunction& f,
                          std::vector<Parameter<double>> parameters,
                          const GradcheckOptions& options = {});

}  // namespace xgrad
