// mx_convert of the AVX2 build (csrc/slicescale/slicescale_cpu.cpp, SLIMOPS_ISA=avx2) timed alone, with and
// without the conversion report: the minimum of ROUNDS calls each, the two interleaved call by call.
// Usage: convert_report SRC_ID DST_ID [THREADS=1] [ROWS=256] (ROWS x 4096 codes; 256: cache-resident,
// 16384: 8192 x 8192 elements). Format ids: kernels/mx/mx_element.cuh. Built by build.sh.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "csrc/slicescale/slicescale_cpu.h"
#include "kernels/mx/mx_element.cuh"
using namespace slimops;

int main(int argc, char** argv) {
  const int src = atoi(argv[1]), dst = atoi(argv[2]), threads = argc > 3 ? atoi(argv[3]) : 1;
  const int64_t R = argc > 4 ? atoi(argv[4]) : 256, L = 4096;
  const int bs = 32, rounds = R > 1024 ? 40 : 1000;
  const mx::Format s = mx::format_of(src), d = mx::format_of(dst);
  std::vector<uint8_t> data(R * L * s.bits / 8), sc(R * L / bs), od(R * L * d.bits / 8), osc(R * L / bs);
  std::mt19937 g(1);
  for (auto& b : data) b = (uint8_t)g();
  if (s.bits == 8 && !s.is_int)  // no NaN/Inf codes: every block on the fast path
    for (auto& b : data)
      if ((b & 0x7F) > s.max_code) b &= 0xBF;
  for (auto& b : sc) b = (uint8_t)(120 + g() % 10);
  int64_t counts[8];
  double best[2] = {1e30, 1e30};
  for (int r = 0; r < rounds; ++r)
    for (int rep = 0; rep < 2; ++rep) {
      const ConvertArgs a{data.data(), sc.data(), R,     L,     od.data(), osc.data(), src,
                          dst,         bs,        false, threads, rep ? counts : nullptr};
      const auto t0 = std::chrono::steady_clock::now();
      slicescale_cpu::avx2::convert(a);
      const double us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
      if (us < best[rep]) best[rep] = us;
    }
  printf("%d -> %d, %d thread(s), %ld x %ld: %.1f us, with the report %.1f us (%+.0f %%)\n", src, dst, threads,
         (long)R, (long)L, best[0], best[1], (best[1] / best[0] - 1) * 100);
}
