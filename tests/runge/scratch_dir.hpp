// A fresh folder under the system's temporary folder for one test, removed with
// everything in it when the test ends (XGRAD_KEEP_TEST_FILES=1 keeps it to look at).
// Each test runs in a process of its own under ctest, so the name carries the pid.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <string>
#include <system_error>

#include <unistd.h>

class ScratchDir : public std::filesystem::path {
 public:
  explicit ScratchDir(const std::string& name)
      : std::filesystem::path(std::filesystem::temp_directory_path() /
                              ("runge_test_" + std::to_string(::getpid()) + "_" + name)) {
    std::filesystem::remove_all(*this);
    std::filesystem::create_directories(*this);
  }
  ~ScratchDir() {
    if (std::getenv("XGRAD_KEEP_TEST_FILES")) return;
    std::error_code ignored;  // a destructor must not throw
    std::filesystem::remove_all(*this, ignored);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
};
