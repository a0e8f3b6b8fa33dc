// apps/common, what both studies share: FileLock, one writer per results file (both
// studies' sweeps hold one), check_output_file, and split_commas, the fields of a CSV
// line.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <unistd.h>

#include "file_lock.hpp"
#include "output_file.hpp"
#include "scratch_dir.hpp"
#include "split_commas.hpp"

namespace fs = std::filesystem;
using xgrad::apps::FileLock;

TEST_CASE("a file locked once is refused a second lock, naming the file and the holder") {
  const ScratchDir dir("lock_twice");
  const std::string csv = (dir / "r.csv").string();
  const FileLock first(csv, "--out");
  CHECK(fs::exists(first.lock_path()));
  CHECK(first.lock_path() == fs::weakly_canonical(csv).string() + ".lock");
  const std::string refusal = "--out: " + csv + " is being written by another run (process " +
                              std::to_string(::getpid()) + ")";
  CHECK_THROWS_WITH_AS(FileLock(csv, "--out"), doctest::Contains(refusal.c_str()),
                       std::runtime_error);
}

TEST_CASE("two names of one file (a symbolic link) share its lock") {
  const ScratchDir dir("lock_link");
  { std::ofstream(dir / "r.csv") << "x\n"; }
  fs::create_symlink("r.csv", dir / "alias.csv");
  const FileLock first((dir / "r.csv").string(), "--out");
  CHECK_THROWS_AS(FileLock((dir / "alias.csv").string(), "--out"), std::runtime_error);
}

TEST_CASE("a link to a CSV not written yet shares the lock of the name it points at") {
  const ScratchDir dir("lock_dangling");
  fs::create_symlink("r.csv", dir / "alias.csv");  // r.csv does not exist yet
  const FileLock first((dir / "alias.csv").string(), "--out");
  CHECK(first.lock_path() == (fs::weakly_canonical(dir) / "r.csv.lock").string());
  CHECK_THROWS_AS(FileLock((dir / "r.csv").string(), "--out"), std::runtime_error);
}

TEST_CASE("a relative CSV name, there or not yet, gets the absolute lock path") {
  const ScratchDir dir("lock_relative");
  const fs::path before = fs::current_path();
  fs::current_path(dir);
  std::string absent, present;
  {
    const FileLock lock("new.csv", "--out");
    absent = lock.lock_path();
  }
  { std::ofstream("old.csv") << "x\n"; }
  {
    const FileLock lock("old.csv", "--out");
    present = lock.lock_path();
  }
  fs::current_path(before);
  const std::string here = fs::weakly_canonical(dir).string();
  CHECK(absent == here + "/new.csv.lock");
  CHECK(present == here + "/old.csv.lock");
}

TEST_CASE("a released lock leaves no lock file, and the file can be locked again") {
  const ScratchDir dir("lock_release");
  const std::string csv = (dir / "r.csv").string();
  std::string lock_file;
  {
    const FileLock first(csv, "--out");
    lock_file = first.lock_path();
  }
  CHECK_FALSE(fs::exists(lock_file));
  const FileLock again(csv, "--out");
  CHECK(fs::exists(lock_file));
}

TEST_CASE("a lock file left by a killed run does not block the next run") {
  const ScratchDir dir("lock_stale");
  const std::string csv = (dir / "r.csv").string();
  // What SIGKILL leaves: the file with the dead holder's pid, but no flock on it.
  { std::ofstream(csv + ".lock") << "999999\n"; }
  const FileLock lock(csv, "--out");
  std::ifstream in(lock.lock_path());
  std::string pid;
  in >> pid;
  CHECK(pid == std::to_string(::getpid()));
}

TEST_CASE("a folder where the lock file cannot be made is an error naming the lock file") {
  CHECK_THROWS_WITH_AS(FileLock("/nonexistent-folder/r.csv", "--csv"),
                       doctest::Contains("--csv: cannot create the lock file "
                                         "/nonexistent-folder/r.csv.lock"),
                       std::runtime_error);
}

TEST_CASE("an output file must be a regular file, or none yet, in a folder that exists") {
  const ScratchDir dir("output_file");
  using xgrad::apps::check_output_file;
  CHECK_NOTHROW(check_output_file((dir / "new.csv").string(), "--out"));
  { std::ofstream(dir / "old.csv") << "x\n"; }
  CHECK_NOTHROW(check_output_file((dir / "old.csv").string(), "--out"));
  fs::create_directories(dir / "folder");
  CHECK_THROWS_WITH_AS(
      check_output_file((dir / "folder").string(), "--csv"),
      doctest::Contains(doctest::String(
          ("--csv: " + (dir / "folder").string() + " exists and is not a regular file (a folder)")
              .c_str())),
      std::invalid_argument);
  const std::string missing = (dir / "nowhere" / "s.csv").string();
  CHECK_THROWS_WITH_AS(
      check_output_file(missing, "--out"),
      ("--out: " + missing + ": the folder " + (dir / "nowhere").string() + " does not exist")
          .c_str(),
      std::invalid_argument);
  // Through a link, the file it names counts.
  fs::create_symlink("folder", dir / "link");
  CHECK_THROWS_AS(check_output_file((dir / "link").string(), "--out"), std::invalid_argument);
}

TEST_CASE("split_commas gives every field of a line, empty ones included") {
  using xgrad::apps::split_commas;
  using Fields = std::vector<std::string>;
  CHECK(split_commas("a,b,c") == Fields{"a", "b", "c"});
  CHECK(split_commas("50,") == Fields{"50", ""});
  CHECK(split_commas(",x,,") == Fields{"", "x", "", ""});
  CHECK(split_commas("") == Fields{""});
  CHECK(split_commas("no commas") == Fields{"no commas"});
}
