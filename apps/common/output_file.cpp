#include "output_file.hpp"

#include <filesystem>
#include <stdexcept>

#include "file_lock.hpp"

namespace xgrad::apps {

void check_output_file(const std::string& path, const std::string& option) {
  namespace fs = std::filesystem;
  const fs::path file = resolved_path(path);
  std::error_code ec;
  const fs::file_status st = fs::status(file, ec);
  if (!ec && fs::exists(st) && !fs::is_regular_file(st)) {
    throw std::invalid_argument(option + ": " + path + " exists and is not a regular file" +
                                (fs::is_directory(st) ? " (a folder)" : "") +
                                "; give the path of a file");
  }
  if (!fs::is_directory(file.parent_path(), ec)) {
    throw std::invalid_argument(option + ": " + path + ": the folder " +
                                file.parent_path().string() + " does not exist");
  }
}

}  // namespace xgrad::apps
