// libFuzzer entry point for the IDX parser: any byte string must either parse or
// throw std::runtime_error — no crash, no sanitizer report, no huge allocation
// (libFuzzer's -rss_limit_mb / -malloc_limit_mb catch those).
#include <cstdint>
#include <stdexcept>

#include "idx.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace xgrad::mnist;
  // Both the generic path and the MNIST images/labels expectations, with a small
  // cap so the fuzzer explores the limit checks too.
  IdxExpect any;
  any.max_bytes = std::size_t(64) << 20;
  IdxExpect images;
  images.rank = 3;
  images.dims = {0, 28, 28};
  IdxExpect small;
  small.max_bytes = 4096;
  for (const IdxExpect* e : {&any, &images, &small}) {
    try {
      IdxArray a = parse_idx(data, size, "fuzz", *e);
      std::size_t total = 1;
      for (auto d : a.dims)
        total *= d;
      if (total != a.data.size()) __builtin_trap();  // the parser's own invariant
    } catch (const std::runtime_error&) {
    }
  }
  return 0;
}
