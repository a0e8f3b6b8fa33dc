// How nn's error messages write numbers and counts, so that they read alike.
#pragma once

#include <cstddef>
#include <sstream>
#include <string>

namespace xgrad::nn::wording {

/// A double as a message shows it: 6 significant digits, so -1e-09 is not "-0.000000"
/// (std::to_string's fixed six decimals hide small values).
inline std::string shown(double v) {
  std::ostringstream s;
  s << v;
  return s.str();
}

/// "1 output", "3 outputs".
inline std::string count_of(std::size_t n, const std::string& noun) {
  return std::to_string(n) + " " + noun + (n == 1 ? "" : "s");
}

}  // namespace xgrad::nn::wording
