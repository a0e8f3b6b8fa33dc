// IDX files (the MNIST container format, yann.lecun.com/exdb/mnist), raw or gzip.
//
// Every check happens before the allocation it protects: the header's dimensions are
// validated against the caller's expectations and against the bytes that can exist
// (the file size for raw files; a hard cap for gzip, whose size is unknown until
// decompressed), so a truncated, corrupt or foreign file — or a header claiming
// 2^32 x 2^32 images — is a std::runtime_error naming the file and the problem,
// never a crash, a hang or a huge allocation. This part depends on zlib only (no
// xtensor), so the fuzz target and the tests build in seconds.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace xgrad::mnist {

/// One IDX array of unsigned bytes: dims[0] items of dims[1] x dims[2] ... bytes.
struct IdxArray {
  std::vector<std::uint32_t> dims;
  std::vector<std::uint8_t> data;
};

/// What the caller expects of a file. Zero in `dims` means "any"; rank is checked
/// exactly. MNIST images: rank 3 with dims {0, 28, 28}; labels: rank 1.
struct IdxExpect {
  std::size_t rank = 0;
  std::vector<std::uint32_t> dims;
  /// Upper bound of the payload (product of dims); MNIST's largest file is 47 MB.
  std::size_t max_bytes = std::size_t(256) << 20;
};

/// Parses an IDX array from bytes in memory (raw, or gzip when they start with the
/// gzip magic 1f 8b). `name` is the file name used in error messages.
IdxArray parse_idx(const std::uint8_t* bytes, std::size_t size, const std::string& name,
                   const IdxExpect& expect);

/// Reads an IDX file from disk (raw or gzip, recognised by content, not by name).
IdxArray read_idx(const std::string& path, const IdxExpect& expect);

/// Images of one split, uint8 pixels in row-major order, held once.
struct Images {
  std::size_t count = 0, rows = 0, cols = 0;
  std::vector<std::uint8_t> pixels;  // count * rows * cols
  std::size_t pixels_per_image() const { return rows * cols; }
};

/// Images and labels (0..9) of one split.
struct LabelledSet {
  Images images;
  std::vector<std::uint8_t> labels;
  std::size_t size() const { return labels.size(); }
};

struct TrainTest {
  std::string name;  // "MNIST" or "Fashion-MNIST": printed on every line of output
  LabelledSet train, test;
};

/// Reads an images file (rank 3, 28x28 unless rows/cols given as 0 for "any").
Images read_images(const std::string& path, std::size_t rows = 28, std::size_t cols = 28);
/// Reads a labels file (rank 1, every label in 0..9).
std::vector<std::uint8_t> read_labels(const std::string& path);
/// Checks that images and labels have the same count (names both files otherwise).
LabelledSet make_set(Images images, std::vector<std::uint8_t> labels, const std::string& what);

/// The four standard files of DIR (train-images-idx3-ubyte[.gz], ...). A missing file
/// throws std::runtime_error saying which file and how to get the data set
/// (`how_to_get`).
TrainTest load_dir(const std::string& dir, const std::string& name, const std::string& how_to_get);

/// The path of `base` or `base.gz` in dir, whichever exists; empty when neither.
std::string find_file(const std::string& dir, const std::string& base);

/// The reports' protocol: pool train and test (70,000 for MNIST), shuffle with `seed`,
/// put `test_fraction` of them into test. Deterministic for a given seed.
TrainTest pooled_split(const TrainTest& data, double test_fraction, std::uint64_t seed);

/// For choosing a recipe without looking at the test set: `count` training items, drawn
/// with `seed`, become the scored set (`test`, in their drawn order) and the rest stay
/// training (in their order); the test set is dropped. Throws std::invalid_argument when
/// count is 0 or leaves no training item.
TrainTest validation_split(const TrainTest& data, std::size_t count, std::uint64_t seed);

/// The first n items of a set (for quick runs and tests).
LabelledSet head(const LabelledSet& set, std::size_t n);

}  // namespace xgrad::mnist
