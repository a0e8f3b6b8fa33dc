// CLI11 checks both apps share.
#pragma once

#include <string>

#include <CLI/CLI.hpp>

namespace xgrad::apps {

/// Refuses a leading minus: seeds are uint64 and a negative one would wrap silently.
/// (CLI11's NonNegativeNumber says so with a 309-digit upper bound.)
inline const CLI::Validator kNotNegative(
    [](std::string& text) {
      return text.find('-') == 0 ? "must not be negative, got " + text : std::string();
    },
    "NOT NEGATIVE");

/// Put before a CLI::Range: "abc" then reads "Failed parsing abc as a FLOAT", not
/// "Value abc not in range". No name, so the help shows only the range.
inline const CLI::TypeValidator<double> kIsNumber{""};
/// The same for whole-number options: "2.5" reads "Failed parsing 2.5 as a INT".
inline const CLI::TypeValidator<long long> kIsWhole{""};

}  // namespace xgrad::apps
