// The one thread setting of xgrad: the number of threads OpenBLAS may use. It is
// process-wide (OpenBLAS keeps one count), so set it from one place, before starting
// threads. Inside one training run OpenBLAS owns the cores; a parallel sweep sets 1
// here and runs its own workers instead: two pools on two cores fight (DESIGN.md §6).
#pragma once

namespace xgrad {
/// Sets the BLAS thread count (n >= 1; throws std::invalid_argument otherwise).
void set_threads(int n);
/// The BLAS thread count in force.
int threads();
}  // namespace xgrad
