// message_of(f): the what() of whatever f throws, so a test can check that an error
// message names the problem and the values without matching the whole text.
#pragma once

#include <exception>
#include <functional>
#include <string>

inline std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "(no exception)";
}
