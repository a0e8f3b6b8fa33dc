// The fields of one line of the apps' CSVs (which never quote a field), and of list
// options such as --lr 0.01,0.1.
#pragma once

#include <string>
#include <vector>

namespace xgrad::apps {

/// "a,b,c" -> {a, b, c}; empty items are kept ("50," -> {"50", ""}, "" -> {""}).
std::vector<std::string> split_commas(const std::string& text);

}  // namespace xgrad::apps
