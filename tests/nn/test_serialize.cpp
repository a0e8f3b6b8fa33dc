// Model files: round trip (bit-identical predictions), the documented byte layout, and a
// clear error naming the file for each kind of bad file.
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include <unistd.h>

#include <doctest/doctest.h>

#include "nn_model_test_util.hpp"
#include "xgrad/nn/serialize.hpp"

using namespace nn_test;

namespace {

using Bytes = std::vector<std::uint8_t>;

std::string temp_path(const std::string& name) {
  return (std::string(std::getenv("TMPDIR") ? std::getenv("TMPDIR") : "/tmp") +
          "/xgrad_test_serialize_" + name + "_" + std::to_string(::getpid()) + ".xgnn");
}

Bytes read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return Bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void write_bytes(const std::string& path, const Bytes& b) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

// ---- an independent encoder written from the layout in serialize.hpp / docs/nn.md
void le(Bytes& out, std::uint64_t v, int n) {
  for (int i = 0; i < n; ++i)
    out.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}
void le_double(Bytes& out, double d) {
  std::uint64_t u;
  std::memcpy(&u, &d, 8);
  le(out, u, 8);
}
std::uint32_t crc32_bitwise(const Bytes& b) {  // the textbook bit loop, no table
  std::uint32_t c = 0xFFFFFFFFu;
  for (std::uint8_t byte : b) {
    c ^= byte;
    for (int k = 0; k < 8; ++k)
      c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
  }
  return ~c;
}
struct LayerSpec {
  std::uint8_t kind;
  double alpha;
  std::uint64_t in, out;
  std::vector<double> values;  // W then b
};
Bytes encode(const std::vector<LayerSpec>& layers, std::uint32_t version = 1) {
  Bytes b = {'X', 'G', 'R', 'A', 'D', 'N', 'N', 0};
  le(b, version, 4);
  le(b, 8, 1);
  le(b, 0, 3);
  le(b, layers.size(), 4);
  le(b, 0, 4);
  for (const auto& l : layers) {
    le(b, l.kind, 1);
    le(b, 0, 7);
    le_double(b, l.alpha);
    le(b, l.in, 8);
    le(b, l.out, 8);
  }
  for (const auto& l : layers) {
    for (double v : l.values)
      le_double(b, v);
  }
  le(b, crc32_bitwise(b), 4);
  return b;
}

std::string load_error(const std::string& path) {
  return thrown_message<std::runtime_error>([&] { load_network<double>(path); });
}

Network<double> sample_network(std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  Initialiser init = Initialiser::parse("he_normal");
  init.biases = BiasInit::Normal;
  init.bias_sigma = 0.3;
  return Network<double>({4, 7, 6, 5, 5, 5, 3},
                         {Activation::sigmoid(), Activation::tanh(), Activation::relu(),
                          Activation::leaky_relu(0.2), Activation::elu(0.5), Activation::softmax()},
                         init, rng);
}

}  // namespace

TEST_CASE("serialize: save then load predicts bit-identically (double)") {
  const auto net = sample_network(1);
  const std::string path = temp_path("roundtrip_double");
  save_network(net, path);
  const Network<double> back = load_network<double>(path);
  REQUIRE(back.layers().size() == net.layers().size());
  for (std::size_t l = 0; l < net.layers().size(); ++l) {
    CHECK(back.layers()[l].activation.kind == net.layers()[l].activation.kind);
    CHECK(back.layers()[l].activation.effective_alpha() ==
          net.layers()[l].activation.effective_alpha());
    CHECK(back.layers()[l].W.value() == net.layers()[l].W.value());
    CHECK(back.layers()[l].b.value() == net.layers()[l].b.value());
  }
  const Matrix<double> x = normal_matrix(50, 4, 3);
  CHECK(back.predict(x) == net.predict(x));
  const ModelFileInfo info = inspect_model_file(path);
  CHECK(info.version == 1);
  CHECK(info.scalar_bytes == 8);
  CHECK(info.sizes == std::vector<std::size_t>{4, 7, 6, 5, 5, 5, 3});
  CHECK(info.activations[3].effective_alpha() == 0.2);
  std::remove(path.c_str());
}

TEST_CASE("serialize: save then load predicts bit-identically (float)") {
  std::mt19937_64 rng(2);
  Network<float> net({3, 9, 2}, {Activation::leaky_relu(), Activation::identity()},
                     Initialiser::parse("glorot_uniform"), rng);
  const std::string path = temp_path("roundtrip_float");
  save_network(net, path);
  const Network<float> back = load_network<float>(path);
  const Matrix<float> x = normal_matrix<float>(20, 3, 4);
  CHECK(back.predict(x) == net.predict(x));
  CHECK(inspect_model_file(path).scalar_bytes == 4);
  // 24 header + 2 x 32 layer table + (27 + 9 + 18 + 2) floats + 4 checksum.
  CHECK(read_bytes(path).size() == 24 + 64 + 56 * 4 + 4);
  std::remove(path.c_str());
}

TEST_CASE("serialize: the bytes follow the documented layout") {
  Network<double> net;
  net.add({xgrad::Parameter<double>(Matrix<double>{{1.5, -2.0}}),
           xgrad::Parameter<double>(Matrix<double>{{0.25, 0.125}}), Activation::elu(0.5)});
  net.add({xgrad::Parameter<double>(Matrix<double>{{3.0}, {4.0}}),
           xgrad::Parameter<double>(Matrix<double>{{-1.0}}), Activation::identity()});
  const std::string path = temp_path("layout");
  save_network(net, path);
  const Bytes expected =
      encode({{5, 0.5, 1, 2, {1.5, -2.0, 0.25, 0.125}}, {0, 0.0, 2, 1, {3.0, 4.0, -1.0}}});
  CHECK(read_bytes(path) == expected);
  std::remove(path.c_str());
}

TEST_CASE("serialize: a missing or foreign file is named with its problem") {
  const std::string missing = temp_path("does_not_exist");
  CHECK(contains(load_error(missing), "load_network: " + missing + ": cannot open the file"));

  const std::string foreign = temp_path("foreign");
  write_bytes(foreign, Bytes{'P', 'K', 3, 4, 20, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0,
                             0,   0,   0, 0, 0,  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0});
  CHECK(load_error(foreign) == "load_network: " + foreign +
                                   ": not an xgrad network file (wrong magic; expected "
                                   "\"XGRADNN\\0\")");
  write_bytes(foreign, Bytes{'h', 'i'});
  CHECK(load_error(foreign) ==
        "load_network: " + foreign +
            ": not an xgrad network file (2 bytes, shorter than the 8-byte magic)");
  std::remove(foreign.c_str());
}

TEST_CASE("serialize: truncated files at every section are reported as truncated") {
  const auto net = sample_network(5);
  const std::string path = temp_path("truncated");
  save_network(net, path);
  const Bytes full = read_bytes(path);
  for (std::size_t keep : {std::size_t(20), std::size_t(40), std::size_t(24 + 6 * 32 + 8),
                           full.size() / 2, full.size() - 1}) {
    INFO("kept " << keep << " of " << full.size() << " bytes");
    write_bytes(path, Bytes(full.begin(), full.begin() + static_cast<long>(keep)));
    const std::string msg = load_error(path);
    CHECK(
        contains(msg, "load_network: " + path + ": truncated: " + std::to_string(keep) + " bytes"));
  }
  Bytes longer = full;
  longer.push_back(0);
  write_bytes(path, longer);
  CHECK(contains(load_error(path), "1 unexpected bytes after the"));
  std::remove(path.c_str());
}

TEST_CASE("serialize: wrong version, wrong dtype and corruption") {
  const auto net = sample_network(6);
  const std::string path = temp_path("mismatch");
  save_network(net, path);
  const Bytes good = read_bytes(path);

  Bytes v2 = good;
  v2[8] = 2;
  write_bytes(path, v2);
  CHECK(load_error(path) == "load_network: " + path +
                                ": format version 2 is not supported (this build reads version 1)");

  write_bytes(path, good);
  CHECK(thrown_message<std::runtime_error>([&] { load_network<float>(path); }) ==
        "load_network: " + path + ": holds float64 parameters but a float32 network was asked for");

  Bytes odd = good;
  odd[12] = 2;
  write_bytes(path, odd);
  CHECK(contains(load_error(path), "scalar size 2 is neither 4 (float32) nor 8 (float64)"));

  Bytes flipped = good;
  flipped[good.size() / 2] ^= 0x10;  // one bit in the parameters
  write_bytes(path, flipped);
  CHECK(contains(load_error(path), ": checksum mismatch (stored CRC-32 0x"));
  CHECK(contains(load_error(path), "the file is corrupted"));
  std::remove(path.c_str());
}

TEST_CASE("serialize: inconsistent architecture with a valid checksum") {
  const std::string path = temp_path("inconsistent");
  // Layer 1 gives 2 outputs but layer 2 claims 3 inputs; the sizes still add up.
  write_bytes(path, encode({{1, 0.0, 1, 2, {1, 2, 3, 4}}, {0, 0.0, 3, 1, {1, 2, 3, 4}}}));
  CHECK(load_error(path) ==
        "load_network: " + path + ": layer 2 takes 3 inputs but layer 1 gives 2 outputs");
  write_bytes(path, encode({{9, 0.0, 1, 1, {1, 2}}}));
  CHECK(load_error(path) == "load_network: " + path + ": layer 1 has unknown activation code 9");
  // 6 is softmax, the last code: 7 is the first unknown one.
  write_bytes(path, encode({{7, 0.0, 1, 1, {1, 2}}}));
  CHECK(load_error(path) == "load_network: " + path + ": layer 1 has unknown activation code 7");
  write_bytes(path, encode({{4, -0.5, 1, 1, {1, 2}}}));
  CHECK(load_error(path) ==
        "load_network: " + path +
            ": layer 1 has activation parameter -0.5 (must be finite and >= 0)");
  // Layer by layer, as docs/nn.md lists: layer 1's activation before layer 2's chaining.
  write_bytes(path, encode({{9, 0.0, 1, 2, {1, 2, 3, 4}}, {0, 0.0, 3, 1, {1, 2, 3, 4}}}));
  CHECK(load_error(path) == "load_network: " + path + ": layer 1 has unknown activation code 9");
  write_bytes(path, encode({{1, 0.0, 0, 1, {2}}}));
  CHECK(contains(load_error(path), "layer 1 has 0 inputs and 1 outputs"));
  write_bytes(path, encode({}));
  CHECK(contains(load_error(path), "layer count 0 is outside 1.."));
  // The independent encoder's files load when they are consistent.
  write_bytes(path, encode({{4, 0.3, 1, 2, {1, -2, 0.5, 0.25}}, {0, 0.0, 2, 1, {3, 4, -1}}}));
  const Network<double> net = load_network<double>(path);
  CHECK(net.layers()[0].activation.effective_alpha() == 0.3);
  CHECK(net.predict(Matrix<double>{{1.0}})(0, 0) == 3 * 1.5 + 4 * (0.3 * -1.75) - 1);
  std::remove(path.c_str());
}

TEST_CASE("serialize: a nonzero byte where the format has zeros is refused, checksum or not") {
  const std::string path = temp_path("reserved");
  const Bytes good = encode({{4, 0.3, 1, 2, {1, -2, 0.5, 0.25}}, {0, 0.0, 2, 1, {3, 4, -1}}});
  // Header bytes 13-15 and 20-23, and bytes 1-7 of each 32-byte layer entry (at 24, 56).
  for (const std::size_t at : {13, 15, 20, 23, 25, 31, 57, 63}) {
    CAPTURE(at);
    Bytes b(good.begin(), good.end() - 4);
    b[at] = 7;
    le(b, crc32_bitwise(b), 4);
    write_bytes(path, b);
    CHECK(load_error(path) == "load_network: " + path + ": byte " + std::to_string(at) +
                                  " is 7 where the format has a zero");
  }
  write_bytes(path, good);
  CHECK(load_network<double>(path).layers().size() == 2);
  std::remove(path.c_str());
}

TEST_CASE("serialize: save refuses an activation parameter that load would refuse") {
  // Network::add refuses it; layers() is writable after, so save checks again rather
  // than write a file nothing can read.
  Network<double> net = sample_network(2);
  net.layers()[3].activation.alpha = -0.2;
  const std::string path = temp_path("negative_alpha");
  CHECK_THROWS_WITH_AS(save_network(net, path),
                       ("save_network: " + path +
                        ": layer 4 has activation parameter -0.2, which no model file can hold "
                        "(must be finite and >= 0)")
                           .c_str(),
                       std::invalid_argument);
  CHECK_FALSE(std::filesystem::exists(path));
}

TEST_CASE("serialize: a layer table whose sizes add up past 2^64 is refused as truncated") {
  // Three layers of ~2^60 values each: summed and multiplied by 8 bytes they wrap around
  // 2^64 to the size of this 132-byte file. Refused before any allocation, as a
  // runtime_error naming the file, like every other load problem.
  const std::string path = temp_path("wrapping_sizes");
  const std::uint64_t big = 1ull << 30;
  write_bytes(
      path, encode({{1, 0.0, big - 3, big, {}}, {1, 0.0, big, big, {}}, {0, 0.0, big, 1, {0.5}}}));
  const std::string msg = load_error(path);
  CHECK(contains(msg, "load_network: " + path + ": truncated: "));
  CHECK(contains(msg, "weights and biases of layer 1"));
  // inspect_model_file refuses it with the same words, under its own name.
  const std::string inspected =
      thrown_message<std::runtime_error>([&] { inspect_model_file(path); });
  CHECK(inspected == "inspect_model_file" + msg.substr(std::string("load_network").size()));
  std::remove(path.c_str());
}

TEST_CASE("serialize: a directory is named as one") {
  const std::string dir = temp_path("a_directory");
  std::filesystem::create_directories(dir);
  CHECK(load_error(dir) == "load_network: " + dir + ": is a directory, not a model file");
  CHECK(thrown_message<std::runtime_error>([&] { inspect_model_file(dir); }) ==
        "inspect_model_file: " + dir + ": is a directory, not a model file");
  std::filesystem::remove(dir);
}

TEST_CASE("serialize: saving an empty network or into a missing folder fails clearly") {
  CHECK_THROWS_WITH_AS(save_network(Network<double>{}, "x.xgnn"),
                       "save_network: x.xgnn: the network has no layers", std::invalid_argument);
  const std::string bad = "/nonexistent_dir_xgrad/model.xgnn";
  CHECK(contains(thrown_message<std::runtime_error>([&] { save_network(sample_network(1), bad); }),
                 "save_network: " + bad + ": cannot open " + bad + ".tmp for writing"));
}
