// The one thread setting of xgrad: how many threads a run uses, for OpenBLAS's GEMMs and
// for the engine's own loops (xgrad/parallel.hpp) alike — both run on libgomp's one pool
// (OpenBLAS's OpenMP build). It is process-wide and xgrad's own: GEMMs on any thread
// use it (engine/src/threads.cpp). Set it from one place, before starting threads. A
// parallel sweep sets 1 here and runs one single-threaded training per core.
#pragma once

namespace xgrad {
/// Sets the thread count (n >= 1; throws std::invalid_argument otherwise).
void set_threads(int n);
/// The thread count in force.
int threads();
}  // namespace xgrad
