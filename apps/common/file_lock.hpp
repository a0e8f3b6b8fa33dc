// One writer per results file. Two sweeps resuming into the same CSV would each rewrite
// or append to it, and one would lose the other's rows; a sweep holds a FileLock on its
// CSV while it runs, and a second one is refused with the first one's process id.
#pragma once

#include <string>

namespace xgrad::apps {

/// The file `path` names: absolute, through every symbolic link, also one whose target
/// does not exist yet (std::filesystem::weakly_canonical alone would stop at it).
std::string resolved_path(const std::string& path);

class FileLock {
 public:
  /// Locks `path` for this object through the file `path` + ".lock" next to it (flock:
  /// the system drops the lock when the process ends, however it ends). Symbolic links
  /// are followed, so two names of one file share one lock. Throws std::runtime_error
  /// beginning with `label` (an option name such as "--out") when another process, or
  /// another FileLock of this one, holds the lock, or when the lock file cannot be made.
  FileLock(const std::string& path, const std::string& label);
  /// Removes the lock file, then releases the lock.
  ~FileLock();
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

  /// The lock file: the CSV's absolute path, symbolic links followed (also to a file not
  /// there yet), + ".lock".
  const std::string& lock_path() const { return lock_path_; }

 private:
  std::string lock_path_;
  int fd_ = -1;
};

}  // namespace xgrad::apps
