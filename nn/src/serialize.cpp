// Model files: the versioned little-endian layout documented in serialize.hpp and
// docs/nn.md. Every check of a file names the file and what is wrong with it, because a
// model that silently loads wrong is worse than one that does not load.
#include "xgrad/nn/serialize.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <type_traits>
#include "wording.hpp"

namespace xgrad::nn {

namespace {

constexpr std::array<char, 8> kMagic = {'X', 'G', 'R', 'A', 'D', 'N', 'N', '\0'};
constexpr std::size_t kHeaderBytes = 24;
constexpr std::size_t kLayerBytes = 32;
// A sanity bound on the layer count: a corrupted count must not make us reserve memory
// for billions of layers before the size check catches it.
constexpr std::uint32_t kMaxLayers = 1u << 20;

std::uint32_t crc32(const std::uint8_t* data, std::size_t n) {
  static const std::array<std::uint32_t, 256> table = [] {
    std::array<std::uint32_t, 256> t{};
    for (std::uint32_t i = 0; i < 256; ++i) {
      std::uint32_t c = i;
      for (int k = 0; k < 8; ++k)
        c = (c & 1u) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  std::uint32_t c = 0xFFFFFFFFu;
  for (std::size_t i = 0; i < n; ++i)
    c = table[(c ^ data[i]) & 0xFFu] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

// ---- little-endian encoding, independent of the host's byte order
void put_uint(std::vector<std::uint8_t>& out, std::uint64_t v, std::size_t bytes) {
  for (std::size_t i = 0; i < bytes; ++i)
    out.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}
std::uint64_t get_uint(const std::uint8_t* p, std::size_t bytes) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < bytes; ++i)
    v |= static_cast<std::uint64_t>(p[i]) << (8 * i);
  return v;
}
template <class T>
void put_scalar(std::vector<std::uint8_t>& out, T v) {
  using U = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;
  static_assert(sizeof(U) == sizeof(T) && std::numeric_limits<T>::is_iec559);
  U bits;
  std::memcpy(&bits, &v, sizeof bits);
  put_uint(out, bits, sizeof bits);
}
template <class T>
T get_scalar(const std::uint8_t* p) {
  using U = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;
  const U bits = static_cast<U>(get_uint(p, sizeof(U)));
  T v;
  std::memcpy(&v, &bits, sizeof v);
  return v;
}

std::string dtype_name(std::size_t bytes) {
  if (bytes == 4) return "float32";
  if (bytes == 8) return "float64";
  return "an unknown scalar type of " + std::to_string(bytes) + " bytes";
}

// `who` is the function the user called (load_network or inspect_model_file).
[[noreturn]] void fail(const char* who, const std::string& path, const std::string& problem) {
  throw std::runtime_error(std::string(who) + ": " + path + ": " + problem);
}

std::vector<std::uint8_t> read_file(const char* who, const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) fail(who, path, "is a directory, not a model file");
  std::ifstream in(path, std::ios::binary);
  if (!in)
    fail(who, path, "cannot open the file for reading (" + std::string(std::strerror(errno)) + ")");
  try {
    std::vector<std::uint8_t> bytes((std::istreambuf_iterator<char>(in)),
                                    std::istreambuf_iterator<char>());
    if (in.bad()) fail(who, path, "read error");
    return bytes;
  } catch (const std::ios_base::failure& e) {  // libstdc++ throws from underflow on EIO
    fail(who, path, std::string("read error (") + e.what() + ")");
  }
}

/// Header, layer table and checksum checks; `data_offset` receives where W^1 starts.
ModelFileInfo parse(const char* who, const std::string& path, const std::vector<std::uint8_t>& f,
                    std::size_t& data_offset) {
  if (f.size() < kMagic.size() || std::memcmp(f.data(), kMagic.data(), kMagic.size()) != 0) {
    fail(who, path,
         f.size() < kMagic.size()
             ? "not an xgrad network file (" + std::to_string(f.size()) +
                   " bytes, shorter than the 8-byte magic)"
             : "not an xgrad network file (wrong magic; expected \"XGRADNN\\0\")");
  }
  if (f.size() < kHeaderBytes + 4) {
    fail(who, path,
         "truncated: " + std::to_string(f.size()) + " bytes, the header alone needs " +
             std::to_string(kHeaderBytes + 4));
  }
  ModelFileInfo info;
  info.version = static_cast<std::uint32_t>(get_uint(f.data() + 8, 4));
  if (info.version != kModelFormatVersion) {
    fail(who, path,
         "format version " + std::to_string(info.version) +
             " is not supported (this build reads version " + std::to_string(kModelFormatVersion) +
             ")");
  }
  info.scalar_bytes = f[12];
  if (info.scalar_bytes != 4 && info.scalar_bytes != 8) {
    fail(who, path,
         "scalar size " + std::to_string(info.scalar_bytes) +
             " is neither 4 (float32) nor 8 (float64)");
  }
  const auto layers = static_cast<std::uint32_t>(get_uint(f.data() + 16, 4));
  if (layers == 0 || layers > kMaxLayers) {
    fail(who, path,
         "layer count " + std::to_string(layers) + " is outside 1.." + std::to_string(kMaxLayers));
  }
  const std::size_t table_end = kHeaderBytes + kLayerBytes * layers;
  if (f.size() < table_end + 4) {
    fail(who, path,
         "truncated: " + std::to_string(f.size()) + " bytes, the header of " +
             std::to_string(layers) + " layers needs " + std::to_string(table_end + 4));
  }
  // The checksum before the contents: a flipped bit anywhere is reported as corruption,
  // not as whatever field it happened to land in. Size problems are reported first.
  std::size_t scalars = 0;
  for (std::uint32_t l = 0; l < layers; ++l) {
    const std::uint8_t* e = f.data() + kHeaderBytes + kLayerBytes * l;
    const std::uint64_t in = get_uint(e + 16, 8), out = get_uint(e + 24, 8);
    if (in == 0 || out == 0 || in > (1u << 30) || out > (1u << 30)) {
      fail(who, path,
           "layer " + std::to_string(l + 1) + " has " + std::to_string(in) + " inputs and " +
               std::to_string(out) + " outputs (each must be 1..2^30)");
    }
    // in, out <= 2^30: in out + out fits in 64 bits, and comparing it with what the file
    // can hold before adding keeps the running sum from wrapping around (a crafted
    // table could otherwise pass the size check and then ask for exabytes).
    const std::uint64_t layer_scalars = in * out + out;
    const std::uint64_t room = f.size() / info.scalar_bytes;
    if (layer_scalars > room - std::min<std::uint64_t>(room, scalars)) {
      fail(who, path,
           "truncated: " + std::to_string(f.size()) + " bytes cannot hold the " +
               std::to_string(in) + "x" + std::to_string(out) + " weights and biases of layer " +
               std::to_string(l + 1));
    }
    scalars += static_cast<std::size_t>(layer_scalars);
  }
  const std::size_t expected = table_end + scalars * info.scalar_bytes + 4;
  if (f.size() < expected) {
    fail(who, path,
         "truncated: " + std::to_string(f.size()) + " bytes, the " + std::to_string(layers) +
             " layers described need " + std::to_string(expected));
  }
  if (f.size() > expected) {
    fail(who, path,
         std::to_string(f.size() - expected) + " unexpected bytes after the " +
             std::to_string(expected) + " the layers describe");
  }
  const std::uint32_t stored = static_cast<std::uint32_t>(get_uint(f.data() + f.size() - 4, 4));
  const std::uint32_t actual = crc32(f.data(), f.size() - 4);
  if (stored != actual) {
    std::ostringstream s;
    s << std::hex << "checksum mismatch (stored CRC-32 0x" << stored << ", contents give 0x"
      << actual << "): the file is corrupted";
    fail(who, path, s.str());
  }
  // The zero bytes are part of the format: anything else there is not a file we wrote.
  const auto nonzero_at = [&](std::size_t begin, std::size_t end) {
    for (std::size_t k = begin; k < end; ++k) {
      if (f[k] != 0) {
        fail(who, path,
             "byte " + std::to_string(k) + " is " + std::to_string(f[k]) +
                 " where the format has a zero");
      }
    }
  };
  nonzero_at(13, 16);
  nonzero_at(20, 24);
  for (std::uint32_t l = 0; l < layers; ++l) {
    const std::size_t e0 = kHeaderBytes + kLayerBytes * l;
    nonzero_at(e0 + 1, e0 + 8);
  }
  for (std::uint32_t l = 0; l < layers; ++l) {
    const std::uint8_t* e = f.data() + kHeaderBytes + kLayerBytes * l;
    const std::uint8_t kind = e[0];
    if (kind > static_cast<std::uint8_t>(ActivationKind::Softmax)) {
      fail(who, path,
           "layer " + std::to_string(l + 1) + " has unknown activation code " +
               std::to_string(kind));
    }
    const double alpha = get_scalar<double>(e + 8);
    if (!std::isfinite(alpha) || alpha < 0) {
      std::ostringstream s;
      s << "layer " << (l + 1) << " has activation parameter " << alpha
        << " (must be finite and >= 0)";
      fail(who, path, s.str());
    }
    const auto in = static_cast<std::size_t>(get_uint(e + 16, 8));
    const auto out = static_cast<std::size_t>(get_uint(e + 24, 8));
    if (l == 0) {
      info.sizes.push_back(in);
    } else if (in != info.sizes.back()) {
      fail(who, path,
           "layer " + std::to_string(l + 1) + " takes " + wording::count_of(in, "input") +
               " but layer " + std::to_string(l) + " gives " +
               wording::count_of(info.sizes.back(), "output"));
    }
    info.sizes.push_back(out);
    info.activations.push_back(Activation{static_cast<ActivationKind>(kind), alpha});
  }
  data_offset = table_end;
  return info;
}

}  // namespace

template <class T>
void save_network(const Network<T>& net, const std::string& path) {
  if (net.layers().empty()) {
    throw std::invalid_argument("save_network: " + path + ": the network has no layers");
  }
  std::vector<std::uint8_t> out(kMagic.begin(), kMagic.end());
  put_uint(out, kModelFormatVersion, 4);
  put_uint(out, sizeof(T), 1);
  put_uint(out, 0, 3);
  put_uint(out, net.layers().size(), 4);
  put_uint(out, 0, 4);
  for (std::size_t l = 0; l < net.layers().size(); ++l) {
    // Network refuses these when a layer is added; layers() can still be edited after.
    const double alpha = net.layers()[l].activation.effective_alpha();  // what is written
    if (!std::isfinite(alpha) || alpha < 0) {
      std::ostringstream s;
      s << "save_network: " << path << ": layer " << (l + 1) << " has activation parameter "
        << alpha << ", which no model file can hold (must be finite and >= 0)";
      throw std::invalid_argument(s.str());
    }
  }
  for (const Dense<T>& layer : net.layers()) {
    put_uint(out, static_cast<std::uint8_t>(layer.activation.kind), 1);
    put_uint(out, 0, 7);
    put_scalar<double>(out, layer.activation.effective_alpha());
    put_uint(out, layer.inputs(), 8);
    put_uint(out, layer.outputs(), 8);
  }
  for (const Dense<T>& layer : net.layers()) {
    for (const T v : layer.W.value())
      put_scalar<T>(out, v);
    for (const T v : layer.b.value())
      put_scalar<T>(out, v);
  }
  put_uint(out, crc32(out.data(), out.size()), 4);

  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) {
      throw std::runtime_error("save_network: " + path + ": cannot open " + tmp + " for writing (" +
                               std::strerror(errno) + ")");
    }
    f.write(reinterpret_cast<const char*>(out.data()), static_cast<std::streamsize>(out.size()));
    f.close();
    if (!f) {
      std::remove(tmp.c_str());
      throw std::runtime_error("save_network: " + path + ": write to " + tmp + " failed");
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string why = std::strerror(errno);
    std::remove(tmp.c_str());
    throw std::runtime_error("save_network: " + path + ": cannot rename " + tmp + " (" + why + ")");
  }
}

template <class T>
Network<T> load_network(const std::string& path) {
  const char* who = "load_network";
  const std::vector<std::uint8_t> f = read_file(who, path);
  std::size_t offset = 0;
  const ModelFileInfo info = parse(who, path, f, offset);
  if (info.scalar_bytes != sizeof(T)) {
    fail(who, path,
         "holds " + dtype_name(info.scalar_bytes) + " parameters but a " + dtype_name(sizeof(T)) +
             " network was asked for");
  }
  Network<T> net;
  for (std::size_t l = 0; l < info.activations.size(); ++l) {
    const std::size_t in = info.sizes[l], out = info.sizes[l + 1];
    Matrix<T> W({in, out});
    Matrix<T> b({std::size_t(1), out});
    for (T& v : W) {
      v = get_scalar<T>(f.data() + offset);
      offset += sizeof(T);
    }
    for (T& v : b) {
      v = get_scalar<T>(f.data() + offset);
      offset += sizeof(T);
    }
    const std::string n = std::to_string(l + 1);
    net.add(Dense<T>{Parameter<T>(std::move(W), "W" + n), Parameter<T>(std::move(b), "b" + n),
                     info.activations[l]});
  }
  return net;
}

ModelFileInfo inspect_model_file(const std::string& path) {
  const char* who = "inspect_model_file";
  std::size_t offset = 0;
  return parse(who, path, read_file(who, path), offset);
}

template void save_network(const Network<float>&, const std::string&);
template void save_network(const Network<double>&, const std::string&);
template Network<float> load_network<float>(const std::string&);
template Network<double> load_network<double>(const std::string&);

}  // namespace xgrad::nn
