// Whether a number in a data matrix is a class label: a whole number >= 0 below 2^53
// (up to there every whole double is exact, and its cast to size_t is defined; 1e30
// once became class 0).
#pragma once

#include <cmath>

namespace xgrad::nn::detail {

inline bool is_class_label(double x) {
  return x >= 0.0 && x == std::floor(x) && x < 0x1p53;
}

}  // namespace xgrad::nn::detail
