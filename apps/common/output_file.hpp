// Checks of an output file named on the command line, made before any work: a sweep's
// CSV is rewritten by replacing it and locked by a file next to it, so a folder, a
// device or a pipe under its name, or a folder that is not there, must be refused first
// (as root, `runge sweep --out /dev/null` once replaced the device with a CSV).
#pragma once

#include <string>

namespace xgrad::apps {

/// Throws std::invalid_argument beginning with `option` ("--out", "--csv") when `path`
/// (through symbolic links) exists and is not a regular file, or its folder does not
/// exist.
void check_output_file(const std::string& path, const std::string& option);

}  // namespace xgrad::apps
