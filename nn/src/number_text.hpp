// Reading a number from the text of an optimiser or schedule setting.
#pragma once

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <string>

namespace xgrad::nn::detail {

struct NumberText {
  double value = 0;
  bool whole = false;     // the whole text is one number (no trailing junk, not empty)
  bool overflow = false;  // it is, but beyond double's range (1e400); an underflow such
                          // as 1e-310 is a number all the same (std::stod refuses both)
};

inline NumberText read_number(const std::string& text) {
  NumberText n;
  char* end = nullptr;
  errno = 0;
  n.value = std::strtod(text.c_str(), &end);
  // strtod also reads hexadecimal ("0x10" is 16): a setting is written in decimal.
  const bool hexadecimal = text.find_first_of("xX") != std::string::npos;
  n.whole = !text.empty() && end == text.c_str() + text.size() && !hexadecimal;
  n.overflow = n.whole && errno == ERANGE && std::isinf(n.value);
  return n;
}

}  // namespace xgrad::nn::detail
