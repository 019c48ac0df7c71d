// Work split of the CPU kernels over OpenMP threads.
#pragma once
#include <stdint.h>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace slimops {

// Split [0, total) over at most num_threads threads, in contiguous ranges of at least
// min_per_thread items: fn(begin, end) on each thread.
template <class Fn>
inline void parallel_ranges(int64_t total, int64_t min_per_thread, int num_threads, Fn fn) {
  const int64_t want = total / min_per_thread + 1;
  const int threads = (int)(want < num_threads ? want : num_threads);
#pragma omp parallel num_threads(threads)
  {
#ifdef _OPENMP
    const int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
#else
    const int64_t t = 0, nt = 1;
#endif
    const int64_t i0 = total * t / nt, i1 = total * (t + 1) / nt;
    if (i1 > i0) fn(i0, i1);
  }
}

}  // namespace slimops
