#include "idx.hpp"

#include <zlib.h>

#include <sys/stat.h>
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <limits>
#include <random>
#include <stdexcept>

namespace xgrad::mnist {
namespace {

[[noreturn]] void fail(const std::string& name, const std::string& problem) {
  throw std::runtime_error(name + ": " + problem);
}

std::string hex_bytes(const std::uint8_t* p, std::size_t n) {
  std::string s;
  char buf[4];
  for (std::size_t i = 0; i < n; ++i) {
    std::snprintf(buf, sizeof buf, "%s%02x", i ? " " : "", p[i]);
    s += buf;
  }
  return s;
}

std::string dims_string(const std::vector<std::uint32_t>& dims) {
  std::string s;
  for (std::size_t i = 0; i < dims.size(); ++i)
    s += (i ? "x" : "") + std::to_string(dims[i]);
  return s;
}

const char* type_name(std::uint8_t code) {
  switch (code) {
    case 0x08:
      return "unsigned byte";
    case 0x09:
      return "signed byte";
    case 0x0B:
      return "int16";
    case 0x0C:
      return "int32";
    case 0x0D:
      return "float32";
    case 0x0E:
      return "float64";
    default:
      return nullptr;
  }
}

// A byte stream: read() fills up to n bytes and returns how many it gave (fewer only
// at the end of the data). Corrupt input throws.
class Source {
 public:
  virtual ~Source() = default;
  virtual std::size_t read(std::uint8_t* dst, std::size_t n) = 0;
  // Bytes left when the source knows it (raw data); max() for a compressed stream.
  virtual std::size_t remaining() const = 0;
};

class RawSource final : public Source {
 public:
  RawSource(const std::uint8_t* p, std::size_t n) : p_(p), n_(n) {}
  std::size_t read(std::uint8_t* dst, std::size_t n) override {
    const std::size_t k = std::min(n, n_ - pos_);
    std::copy(p_ + pos_, p_ + pos_ + k, dst);
    pos_ += k;
    return k;
  }
  std::size_t remaining() const override { return n_ - pos_; }

 private:
  const std::uint8_t* p_;
  std::size_t n_, pos_ = 0;
};

// gzip through zlib's inflate, decompressing only as much as is asked for, so a
// "zip bomb" or a header lying about sizes costs at most what the caller requests.
class GzipSource final : public Source {
 public:
  GzipSource(const std::uint8_t* p, std::size_t n, const std::string& name) : name_(name) {
    // 16 + MAX_WBITS: gzip wrapper (header + crc32 + length trailer are checked by zlib).
    if (inflateInit2(&z_, 16 + MAX_WBITS) != Z_OK) fail(name_, "zlib could not initialise");
    z_.next_in = const_cast<Bytef*>(p);
    // Inputs > 4 GiB are rejected by the caller's size cap, so uInt cannot truncate.
    z_.avail_in = static_cast<uInt>(n);
  }
  ~GzipSource() override { inflateEnd(&z_); }
  GzipSource(const GzipSource&) = delete;
  GzipSource& operator=(const GzipSource&) = delete;

  std::size_t read(std::uint8_t* dst, std::size_t n) override {
    std::size_t got = 0;
    while (got < n && !done_) {
      if (ended_) {
        // Multi-member gzip (legal: `cat a.gz b.gz`) continues after a member ends;
        // zero bytes after the last member are padding (tape and block devices add it;
        // GNU gzip ignores it too); anything else is garbage, which inflate reports below.
        if (std::all_of(z_.next_in, z_.next_in + z_.avail_in, [](Bytef b) { return b == 0; })) {
          done_ = true;
          break;
        }
        inflateReset(&z_);
        ended_ = false;
      }
      const std::size_t chunk = std::min<std::size_t>(n - got, 1u << 30);
      z_.next_out = dst + got;
      z_.avail_out = static_cast<uInt>(chunk);
      const int rc = inflate(&z_, Z_NO_FLUSH);
      got += chunk - z_.avail_out;
      if (rc == Z_STREAM_END) {
        ended_ = true;
      } else if (rc == Z_BUF_ERROR || (rc == Z_OK && z_.avail_in == 0 && z_.avail_out != 0)) {
        // No progress possible: the input ran out before the gzip stream ended.
        fail(name_, "gzip stream is truncated (the file ends before the compressed data does)");
      } else if (rc != Z_OK) {
        fail(name_, std::string("corrupt gzip data (zlib: ") +
                        (z_.msg ? z_.msg : "error " + std::to_string(rc)) + ")");
      }
    }
    return got;
  }
  std::size_t remaining() const override { return std::numeric_limits<std::size_t>::max(); }

 private:
  std::string name_;
  z_stream z_{};
  bool ended_ = false, done_ = false;
};

std::uint32_t big_endian(const std::uint8_t* p) {
  return (std::uint32_t(p[0]) << 24) | (std::uint32_t(p[1]) << 16) | (std::uint32_t(p[2]) << 8) |
         std::uint32_t(p[3]);
}

IdxArray parse(Source& src, const std::string& name, const IdxExpect& expect) {
  std::uint8_t magic[4];
  const std::size_t got = src.read(magic, 4);
  if (got < 4)
    fail(name, "truncated header: " + std::to_string(got) + " bytes, an IDX file starts with 4");
  if (magic[0] != 0 || magic[1] != 0)
    fail(name, "not an IDX file (it starts with " + hex_bytes(magic, 4) +
                   ", an IDX file with 00 00 <type> <rank>)");
  const char* type = type_name(magic[2]);
  if (!type)
    fail(name, "not an IDX file (unknown element type code " + hex_bytes(magic + 2, 1) + ")");
  if (magic[2] != 0x08)
    fail(name, std::string("element type is ") + type +
                   ", MNIST files hold unsigned bytes (type code 08)");
  const std::size_t rank = magic[3];
  if (rank < 1 || rank > 4)
    fail(name, "rank " + std::to_string(rank) + " is not supported (1 to 4 dimensions)");
  if (expect.rank && rank != expect.rank)
    fail(name, "has " + std::to_string(rank) + " dimensions, expected " +
                   std::to_string(expect.rank) + (expect.rank == 1 ? " (labels)" : " (images)"));

  std::uint8_t dim_bytes[16];
  const std::size_t dgot = src.read(dim_bytes, 4 * rank);
  if (dgot < 4 * rank)
    fail(name, "truncated header: " + std::to_string(4 + dgot) + " bytes, rank " +
                   std::to_string(rank) + " needs " + std::to_string(4 + 4 * rank));
  IdxArray out;
  std::size_t total = 1;
  for (std::size_t i = 0; i < rank; ++i) {
    const std::uint32_t d = big_endian(dim_bytes + 4 * i);
    out.dims.push_back(d);
    if (d == 0) fail(name, "dimension " + std::to_string(i) + " is zero");
    if (i < expect.dims.size() && expect.dims[i] && d != expect.dims[i])
      fail(name, "dimension " + std::to_string(i) + " is " + std::to_string(d) + ", expected " +
                     std::to_string(expect.dims[i]));
    // Checked before multiplying so that 2^32^4 cannot overflow size_t.
    if (d > expect.max_bytes / total)
      fail(name, "header claims " + dims_string(out.dims) + (i + 1 < rank ? "x..." : "") +
                     " elements, more than the limit of " + std::to_string(expect.max_bytes) +
                     " bytes (corrupt or not an MNIST file)");
    total *= d;
  }
  const std::size_t left = src.remaining();
  if (left != std::numeric_limits<std::size_t>::max()) {
    // Raw data: the sizes must match exactly, checked before allocating.
    if (left < total)
      fail(name, "truncated: the header says " + dims_string(out.dims) + " = " +
                     std::to_string(total) + " bytes of data, the file has " +
                     std::to_string(left));
    if (left > total)
      fail(name, std::to_string(left - total) + " bytes after the " + dims_string(out.dims) +
                     " data the header describes (corrupt or not an IDX file)");
    out.data.resize(total);
    src.read(out.data.data(), total);
    return out;
  }
  // Compressed: grow as data arrives, so a lying header over a tiny file never
  // allocates more than the data that actually decompresses (plus one chunk).
  constexpr std::size_t kChunk = std::size_t(4) << 20;
  std::size_t have = 0;
  while (have < total) {
    const std::size_t want = std::min(kChunk, total - have);
    out.data.resize(have + want);
    const std::size_t k = src.read(out.data.data() + have, want);
    have += k;
    if (k < want)
      fail(name, "truncated: the header says " + dims_string(out.dims) + " = " +
                     std::to_string(total) + " bytes of data, the decompressed file has " +
                     std::to_string(have));
  }
  std::uint8_t extra;
  if (src.read(&extra, 1) != 0)
    fail(name, "more decompressed data than the " + dims_string(out.dims) +
                   " the header describes (corrupt or not an IDX file)");
  return out;
}

}  // namespace

IdxArray parse_idx(const std::uint8_t* bytes, std::size_t size, const std::string& name,
                   const IdxExpect& expect) {
  if (size >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b) {
    if (size > std::numeric_limits<uInt>::max()) fail(name, "gzip file larger than 4 GiB");
    GzipSource src(bytes, size, name);
    return parse(src, name, expect);
  }
  RawSource src(bytes, size);
  return parse(src, name, expect);
}

IdxArray read_idx(const std::string& path, const IdxExpect& expect) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) fail(path, "cannot open (no such file)");
  if (!S_ISREG(st.st_mode)) fail(path, "is not a regular file");
  const auto size = static_cast<std::size_t>(st.st_size);
  // A raw file is header + payload; a gzip one is smaller. 1 MiB slack for gzip
  // headers on incompressible data.
  if (size > expect.max_bytes + (std::size_t(1) << 20))
    fail(path, "file of " + std::to_string(size) + " bytes is larger than any MNIST file (limit " +
                   std::to_string(expect.max_bytes) + ")");
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, "cannot open for reading");
  std::vector<std::uint8_t> bytes(size);
  in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(size));
  if (static_cast<std::size_t>(in.gcount()) != size) fail(path, "read error");
  return parse_idx(bytes.data(), bytes.size(), path, expect);
}

Images read_images(const std::string& path, std::size_t rows, std::size_t cols) {
  IdxExpect e;
  e.rank = 3;
  e.dims = {0, static_cast<std::uint32_t>(rows), static_cast<std::uint32_t>(cols)};
  IdxArray a = read_idx(path, e);
  Images im;
  im.count = a.dims[0];
  im.rows = a.dims[1];
  im.cols = a.dims[2];
  im.pixels = std::move(a.data);
  return im;
}

std::vector<std::uint8_t> read_labels(const std::string& path) {
  IdxExpect e;
  e.rank = 1;
  IdxArray a = read_idx(path, e);
  for (std::size_t i = 0; i < a.data.size(); ++i)
    if (a.data[i] > 9)
      fail(path, "label " + std::to_string(a.data[i]) + " at index " + std::to_string(i) +
                     " is outside 0..9");
  return std::move(a.data);
}

LabelledSet make_set(Images images, std::vector<std::uint8_t> labels, const std::string& what) {
  if (images.count != labels.size())
    throw std::runtime_error(what + ": " + std::to_string(images.count) + " images but " +
                             std::to_string(labels.size()) + " labels");
  return LabelledSet{std::move(images), std::move(labels)};
}

std::string find_file(const std::string& dir, const std::string& base) {
  struct stat st {};
  for (const std::string& candidate : {dir + "/" + base, dir + "/" + base + ".gz"})
    if (::stat(candidate.c_str(), &st) == 0) return candidate;
  return {};
}

TrainTest load_dir(const std::string& dir, const std::string& name, const std::string& how_to_get) {
  const char* bases[4] = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                          "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"};
  std::string paths[4];
  for (int i = 0; i < 4; ++i) {
    paths[i] = find_file(dir, bases[i]);
    if (paths[i].empty())
      throw std::runtime_error(name + " not found: " + dir + "/" + bases[i] +
                               "[.gz] does not exist. " + how_to_get);
  }
  TrainTest t;
  t.name = name;
  t.train = make_set(read_images(paths[0]), read_labels(paths[1]), paths[0] + " and " + paths[1]);
  t.test = make_set(read_images(paths[2]), read_labels(paths[3]), paths[2] + " and " + paths[3]);
  return t;
}

namespace {
/// 0..n-1 shuffled by our own Fisher-Yates on mt19937_64: std::shuffle's use of the
/// engine is implementation-defined, and a split must be the same on every platform.
std::vector<std::size_t> seeded_permutation(std::size_t n, std::uint64_t seed) {
  std::vector<std::size_t> order(n);
  for (std::size_t i = 0; i < n; ++i)
    order[i] = i;
  std::mt19937_64 rng(seed);
  for (std::size_t i = n; i > 1; --i)  // i - 1 = n-1 .. 1, as the splits always drew
    std::swap(order[i - 1], order[rng() % i]);
  return order;
}
}  // namespace

TrainTest pooled_split(const TrainTest& data, double test_fraction, std::uint64_t seed) {
  if (!(test_fraction > 0 && test_fraction < 1))
    throw std::invalid_argument("test fraction must be in (0, 1)");
  const std::size_t px = data.train.images.pixels_per_image();
  if (px != data.test.images.pixels_per_image())
    throw std::invalid_argument("train and test images differ in size");
  const std::size_t n = data.train.size() + data.test.size();
  const std::vector<std::size_t> order = seeded_permutation(n, seed);
  const auto n_test = static_cast<std::size_t>(test_fraction * double(n) + 0.5);
  auto take = [&](std::size_t begin, std::size_t end) {
    LabelledSet s;
    s.images.rows = data.train.images.rows;
    s.images.cols = data.train.images.cols;
    s.images.count = end - begin;
    s.images.pixels.resize(s.images.count * px);
    s.labels.resize(s.images.count);
    for (std::size_t k = begin; k < end; ++k) {
      const std::size_t i = order[k];
      const bool in_train = i < data.train.size();
      const LabelledSet& from = in_train ? data.train : data.test;
      const std::size_t j = in_train ? i : i - data.train.size();
      std::copy_n(from.images.pixels.begin() + std::ptrdiff_t(j * px), px,
                  s.images.pixels.begin() + std::ptrdiff_t((k - begin) * px));
      s.labels[k - begin] = from.labels[j];
    }
    return s;
  };
  TrainTest out;
  out.name = data.name + " pooled 80/20";
  if (n_test * 5 != n) out.name = data.name + " pooled";
  out.train = take(n_test, n);
  out.test = take(0, n_test);
  return out;
}

TrainTest validation_split(const TrainTest& data, std::size_t count, std::uint64_t seed) {
  const std::size_t n = data.train.size();
  if (count == 0 || count >= n) {
    throw std::invalid_argument("--validation: " + std::to_string(count) + " held-out images of " +
                                std::to_string(n) + " training images (need 1 to " +
                                std::to_string(n - 1) + ")");
  }
  // The first `count` of the permutation pooled_split draws from.
  const std::vector<std::size_t> order = seeded_permutation(n, seed);
  std::vector<bool> held(n, false);
  for (std::size_t k = 0; k < count; ++k)
    held[order[k]] = true;
  const std::size_t px = data.train.images.pixels_per_image();
  auto take = [&](const std::vector<std::size_t>& rows) {
    LabelledSet s;
    s.images.rows = data.train.images.rows;
    s.images.cols = data.train.images.cols;
    s.images.count = rows.size();
    s.images.pixels.resize(rows.size() * px);
    s.labels.resize(rows.size());
    for (std::size_t k = 0; k < rows.size(); ++k) {
      std::copy_n(data.train.images.pixels.begin() + std::ptrdiff_t(rows[k] * px), px,
                  s.images.pixels.begin() + std::ptrdiff_t(k * px));
      s.labels[k] = data.train.labels[rows[k]];
    }
    return s;
  };
  std::vector<std::size_t> kept;
  kept.reserve(n - count);
  for (std::size_t i = 0; i < n; ++i)
    if (!held[i]) kept.push_back(i);
  TrainTest out;
  out.name = data.name + " (validation: " + std::to_string(count) + " held-out training images)";
  out.train = take(kept);
  out.test = take(std::vector<std::size_t>(order.begin(), order.begin() + std::ptrdiff_t(count)));
  return out;
}

LabelledSet head(const LabelledSet& set, std::size_t n) {
  n = std::min(n, set.size());
  LabelledSet s;
  s.images.rows = set.images.rows;
  s.images.cols = set.images.cols;
  s.images.count = n;
  const std::size_t px = set.images.pixels_per_image();
  s.images.pixels.assign(set.images.pixels.begin(),
                         set.images.pixels.begin() + std::ptrdiff_t(n * px));
  s.labels.assign(set.labels.begin(), set.labels.begin() + std::ptrdiff_t(n));
  return s;
}

}  // namespace xgrad::mnist
