#include "file_lock.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>

namespace xgrad::apps {

namespace {
/// The process id the holder wrote into the lock file, or "" when it is not readable yet.
std::string holder_of(int fd) {
  char buffer[32] = {};
  const ssize_t n = ::pread(fd, buffer, sizeof buffer - 1, 0);
  std::string pid(buffer, n > 0 ? static_cast<std::size_t>(n) : 0);
  while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' '))
    pid.pop_back();
  return pid;
}

}  // namespace

std::string resolved_path(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path p = fs::absolute(path, ec);
  if (ec) p = path;
  for (int hop = 0; hop < 40 && fs::is_symlink(p, ec); ++hop) {
    const fs::path target = fs::read_symlink(p, ec);
    if (ec) break;
    p = target.is_absolute() ? target : p.parent_path() / target;
  }
  const fs::path canonical = fs::weakly_canonical(p, ec);
  return (ec ? p : canonical).string();
}

FileLock::FileLock(const std::string& path, const std::string& label) {
  lock_path_ = resolved_path(path) + ".lock";
  // The holder removes the lock file before it releases the lock, so a process that
  // opened the old file and gets its lock afterwards finds the name gone or another
  // file's, and tries again on the file the name holds now.
  for (int attempt = 0; attempt < 100; ++attempt) {
    const int fd = ::open(lock_path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
      throw std::runtime_error(label + ": cannot create the lock file " + lock_path_ + ": " +
                               std::strerror(errno));
    }
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      const int error = errno;
      const std::string pid = holder_of(fd);
      ::close(fd);
      if (error == EWOULDBLOCK) {
        throw std::runtime_error(
            label + ": " + path + " is being written by another run" +
            (pid.empty() ? std::string() : " (process " + pid + ")") +
            "; wait for it to finish or choose another file (lock: " + lock_path_ + ")");
      }
      throw std::runtime_error(label + ": cannot lock " + lock_path_ + ": " + std::strerror(error));
    }
    struct stat held = {};
    struct stat named = {};
    if (::fstat(fd, &held) == 0 && ::stat(lock_path_.c_str(), &named) == 0 &&
        held.st_dev == named.st_dev && held.st_ino == named.st_ino) {
      const std::string pid = std::to_string(::getpid()) + "\n";
      // Only a help for the message of a refused run: the lock itself is the flock.
      const bool noted =
          ::ftruncate(fd, 0) == 0 && ::pwrite(fd, pid.data(), pid.size(), 0) == ssize_t(pid.size());
      static_cast<void>(noted);
      fd_ = fd;
      return;
    }
    ::close(fd);  // the previous holder removed this file meanwhile
  }
  throw std::runtime_error(label + ": could not lock " + lock_path_ + " (it kept being replaced)");
}

FileLock::~FileLock() {
  if (fd_ < 0) return;
  ::unlink(lock_path_.c_str());
  ::close(fd_);  // releases the flock
}

}  // namespace xgrad::apps
