// Saving and loading a Network: architecture + parameters in one versioned,
// little-endian binary file. The layout (docs/nn.md, "Save format") is:
//
//   offset  size  field
//   0       8     magic "XGRADNN\0"
//   8       4     u32 format version (1)
//   12      1     u8 scalar size in bytes: 4 = float32, 8 = float64
//   13      3     zero
//   16      4     u32 number of layers L (>= 1)
//   20      4     zero
//   24      32*L  per layer: u8 activation (0 identity, 1 sigmoid, 2 tanh, 3 relu,
//                 4 leaky_relu, 5 elu, 6 softmax), 7 zero bytes, f64 alpha (the
//                 effective value), u64 inputs, u64 outputs
//   ...           per layer: W (inputs x outputs, row-major), then b (outputs),
//                 IEEE-754 little-endian scalars of the file's size
//   end-4   4     u32 CRC-32 (IEEE 802.3, as zlib's crc32) of every byte before it
//
// The parameters are stored bit for bit, so a loaded network predicts bit-identically.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "xgrad/nn/network.hpp"

namespace xgrad::nn {

inline constexpr std::uint32_t kModelFormatVersion = 1;

/// What a model file holds, read from its header (parameters not loaded).
struct ModelFileInfo {
  std::uint32_t version = 0;
  std::size_t scalar_bytes = 0;    // 4 or 8
  std::vector<std::size_t> sizes;  // {inputs, hidden..., outputs}
  std::vector<Activation> activations;
};

/// Writes `net` to `path` (through a temporary file renamed into place, so a failed
/// write never leaves a truncated model behind). Throws std::runtime_error naming the
/// file on I/O errors and std::invalid_argument for an empty network.
template <class T>
void save_network(const Network<T>& net, const std::string& path);

/// Reads a network saved with save_network in the same scalar type. A missing,
/// truncated, foreign (wrong magic), newer (wrong version), other-type (float32 vs
/// float64), corrupted (CRC) or inconsistent (layer shapes that do not chain) file
/// throws std::runtime_error "load_network: <path>: <problem>".
template <class T>
Network<T> load_network(const std::string& path);

/// Reads and checks a file's header and checksum without building a network.
ModelFileInfo inspect_model_file(const std::string& path);

extern template void save_network(const Network<float>&, const std::string&);
extern template void save_network(const Network<double>&, const std::string&);
extern template Network<float> load_network<float>(const std::string&);
extern template Network<double> load_network<double>(const std::string&);

}  // namespace xgrad::nn
