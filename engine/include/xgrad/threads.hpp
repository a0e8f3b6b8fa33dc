// The one thread setting of xgrad: how many threads a run uses, for the engine's large
// products and its own loops (xgrad/parallel.hpp) alike, on libgomp's one pool. xgrad
// computes large products in blocks that its threads share, each block a single-threaded
// OpenBLAS call, so results do not depend on the count. It is process-wide and xgrad's
// own: GEMMs on any thread use it (engine/src/threads.cpp). set_threads also sets the
// calling thread's OpenMP count and OpenBLAS's, for code that calls BLAS itself. Set it
// from one place, before starting threads. A parallel sweep sets 1 here and runs one
// single-threaded training per core.
#pragma once

namespace xgrad {
/// Sets the thread count (n >= 1; throws std::invalid_argument otherwise).
void set_threads(int n);
/// The thread count in force.
int threads();
}  // namespace xgrad
