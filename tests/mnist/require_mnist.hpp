// Tests that need the real MNIST files: skipped (exit code 77, which ctest reports as
// "Skipped" through SKIP_RETURN_CODE in CMakeLists.txt) when XGRAD_MNIST_DIR lacks
// them, except under CI (CI set in the environment), where the data must be there and
// its absence fails the test.
#pragma once

#include <doctest/doctest.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>

#include "idx.hpp"

namespace xgrad::mnist::testing {

inline bool have_mnist() {
  for (const char* f : {"train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                        "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"})
    if (find_file(XGRAD_MNIST_DIR, f).empty()) return false;
  return true;
}

inline constexpr int kSkipExitCode = 77;

/// Returns when the data is there; otherwise fails the test under CI, or ends the
/// process with kSkipExitCode (one test per process under ctest).
inline void require_mnist() {
  if (have_mnist()) return;
  const std::string message =
      "no MNIST in " XGRAD_MNIST_DIR
      " (configure with -DXGRAD_MNIST_DIR=DIR; get it with apps/mnist/download_mnist.sh DIR)";
  const char* ci = std::getenv("CI");
  if (ci && *ci) FAIL("CI is set, so MNIST must be there: " << message);
  std::cout << "skipped: " << message << std::endl;
  std::fflush(nullptr);
  std::_Exit(kSkipExitCode);
}

}  // namespace xgrad::mnist::testing
